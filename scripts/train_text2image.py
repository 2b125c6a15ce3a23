"""Train the course's text-to-image model on captioned MNIST latents; export its tokenizer, text encoder and
UNet into the course's Stable Diffusion folder data/course_pipeline/, and its record into data/text2image_mnist.json.

A CLIP-style text encoder and a cross-attention UNet (``UNet2DConditionModel``) are trained together from
scratch on the course VAE's latents with the recipe chosen for the pixel DDPM (docs/training_on_a_cpu.md):
v-prediction by default (``--prediction-type``, recorded in the manifest and the pipeline's scheduler), batch
64, learning rate 1e-3 after a warm-up, cooled down linearly to 0 over the last ``--decay-steps`` steps, and an
EMA of decay 0.9995. 10% of the captions are dropped to "" so the one model is conditional and unconditional
(classifier-free guidance). Each step draws fresh captions
for its digits (wording varies, attributes stay true of the image). The tokenizer's vocabulary is
learned from the captions once.

Resumable (``scripts/resumable.py``): state in --run-dir, each step seeded with (seed, step); a resume with
other settings is refused (the threads, --save-every and the output paths may change).

    python scripts/train_text2image.py --steps 24000 --decay-steps 2000 --threads 1

``--init-from FOLDER`` continues an exported model instead of starting from scratch (a second stage, such as a
longer run with a new cool-down): the tokenizer, text encoder and UNet of FOLDER (``data/course_pipeline`` or a
run's ``--pipeline-dir``) with the manifest beside it (FOLDER/../text2image_mnist.json). The optimizer starts
afresh with its warm-up and the EMA from the loaded weights; the manifest records the stage it continued
(``continued_from``: its files, command, steps and images seen) and counts steps, images and minutes over all
stages, as ``scripts/train_ddpm.py --init-from`` does.
"""
from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from course_utils.captions import ATTRIBUTES, attribute_levels, caption, class_terciles, measure_attributes  # noqa: E402
from course_utils.checkpoints import OVERWRITE_FLAG, images_seen, shipped_output_problem, write_json  # noqa: E402
from course_utils.data import DATA_DIR, mnist_tensors  # noqa: E402
from course_utils.ddpm import EMA, PREDICTION_TYPES, training_target  # noqa: E402
from course_utils.guidance import (conditional_unet_config, drop_prompts, load_text2image,  # noqa: E402
                                   make_conditional_unet)
