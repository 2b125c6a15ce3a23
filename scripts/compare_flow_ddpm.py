#!/usr/bin/env python
"""Flow matching against the DDPM, measured in one run (notebook 08): the shipped flow model
(data/flow_mnist) and the shipped pixel DDPM (data/ddpm_mnist, v-prediction), the same UNet trained on the
same number of images, sampled at the same numbers of network evaluations (NFE).

    python scripts/compare_flow_ddpm.py --threads 2            # 1,000 samples per run, about 20 minutes
    python scripts/compare_flow_ddpm.py --num-samples 200 --nfe 5 10

For each NFE in --nfe: the flow model with Euler, the DDPM with DDIM (notebook 04's deterministic sampler:
trailing timesteps, x0-hat clipped). For each NFE in --extra-nfe also: the flow model with Heun (2 NFE per
step but the last: the NFE shown is the one spent) and with Stable Diffusion 3's timestep shift 3, and the
DDPM with DPM-Solver++ (its best fast sampler at this budget in notebook 04), and both models with the
stochastic ancestral sampler (DDPM's step; for the flow model ``flow.ancestral_step``), also at
--reference-steps (default 100). Each run: MNIST FID against 1,000 real test digits (and the data floor),
confident share, wall time per image. Then the straightness of the sampling paths of both models
(``course_utils.flow.straightness``, the DDPM's DDIM path seen in flow coordinates).

Writes ``docs/flow_vs_ddpm.json`` and ``docs/flow_vs_ddpm.md`` and the README's ``flow-comparison`` block after
every run; runs already measured with the same checkpoints and settings are kept (``--fresh`` starts over).
``--write-manifest`` also records the flow model's runs as the "quality" of data/flow_mnist.json.
"""
from __future__ import annotations

import argparse
import platform
import sys
from functools import partial
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from course_utils.checkpoints import images_seen, load_manifest, write_json  # noqa: E402
from course_utils.data import DATA_DIR  # noqa: E402
from course_utils.ddpm import load_ddpm  # noqa: E402
from course_utils.flow import (flow_coordinates, load_flow, number_of_evaluations, sample_flow,  # noqa: E402
                               steps_for_evaluations, straightness)
from course_utils.metrics import load_classifier, mnist_fid, real_feature_sets  # noqa: E402
from course_utils.samplers import (make_scheduler, sample_ddim,  # noqa: E402
                                   sample_with_scheduler, sampling_timesteps)
from reports import (commands_text, measure_samples, measured_runs, parse_with_outputs, publish,  # noqa: E402
                     reproduce_command)
from resumable import integer_in  # noqa: E402

# method name -> (model, short description); the order of the table
METHODS = {
    "flow euler": ("flow", "Euler, uniform sigmas"),
    "flow heun": ("flow", "Heun, uniform sigmas"),
    "flow euler shift 3": ("flow", "Euler, sigmas shifted by 3 (SD3)"),
    "flow ancestral": ("flow", "ancestral (DDPM's stochastic step), uniform sigmas"),
    "ddpm ddim": ("ddpm", "DDIM, trailing, x0-hat clipped"),
    "ddpm dpm_solver++": ("ddpm", "DPM-Solver++ (2M), trailing"),
    "ddpm ancestral": ("ddpm", "DDPM ancestral, trailing"),
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num-samples", type=integer_in(2, 5000), default=1000,
                        help="digits per run (2 to 5000, default 1000)")
    parser.add_argument("--nfe", nargs="+", type=integer_in(1, 1000), default=[2, 5, 10, 20, 50, 100],
                        help="NFE for flow Euler and DDIM (default 2 5 10 20 50 100)")
    parser.add_argument("--extra-nfe", nargs="*", type=integer_in(1, 1000), default=[5, 10, 20],
                        help="NFE for flow Heun, flow with shift 3, DPM-Solver++ and both ancestral samplers "
                             "(default 5 10 20)")
    parser.add_argument("--reference-steps", type=integer_in(0, 1000), default=100,
                        help="ancestral steps of both models, the reference (0: none)")
    parser.add_argument("--straightness-samples", type=integer_in(1, 100_000), default=256)
    parser.add_argument("--straightness-steps", type=integer_in(1, 1000), default=100)
    parser.add_argument("--threads", type=integer_in(1, 256), default=2)
    parser.add_argument("--batch-size", type=integer_in(1, 100_000), default=250)
    parser.add_argument("--seed", type=integer_in(0, 2**32 - 1), default=0)
    parser.add_argument("--write-manifest", action="store_true",
                        help="record the flow model's runs in data/flow_mnist.json (its measured quality)")
    args = parse_with_outputs(parser, argv, "flow_vs_ddpm", fresh=True)
    if not 2 <= args.num_samples <= 5000:
        parser.error(f"--num-samples must be in [2, 5000], got {args.num_samples}")
    if any(not 1 <= n <= 1000 for n in args.nfe + args.extra_nfe) or not 0 <= args.reference_steps <= 1000:
        parser.error("--nfe and --extra-nfe must be in [1, 1000], --reference-steps in [0, 1000]")
    if args.threads < 1 or args.batch_size < 1 or args.straightness_samples < 1 or args.straightness_steps < 2:
        parser.error("--threads, --batch-size, --straightness-samples must be positive, --straightness-steps >= 2")
    return args


