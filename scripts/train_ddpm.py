"""Train the course's DDPM on MNIST pixels (data/ddpm_mnist) or on the course VAE's latents
(``--space latent``: data/latent_ddpm_mnist, notebook 05) and export its EMA weights; with
``--objective flow``, train the same UNet by flow matching instead (data/flow_mnist, notebook 08).

Resumable (``scripts/resumable.py``): the full training state (weights, EMA, optimizer, step) is saved
every --save-every steps to --run-dir; running the same command again continues from there. Each step's
batch and noise come from a generator seeded with (seed, step), so a run stopped and resumed sees the
same data as one that never stopped, and training to N steps is the same whatever --steps a longer run
was aiming for.

    python scripts/train_ddpm.py --steps 12000 --prediction-type v_prediction --batch-size 128 --threads 2
    python scripts/train_ddpm.py --steps 12000 --prediction-type v_prediction --batch-size 128 --device cuda

A run's state lives in --run-dir, outside git. To go on training a shipped model later (another session,
another machine), start a new run from its exported weights with ``--init-from data/ddpm_mnist.safetensors``:
model and EMA start from them (the optimizer afresh, after a new warm-up), the batches continue the data
stream after the steps already taken, and the manifest counts all steps and records what it continued.
    python scripts/train_ddpm.py --space latent --steps 20000 --batch-size 128 --threads 1
    python scripts/train_ddpm.py --objective flow --steps 4250 --batch-size 128 --threads 1
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from course_utils.checkpoints import (OVERWRITE_FLAG, images_seen, save_weights, sha256_of, shipped_output_problem,  # noqa: E402
                                      write_json)
from course_utils.data import DATA_DIR, mnist_tensors  # noqa: E402
from course_utils.ddpm import EMA, PREDICTION_TYPES, TIME_SAMPLINGS, ddpm_loss  # noqa: E402
from course_utils.flow import TIME_SAMPLINGS as FLOW_TIME_SAMPLINGS  # noqa: E402
from course_utils.flow import TIME_SCALE, flow_loss  # noqa: E402
from course_utils.latents import LATENT_CHANNELS, encode, load_vae  # noqa: E402
from course_utils.schedules import alphas_cumprod, make_betas  # noqa: E402
from course_utils.unet import TinyUNet, count_parameters  # noqa: E402
from reports import machine, reproduce_command  # noqa: E402
from resumable import (  # noqa: E402
    TrainingRun, add_training_arguments, exported_file_problem, in_range, integer_in, learning_rate,
    optimizer_step, step_generator)


SPACES = {"pixel": ("ddpm_mnist", "32,64,128"), "latent": ("latent_ddpm_mnist", "48,96,192")}


def training_data(space: str) -> tuple[torch.Tensor, int]:
    """The tensors to denoise and their channel count: MNIST in [-1, 1], or its scaled VAE latents."""
    images, _ = mnist_tensors("train")
    if space == "pixel":
        return images, 1
    return encode(load_vae(), images), LATENT_CHANNELS


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_training_arguments(parser, steps=12000, batch_size=64, lr=1e-3, warmup=500, ema_decay=0.999)
    parser.add_argument("--space", choices=SPACES, default="pixel", help="what is denoised (default pixel)")
    parser.add_argument("--channels", type=str, default=None,
                        help="UNet widths per resolution (default 32,64,128 in pixels, 48,96,192 in latents)")
    parser.add_argument("--objective", choices=("diffusion", "flow"), default="diffusion",
                        help="diffusion (DDPM, notebook 03) or flow matching (straight paths, notebook 08); "
                             "flow ignores --prediction-type, --schedule and --timesteps")
    parser.add_argument("--prediction-type", choices=PREDICTION_TYPES, default="v_prediction",
                        help="what the network outputs: the noise, v, or x_0 (default v_prediction, see notebook 03)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--time-sampling", choices=tuple(dict.fromkeys(TIME_SAMPLINGS + FLOW_TIME_SAMPLINGS)), default="uniform",
                        help="how training noise levels are drawn: uniform (default), lognormal (EDM, diffusion) "
                             "or logit-normal (Stable Diffusion 3, flow)")
    parser.add_argument("--snr-gamma", type=in_range(0, 1e6, include_low=False), default=None,
                        help="min-SNR-gamma loss weighting (Hang et al. 2023; 5 is their choice); default none")
    parser.add_argument("--extra-ema-decays", type=str, default="",
                        help="comma-separated EMA decays kept beside --ema-decay and exported beside --out as "
                             "NAME_emaDECAY.safetensors (compares EMA lengths in one run)")
    parser.add_argument("--export-ema", type=float, default=None,
                        help="export only the EMA of this decay (--ema-decay or one of --extra-ema-decays), to "
                             "--out: how the best average of a finished run is shipped")
    parser.add_argument("--decay-steps", type=integer_in(0), default=0,
                        help="cool the learning rate down linearly to 0 over the last N steps of --steps "
                             "(default 0: constant after the warm-up); --steps then defines the run")
    parser.add_argument("--schedule", type=str, default="cosine")
    parser.add_argument("--timesteps", type=int, default=1000)
    parser.add_argument("--store-dtype", choices=("float32", "float16"), default="float16",
                        help="dtype of the exported EMA weights (default float16: half the bytes in git; the "
                             "course loads them into a float32 model, and measures quality on what it ships)")
    parser.add_argument("--init-from", type=Path, default=None,
                        help="continue from exported weights (a .safetensors with its .json manifest)")
    parser.add_argument("--run-dir", type=Path, default=None, help="default runs/NAME")
    parser.add_argument("--out", type=Path, default=None,
                        help=f"default data/NAME.safetensors, the shipped model: {OVERWRITE_FLAG} is then needed")
    parser.add_argument(OVERWRITE_FLAG, action="store_true", help="allow --out to replace a shipped file in data/")
    args = parser.parse_args(argv)
    if args.objective == "flow" and args.space != "pixel":
        parser.error("--objective flow trains in pixels only (--space pixel)")
    allowed = FLOW_TIME_SAMPLINGS if args.objective == "flow" else TIME_SAMPLINGS
    if args.time_sampling not in allowed:
        parser.error(f"--time-sampling {args.time_sampling} is not for --objective {args.objective}: "
                     f"choose one of {', '.join(allowed)}")
    if args.snr_gamma is not None and args.objective == "flow":
        parser.error("--snr-gamma weights the diffusion loss; flow matching has no SNR weighting here")
    try:
        args.extra_ema_decays = [float(d) for d in args.extra_ema_decays.split(",") if d.strip()]
    except ValueError:
        parser.error(f"--extra-ema-decays must be numbers separated by commas, got {args.extra_ema_decays!r}")
    if any(not 0 < d < 1 for d in args.extra_ema_decays):
        parser.error(f"--extra-ema-decays must each lie in (0, 1), got {args.extra_ema_decays}")
    if args.export_ema is not None and args.export_ema not in (args.ema_decay, *args.extra_ema_decays):
        parser.error(f"--export-ema must be one of the run's decays ({args.ema_decay}"
                     f"{''.join(f', {d}' for d in args.extra_ema_decays)}), got {args.export_ema}")
    name, default_channels = SPACES[args.space]
    name = "flow_mnist" if args.objective == "flow" else name
    args.channels = args.channels or default_channels
    args.run_dir = args.run_dir or ROOT / "runs" / name
    args.out = args.out or DATA_DIR / f"{name}.safetensors"
    problem = shipped_output_problem("--out", args.out, args.overwrite_shipped)
    if problem:
        parser.error(problem)
    if args.init_from is not None:
        rebuild = "export one with python scripts/train_ddpm.py, which writes both"
        problem = exported_file_problem("--init-from", args.init_from, rebuild)
        if problem:
            parser.error(problem)
    if args.decay_steps > args.steps:
        parser.error(f"--decay-steps must be at most --steps ({args.steps}), got {args.decay_steps}")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: this torch sees no CUDA GPU")
    return args


def continue_from(path: Path, model, ema, run) -> dict:
    """Start a new run from exported weights (unless the run is being resumed from its own state, which
    already holds them): returns the earlier run's record, whose steps the data stream skips."""
    record_path = run.run_dir / "continued_from.json"
    if run.step > 0:  # resumed: the weights came from the run's state, the record from its first start
        return json.loads(record_path.read_text())
    manifest = json.loads(path.with_suffix(".json").read_text())
    weights = load_file(str(path))
    model.load_state_dict(weights)
    ema.model.load_state_dict(weights)
    ema.num_updates = manifest["steps"]  # the EMA has a long memory already: no warm-up
    record = {"file": path.name, "sha256": sha256_of(path), "steps": manifest["steps"], "command": manifest["command"],
              "images_seen": images_seen(manifest), "wall_time_minutes": manifest.get("wall_time_minutes", 0)}
    if "continued_from" in manifest:  # the whole lineage, back to the run that started from scratch
        record["continued_from"] = manifest["continued_from"]
    write_json(record_path, record)
    return record


