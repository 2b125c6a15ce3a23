#!/usr/bin/env python
"""Pixel DDPM against latent DDPM, measured in one run (notebook 05, README).

    python scripts/compare_latent_pixel.py --num-samples 1000 --steps 100 --threads 2

For both shipped models (data/ddpm_mnist, data/latent_ddpm_mnist + data/vae_mnist) it measures, on this
machine and in this process: the time of one training step (same batch size), the sampling time per
image with the same sampler (DDPM ancestral) and number of steps (for the latent model including the VAE
decode), and MNIST FID and confident share of ``--num-samples`` samples against as many real test digits,
next to the data floor and the VAE's own floor (FID of its reconstructions of real digits).

Writes docs/latent_vs_pixel.json and .md and the table into README.md between the latent-comparison
markers; with --write-manifest also the latent model's figures into data/latent_ddpm_mnist.json.
Timings are recorded, never checked.
"""
from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from course_utils.checkpoints import images_seen, load_manifest, write_json  # noqa: E402
from course_utils.data import DATA_DIR, mnist_tensors  # noqa: E402
from course_utils.ddpm import ddpm_loss, load_ddpm, sample_ddpm  # noqa: E402
from course_utils.latents import LATENT_CLIP_RANGE, decode, encode, load_vae, psnr, reconstruction_floor  # noqa: E402
from course_utils.metrics import evaluate_samples, load_classifier  # noqa: E402
from course_utils.unet import count_parameters  # noqa: E402
from reports import publish, reproduce_command  # noqa: E402  (scripts/ is on sys.path: it holds this script)
from resumable import integer_in  # noqa: E402



def seconds_per_training_step(model, batch: torch.Tensor, alpha_bar: torch.Tensor, prediction_type: str,
                              repeats: int = 10) -> float:
    model = type(model)(tuple(model.config["channels"]), model.config["image_channels"]).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    generator = torch.Generator().manual_seed(0)
    for repeat in range(repeats + 2):  # two warm-up steps
        if repeat == 2:
            started = time.perf_counter()
        loss = ddpm_loss(model, batch, alpha_bar, generator, prediction_type)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return (time.perf_counter() - started) / repeats


def sample(name: str, model, alpha_bar, prediction_type: str, vae, args) -> tuple[torch.Tensor, float]:
    """Samples as 28x28 images and the seconds per image (VAE decode included for the latent model)."""
    generator = torch.Generator().manual_seed(args.seed)
    latent = name == "latent"
    shape = (4, 8, 8) if latent else (1, 28, 28)
    clip_range = LATENT_CLIP_RANGE if latent else 1.0
    options = dict(image_shape=shape, clip_range=clip_range, prediction_type=prediction_type)
    sample_ddpm(model, 8, alpha_bar, args.steps, generator, progress=False, **options)  # warm-up
    started = time.perf_counter()
    batches = []
    for start in range(0, args.num_samples, args.batch_size):
        size = min(args.batch_size, args.num_samples - start)
        x = sample_ddpm(model, size, alpha_bar, args.steps, generator, **options)
        batches.append(decode(vae, x) if latent else x)
    return torch.cat(batches), (time.perf_counter() - started) / args.num_samples


