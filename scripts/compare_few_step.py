#!/usr/bin/env python
"""Few-step generation measured in one run (notebook 10): the flow model, its reflowed model (2-rectified flow) and
the DDPM with its best few-step samplers, at the same small numbers of network evaluations (NFE).

    python scripts/compare_few_step.py --threads 1                 # 1,000 samples per run, about 4 min of one core
    python scripts/compare_few_step.py --num-samples 200 --nfe 1 2 --ddpm-samplers unipc

For each NFE in --nfe (default 1 2 4 8): the flow model (data/flow_mnist) and the reflowed model (data/reflow_mnist)
with Euler steps on uniform sigmas, and with --student its one-step student (``train_reflow.py --time-sampling
one-step``); with --shift S > 1 also the reflowed model and the student on Stable Diffusion 3's shifted grid
(``flow.flow_sigmas(n, S)``: at 2 steps the middle level S / (1 + S), e.g. 0.9 for S = 9), and the DDPM (data/ddpm_mnist) with each of --ddpm-samplers (default UniPC and
DPM-Solver++, the best of notebook 04 at 10 and 20 steps; x0-hat clipped, trailing timesteps). Then the flow model
at --reference-nfe (default 20) with Euler, with Heun at the nearest odd NFE at or below it and with the stochastic
ancestral sampler (``flow.ancestral_step``): the flow model's best at the budget the acceptance criterion compares
with. Each run: MNIST FID against --num-samples real test digits
(and the data floor), confident share, wall time per image. Then the straightness of both flow models' paths
(``flow.velocity_straightness`` and ``reflow.x0_drift``, --straightness-steps Euler steps), and what reflow cost
(the pairs' and the training's manifests) against what it saves per image.

Writes ``docs/few_step.json``, ``docs/few_step.md`` and the README's ``few-step`` block (when README.md has its
markers) after every run; runs already measured with the same checkpoints and settings are kept (``--fresh``
starts over). Timings depend on the machine and its load; they are recorded, never checked.
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

from course_utils.checkpoints import lineage  # noqa: E402
from course_utils.data import DATA_DIR  # noqa: E402
from course_utils.ddpm import load_ddpm  # noqa: E402
from course_utils.flow import (flow_sigmas, number_of_evaluations, sample_flow, steps_for_evaluations,  # noqa: E402
                               velocity_straightness)
from course_utils.metrics import load_classifier, mnist_fid, real_feature_sets  # noqa: E402
from course_utils.reflow import HELD_OUT_SEED, load_flow_file, x0_drift  # noqa: E402
from course_utils.samplers import (SAMPLERS, make_scheduler,  # noqa: E402
                                   sample_with_scheduler)
from reports import (commands_text, measure_samples, measured_runs, parse_with_outputs, publish,  # noqa: E402
                     relative, reproduce_command)
from resumable import exported_file_problem, in_range, integer_in  # noqa: E402

KEY, HEADING = "few-step", "Few-step generation: reflow against the flow model and the DDPM"
FEW_STEP_SAMPLERS = tuple(name for name in SAMPLERS if name not in ("ddpm", "euler_karras", "heun_karras"))
ACCEPTANCE = {"fid_factor": 2.0, "reflow_nfe": 2, "budget": 20, "one_step_confident_share": 0.8}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num-samples", type=integer_in(2, 5000), default=1000,
                        help="digits per run (2 to 5000, default 1000)")
    parser.add_argument("--nfe", nargs="+", type=integer_in(1, 1000), default=[1, 2, 4, 8],
                        help="network evaluations compared (default 1 2 4 8)")
    parser.add_argument("--reference-nfe", type=integer_in(0, 1000), default=20,
                        help="the flow model's reference budget, Euler, Heun and ancestral (default 20; 0: none)")
    parser.add_argument("--ddpm-samplers", nargs="*", choices=FEW_STEP_SAMPLERS, default=["unipc", "dpm_solver++"],
                        help="the DDPM's samplers (default unipc dpm_solver++; none: no DDPM runs)")
    parser.add_argument("--flow", type=Path, default=DATA_DIR / "flow_mnist.safetensors")
    parser.add_argument("--reflow", type=Path, default=DATA_DIR / "reflow_mnist.safetensors")
    parser.add_argument("--ddpm", type=Path, default=DATA_DIR / "ddpm_mnist.safetensors")
    parser.add_argument("--student", type=str, default="none",
                        help="a one-step student of the reflowed model (default none: no student rows)")
    parser.add_argument("--shift", type=in_range(1, 100), default=1.0,
                        help="also sample the reflowed model (and the student) on sigmas shifted by S "
                             "(default 1: uniform only)")
    parser.add_argument("--straightness-samples", type=integer_in(1, 100_000), default=256)
    parser.add_argument("--straightness-steps", type=integer_in(2, 1000), default=20)
    parser.add_argument("--threads", type=integer_in(1, 256), default=2)
    parser.add_argument("--batch-size", type=integer_in(1, 100_000), default=250)
    parser.add_argument("--seed", type=integer_in(0, 2**32 - 1), default=HELD_OUT_SEED,
                        help=f"noise and reference seed (default {HELD_OUT_SEED:,}: reflow.HELD_OUT_SEED, noise "
                             "the reflowed model and its student never trained on; their pairs used seeds 0-99)")
    args = parse_with_outputs(parser, argv, "few_step", fresh=True)
    args.student = None if args.student.lower() == "none" else Path(args.student)
    inputs = {"--flow": (args.flow, "train_ddpm.py --objective flow"),
              "--reflow": (args.reflow, "train_reflow.py"), "--ddpm": (args.ddpm, "train_ddpm.py"),
              "--student": (args.student, "train_reflow.py --time-sampling one-step")}
    if args.student is None:
        del inputs["--student"]
    if not args.ddpm_samplers:
        del inputs["--ddpm"]
    for option, (path, script) in inputs.items():
        rebuild = f"export one with python scripts/{script}, which writes both"
        problem = exported_file_problem(option, path, rebuild)
        if problem:
            parser.error(problem)
    return args


def planned_runs(args) -> list[tuple[str, int]]:
    few_step = ("reflow", *(("student",) if args.student else ()))
    samplers = ("euler", *(("euler-shifted",) if args.shift > 1 else ()))
    runs = [(method, nfe) for nfe in sorted(set(args.nfe))
            for method in ("flow euler", *(f"{kind} {sampler}" for kind in few_step for sampler in samplers
                                           if not (nfe == 1 and sampler == "euler-shifted")),  # one step: no grid
                           *(f"ddpm {name}" for name in args.ddpm_samplers))]
    if args.reference_nfe:
        runs.append(("flow euler", args.reference_nfe))
        heun = args.reference_nfe if args.reference_nfe % 2 else args.reference_nfe - 1
        if heun >= 3:
            runs.append(("flow heun", heun))
        runs.append(("flow ancestral", args.reference_nfe))
    return list(dict.fromkeys(runs))


def sample(method: str, nfe: int, models: dict, shift: float, count: int,
           generator: torch.Generator) -> tuple[torch.Tensor, int]:
    """``count`` digits in [-1, 1] from ``method`` at ``nfe`` network evaluations, and the NFE spent
    ("... euler-shifted": Euler on the sigmas shifted by ``shift``)."""
    kind, sampler = method.split(" ", 1)
    if kind in ("flow", "reflow", "student"):
        grid_shift = shift if sampler == "euler-shifted" else 1.0
        sampler = sampler.removesuffix("-shifted")
        steps = steps_for_evaluations(nfe, sampler)
        images = sample_flow(models[kind], count, steps, generator, sampler=sampler, shift=grid_shift,
                             progress=False)
        return images.clamp(-1, 1), number_of_evaluations(steps, sampler)
    ddpm, prediction_type = models["ddpm"]
    scheduler = make_scheduler(sampler, prediction_type=prediction_type)
    return sample_with_scheduler(ddpm, scheduler, count, nfe, generator, progress=False)


def count_text(value) -> str:
    """A count with thousands separators; anything else (the "?" of a value an older manifest lacks) as it is."""
    return f"{value:,}" if isinstance(value, int) else str(value)


def steps_text(steps) -> str:
    """The training steps of each stage, "8,000 + 2,000" (a single count, or "?", as it is)."""
    return " + ".join(count_text(n) for n in steps) if isinstance(steps, list) else count_text(steps)


def threads_text(threads) -> str:
    return "/".join(map(str, threads)) if isinstance(threads, list) else str(threads)


def warm_up(models: dict, args) -> None:
    """Build every scheduler and run each network once, so that the first timed run pays no start-up cost."""
    for name in args.ddpm_samplers:
        make_scheduler(name, prediction_type=models["ddpm"][1])
    with torch.no_grad():
        for model in (models["flow"], models["reflow"], *((models["student"],) if "student" in models else ()),
                      *((models["ddpm"][0],) if "ddpm" in models else ())):
            model(torch.zeros(min(args.batch_size, args.num_samples), 1, 28, 28), torch.full((1,), 500.0))


def measure(method: str, nfe: int, models: dict, classifier, reference, args) -> dict:
    draw = partial(sample, method, nfe, models, args.shift)
    return {"method": method, **measure_samples(draw, classifier, reference, args.num_samples, args.batch_size,
                                                args.seed)}


def measure_straightness(models: dict, args) -> dict:
    """Both flow models' Euler paths from the same noise: Liu et al.'s normalised S and the x0-hat drift."""
    steps, levels = args.straightness_steps, flow_sigmas(args.straightness_steps)
    result = {"samples": args.straightness_samples, "steps": steps}
    for kind in ("flow", "reflow"):
        _, path = sample_flow(models[kind], args.straightness_samples, steps, torch.Generator().manual_seed(args.seed),
                              return_trajectory=True, progress=False)
        result[kind] = {"velocity_straightness": round(velocity_straightness(path, levels).mean().item(), 4),
                        "x0_drift": round(x0_drift(path, levels).mean().item(), 4)}
    return result


def training_stages(reflow_manifest: dict) -> list[dict]:
    """The reflow runs behind the shipped weights, first to last (``checkpoints.lineage``): a run continued from
    another reflow run (a cool-down) records it under ``init_from`` with ``coupling: reflow``, back to the flow
    model it started from, which is not a reflow stage."""
    stages = lineage(reflow_manifest)
    first = next(i for i, stage in enumerate(stages) if stage is reflow_manifest or stage.get("coupling") == "reflow")
    return stages[first:]


def costs(reflow_manifest: dict) -> dict:
    """What the reflowed model cost, from its manifest: the pairs' sampling and the training, every stage."""
    pairs = reflow_manifest.get("pairs", {})
    stages = training_stages(reflow_manifest)
    minutes = [stage.get("wall_time_minutes") for stage in stages]
    return {"pairs": pairs.get("num_pairs"), "pair_nfe": pairs.get("nfe"), "pair_sampler": pairs.get("sampler"),
            "pair_network_evaluations": pairs.get("network_evaluations"), "pair_minutes":
            round(pairs["seconds"] / 60, 1) if pairs.get("seconds") is not None else None,
            "pair_threads": pairs.get("threads"), "pair_quality": pairs.get("quality"),
            "training_steps": [stage.get("steps") for stage in stages], "batch_size": reflow_manifest.get("batch_size"),
            "training_minutes": round(sum(minutes), 1) if None not in minutes else None,
            "training_threads": reflow_manifest.get("threads"), "time_sampling": reflow_manifest.get("time_sampling")}


