"""Reflow: straightening a flow model's paths so that a few Euler steps suffice (notebook 10).

Rectified flow (Liu, Gong & Liu 2022, "Flow Straight and Fast", https://arxiv.org/abs/2209.03003, section 2,
algorithm 1) trains on the straight lines between a *coupling* of noise and data. Flow matching (notebook 08)
uses the independent coupling: any noise with any image. The model it learns follows the marginal velocity
u(x, sigma) = E[eps - x_0 | x_sigma = x], whose paths bend (notebook 08, section 2). **Reflow** (algorithm 1,
"Reflow (optional)": Z^{k+1} = RectFlow((Z_0^k, Z_1^k))) replaces the coupling by the one the trained model's ODE
defines: draw noise z, integrate the model's ODE from sigma = 1 to 0, and pair z with the image it reaches.
The ODE's paths never cross, so the straight lines between its pairs rarely do, and a model trained on those lines,
the 2-rectified flow, follows nearly straight paths: one or two Euler steps land close to where many would.

In the course's coordinates (notebook 08: sigma = 0 is the image, sigma = 1 the noise; Liu et al.'s t is 1 - sigma
and their X_0 is our noise), for a fixed pair (z, x):

    x_sigma = (1 - sigma) x + sigma z,    target d x_sigma / d sigma = z - x,
    loss    = E_sigma || (z - x) - u_theta(x_sigma, sigma) ||^2                     (Liu et al., eq. 1)

Lee, Lin & Fanti 2024, "Improving the Training of Rectified Flows" (https://arxiv.org/abs/2405.20320) show that one
reflow is enough in practice (their section 3) and recommend, for training that one reflow (section 4): a U-shaped
distribution of training noise levels, which draws the levels near both ends of the path more often, where the
reflow loss stays largest; initialising the 2-rectified flow from the pretrained model's weights; and a Huber-type
loss instead of the squared one. Their best, LPIPS-Huber, is not used here: LPIPS needs pretrained VGG or AlexNet
weights, which the course does not ship, and the course's MNIST classifier as a perceptual loss would train against
the features that "MNIST FID" measures. The pixel-space pseudo-Huber loss (:func:`pseudo_huber`) is offered.

The straight-line loss and the ODE are :mod:`course_utils.flow`'s; this module adds what reflow needs: the pairs
(:func:`reflow_pairs`), the loss on fixed pairs (:func:`reflow_loss`) with its noise levels
(:func:`reflow_sigmas`), a measure of the bend that a one-step sampler pays for (:func:`x0_drift`), noise held
out from the shipped pairs for measuring (:func:`held_out_generator`), a loader for
flow checkpoints outside ``data/`` (:func:`load_flow_file`) and the two-dimensional toy of notebook 10
(:class:`IdealVelocity`, :class:`ToyVelocity`).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .flow import (ODE_SAMPLERS, TIME_SCALE, _check_flow_config, flow_path, flow_sigmas, flow_velocity_target,
                   ideal_velocity, integrate, straightness)
from .runtime import random_uniform
from .unet import TinyUNet, check_model, load_tiny_unet, timestep_embedding
from .validation import (DIFFUSION_SLACK, check_bool, check_choice, check_device, check_generator,
                         check_image_range, check_integer, check_number, check_path, check_same_shape, check_tensor)

TIME_SAMPLINGS = ("uniform", "u-shaped", "one-step")
LOSSES = ("squared", "pseudo-huber")
PSEUDO_HUBER_SCALE = 0.00054  # c = 0.00054 sqrt(d): Song & Dhariwal 2023, section 3.3
HELD_OUT_SEED = 1_000_000  # seeds from here on draw noise no shipped model trained on (held_out_generator)
U_SHAPE = 4.0  # Lee et al.'s a, the rate of the U-shaped density: --a 4 in every training command of their README


def held_out_generator(seed: int = 0) -> torch.Generator:
    """A CPU generator seeded with ``HELD_OUT_SEED + seed``: noise that the shipped reflowed model and its student
    never trained on, for measuring them.

    Their 50,000 pairs' noise came from seeds 0-99 (``scripts/make_reflow_pairs.py``: chunk k of 500 from
    ``resumable.step_generator(0, k)``, seed k), and a model trained on pairs learns *their* noise-to-image map:
    seeded with 0, an evaluation would score it on 500 of its own training noises. (Every shipped model's
    training step k also drew from seed k, k < 1,000,000.)
    """
    check_integer("seed", seed, 0, 2**32 - 1 - HELD_OUT_SEED)
    return torch.Generator().manual_seed(HELD_OUT_SEED + seed)


def _check_model(model, batch_name: str, batch: torch.Tensor, *, sampling: bool = True) -> None:
    """``model`` can be run on ``batch`` (named ``batch_name`` in the error when a TinyUNet cannot read its shape):
    a sampler casts its noise to the model's float32, a loss (``sampling=False``) needs the model in the batch's
    dtype, as ``flow.flow_loss``. A module without parameters (``IdealVelocity``, whose data are a buffer) is
    allowed: :func:`reflow_pairs` then runs where its buffers, or the noise, are."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module (a flow-matching TinyUNet, as flow.load_flow returns), "
                        f"got {type(model).__name__}")
    if isinstance(model, TinyUNet):
        if batch.dim() != 4:
            raise ValueError(f"{batch_name} must be images [N, C, H, W] for a TinyUNet, got shape {tuple(batch.shape)}"
                             f"{f': add the channel dimension, {batch_name}.unsqueeze(1)' if batch.dim() == 3 else ''}"
                             f" (points [N, d] are for the 2-D toy's ToyVelocity or IdealVelocity)")
        model.check_image_shape(batch_name, tuple(batch.shape[1:]))
    check_model(model, dtype=torch.float32 if sampling else batch.dtype, sampling=False)


