#!/usr/bin/env python
"""Measure training recipes at equal images seen: MNIST FID and confident share of each checkpoint of a study.

    python scripts/train_ddpm.py --steps 1200 --batch-size 128 --threads 1 \\
        --extra-ema-decays 0.99,0.995,0.998 --run-dir runs/study/v_b128 --out runs/study/v_b128.safetensors
    python scripts/compare_recipes.py runs/study/*.safetensors --samplers ddim/20 --threads 2
    python scripts/compare_recipes.py runs/study/v_b128.safetensors --samplers ddpm/100 dpm_solver++/10

Each checkpoint (a ``.safetensors`` written by ``scripts/train_ddpm.py``, with its ``.json`` manifest beside
it) is sampled with each ``SAMPLER/STEPS``: the diffusers samplers of ``course_utils.samplers`` for a
diffusion model, ``euler`` or ``heun`` (``course_utils.flow``) for a flow model; a sampler that does not fit
the checkpoint's objective is skipped. The recipe (target, time sampling, loss weighting, batch, EMA decay,
images seen) is read from the manifest. Every run is written to ``docs/training_recipes.json`` and
``docs/training_recipes.md`` as soon as it is measured; rerunning continues (a run is identified by the
checkpoint's SHA-256, the sampler, the sample count and the seed).
"""
from __future__ import annotations

import argparse
import platform
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from course_utils.checkpoints import images_seen  # noqa: E402
from course_utils.flow import SAMPLERS as FLOW_SAMPLERS  # noqa: E402
from course_utils.flow import number_of_evaluations, sample_flow  # noqa: E402
from course_utils.metrics import load_classifier, mnist_fid, real_feature_sets  # noqa: E402
from course_utils.samplers import SAMPLERS, make_scheduler, sample_with_scheduler  # noqa: E402
from course_utils.unet import load_tiny_unet  # noqa: E402
from reports import (measure_samples, measured_runs, output_path_problem, parse_with_outputs,  # noqa: E402
                     publish, reproduce_command)
from resumable import exported_file_problem, integer_in  # noqa: E402


def sampler_run(text: str) -> tuple[str, int]:
    """An argparse ``type``: ``NAME/STEPS``, e.g. ``ddim/20`` or ``euler/10``."""
    name, _, steps = text.partition("/")
    if name not in SAMPLERS + FLOW_SAMPLERS or not steps.isdigit() or not 1 <= int(steps) <= 1000:
        raise argparse.ArgumentTypeError(
            f"must be NAME/STEPS with NAME one of {', '.join(SAMPLERS + FLOW_SAMPLERS)} and STEPS in [1, 1000], "
            f"got {text!r}")
    return name, int(steps)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoints", nargs="+", type=Path, help="the .safetensors files to measure")
    parser.add_argument("--samplers", nargs="+", type=sampler_run, default=[("ddim", 20), ("euler", 20)],
                        metavar="NAME/STEPS", help="default ddim/20 (diffusion) and euler/20 (flow)")
    parser.add_argument("--num-samples", type=integer_in(2, 5000), default=1000)
    parser.add_argument("--seed", type=integer_in(0), default=0)
    parser.add_argument("--threads", type=integer_in(1, 256), default=2)
    parser.add_argument("--batch-size", type=integer_in(1), default=250)
    parser.add_argument("--document", type=Path, default=ROOT / "docs" / "training_on_a_cpu.md",
                        help="the page whose training-recipes block receives the table")
    args = parse_with_outputs(parser, argv, "training_recipes")  # --json and --markdown, checked
    problem = output_path_problem("--document", args.document)
    if problem:
        parser.error(problem)
    for path in args.checkpoints:
        rebuild = "export one with python scripts/train_ddpm.py --out NAME.safetensors"
        problem = exported_file_problem("checkpoints", path, rebuild)
        if problem:
            parser.error(problem)
    return args


def load_checkpoint(path: Path):
    """The UNet of a checkpoint (checked against its manifest), its stored configuration and manifest."""
    model, manifest = load_tiny_unet(path.stem, path.parent)
    return model, manifest["config"], manifest


def recipe(manifest: dict, config: dict) -> dict:
    """What defines a checkpoint's training, read from its manifest."""
    return {
        "objective": config.get("objective", "diffusion"), "target": config.get("prediction_type", "velocity"),
        "time_sampling": manifest.get("time_sampling", "uniform"), "snr_gamma": manifest.get("snr_gamma"),
        "batch_size": manifest["batch_size"], "steps": manifest["steps"], "ema_decay": manifest["ema_decay"],
        "effective_ema_decay": round(effective_decay(manifest["ema_decay"], manifest["steps"]), 4),
        "images_seen": images_seen(manifest),
    }


