#!/usr/bin/env python
"""Train the 2-rectified flow of notebook 10: notebook 03's UNet on the straight lines between the reflow pairs that
scripts/make_reflow_pairs.py drew with the flow model's ODE (``course_utils.reflow.reflow_loss``), starting from the
flow model's own weights (Lee et al. 2024, section 4: initialise from the pretrained model), and export its EMA
weights (data/reflow_mnist).

    python scripts/train_reflow.py --pairs runs/reflow_pairs/pairs.safetensors --steps 3000 --batch-size 128 \\
        --threads 1 --overwrite-shipped

Each step draws --batch-size pairs (with replacement) and one noise level per pair from a generator seeded with
(seed, step) (``resumable.step_generator``); noise levels follow Lee et al.'s U-shaped density by default
(``--time-sampling u-shaped``; ``uniform`` is Liu et al. 2022's, ``one-step`` trains only the step from pure noise,
a distillation into a one-step student). Resumable like scripts/train_ddpm.py (``scripts/resumable.py``): the
full state is saved to --run-dir every --save-every steps, and the same command continues from there; other
settings in the same --run-dir are refused.

The model and its EMA start from --init-from's weights (default data/flow_mnist.safetensors; ``none`` trains
from scratch); the optimizer starts afresh with a warm-up, and the EMA (decay --ema-decay) warms up as in a new
run (``ddpm.EMA``: decay min(d, (1 + n) / (10 + n)) after n updates), since the target has changed: the reflowed
field differs most from the flow model's near sigma = 1, where the flow model predicts a blur. The manifest records
the pairs file's SHA-256 and how the pairs were made (from their own manifest), the initial weights, images
(pairs) seen, wall time and machine.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from course_utils.checkpoints import (OVERWRITE_FLAG, images_seen, load_weights, save_weights, shipped_output_problem,  # noqa: E402
                                      write_json)
from course_utils.data import DATA_DIR  # noqa: E402
from course_utils.ddpm import EMA  # noqa: E402
from course_utils.flow import TIME_SCALE  # noqa: E402
from course_utils.reflow import LOSSES, TIME_SAMPLINGS, U_SHAPE, load_flow_file, reflow_loss  # noqa: E402
from course_utils.unet import TinyUNet, count_parameters  # noqa: E402
from reports import machine, relative, reproduce_command  # noqa: E402
from resumable import (  # noqa: E402
    TrainingRun, add_training_arguments, exported_file_problem, in_range, integer_in, learning_rate,
    optimizer_step, step_generator)

NAME = "reflow_mnist"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_training_arguments(parser, steps=3000, batch_size=128, lr=5e-4, warmup=250, ema_decay=0.999)
    parser.add_argument("--pairs", type=Path, default=ROOT / "runs" / "reflow_pairs" / "pairs.safetensors",
                        help="the pairs of scripts/make_reflow_pairs.py (a .safetensors with its .json manifest)")
    parser.add_argument("--init-from", type=str, default=str(DATA_DIR / "flow_mnist.safetensors"),
                        help="weights to start from (a flow model's .safetensors with its manifest; default the "
                             "shipped flow model), or 'none' to train from scratch")
    parser.add_argument("--time-sampling", choices=TIME_SAMPLINGS, default="u-shaped",
                        help="noise levels: u-shaped (Lee et al. 2024, default), uniform (Liu et al. 2022) or "
                             "one-step (sigma = 1 only: a one-step student)")
    parser.add_argument("--u-shape", type=in_range(0, 50, include_low=False), default=U_SHAPE,
                        help=f"the rate a of the U-shaped density (default {U_SHAPE:g}, Lee et al.'s)")
    parser.add_argument("--loss", choices=LOSSES, default="squared",
                        help="squared (Liu et al.) or pseudo-huber (Lee et al. 2024, section 4; reflow.pseudo_huber)")
    parser.add_argument("--channels", type=str, default="32,64,128",
                        help="UNet widths when training from scratch (--init-from none); else the initial model's")
    parser.add_argument("--decay-steps", type=integer_in(0), default=0,
                        help="cool the learning rate down linearly to 0 over the last N steps of --steps (default 0: "
                             "constant after the warm-up; a cool-down run continues from --init-from, see "
                             "docs/training_on_a_cpu.md)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--store-dtype", choices=("float32", "float16"), default="float16",
                        help="dtype of the exported EMA weights (default float16, as the other shipped models)")
    parser.add_argument("--run-dir", type=Path, default=ROOT / "runs" / NAME)
    parser.add_argument("--out", type=Path, default=DATA_DIR / f"{NAME}.safetensors",
                        help=f"default data/{NAME}.safetensors, the shipped model: {OVERWRITE_FLAG} is then needed")
    parser.add_argument(OVERWRITE_FLAG, action="store_true", help="allow --out to replace a shipped file in data/")
    args = parser.parse_args(argv)
    if args.out.suffix != ".safetensors" or args.out.is_dir():
        parser.error(f"--out must name a .safetensors file (its manifest goes beside it as .json), got {args.out}")
    if not args.out.parent.is_dir():
        parser.error(f"--out {args.out}: the folder {args.out.parent} does not exist")
    problem = shipped_output_problem("--out", args.out, args.overwrite_shipped)
    if problem:
        parser.error(problem)
    if args.decay_steps > args.steps:
        parser.error(f"--decay-steps must be at most --steps ({args.steps}), got {args.decay_steps}")
    rebuild = "make them with python scripts/make_reflow_pairs.py, which writes both"
    problem = exported_file_problem("--pairs", args.pairs, rebuild)
    if problem:
        parser.error(problem)
    args.init_from = None if args.init_from.lower() == "none" else Path(args.init_from)
    if args.init_from is not None:
        rebuild = "or 'none'; export one with python scripts/train_ddpm.py --objective flow"
        problem = exported_file_problem("--init-from", args.init_from, rebuild)
        if problem:
            parser.error(problem)
    try:
        args.channels = tuple(int(c) for c in args.channels.split(","))
    except ValueError:
        parser.error(f"--channels must be widths separated by commas, such as 32,64,128, got {args.channels!r}")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: this torch sees no CUDA GPU")
    return args


def load_pairs(path: Path) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """The pairs (as stored, float16 or float32) and their manifest, checked against its SHA-256."""
    tensors, manifest = load_weights(path.stem, path.parent)
    if not {"noise", "images"} <= set(tensors):
        raise SystemExit(f"{path} must hold the tensors 'noise' and 'images' (as scripts/make_reflow_pairs.py writes "
                         f"them), got {sorted(tensors)}: pass the pairs file as --pairs")
    noise, images = tensors["noise"], tensors["images"]
    if noise.shape != images.shape or noise.dim() != 4 or len(noise) == 0:
        raise SystemExit(f"{path} must hold 'noise' and 'images' of one shape [N, C, H, W], got "
                         f"{tuple(noise.shape)} and {tuple(images.shape)}")
    return noise, images, manifest


def initial_model(args) -> tuple[torch.nn.Module, dict | None]:
    """The flow model to start from (or a fresh UNet), and the record of where it came from."""
    if args.init_from is None:
        torch.manual_seed(args.seed)
        return TinyUNet(args.channels), None
    model, manifest = load_flow_file(args.init_from)
    record = {"file": relative(args.init_from), "sha256": manifest["sha256"], "steps": manifest.get("steps"),
              "images_seen": images_seen(manifest),
              "command": manifest.get("command"), "wall_time_minutes": manifest.get("wall_time_minutes")}
    if manifest.get("config", {}).get("coupling") == "reflow":  # continues a reflow run (a cool-down, say)
        record["coupling"] = "reflow"
        record["init_from"] = manifest.get("init_from")  # its own start, back to the flow model
    return model, record


def run_settings(args, pairs_sha256: str, init: dict | None) -> dict:
    """What defines the weights: a resume with other values is refused (``TrainingRun``)."""
    return {"pairs_sha256": pairs_sha256, "init_sha256": init["sha256"] if init else "none",
            "time_sampling": args.time_sampling, "u_shape": str(args.u_shape), "loss": args.loss,
            "batch_size": str(args.batch_size),
            "lr": str(args.lr), "warmup": str(args.warmup), "ema_decay": str(args.ema_decay), "seed": str(args.seed),
            "channels": str(list(args.channels)) if init is None else "initial model's",
            # a cool-down ends at --steps, which then defines the run; without one the run can be extended
            **({"decay_steps": str(args.decay_steps), "steps": str(args.steps)} if args.decay_steps else {})}


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    noise, images, pairs_manifest = load_pairs(args.pairs)
    model, init = initial_model(args)
    device = torch.device(args.device)
    model = model.to(device, memory_format=torch.channels_last).train()
    ema = EMA(model, args.ema_decay)  # the initial weights, with a fresh warm-up (see the module docstring)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.0)
    run = TrainingRun(args.run_dir, model, optimizer, ema, settings=run_settings(args, pairs_manifest["sha256"], init))
    while run.step < args.steps:
        generator = step_generator(args.seed, run.step)
        picked = torch.randint(0, len(noise), (args.batch_size,), generator=generator)
        noise_batch = noise[picked].to(device, torch.float32)
        image_batch = images[picked].to(device, torch.float32)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(run.step, args.lr, args.warmup, args.steps, args.decay_steps)
        loss = reflow_loss(model, noise_batch, image_batch, generator, args.time_sampling, args.u_shape, args.loss)
        optimizer_step(loss, model, optimizer, (ema,))
        run.finish_step(args.steps, loss=loss.item())
        if run.step % args.save_every == 0 or run.step == args.steps:
            run.save()
    export(ema.model, args, argv, run, init, pairs_manifest, count_parameters(model), machine(device))


def export(averaged: torch.nn.Module, args, argv, run: TrainingRun, init: dict | None, pairs_manifest: dict,
           parameters: int, machine_name: str) -> None:
    """Write the EMA weights (in --store-dtype) and their manifest."""
    config = {"channels": list(averaged.config["channels"]), "image_channels": averaged.config["image_channels"],
              "space": "pixel", "objective": "flow", "time_scale": TIME_SCALE, "coupling": "reflow"}
    store_dtype = getattr(torch, args.store_dtype)
    sha = save_weights({name: tensor.to(store_dtype) for name, tensor in averaged.state_dict().items()}, args.out, config)
    pairs = {key: pairs_manifest.get(key) for key in ("num_pairs", "nfe", "sampler", "steps", "seed", "store_dtype",
                                                       "network_evaluations", "seconds", "cpu_seconds", "threads", "machine",
                                                       "command", "flow", "quality")}
    write_json(args.out.with_suffix(".json"), {
        "file": args.out.name, "sha256": sha, "command": reproduce_command("train_reflow.py", argv),
        "seed": args.seed, "steps": run.step, "images_seen": run.step * args.batch_size,
        "batch_size": args.batch_size, "lr": args.lr, "warmup": args.warmup, "decay_steps": args.decay_steps,
        "ema_decay": args.ema_decay,
        "time_sampling": args.time_sampling, "u_shape": args.u_shape, "loss": args.loss, "config": config,
        "parameters": parameters,
        "threads": args.threads, "device": args.device, "store_dtype": args.store_dtype,
        "init_from": init or "none", "pairs": {"file": relative(args.pairs), "sha256": pairs_manifest["sha256"], **pairs},
        "wall_time_minutes": round(run.wall_time / 60, 1), "machine": machine_name,
        "quality": "measure with: python scripts/compare_few_step.py",
    })
    print(f"wrote {args.out} (sha256 {sha[:12]}...)")


if __name__ == "__main__":
    main()
