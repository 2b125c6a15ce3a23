"""Train the course VAE (``diffusers.AutoencoderKL``, 32x32x1 -> 8x8x4) on MNIST; export data/vae_mnist.

Resumable like ``train_ddpm.py``: the training state is saved to --run-dir every --save-every steps,
and each step's batch and noise come from a generator seeded with (seed, step). At the end the latent
scaling factor (1 / std of the posterior means of 10,000 training digits) is computed and stored in
the model config, and the test-set PSNR is measured and written into the manifest.

    python scripts/train_vae.py --steps 3000 --threads 2
"""
from __future__ import annotations

import argparse
import csv
import shlex
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from course_utils.checkpoints import atomic_write, save_weights, write_json  # noqa: E402
from course_utils.data import DATA_DIR, mnist_tensors  # noqa: E402
from course_utils.latents import (crop_to_28, latent_scaling_factor, make_vae, pad_to_32, psnr,  # noqa: E402
                                  vae_config, vae_loss)
from course_utils.unet import count_parameters  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=3000, help="total optimizer steps (default 3000)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--kl-weight", type=float, default=1e-4, help="beta: weight of the KL per latent element")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--save-every", type=int, default=250)
    parser.add_argument("--run-dir", type=Path, default=ROOT / "runs" / "vae_mnist")
    parser.add_argument("--out", type=Path, default=DATA_DIR / "vae_mnist.safetensors")
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error(f"--steps must be >= 1, got {args.steps}")
    if args.batch_size < 1:
        parser.error(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.kl_weight < 0:
        parser.error(f"--kl-weight must be >= 0, got {args.kl_weight}")
    return args


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    vae = make_vae()
    optimizer = torch.optim.AdamW(vae.parameters(), lr=args.lr, weight_decay=0.0)
    images = pad_to_32(mnist_tensors("train")[0])

    state_path = args.run_dir / "state.pt"
    log_path = args.run_dir / "log.csv"
    step, wall_time = 0, 0.0
    if state_path.exists():
        state = torch.load(state_path, weights_only=True)  # our own file; weights_only all the same
        vae.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        step, wall_time = state["step"], state["wall_time"]
        print(f"resuming from step {step} ({wall_time / 60:.1f} min trained)", flush=True)
    args.run_dir.mkdir(parents=True, exist_ok=True)

    def save_state():
        state = {"model": vae.state_dict(), "optimizer": optimizer.state_dict(), "step": step, "wall_time": wall_time}
        atomic_write(state_path, lambda tmp: torch.save(state, tmp))

    vae.train()
    running, started = torch.zeros(3), time.time()
    while step < args.steps:
        generator = torch.Generator().manual_seed(args.seed * 1_000_003 + step)
        batch = images[torch.randint(0, len(images), (args.batch_size,), generator=generator)]
        # cosine decay to 10%: the autoencoder is trained once, to a fixed length
        lr_scale = 0.1 + 0.45 * (1 + torch.cos(torch.tensor(torch.pi * step / args.steps))).item()
        for group in optimizer.param_groups:
            group["lr"] = args.lr * lr_scale
        loss, mse, kl = vae_loss(vae, batch, args.kl_weight, generator)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        optimizer.step()
        step += 1
        running += torch.tensor([loss.item(), mse.item(), kl.item()])
        if step % 100 == 0:
            now = time.time()
            wall_time += now - started
            started = now
            loss_avg, mse_avg, kl_avg = (running / 100).tolist()
            with open(log_path, "a", newline="") as handle:
                csv.writer(handle).writerow([step, f"{loss_avg:.5f}", f"{mse_avg:.5f}", f"{kl_avg:.3f}", f"{wall_time:.1f}"])
            print(f"step {step}/{args.steps} loss {loss_avg:.4f} mse {mse_avg:.4f} kl {kl_avg:.2f} "
                  f"{wall_time / 60:.1f} min", flush=True)
            running.zero_()
        if step % args.save_every == 0 or step == args.steps:
            save_state()

    vae.eval()
    with torch.no_grad():
        sample = images[torch.randperm(len(images), generator=torch.Generator().manual_seed(args.seed))[:10_000]]
        means = torch.cat([vae.encode(chunk).latent_dist.mean for chunk in sample.split(500)])
        scaling_factor = latent_scaling_factor(means)
        test = pad_to_32(mnist_tensors("test")[0])
        reconstructions = torch.cat([vae(chunk).sample for chunk in test.split(500)]).clamp(-1, 1)
        test_psnr = psnr(crop_to_28(reconstructions), crop_to_28(test)).mean().item()
    config = {**vae_config(), "scaling_factor": round(scaling_factor, 5)}
    sha = save_weights(vae.state_dict(), args.out, config)
    command = "python scripts/train_vae.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    write_json(args.out.with_suffix(".json"), {
        "file": args.out.name, "sha256": sha, "command": command, "seed": args.seed, "steps": step,
        "batch_size": args.batch_size, "lr": args.lr, "kl_weight": args.kl_weight, "config": config,
        "parameters": count_parameters(vae), "threads": args.threads,
        "wall_time_minutes": round(wall_time / 60, 1), "machine": "2-core CPU (course dev machine)",
        "quality": {"test_psnr_db": round(test_psnr, 2), "num_test_images": len(test),
                    "latent_std_before_scaling": round(1 / scaling_factor, 4)},
    })
    print(f"wrote {args.out} (sha256 {sha[:12]}...): test PSNR {test_psnr:.2f} dB, scaling factor {scaling_factor:.4f}")


if __name__ == "__main__":
    main()
