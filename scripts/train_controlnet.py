"""Train notebook 09's ControlNet on MNIST skeletons and export it into data/course_controlnet/, its record into
data/controlnet_mnist.json.

The ControlNet starts as a copy of the shipped text-to-image UNet's encoder (``control.make_controlnet``); the
UNet, the text encoder and the VAE stay frozen. Each step: a batch of training digits, their VAE latents,
freshly worded true captions (half of them dropped to "", as Zhang et al. 2023 drop 50%, so the ControlNet
must learn to read the control rather than lean on the prompt) and the digits' skeletons as controls; the
loss is the text-to-image model's own loss (its target, eps or v, from its manifest) with the ControlNet's
residuals added. The same captions
and resumable run as ``train_text2image.py`` (``scripts/resumable.py``: state in --run-dir, each step seeded
with (seed, step)).

    python scripts/train_controlnet.py --steps 6000 --threads 1
"""
from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from course_utils.checkpoints import OVERWRITE_FLAG, shipped_output_problem, write_json  # noqa: E402
from course_utils.control import controlnet_loss, digit_controls, make_controlnet  # noqa: E402
from course_utils.data import DATA_DIR, mnist_tensors  # noqa: E402
from course_utils.ddpm import EMA  # noqa: E402
from course_utils.guidance import drop_prompts, load_text2image, text2image_prediction_type  # noqa: E402
from course_utils.latents import encode, load_vae  # noqa: E402
from course_utils.part_folders import COURSE_CONTROLNET_DIR, save_part  # noqa: E402
from course_utils.schedules import alphas_cumprod, make_betas  # noqa: E402
from course_utils.text import tokenize  # noqa: E402
from course_utils.unet import count_parameters  # noqa: E402
from reports import machine, reproduce_command  # noqa: E402
from resumable import (  # noqa: E402
    TrainingRun, add_training_arguments, learning_rate, optimizer_step, step_generator)
from train_text2image import batch_captions, caption_levels  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_training_arguments(parser, steps=6000, batch_size=64, lr=2e-4, warmup=100, ema_decay=0.999)
    parser.add_argument("--drop-rate", type=float, default=0.5, help="share of captions replaced by \"\"")
    parser.add_argument("--run-dir", type=Path, default=ROOT / "runs" / "controlnet_mnist")
    parser.add_argument("--folder", type=Path, default=COURSE_CONTROLNET_DIR,
                        help="where controlnet/ and checksums.json are written")
    parser.add_argument("--manifest", type=Path, default=DATA_DIR / "controlnet_mnist.json")
    parser.add_argument(OVERWRITE_FLAG, action="store_true",
                        help="allow the outputs to replace the shipped model in data/ (refused otherwise)")
    args = parser.parse_args(argv)
    for option in ("--folder", "--manifest"):  # before any work: a finished run must not replace the shipped model
        problem = shipped_output_problem(option, getattr(args, option[2:].replace("-", "_")), args.overwrite_shipped)
        if problem:
            parser.error(problem)
    if not 0.0 <= args.drop_rate < 1.0:
        parser.error(f"--drop-rate must be in [0, 1), got {args.drop_rate}")
    return args


def run_settings(args) -> dict:
    """What defines the weights a run produces: a resume with other values is refused."""
    return {key: str(getattr(args, key)) for key in ("batch_size", "lr", "warmup", "ema_decay", "drop_rate", "seed")}


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    images, labels = mnist_tensors("train")
    levels = caption_levels(images, labels)
    tokenizer, text_encoder, unet, _ = load_text2image()
    prediction_type = text2image_prediction_type()  # the frozen UNet's target is the ControlNet's too
    text_encoder.requires_grad_(False)
    unet.requires_grad_(False)  # frozen: gradients flow through it to the residuals, but it does not change
    latents, controls = encode(load_vae(), images), digit_controls(images)
    print(f"{len(latents)} latents and controls ({controls.mean():.3f} of control pixels on)", flush=True)

    controlnet = make_controlnet(unet)
    ema = EMA(controlnet, args.ema_decay)
    optimizer = torch.optim.AdamW(controlnet.parameters(), lr=args.lr, weight_decay=0.0)
    alpha_bar = alphas_cumprod(make_betas("cosine", 1000)).float()
    run = TrainingRun(args.run_dir, controlnet, optimizer, ema, settings=run_settings(args))
    controlnet.train()
    while run.step < args.steps:
        generator = step_generator(args.seed, run.step)
        step_rng = np.random.default_rng([args.seed, run.step])
        index = torch.randint(0, len(latents), (args.batch_size,), generator=generator)
        prompts = drop_prompts(batch_captions(labels, levels, index.tolist(), step_rng), args.drop_rate, step_rng)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(run.step, args.lr, args.warmup)
        with torch.no_grad():
            embeddings = text_encoder(tokenize(tokenizer, prompts)).last_hidden_state
        loss = controlnet_loss(unet, controlnet, latents[index], controls[index], embeddings, alpha_bar, generator,
                               prediction_type)
        optimizer_step(loss, controlnet, optimizer, (ema,))
        run.finish_step(args.steps, loss=loss.item())
        if run.step % args.save_every == 0 or run.step == args.steps:
            run.save()

    files = save_part(copy.deepcopy(ema.model).half(), "controlnet", args.folder)  # float16: half the tree
    write_json(args.manifest, {
        "files": files, "command": reproduce_command("train_controlnet.py", argv), "seed": args.seed,
        "steps": run.step, "batch_size": args.batch_size, "lr": args.lr, "ema_decay": args.ema_decay,
        "drop_rate": args.drop_rate, "prediction_type": prediction_type, "store_dtype": "float16",
        "parameters": count_parameters(controlnet),
        "control": "skeleton (control.digit_controls)", "threads": args.threads,
        "wall_time_minutes": round(run.wall_time / 60, 1), "machine": machine(),
        "quality": "measure with: python scripts/evaluate_controlnet.py --write-manifest",
    })
    print(f"wrote {args.folder / 'controlnet'} and {args.manifest}")


if __name__ == "__main__":
    main()
