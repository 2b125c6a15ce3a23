"""Flow matching: the same UNet trained to follow straight paths from data to noise (notebook 08).

Path (rectified flow, Liu et al. 2022, https://arxiv.org/abs/2209.03003; conditional flow matching,
Lipman et al. 2023, https://arxiv.org/abs/2210.02747, with sigma_min = 0): for a data point x_0 and a
noise draw eps ~ N(0, I),

    x_sigma = (1 - sigma) x_0 + sigma eps,        sigma in [0, 1] (0: data, 1: pure noise),

and its velocity d x_sigma / d sigma = eps - x_0 is the training target. The network u_theta(x, sigma)
minimises E || (eps - x_0) - u_theta(x_sigma, sigma) ||^2, so it learns the *average* velocity of all
straight paths through x at level sigma: u(x, sigma) = E[eps - x_0 | x_sigma = x]. Sampling integrates
dx/dsigma = u(x, sigma) from sigma = 1 down to 0 (Euler: x' = x + (sigma' - sigma) u, the step of
``diffusers.FlowMatchEulerDiscreteScheduler``).

The network is notebook 03's ``TinyUNet``; it sees sigma as the timestep ``TIME_SCALE * sigma`` (a float
in [0, 1000], the convention of Stable Diffusion 3 and ``diffusers``), so its sinusoidal embedding works
unchanged.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from .runtime import random_normal, random_uniform
from .unet import check_model, predict_in_chunks
from .validation import (DIFFUSION_SLACK, check_bool, check_choice, check_generator, check_image_range, check_images,
                         check_integer, check_number, check_same_shape, check_sizes, check_tensor)


TIME_SCALE = 1000.0
ODE_SAMPLERS = ("euler", "heun")  # deterministic: one noise draw, one image (what reflow's pairs need)
SAMPLERS = (*ODE_SAMPLERS, "ancestral")


def _check_model(model, image_shape: tuple[int, ...] | None = None, dtype: torch.dtype = torch.float32, *,
                 sampling: bool = True) -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module (a TinyUNet, as load_flow returns), got {type(model).__name__}")
    check_model(model, image_shape, dtype, sampling=sampling)


def _check_level(name: str, value, count: int | None = None, *, open_low: bool = False,
                 floating: bool = False) -> None:
    """A noise level: a Python number in [0, 1] (or (0, 1] with ``open_low``), or a tensor (``floating`` where
    asked) holding, given ``count``, one value or ``count`` values (one per image). Tensor values are not read:
    that would cost a device synchronisation per sampling step."""
    if not torch.is_tensor(value):
        check_number(name, value, 0.0, 1.0, open_low=open_low)
        return
    if floating and not value.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor of noise levels in [0, 1] (alpha_bar[t], not the "
                        f"timesteps t), got dtype {value.dtype}")
    if count is not None and value.numel() not in (1, count):
        per_image = f" or one per image ({count})" if count != 1 else ""
        raise ValueError(f"{name} must hold one value{per_image}, got shape {tuple(value.shape)}")


def _per_image(sigma: torch.Tensor | float, like: torch.Tensor) -> torch.Tensor:
    """sigma as a scalar or one value per image, shaped to multiply a batch like ``like``."""
    sigma = torch.as_tensor(sigma, dtype=like.dtype, device=like.device)
    return sigma if sigma.dim() == 0 else sigma.reshape(-1, *([1] * (like.dim() - 1)))


def flow_path(x0: torch.Tensor, noise: torch.Tensor, sigma: torch.Tensor | float) -> torch.Tensor:
    """x_sigma = (1 - sigma) x_0 + sigma eps: the straight line from the image (sigma = 0) to the noise (sigma = 1)."""
    check_tensor("x0", x0)
    check_tensor("noise", noise)
    if x0.shape != noise.shape:
        raise ValueError(f"x0 and noise must have the same shape, got {tuple(x0.shape)} and {tuple(noise.shape)}")
    _check_level("sigma", sigma, x0.shape[0])
    sigma = _per_image(sigma, x0)
    if sigma.numel() and not (0 <= sigma.min() and sigma.max() <= 1):
        raise ValueError(f"sigma must lie in [0, 1], got values from {sigma.min().item():g} to {sigma.max().item():g}")
    return (1 - sigma) * x0 + sigma * noise


def flow_velocity_target(x0: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """d x_sigma / d sigma = eps - x_0: the same at every sigma, because the path is straight."""
    check_tensor("x0", x0)
    check_same_shape("noise", noise, "x0", x0)
    return noise - x0


TIME_SAMPLINGS = ("uniform", "logit-normal")


def training_sigmas(size: int, generator: torch.Generator | None = None, device: str | torch.device = "cpu",
                    time_sampling: str = "uniform") -> torch.Tensor:
    """The noise levels a training batch is moved to: sigma ~ U(0, 1), or "logit-normal",
    sigma = 1 / (1 + exp(-u)), u ~ N(0, 1) (Esser et al. 2024, Stable Diffusion 3, section 3.1: more
    weight on the middle of the path, where the velocity is hardest to predict)."""
    check_integer("size", size, 0, 2**31 - 1)  # the batch size
    check_choice("time_sampling", time_sampling, TIME_SAMPLINGS)
    if time_sampling == "uniform":
        return random_uniform((size,), generator, device)
    return torch.sigmoid(random_normal((size,), generator, device))


def flow_loss(model: nn.Module, x0: torch.Tensor, generator: torch.Generator | None = None,
              time_sampling: str = "uniform") -> torch.Tensor:
    """The conditional flow-matching loss E_{sigma, eps} || (eps - x_0) - u_theta(x_sigma, sigma) ||^2,
    sigma drawn by :func:`training_sigmas` (uniform unless ``time_sampling`` says otherwise).

    sigma and eps are drawn on ``generator``'s device and moved to ``x0``'s (as :func:`ddpm.ddpm_loss`
    does), so a seeded CPU generator gives the same draw whatever device trains.
    """
    check_images("x0", x0)
    check_image_range("x0", x0, slack=DIFFUSION_SLACK, centred=True)  # [-1, 1] images or scaled latents
    _check_model(model, x0.shape[1:], x0.dtype, sampling=False)
    check_generator("generator", generator)
    sigma = training_sigmas(x0.shape[0], generator, x0.device, time_sampling)
    noise = random_normal(x0.shape, generator, x0.device, x0.dtype)
    x_sigma = flow_path(x0, noise, sigma)
    return torch.mean((model(x_sigma, TIME_SCALE * sigma) - flow_velocity_target(x0, noise)) ** 2)


def shift_sigmas(sigmas: torch.Tensor, shift: float = 1.0) -> torch.Tensor:
    """Timestep shift (Esser et al. 2024, Stable Diffusion 3, eq. 23): sigma' = s sigma / (1 + (s - 1) sigma).

    s > 1 moves the grid towards sigma = 1, spending more steps at high noise where the global shape is
    decided; s = 1 leaves it alone. 0 and 1 stay fixed. ``FlowMatchEulerDiscreteScheduler(shift=s)``.
    """
    check_tensor("sigmas", sigmas)
    check_number("shift", shift, 0.0, 1000.0, open_low=True)
    return shift * sigmas / (1 + (shift - 1) * sigmas)


def flow_sigmas(num_steps: int, shift: float = 1.0) -> torch.Tensor:
    """The ``num_steps + 1`` decreasing noise levels of a sampler: linspace(1, 0, N + 1), then shifted."""
    check_integer("num_steps", num_steps, 1, 10_000)
    return shift_sigmas(torch.linspace(1.0, 0.0, num_steps + 1, dtype=torch.float64), shift).float()


def euler_step(velocity: torch.Tensor, sigma: float, sigma_next: float, x: torch.Tensor) -> torch.Tensor:
    """x_{sigma'} = x_sigma + (sigma' - sigma) u(x_sigma, sigma): follow the velocity in a straight line."""
    check_tensor("x", x)
    check_same_shape("velocity", velocity, "x", x)
    _check_level("sigma", sigma)
    _check_level("sigma_next", sigma_next)
    return x + (sigma_next - sigma) * velocity


def ancestral_step(velocity: torch.Tensor, sigma: float, sigma_next: float, x: torch.Tensor,
                   noise: torch.Tensor | None, clip_range: float | None = 1.0) -> torch.Tensor:
    """One stochastic step sigma -> sigma' < sigma: a draw from the posterior q(x_sigma' | x_sigma, x0_hat) of
    the straight path, DDPM's ancestral step (Ho et al. 2020, eqs. 6-7) for the interpolant
    x_sigma = a x_0 + b eps with a = 1 - sigma, b = sigma (the general form: Kingma et al. 2021, VDM, eq. 33):

        x0_hat = x - sigma u                      (clipped to [-clip_range, clip_range], as DDPM's)
        r      = a_sigma / a_sigma'               (the signal kept from sigma' to sigma)
        s2     = sigma^2 - r^2 sigma'^2           (the noise added from sigma' to sigma)
        mean   = r sigma'^2 / sigma^2 x + a_sigma' s2 / sigma^2 x0_hat
        var    = s2 sigma'^2 / sigma^2,           x' = mean + sqrt(var) noise.

    It is DDPM's step on the same path rescaled to unit variance, so the flow network can be sampled like the
    DDPM; its fresh noise corrects part of the network's error where the ODE carries it along (Karras et al.
    2022, section 4). At sigma' = 0 it returns x0_hat (no noise needed)."""
    check_tensor("x", x)
    check_same_shape("velocity", velocity, "x", x)
    _check_level("sigma", sigma, 1, open_low=True)  # one level for the batch: a tensor must hold one value
    _check_level("sigma_next", sigma_next, 1)
    if not sigma_next < sigma:
        raise ValueError(f"sigma_next must be below sigma (a step towards the data), got {sigma_next} >= {sigma}")
    if clip_range is not None:
        check_number("clip_range", clip_range, 0, 1e6, open_low=True)
    x0_hat = x - sigma * velocity
    if clip_range is not None:
        x0_hat = x0_hat.clamp(-clip_range, clip_range)
    if sigma_next == 0:
        return x0_hat
    if noise is None:
        raise ValueError("noise is required for every step but the last (sigma_next > 0)")
    check_same_shape("noise", noise, "x", x)
    kept = (1 - sigma) / (1 - sigma_next)
    added = sigma**2 - kept**2 * sigma_next**2
    mean = kept * sigma_next**2 / sigma**2 * x + (1 - sigma_next) * added / sigma**2 * x0_hat
    return mean + (added * sigma_next**2 / sigma**2) ** 0.5 * noise


