"""What the course's training scripts share: a run that can be stopped and resumed exactly.

A run lives in a folder (``runs/NAME``): ``state.pt`` holds everything needed to continue (weights,
EMA weights, optimizer moments, step, training time) and ``log.csv`` one row of mean losses per
``LOG_EVERY`` steps. Each step draws its batch and noise from :func:`step_generator`, seeded with
(seed, step) rather than from one stream, so a run stopped at step k and resumed sees exactly the data
of a run that never stopped (``tests/test_training_scripts.py`` checks that the weights agree bit for
bit), and training to N steps gives the same model whatever longer run it was part of.

    run = TrainingRun(args.run_dir, model, optimizer, ema)
    while run.step < args.steps:
        loss = ...                                            # the batch's loss
        optimizer_step(loss, model, optimizer, (ema,))        # backward, clipping, step, EMA
        run.finish_step(args.steps, loss=loss.item())         # logs every LOG_EVERY steps
        if run.step % args.save_every == 0 or run.step == args.steps:
            run.save()
"""
from __future__ import annotations

import argparse
import csv
import math
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from course_utils.checkpoints import atomic_write  # noqa: E402
from course_utils.ddpm import EMA  # noqa: E402

LOG_EVERY = 100


def integer_in(low: int, high: int | None = None):
    """An argparse ``type``: an integer in [low, high] (``--save-every 0`` would divide by zero at the first step,
    ``--threads 100000`` crashes torch)."""
    allowed = f"an integer >= {low}" if high is None else f"an integer in [{low}, {high}]"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {allowed}, got {text!r}") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"must be {allowed}, got {value}")
        return value
    return parse


def in_range(low: float, high: float, include_low: bool = True):
    """An argparse ``type``: a finite number in [low, high) (or (low, high) with ``include_low=False``)."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
        if not math.isfinite(value) or value < low or (value == low and not include_low) or value >= high:
            raise argparse.ArgumentTypeError(f"must lie in {'[' if include_low else '('}{low}, {high}), got {text}")
        return value
    return parse


def add_training_arguments(parser: argparse.ArgumentParser, steps: int, batch_size: int, lr: float,
                           warmup: int | None = None, ema_decay: float | None = None) -> None:
    """The options every training script takes, each checked before any work (an argparse error names it)."""
    parser.add_argument("--steps", type=integer_in(1), default=steps, help=f"total optimizer steps (default {steps})")
    parser.add_argument("--batch-size", type=integer_in(1), default=batch_size)
    parser.add_argument("--lr", type=in_range(0, 1, include_low=False), default=lr)
    if warmup is not None:
        parser.add_argument("--warmup", type=integer_in(0), default=warmup, help="linear learning-rate warm-up steps")
    if ema_decay is not None:
        parser.add_argument("--ema-decay", type=in_range(0, 1), default=ema_decay)
    parser.add_argument("--seed", type=integer_in(0, 2**32 - 1), default=0)
    parser.add_argument("--threads", type=integer_in(1, 256), default=2)
    parser.add_argument("--save-every", type=integer_in(1), default=250)


def exported_file_problem(option: str, path: Path, rebuild: str) -> str | None:
    """Why ``path`` (the value of ``option``) is not an exported file a script can read, or None:
    a ``.safetensors`` file with its ``.json`` manifest beside it, as the course's scripts write
    them both. ``rebuild`` says how to make the file again (the command that exports it)."""
    manifest = path.with_suffix(".json")
    if path.suffix != ".safetensors":
        found = "not a .safetensors file"
    elif not path.is_file():
        found = "no such file"
    elif not manifest.is_file():
        found = f"no manifest {manifest.name} beside it"
    else:
        return None
    return (f"{option} needs a .safetensors file with its .json manifest beside it, "
            f"got {path} ({found}); {rebuild}")


def step_generator(seed: int, step: int) -> torch.Generator:
    """The random stream of one training step, a function of (seed, step) only."""
    return torch.Generator().manual_seed(seed * 1_000_003 + step)


def optimizer_step(loss: torch.Tensor, model: nn.Module, optimizer: torch.optim.Optimizer,
                   emas: tuple[EMA, ...] = ()) -> None:
    """The update every training script makes from a batch's ``loss``: gradients of ``model``,
    clipped to norm 1 (one unlucky batch cannot throw the weights far), the optimizer's step, then
    each average of ``emas`` follows ``model``."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    for ema in emas:
        ema.update(model)


def learning_rate(step: int, base_lr: float, warmup: int, total_steps: int | None = None,
                  decay_steps: int = 0) -> float:
    """Linear warm-up, then constant: a constant rate keeps runs of any length comparable. With
    ``decay_steps``, the last ``decay_steps`` steps before ``total_steps`` cool the rate down linearly to 0
    (the "warmup-stable-decay" schedule of Hu et al. 2024, MiniCPM, https://arxiv.org/abs/2404.06395: a
    final decay over about a tenth of training reaches the loss of a schedule that decays all along, while
    the constant phase can be continued at will; they decay exponentially, the course linearly)."""
    rate = base_lr * min(1.0, (step + 1) / max(1, warmup))
    if decay_steps and total_steps is not None:
        rate *= min(1.0, (total_steps - step) / decay_steps)
    return rate


