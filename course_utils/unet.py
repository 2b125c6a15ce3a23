"""A small UNet that predicts the noise in x_t (notebook 03).

The shape follows the DDPM UNet (Ho et al. 2020, appendix B), itself a PixelCNN++-style UNet
(Ronneberger et al. 2015): residual blocks with GroupNorm and SiLU, the timestep fed to every block
through a sinusoidal embedding (Vaswani et al. 2017) and an MLP, self-attention at the coarsest
resolution, and skip connections from each encoder level to the decoder level of the same size.
For 28x28 MNIST the resolutions are 28 -> 14 -> 7 and back.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from .validation import check_integer, check_number, check_tensor


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


class TinyUNet(nn.Module):
    """epsilon_theta(x_t, t): a UNet with ``len(channels)`` resolutions, 1 input and 1 output channel.

    ``channels[i]`` is the width at resolution 28 / 2^i; each level has one residual block on the way
    down and one on the way up (after concatenating the skip); the bottleneck adds self-attention.
    """

    def __init__(self, channels: tuple[int, ...] = (32, 64, 128), image_channels: int = 1):
        super().__init__()
        if len(channels) < 1 or any(c % 8 for c in channels):
            raise ValueError(f"channels must be a non-empty tuple of multiples of 8, got {channels!r}")
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

    def forward(self, x: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        timesteps = torch.as_tensor(timesteps, device=x.device).reshape(-1).expand(x.shape[0])
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


def load_tiny_unet(name: str):
    """A shipped ``TinyUNet`` (``data/NAME.safetensors``): ``(model in eval mode, float32; manifest)``, the
    manifest's ``config`` being the configuration stored inside the checksummed weights file."""
    from .checkpoints import load_weights, stored_config

    if not isinstance(name, str):
        raise TypeError(f"name must be the name of a shipped TinyUNet checkpoint (a string), got {name!r} "
                        f"({type(name).__name__})")
    state_dict, manifest = load_weights(name)
    config = stored_config(name)
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