def velocity_at(model: nn.Module, x: torch.Tensor, sigma: float) -> torch.Tensor:
    """The network's velocity u_theta(x, sigma) for a batch at one noise level."""
    check_tensor("x", x, dims=4, floating=True)
    _check_model(model, x.shape[1:], x.dtype, sampling=False)
    _check_level("sigma", sigma, 1)
    return predict_in_chunks(model, x, torch.full((x.shape[0],), TIME_SCALE * float(sigma), device=x.device))


def number_of_evaluations(num_steps: int, sampler: str) -> int:
    """Network evaluations (NFE) of a run: one per Euler or ancestral step; two per Heun step but the last, which
    is an Euler step because the corrector would evaluate the network at sigma = 0 (Karras et al. 2022, alg. 1)."""
    check_integer("num_steps", num_steps, 1, 10_000)
    check_choice("sampler", sampler, SAMPLERS)
    return 2 * num_steps - 1 if sampler == "heun" else num_steps


def steps_for_evaluations(nfe: int, sampler: str) -> int:
    """The inverse of :func:`number_of_evaluations`: the most steps whose run spends at most ``nfe`` network
    evaluations, N = nfe for Euler and ancestral, and N = (nfe + 1) // 2 for Heun (2 N - 1 <= nfe: an even
    budget spends one evaluation less)."""
    check_integer("nfe", nfe, 1, 20_000)
    check_choice("sampler", sampler, SAMPLERS)
    return (nfe + 1) // 2 if sampler == "heun" else nfe


