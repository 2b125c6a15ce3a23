#!/usr/bin/env python
"""Which live training run draws digits within a minute? Notebook 03's live run, measured against its seconds.

    python scripts/study_live_run.py --seconds 60 --threads 2        # on an idle machine: about 12 min

Each recipe of ``RECIPES`` trains a fresh ``TinyUNet`` from scratch for ``--seconds`` of wall time (as many
optimizer steps as fit, batches drawn from a generator seeded with (seed, step)), then samples ``--num-samples``
digits from its EMA weights with the recipe's sampler, and the course classifier reads them: the confident share
(the fraction read as one digit with probability >= 0.9) and MNIST FID against as many real test digits. The
recipes vary what buys a short run the most: the widths (a narrower UNet takes more steps per second), the
learning rate and its warm-up, the batch size, the EMA decay (a short run cannot wait for a decay of 0.999) and
the objective (DDPM with v-prediction, or flow matching with the stochastic sampler of notebook 08).

Writes ``docs/live_run_study.json`` and ``.md``. Seconds depend on the machine and its load: run it on an idle
machine, and read the steps column with the seconds.
"""
from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from course_utils.data import mnist_bytes, to_model_range  # noqa: E402
from course_utils.ddpm import EMA, ddpm_loss, sample_ddpm  # noqa: E402
from course_utils.flow import flow_loss, sample_flow  # noqa: E402
from course_utils.metrics import evaluate_samples, load_classifier, mnist_fid, real_feature_sets  # noqa: E402
from course_utils.schedules import alphas_cumprod, make_betas  # noqa: E402
from course_utils.unet import TinyUNet, count_parameters  # noqa: E402
from reports import parse_with_outputs, publish, reproduce_command  # noqa: E402
from resumable import in_range, integer_in, step_generator  # noqa: E402

# name -> widths, objective, peak learning rate, warm-up steps, batch size, EMA decay
RECIPES = {
    "notebook 03 today": ((32, 64, 128), "v", 1e-3, 100, 64, 0.999),
    "same UNet, faster schedule": ((32, 64, 128), "v", 2e-3, 20, 32, 0.99),
    "narrow UNet": ((16, 32, 64), "v", 2e-3, 20, 64, 0.99),
    "narrow UNet, batch 32": ((16, 32, 64), "v", 3e-3, 20, 32, 0.99),
    "narrow UNet, flow": ((16, 32, 64), "flow", 2e-3, 20, 64, 0.99),
    "narrow UNet, flow, batch 32": ((16, 32, 64), "flow", 3e-3, 20, 32, 0.99),
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=in_range(0.1, 3600), default=60.0, help="training time per recipe")
    parser.add_argument("--recipes", nargs="+", choices=list(RECIPES), default=list(RECIPES))
    parser.add_argument("--num-samples", type=integer_in(2, 5000), default=256)
    parser.add_argument("--sampling-steps", type=integer_in(1, 1000), default=50)
    parser.add_argument("--threads", type=integer_in(1, 256), default=2)
    parser.add_argument("--seed", type=integer_in(0, 2**32 - 1), default=0)
    return parse_with_outputs(parser, argv, "live_run_study")


def train(recipe: tuple, seconds: float, seed: int, train_bytes: torch.Tensor, alpha_bar: torch.Tensor):
    """A fresh UNet trained by ``recipe`` for ``seconds``: its EMA model and the steps taken."""
    channels, objective, lr, warmup, batch_size, decay = recipe
    torch.manual_seed(seed)
    model = TinyUNet(channels).to(memory_format=torch.channels_last)
    ema = EMA(model, decay)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    step, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        generator = step_generator(seed, step)
        picked = torch.randint(0, len(train_bytes), (batch_size,), generator=generator)
        x0 = to_model_range(train_bytes[picked])
        optimizer.param_groups[0]["lr"] = lr * min(1.0, (step + 1) / warmup)
        if objective == "flow":
            loss = flow_loss(model, x0, generator)
        else:
            loss = ddpm_loss(model, x0, alpha_bar, generator, "v_prediction")
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        ema.update(model)
        step += 1
    return ema.model.eval(), step


@torch.no_grad()
def draw(model, objective: str, args, alpha_bar: torch.Tensor) -> torch.Tensor:
    generator = torch.Generator().manual_seed(args.seed)
    if objective == "flow":  # notebook 08's stochastic sampler, the better one at a few dozen steps
        return sample_flow(model, args.num_samples, args.sampling_steps, generator, sampler="ancestral",
                           progress=False).clamp(-1, 1)
    return sample_ddpm(model, args.num_samples, alpha_bar, args.sampling_steps, generator, progress=False,
                       prediction_type="v_prediction")


def markdown_table(result: dict) -> str:
    s = result["settings"]
    lines = [f"Measured by `{s['command']}`: each recipe trains a fresh `TinyUNet` for {s['seconds']:g} s on "
             f"{s['threads']} thread(s) of {s['machine']}, then {s['num_samples']} samples ({s['sampling_steps']} "
             f"steps: DDPM for v, the ancestral sampler for flow) are read by the course classifier; MNIST FID "
             f"against as many real test digits, data floor **{result['data_floor_fid']:.1f}**.", "",
             "| recipe | widths | objective | lr, warm-up | batch | EMA | steps | images | confident share | FID |",
             "|---|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for name, row in result["recipes"].items():
        lines.append(f"| {name} | {'/'.join(map(str, row['channels']))} | {row['objective']} | {row['lr']:g}, "
                     f"{row['warmup']} | {row['batch_size']} | {row['ema_decay']} | {row['steps']:,} | "
                     f"{row['images']:,} | {row['confident_share']:.3f} | {row['mnist_fid']:.1f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    train_bytes = mnist_bytes("train")[0]
    alpha_bar = alphas_cumprod(make_betas("cosine", 1000)).float()
    classifier = load_classifier()
    reference, other = real_feature_sets(classifier, args.num_samples, seed=args.seed)
    result = {"settings": {"seconds": args.seconds, "threads": args.threads, "num_samples": args.num_samples,
                           "sampling_steps": args.sampling_steps, "seed": args.seed,
                           "machine": platform.processor() or platform.machine(),
                           "command": reproduce_command("study_live_run.py", argv)},
              "data_floor_fid": round(mnist_fid(reference, other), 2), "recipes": {}}
    for name in args.recipes:
        channels, objective, lr, warmup, batch_size, decay = RECIPES[name]
        model, steps = train(RECIPES[name], args.seconds, args.seed, train_bytes, alpha_bar)
        quality = evaluate_samples(classifier, draw(model, objective, args, alpha_bar), reference)
        result["recipes"][name] = {
            "channels": list(channels), "objective": objective, "lr": lr, "warmup": warmup,
            "batch_size": batch_size, "ema_decay": decay, "parameters": count_parameters(TinyUNet(channels)),
            "steps": steps,
            "images": steps * batch_size, "confident_share": round(quality["confident_share"], 3),
            "mnist_fid": round(quality["fid"], 1)}
        print(name, result["recipes"][name], flush=True)
    publish(result, markdown_table(result), args.json, args.markdown, "live-run-study",
            heading="Notebook 03's live run: what a minute of training draws")
    return 0


if __name__ == "__main__":
    sys.exit(main())
