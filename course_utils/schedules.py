"""Noise schedules and the closed-form forward process q(x_t | x_0) (notebook 02).

DDPM (Ho et al. 2020, https://arxiv.org/abs/2006.11239) corrupts an image x_0 in T small steps,
x_t = sqrt(1 - beta_t) x_{t-1} + sqrt(beta_t) eps. Composing the steps gives the closed form (eq. 4)

    q(x_t | x_0) = N( sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I ),  alpha_bar_t = prod_{s<=t} (1 - beta_s),

so any x_t is one line: x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps.
A schedule is the choice of beta_1..beta_T; the signal-to-noise ratio SNR(t) = alpha_bar_t / (1 - alpha_bar_t)
says how much of the image survives at step t (Kingma et al. 2021, https://arxiv.org/abs/2107.00630).
Index t runs 0..T-1 here, as in ``diffusers``.
"""
from __future__ import annotations

import math
import numbers

import torch

from .validation import (DIFFUSION_SLACK, check_choice, check_image_range, check_integer, check_number, check_same_shape,
                         check_tensor)

SCHEDULES = ("linear", "scaled_linear", "cosine", "sigmoid")


def check_num_timesteps(num_timesteps: int, name: str = "num_timesteps") -> None:
    """T, the number of diffusion steps, in [2, 100000]; ``name`` as the caller spells it (the samplers say
    ``num_train_timesteps``, as ``diffusers`` does)."""
    check_integer(name if name == "num_timesteps" else f"{name} (the schedule's num_timesteps)", num_timesteps, 2, 100_000)


def _check_beta_range(beta_start: float, beta_end: float) -> None:
    for name, value in (("beta_start", beta_start), ("beta_end", beta_end)):
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"{name} must be a number in (0, 1), got {value!r} ({type(value).__name__})")
    if not 0.0 < beta_start <= beta_end < 1.0:
        raise ValueError(f"need 0 < beta_start <= beta_end < 1, got beta_start={beta_start}, beta_end={beta_end}")


def check_alpha_bar(alpha_bar: torch.Tensor, *, values: bool = False) -> None:
    """``alpha_bar`` is a table alpha_bar_0..alpha_bar_{T-1}: a 1-D floating-point tensor of T >= 2 entries;
    with ``values``, all in [0, 1]. Reading the values costs a device synchronisation, so the samplers check
    them once on entry, and the per-step functions only the type and shape."""
    if not torch.is_tensor(alpha_bar) or alpha_bar.dim() != 1 or not alpha_bar.is_floating_point():
        got = (f"shape {tuple(alpha_bar.shape)}, dtype {alpha_bar.dtype}" if torch.is_tensor(alpha_bar)
               else type(alpha_bar).__name__)
        raise TypeError(f"alpha_bar must be a 1-D floating-point tensor (e.g. alphas_cumprod(make_betas('cosine', "
                        f"1000))), got {got}")
    if len(alpha_bar) < 2:
        raise ValueError(f"alpha_bar must hold at least 2 timesteps, got {len(alpha_bar)}")
    if values and not bool(((alpha_bar >= 0) & (alpha_bar <= 1)).all()):
        raise ValueError(f"alpha_bar must hold values in [0, 1], got values from {alpha_bar.min().item():.4g} "
                         f"to {alpha_bar.max().item():.4g}")


