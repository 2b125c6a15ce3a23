#!/usr/bin/env python
"""Measure the shipped text-to-image model: a guidance-scale sweep and attribute control (notebook 06, README).

    python scripts/evaluate_text2image.py --per-digit 100 --threads 2 --write-manifest

For each guidance scale (default 0, 1, 2, 4, 7.5, 15) it samples ``--per-digit`` digits for each of the ten
prompts "a handwritten zero" ... "a handwritten nine" and measures:

- **adherence**: the share of samples the course classifier assigns to the digit the prompt asked for;
- **variety**: MNIST FID of all samples against as many real test digits (classes balanced), and the
  within-class feature spread, the mean per-class trace of the classifier-feature covariance, relative to
  real digits of the same classes (1.0 = as varied as real digits);
- **saturation**: the standard deviation of the final latents (real latents: 1.0 after scaling), and the ink
  share, the fraction of decoded pixels brighter than mid-grey (x > 0), next to that of real digits.

Then, at --default-scale, attribute control: for every digit, prompts with the words for the low and the high
third of each attribute ("a thin seven" / "a thick seven"), and the measured attribute of both sets.

Writes docs/guidance_sweep.json and .md, the table into README.md between the guidance-sweep markers,
and with --write-manifest the figures into data/text2image_mnist.json.
"""
from __future__ import annotations

import argparse
import platform
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from course_utils.captions import ATTRIBUTE_WORDS, NUMBER_WORDS, class_terciles, measure_attributes  # noqa: E402
from course_utils.checkpoints import load_manifest, write_json  # noqa: E402
from course_utils.data import DATA_DIR, mnist_tensors  # noqa: E402
from course_utils.guidance import (LATENT_SAMPLERS, embed_prompts, latent_scheduler, load_text2image,  # noqa: E402
                                   sample_with_guidance, within_class_spread)
from course_utils.latents import decode, load_vae  # noqa: E402
from course_utils.metrics import classify, load_classifier, mnist_fid  # noqa: E402
from reports import publish, reproduce_command  # noqa: E402  (scripts/ is on sys.path: it holds this script)
from resumable import in_range, integer_in  # noqa: E402



def digit_prompts(per_digit: int, template: str = "a handwritten {word}") -> tuple[list[str], torch.Tensor]:
    digits = torch.arange(10).repeat_interleave(per_digit)
    return [template.format(word=NUMBER_WORDS[d]) for d in digits.tolist()], digits


def generate(models, prompts: list[str], guidance_scale: float, args, negative: list[str] | None = None, **remedies):
    """Images (28x28) and final latents for ``prompts``, in batches, seeded by --seed; ``remedies`` go to
    ``sample_with_guidance`` (``guidance_rescale``, ``guidance_interval``)."""
    tokenizer, text_encoder, unet, vae = models
    generator = torch.Generator().manual_seed(args.seed)
    images, finals = [], []
    for start in range(0, len(prompts), args.batch_size):
        chunk = prompts[start:start + args.batch_size]
        negatives = (negative or [""] * len(prompts))[start:start + args.batch_size]
        z = sample_with_guidance(unet, latent_scheduler(args.sampler), embed_prompts(tokenizer, text_encoder, chunk),
                                 embed_prompts(tokenizer, text_encoder, negatives), guidance_scale, args.steps, generator,
                                 progress=False, **remedies)
        finals.append(z)
        images.append(decode(vae, z))
    return torch.cat(images), torch.cat(finals)


def real_reference(classifier, test_images: torch.Tensor, test_labels: torch.Tensor, per_digit: int):
    """What samples are measured against: two disjoint sets of ``per_digit`` real test digits of each class.
    Returns the indices of the first set, its classifier features, its within-class spread and the data floor
    (the MNIST FID of the second set against the first, rounded)."""
    index = torch.cat([torch.nonzero(test_labels == d)[:2 * per_digit, 0] for d in range(10)]).reshape(10, -1)
    first, second = index[:, :per_digit].flatten(), index[:, per_digit:].flatten()
    features = classify(classifier, test_images[first])[0]
    floor = round(mnist_fid(features, classify(classifier, test_images[second])[0]), 3)
    return first, features, within_class_spread(features, test_labels[first]), floor


def sample_quality(classifier, images: torch.Tensor, digits: torch.Tensor, real_features: torch.Tensor,
                   real_spread: float) -> tuple[dict, torch.Tensor]:
    """Adherence to the requested ``digits``, MNIST FID and within-class spread relative to real digits, rounded,
    and the classifier's reading of each image."""
    features, probabilities = classify(classifier, images)
    predicted = probabilities.argmax(dim=1)
    return {"adherence": round(float((predicted == digits).float().mean()), 4),
            "mnist_fid": round(mnist_fid(real_features, features), 3),
            "relative_spread": round(within_class_spread(features, digits) / real_spread, 3)}, predicted