def planned_runs(args) -> list[tuple[str, int]]:
    runs = [(method, nfe) for nfe in sorted(set(args.nfe)) for method in ("flow euler", "ddpm ddim")]
    runs += [(method, nfe) for nfe in sorted(set(args.extra_nfe))
             for method in ("flow heun", "flow euler shift 3", "ddpm dpm_solver++")]
    stochastic = sorted(set(args.extra_nfe) | ({args.reference_steps} if args.reference_steps else set()))
    runs += [(method, nfe) for nfe in stochastic for method in ("flow ancestral", "ddpm ancestral")]
    return runs


def sample(method: str, nfe: int, models: dict, count: int, generator: torch.Generator) -> tuple[torch.Tensor, int]:
    """``count`` digits in [-1, 1] from ``method`` with a budget of ``nfe`` network evaluations, and the NFE spent."""
    flow, (ddpm, alpha_bar, target) = models["flow"], models["ddpm"]
    if method.startswith("flow"):
        sampler = {"flow heun": "heun", "flow ancestral": "ancestral"}.get(method, "euler")
        steps = steps_for_evaluations(nfe, sampler)  # Heun: 2 N - 1 evaluations for N steps
        shift = 3.0 if method.endswith("shift 3") else 1.0
        images = sample_flow(flow, count, steps, generator, sampler=sampler, shift=shift, progress=False)
        return images.clamp(-1, 1), number_of_evaluations(steps, sampler)
    if method == "ddpm ddim":
        return sample_ddim(ddpm, count, alpha_bar, nfe, generator, progress=False, prediction_type=target), nfe
    scheduler = make_scheduler("dpm_solver++" if method == "ddpm dpm_solver++" else "ddpm", prediction_type=target)
    return sample_with_scheduler(ddpm, scheduler, count, nfe, generator, progress=False)


def measure(method: str, nfe: int, models: dict, classifier, reference, args) -> dict:
    draw = partial(sample, method, nfe, models)
    return {"method": method, **measure_samples(draw, classifier, reference, args.num_samples, args.batch_size,
                                                args.seed)}


def measure_straightness(models: dict, args) -> dict:
    """Mean path length / endpoint distance of the flow model's Euler paths and of the DDPM's DDIM paths
    (unclipped, so that each step is exactly an Euler step in flow coordinates), both with the same steps."""
    flow, (ddpm, alpha_bar, target) = models["flow"], models["ddpm"]
    count, steps = args.straightness_samples, args.straightness_steps
    _, flow_path = sample_flow(flow, count, steps, torch.Generator().manual_seed(args.seed), return_trajectory=True,
                               progress=False)
    generator = torch.Generator().manual_seed(args.seed)
    start = torch.randn((count, 1, 28, 28), generator=torch.Generator().manual_seed(args.seed))
    _, frames = sample_ddim(ddpm, count, alpha_bar, steps, generator, clip=False, trajectory_every=1,
                            progress=False, prediction_type=target)
    first_t = sampling_timesteps(len(alpha_bar), steps)[0]  # DDIM's trailing timesteps start here
    ddim_path = [flow_coordinates(start, alpha_bar[first_t])[0]]
    ddim_path += [flow_coordinates(x, alpha_bar[t] if i < len(frames) - 1 else 1.0)[0] for i, (t, x) in enumerate(frames)]
    return {"samples": count, "steps": steps,
            "flow euler": round(straightness(flow_path).mean().item(), 4),
            "ddpm ddim": round(straightness(ddim_path).mean().item(), 4)}