def linear_betas(num_timesteps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> torch.Tensor:
    """beta_t rising linearly from ``beta_start`` to ``beta_end`` (DDPM, Ho et al. 2020, section 4).

    ``diffusers`` name: ``beta_schedule="linear"``.
    """
    check_num_timesteps(num_timesteps)
    _check_beta_range(beta_start, beta_end)
    return torch.linspace(beta_start, beta_end, num_timesteps, dtype=torch.float64)


def scaled_linear_betas(num_timesteps: int = 1000, beta_start: float = 0.00085, beta_end: float = 0.012) -> torch.Tensor:
    """sqrt(beta_t) linear in t: the schedule of Stable Diffusion (Rombach et al. 2022).

    ``diffusers`` name: ``beta_schedule="scaled_linear"``.
    """
    check_num_timesteps(num_timesteps)
    _check_beta_range(beta_start, beta_end)
    return torch.linspace(beta_start**0.5, beta_end**0.5, num_timesteps, dtype=torch.float64) ** 2


def cosine_betas(num_timesteps: int = 1000, offset: float = 0.008, max_beta: float = 0.999) -> torch.Tensor:
    """The cosine schedule of Nichol & Dhariwal 2021 (https://arxiv.org/abs/2102.09672, eq. 17).

    alpha_bar(t) = f(t) / f(0),  f(t) = cos^2( (t/T + s) / (1 + s) * pi/2 ),  s = ``offset``;
    beta_t = 1 - alpha_bar(t+1) / alpha_bar(t), clipped at ``max_beta`` so the last step is not singular.
    ``diffusers`` name: ``beta_schedule="squaredcos_cap_v2"``.
    """
    check_num_timesteps(num_timesteps)
    check_number("offset", offset, 0, 1, open_low=True)
    check_number("max_beta", max_beta, 0, 1, open_low=True)

    def alpha_bar(fraction: float) -> float:
        return math.cos((fraction + offset) / (1 + offset) * math.pi / 2) ** 2

    betas = [
        min(1 - alpha_bar((i + 1) / num_timesteps) / alpha_bar(i / num_timesteps), max_beta)
        for i in range(num_timesteps)
    ]
    return torch.tensor(betas, dtype=torch.float64)


def sigmoid_betas(num_timesteps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> torch.Tensor:
    """beta_t following a sigmoid over [-6, 6], from ``beta_start`` to ``beta_end`` (GeoDiff, Xu et al. 2022).

    ``diffusers`` name: ``beta_schedule="sigmoid"``.
    """
    check_num_timesteps(num_timesteps)
    _check_beta_range(beta_start, beta_end)
    steps = torch.linspace(-6, 6, num_timesteps, dtype=torch.float64)
    return torch.sigmoid(steps) * (beta_end - beta_start) + beta_start


BETA_FUNCTIONS = {
    "linear": linear_betas,
    "scaled_linear": scaled_linear_betas,
    "cosine": cosine_betas,
    "sigmoid": sigmoid_betas,
}
DIFFUSERS_NAMES = {"linear": "linear", "scaled_linear": "scaled_linear", "cosine": "squaredcos_cap_v2", "sigmoid": "sigmoid"}


def make_betas(schedule: str, num_timesteps: int = 1000) -> torch.Tensor:
    """beta_1..beta_T (float64) for a schedule named in :data:`SCHEDULES`."""
    check_choice("schedule", schedule, SCHEDULES)
    return BETA_FUNCTIONS[schedule](num_timesteps)


def alphas_cumprod(betas: torch.Tensor) -> torch.Tensor:
    """alpha_bar_t = prod_{s<=t} (1 - beta_s)  (DDPM eq. 4); ``diffusers``: ``scheduler.alphas_cumprod``."""
    check_tensor("betas", betas, dims=1)
    if not betas.is_floating_point():
        raise TypeError(f"betas must be a floating-point tensor, got dtype {betas.dtype}")
    if not bool(((betas >= 0) & (betas <= 1)).all()):
        raise ValueError(f"betas must lie in [0, 1], got values from {betas.min().item():.4g} to {betas.max().item():.4g}")
    return torch.cumprod(1.0 - betas, dim=0)


def snr(alpha_bar: torch.Tensor) -> torch.Tensor:
    """Signal-to-noise ratio SNR_t = alpha_bar_t / (1 - alpha_bar_t)  (Kingma et al. 2021, eq. 2)."""
    check_tensor("alpha_bar", alpha_bar)
    if not alpha_bar.is_floating_point():
        raise TypeError(f"alpha_bar must be a floating-point tensor, got dtype {alpha_bar.dtype}")
    if not bool(((alpha_bar >= 0) & (alpha_bar < 1)).all()):
        raise ValueError(f"alpha_bar must lie in [0, 1) (SNR is infinite at 1), got values from "
                         f"{alpha_bar.min().item():.4g} to {alpha_bar.max().item():.4g}")
    return alpha_bar / (1.0 - alpha_bar)


def check_timesteps(timesteps: torch.Tensor, num_timesteps: int) -> None:
    """``timesteps`` is an integer tensor with values in [0, num_timesteps - 1] (it reads the values)."""
    check_num_timesteps(num_timesteps)
    check_tensor("timesteps", timesteps)
    if timesteps.is_floating_point() or timesteps.is_complex() or timesteps.dtype == torch.bool:
        raise TypeError(f"timesteps must be integers, got dtype {timesteps.dtype}")
    if timesteps.numel() and (int(timesteps.min()) < 0 or int(timesteps.max()) >= num_timesteps):
        raise ValueError(
            f"timesteps must lie in [0, {num_timesteps - 1}], got values from "
            f"{int(timesteps.min())} to {int(timesteps.max())}"
        )


def q_sample(x0: torch.Tensor, timesteps: torch.Tensor, noise: torch.Tensor, alpha_bar: torch.Tensor) -> torch.Tensor:
    """Sample x_t ~ q(x_t | x_0) in one step: x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps.

    ``timesteps`` holds one integer per image in ``x0``; ``diffusers``: ``scheduler.add_noise(x0, noise, t)``.
    """
    if not torch.is_tensor(x0) or not x0.is_floating_point():
        raise TypeError(f"x0 must be a floating-point tensor (images in [-1, 1]), got "
                        f"{x0.dtype if torch.is_tensor(x0) else type(x0).__name__}")
    check_alpha_bar(alpha_bar)
    try:
        timesteps = torch.as_tensor(timesteps, device=x0.device)
    except (TypeError, ValueError, RuntimeError):
        raise TypeError(f"timesteps must be a tensor or a list of integers, got {timesteps!r}") from None
    check_timesteps(timesteps, len(alpha_bar))
    timesteps = timesteps.long().reshape(-1)
    if len(timesteps) not in (1, len(x0)):
        raise ValueError(f"timesteps must hold one timestep per image of x0 ({len(x0)}), or one for all, "
                         f"got {len(timesteps)}")
    check_same_shape("noise", noise, "x0", x0)
    check_image_range("x0", x0, slack=DIFFUSION_SLACK, centred=True)  # [-1, 1] images or scaled latents
    abar = alpha_bar.to(device=x0.device, dtype=x0.dtype)[timesteps].reshape(-1, *([1] * (x0.dim() - 1)))
    return abar.sqrt() * x0 + (1.0 - abar).sqrt() * noise
