#!/usr/bin/env python
"""Measure every sampler of notebook 04 on the shipped pixel DDPM: MNIST FID, confident share, NFE, wall time.

    python scripts/benchmark_samplers.py --threads 2                     # the full table, 1,000 samples per run
    python scripts/benchmark_samplers.py --num-samples 200 --samplers ddim unipc --steps 5 10
    python scripts/benchmark_samplers.py --samplers dpm_solver++/unclipped ddim/leading --steps 10 20 --ddpm-steps 0

Runs each sampler of ``course_utils.samplers.make_scheduler`` at each step count (default 5, 10, 20, 50, 100,
plus DDPM with 1,000 steps), or a variant of one (``VARIANTS``: one setting changed, such as no clipping of
x0-hat or "leading" timesteps), on ``--num-samples`` digits, and measures them against a fixed set of real MNIST
test digits of the same size, next to the data floor (FID of real against real digits at that size).

Writes ``docs/sampler_table.json`` (every measured number, with the settings and the checkpoint's SHA-256)
and ``docs/sampler_table.md`` (a markdown table), both atomically, after *every* run: interrupt it at any
time and run the same command again to continue; runs already measured with the same checkpoint, sample
count, seed and batch size are kept. ``--fresh`` starts over. Timings depend on the machine and its load;
they are recorded, never checked.
"""
from __future__ import annotations

import argparse
import platform
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from course_utils.ddpm import load_ddpm  # noqa: E402
from course_utils.metrics import load_classifier, mnist_fid, real_feature_sets  # noqa: E402
from course_utils.samplers import (SAMPLERS, make_scheduler,  # noqa: E402
                                   sample_with_scheduler)
# scripts/ is on sys.path: it holds this script
from reports import (commands_text, measure_samples, measured_runs, parse_with_outputs, publish,  # noqa: E402
                     reproduce_command)
from resumable import integer_in  # noqa: E402

DEFAULT_STEPS = [5, 10, 20, 50, 100]
KARRAS = ("euler_karras", "heun_karras")
# Variants of the samplers (sampler, make_scheduler settings), each changing one choice of make_scheduler, to
# measure what that choice is worth. DDIM with eta = 1 is not among them: it is the "ddpm" sampler itself
# (Song et al. 2021, section 4.1: eta = 1 gives DDPM's posterior variance, diffusers' "fixed_small").
VARIANTS = {
    "ddpm/leading": ("ddpm", {"timestep_spacing": "leading"}),  # first step t = 1000 - 1000/N, not 999
    "ddim/leading": ("ddim", {"timestep_spacing": "leading"}),
    "dpm_solver++/unclipped": ("dpm_solver++", {"clip": False}),  # no thresholding of x0-hat
    "dpm_solver++/last-at-sigma-min": ("dpm_solver++", {"final_sigmas_type": "sigma_min"}),  # stops short of 0
    "dpm_solver++/sde": ("dpm_solver++", {"algorithm_type": "sde-dpmsolver++"}),  # Lu et al. 2022, eq. 9 SDE
    "unipc/unclipped": ("unipc", {"clip": False}),
}


def scheduler_for(name: str, prediction_type: str):
    """The scheduler of a sampler of ``SAMPLERS`` or of a variant of ``VARIANTS``."""
    sampler, settings = VARIANTS.get(name, (name, {}))
    return make_scheduler(sampler, prediction_type=prediction_type, **settings)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num-samples", type=integer_in(2, 5000), default=1000,
                        help="digits per run (2 to 5000, default 1000)")
    parser.add_argument("--samplers", nargs="+", default=list(SAMPLERS), metavar="NAME",
                        help=f"samplers to run (default all: {' '.join(SAMPLERS)}), or variants of them: "
                             f"{' '.join(VARIANTS)}")
    parser.add_argument("--steps", nargs="+", type=integer_in(1, 1000), default=DEFAULT_STEPS,
                        help="step counts (default 5 10 20 50 100)")
    parser.add_argument("--ddpm-steps", type=integer_in(0, 1000), default=1000,
                        help="one extra DDPM run with this many steps, the reference (default 1000; 0: none)")
    parser.add_argument("--threads", type=integer_in(1, 256), default=2, help="CPU threads (default 2)")
    parser.add_argument("--batch-size", type=integer_in(1, 100_000), default=250, help="images per network call (default 250)")
    parser.add_argument("--seed", type=integer_in(0, 2**32 - 1), default=0)
    args = parse_with_outputs(parser, argv, "sampler_table", fresh=True)
    if not 2 <= args.num_samples <= 5000:
        parser.error(f"--num-samples must be in [2, 5000], got {args.num_samples}")
    unknown = [name for name in args.samplers if name not in SAMPLERS and name not in VARIANTS]
    if unknown:
        parser.error(f"--samplers must be drawn from {' '.join(SAMPLERS)} or the variants {' '.join(VARIANTS)}, "
                     f"got {' '.join(unknown)}")
    if any(not 1 <= steps <= 1000 for steps in args.steps) or not 0 <= args.ddpm_steps <= 1000:
        parser.error(f"--steps and --ddpm-steps must be in [1, 1000] (--ddpm-steps 0: none), got {args.steps}, {args.ddpm_steps}")
    if any(name in KARRAS for name in args.samplers) and min(args.steps) < 2:
        parser.error("--steps must be at least 2 for the Karras samplers (euler_karras, heun_karras)")
    if args.threads < 1 or args.batch_size < 1:
        parser.error("--threads and --batch-size must be positive")
    return args