def effective_decay(decay: float, updates: int) -> float:
    """The decay the EMA used at its last update: min(decay, (1 + n) / (10 + n)) after n updates
    (``course_utils.ddpm.EMA``'s warm-up). In a short run the warm-up caps every long decay at the same
    value, about 1 - 9 / n, an average over roughly the last 11% of training."""
    return min(decay, (1 + updates) / (10 + updates))


def sampler_draw(model, config: dict, name: str, steps: int):
    """``draw(count, generator) -> (images, NFE per image)`` for ``reports.measure_samples``: the flow samplers
    for a flow checkpoint, a ``diffusers`` scheduler of the checkpoint's prediction type for a DDPM."""
    def draw(count: int, generator: torch.Generator) -> tuple[torch.Tensor, int]:
        if name in FLOW_SAMPLERS:
            images = sample_flow(model, count, steps, generator, sampler=name, progress=False)
            return images.clamp(-1, 1), number_of_evaluations(steps, name)
        scheduler = make_scheduler(name, prediction_type=config["prediction_type"])
        return sample_with_scheduler(model, scheduler, count, steps, generator, progress=False)
    return draw


def markdown_table(table: dict) -> str:
    settings = table["settings"]
    lines = [
        "# Training recipes at equal images seen",
        "",
        f"Measured by `scripts/compare_recipes.py` ({settings['num_samples']:,} samples per run, seed "
        f"{settings['seed']}, MNIST FID against {settings['num_samples']:,} real test digits; data floor "
        f"**{table['data_floor_fid']:.2f}**). Each row is one EMA of one training run; the runs' commands are "
        f"in their manifests and listed below.",
        "",
        "| objective | target | time sampling | min-SNR | batch | images | EMA decay (at the end) | sampler | NFE "
        "| FID | confident |",
        "|---|---|---|---:|---:|---:|---:|---|---:|---:|---:|",
    ]
    rows = sorted(table["runs"].values(), key=lambda r: (r["objective"], r["sampler"], r["steps_sampled"],
                                                         r["checkpoint"], r["ema_decay"]))
    for run in rows:
        gamma = "-" if run["snr_gamma"] is None else f"{run['snr_gamma']:g}"
        lines.append(f"| {run['objective']} | {run['target']} | {run['time_sampling']} | {gamma} | "
                     f"{run['batch_size']} | {run['images_seen'] / 1e3:.0f}k | {run['ema_decay']} "
                     f"({run['effective_ema_decay']}) | "
                     f"{run['sampler']}-{run['steps_sampled']} | {run['nfe']} | {run['mnist_fid']:.2f} | "
                     f"{run['confident_share']:.3f} |")
    lines += ["", "Training commands:", ""]
    lines += sorted({f"- `{run['command']}`" for run in table["runs"].values()})
    lines += ["", "Measured with:", ""]
    lines += sorted({f"- `{run['measured_by']}`" for run in table["runs"].values()})
    lines += ["", f"On {settings['machine']}.", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    classifier = load_classifier()
    settings = {"num_samples": args.num_samples, "seed": args.seed,
                "machine": platform.processor() or platform.machine(),
                "command": reproduce_command("compare_recipes.py", argv)}
    table = {"settings": settings, "runs": measured_runs(args.json, settings, ("num_samples", "seed"))}
    reference, other = real_feature_sets(classifier, args.num_samples, seed=args.seed)
    table["data_floor_fid"] = round(mnist_fid(reference, other), 3)
    for path in args.checkpoints:
        model, config, manifest = load_checkpoint(path)
        is_flow = config.get("objective") == "flow"
        for name, steps in args.samplers:
            key = f"{manifest['sha256'][:16]}/{name}/{steps}"
            if (name in FLOW_SAMPLERS) != is_flow or key in table["runs"]:
                continue
            measured = measure_samples(sampler_draw(model, config, name, steps), classifier, reference,
                                       args.num_samples, args.batch_size, args.seed, f"{name}/{steps}")
            table["runs"][key] = {
                "checkpoint": path.name, **recipe(manifest, config), "sampler": name, "steps_sampled": steps,
                **measured, "command": manifest["command"], "measured_by": settings["command"],
            }
            publish(table, markdown_table(table), args.json, args.markdown, "training-recipes",
                    documents=(args.document,))
            print(f"{path.name:>32} {name}/{steps}: FID {measured['mnist_fid']:7.2f} confident "
                  f"{measured['confident_share']:.3f} ({measured['ms_per_image']:.1f} ms/image)", flush=True)
    print(markdown_table(table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