from course_utils.latents import encode, load_vae  # noqa: E402
from course_utils.part_folders import COURSE_PIPELINE_DIR, save_part  # noqa: E402
from course_utils.schedules import alphas_cumprod, make_betas, q_sample  # noqa: E402
from course_utils.text import make_text_encoder, make_tokenizer, text_encoder_config, tokenize  # noqa: E402
from course_utils.unet import count_parameters  # noqa: E402
from reports import machine, reproduce_command  # noqa: E402
from resumable import (  # noqa: E402
    TrainingRun, add_training_arguments, integer_in, learning_rate, optimizer_step, step_generator)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_training_arguments(parser, steps=24000, batch_size=64, lr=1e-3, warmup=500, ema_decay=0.9995)
    parser.add_argument("--prediction-type", choices=PREDICTION_TYPES, default="v_prediction",
                        help="what the UNet outputs: the noise, v, or x_0 (default v_prediction, see notebook 03)")
    parser.add_argument("--decay-steps", type=integer_in(0), default=0,
                        help="cool the learning rate down linearly to 0 over the last N steps of --steps "
                             "(default 0: constant after the warm-up; the shipped model: 2000)")
    parser.add_argument("--drop-rate", type=float, default=0.1, help="share of captions replaced by \"\"")
    parser.add_argument("--run-dir", type=Path, default=ROOT / "runs" / "text2image_mnist")
    parser.add_argument("--pipeline-dir", type=Path, default=COURSE_PIPELINE_DIR,
                        help="the Stable Diffusion folder whose tokenizer/, text_encoder/ and unet/ are written")
    parser.add_argument("--manifest", type=Path, default=DATA_DIR / "text2image_mnist.json")
    parser.add_argument(OVERWRITE_FLAG, action="store_true",
                        help="allow the outputs to replace the shipped model in data/ (refused otherwise)")
    parser.add_argument("--store-dtype", choices=("float32", "float16"), default="float16",
                        help="precision of the stored UNet (default float16: half the tree; it is loaded as float32)")
    parser.add_argument("--init-from", type=Path, default=None,
                        help="a pipeline folder whose text encoder and UNet to continue (its manifest beside it, "
                             "FOLDER/../text2image_mnist.json); default: a new model")
    args = parser.parse_args(argv)
    if args.init_from is not None:
        init_manifest = args.init_from.parent / "text2image_mnist.json"
        missing = [str(path) for path in (args.init_from / "unet", args.init_from / "text_encoder", init_manifest)
                   if not path.exists()]
        if missing:
            parser.error(f"--init-from {args.init_from}: missing {', '.join(missing)}; name a folder written by "
                         f"this script (--pipeline-dir), such as data/course_pipeline")
    for option in ("--pipeline-dir", "--manifest"):  # before any work: a finished run must not replace the shipped model
        problem = shipped_output_problem(option, getattr(args, option[2:].replace("-", "_")), args.overwrite_shipped)
        if problem:
            parser.error(problem)
    if not 0.0 <= args.drop_rate < 1.0:
        parser.error(f"--drop-rate must be in [0, 1), got {args.drop_rate}")
    if args.decay_steps > args.steps:
        parser.error(f"--decay-steps must be at most --steps ({args.steps}), got {args.decay_steps}")
    return args


def run_settings(args) -> dict:
    """What defines the weights a run produces: a resume with other values is refused."""
    free = ("threads", "save_every", "run_dir", "pipeline_dir", "manifest", "overwrite_shipped", "store_dtype",
            "init_from")  # the loaded weights' checksums stand for --init-from (see main)
    return {key: str(value) for key, value in vars(args).items() if key not in free}


def caption_levels(images: torch.Tensor, labels: torch.Tensor) -> np.ndarray:
    """Each digit's level [N, 3] in {-1, 0, 1} of each attribute (thickness, slant, size) within its class."""
    attributes = measure_attributes(images)
    levels = attribute_levels(attributes, labels, class_terciles(attributes, labels))
    return torch.stack([levels[name] for name in ATTRIBUTES], dim=1).numpy()


