"""Faster samplers for a trained diffusion model (notebook 04): DDIM by hand, and any diffusers scheduler.

DDIM (Song, Meng & Ermon 2021, "Denoising Diffusion Implicit Models", https://arxiv.org/abs/2010.02502)
keeps the DDPM network and its marginals q(x_t | x_0) but replaces the Markov chain by a family of
processes indexed by eta. One step from t to an earlier step t' < t is their eq. 12:

    x_t' = sqrt(abar_t') * x0_hat                       "predicted x_0"
         + sqrt(1 - abar_t' - sigma_t^2) * eps_hat      "direction pointing to x_t"
         + sigma_t * z,                                 random noise, z ~ N(0, I)
    x0_hat = (x_t - sqrt(1 - abar_t) * eps_hat) / sqrt(abar_t),
    sigma_t = eta * sqrt((1 - abar_t') / (1 - abar_t)) * sqrt(1 - abar_t / abar_t')        (eq. 16)

eta = 0 is deterministic (the same noise x_T always gives the same image: a discretisation of the
probability-flow ODE); eta = 1 gives the DDPM posterior variance. ``ddim_step`` is the same computation
as ``diffusers.DDIMScheduler.step`` (x0_hat clipped to [-1, 1], ``set_alpha_to_one``). A model that
predicts v or x_0 instead of eps gives (x0_hat, eps_hat) by ``course_utils.ddpm.predicted_x0_and_eps``.

The other samplers of the notebook come from ``diffusers`` through :func:`make_scheduler`, and all run
through one loop, :func:`sample_with_scheduler`, which also counts the network evaluations (NFE).
:func:`sample_in_batches` draws many samples in batches from one seeded generator, as the measuring
scripts do.
"""
from __future__ import annotations

import inspect
import math
from typing import Callable

import torch
from torch import nn
from tqdm.auto import tqdm

from .ddpm import _check_image_shape, check_prediction_type, inference_timesteps, predicted_x0_and_eps
from .runtime import random_normal
from .schedules import DIFFUSERS_NAMES, check_alpha_bar, check_num_timesteps
from .unet import check_model, predict_in_chunks
from .validation import check_bool, check_choice, check_generator, check_integer, check_number, check_same_shape

SAMPLERS = ("ddpm", "ddim", "dpm_solver++", "euler_karras", "heun_karras", "unipc")
# Karras et al. 2022 (table 1) start their noise levels at sigma_max = 80 for images in [-1, 1]. The cosine
# schedule's own last level is sigma(999) = sqrt((1 - abar) / abar), about 20,000: Karras spacing from there
# spends most of a few steps at noise levels hundreds of times the image's scale (notebook 04, section 4).
KARRAS_SIGMA_MAX = 80.0
SPACINGS = ("leading", "trailing")


def check_num_inference_steps(num_inference_steps: int, num_train_timesteps: int = 1000) -> None:
    check_num_timesteps(num_train_timesteps, "num_train_timesteps")
    check_integer("num_inference_steps", num_inference_steps, 1, num_train_timesteps)


def sampling_timesteps(num_train_timesteps: int, num_inference_steps: int, spacing: str = "trailing") -> torch.Tensor:
    """The decreasing timesteps a few-step sampler visits (Lin et al. 2024, https://arxiv.org/abs/2305.08891, table 2).

    - ``"leading"``: t_i = i * (T // N), i = N-1..0, so 5 steps visit 800, 600, 400, 200, 0. The first step
      treats pure noise as x_800, where the cosine schedule still keeps sqrt(abar) = 0.31 of the image.
      (``course_utils.ddpm.inference_timesteps``; ``diffusers`` DDPM/DDIM default.)
    - ``"trailing"``: t_i = round(T - i * T / N) - 1, i = 0..N-1, so 5 steps visit 999, 799, 599, 399, 199:
      the first step starts where x_T really is noise. (``timestep_spacing="trailing"`` in ``diffusers``.)
    """
    check_num_inference_steps(num_inference_steps, num_train_timesteps)
    if spacing == "leading":
        return inference_timesteps(num_train_timesteps, num_inference_steps)
    if spacing == "trailing":
        ratio = num_train_timesteps / num_inference_steps
        steps = torch.arange(num_inference_steps, dtype=torch.float64)
        return torch.round(num_train_timesteps - steps * ratio).long() - 1
    raise ValueError(f"spacing must be one of {SPACINGS}, got {spacing!r}")