def run_settings(args) -> dict:
    """What defines the weights a run produces: a resume with other values is refused."""
    defaults = {"time_sampling": "uniform", "snr_gamma": None, "extra_ema_decays": [], "decay_steps": 0}
    # options at their defaults are left out, so runs started before the option existed still resume; a
    # cool-down ends at --steps, which then belongs to the settings
    free = ("threads", "save_every", "run_dir", "out", "device", "store_dtype", "overwrite_shipped", "export_ema")
    free += ("steps",) if not args.decay_steps else ()
    return {key: str(value) for key, value in vars(args).items()
            if key not in free and not (key in defaults and value == defaults[key])}


def ema_path(out: Path, decay: float) -> Path:
    """Where the EMA with another decay is exported: beside ``out``."""
    return out.with_name(f"{out.stem}_ema{decay}{out.suffix}")


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    channels = tuple(int(c) for c in args.channels.split(","))
    images, image_channels = training_data(args.space)
    device = torch.device(args.device)
    # channels-last memory is 12-20% faster on the course CPU for this UNet; bf16 autocast is slower
    # there (no AMX): measured in the README's "Training on a CPU".
    model = TinyUNet(channels, image_channels).to(device, memory_format=torch.channels_last)
    images = images.to(device)
    ema = EMA(model, args.ema_decay)
    extra_emas = {decay: EMA(model, decay) for decay in args.extra_ema_decays}
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.0)
    alpha_bar = alphas_cumprod(make_betas(args.schedule, args.timesteps)).float()

    run = TrainingRun(args.run_dir, model, optimizer, ema, settings=run_settings(args), extra_emas=extra_emas)
    earlier = continue_from(args.init_from, model, ema, run) if args.init_from else {"steps": 0}
    if args.init_from and run.step == 0:
        for extra in extra_emas.values():
            extra.model.load_state_dict(ema.model.state_dict())
            extra.num_updates = ema.num_updates
    model.train()
    while run.step < args.steps:
        generator = step_generator(args.seed, earlier["steps"] + run.step)
        batch = images[torch.randint(0, len(images), (args.batch_size,), generator=generator).to(device)]
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(run.step, args.lr, args.warmup, args.steps, args.decay_steps)
        if args.objective == "flow":
            loss = flow_loss(model, batch, generator, args.time_sampling)
        else:
            loss = ddpm_loss(model, batch, alpha_bar, generator, args.prediction_type, args.time_sampling,
                             args.snr_gamma)
        optimizer_step(loss, model, optimizer, (ema, *extra_emas.values()))
        run.finish_step(args.steps, loss=loss.item())
        if run.step % args.save_every == 0 or run.step == args.steps:
            run.save()

    config = {"channels": list(channels), "image_channels": image_channels, "space": args.space}
    if args.objective == "flow":
        config.update(objective="flow", time_scale=TIME_SCALE)
    else:
        config.update(schedule=args.schedule, num_train_timesteps=args.timesteps, prediction_type=args.prediction_type)
    for decay, averaged in [(args.ema_decay, ema), *extra_emas.items()]:
        if args.export_ema is not None and decay != args.export_ema:
            continue
        out = args.out if decay in (args.export_ema, args.ema_decay) else ema_path(args.out, decay)
        export(averaged.model, out, config, args, argv, decay, earlier, run, count_parameters(model), machine(device))


