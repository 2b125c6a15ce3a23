#!/usr/bin/env python
"""Complete data/course_pipeline/ as a diffusers StableDiffusionPipeline folder: the scheduler and model_index.json.

    python scripts/build_pipeline.py

The folder is the one home of the course's VAE, text encoder, tokenizer and UNet, written there by
scripts/train_vae.py and scripts/train_text2image.py (``course_utils.part_folders.save_part``). This script
adds the two pieces that make it a pipeline, the sampler notebook 06 uses (``scheduler/``) and the index of
the parts (``model_index.json``, which ``StableDiffusionPipeline.from_pretrained`` reads), each written
atomically, and refreshes ``checksums.json`` (SHA-256 of every file).
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from course_utils.checkpoints import atomic_write, write_json  # noqa: E402
from course_utils.part_folders import CHECKSUMS_FILE, COURSE_PIPELINE_DIR, folder_checksums, save_part  # noqa: E402
from course_utils.pipeline import build_course_pipeline  # noqa: E402


def main() -> int:
    pipe = build_course_pipeline()
    save_part(pipe.scheduler, "scheduler")
    index = COURSE_PIPELINE_DIR / "model_index.json"
    # What pipe.save_config writes, written atomically.
    atomic_write(index, lambda tmp: tmp.write_text(pipe.to_json_string()))
    write_json(COURSE_PIPELINE_DIR / CHECKSUMS_FILE, folder_checksums(COURSE_PIPELINE_DIR))
    for path in sorted(COURSE_PIPELINE_DIR.rglob("*")):
        if path.is_file():
            print(f"{path.relative_to(ROOT)}  {path.stat().st_size / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
