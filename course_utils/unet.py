"""A small UNet that predicts the noise in x_t (notebook 03).

The shape follows the DDPM UNet (Ho et al. 2020, appendix B), itself a PixelCNN++-style UNet
(Ronneberger et al. 2015): residual blocks with GroupNorm and SiLU, the timestep fed to every block
through a sinusoidal embedding (Vaswani et al. 2017) and an MLP, self-attention at the coarsest
resolution, and skip connections from each encoder level to the decoder level of the same size.
For 28x28 MNIST the resolutions are 28 -> 14 -> 7 and back.
"""
from __future__ import annotations

import math
import numbers

import torch
from torch import nn
from torch.nn import functional as F

from .validation import check_integer, check_number, check_sizes, check_tensor


def timestep_embedding(timesteps: torch.Tensor, dim: int, max_period: float = 10_000.0) -> torch.Tensor:
    """Sinusoidal embedding of integer timesteps, [B] -> [B, dim].

    emb[i] = cos(t * w_i) for the first half and sin(t * w_i) for the second, w_i = max_period^(-i / (dim/2)),
    the transformer position encoding (Vaswani et al. 2017, section 3.5) in the order ``diffusers`` uses
    with ``flip_sin_to_cos=True``.
    """
    check_tensor("timesteps", timesteps, dims=1)
    check_integer("dim", dim, 2, 100_000)
    if dim % 2:
        raise ValueError(f"dim must be even (half cosines, half sines), got {dim}")
    check_number("max_period", max_period, 1, 10**9, open_low=True)
    half = dim // 2
    frequencies = torch.exp(-math.log(max_period) * torch.arange(half, device=timesteps.device) / half)
    angles = timesteps.float()[:, None] * frequencies[None, :]
    return torch.cat([torch.cos(angles), torch.sin(angles)], dim=-1)


