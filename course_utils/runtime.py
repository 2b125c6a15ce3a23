"""The first cell of every notebook: reproducible, and the same locally, on Binder and on Colab.

``setup`` seeds every random number generator the course uses, fixes the number of CPU threads
(results on a CPU depend on it), and picks the fastest device present.
"""
from __future__ import annotations

import math
import os
import random

import numpy as np
import torch

from .validation import check_choice, check_device, check_generator, check_integer, check_sizes, mps_available

COURSE_REPOSITORY = "https://github.com/diffusion-course/diffusion-course"
MAX_THREADS = 256
DEVICES = ("auto", "cuda", "mps", "cpu")


def pick_device(preferred: str = "auto") -> torch.device:
    """``"auto"`` picks CUDA, then Apple's MPS, then the CPU; or name one of those explicitly."""
    check_choice("preferred", preferred, DEVICES)
    if preferred == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if preferred == "cuda" and not torch.cuda.is_available():
        raise ValueError("preferred device 'cuda' was asked for, but this torch sees no CUDA GPU; use 'auto' or 'cpu'")
    if preferred == "mps" and not mps_available():
        raise ValueError("preferred device 'mps' was asked for, but Apple's MPS is not available here; use 'auto' or 'cpu'")
    return torch.device(preferred)


def _draw_device(generator: torch.Generator | None, device: str | torch.device):
    """Where a draw for ``device`` is made: on ``generator``'s own device (then moved), or on ``device`` without one."""
    check_generator("generator", generator)
    check_device("device", device, available=False)  # the draw is only moved there
    return generator.device if generator is not None else device


def random_normal(shape: tuple[int, ...], generator: torch.Generator | None = None,
                  device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """N(0, I) noise of ``shape`` on ``device``, drawn on ``generator``'s own device and then moved there.

    A seeded CPU generator therefore gives the same numbers whichever device computes: a GPU run starts
    from the CPU run's noise, and differs from it only by floating-point rounding. (``diffusers``'
    ``randn_tensor`` follows the same rule.) Without a generator the draw is made on ``device``."""
    check_sizes("shape", shape)
    draw_device = _draw_device(generator, device)
    if not isinstance(dtype, torch.dtype) or not (dtype.is_floating_point or dtype.is_complex):
        raise TypeError(f"dtype must be a floating-point torch.dtype such as torch.float32, got {dtype!r}")
    return torch.randn(shape, generator=generator, device=draw_device, dtype=dtype).to(device)


def random_uniform(shape: tuple[int, ...], generator: torch.Generator | None = None,
                   device: str | torch.device = "cpu") -> torch.Tensor:
    """U[0, 1) numbers of ``shape`` (float32), drawn like :func:`random_normal` (flow matching's sigma)."""
    check_sizes("shape", shape)
    return torch.rand(shape, generator=generator, device=_draw_device(generator, device)).to(device)


def random_integers(high: int, size: int, generator: torch.Generator | None = None,
                    device: str | torch.device = "cpu") -> torch.Tensor:
    """``size`` integers uniform in [0, high), drawn like :func:`random_normal` (timesteps, batch indices)."""
    check_integer("high", high, 1, math.inf)
    check_integer("size", size, 0, math.inf)
    return torch.randint(0, high, (size,), generator=generator, device=_draw_device(generator, device)).to(device)


def synchronize(device: str | torch.device) -> None:
    """Wait until the work queued on ``device`` has finished, so that a clock read next times the work itself.

    CUDA and MPS run asynchronously: a call returns once its kernels are queued, and without this a timing
    measures little more than the launches. On the CPU every call has already finished: nothing to wait for."""
    device = check_device("device", device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and torch's generators (all devices)."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise ValueError(f"seed must be an integer in [0, 2**32), got {seed!r}")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def setup(seed: int = 0, threads: int = 2, device: str = "auto") -> torch.device:
    """Seed, fix the CPU thread count, and return the device to compute on."""
    # More threads than this only oversubscribes the CPU, and torch crashes outright at about 100,000.
    check_integer("threads", threads, 1, MAX_THREADS)
    check_choice("device", device, DEVICES)
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    torch.set_num_threads(threads)
    seed_everything(seed)
    return pick_device(device)
