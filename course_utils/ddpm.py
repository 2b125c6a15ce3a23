"""Training and sampling a pixel-space DDPM (notebook 03).

Training (Ho et al. 2020, algorithm 1): pick x_0 from the data, t uniformly, eps ~ N(0, I); form
x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps and minimise || target - f_theta(x_t, t) ||^2.
The target is one of three equivalent parametrisations (``prediction_type`` in ``diffusers``):
"epsilon" (the noise, Ho et al. 2020), "v_prediction" (v = sqrt(abar) eps - sqrt(1 - abar) x_0,
Salimans & Ho 2022, https://arxiv.org/abs/2202.00512, section 4) or "sample" (x_0 itself). Given x_t,
each determines the other two (:func:`predicted_x0_and_eps`), so every sampler works with all three.

Sampling (algorithm 2, with the respacing of Nichol & Dhariwal 2021 so fewer than T steps can be used):
from x_T ~ N(0, I), repeatedly estimate x_0 from the predicted noise, then draw x_{t'} from the
posterior q(x_{t'} | x_t, x_0) of an earlier step t' < t. ``ddpm_step`` is the same computation as
``diffusers.DDPMScheduler.step`` (epsilon prediction, "fixed_small" variance, clipping x_0 to [-1, 1]).
"""
from __future__ import annotations

import copy
import math
import numbers

import torch
from torch import nn
from tqdm.auto import tqdm

from .runtime import random_integers, random_normal
from .schedules import check_alpha_bar, check_num_timesteps, q_sample
from .unet import check_model, predict_in_chunks
from .validation import (DIFFUSION_SLACK, check_bool, check_choice, check_generator, check_image_range, check_images,
                         check_integer, check_number, check_path, check_same_shape, check_sizes, check_tensor)


PREDICTION_TYPES = ("epsilon", "v_prediction", "sample")


def check_prediction_type(prediction_type: str) -> None:
    check_choice("prediction_type", prediction_type, PREDICTION_TYPES)


def _check_abar_t(abar_t: torch.Tensor | float, like: torch.Tensor) -> None:
    """``abar_t`` is a number in (0, 1], or a floating-point tensor holding one value or one per image of ``like``.
    A tensor's values are not read here (that would synchronise a GPU at every step)."""
    if isinstance(abar_t, numbers.Real) and not isinstance(abar_t, bool):
        check_number("abar_t", float(abar_t), 0, 1, open_low=True)
    elif not torch.is_tensor(abar_t) or not abar_t.is_floating_point():
        got = f"dtype {abar_t.dtype}" if torch.is_tensor(abar_t) else f"{abar_t!r} ({type(abar_t).__name__})"
        raise TypeError(f"abar_t must be a number in (0, 1] or a floating-point tensor such as alpha_bar[t] "
                        f"(not the timesteps t themselves), got {got}")
    elif abar_t.dim() > 0 and abar_t.numel() not in (1, like.shape[0]):
        raise ValueError(f"abar_t must hold one value, or one per image ({like.shape[0]}), got shape {tuple(abar_t.shape)}")


def _check_image_shape(image_shape: tuple[int, ...]) -> None:
    check_sizes("image_shape", image_shape, length=3, minimum=1)  # (channels, height, width)