def _check_batch(name: str, value) -> None:
    """A floating batch [N, ...] of at least one item: images [N, C, H, W], or points [N, d] for the toy."""
    check_tensor(name, value, dims=(2, 3, 4), floating=True)
    if value.shape[0] == 0:
        raise ValueError(f"{name} must hold at least one item, got shape {tuple(value.shape)}")


def u_shaped_density(sigma: torch.Tensor, u_shape: float = U_SHAPE) -> torch.Tensor:
    """The density of Lee et al.'s U-shaped noise levels at ``sigma`` (values in [0, 1]):

        p(sigma) = a (e^{a sigma} + e^{a (1 - sigma)}) / (2 (e^a - 1)),      a = ``u_shape`` (4 in the paper),

    the symmetric mixture their code draws (github.com/sangyun884/rfpp, ``t_dist.py``: an exponential density
    a e^{a t} / (e^a - 1) on [0, 1], mirrored to 1 - t for half the draws; their t is our sigma, t = 0 the data
    and t = 1 the noise, and their README trains every data set with a = 4). Lee et al. 2024, section 4, "U-shaped
    timestep distribution": the reflow loss is largest near both ends of the path, so those levels are drawn more
    often. At a = 4 the density is (1 + e^4) / (2 e^2) = 3.8 times as high at the ends as in the middle, and 35% of
    the draws fall in the outer tenths [0, 0.1] and [0.9, 1] (uniform: 20%)."""
    check_tensor("sigma", sigma, floating=True)
    check_number("u_shape", u_shape, 0.0, 50.0, open_low=True)
    if sigma.numel() and not (0 <= sigma.min() and sigma.max() <= 1):
        raise ValueError(f"sigma must lie in [0, 1], got values from {sigma.min().item():g} to {sigma.max().item():g}")
    a = u_shape
    return a * (torch.exp(a * sigma) + torch.exp(a * (1 - sigma))) / (2 * math.expm1(a))