def acceptance(table: dict) -> dict:
    """Issue 34's criteria on this table: the reflowed model (or its one-step student, which is trained from it)
    at 2 NFE within twice the flow model's best FID at <= 20 NFE, and its 1-NFE samples mostly digits (confident
    share >= 0.8). The best 2-NFE run and the best 1-NFE run of the reflowed family are reported, by method."""
    runs = table["runs"].values()
    flow_best = min((run["mnist_fid"] for run in runs if run["method"].startswith("flow")
                     and run["nfe"] <= ACCEPTANCE["budget"]), default=None)
    family = [run for run in runs if run["method"].split(" ")[0] in ("reflow", "student")]
    two = min((run for run in family if run["nfe"] == ACCEPTANCE["reflow_nfe"]), key=lambda r: r["mnist_fid"],
              default=None)
    one = max((run for run in family if run["nfe"] == 1), key=lambda r: r["confident_share"], default=None)
    result = {"flow_best_fid_within_budget": flow_best, **ACCEPTANCE}
    if flow_best is not None and two is not None:
        result.update(reflow_2nfe_fid=two["mnist_fid"], reflow_2nfe_method=two["method"],
                      fid_met=two["mnist_fid"] <= ACCEPTANCE["fid_factor"] * flow_best)
    if one is not None:
        result.update(reflow_1nfe_confident_share=one["confident_share"], reflow_1nfe_method=one["method"],
                      one_step_met=one["confident_share"] >= ACCEPTANCE["one_step_confident_share"])
    return result