def markdown_table(table: dict) -> str:
    settings, runs = table["settings"], table["runs"]
    lines = [
        f"Generated by {commands_text(table)} (`scripts/compare_flow_ddpm.py`; notebook 08 reads it). Both models are "
        f"notebook 03's `TinyUNet` (32/64/128, 1.44M parameters): flow matching (`data/flow_mnist`, SHA-256 "
        f"`{settings['flow_sha256'][:12]}...`, {settings['flow_images_seen']:,} training images) and the DDPM with "
        f"v-prediction (`data/ddpm_mnist`, SHA-256 `{settings['ddpm_sha256'][:12]}...`, "
        f"{settings['ddpm_images_seen']:,} training images). {settings['num_samples']:,} "
        f"samples per run, seed {settings['seed']}; MNIST FID against {settings['num_samples']:,} real test digits, "
        f"data floor **{table['data_floor_fid']:.2f}**.",
        "",
        "| model | sampler | NFE | MNIST FID | confident share | ms / image |",
        "|---|---|---:|---:|---:|---:|",
    ]
    order = {method: i for i, method in enumerate(METHODS)}
    for run in sorted(runs.values(), key=lambda r: (r["nfe"], order[r["method"]])):
        model, description = METHODS[run["method"]]
        lines.append(f"| {model} | {description} | {run['nfe']} | {run['mnist_fid']:.2f} | "
                     f"{run['confident_share']:.3f} | {run['ms_per_image']:.1f} |")
    if "straightness" in table:
        s = table["straightness"]
        lines += ["", f"**Straightness** (mean path length / distance between its ends, 1 = straight; "
                      f"{s['samples']} samples, {s['steps']} steps, in flow coordinates): flow Euler "
                      f"**{s['flow euler']:.3f}**, DDPM DDIM **{s['ddpm ddim']:.3f}**."]
    lines += ["", f"Wall time on {settings['threads']} CPU thread(s) of {settings['machine']}, batches of "
                  f"{settings['batch_size']}; it depends on the machine and its load (NFE does not).", ""]
    return "\n".join(lines)


def write_flow_quality(table: dict) -> None:
    """The flow model's runs of this comparison become the "quality" entry of its manifest."""
    manifest = load_manifest(DATA_DIR / "flow_mnist.safetensors")
    runs = {key: {"sampler": METHODS[run["method"]][1], "nfe": run["nfe"], "mnist_fid": run["mnist_fid"],
                  "confident_share": run["confident_share"]}
            for key, run in table["runs"].items() if METHODS[run["method"]][0] == "flow"}
    settings = table["settings"]
    manifest["quality"] = {"num_samples": settings["num_samples"], "seed": settings["seed"],
                           "data_floor_fid": table["data_floor_fid"], "runs": runs, "command": settings["command"]}
    write_json(DATA_DIR / "flow_mnist.json", manifest)
    print("updated data/flow_mnist.json")


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    flow, flow_manifest = load_flow()
    ddpm, alpha_bar, ddpm_manifest = load_ddpm()
    models = {"flow": flow, "ddpm": (ddpm, alpha_bar, ddpm_manifest["config"]["prediction_type"])}
    classifier = load_classifier()
    settings = {"num_samples": args.num_samples, "seed": args.seed, "batch_size": args.batch_size,
                "threads": args.threads, "flow_sha256": flow_manifest["sha256"], "ddpm_sha256": ddpm_manifest["sha256"],
                "flow_images_seen": images_seen(flow_manifest), "ddpm_images_seen": images_seen(ddpm_manifest),
                "machine": platform.processor() or platform.machine(),
                "command": reproduce_command("compare_flow_ddpm.py", argv)}
    same = ("num_samples", "seed", "batch_size", "flow_sha256", "ddpm_sha256")
    table = {"settings": settings, "runs": measured_runs(args.json, settings, same, args.fresh)}
    reference, other = real_feature_sets(classifier, args.num_samples, seed=args.seed)
    table["data_floor_fid"] = round(mnist_fid(reference, other), 3)
    for method, nfe in planned_runs(args):
        if f"{method}/{nfe}" in table["runs"]:
            continue
        run = measure(method, nfe, models, classifier, reference, args)
        table["runs"][f"{method}/{nfe}"] = {**run, "command": settings["command"]}
        publish(table, markdown_table(table), args.json, args.markdown, "flow-comparison",
                heading="Flow matching against the DDPM")
        print(f"{method:>20} NFE {run['nfe']:>4}  FID {run['mnist_fid']:7.2f}  confident {run['confident_share']:.3f}  "
              f"{run['ms_per_image']:6.1f} ms/image", flush=True)
    table["straightness"] = measure_straightness(models, args)
    if args.write_manifest:
        write_flow_quality(table)
    text = markdown_table(table)
    publish(table, text, args.json, args.markdown, "flow-comparison", heading="Flow matching against the DDPM")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
