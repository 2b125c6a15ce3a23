#!/usr/bin/env python
"""Measure notebook 09's ControlNet: how closely the generated digits follow their control, and whether the
prompt still picks the digit.

    python scripts/evaluate_controlnet.py --threads 2 --write-manifest     # 1,000 samples per row
    python scripts/evaluate_controlnet.py --per-digit 20 --scales 0 1

The controls are the skeletons of --per-digit test digits of each class (never seen in training), each with
the prompt "a handwritten <digit>". For each ControlNet conditioning scale (0 = the text-to-image model alone,
the baseline: its residuals are multiplied by 0) the course's StableDiffusionControlNetPipeline draws one digit
per control, and the script measures:

- **Chamfer distance**: how far, in pixels, the strokes of the generated digit's skeleton lie from the
  control's and back (``control.chamfer_distance``); at scale 0 it is the distance between two unrelated
  digits of the same class. And the **skeleton IoU**, the two skeletons each thickened by 1 pixel
  (``control.skeleton_iou``);
- **prompt adherence**: the share the course classifier reads as the prompt's digit, and the share it is
  confident about (p > 0.9).

Then text and control **disagree**: the controls of digit d with the prompt of digit (d + 5) mod 10, at each
scale of --disagree-scales: the shares drawn as the prompt's digit and as the control's.

Writes ``docs/controlnet.json``, ``docs/controlnet.md`` and the README's ``controlnet`` block; with
--write-manifest also the ``quality`` of ``data/controlnet_mnist.json``.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from course_utils.captions import NUMBER_WORDS  # noqa: E402
from course_utils.checkpoints import write_json  # noqa: E402
from course_utils.control import chamfer_distance, pad_control, skeleton_iou, skeletonize  # noqa: E402
from course_utils.data import DATA_DIR, mnist_tensors, sha256_of  # noqa: E402
from course_utils.guidance import default_guidance_scale  # noqa: E402
from course_utils.metrics import classify, load_classifier  # noqa: E402
from course_utils.part_folders import COURSE_CONTROLNET_DIR  # noqa: E402
from course_utils.pipeline import build_controlnet_pipeline, pipeline_images_to_digits  # noqa: E402
from reports import parse_with_outputs, publish, reproduce_command  # noqa: E402
from resumable import in_range, integer_in  # noqa: E402

MANIFEST = DATA_DIR / "controlnet_mnist.json"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-digit", type=integer_in(1, 500), default=100,
                        help="controls per digit class (1 to 500, default 100)")
    parser.add_argument("--scales", nargs="+", type=in_range(0, 100), default=[0.0, 0.25, 0.5, 1.0, 1.5, 2.0])
    parser.add_argument("--disagree-scales", nargs="*", type=in_range(0, 100), default=[1.0, 2.0])
    parser.add_argument("--guidance-scale", type=in_range(0, 100), default=None,
                        help="classifier-free guidance (default: the text-to-image model's, guidance.default_guidance_scale)")
    parser.add_argument("--steps", type=integer_in(1, 1000), default=25, help="denoising steps (default 25)")
    parser.add_argument("--threads", type=integer_in(1, 256), default=2)
    parser.add_argument("--batch-size", type=integer_in(1, 100_000), default=250)
    parser.add_argument("--seed", type=integer_in(0, 2**32 - 1), default=0)
    parser.add_argument("--write-manifest", action="store_true", help=f"store the results in {MANIFEST.name}")
    args = parse_with_outputs(parser, argv, "controlnet")
    if not 1 <= args.per_digit <= 500:
        parser.error(f"--per-digit must be in [1, 500], got {args.per_digit}")
    if any(not 0.0 <= s <= 5.0 for s in args.scales + args.disagree_scales):
        parser.error("--scales and --disagree-scales must be in [0, 5]")
    if args.guidance_scale is None:
        args.guidance_scale = default_guidance_scale()
    if not 1 <= args.steps <= 1000 or not 0.0 <= args.guidance_scale <= 50.0 or args.threads < 1 or args.batch_size < 1:
        parser.error("--steps must be in [1, 1000], --guidance-scale in [0, 50], --threads and --batch-size positive")
    return args


def test_controls(per_digit: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``per_digit`` test digits of each class, in class order: skeletons [N, 1, 28, 28] and labels [N]."""
    images, labels = mnist_tensors("test")
    index = torch.cat([torch.nonzero(labels == digit)[:per_digit, 0] for digit in range(10)])
    return skeletonize(images[index]), labels[index]