def reflow_sigmas(size: int, generator: torch.Generator | None = None, device: str | torch.device = "cpu",
                  time_sampling: str = "uniform", u_shape: float = U_SHAPE) -> torch.Tensor:
    """The noise levels of a reflow training batch, ``size`` values in [0, 1]:

    - ``"uniform"``: sigma ~ U(0, 1), Liu et al.'s choice (the integral over t in their eq. 1);
    - ``"u-shaped"``: Lee et al. 2024's density :func:`u_shaped_density`, drawn by inverting the exponential's
      distribution function, s = log(1 + r (e^a - 1)) / a with r ~ U(0, 1), then sigma = 1 - s for the draws
      whose second uniform number is below 1/2 (r first, then the coin, both from ``generator``);
    - ``"one-step"``: sigma = 1 always. The loss then only teaches the single Euler step from pure noise,
      x = z - u(z, 1): Liu et al.'s distillation of a k-rectified flow into a one-step model (the "Distillation"
      paragraph of their section 2, here with the squared loss instead of their LPIPS).

    Drawn on ``generator``'s device and moved to ``device``, as :func:`course_utils.flow.training_sigmas`."""
    check_integer("size", size, 0, 2**31 - 1)
    check_device("device", device, available=False)  # the draws are only moved there, as in runtime.random_uniform
    check_choice("time_sampling", time_sampling, TIME_SAMPLINGS)
    check_number("u_shape", u_shape, 0.0, 50.0, open_low=True)
    if time_sampling == "uniform":
        return random_uniform((size,), generator, device)
    if time_sampling == "one-step":
        check_generator("generator", generator)
        return torch.ones(size, device=device)
    r = random_uniform((size,), generator, device)
    mirror = random_uniform((size,), generator, device) < 0.5
    s = torch.log1p(r * math.expm1(u_shape)) / u_shape
    return torch.where(mirror, 1 - s, s).clamp(0.0, 1.0)


def pseudo_huber(residual: torch.Tensor) -> torch.Tensor:
    """The pseudo-Huber distance of each sample's residual r from 0, averaged over the batch:

        sqrt(||r||^2 + c^2) - c,    c = 0.00054 sqrt(d),  d = the values per sample (784 for a digit)

    (Song & Dhariwal 2023, "Improved Techniques for Training Consistency Models", https://arxiv.org/abs/2310.14189,
    section 3.3; Lee et al. 2024 train the 2-rectified flow with it, their section 4). Near 0 it is the squared
    norm over 2c; beyond c it grows like the norm itself, so every sample pulls on the weights with the same
    strength whatever its error, and the few hardest pairs do not dominate a batch as they do under the squared
    loss."""
    check_tensor("residual", residual, dims=(2, 3, 4), floating=True)
    c = PSEUDO_HUBER_SCALE * math.sqrt(residual[0].numel())
    squared_norm = residual.flatten(1).pow(2).sum(dim=1)
    return torch.mean(torch.sqrt(squared_norm + c**2) - c)


def reflow_loss(model: nn.Module, noise: torch.Tensor, images: torch.Tensor, generator: torch.Generator | None = None,
                time_sampling: str = "uniform", u_shape: float = U_SHAPE, loss: str = "squared") -> torch.Tensor:
    """The rectified-flow loss on fixed pairs (``noise[i]``, ``images[i]``), Liu et al. 2022, eq. 1 in the course's
    coordinates:

        mean over the batch and the pixels of ((z - x) - u_theta(x_sigma, sigma))^2,
        x_sigma = (1 - sigma) x + sigma z,

    with one sigma per pair from :func:`reflow_sigmas` (``time_sampling``: "uniform", Lee et al.'s "u-shaped", or
    "one-step"). It is notebook 08's flow-matching loss with the noise *given* instead of drawn: for the independent
    coupling (fresh noise for each image) it is ``flow.flow_loss``; for reflow pairs the noise is the one the
    flow model's ODE carried to the image. The network sees sigma as the timestep 1000 sigma. ``images`` are the
    data end (digits in [-1, 1] as the ODE left them, or points of the 2-D toy), ``noise`` the other end.
    ``loss="pseudo-huber"`` replaces the mean square by :func:`pseudo_huber` of each pair's residual."""
    _check_batch("images", images)
    check_image_range("images", images, slack=DIFFUSION_SLACK, centred=True)
    check_same_shape("noise", noise, "images", images)
    if noise.device != images.device or noise.dtype != images.dtype:
        raise ValueError(f"noise must be on the device and of the dtype of images ({images.device}, {images.dtype}), "
                         f"got {noise.device}, {noise.dtype}")
    _check_model(model, "images", images, sampling=False)
    check_generator("generator", generator)
    check_choice("loss", loss, LOSSES)
    sigma = reflow_sigmas(images.shape[0], generator, images.device, time_sampling, u_shape).to(images.dtype)
    x_sigma = flow_path(images, noise, sigma)
    residual = model(x_sigma, TIME_SCALE * sigma) - flow_velocity_target(images, noise)
    if loss == "pseudo-huber":
        return pseudo_huber(residual)
    return torch.mean(residual**2)