class TrainingRun:
    """The resumable state of one training run; resumes from ``run_dir/state.pt`` when it exists."""

    def __init__(self, run_dir: Path, model: nn.Module, optimizer: torch.optim.Optimizer, ema: EMA | None = None,
                 settings: dict[str, str] | None = None,
                 extra_emas: dict[float, EMA] | None = None):
        """``settings``: what defines the weights (batch size, learning rate, target, ...). They are stored
        with the state, and resuming with different ones is refused, since the manifest would then
        record a command that did not produce the weights. ``extra_emas``: averages with other
        decays, keyed by their decay, kept beside ``ema`` so that one run can compare EMA lengths
        (saved and resumed with it; ``state.pt`` stores each under ``str(decay)``)."""
        self.run_dir, self.model, self.optimizer, self.ema = Path(run_dir), model, optimizer, ema
        self.extra_emas = extra_emas or {}
        self.settings = settings or {}
        self.step, self.wall_time = 0, 0.0
        # Losses summed since the last log row: saved with the state, so a resumed run logs the same means.
        self._loss_sums: dict[str, float] = {}
        self._steps_summed = 0
        self.state_path, self.log_path = self.run_dir / "state.pt", self.run_dir / "log.csv"
        if self.state_path.exists():
            self._load()
            print(f"resuming from step {self.step} ({self.wall_time / 60:.1f} min trained)", flush=True)
        self._drop_log_rows_after(self.step)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._clock = time.time()

    def _load(self) -> None:
        state = torch.load(self.state_path, weights_only=True, map_location="cpu")  # our own file; weights_only all the same
        # Settings a state does not record (saved before they existed) cannot be compared.
        stored = state.get("settings", {})
        changed = {key: (stored[key], value) for key, value in self.settings.items()
                   if key in stored and stored[key] != value}
        if changed:
            described = ", ".join(f"{key}: run has {old!r}, asked {new!r}" for key, (old, new) in changed.items())
            raise SystemExit(f"{self.state_path} was trained with other settings ({described}). "
                             f"Resume with the run's settings, or start a new run with --run-dir.")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.ema is not None:
            self.ema.model.load_state_dict(state["ema"])
            self.ema.num_updates = state["ema_updates"]
        stored_emas = state.get("extra_emas", {})
        for decay, extra in self.extra_emas.items():
            if str(decay) not in stored_emas:
                raise SystemExit(f"{self.state_path} holds no EMA {str(decay)!r}: "
                                 f"resume with the run's EMA decays")
            extra.model.load_state_dict(stored_emas[str(decay)])
            extra.num_updates = state["ema_updates"]
        self.step, self.wall_time = state["step"], state["wall_time"]
        self._loss_sums = dict(state.get("loss_sums", {}))
        self._steps_summed = state.get("steps_summed", 0)

    def _drop_log_rows_after(self, step: int) -> None:
        """Rows logged after the saved state are trained again on resume: drop them, not duplicate them."""
        if self.log_path.exists():
            rows = [row for row in csv.reader(self.log_path.read_text().splitlines()) if int(row[0]) <= step]
            atomic_write(self.log_path, lambda tmp: Path(tmp).write_text(
                "".join(",".join(row) + "\n" for row in rows)))

    def save(self) -> None:
        """Write the state atomically: a run killed while saving keeps its previous state."""
        state = {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                 "step": self.step, "wall_time": self.wall_time, "settings": self.settings,
                 "loss_sums": self._loss_sums, "steps_summed": self._steps_summed}
        if self.ema is not None:
            state |= {"ema": self.ema.model.state_dict(), "ema_updates": self.ema.num_updates}
        if self.extra_emas:
            state["extra_emas"] = {str(decay): extra.model.state_dict()
                                   for decay, extra in self.extra_emas.items()}
        atomic_write(self.state_path, lambda tmp: torch.save(state, tmp))

    def finish_step(self, total_steps: int, **losses: float) -> None:
        """Count one optimizer step; every LOG_EVERY steps append the mean losses to log.csv and print them."""
        self.step += 1
        self._steps_summed += 1
        for name, value in losses.items():
            self._loss_sums[name] = self._loss_sums.get(name, 0.0) + value
        if self.step % LOG_EVERY:
            return
        now = time.time()
        self.wall_time += now - self._clock
        self._clock = now
        means = {name: total / self._steps_summed for name, total in self._loss_sums.items()}
        with open(self.log_path, "a", newline="") as handle:
            csv.writer(handle).writerow([self.step, *(f"{m:.5f}" for m in means.values()), f"{self.wall_time:.1f}"])
        shown = " ".join(f"{name} {mean:.4f}" for name, mean in means.items())
        print(f"step {self.step}/{total_steps} {shown} {self.wall_time / 60:.1f} min", flush=True)
        self._loss_sums, self._steps_summed = {}, 0