def best_two_nfe_method(table: dict) -> str:
    """The reflowed family's run that :func:`acceptance` found best at 2 NFE (the reflowed model's Euler before
    the acceptance is computed)."""
    return table.get("acceptance", {}).get("reflow_2nfe_method", "reflow euler")


def break_even(table: dict) -> dict | None:
    """Images after which reflow's cost (pair sampling plus training, wall time) is repaid by sampling at 2 NFE
    instead of with the flow model's Euler sampler at the reference budget, at this run's ms per image."""
    runs, reference = table["runs"], table["settings"]["reference_nfe"]
    best_two = best_two_nfe_method(table)
    # the student's cost includes the reflowed model's (its lineage); the reflowed model's alone otherwise
    cost = table.get("student_costs" if best_two.startswith("student") else "costs", {})
    flow_run, reflow_run = runs.get(f"flow euler/{reference}"), runs.get(f"{best_two}/2")
    if not (flow_run and reflow_run and cost.get("pair_minutes") is not None and cost.get("training_minutes") is not None):
        return None
    saved_ms = flow_run["ms_per_image"] - reflow_run["ms_per_image"]
    minutes = cost["pair_minutes"] + cost["training_minutes"]
    return {"cost_minutes": round(minutes, 1), "saved_ms_per_image": round(saved_ms, 2),
            "images": int(60_000 * minutes / saved_ms) if saved_ms > 0 else None}