@torch.no_grad()
def reflow_pairs(model: nn.Module, noise: torch.Tensor, num_steps: int = 20, sampler: str = "euler",
                 shift: float = 1.0, return_trajectory: bool = False, progress: bool = False):
    """The image the flow model's ODE reaches from each given noise: the data end of a reflow pair.

    Integrates dx/dsigma = u_theta(x, sigma) from x = ``noise`` at sigma = 1 to sigma = 0 on ``flow.flow_sigmas(
    num_steps, shift)``, with Euler steps x' = x + (sigma' - sigma) u(x, sigma) or Heun's (``sampler="heun"``, the
    trapezoidal corrector on every step but the last, 2 N - 1 network evaluations): ``flow.integrate``, the loop
    ``flow.sample_flow`` runs from its own draw. Deterministic, so the same noise always gives the same image: Liu
    et al.'s (Z_0, Z_1) of algorithm 1, "Reflow". The result is unclipped (what the ODE reached; ``sample_flow``
    does not clip either) and on the model's device (that of its buffers, or of the noise, for a module without
    parameters). ``noise`` is a batch [N, ...] in the model's input shape: images [N, C, H, W] for a UNet, points
    [N, d] for the 2-D toy. With ``return_trajectory``, also the list of x at every
    level (the first is the noise).
    """
    _check_batch("noise", noise)
    check_integer("num_steps", num_steps, 1, 10_000)
    check_choice("sampler", sampler, ODE_SAMPLERS)
    check_number("shift", shift, 0.0, 1000.0, open_low=True)
    check_bool("return_trajectory", return_trajectory)
    check_bool("progress", progress)
    _check_model(model, "noise", noise)
    # the model's device and dtype, read from its first floating parameter or buffer (IdealVelocity has only its
    # data); a module with neither runs on the noise's
    weights = (tensor for tensor in (*model.parameters(), *model.buffers()) if tensor.is_floating_point())
    reference = next(weights, noise)
    x = noise.to(reference.device, reference.dtype)
    return integrate(model, x, flow_sigmas(num_steps, shift), sampler, None, return_trajectory, progress)


def _check_levels(trajectory, sigmas) -> torch.Tensor:
    straightness(trajectory)  # the trajectory's own checks: a list of at least 2 batches of one shape
    try:
        levels = torch.as_tensor(sigmas, dtype=torch.float64).flatten()
    except (TypeError, ValueError, RuntimeError):  # None, a string, a list holding None ...
        raise TypeError(f"sigmas must be the {len(trajectory)} levels of the trajectory's points, a list or tensor of "
                        f"numbers (e.g. flow.flow_sigmas(num_steps)), got {sigmas!r:.100} "
                        f"({type(sigmas).__name__})") from None
    if len(levels) != len(trajectory) or not torch.isfinite(levels).all() or (levels.diff() >= 0).any():
        raise ValueError(f"sigmas must be {len(trajectory)} decreasing levels, one per trajectory point (e.g. "
                         f"flow.flow_sigmas(num_steps)), got {levels.tolist()!r:.100}")
    return levels