def markdown_table(result: dict) -> str:
    s = result["settings"]
    lines = [
        f"Measured by `{s['command']}`: {s['per_digit']} samples for each of the ten prompts \"a handwritten zero\" ... "
        f"\"a handwritten nine\" per scale ({10 * s['per_digit']:,} in all), {s['sampler']} with {s['steps']} steps; "
        f"MNIST FID against {10 * s['per_digit']:,} real test digits (data floor {result['data_floor_fid']:.2f}).",
        "",
        f"| guidance scale | adherence | MNIST FID | within-class spread (real = 1) | latent std (real = 1) | ink share (real = {result['real_ink_share']:.3f}) |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for row in result["sweep"]:
        lines.append(f"| {row['guidance_scale']:g} | {row['adherence']:.3f} | {row['mnist_fid']:.2f} | "
                     f"{row['relative_spread']:.2f} | {row['latent_std']:.2f} | {row['ink_share']:.3f} |")
    lines += ["", f"Attribute control at guidance {s['default_scale']:g} ({s['attribute_per_digit']} samples per digit "
              "and word; real digits: the gap between the low and the high third of each class):", "",
              "| attribute | prompt words | measured (low word) | measured (high word) | effect | real gap |",
              "|---|---|---:|---:|---:|---:|"]
    for name in ATTRIBUTE_WORDS:  # course order; the JSON stores them sorted
        row = result["attributes"][name]
        lines.append(f"| {name} | {row['low_word']} / {row['high_word']} | {row['low']:.2f} | {row['high']:.2f} | "
                     f"{row['high'] - row['low']:+.2f} | {row['real_gap']:+.2f} |")
    lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-digit", type=integer_in(1, 10_000), default=100)
    parser.add_argument("--scales", type=in_range(0, 100), nargs="+", default=[0, 1, 2, 4, 7.5, 15])
    parser.add_argument("--default-scale", type=in_range(0, 100), default=4.0)
    parser.add_argument("--attribute-per-digit", type=integer_in(1, 10_000), default=30)
    parser.add_argument("--sampler", choices=LATENT_SAMPLERS, default="ddpm")
    parser.add_argument("--steps", type=integer_in(1, 1000), default=25, help="sampler steps (default 25, as notebook 06)")
    parser.add_argument("--seed", type=integer_in(0, 2**32 - 1), default=0)
    parser.add_argument("--threads", type=integer_in(1, 256), default=2)
    parser.add_argument("--batch-size", type=integer_in(1, 100_000), default=250)
    parser.add_argument("--write-manifest", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    tokenizer, text_encoder, unet, manifest = load_text2image()
    models = (tokenizer, text_encoder, unet, load_vae())
    classifier = load_classifier()

    test_images, test_labels = mnist_tensors("test")
    real_a, real_features_a, real_spread, floor = real_reference(classifier, test_images, test_labels, args.per_digit)
    prompts, digits = digit_prompts(args.per_digit)
    result = {
        "settings": {"per_digit": args.per_digit, "sampler": args.sampler, "steps": args.steps, "seed": args.seed,
                     "threads": args.threads, "default_scale": args.default_scale,
                     "attribute_per_digit": args.attribute_per_digit, "checkpoint_sha256": manifest["files"]["unet/diffusion_pytorch_model.safetensors"],
                     "machine": platform.processor() or platform.machine(),
                     "command": reproduce_command("evaluate_text2image.py", argv)},
        "data_floor_fid": floor,
        "real_ink_share": round(float((test_images[real_a] > 0).float().mean()), 4), "sweep": [], "attributes": {},
    }
    for scale in args.scales:
        images, finals = generate(models, prompts, scale, args)
        quality, predicted = sample_quality(classifier, images, digits, real_features_a, real_spread)
        row = {"guidance_scale": scale, "adherence": quality["adherence"],
               "adherence_per_digit": [round(float((predicted[digits == d] == d).float().mean()), 3) for d in range(10)],
               "mnist_fid": quality["mnist_fid"], "relative_spread": quality["relative_spread"],
               "latent_std": round(float(finals.std()), 3),
               "ink_share": round(float((images > 0).float().mean()), 4)}
        result["sweep"].append(row)
        print(row, flush=True)

    real_attributes = measure_attributes(test_images)
    terciles = class_terciles(real_attributes, test_labels)
    for name, ((low_word, _), (high_word, _)) in ATTRIBUTE_WORDS.items():
        measured = {}
        for word in (low_word, high_word):
            word_prompts, _ = digit_prompts(args.attribute_per_digit, f"a {word} {{word}}")
            images, _ = generate(models, word_prompts, args.default_scale, args)
            measured[word] = float(measure_attributes(images)[name].mean())
        gaps = []
        for d in range(10):  # mean of the class's top third minus mean of its bottom third
            values = real_attributes[name][test_labels == d]
            gaps.append(float(values[values > terciles[name][d, 1]].mean() - values[values < terciles[name][d, 0]].mean()))
        result["attributes"][name] = {"low_word": low_word, "high_word": high_word, "low": round(measured[low_word], 3),
                                      "high": round(measured[high_word], 3), "real_gap": round(sum(gaps) / 10, 3)}
        print(name, result["attributes"][name], flush=True)

    text = markdown_table(result)
    publish(result, text, ROOT / "docs" / "guidance_sweep.json", ROOT / "docs" / "guidance_sweep.md",
            "guidance-sweep", heading="Classifier-free guidance sweep on the course text-to-image model")
    if args.write_manifest:
        manifest = load_manifest(DATA_DIR / "text2image_mnist.json")
        manifest["quality"] = {"sweep": result["sweep"], "attributes": result["attributes"],
                               "data_floor_fid": result["data_floor_fid"], "settings": result["settings"]}
        write_json(DATA_DIR / "text2image_mnist.json", manifest)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