def summarise(table: dict) -> None:
    """Adds the acceptance and then the break-even, which prices the acceptance's best 2-NFE run."""
    table["acceptance"] = acceptance(table)
    table["break_even"] = break_even(table)


METHOD_NAMES = {"flow euler": ("flow", "Euler"), "flow heun": ("flow", "Heun"),
                "flow ancestral": ("flow", "ancestral (stochastic)"), "reflow euler": ("reflow", "Euler"),
                "reflow euler-shifted": ("reflow", "Euler, shifted sigmas"),
                "student euler": ("one-step student", "Euler"),
                "student euler-shifted": ("one-step student", "Euler, shifted sigmas"),
                "ddpm unipc": ("DDPM", "UniPC"), "ddpm dpm_solver++": ("DDPM", "DPM-Solver++ (2M)"),
                "ddpm ddim": ("DDPM", "DDIM")}


def markdown_table(table: dict) -> str:
    settings, runs = table["settings"], table["runs"]
    lines = [
        f"Generated by {commands_text(table)} (`scripts/compare_few_step.py`; notebook 10 reads it). The flow model "
        f"(`{settings['flow_file']}`, SHA-256 `{settings['flow_sha256'][:12]}...`), its reflowed model "
        f"(`{settings['reflow_file']}`, SHA-256 `{settings['reflow_sha256'][:12]}...`) and the DDPM"
        + (f" (`{settings['ddpm_file']}`, SHA-256 `{settings['ddpm_sha256'][:12]}...`)" if settings.get("ddpm_sha256") else "")
        + f", all notebook 03's `TinyUNet`. {settings['num_samples']:,} samples per run, seed {settings['seed']:,}"
        + (" (noise none of the models trained on: the reflow pairs' noise came from seeds 0-99)"
           if settings["seed"] >= HELD_OUT_SEED else
           " (the noise of the first reflow pairs, which flatters reflow)" if settings["seed"] < 100 else "")
        + f"; MNIST "
        f"FID against {settings['num_samples']:,} real test digits, data floor **{table['data_floor_fid']:.2f}**.",
        "",
        "| model | sampler | NFE | MNIST FID | confident share | ms / image |",
        "|---|---|---:|---:|---:|---:|",
    ]
    order = {method: i for i, method in enumerate(METHOD_NAMES)}
    for run in sorted(runs.values(), key=lambda r: (r["nfe"], order.get(r["method"], len(order)))):
        model, sampler = METHOD_NAMES.get(run["method"], run["method"].split(" ", 1))
        lines.append(f"| {model} | {sampler} | {run['nfe']} | {run['mnist_fid']:.2f} | {run['confident_share']:.3f} | "
                     f"{run['ms_per_image']:.1f} |")
    if "straightness" in table:
        s = table["straightness"]
        lines += ["", f"**Straightness** of the Euler paths from the same {s['samples']} noises, {s['steps']} steps "
                      f"(0 = straight at constant speed): Liu et al.'s normalised S, flow "
                      f"**{s['flow']['velocity_straightness']:.3f}**, reflow **{s['reflow']['velocity_straightness']:.3f}**; "
                      f"x0-hat drift, flow **{s['flow']['x0_drift']:.3f}**, reflow **{s['reflow']['x0_drift']:.3f}**."]
    cost = table.get("costs")
    if cost and cost.get("pairs"):
        cost = {key: "?" if value is None else value for key, value in cost.items()}  # not in an older manifest
        lines += ["", f"**Cost of reflow**: {count_text(cost['pairs'])} pairs at {cost['pair_nfe']} NFE "
                      f"({cost['pair_sampler']}), {count_text(cost['pair_network_evaluations'])} network evaluations, "
                      f"{cost['pair_minutes']} min on {threads_text(cost['pair_threads'])} thread(s); training "
                      f"{steps_text(cost['training_steps'])} steps of {cost['batch_size']} pairs ({cost['time_sampling']} "
                      f"noise levels), {cost['training_minutes']} min on {cost['training_threads']} thread(s)."]
    student = table.get("student_costs")
    if student and settings.get("student_file"):
        lines += ["", f"**The one-step student** (`{settings['student_file']}`, SHA-256 "
                      f"`{settings['student_sha256'][:12]}...`) continues the reflowed model with sigma = 1 only: "
                      f"training {steps_text(student['training_steps'])} steps in all, {student['training_minutes']} "
                      f"min on {student['training_threads']} thread(s), on the same pairs."]
    even = table.get("break_even")
    if even and even.get("images"):
        lines += ["", f"**Break-even**: sampling with {best_two_nfe_method(table)} at 2 NFE instead of the flow model's "
                      f"{settings['reference_nfe']} Euler steps saves {even['saved_ms_per_image']:.1f} ms per image here, "
                      f"so the {even['cost_minutes']} min of pairs and training behind it are repaid after about "
                      f"{even['images']:,} images."]
    if settings.get("shift", 1) > 1:
        lines += ["", f"*Shifted sigmas*: Stable Diffusion 3's grid sigma' = s sigma / (1 + (s - 1) sigma) with "
                      f"s = {settings['shift']:g} (at 2 NFE the middle level {settings['shift'] / (1 + settings['shift']):.2f})."]
    check = table.get("acceptance", {})
    if "fid_met" in check or "one_step_met" in check:
        parts = []
        if "fid_met" in check:
            parts.append(f"{best_two_nfe_method(table)} at 2 NFE FID {check['reflow_2nfe_fid']:.2f} against twice "
                         f"the flow model's best at "
                         f"<= {check['budget']} NFE ({check['flow_best_fid_within_budget']:.2f}): "
                         f"{'met' if check['fid_met'] else 'not met'}")
        if "one_step_met" in check:
            parts.append(f"{check.get('reflow_1nfe_method', 'reflow euler')} at 1 NFE confident share {check['reflow_1nfe_confident_share']:.3f} "
                         f"(>= {check['one_step_confident_share']:g}): "
                         f"{'met' if check['one_step_met'] else 'not met'}")
        lines += ["", "**The course's target**: " + "; ".join(parts) + "."]
    lines += ["", f"Wall time on {settings['threads']} CPU thread(s) of {settings['machine']}, batches of "
                  f"{settings['batch_size']}; it depends on the machine and its load (NFE does not).", ""]
    return "\n".join(lines)


