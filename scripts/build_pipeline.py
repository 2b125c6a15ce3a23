#!/usr/bin/env python
"""Assemble the course's models into a diffusers StableDiffusionPipeline and save it to data/course_pipeline/.

    python scripts/build_pipeline.py

Reads the shipped data/vae_mnist and data/text2image_mnist (with its tokenizer), builds the pipeline with
``course_utils.pipeline.build_course_pipeline`` and writes it with ``save_pretrained`` (safetensors only)
into a temporary folder beside the target, adds ``checksums.json`` (SHA-256 of every file), and only then
swaps the folder into place, so an interrupted run never leaves a half-written pipeline behind.
"""
from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from course_utils.checkpoints import write_json  # noqa: E402
from course_utils.pipeline import CHECKSUMS_FILE, COURSE_PIPELINE_DIR, build_course_pipeline, folder_checksums  # noqa: E402


def main() -> int:
    pipe = build_course_pipeline()
    target = COURSE_PIPELINE_DIR
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    try:
        pipe.save_pretrained(staging, safe_serialization=True)
        write_json(staging / CHECKSUMS_FILE, folder_checksums(staging))
        old = target.with_name(f".{target.name}.old")
        if target.exists():
            target.rename(old)
        staging.rename(target)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    for path in sorted(target.rglob("*")):
        if path.is_file():
            print(f"{path.relative_to(ROOT)}  {path.stat().st_size / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