def generate(pipe, skeletons, prompt_digits, scale: float, args) -> tuple[torch.Tensor, float]:
    """One digit per control [N, 1, 28, 28] in [-1, 1], and the seconds per image."""
    generator, batches, started = torch.Generator().manual_seed(args.seed), [], time.perf_counter()
    for start in range(0, len(skeletons), args.batch_size):
        chunk = slice(start, start + args.batch_size)
        prompts = [f"a handwritten {NUMBER_WORDS[d]}" for d in prompt_digits[chunk].tolist()]
        images = pipe(prompts, image=pad_control(skeletons[chunk]), num_inference_steps=args.steps,
                      guidance_scale=args.guidance_scale, controlnet_conditioning_scale=scale,
                      generator=generator, output_type="pt").images
        batches.append(pipeline_images_to_digits(images))
    return torch.cat(batches), (time.perf_counter() - started) / len(skeletons)


def measure(pipe, classifier, skeletons, labels, prompt_digits, scale: float, args) -> dict:
    digits, seconds = generate(pipe, skeletons, prompt_digits, scale, args)
    probabilities = classify(classifier, digits)[1]
    drawn = probabilities.argmax(1)
    return {"scale": scale, "chamfer_px": round(chamfer_distance(digits, skeletons).mean().item(), 3),
            "skeleton_iou": round(skeleton_iou(digits, skeletons).mean().item(), 4),
            "prompt_adherence": round((drawn == prompt_digits).float().mean().item(), 4),
            "control_digit_share": round((drawn == labels).float().mean().item(), 4),
            "confident_share": round((probabilities.max(1).values > 0.9).float().mean().item(), 4),
            "ms_per_image": round(1000 * seconds, 2)}


def markdown_table(result: dict) -> str:
    settings = result["settings"]
    lines = [f"Generated by `{settings['command']}` (`scripts/evaluate_controlnet.py`; notebook 09 reads it). "
             f"ControlNet `data/course_controlnet` (SHA-256 `{settings['controlnet_sha256'][:12]}...`) on the course "
             f"pipeline, {settings['steps']} DDPM steps, guidance {settings['guidance_scale']:g}, "
             f"{settings['num_controls']:,} controls (skeletons of {settings['per_digit']} test digits per class), "
             f"seed {settings['seed']}. Scale 0 is the text-to-image model without control.", "",
             "**Text and control agree** (the prompt names the control's digit):", "",
             "| conditioning scale | Chamfer distance (px) | skeleton IoU (1 px) | prompt adherence | confident share | ms / image |",
             "|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['scale']:g} | {r['chamfer_px']:.2f} | {r['skeleton_iou']:.3f} | {r['prompt_adherence']:.3f} | {r['confident_share']:.3f} | "
              f"{r['ms_per_image']:.1f} |" for r in result["agree"]]
    if result["disagree"]:
        lines += ["", "**Text and control disagree** (a skeleton of digit d, the prompt of digit (d + 5) mod 10):", "",
                  "| conditioning scale | Chamfer distance (px) | skeleton IoU (1 px) | drawn as the prompt's digit | "
                  "drawn as the control's digit |", "|---:|---:|---:|---:|---:|"]
        lines += [f"| {r['scale']:g} | {r['chamfer_px']:.2f} | {r['skeleton_iou']:.3f} | {r['prompt_adherence']:.3f} | "
                  f"{r['control_digit_share']:.3f} |" for r in result["disagree"]]
    lines += ["", f"Wall time on {settings['threads']} CPU thread(s) of {settings['machine']}, batches of "
                  f"{settings['batch_size']}.", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    pipe, classifier = build_controlnet_pipeline(), load_classifier()
    skeletons, labels = test_controls(args.per_digit)
    weights = COURSE_CONTROLNET_DIR / "controlnet" / "diffusion_pytorch_model.safetensors"
    settings = {"command": reproduce_command("evaluate_controlnet.py", argv), "controlnet_sha256": sha256_of(weights),
                "per_digit": args.per_digit, "num_controls": len(labels), "steps": args.steps,
                "guidance_scale": args.guidance_scale, "seed": args.seed, "threads": args.threads,
                "batch_size": args.batch_size, "machine": f"{platform.machine()}"}
    result = {"settings": settings, "agree": [], "disagree": []}
    for scale in args.scales:
        result["agree"].append(measure(pipe, classifier, skeletons, labels, labels, scale, args))
        print(result["agree"][-1], flush=True)
    for scale in args.disagree_scales:
        result["disagree"].append(measure(pipe, classifier, skeletons, labels, (labels + 5) % 10, scale, args))
        print(result["disagree"][-1], flush=True)
    text = markdown_table(result)
    publish(result, text, args.json, args.markdown, "controlnet", heading="ControlNet: following a sketch")
    if args.write_manifest:
        manifest = json.loads(MANIFEST.read_text())
        write_json(MANIFEST, manifest | {"quality": result})
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