def noise_levels(timesteps, alpha_bar: torch.Tensor) -> torch.Tensor:
    """The noise level sigma(t) = sqrt((1 - abar_t) / abar_t) at each of ``timesteps``: float64 [len(timesteps)].

    sigma is the noise-to-signal ratio of x_t = sqrt(abar_t) (x_0 + sigma eps), the variable of the
    probability-flow ODE in Karras et al. 2022 (https://arxiv.org/abs/2206.00364, eq. 1 with s(t) = 1 after
    dividing by sqrt(abar_t)); the ``sigmas`` of ``diffusers``' discrete schedulers. Schedulers on Karras
    levels (Euler, Heun) evaluate the network at fractional timesteps; there log sigma is interpolated linearly
    between the neighbouring integer timesteps, the inverse of ``diffusers``' ``_sigma_to_t``, so
    ``noise_levels(scheduler.timesteps, alpha_bar)`` returns the levels such a scheduler uses.
    """
    check_alpha_bar(alpha_bar)
    if isinstance(timesteps, bool) or not isinstance(timesteps, (torch.Tensor, list, tuple, range)):
        raise TypeError(f"timesteps must be a tensor or a list of timesteps, got {type(timesteps).__name__}")
    try:
        steps = torch.as_tensor(timesteps).detach().cpu()
    except (TypeError, ValueError, RuntimeError) as error:
        raise TypeError(f"timesteps must hold numbers, got {timesteps!r:.60}: {error}") from None
    if steps.dtype == torch.bool or steps.is_complex():
        raise TypeError(f"timesteps must hold real numbers, got dtype {steps.dtype}")
    steps = steps.to(torch.float64).reshape(-1)
    last = len(alpha_bar) - 1
    if not (torch.isfinite(steps).all() and (steps >= 0).all() and (steps <= last).all()):
        raise ValueError(f"timesteps must lie in [0, {last}] (the table's timesteps), got {steps.tolist()[:8]}")
    abar = alpha_bar.detach().cpu().to(torch.float64)
    log_sigma = 0.5 * torch.log((1 - abar) / abar)
    low = steps.floor().long().clamp(max=last - 1)
    weight = steps - low
    return torch.exp((1 - weight) * log_sigma[low] + weight * log_sigma[low + 1])


def ddim_step(model_output: torch.Tensor, t: int, prev_t: int, x_t: torch.Tensor, alpha_bar: torch.Tensor,
              eta: float = 0.0, noise: torch.Tensor | None = None, clip: bool = True,
              prediction_type: str = "epsilon") -> torch.Tensor:
    """One DDIM step x_t -> x_{prev_t} (Song et al. 2021, eq. 12 with sigma_t of eq. 16); prev_t < 0 means x_0.

    x0_hat    = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t)          (clipped to [-1, 1] if ``clip``)
    sigma     = eta sqrt((1 - abar_prev) / (1 - abar_t)) sqrt(1 - abar_t / abar_prev)
    x_prev    = sqrt(abar_prev) x0_hat + sqrt(1 - abar_prev - sigma^2) eps + sigma noise,
    with abar_prev = 1 after the last step (so sigma = 0 there). The direction term uses the network's
    eps, not one recomputed from the clipped x0_hat (``use_clipped_model_output=False`` in ``diffusers``).
    With eta = 0 and clip=False, prev_t may also be *later* than t: the same formula then runs the ODE
    upwards, from an image towards its noise ("DDIM inversion", Song et al. 2021, section 5.4).
    For ``prediction_type`` "v_prediction" or "sample", x0_hat and eps come from ``predicted_x0_and_eps``.
    """
    check_number("eta", eta, 0, 1)
    check_bool("clip", clip)
    check_alpha_bar(alpha_bar)
    check_integer("t", t, 0, len(alpha_bar) - 1)
    check_integer("prev_t", prev_t, -len(alpha_bar), len(alpha_bar) - 1)  # negative: the end
    abar_t = alpha_bar[t]
    abar_prev = alpha_bar[prev_t] if prev_t >= 0 else torch.ones((), dtype=alpha_bar.dtype, device=alpha_bar.device)
    x0_hat, eps = predicted_x0_and_eps(model_output, x_t, abar_t, prediction_type)
    if clip:
        x0_hat = x0_hat.clamp(-1, 1)
    if eta > 0:
        if prev_t >= t:
            raise ValueError(f"eta > 0 needs an earlier step prev_t < t, got t={t}, prev_t={prev_t}")
        sigma = eta * ((1 - abar_prev) / (1 - abar_t) * (1 - abar_t / abar_prev)).sqrt()
    else:
        sigma = torch.zeros((), dtype=abar_t.dtype, device=abar_t.device)
    x_prev = abar_prev.sqrt() * x0_hat + (1 - abar_prev - sigma**2).sqrt() * eps
    if eta > 0 and prev_t >= 0:
        if noise is None:
            raise ValueError("noise is required when eta > 0 (except on the last step, where sigma = 0)")
        check_same_shape("noise", noise, "x_t", x_t)
        x_prev = x_prev + sigma * noise
    return x_prev