def x0_hat_path(trajectory: list[torch.Tensor], sigmas) -> torch.Tensor:
    """Where each step of a path points: the one-step guess of the image from every level but the last,

        x0_hat_i = x_i - sigma_i v_i,     v_i = (x_{i+1} - x_i) / (sigma_{i+1} - sigma_i),

    the straight line through a step's two points followed to sigma = 0: on the straight path x_sigma = (1 - sigma)
    x_0 + sigma eps, whose velocity is eps - x_0 (Liu et al. 2022, eq. 1; Lipman et al. 2023 with sigma_min = 0;
    ``flow.ancestral_step``'s x0_hat), x - sigma (eps - x_0) = x_0 at every level. On an Euler path v_i is the network's
    velocity u(x_i, sigma_i), so x0_hat_i is the model's own guess of the clean image (notebook 08, exercise 2),
    and x0_hat_0, at sigma = 1, is exactly the one-step sample from the path's noise. Returns [steps, N, ...]
    (float64). ``sigmas`` are the levels of the points (``flow.flow_sigmas(num_steps)``)."""
    levels = _check_levels(trajectory, sigmas)
    points = torch.stack([x.detach().double().cpu() for x in trajectory])  # [points, N, ...]
    shape = (-1,) + (1,) * (points.dim() - 1)
    velocity = points.diff(dim=0) / levels.diff().view(shape)
    return points[:-1] - levels[:-1].view(shape) * velocity


def x0_drift(trajectory: list[torch.Tensor], sigmas) -> torch.Tensor:
    """Per image: how far the path's one-step guesses stray from where the path ends, relative to its length,

        D = mean_i || x0_hat_i - x_end ||^2 / || x_end - x_start ||^2        (x0_hat_i of :func:`x0_hat_path`),

    0 exactly when every step points at the end: a straight path walked at constant speed, which one Euler step
    follows. It complements ``flow.velocity_straightness`` (the velocity's spread about the chord): D reads the bend
    as the error a coarse sampler makes in the image, which is what few-step sampling pays. Both need the same
    steps to be compared. A path that ends where it starts has no length to compare with: it is refused (a
    ValueError naming the images)."""
    guesses = x0_hat_path(trajectory, sigmas)
    start, end = trajectory[0].detach().double().cpu(), trajectory[-1].detach().double().cpu()
    miss = (guesses - end).flatten(2).pow(2).sum(-1)  # [steps, N]
    length = (end - start).flatten(1).pow(2).sum(-1)
    if (length == 0).any():
        raise ValueError(f"trajectory must move: image(s) {(length == 0).nonzero().flatten().tolist()[:10]} end where "
                         f"they start, so their drift relative to the path's length is undefined")
    return (miss.mean(0) / length).float()


def load_flow_file(path) -> tuple[TinyUNet, dict]:
    """A flow-matching ``TinyUNet`` from any ``.safetensors`` file with its JSON manifest beside it (``data/``,
    ``checkpoints/`` or a run's output): ``flow.load_flow(path.stem, path.parent)`` for a path instead of a name and
    a folder, checked against the manifest's SHA-256 like the shipped models (``checkpoints.load_weights``). Returns
    ``(model in eval mode and float32, manifest)``, the manifest's ``config`` being the one stored inside the
    checksummed file."""
    from .checkpoints import manifest_path

    path = check_path("path", path)
    if path.suffix != ".safetensors":
        raise ValueError(f"path must name a .safetensors weights file (with its .json manifest beside it), got {path}")
    if not path.exists() and not manifest_path(path).exists():  # a misspelled path (one of the two: load_weights says)
        raise FileNotFoundError(f"path {path} does not exist, nor its manifest {manifest_path(path).name}: check the "
                                f"folder and the name (e.g. data/flow_mnist.safetensors, or a training run's --out)")
    model, manifest = load_tiny_unet(path.stem, path.parent)
    _check_flow_config("path", path, manifest["config"], path.parent)
    return model, manifest