def markdown_table(result: dict) -> str:
    s = result["settings"]
    rows = result["models"]
    lines = [
        f"Measured by `{s['command']}` in one run: {s['num_samples']:,} samples per model, DDPM ancestral sampling "
        f"with {s['steps']} steps, {s['threads']} CPU thread(s) ({s['machine']}); MNIST FID against "
        f"{s['num_samples']:,} real test digits.",
        "",
        "| model | parameters | train step (batch 64) | sampling per image | MNIST FID | confident share |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, label in (("pixel", "pixel DDPM, 28x28x1"), ("latent", "latent DDPM, 8x8x4 + VAE decode")):
        row = rows[name]
        lines.append(f"| {label} | {row['parameters']:,} | {row['train_step_ms']:.0f} ms | "
                     f"{row['ms_per_image']:.1f} ms | {row['mnist_fid']:.2f} | {row['confident_share']:.3f} |")
    lines += [
        f"| real test digits (data floor) | | | | {result['data_floor_fid']:.2f} | {result['real_confident_share']:.3f} |",
        f"| VAE reconstructions of them (VAE floor) | | | | {result['vae_floor_fid']:.2f} | "
        f"{result['vae_confident_share']:.3f} |",
        "",
        f"Latent sampling is **{result['speedup']:.1f}x faster** per image; its FID is "
        f"**{result['fid_ratio']:.2f}x** the pixel model's. VAE reconstruction PSNR on the {result['psnr_images']:,} "
        f"test digits: **{result['vae_psnr_db']:.2f} dB**. Timings depend on the machine and its load.",
        "",
    ]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num-samples", type=integer_in(2, 5000), default=1000,
                        help="samples per model, and real test digits per set (2 to 5000)")
    parser.add_argument("--steps", type=integer_in(1, 1000), default=100)
    parser.add_argument("--seed", type=integer_in(0, 2**32 - 1), default=0)
    parser.add_argument("--threads", type=integer_in(1, 256), default=2)
    parser.add_argument("--batch-size", type=integer_in(1, 100_000), default=250)
    parser.add_argument("--write-manifest", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    classifier = load_classifier()
    vae = load_vae()
    test_images = mnist_tensors("test")[0]
    reconstructions = decode(vae, encode(vae, test_images))  # all 10,000: the PSNR, and the VAE floor's set
    floors = reconstruction_floor(classifier, test_images, reconstructions, args.num_samples, args.seed)
    reference = floors.pop("reference")
    train_batch = mnist_tensors("train")[0][:64]
    result = {
        "settings": {"num_samples": args.num_samples, "steps": args.steps, "seed": args.seed, "threads": args.threads,
                     "machine": platform.processor() or platform.machine(),
                     "command": reproduce_command("compare_latent_pixel.py", argv)},
        **floors, "vae_psnr_db": round(psnr(reconstructions, test_images).mean().item(), 2), "psnr_images": len(test_images),
        "models": {},
    }
    for name, checkpoint in (("pixel", "ddpm_mnist"), ("latent", "latent_ddpm_mnist")):
        model, alpha_bar, manifest = load_ddpm(checkpoint)
        batch = encode(vae, train_batch) if name == "latent" else train_batch
        prediction_type = manifest["config"]["prediction_type"]
        step_seconds = seconds_per_training_step(model, batch, alpha_bar, prediction_type)
        samples, seconds = sample(name, model, alpha_bar, prediction_type, vae, args)
        quality = evaluate_samples(classifier, samples, reference)
        result["models"][name] = {
            "checkpoint_sha256": manifest["sha256"], "parameters": count_parameters(model),
            "prediction_type": prediction_type, "training_images_seen": images_seen(manifest),
            "train_step_ms": round(1000 * step_seconds, 1), "ms_per_image": round(1000 * seconds, 2),
            "mnist_fid": round(quality["fid"], 3), "confident_share": round(quality["confident_share"], 4),
            "class_histogram": [round(float(v), 4) for v in quality["class_histogram"]],
        }
        print(name, result["models"][name], flush=True)
    pixel, latent = result["models"]["pixel"], result["models"]["latent"]
    result["speedup"] = round(pixel["ms_per_image"] / latent["ms_per_image"], 2)
    result["fid_ratio"] = round(latent["mnist_fid"] / pixel["mnist_fid"], 3)
    text = markdown_table(result)
    publish(result, text, ROOT / "docs" / "latent_vs_pixel.json", ROOT / "docs" / "latent_vs_pixel.md",
            "latent-comparison", heading="Pixel against latent diffusion")
    if args.write_manifest:
        manifest = load_manifest(DATA_DIR / "latent_ddpm_mnist.safetensors")
        manifest["quality"] = {**latent, "sampler": f"DDPM ancestral, {args.steps} steps", "num_samples": args.num_samples,
                               "data_floor_fid": result["data_floor_fid"], "vae_floor_fid": result["vae_floor_fid"],
                               "command": result["settings"]["command"]}
        write_json(DATA_DIR / "latent_ddpm_mnist.json", manifest)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