@torch.no_grad()
def sample_ddim(model: nn.Module, num_images: int, alpha_bar: torch.Tensor, num_inference_steps: int = 50,
                generator: torch.Generator | None = None, eta: float = 0.0, timestep_spacing: str = "trailing",
                image_shape: tuple[int, ...] = (1, 28, 28), clip: bool = True, trajectory_every: int = 0,
                progress: bool = True, prediction_type: str = "epsilon"):
    """Draw ``num_images`` samples with :func:`ddim_step`; returns images in [-1, 1].

    Mirrors :func:`course_utils.ddpm.sample_ddpm`: x_T ~ N(0, I) from ``generator``, one network call per step,
    and (for eta > 0) fresh noise from ``generator`` after each call except the last. Each step goes to the
    next visited timestep (``diffusers.DDIMScheduler`` goes to t - T // N, the same when N divides T).
    With ``trajectory_every = k > 0`` also returns a list of (t', x_t') after every k-th step and the last,
    t' the timestep the step reached (0 for the final image).
    """
    check_integer("num_images", num_images, 1, 1_000_000)
    check_alpha_bar(alpha_bar, values=True)
    check_choice("timestep_spacing", timestep_spacing, SPACINGS)
    timesteps = sampling_timesteps(len(alpha_bar), num_inference_steps, timestep_spacing).tolist()
    check_generator("generator", generator)
    check_number("eta", eta, 0, 1)
    _check_image_shape(image_shape)
    check_model(model, image_shape)
    check_bool("clip", clip)
    check_integer("trajectory_every", trajectory_every, 0, math.inf)
    check_bool("progress", progress)
    check_prediction_type(prediction_type)
    device = next(model.parameters()).device
    alpha_bar = alpha_bar.to(device=device, dtype=torch.float32)
    x = random_normal((num_images, *image_shape), generator, device)
    trajectory = []
    for i, (t, prev_t) in enumerate(zip(tqdm(timesteps, desc="DDIM sampling", disable=not progress),
                                        timesteps[1:] + [-1])):
        output = predict_in_chunks(model, x, torch.full((num_images,), t, device=device))
        noise = random_normal(x.shape, generator, device) if eta > 0 and prev_t >= 0 else None
        x = ddim_step(output, t, prev_t, x, alpha_bar, eta, noise, clip, prediction_type)
        if trajectory_every and (i % trajectory_every == 0 or prev_t < 0):
            trajectory.append((max(prev_t, 0), x.clone()))
    return (x, trajectory) if trajectory_every else x


def _scheduler_recipes(clip: bool) -> dict:
    """name -> (diffusers scheduler class name, its settings beyond the shared ones). See make_scheduler."""
    return {
        "ddpm": ("DDPMScheduler", dict(variance_type="fixed_small", clip_sample=clip, timestep_spacing="trailing")),
        "ddim": ("DDIMScheduler", dict(clip_sample=clip, set_alpha_to_one=True, timestep_spacing="trailing")),
        "dpm_solver++": ("DPMSolverMultistepScheduler", dict(
            algorithm_type="dpmsolver++", solver_order=2, thresholding=clip, sample_max_value=1.0,
            lambda_min_clipped=-5.1, timestep_spacing="trailing")),
        "euler_karras": ("EulerDiscreteScheduler", dict(use_karras_sigmas=True, sigma_max=KARRAS_SIGMA_MAX)),
        "heun_karras": ("HeunDiscreteScheduler", dict(use_karras_sigmas=True, clip_sample=clip)),
        "unipc": ("UniPCMultistepScheduler", dict(
            solver_order=2, thresholding=clip, sample_max_value=1.0, timestep_spacing="trailing")),
    }