def write_outputs(table: dict, args) -> str:
    text = markdown_table(table)
    publish(table, text, args.json, args.markdown, KEY, heading=HEADING)
    return text


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    flow, flow_manifest = load_flow_file(args.flow)
    reflow, reflow_manifest = load_flow_file(args.reflow)
    models = {"flow": flow, "reflow": reflow}
    if args.student:
        models["student"], student_manifest = load_flow_file(args.student)
    settings = {"num_samples": args.num_samples, "seed": args.seed, "batch_size": args.batch_size,
                "threads": args.threads, "reference_nfe": args.reference_nfe,
                "flow_file": relative(args.flow), "flow_sha256": flow_manifest["sha256"],
                "reflow_file": relative(args.reflow), "reflow_sha256": reflow_manifest["sha256"], "shift": args.shift,
                **({"student_file": relative(args.student), "student_sha256": student_manifest["sha256"]}
                   if args.student else {}),
                "machine": platform.processor() or platform.machine(),
                "command": reproduce_command("compare_few_step.py", argv)}
    if args.ddpm_samplers:
        ddpm, _, ddpm_manifest = load_ddpm(args.ddpm.stem, args.ddpm.parent)
        models["ddpm"] = (ddpm, ddpm_manifest["config"]["prediction_type"])
        settings.update(ddpm_file=relative(args.ddpm), ddpm_sha256=ddpm_manifest["sha256"])
    same = ("num_samples", "seed", "batch_size", "flow_sha256", "reflow_sha256", "shift",
            *(("ddpm_sha256",) if args.ddpm_samplers else ()), *(("student_sha256",) if args.student else ()))
    table = {"settings": settings, "runs": measured_runs(args.json, settings, same, args.fresh)}
    classifier = load_classifier()
    reference, other = real_feature_sets(classifier, args.num_samples, seed=args.seed)
    table["data_floor_fid"] = round(mnist_fid(reference, other), 3)
    table["costs"] = costs(reflow_manifest)
    if args.student:
        table["student_costs"] = costs(student_manifest)
    warm_up(models, args)
    for method, nfe in planned_runs(args):
        if f"{method}/{nfe}" in table["runs"]:
            continue
        run = measure(method, nfe, models, classifier, reference, args)
        table["runs"][f"{method}/{nfe}"] = {**run, "command": settings["command"]}
        summarise(table)
        write_outputs(table, args)
        print(f"{method:>18} NFE {run['nfe']:>4}  FID {run['mnist_fid']:7.2f}  confident {run['confident_share']:.3f}  "
              f"{run['ms_per_image']:6.1f} ms/image", flush=True)
    table["straightness"] = measure_straightness(models, args)
    summarise(table)
    print(write_outputs(table, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