def export(averaged: torch.nn.Module, out: Path, config: dict, args, argv, decay: float, earlier: dict,
           run: TrainingRun, parameters: int, machine_name: str) -> None:
    """Write one EMA's weights (in --store-dtype) and their manifest."""
    store_dtype = getattr(torch, args.store_dtype)
    sha = save_weights({name: tensor.to(store_dtype) for name, tensor in averaged.state_dict().items()}, out, config)
    write_json(out.with_suffix(".json"), {
        "file": out.name, "sha256": sha, "command": reproduce_command("train_ddpm.py", argv),
        "seed": args.seed, "steps": earlier["steps"] + run.step,
        "images_seen": earlier.get("images_seen", 0) + run.step * args.batch_size,
        "batch_size": args.batch_size, "lr": args.lr, "ema_decay": decay, "config": config,
        "time_sampling": args.time_sampling, "snr_gamma": args.snr_gamma,
        "parameters": parameters, "threads": args.threads, "device": args.device,
        "store_dtype": args.store_dtype, **({"continued_from": earlier} if args.init_from else {}),
        "wall_time_minutes": round(earlier.get("wall_time_minutes", 0) + run.wall_time / 60, 1),
        "machine": machine_name,
        "quality": "measure with: python scripts/" + ("compare_flow_ddpm.py" if args.objective == "flow" else "evaluate_ddpm.py"),
    })
    print(f"wrote {out} (sha256 {sha[:12]}...)")


if __name__ == "__main__":
    main()