def make_scheduler(name: str, num_train_timesteps: int = 1000, *, clip: bool = True,
                   prediction_type: str = "epsilon", **overrides):
    """A ``diffusers`` scheduler for the course's model: cosine schedule, images in [-1, 1].

    All share ``beta_schedule="squaredcos_cap_v2"`` (Nichol & Dhariwal 2021, = ``schedules.cosine_betas``)
    and the model's ``prediction_type`` ("epsilon", "v_prediction" or "sample"). ``name`` is one of
    :data:`SAMPLERS`:

    - ``"ddpm"``: ``DDPMScheduler``, ancestral sampling (Ho et al. 2020, algorithm 2), "fixed_small" variance.
    - ``"ddim"``: ``DDIMScheduler`` with eta = 0 (Song et al. 2021, eq. 12).
    - ``"dpm_solver++"``: ``DPMSolverMultistepScheduler``, ``algorithm_type="dpmsolver++"``, order 2
      (Lu et al. 2022, https://arxiv.org/abs/2211.01095, algorithm 2). ``lambda_min_clipped=-5.1``: the
      cosine schedule's capped last beta makes log-SNR/2 = lambda(999) about -10, a huge first step for a
      solver that steps in lambda; the diffusers documentation calls this clipping critical for the cosine
      schedule. The first step is then t = 995 instead of 999.
    - ``"euler_karras"``: ``EulerDiscreteScheduler`` (Karras et al. 2022, https://arxiv.org/abs/2206.00364,
      algorithm 1 without churn) on the Karras noise levels (eq. 5, rho = 7) between sigma(0) and
      :data:`KARRAS_SIGMA_MAX` = 80, the paper's value; no clipping option exists for it.
    - ``"heun_karras"``: ``HeunDiscreteScheduler``, Karras levels with Heun's second-order correction: two
      network evaluations per step except the last (2N - 1 in all). Its ``diffusers`` version has no
      ``sigma_max`` option, so its levels start at the schedule's sigma(999), about 20,000.
    - ``"unipc"``: ``UniPCMultistepScheduler``, predictor-corrector of order 2 in data (x_0) prediction
      (Zhao et al. 2023, https://arxiv.org/abs/2302.04867), bh2 variant.

    ``clip=True`` (the default) keeps each estimate of x_0 inside the data range [-1, 1] wherever the
    scheduler offers it, as ``course_utils.ddpm`` does: ``clip_sample`` for DDPM, DDIM and Heun, and for the
    data-prediction solvers DPM-Solver++ and UniPC ``thresholding=True`` with ``sample_max_value=1.0``, which
    is Imagen's dynamic thresholding with its threshold pinned to 1, that is plain clipping (Lu et al. 2022
    recommend thresholding for pixel-space models). Euler has no such option and runs unclipped.
    ``timestep_spacing="trailing"`` everywhere the visited timesteps are spaced evenly, so every sampler
    starts at (or, for DPM-Solver++, next to) t = 999, where x_T really is pure noise; the Karras samplers
    keep the default "linspace", because they only take the two ends sigma(999) and sigma(0) from it
    ("trailing" would end them at sigma(T/N - 1)). ``overrides`` replace any of these settings,
    e.g. ``make_scheduler("euler_karras", sigma_max=80.0)``.
    """
    import diffusers

    check_choice("name", name, SAMPLERS)
    check_num_timesteps(num_train_timesteps, "num_train_timesteps")
    check_bool("clip", clip)
    check_prediction_type(prediction_type)
    class_name, settings = _scheduler_recipes(clip)[name]
    scheduler_class = getattr(diffusers, class_name)
    known = inspect.signature(scheduler_class.__init__).parameters
    for key in overrides:
        if key not in known:
            raise TypeError(f"{key} is not a setting of diffusers.{class_name} (make_scheduler passes its "
                            f"overrides to it)")
    config = dict(num_train_timesteps=num_train_timesteps, beta_schedule="squaredcos_cap_v2",
                  prediction_type=prediction_type, **settings)
    config.update(overrides)
    try:
        return scheduler_class(**config)
    except NotImplementedError as error:  # what diffusers raises for a setting it does not implement
        value = overrides.get("beta_schedule")
        hint = (f"; the course's schedule {value!r} is beta_schedule={DIFFUSERS_NAMES[value]!r} in diffusers"
                if isinstance(value, str) and DIFFUSERS_NAMES.get(value, value) != value else "")
        raise ValueError(f"diffusers.{class_name} does not implement the overrides {overrides}: {error}{hint}") from None