def planned_runs(args) -> list[tuple[str, int]]:
    runs = [(name, steps) for name in args.samplers for steps in sorted(set(args.steps))]
    if args.ddpm_steps and ("ddpm", args.ddpm_steps) not in runs:
        runs.append(("ddpm", args.ddpm_steps))
    return runs


def run_key(name: str, steps: int) -> str:
    return f"{name}/{steps}"


def warm_up(model, names, args) -> None:
    """Import every scheduler and run the network once, so that the first timed run pays no start-up cost."""
    for name in set(names):
        scheduler_for(name, "epsilon")
    with torch.no_grad():
        model(torch.randn(min(args.batch_size, args.num_samples), 1, 28, 28), torch.tensor([500]))


def measure(model, prediction_type: str, classifier, reference, name: str, steps: int, args) -> dict:
    """Sample ``args.num_samples`` digits in batches from one generator and measure them."""
    def draw(count: int, generator: torch.Generator) -> tuple[torch.Tensor, int]:
        scheduler = scheduler_for(name, prediction_type)
        return sample_with_scheduler(model, scheduler, count, steps, generator, progress=False)
    measured = measure_samples(draw, classifier, reference, args.num_samples, args.batch_size, args.seed,
                               f"{name} {steps} steps")
    return {"sampler": name, "steps": steps, **measured, "threads": args.threads}


def markdown_table(table: dict) -> str:
    settings = table["settings"]
    threads = sorted({run.get("threads", settings["threads"]) for run in table["runs"].values()} or {settings["threads"]})
    lines = [
        "# Sampler comparison on the shipped pixel DDPM",
        "",
        f"Generated by {commands_text(table)} (`scripts/benchmark_samplers.py`; notebook 04 explains every column).",
        f"Checkpoint `data/ddpm_mnist.safetensors` (SHA-256 `{settings['checkpoint_sha256'][:12]}...`, "
        f"{settings['checkpoint_steps']:,} training steps); {settings['num_samples']:,} samples per run, seed "
        f"{settings['seed']}; MNIST FID against {settings['num_samples']:,} real test digits.",
        "",
        f"**Data floor** (FID of {settings['num_samples']:,} real digits against another {settings['num_samples']:,}): "
        f"**{table['data_floor_fid']:.2f}**. Compare FIDs with it and with each other, at this sample count only.",
        "",
        "| sampler | steps | NFE | MNIST FID | confident share | ms / image |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    order = {name: i for i, name in enumerate((*SAMPLERS, *VARIANTS))}
    for run in sorted(table["runs"].values(), key=lambda r: (order[r["sampler"]], r["steps"])):
        lines.append(f"| {run['sampler']} | {run['steps']} | {run['nfe']} | {run['mnist_fid']:.2f} | "
                     f"{run['confident_share']:.3f} | {run['ms_per_image']:.1f} |")
    lines += [
        "",
        f"Wall time per image on {'/'.join(map(str, threads))} CPU thread(s) of {settings['machine']}, batches of "
        f"{settings['batch_size']}; it depends on the machine and its load (NFE does not).",
        "",
    ]
    return "\n".join(lines)


def write_outputs(table: dict, args) -> str:
    """Write the JSON and markdown tables, and the markdown into README.md between the sampler-table markers."""
    text = markdown_table(table)
    publish(table, text, args.json, args.markdown, "sampler-table")
    return text


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    model, _, manifest = load_ddpm()
    classifier = load_classifier()
    settings = {
        "num_samples": args.num_samples, "seed": args.seed, "batch_size": args.batch_size, "threads": args.threads,
        "checkpoint_sha256": manifest["sha256"], "checkpoint_steps": manifest["steps"],
        "prediction_type": manifest["config"]["prediction_type"],
        "machine": platform.processor() or platform.machine(),
        "command": reproduce_command("benchmark_samplers.py", argv),
    }
    same = ("num_samples", "seed", "batch_size", "checkpoint_sha256")
    table = {"settings": settings, "runs": measured_runs(args.json, settings, same, args.fresh)}
    reference, other = real_feature_sets(classifier, args.num_samples, seed=args.seed)
    table["data_floor_fid"] = round(mnist_fid(reference, other), 3)
    print(f"data floor at {args.num_samples} samples: FID {table['data_floor_fid']:.2f}")
    todo = [(name, steps) for name, steps in planned_runs(args) if run_key(name, steps) not in table["runs"]]
    warm_up(model, [name for name, _ in todo] or ["ddim"], args)
    for name, steps in todo:
        run = measure(model, manifest["config"]["prediction_type"], classifier, reference, name, steps, args)
        table["runs"][run_key(name, steps)] = {**run, "command": settings["command"]}
        write_outputs(table, args)
        print(f"{name:>14} {steps:>5} steps  NFE {run['nfe']:>5}  FID {run['mnist_fid']:8.2f}  "
              f"confident {run['confident_share']:.3f}  {run['ms_per_image']:8.1f} ms/image", flush=True)
    print(write_outputs(table, args))
    print(f"wrote {args.markdown} and {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