def _check_sigmas(sigmas) -> list[float]:
    """A sampler's grid: at least 2 decreasing noise levels in [0, 1], as a list of Python floats."""
    try:
        levels = torch.as_tensor(sigmas, dtype=torch.float64).flatten()
    except (TypeError, ValueError, RuntimeError):  # None, a string, a list holding None ...
        raise TypeError(f"sigmas must be a list or tensor of decreasing noise levels (e.g. flow_sigmas(num_steps)), "
                        f"got {sigmas!r:.100} ({type(sigmas).__name__})") from None
    if len(levels) < 2 or not torch.isfinite(levels).all() or (levels.diff() >= 0).any() or levels.min() < 0 \
            or levels.max() > 1:
        raise ValueError(f"sigmas must be at least 2 decreasing noise levels in [0, 1] (e.g. flow_sigmas(num_steps)), "
                         f"got {levels.tolist()!r:.100}")
    return levels.tolist()


@torch.no_grad()
def integrate(model: nn.Module, x: torch.Tensor, sigmas, sampler: str = "euler",
              generator: torch.Generator | None = None, return_trajectory: bool = False, progress: bool = False):
    """Carry ``x``, a batch at the noise level ``sigmas[0]``, down the decreasing levels ``sigmas`` with
    ``sampler`` (the loop of :func:`sample_flow`, which draws x at sigma = 1; ``reflow.reflow_pairs`` gives it):

    "euler": x' = x + (sigma' - sigma) u(x, sigma)                                  (:func:`euler_step`)
    "heun":  x' = x + (sigma' - sigma) (u(x, sigma) + u(x_euler, sigma')) / 2, the trapezoidal corrector on every
             step but one that ends at sigma' = 0 (Karras et al. 2022, algorithm 1)
    "ancestral": :func:`ancestral_step`, its noise drawn from ``generator`` on x's device.

    u is ``model(x, 1000 sigma)`` on x as given: images [N, C, H, W] for a UNet, points [N, d] for notebook 10's
    toy. Returns x at ``sigmas[-1]`` and, with ``return_trajectory``, the list of x at every level (the first is
    the input)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module (a TinyUNet, as load_flow returns), got "
                        f"{type(model).__name__}")
    check_tensor("x", x, dims=(2, 3, 4), floating=True)
    levels = _check_sigmas(sigmas)
    check_choice("sampler", sampler, SAMPLERS)
    check_generator("generator", generator)
    check_bool("return_trajectory", return_trajectory)
    check_bool("progress", progress)

    def velocity(x: torch.Tensor, sigma: float) -> torch.Tensor:
        return predict_in_chunks(model, x, torch.full((x.shape[0],), TIME_SCALE * sigma, device=x.device))

    trajectory = [x.clone()] if return_trajectory else None
    for sigma, sigma_next in tqdm(list(zip(levels[:-1], levels[1:])), desc=f"{sampler} sampling", disable=not progress):
        u = velocity(x, sigma)
        if sampler == "ancestral":
            noise = random_normal(x.shape, generator, x.device, x.dtype) if sigma_next > 0 else None
            x_next = ancestral_step(u, sigma, sigma_next, x, noise)
        else:
            x_next = euler_step(u, sigma, sigma_next, x)
        if sampler == "heun" and sigma_next > 0:
            x_next = x + (sigma_next - sigma) * (u + velocity(x_next, sigma_next)) / 2
        x = x_next
        if return_trajectory:
            trajectory.append(x.clone())
    return (x, trajectory) if return_trajectory else x


@torch.no_grad()
def sample_flow(model: nn.Module, num_images: int, num_steps: int = 20, generator: torch.Generator | None = None,
                sampler: str = "euler", shift: float = 1.0, image_shape: tuple[int, ...] = (1, 28, 28),
                return_trajectory: bool = False, progress: bool = True):
    """Integrate dx/dsigma = u_theta(x, sigma) from noise (sigma = 1) to an image (sigma = 0).

    "euler": x' = x + (sigma' - sigma) u(x, sigma).
    "heun":  Euler as a predictor, then the average of the velocities at both ends (the trapezoidal rule):
             x' = x + (sigma' - sigma) (u(x, sigma) + u(x_euler, sigma')) / 2; second order, 2 NFE per step.
    "ancestral": not the ODE but DDPM's stochastic sampler on the same path (:func:`ancestral_step`), fresh
             noise from ``generator`` at every step but the last; its images are x0_hat, clipped to [-1, 1].
    Returns images (unclipped for the ODE samplers; the data lie in [-1, 1]) and, with ``return_trajectory``,
    the list of x at every sigma in :func:`flow_sigmas` (the first is the starting noise). The steps are
    :func:`integrate`'s.
    """
    check_integer("num_images", num_images, 1, 1_000_000)
    check_choice("sampler", sampler, SAMPLERS)
    check_generator("generator", generator)
    check_sizes("image_shape", image_shape, length=3, minimum=1)  # (channels, height, width)
    _check_model(model, image_shape)
    device = next(model.parameters()).device
    x = random_normal((num_images, *image_shape), generator, device)
    return integrate(model, x, flow_sigmas(num_steps, shift), sampler, generator, return_trajectory, progress)


def straightness(trajectory: list[torch.Tensor]) -> torch.Tensor:
    """Per image: the length of the sampled path divided by the distance between its ends (1 = a straight line).

    length = sum_i ||x_{i+1} - x_i||, distance = ||x_last - x_first||; a finer grid measures the curve better,
    so compare models at the same steps.
    """
    if not isinstance(trajectory, (list, tuple)) or not all(torch.is_tensor(x) for x in trajectory):
        got = [type(x).__name__ for x in trajectory[:2]] if isinstance(trajectory, (list, tuple)) else trajectory
        raise TypeError(f"trajectory must be a list of tensors, x at each step (from (t, x) pairs: [x for t, x in "
                        f"frames]), got {type(trajectory).__name__} {got!r:.80}")
    if len(trajectory) < 2:
        raise ValueError(f"trajectory needs at least 2 points, got {len(trajectory)}")
    if trajectory[0].dim() < 2:
        raise ValueError(f"trajectory must hold batches [N, ...], got points of shape {tuple(trajectory[0].shape)}")
    for i, x in enumerate(trajectory[1:], start=1):
        check_same_shape(f"trajectory[{i}]", x, "trajectory[0]", trajectory[0])
    points = torch.stack([x.flatten(1) for x in trajectory])  # [points, images, pixels]
    length = (points[1:] - points[:-1]).norm(dim=-1).sum(dim=0)
    return length / (points[-1] - points[0]).norm(dim=-1)


def velocity_straightness(trajectory: list[torch.Tensor], sigmas) -> torch.Tensor:
    """Per image: a normalised version of Liu et al.'s straightness of a sampled path (0 = a straight line
    walked at constant speed, which one Euler step would follow exactly).

    Rectified flow (Liu et al. 2022, https://arxiv.org/abs/2209.03003, "Reflow, straightening, fast
    simulation") measures a process Z by
    S(Z) = int_0^1 E || (Z_1 - Z_0) - dZ_t/dt ||^2 dt: the velocity's squared distance from the path's own chord,
    unnormalised, so it grows with the size of the data and the length of the path. Here it is divided by the
    squared chord velocity ||c||^2, c = (x_last - x_first) / (sigma_last - sigma_first), per image, and taken on
    the sampled grid:

        S = sum_i |sigma_{i+1} - sigma_i| || (x_{i+1} - x_i) / (sigma_{i+1} - sigma_i) - c ||^2 / ||c||^2.

    Unlike :func:`straightness` (length over chord) it also sees a path that keeps its direction but changes
    its speed, or turns early and briefly: the bends that make a 1- or 2-step Euler sampler miss.
    ``sigmas`` are the levels of the trajectory's points (``flow_sigmas(num_steps)`` for ``sample_flow``).
    """
    straightness(trajectory)  # the same checks of the trajectory
    sigmas = torch.as_tensor(sigmas, dtype=torch.float64).flatten()
    if len(sigmas) != len(trajectory) or not torch.isfinite(sigmas).all() or (sigmas.diff() == 0).any():
        raise ValueError(f"sigmas must be {len(trajectory)} distinct levels, one per trajectory point, got "
                         f"{sigmas.tolist()!r:.100}")
    points = torch.stack([x.flatten(1) for x in trajectory]).double()  # [points, images, pixels]
    steps = sigmas.diff().view(-1, 1, 1)
    chord = (points[-1] - points[0]) / (sigmas[-1] - sigmas[0])
    deviation = ((points.diff(dim=0) / steps - chord) ** 2).sum(dim=-1)  # [steps, images]
    return ((steps.abs().view(-1, 1) * deviation).sum(dim=0) / (chord**2).sum(dim=-1)).float()


def ideal_velocity(x: torch.Tensor, sigma: torch.Tensor | float, data: torch.Tensor) -> torch.Tensor:
    """The velocity field a perfect network learns when the data set is the finite set ``data`` [N, d]:

    u(x, sigma) = E[eps - x_0 | x_sigma = x] = (x - E[x_0 | x_sigma = x]) / sigma,
    E[x_0 | x] = sum_i w_i data_i,  w = softmax_i(-||x - (1 - sigma) data_i||^2 / (2 sigma^2)),
    because x_sigma given x_0 = data_i is N((1 - sigma) data_i, sigma^2 I) and eps = (x - (1 - sigma) x_0) / sigma.
    ``x`` is [B, d]; sigma in (0, 1], one level or a tensor of one per row of x. For a figure in two dimensions
    (notebook 08) and notebook 10's toy (``reflow.IdealVelocity``).
    """
    check_tensor("x", x, dims=2, floating=True)
    _check_level("sigma", sigma, x.shape[0], open_low=True, floating=True)
    check_tensor("data", data, dims=2, floating=True, shape=(None, x.shape[1]))
    sigma = _per_image(sigma, x)
    if sigma.numel() and not (sigma.min() > 0 and sigma.max() <= 1):
        raise ValueError(f"sigma must lie in (0, 1] (the ideal velocity is singular at 0), got values from "
                         f"{sigma.min().item():g} to {sigma.max().item():g}")
    squared = (x[:, None, :] - (1 - sigma)[..., None] * data).pow(2).sum(-1)  # [B, N]
    weights = torch.softmax(-squared / (2 * sigma**2), dim=1)
    return (x - weights @ data) / sigma


def ddpm_sigma(abar_t: torch.Tensor | float) -> torch.Tensor:
    """The straight path's noise level of a DDPM level: sigma = s / (a + s), a = sqrt(abar_t), s = sqrt(1 - abar_t)
    (:func:`flow_coordinates`). abar_t = 1 (the clean image) gives 0, abar_t = 0 (pure noise) gives 1."""
    _check_level("abar_t", abar_t, floating=True)
    abar_t = abar_t if torch.is_tensor(abar_t) else torch.tensor(float(abar_t))
    a, s = abar_t.sqrt(), (1 - abar_t).sqrt()
    return s / (a + s)


def flow_coordinates(x_t: torch.Tensor, abar_t: torch.Tensor | float) -> tuple[torch.Tensor, torch.Tensor]:
    """A DDPM point x_t = a x_0 + s eps (a = sqrt(abar_t), s = sqrt(1 - abar_t)) seen on the straight path:
    y = x_t / (a + s) = (1 - sigma) x_0 + sigma eps with sigma = s / (a + s). Returns ``(y, sigma)``.

    Every DDPM noise level is a rescaled point of the straight path between the same x_0 and eps, so
    the two processes differ by coordinates, not by where they lead (Kingma et al. 2021; SD3, section 2).
    """
    check_tensor("x_t", x_t, floating=True)
    _check_level("abar_t", abar_t, x_t.shape[0], floating=True)
    abar_t = torch.as_tensor(abar_t, dtype=x_t.dtype, device=x_t.device)
    a, s = abar_t.sqrt(), (1 - abar_t).sqrt()
    return x_t / _per_image(a + s, x_t), ddpm_sigma(abar_t)


def ddpm_velocity(model_output: torch.Tensor, x_t: torch.Tensor, abar_t: torch.Tensor | float,
                  prediction_type: str = "epsilon") -> torch.Tensor:
    """A DDPM network's output as a flow velocity u = eps_hat - x0_hat (for v-prediction, u = (s - a) x_t + (a + s) v)."""
    from .ddpm import predicted_x0_and_eps

    x0_hat, eps_hat = predicted_x0_and_eps(model_output, x_t, abar_t, prediction_type)  # it checks its arguments
    return eps_hat - x0_hat


def load_flow(name: str = "flow_mnist", data_dir=None):
    """A shipped flow-matching UNet (``data/NAME.safetensors``; ``data_dir`` may name another folder, such as a
    training run's, as in ``ddpm.load_ddpm``): returns ``(model, manifest)``, the model in eval mode and float32."""
    from .unet import load_tiny_unet

    if not isinstance(name, str):
        raise TypeError(f"name must name a flow-matching checkpoint in data/ ({', '.join(_flow_checkpoints())}), "
                        f"got {name!r} ({type(name).__name__})")
    model, manifest = load_tiny_unet(name, data_dir)
    _check_flow_config("name", name, manifest["config"], data_dir)
    return model, manifest


def _check_flow_config(parameter: str, value, config: dict, data_dir=None) -> None:
    """Refuse a checkpoint whose stored configuration ``config`` was not trained for flow matching (``objective``
    "flow"), naming ``parameter`` (the name or path that chose it, ``value``) and the flow checkpoints of
    ``data_dir`` (default data/)."""
    if config.get("objective") != "flow":
        raise ValueError(f"{parameter} must be a flow-matching checkpoint ({', '.join(_flow_checkpoints(data_dir))}), "
                         f"got {value!r}, which was not trained for flow matching (its stored configuration: {config})")


def _flow_checkpoints(data_dir=None) -> list[str]:
    """The checkpoints in ``data_dir`` (default data/) whose manifest says they were trained for flow matching."""
    from .checkpoints import CheckpointError, load_manifest
    from .data import DATA_DIR

    def objective(path) -> str | None:
        try:
            config = load_manifest(path).get("config")
        except CheckpointError:  # a damaged manifest is reported when its model is loaded, not in this hint
            return None
        return config.get("objective") if isinstance(config, dict) else None

    folder = DATA_DIR if data_dir is None else Path(data_dir)
    return [path.stem for path in sorted(folder.glob("*.json")) if path.with_suffix(".safetensors").is_file()
            and objective(path) == "flow"]
