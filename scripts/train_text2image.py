"""Train the course's text-to-image model on captioned MNIST latents; export data/text2image_mnist.

A CLIP-style text encoder and a cross-attention UNet (``UNet2DConditionModel``) are trained together from
scratch on the course VAE's latents with the epsilon loss; 10% of the captions are dropped to "" so the
one model is conditional and unconditional (classifier-free guidance). Each step draws fresh captions
for its digits (wording varies, attributes stay true of the image). The tokenizer's vocabulary is
learned from the captions once and saved to data/text2image_mnist_tokenizer/.

Resumable like ``train_ddpm.py`` (state in --run-dir; each step seeded with (seed, step)).

    python scripts/train_text2image.py --steps 12000 --threads 1
"""
from __future__ import annotations

import argparse
import csv
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from course_utils.captions import ATTRIBUTES, attribute_levels, caption, class_terciles, measure_attributes  # noqa: E402
from course_utils.checkpoints import atomic_write, save_weights, write_json  # noqa: E402
from course_utils.data import DATA_DIR, mnist_tensors  # noqa: E402
from course_utils.ddpm import EMA  # noqa: E402
from course_utils.guidance import conditional_unet_config, drop_prompts, make_conditional_unet  # noqa: E402
from course_utils.latents import encode, load_vae  # noqa: E402
from course_utils.schedules import alphas_cumprod, make_betas, q_sample  # noqa: E402
from course_utils.text import make_text_encoder, make_tokenizer, text_encoder_config, tokenize  # noqa: E402
from course_utils.unet import count_parameters  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=12000, help="total optimizer steps (default 12000)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--ema-decay", type=float, default=0.999)
    parser.add_argument("--drop-rate", type=float, default=0.1, help="share of captions replaced by \"\"")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--save-every", type=int, default=250)
    parser.add_argument("--run-dir", type=Path, default=ROOT / "runs" / "text2image_mnist")
    parser.add_argument("--out", type=Path, default=DATA_DIR / "text2image_mnist.safetensors")
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error(f"--steps must be >= 1, got {args.steps}")
    if not 0.0 <= args.drop_rate < 1.0:
        parser.error(f"--drop-rate must be in [0, 1), got {args.drop_rate}")
    return args


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    images, labels = mnist_tensors("train")
    levels = attribute_levels(measure_attributes(images), labels, class_terciles(measure_attributes(images), labels))
    levels = torch.stack([levels[name] for name in ATTRIBUTES], dim=1).numpy()  # [N, 3] in {-1, 0, 1}
    rng = np.random.default_rng(args.seed)
    vocabulary_captions = [caption(int(labels[i]), dict(zip(ATTRIBUTES, levels[i])), rng) for i in range(len(labels))]
    tokenizer = make_tokenizer(vocabulary_captions)
    latents = encode(load_vae(), images)
    print(f"{len(latents)} latents, std {latents.std():.3f}; vocabulary of {len(tokenizer)} tokens", flush=True)

    models = nn.ModuleDict({"text_encoder": make_text_encoder(tokenizer), "unet": make_conditional_unet()})
    ema = EMA(models, args.ema_decay)
    optimizer = torch.optim.AdamW(models.parameters(), lr=args.lr, weight_decay=0.0)
    alpha_bar = alphas_cumprod(make_betas("cosine", 1000)).float()

    state_path = args.run_dir / "state.pt"
    log_path = args.run_dir / "log.csv"
    step, wall_time = 0, 0.0
    if state_path.exists():
        state = torch.load(state_path, weights_only=True)  # our own file; weights_only all the same
        models.load_state_dict(state["model"])
        ema.model.load_state_dict(state["ema"])
        ema.num_updates = state["ema_updates"]
        optimizer.load_state_dict(state["optimizer"])
        step, wall_time = state["step"], state["wall_time"]
        print(f"resuming from step {step} ({wall_time / 60:.1f} min trained)", flush=True)
    args.run_dir.mkdir(parents=True, exist_ok=True)

    def save_state():
        state = {"model": models.state_dict(), "ema": ema.model.state_dict(), "ema_updates": ema.num_updates,
                 "optimizer": optimizer.state_dict(), "step": step, "wall_time": wall_time}
        atomic_write(state_path, lambda tmp: torch.save(state, tmp))

    models.train()
    running, started = 0.0, time.time()
    while step < args.steps:
        generator = torch.Generator().manual_seed(args.seed * 1_000_003 + step)
        step_rng = np.random.default_rng([args.seed, step])
        index = torch.randint(0, len(latents), (args.batch_size,), generator=generator)
        prompts = [caption(int(labels[i]), dict(zip(ATTRIBUTES, levels[i])), step_rng) for i in index.tolist()]
        token_ids = tokenize(tokenizer, drop_prompts(prompts, args.drop_rate, step_rng))
        for group in optimizer.param_groups:
            group["lr"] = args.lr * min(1.0, (step + 1) / args.warmup)
        timesteps = torch.randint(0, len(alpha_bar), (args.batch_size,), generator=generator)
        noise = torch.randn(latents[index].shape, generator=generator)
        noisy = q_sample(latents[index], timesteps, noise, alpha_bar)
        embeddings = models["text_encoder"](token_ids).last_hidden_state
        loss = torch.mean((models["unet"](noisy, timesteps, encoder_hidden_states=embeddings).sample - noise) ** 2)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(models.parameters(), 1.0)
        optimizer.step()
        ema.update(models)
        step += 1
        running += loss.item()
        if step % 100 == 0:
            now = time.time()
            wall_time += now - started
            started = now
            with open(log_path, "a", newline="") as handle:
                csv.writer(handle).writerow([step, f"{running / 100:.5f}", f"{wall_time:.1f}"])
            print(f"step {step}/{args.steps} loss {running / 100:.4f} {wall_time / 60:.1f} min", flush=True)
            running = 0.0
        if step % args.save_every == 0 or step == args.steps:
            save_state()

    tokenizer_dir = args.out.parent / f"{args.out.stem}_tokenizer"
    tokenizer.save_pretrained(tokenizer_dir)
    config = {"unet": conditional_unet_config(), "text_encoder": text_encoder_config(tokenizer),
              "schedule": "cosine", "num_train_timesteps": 1000, "drop_rate": args.drop_rate}
    state_dict = {f"{name}.{key}": value for name, module in ema.model.items() for key, value in module.state_dict().items()}
    sha = save_weights(state_dict, args.out, config)
    command = "python scripts/train_text2image.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    write_json(args.out.with_suffix(".json"), {
        "file": args.out.name, "sha256": sha, "command": command, "seed": args.seed, "steps": step,
        "batch_size": args.batch_size, "lr": args.lr, "ema_decay": args.ema_decay, "config": config,
        "parameters": {name: count_parameters(module) for name, module in models.items()},
        "vocabulary_size": len(tokenizer), "threads": args.threads,
        "wall_time_minutes": round(wall_time / 60, 1), "machine": "2-core CPU (course dev machine)",
        "quality": "measure with: python scripts/evaluate_text2image.py --write-manifest",
    })
    print(f"wrote {args.out} and {tokenizer_dir} (sha256 {sha[:12]}...)")


if __name__ == "__main__":
    main()