class IdealVelocity(nn.Module):
    """The exact marginal velocity of a finite data set as a "network" the samplers can call: ``forward(x,
    timesteps)`` returns ``flow.ideal_velocity(x, timesteps / 1000, data)`` row by row,

        u(x, sigma) = (x - E[x_0 | x_sigma = x]) / sigma,
        E[x_0 | x] = sum_i w_i d_i,   w = softmax_i(-||x - (1 - sigma) d_i||^2 / (2 sigma^2)),

    the model a perfectly trained flow-matching network would be (notebook 08, section 2). ``data`` is [N, d];
    inputs are points [B, d] at levels sigma in (0, 1] (it is singular at 0, where no Euler step evaluates it)."""

    def __init__(self, data: torch.Tensor):
        super().__init__()
        check_tensor("data", data, dims=2, floating=True)
        if data.shape[0] == 0:
            raise ValueError("data must hold at least one point, got an empty tensor")
        self.register_buffer("data", data.detach().clone().float())  # moves with .to(device), never trained

    def forward(self, x: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        check_tensor("x", x, dims=2, floating=True, shape=(None, self.data.shape[1]))
        check_tensor("timesteps", timesteps, dims=1)
        if len(timesteps) != len(x):
            raise ValueError(f"timesteps must hold one level per point of x ({len(x)}), got {len(timesteps)}")
        sigma = timesteps.to(x.dtype) / TIME_SCALE
        if len(sigma) and not (sigma.min() > 0 and sigma.max() <= 1):
            raise ValueError(f"timesteps must lie in (0, {TIME_SCALE:g}] (sigma in (0, 1]; the ideal velocity is "
                             f"singular at sigma = 0), got values from {timesteps.min().item():g} to "
                             f"{timesteps.max().item():g}")
        return ideal_velocity(x, sigma, self.data)


class ToyVelocity(nn.Module):
    """A small network u_theta(x, sigma) for points in ``dims`` dimensions (the 2-D toy of notebook 10): the point
    and a sinusoidal embedding of the timestep 1000 sigma (``unet.timestep_embedding``, as the UNet's) through an
    MLP of ``width`` units with SiLU. Trained with :func:`reflow_loss` in seconds on a CPU."""

    def __init__(self, dims: int = 2, width: int = 128, embedding: int = 32):
        super().__init__()
        check_integer("dims", dims, 1, 10_000)
        check_integer("width", width, 1, 100_000)
        check_integer("embedding", embedding, 2, 10_000)
        if embedding % 2:
            raise ValueError(f"embedding must be even (half cosines, half sines), got {embedding}")
        self.dims, self.embedding = dims, embedding
        self.net = nn.Sequential(nn.Linear(dims + embedding, width), nn.SiLU(), nn.Linear(width, width), nn.SiLU(),
                                 nn.Linear(width, width), nn.SiLU(), nn.Linear(width, dims))

    def forward(self, x: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        check_tensor("x", x, dims=2, floating=True, shape=(None, self.dims))
        check_tensor("timesteps", timesteps, dims=1)
        if len(timesteps) != len(x):
            raise ValueError(f"timesteps must hold one level per point of x ({len(x)}), got {len(timesteps)}")
        # The embedding's highest frequency is w_0 = 1 radian per unit of its input t (unet.timestep_embedding: w_i =
        # max_period^(-i / half) falls from 1 to about 1 / max_period): at t = 1000 sigma its fastest features would
        # turn 1000 radians along the path and alias between nearby levels, so the toy embeds t = 10 sigma with
        # max_period 100: periods from 2 pi / 10 = 0.63 of sigma up, enough to tell the levels apart smoothly.
        features = timestep_embedding(timesteps.float() / 100, self.embedding, max_period=100.0).to(x.dtype)
        return self.net(torch.cat([x, features], dim=1))

