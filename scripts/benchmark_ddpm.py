"""Time the shipped pixel DDPM on this machine: training step time and sampling throughput.

    python scripts/benchmark_ddpm.py --threads 2

Reports; never fails on a slow machine. Numbers depend on the CPU and the thread count.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from course_utils.data import mnist_tensors  # noqa: E402
from course_utils.ddpm import ddpm_loss, load_ddpm, sample_ddpm  # noqa: E402
from course_utils.unet import count_parameters  # noqa: E402
from resumable import integer_in  # noqa: E402


def seconds_per_call(function, repeats: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        function()
    started = time.perf_counter()
    for _ in range(repeats):
        function()
    return (time.perf_counter() - started) / repeats


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=integer_in(1, 256), default=2)
    parser.add_argument("--batch-size", type=integer_in(1, 100_000), default=64, help="training batch")
    parser.add_argument("--sample-batch", type=integer_in(1, 100_000), default=256)
    parser.add_argument("--sampling-steps", type=integer_in(1, 1000), default=100)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    model, alpha_bar, manifest = load_ddpm()
    images, _ = mnist_tensors("train")
    batch = images[: args.batch_size]
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    model.train().requires_grad_(True)

    def train_step():
        loss = ddpm_loss(model, batch, alpha_bar, prediction_type=manifest["config"]["prediction_type"])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    step_time = seconds_per_call(train_step, repeats=10)
    model.eval()
    model.load_state_dict(load_ddpm()[0].state_dict())
    with torch.no_grad():
        forward_time = seconds_per_call(lambda: model(images[: args.sample_batch], torch.full((args.sample_batch,), 500)), 5)
    started = time.perf_counter()
    sample_ddpm(model, args.sample_batch, alpha_bar, args.sampling_steps, torch.Generator().manual_seed(0), progress=False,
                prediction_type=manifest["config"]["prediction_type"])
    sampling_time = time.perf_counter() - started
    print(f"model: TinyUNet {manifest['config']['channels']}, {count_parameters(model):,} parameters, {args.threads} threads")
    print(f"training: {step_time:.3f} s per step at batch {args.batch_size} ({args.batch_size / step_time:.0f} images/s)")
    print(f"one network evaluation at batch {args.sample_batch}: {forward_time:.3f} s")
    print(f"sampling: {args.sample_batch} images x {args.sampling_steps} DDPM steps in {sampling_time:.1f} s = "
          f"{sampling_time / args.sample_batch * 1000:.0f} ms per image ({args.sample_batch / sampling_time:.1f} images/s)")


if __name__ == "__main__":
    main()
