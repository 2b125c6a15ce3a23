"""Train the course VAE (``diffusers.AutoencoderKL``, 32x32x1 -> 8x8x4) on MNIST; export it into the
course's Stable Diffusion folder, data/course_pipeline/vae/, and its record into data/vae_mnist.json.

Resumable (``scripts/resumable.py``): the training state is saved to --run-dir every --save-every steps,
and each step's batch and noise come from a generator seeded with (seed, step). At the end the latent
scaling factor (1 / std of the posterior means of 10,000 training digits) is computed and stored in
the model config, and the test-set PSNR and the reconstruction FID (the latent models' floor: MNIST FID of
1,000 reconstructed test digits, beside the data floor of 1,000 real ones) are written into the manifest.

    python scripts/train_vae.py --steps 3000 --threads 2
    python scripts/train_vae.py --measure-only --overwrite-shipped   # measure the shipped VAE again
    python scripts/train_vae.py --channels 32,64,128 --steps 3000 --threads 1 --run-dir runs/vae_study/w32 \
        --pipeline-dir runs/vae_study/w32 --manifest runs/vae_study/w32.json
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from course_utils.checkpoints import OVERWRITE_FLAG, load_manifest, shipped_output_problem, write_json  # noqa: E402
from course_utils.data import DATA_DIR, mnist_tensors  # noqa: E402
from course_utils.latents import (VAE_WIDTHS, crop_to_28, latent_scaling_factor, load_vae, make_vae,  # noqa: E402
                                  pad_to_32, psnr, reconstruction_floor, vae_config, vae_loss)
from course_utils.metrics import load_classifier  # noqa: E402
from course_utils.part_folders import COURSE_PIPELINE_DIR, save_part  # noqa: E402
from course_utils.unet import count_parameters  # noqa: E402
from reports import machine, reproduce_command  # noqa: E402
from resumable import (  # noqa: E402
    TrainingRun, add_training_arguments, optimizer_step, step_generator)


def channels_list(text: str) -> tuple[int, ...]:
    """``--channels 32,64,128`` as a tuple, checked by ``latents.vae_config``."""
    try:
        widths = tuple(int(part) for part in text.split(","))
        vae_config(widths)
    except (TypeError, ValueError) as error:
        raise argparse.ArgumentTypeError(f"{text!r}: {error}") from None
    return widths


@torch.no_grad()
def vae_quality(vae, seed: int = 0, fid_images: int = 1000) -> dict:
    """The manifest's quality record: PSNR of all 10,000 test digits reconstructed (on the 28x28 digit,
    padding cropped), the latent std before scaling (1 / the stored scaling factor), and the reconstruction FID
    of ``fid_images`` of them beside the data floor (``latents.reconstruction_floor``, as
    ``compare_latent_pixel.py`` measures them)."""
    test = mnist_tensors("test")[0]
    reconstructions = crop_to_28(torch.cat([vae(chunk).sample for chunk in pad_to_32(test).split(500)]).clamp(-1, 1))
    floors = reconstruction_floor(load_classifier(), test, reconstructions, fid_images, seed)
    return {"test_psnr_db": round(psnr(reconstructions, test).mean().item(), 2), "num_test_images": len(test),
            "latent_std_before_scaling": round(1 / vae.config.scaling_factor, 4),
            "reconstruction_fid": round(floors["vae_floor_fid"], 2), "data_floor_fid": round(floors["data_floor_fid"], 2),
            "fid_images": fid_images}


def measure_shipped(args, argv) -> None:
    """--measure-only: measure the VAE in --pipeline-dir again and rewrite the quality of --manifest (the
    training record is kept), e.g. after the measurement itself changed."""
    problem = exported_vae_problem(args.pipeline_dir, args.manifest)
    if problem:
        raise SystemExit(problem)
    vae = load_vae(args.pipeline_dir)
    manifest = load_manifest(args.manifest)
    quality = {**vae_quality(vae, seed=args.seed),
               "command": reproduce_command("train_vae.py", argv)}
    write_json(args.manifest, {**manifest, "quality": quality})
    print(f"rewrote the quality of {args.manifest}: {quality}")


def exported_vae_problem(pipeline_dir: Path, manifest: Path) -> str | None:
    """Why --measure-only cannot measure: no exported VAE in ``pipeline_dir`` or no ``manifest``, or None."""
    if not (pipeline_dir / "vae" / "config.json").is_file():
        return f"--measure-only needs an exported VAE in {pipeline_dir / 'vae'}; train one with python scripts/train_vae.py"
    if not manifest.is_file():
        return f"--measure-only rewrites the quality of the manifest {manifest}, which does not exist"
    return None


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_training_arguments(parser, steps=3000, batch_size=64, lr=1e-3)
    parser.add_argument("--channels", type=channels_list, default=VAE_WIDTHS,
                        help="channels of the three resolution levels, multiples of 8 (default 16,32,64)")
    parser.add_argument("--kl-weight", type=float, default=1e-4, help="beta: weight of the KL per latent element")
    parser.add_argument("--run-dir", type=Path, default=ROOT / "runs" / "vae_mnist")
    parser.add_argument("--pipeline-dir", type=Path, default=COURSE_PIPELINE_DIR,
                        help="the Stable Diffusion folder whose vae/ is written (default data/course_pipeline)")
    parser.add_argument("--manifest", type=Path, default=DATA_DIR / "vae_mnist.json")
    parser.add_argument(OVERWRITE_FLAG, action="store_true",
                        help="allow the outputs to replace the shipped model in data/ (refused otherwise)")
    parser.add_argument("--measure-only", action="store_true",
                        help="train nothing: measure the VAE in --pipeline-dir and rewrite the quality in --manifest")
    args = parser.parse_args(argv)
    for option in ("--pipeline-dir", "--manifest"):  # before any work: a finished run must not replace the shipped model
        problem = shipped_output_problem(option, getattr(args, option[2:].replace("-", "_")), args.overwrite_shipped)
        if problem:
            parser.error(problem)
    if args.kl_weight < 0:
        parser.error(f"--kl-weight must be >= 0, got {args.kl_weight}")
    return args


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.measure_only:
        measure_shipped(args, argv)
        return
    torch.manual_seed(args.seed)
    vae = make_vae(widths=args.channels)
    optimizer = torch.optim.AdamW(vae.parameters(), lr=args.lr, weight_decay=0.0)
    images = pad_to_32(mnist_tensors("train")[0])

    run = TrainingRun(args.run_dir, vae, optimizer)
    vae.train()
    while run.step < args.steps:
        generator = step_generator(args.seed, run.step)
        batch = images[torch.randint(0, len(images), (args.batch_size,), generator=generator)]
        # cosine decay to 10%: the autoencoder is trained once, to a fixed length
        lr_scale = 0.1 + 0.45 * (1 + torch.cos(torch.tensor(torch.pi * run.step / args.steps))).item()
        for group in optimizer.param_groups:
            group["lr"] = args.lr * lr_scale
        loss, mse, kl = vae_loss(vae, batch, args.kl_weight, generator)
        optimizer_step(loss, vae, optimizer)
        run.finish_step(args.steps, loss=loss.item(), mse=mse.item(), kl=kl.item())
        if run.step % args.save_every == 0 or run.step == args.steps:
            run.save()

    vae.eval()
    with torch.no_grad():
        sample = images[torch.randperm(len(images), generator=torch.Generator().manual_seed(args.seed))[:10_000]]
        means = torch.cat([vae.encode(chunk).latent_dist.mean for chunk in sample.split(500)])
        scaling_factor = latent_scaling_factor(means)
    config = {**vae_config(args.channels), "scaling_factor": round(scaling_factor, 5)}
    vae.register_to_config(scaling_factor=config["scaling_factor"])
    quality = vae_quality(vae, seed=args.seed)
    files = save_part(vae, "vae", args.pipeline_dir)
    write_json(args.manifest, {
        "files": files, "command": reproduce_command("train_vae.py", argv),
        "seed": args.seed, "steps": run.step,
        "batch_size": args.batch_size, "lr": args.lr, "kl_weight": args.kl_weight, "config": config,
        "parameters": count_parameters(vae), "threads": args.threads,
        "wall_time_minutes": round(run.wall_time / 60, 1), "machine": machine(),
        "quality": quality,
    })
    print(f"wrote {args.pipeline_dir / 'vae'} and {args.manifest}: test PSNR {quality['test_psnr_db']} dB, "
          f"scaling factor {scaling_factor:.4f}, reconstruction FID {quality['reconstruction_fid']} "
          f"(data floor {quality['data_floor_fid']})")


if __name__ == "__main__":
    main()
