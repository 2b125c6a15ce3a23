"""The first cell of every notebook: reproducible, and the same locally, on Binder and on Colab.

``setup`` seeds every random number generator the course uses, fixes the number of CPU threads
(results on a CPU depend on it), and picks the fastest device present.
"""
from __future__ import annotations

import os
import random

import numpy as np
import torch

from .validation import check_integer

COURSE_REPOSITORY = "https://github.com/diffusion-course/diffusion-course"
MAX_THREADS = 256


def _mps_available() -> bool:
    return getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()


def pick_device(preferred: str = "auto") -> torch.device:
    """``"auto"`` picks CUDA, then Apple's MPS, then the CPU; or name one of those explicitly."""
    if preferred not in ("auto", "cuda", "mps", "cpu"):
        raise ValueError(f"device must be one of 'auto', 'cuda', 'mps', 'cpu', got {preferred!r}")
    if preferred == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if preferred == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for, but this torch sees no CUDA GPU; use 'auto' or 'cpu'")
    if preferred == "mps" and not _mps_available():
        raise ValueError("device 'mps' was asked for, but Apple's MPS is not available here; use 'auto' or 'cpu'")
    return torch.device(preferred)


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and torch's generators (all devices)."""
    if not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise ValueError(f"seed must be an integer in [0, 2**32), got {seed!r}")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def setup(seed: int = 0, threads: int = 2, device: str = "auto") -> torch.device:
    """Seed, fix the CPU thread count, and return the device to compute on."""
    # More threads than this only oversubscribes the CPU, and torch crashes outright at about 100,000.
    check_integer("threads", threads, 1, MAX_THREADS)
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    torch.set_num_threads(threads)
    seed_everything(seed)
    return pick_device(device)