@torch.no_grad()
def sample_with_scheduler(model: nn.Module, scheduler, num_images: int, num_inference_steps: int,
                          generator: torch.Generator | None = None, image_shape: tuple[int, ...] = (1, 28, 28),
                          progress: bool = True) -> tuple[torch.Tensor, int]:
    """Sample with any ``diffusers`` scheduler; returns ``(images clamped to [-1, 1], NFE)``.

    The loop every ``diffusers`` pipeline runs:
        set_timesteps(N);  x = init_noise_sigma * z,  z ~ N(0, I) from ``generator``
        for t in scheduler.timesteps:  out = model(scale_model_input(x, t), t);  x = step(out, t, x).prev_sample
    ``scheduler.timesteps`` may hold more entries than N (Heun evaluates the network twice per step), so the
    number of network evaluations (NFE), the cost that matters, is counted call by call. Stochastic
    schedulers draw their noise from ``generator`` where ``step`` accepts one. The last x is the
    sampler's estimate of x_0; it is clamped to the image range, as saving it as an image would.
    """
    if not all(hasattr(scheduler, attribute) for attribute in ("config", "set_timesteps", "step", "timesteps")):
        raise TypeError(f"scheduler must be a diffusers scheduler, such as make_scheduler('ddim'), got {scheduler!r}")
    check_integer("num_images", num_images, 1, 1_000_000)
    check_generator("generator", generator)
    _check_image_shape(image_shape)
    check_model(model, image_shape)
    check_bool("progress", progress)
    check_num_inference_steps(num_inference_steps, scheduler.config.num_train_timesteps)
    if getattr(scheduler.config, "use_karras_sigmas", False) and num_inference_steps < 2:
        raise ValueError(f"num_inference_steps must be at least 2 on Karras noise levels (they span "
                         f"sigma_max..sigma_min), got {num_inference_steps}")
    device = next(model.parameters()).device
    scheduler.set_timesteps(num_inference_steps, device=device)
    takes_generator = "generator" in inspect.signature(scheduler.step).parameters
    extra = {"generator": generator} if takes_generator else {}
    x = random_normal((num_images, *image_shape), generator, device) * scheduler.init_noise_sigma
    nfe = 0
    for t in tqdm(scheduler.timesteps, desc=type(scheduler).__name__, disable=not progress):
        timesteps = t.reshape(1).expand(num_images).to(device)
        output = predict_in_chunks(model, scheduler.scale_model_input(x, t), timesteps)
        nfe += 1
        x = scheduler.step(output, t, x, **extra).prev_sample
    return x.clamp(-1, 1), nfe


def sample_in_batches(draw: Callable[[int, torch.Generator], tuple[torch.Tensor, int]],
                      num_images: int, batch_size: int, seed: int,
                      description: str | None = None) -> tuple[torch.Tensor, int]:
    """``num_images`` samples made ``batch_size`` at a time by ``draw(count, generator)``, which
    returns ``(images, NFE)``, all from one CPU generator seeded with ``seed``: the same seed and
    batch size give the same samples. Returns ``(all images, the NFE of the last batch)``; with
    ``description``, a progress bar over the batches (it disappears when done)."""
    if not callable(draw):
        raise TypeError(f"draw must be a function (count, generator) -> (images, NFE), "
                        f"got {draw!r}")
    check_integer("num_images", num_images, 1, 1_000_000)
    check_integer("batch_size", batch_size, 1, 2**63 - 1)  # above num_images: one batch
    check_integer("seed", seed, 0, 2**64 - 1)  # torch.Generator.manual_seed's range
    generator = torch.Generator().manual_seed(seed)
    batches, nfe = [], 0
    starts = range(0, num_images, batch_size)
    for start in tqdm(starts, desc=description, leave=False, disable=description is None):
        images, nfe = draw(min(batch_size, num_images - start), generator)
        batches.append(images)
    return torch.cat(batches), nfe