def batch_captions(labels: torch.Tensor, levels: np.ndarray, indices, rng: np.random.Generator) -> list[str]:
    """A freshly worded, true caption for each digit ``indices`` picks."""
    return [caption(int(labels[i]), dict(zip(ATTRIBUTES, levels[i])), rng) for i in indices]


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    images, labels = mnist_tensors("train")
    levels = caption_levels(images, labels)
    latents = encode(load_vae(), images)
    init, settings = None, run_settings(args)
    if args.init_from is None:
        tokenizer = make_tokenizer(batch_captions(labels, levels, range(len(labels)), np.random.default_rng(args.seed)))
        models = nn.ModuleDict({"text_encoder": make_text_encoder(tokenizer), "unet": make_conditional_unet()})
    else:
        tokenizer, text_encoder, unet, init = load_text2image(args.init_from, args.init_from.parent / "text2image_mnist.json")
        if init["config"].get("prediction_type", "epsilon") != args.prediction_type:
            raise SystemExit(f"--init-from {args.init_from} predicts {init['config'].get('prediction_type', 'epsilon')}, "
                             f"not --prediction-type {args.prediction_type}: pass the same target")
        models = nn.ModuleDict({"text_encoder": text_encoder.float(), "unet": unet.float()})
        settings["init_files"] = str(sorted(init["files"].items()))  # a resume must continue the same weights
    print(f"{len(latents)} latents, std {latents.std():.3f}; vocabulary of {len(tokenizer)} tokens", flush=True)
    ema = EMA(models, args.ema_decay)  # from the initial weights, with a fresh warm-up (ddpm.EMA)
    optimizer = torch.optim.AdamW(models.parameters(), lr=args.lr, weight_decay=0.0)
    alpha_bar = alphas_cumprod(make_betas("cosine", 1000)).float()

    run = TrainingRun(args.run_dir, models, optimizer, ema, settings=settings)
    models.train()
    while run.step < args.steps:
        generator = step_generator(args.seed, run.step)
        step_rng = np.random.default_rng([args.seed, run.step])
        index = torch.randint(0, len(latents), (args.batch_size,), generator=generator)
        prompts = batch_captions(labels, levels, index.tolist(), step_rng)
        token_ids = tokenize(tokenizer, drop_prompts(prompts, args.drop_rate, step_rng))
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(run.step, args.lr, args.warmup, args.steps, args.decay_steps)
        timesteps = torch.randint(0, len(alpha_bar), (args.batch_size,), generator=generator)
        noise = torch.randn(latents[index].shape, generator=generator)
        noisy = q_sample(latents[index], timesteps, noise, alpha_bar)
        embeddings = models["text_encoder"](token_ids).last_hidden_state
        target = training_target(latents[index], noise, alpha_bar[timesteps], args.prediction_type)
        output = models["unet"](noisy, timesteps, encoder_hidden_states=embeddings).sample
        loss = torch.mean((output - target) ** 2)
        optimizer_step(loss, models, optimizer, (ema,))
        run.finish_step(args.steps, loss=loss.item())
        if run.step % args.save_every == 0 or run.step == args.steps:
            run.save()

    config = {"unet": conditional_unet_config(), "text_encoder": text_encoder_config(tokenizer),
              "schedule": "cosine", "num_train_timesteps": 1000, "drop_rate": args.drop_rate,
              "prediction_type": args.prediction_type}
    files = {}
    # The UNet is stored in --store-dtype; the text encoder stays float32, since transformers would load it as stored.
    unet = copy.deepcopy(ema.model["unet"]).to(getattr(torch, args.store_dtype))
    for name, part in (("tokenizer", tokenizer), ("text_encoder", ema.model["text_encoder"]), ("unet", unet)):
        files |= save_part(part, name, args.pipeline_dir)
    earlier = {} if init is None else {  # counts add up over the stages, as in scripts/train_ddpm.py
        "folder": str(args.init_from), "files": init["files"], "command": init["command"], "steps": init["steps"],
        "images_seen": images_seen(init), "wall_time_minutes": init.get("wall_time_minutes", 0),
        **({"continued_from": init["continued_from"]} if "continued_from" in init else {})}
    write_json(args.manifest, {
        "files": files, "command": reproduce_command("train_text2image.py", argv),
        "seed": args.seed, "steps": earlier.get("steps", 0) + run.step, "batch_size": args.batch_size,
        "images_seen": earlier.get("images_seen", 0) + run.step * args.batch_size, "lr": args.lr,
        "warmup": args.warmup, "decay_steps": args.decay_steps, "ema_decay": args.ema_decay, "config": config,
        "parameters": {name: count_parameters(module) for name, module in models.items()},
        "vocabulary_size": len(tokenizer), "threads": args.threads, "store_dtype": args.store_dtype,
        "wall_time_minutes": round(earlier.get("wall_time_minutes", 0) + run.wall_time / 60, 1), "machine": machine(),
        **({"continued_from": earlier} if earlier else {}),
        "quality": "measure with: python scripts/evaluate_text2image.py --write-manifest",
    })
    print(f"wrote {', '.join(sorted({name.split('/')[0] for name in files}))} into {args.pipeline_dir} and {args.manifest}")


if __name__ == "__main__":
    main()