def _broadcast(abar_t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """abar_t as a scalar or one value per image, shaped to multiply a batch like ``like``."""
    abar_t = torch.as_tensor(abar_t, dtype=like.dtype, device=like.device)
    return abar_t if abar_t.dim() == 0 else abar_t.reshape(-1, *([1] * (like.dim() - 1)))


def training_target(x0: torch.Tensor, noise: torch.Tensor, abar_t: torch.Tensor,
                    prediction_type: str = "epsilon") -> torch.Tensor:
    """What the network learns to output for x_t = sqrt(abar) x_0 + sqrt(1 - abar) eps:
    eps ("epsilon"), v = sqrt(abar) eps - sqrt(1 - abar) x_0 ("v_prediction"), or x_0 ("sample")
    (``diffusers.DDPMScheduler.get_velocity`` computes the same v)."""
    check_tensor("x0", x0, floating=True)
    check_same_shape("noise", noise, "x0", x0)
    _check_abar_t(abar_t, x0)
    check_prediction_type(prediction_type)
    if prediction_type == "epsilon":
        return noise
    if prediction_type == "sample":
        return x0
    abar = _broadcast(abar_t, x0)
    return abar.sqrt() * noise - (1 - abar).sqrt() * x0


def predicted_x0_and_eps(model_output: torch.Tensor, x_t: torch.Tensor, abar_t: torch.Tensor,
                         prediction_type: str = "epsilon") -> tuple[torch.Tensor, torch.Tensor]:
    """(x0_hat, eps_hat) from the network's output, by inverting x_t = a x_0 + s eps, a = sqrt(abar), s = sqrt(1 - abar):

    epsilon:       x0_hat = (x_t - s eps_hat) / a,     eps_hat = output
    v_prediction:  x0_hat = a x_t - s v_hat,           eps_hat = s x_t + a v_hat    (a^2 + s^2 = 1)
    sample:        x0_hat = output,                    eps_hat = (x_t - a x0_hat) / s
    Dividing by a (for epsilon) or s (for sample) is what magnifies errors at the ends of the schedule:
    1 / a is about 20,000 at t = 999 of the cosine schedule. v divides by neither.
    """
    check_tensor("x_t", x_t, floating=True)
    check_same_shape("model_output", model_output, "x_t", x_t)
    _check_abar_t(abar_t, x_t)
    check_prediction_type(prediction_type)
    if prediction_type == "sample" and not torch.is_tensor(abar_t) and abar_t == 1:
        raise ValueError("abar_t must be below 1 for prediction_type 'sample' (eps_hat divides by sqrt(1 - abar_t)), got 1")
    abar = _broadcast(abar_t, x_t)
    a, s = abar.sqrt(), (1 - abar).sqrt()
    if prediction_type == "epsilon":
        return (x_t - s * model_output) / a, model_output
    if prediction_type == "v_prediction":
        return a * x_t - s * model_output, s * x_t + a * model_output
    return model_output, (x_t - a * model_output) / s


TIME_SAMPLINGS = ("uniform", "lognormal")


def training_timesteps(alpha_bar: torch.Tensor, size: int, generator: torch.Generator | None = None,
                       device: str | torch.device = "cpu", time_sampling: str = "uniform") -> torch.Tensor:
    """The timesteps a training batch is noised to.

    "uniform": t ~ U{0, ..., T-1} (Ho et al. 2020, algorithm 1). "lognormal": the noise level
    sigma_t = sqrt((1 - abar_t) / abar_t) drawn log-normally, ln sigma ~ N(-1.2, 1.2^2), and rounded
    to the nearest of the T discrete levels (Karras et al. 2022, EDM, section 5 and table 1: training
    concentrates on the middle noise levels, where the loss can still be reduced).
    """
    check_integer("size", size, 0, 2**31 - 1)  # the batch size
    check_alpha_bar(alpha_bar)
    check_choice("time_sampling", time_sampling, TIME_SAMPLINGS)
    if time_sampling == "uniform":
        return random_integers(len(alpha_bar), size, generator, device)
    log_sigma = -1.2 + 1.2 * random_normal((size,), generator, device)
    log_sigmas = 0.5 * torch.log((1 - alpha_bar) / alpha_bar).to(device)  # increasing in t
    index = torch.searchsorted(log_sigmas, log_sigma).clamp(1, len(alpha_bar) - 1)
    nearer_below = (log_sigma - log_sigmas[index - 1]) < (log_sigmas[index] - log_sigma)
    return index - nearer_below.long()


def min_snr_weight(abar_t: torch.Tensor, prediction_type: str, gamma: float) -> torch.Tensor:
    """Min-SNR-gamma loss weights (Hang et al. 2023, https://arxiv.org/abs/2303.09556, eq. 7).

    Measured on x_0, the weight is min(SNR_t, gamma), SNR_t = abar_t / (1 - abar_t); each target's plain
    loss already weights x_0 errors by SNR (epsilon), SNR + 1 (v) or 1 (x_0), so the loss is divided by
    that. It caps the weight of the nearly clean steps, whose small errors otherwise dominate the gradient.
    """
    check_tensor("abar_t", abar_t, floating=True)
    check_prediction_type(prediction_type)
    check_number("gamma", gamma, 0.0, math.inf, open_low=True)
    snr = abar_t / (1 - abar_t)
    plain = {"epsilon": snr, "v_prediction": snr + 1, "sample": torch.ones_like(snr)}[prediction_type]
    return torch.clamp(snr, max=gamma) / plain


def ddpm_loss(model: nn.Module, x0: torch.Tensor, alpha_bar: torch.Tensor,
              generator: torch.Generator | None = None, prediction_type: str = "epsilon",
              time_sampling: str = "uniform", snr_gamma: float | None = None) -> torch.Tensor:
    """The simple loss L = E_{t, eps} || target - f_theta(x_t, t) ||^2 on a batch ``x0``, where the
    target is eps, v or x_0 (:func:`training_target`). t and eps are drawn on ``generator``'s device and
    moved to ``x0``'s, so a seeded CPU generator gives the same draw whatever device trains.

    ``time_sampling`` chooses how t is drawn (:func:`training_timesteps`); ``snr_gamma`` weights each
    image's error by :func:`min_snr_weight` (None: unweighted, the simple loss)."""
    check_images("x0", x0)
    check_image_range("x0", x0, slack=DIFFUSION_SLACK, centred=True)  # [-1, 1] images or scaled latents
    check_model(model, x0.shape[1:], x0.dtype, sampling=False)
    check_alpha_bar(alpha_bar)
    check_generator("generator", generator)
    check_prediction_type(prediction_type)
    timesteps = training_timesteps(alpha_bar, x0.shape[0], generator, x0.device, time_sampling)
    noise = random_normal(x0.shape, generator, x0.device, x0.dtype)
    alpha_bar = alpha_bar.to(x0.device)
    x_t = q_sample(x0, timesteps, noise, alpha_bar)
    target = training_target(x0, noise, alpha_bar[timesteps], prediction_type)
    squared_error = (model(x_t, timesteps) - target) ** 2
    if snr_gamma is None:
        return torch.mean(squared_error)
    weight = min_snr_weight(alpha_bar[timesteps], prediction_type, snr_gamma)
    return torch.mean(weight * squared_error.flatten(1).mean(1))


class EMA:
    """Exponential moving average of a model's weights: theta_ema <- d * theta_ema + (1 - d) * theta.

    Sampling from the averaged weights gives cleaner images than the last noisy SGD iterate
    (DDPM uses d = 0.9999; a short run needs a shorter memory, so the decay warms up as
    min(decay, (1 + n) / (10 + n)) after n updates, as in ``diffusers.training_utils.EMAModel``).
    """

    def __init__(self, model: nn.Module, decay: float = 0.999):
        if isinstance(decay, bool) or not isinstance(decay, (int, float)) or not 0.0 < decay < 1.0:
            raise ValueError(f"decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.num_updates = 0
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.num_updates += 1
        decay = min(self.decay, (1 + self.num_updates) / (10 + self.num_updates))
        for averaged, current in zip(self.model.parameters(), model.parameters()):
            averaged.lerp_(current, 1.0 - decay)


def inference_timesteps(num_train_timesteps: int, num_inference_steps: int) -> torch.Tensor:
    """The decreasing timesteps a sampler visits: t_i = i * (T // N), i = N-1..0 ("leading" spacing,
    ``diffusers.DDPMScheduler.set_timesteps``)."""
    check_num_timesteps(num_train_timesteps, "num_train_timesteps")
    check_integer("num_inference_steps", num_inference_steps, 1, num_train_timesteps)
    step_ratio = num_train_timesteps // num_inference_steps
    return torch.arange(num_inference_steps - 1, -1, -1) * step_ratio


def ddpm_step(model_output: torch.Tensor, t: int, prev_t: int, x_t: torch.Tensor, alpha_bar: torch.Tensor,
              noise: torch.Tensor | None, clip_range: float | None = 1.0,
              prediction_type: str = "epsilon") -> torch.Tensor:
    """One ancestral step x_t -> x_{prev_t} (DDPM eqs. 6-7 and 15, for an arbitrary earlier step prev_t).

    x0_hat = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t)     (clipped to [-clip_range, clip_range];
             for v or x_0 outputs, :func:`predicted_x0_and_eps`)
    mean   = sqrt(abar_prev) beta / (1 - abar_t) x0_hat + sqrt(alpha) (1 - abar_prev) / (1 - abar_t) x_t
    var    = (1 - abar_prev) / (1 - abar_t) beta,   alpha = abar_t / abar_prev, beta = 1 - alpha,
    and x_prev = mean + sqrt(var) noise, with no noise on the last step (prev_t < 0, abar_prev = 1).
    ``clip_range`` is 1 for images in [-1, 1], ``latents.LATENT_CLIP_RANGE`` for latents, None for no clipping
    (``clip_sample_range`` in ``diffusers``). Clipping matters most on the first step: with the cosine
    schedule 1 / sqrt(abar_t) is about 20,000 at t = 999 (where 1,000-step sampling starts) and 71 at
    t = 990 (100 steps), so any error in eps is magnified that much in x0_hat.
    """
    check_alpha_bar(alpha_bar)
    check_integer("t", t, 0, len(alpha_bar) - 1)
    check_integer("prev_t", prev_t, -len(alpha_bar), t - 1)  # an earlier step; any negative value: the end
    if clip_range is not None:
        check_number("clip_range", clip_range, 0, 1e6, open_low=True)
    if prev_t >= 0 and noise is None:
        raise ValueError("noise is required for every step but the last (prev_t >= 0)")
    if noise is not None:
        check_same_shape("noise", noise, "x_t", x_t)
    abar_t = alpha_bar[t]
    abar_prev = alpha_bar[prev_t] if prev_t >= 0 else torch.ones((), dtype=alpha_bar.dtype, device=alpha_bar.device)
    alpha = abar_t / abar_prev
    beta = 1 - alpha
    x0_hat, _ = predicted_x0_and_eps(model_output, x_t, abar_t, prediction_type)
    if clip_range is not None:
        x0_hat = x0_hat.clamp(-clip_range, clip_range)
    mean = (abar_prev.sqrt() * beta / (1 - abar_t)) * x0_hat + (alpha.sqrt() * (1 - abar_prev) / (1 - abar_t)) * x_t
    if prev_t < 0:
        return mean
    variance = ((1 - abar_prev) / (1 - abar_t) * beta).clamp(min=1e-20)
    return mean + variance.sqrt() * noise


@torch.no_grad()
def sample_ddpm(model: nn.Module, num_images: int, alpha_bar: torch.Tensor, num_inference_steps: int = 100,
                generator: torch.Generator | None = None, image_shape: tuple[int, ...] = (1, 28, 28),
                trajectory_every: int = 0, progress: bool = True, clip_range: float | None = 1.0,
                prediction_type: str = "epsilon"):
    """Draw ``num_images`` samples with :func:`ddpm_step`; returns images in [-1, 1] (for latents, pass
    ``image_shape=(4, 8, 8)`` and ``clip_range=latents.LATENT_CLIP_RANGE``). ``prediction_type`` is what
    the model outputs (a shipped model's is ``manifest["config"]["prediction_type"]``).

    With ``trajectory_every = k > 0`` also returns, for figures, a list of (t', x_t') after every k-th step
    and the last: t' is the timestep the step reached (0 for the final image).
    """
    check_integer("num_images", num_images, 1, 1_000_000)
    check_alpha_bar(alpha_bar, values=True)
    timesteps = inference_timesteps(len(alpha_bar), num_inference_steps)
    check_generator("generator", generator)
    _check_image_shape(image_shape)
    check_model(model, image_shape)
    check_integer("trajectory_every", trajectory_every, 0, math.inf)
    check_bool("progress", progress)
    if clip_range is not None:
        check_number("clip_range", clip_range, 0, 1e6, open_low=True)
    check_prediction_type(prediction_type)
    device = next(model.parameters()).device
    alpha_bar = alpha_bar.to(device=device, dtype=torch.float32)
    step_ratio = len(alpha_bar) // num_inference_steps
    x = random_normal((num_images, *image_shape), generator, device)
    trajectory = []
    for i, t in enumerate(tqdm(timesteps.tolist(), desc="DDPM sampling", disable=not progress)):
        output = predict_in_chunks(model, x, torch.full((num_images,), t, device=device))
        noise = random_normal(x.shape, generator, device) if t > 0 else None
        x = ddpm_step(output, t, t - step_ratio, x, alpha_bar, noise, clip_range, prediction_type)
        if trajectory_every and (i % trajectory_every == 0 or t == 0):
            trajectory.append((max(t - step_ratio, 0), x.clone()))
    return (x, trajectory) if trajectory_every else x


def load_ddpm(name: str = "ddpm_mnist", data_dir=None):
    """A shipped DDPM (``"ddpm_mnist"`` in pixels, ``"latent_ddpm_mnist"`` on the VAE's latents; ``data_dir`` may
    name another folder than ``data/``, such as a training run's): returns ``(ema_unet, alpha_bar, manifest)``,
    the UNet in eval mode and float32.

    The schedule and the prediction target are read from the configuration stored inside the weights file
    (covered by its checksum), so model, schedule and target match; ``manifest["config"]`` is that
    configuration (pass ``manifest["config"]["prediction_type"]`` to the samplers).
    """
    from .data import DATA_DIR
    from .schedules import alphas_cumprod, make_betas
    from .unet import load_tiny_unet

    if not isinstance(name, str):
        raise TypeError(f"name must be the name of a checkpoint in data/, such as 'ddpm_mnist', got {name!r}")
    from .checkpoints import load_manifest

    data_dir = check_path("data_dir", DATA_DIR if data_dir is None else data_dir)
    manifest_file = data_dir / f"{name}.json"  # a missing one: load_tiny_unet says how to restore it
    config = load_manifest(manifest_file).get("config") if manifest_file.is_file() else {"schedule": "unread"}
    if not isinstance(config, dict) or "schedule" not in config:
        raise ValueError(f"name must name a DDPM ('ddpm_mnist', 'latent_ddpm_mnist' or one trained by "
                         f"scripts/train_ddpm.py), got {name!r}, which is not one (no noise schedule in its "
                         f"manifest); load the flow model with course_utils.flow.load_flow, the classifier "
                         f"with course_utils.metrics.load_classifier")
    model, manifest = load_tiny_unet(name, data_dir)
    config = manifest["config"]
    config.setdefault("prediction_type", "epsilon")  # checkpoints written before the target was recorded
    alpha_bar = alphas_cumprod(make_betas(config["schedule"], config["num_train_timesteps"])).float()
    return model, alpha_bar, manifest