class ResidualBlock(nn.Module):
    """GroupNorm -> SiLU -> conv, plus the timestep embedding, twice, with a residual connection."""

    def __init__(self, in_channels: int, out_channels: int, time_dim: int, groups: int = 8):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.time_proj = nn.Linear(time_dim, out_channels)
        self.norm2 = nn.GroupNorm(groups, out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.skip = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()

    def forward(self, x: torch.Tensor, time_emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.time_proj(F.silu(time_emb))[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return h + self.skip(x)


class SelfAttention(nn.Module):
    """Multi-head self-attention over the pixels of a feature map, with a residual connection."""

    def __init__(self, channels: int, heads: int = 4, groups: int = 8):
        super().__init__()
        self.norm = nn.GroupNorm(groups, channels)
        self.attention = nn.MultiheadAttention(channels, heads, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, height, width = x.shape
        tokens = self.norm(x).flatten(2).transpose(1, 2)  # [B, H*W, C]: one token per pixel
        attended, _ = self.attention(tokens, tokens, tokens, need_weights=False)
        return x + attended.transpose(1, 2).reshape(batch, channels, height, width)


MAX_LEVELS = 6  # a 28 x 28 image halves to 1 x 1 after 5 downsamplings
MAX_WIDTH = 4096


class TinyUNet(nn.Module):
    """epsilon_theta(x_t, t): a UNet with ``len(channels)`` resolutions, 1 input and 1 output channel.

    ``channels[i]`` is the width at resolution 28 / 2^i; each level has one residual block on the way
    down and one on the way up (after concatenating the skip); the bottleneck adds self-attention.
    """

    def __init__(self, channels: tuple[int, ...] = (32, 64, 128), image_channels: int = 1):
        super().__init__()
        check_sizes("channels", channels, minimum=8)
        if not 1 <= len(channels) <= MAX_LEVELS or any(c % 8 or c > MAX_WIDTH for c in channels):
            raise ValueError(f"channels must be a tuple of 1 to {MAX_LEVELS} widths, multiples of 8 (GroupNorm's 8 "
                             f"groups) up to {MAX_WIDTH}, e.g. (32, 64, 128), got {channels!r}")
        check_integer("image_channels", image_channels, 1, 64)
        self.config = {"channels": list(channels), "image_channels": image_channels}
        self.time_dim = 4 * channels[0]
        self.time_mlp = nn.Sequential(
            nn.Linear(channels[0], self.time_dim), nn.SiLU(), nn.Linear(self.time_dim, self.time_dim)
        )
        self.stem = nn.Conv2d(image_channels, channels[0], 3, padding=1)
        self.down_blocks = nn.ModuleList()
        self.downsamples = nn.ModuleList()
        widths = [channels[0], *channels]
        for level, width in enumerate(channels):
            self.down_blocks.append(ResidualBlock(widths[level], width, self.time_dim))
            is_last = level == len(channels) - 1
            self.downsamples.append(nn.Identity() if is_last else nn.Conv2d(width, width, 3, stride=2, padding=1))
        self.mid_block1 = ResidualBlock(channels[-1], channels[-1], self.time_dim)
        self.mid_attention = SelfAttention(channels[-1])
        self.mid_block2 = ResidualBlock(channels[-1], channels[-1], self.time_dim)
        self.up_blocks = nn.ModuleList()
        self.upsamples = nn.ModuleList()
        for level in reversed(range(len(channels))):
            width = channels[level]
            out_width = channels[level - 1] if level > 0 else channels[0]
            self.up_blocks.append(ResidualBlock(2 * width, out_width, self.time_dim))
            self.upsamples.append(
                nn.Identity() if level == 0 else nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"),
                                                              nn.Conv2d(out_width, out_width, 3, padding=1))
            )
        self.out_norm = nn.GroupNorm(8, channels[0])
        self.out_conv = nn.Conv2d(channels[0], image_channels, 3, padding=1)

    def check_image_shape(self, name: str, shape) -> None:
        """``shape`` (C, H, W) is one this network reads: its ``image_channels``, and sides that halve evenly at
        each of its downsamplings (the skip connections must meet maps of their own size)."""
        levels = len(self.config["channels"])
        factor = 2 ** (levels - 1)
        channels, height, width = shape
        if channels != self.config["image_channels"] or height % factor or width % factor:
            raise ValueError(f"{name} must be (C, H, W) = ({self.config['image_channels']}, H, W) with H and W "
                             f"multiples of {factor} for this TinyUNet ({levels} resolutions, "
                             f"channels={tuple(self.config['channels'])}), got {tuple(shape)}")

    def _check_inputs(self, x, timesteps) -> torch.Tensor:
        """x [N, C, H, W] of the network's dtype and device; timesteps one number or one per image, >= 0
        (integers for a DDPM, 1000 sigma for flow matching). Returns the timesteps as a tensor [N].
        Timestep values are read only on the CPU: on a GPU that would synchronise at every call."""
        weight = self.stem.weight
        check_tensor("x", x, dims=4, floating=True)
        if x.dtype != weight.dtype:
            raise TypeError(f"x must have the network's dtype {weight.dtype}, got {x.dtype}: convert x with "
                            f"x.to({weight.dtype}) (or the network with model.to(x.dtype))")
        if x.device != weight.device:
            raise ValueError(f"x must be on the network's device {weight.device}, got {x.device}: x.to({str(weight.device)!r})")
        self.check_image_shape("x.shape[1:]", x.shape[1:])
        if isinstance(timesteps, bool) or not isinstance(timesteps, (numbers.Real, torch.Tensor)):
            raise TypeError(f"timesteps must be a number or a tensor of one timestep per image, got "
                            f"{type(timesteps).__name__}")
        timesteps = torch.as_tensor(timesteps, device=x.device)
        if timesteps.dtype == torch.bool or timesteps.is_complex() or timesteps.dim() > 1 \
                or timesteps.numel() not in (1, len(x)):
            raise ValueError(f"timesteps must be one number or one per image of x ({len(x)}), got dtype "
                             f"{timesteps.dtype}, shape {tuple(timesteps.shape)}")
        if timesteps.device.type == "cpu" and timesteps.numel() and not (
                torch.isfinite(timesteps).all() and timesteps.min() >= 0):
            raise ValueError(f"timesteps must be finite and >= 0, got values in [{timesteps.min().item()}, "
                             f"{timesteps.max().item()}]")
        return timesteps.reshape(-1).expand(x.shape[0])

    def forward(self, x: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        timesteps = self._check_inputs(x, timesteps)
        time_emb = self.time_mlp(timestep_embedding(timesteps, self.stem.out_channels))
        h = self.stem(x)
        skips = []
        for block, downsample in zip(self.down_blocks, self.downsamples):
            h = block(h, time_emb)
            skips.append(h)
            h = downsample(h)
        h = self.mid_block2(self.mid_attention(self.mid_block1(h, time_emb)), time_emb)
        for block, upsample in zip(self.up_blocks, self.upsamples):
            h = block(torch.cat([h, skips.pop()], dim=1), time_emb)
            h = upsample(h)
        return self.out_conv(F.silu(self.out_norm(h)))


EVALUATION_BATCH = 128  # images per network call in the samplers: bounds the memory that sampling holds at once


def predict_in_chunks(model: nn.Module, x: torch.Tensor, timesteps: torch.Tensor,
                      max_batch: int = EVALUATION_BATCH) -> torch.Tensor:
    """``model(x, timesteps)`` computed on at most ``max_batch`` images at a time, the outputs concatenated.

    Each image goes through the network on its own (convolutions, GroupNorm and attention never mix the
    images of a batch), so the result is that of one call on the whole batch, up to floating-point rounding
    (a kernel may sum in another order for another batch size); only the activations held at once shrink, and
    with them the peak memory of sampling hundreds of digits (about 0.7 MB per image for notebook 03's
    TinyUNet in float32)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module (a TinyUNet), got {type(model).__name__}")
    check_tensor("x", x)
    check_tensor("timesteps", timesteps, dims=1)
    if len(timesteps) != len(x):
        raise ValueError(f"timesteps must hold one timestep per image of x ({len(x)}), got {len(timesteps)}")
    check_integer("max_batch", max_batch, 1, 1_000_000)
    if len(x) <= max_batch:
        return model(x, timesteps)
    return torch.cat([model(chunk, steps) for chunk, steps in zip(x.split(max_batch), timesteps.split(max_batch))])


def check_model(model, image_shape: tuple[int, ...] | None = None, dtype: torch.dtype = torch.float32, *,
                sampling: bool = True) -> None:
    """What a sampler or a loss needs of ``model``: a ``torch.nn.Module`` (not None, not a state dict or an array)
    whose parameters are all of ``dtype`` (the samplers draw float32 noise: a float16 or float64 network would
    fail deep inside torch) on one real device (not "meta": weights never loaded); a ``TinyUNet`` must also
    read ``image_shape`` (C, H, W). Samplers run on the model's device, so no device can disagree; they need
    a parameter to read it from, a loss (``sampling=False``) does not."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module (a TinyUNet, e.g. from ddpm.load_ddpm), got "
                        f"{type(model).__name__}")
    kinds = {(parameter.dtype, parameter.device) for parameter in model.parameters()}
    if not kinds and sampling:
        raise ValueError("model must have parameters (a network: the samplers run on their device), got a module "
                         "with none")
    if not kinds:
        return
    if len(kinds) > 1:
        raise ValueError(f"model must have all its parameters of one dtype on one device, got "
                         f"{sorted(map(str, kinds))}: model.to(device, torch.float32)")
    (found_dtype, device), = kinds
    if device.type == "meta":
        raise ValueError("model has its parameters on the 'meta' device (shapes without values): load its weights")
    if found_dtype != dtype:
        raise TypeError(f"model must have {dtype} parameters, got {found_dtype}: model.to({dtype})")
    if image_shape is not None and isinstance(model, TinyUNet):
        model.check_image_shape("image_shape", image_shape)


def load_tiny_unet(name: str, data_dir=None):
    """A shipped ``TinyUNet`` (``data/NAME.safetensors``; ``data_dir`` may name another folder, such as a training
    run's): ``(model in eval mode, float32; manifest)``, the manifest's ``config`` being the configuration stored
    inside the checksummed weights file."""
    from .checkpoints import DATA_DIR, load_weights, stored_config

    data_dir = DATA_DIR if data_dir is None else data_dir

    if not isinstance(name, str):
        raise TypeError(f"name must be the name of a shipped TinyUNet checkpoint (a string), got {name!r} "
                        f"({type(name).__name__})")
    state_dict, manifest = load_weights(name, data_dir)
    config = stored_config(name, data_dir)
    if "channels" not in config:
        raise ValueError(f"name must be the name of a TinyUNet checkpoint, got {name!r}, whose configuration "
                         f"has no 'channels' (keys: {', '.join(config)})")
    model = TinyUNet(tuple(config["channels"]), config.get("image_channels", 1))
    model.load_state_dict(state_dict)
    return model.eval(), {**manifest, "config": config}


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
