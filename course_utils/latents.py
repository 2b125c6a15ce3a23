"""A KL-regularised autoencoder for MNIST and diffusion in its latent space (notebook 05).

Latent diffusion (Rombach et al. 2022, "High-Resolution Image Synthesis with Latent Diffusion Models")
trains an autoencoder once, then runs the whole diffusion process on its small latents z = E(x) and
decodes only the final sample, x = D(z). The course's autoencoder is ``diffusers.AutoencoderKL``, the
class Stable Diffusion uses, at toy size: MNIST padded to 32x32x1 becomes an 8x8x4 latent (a 4x
downsampling per side, where Stable Diffusion uses 8x: 512x512x3 -> 64x64x4).

The encoder predicts a diagonal Gaussian q(z | x) = N(mu, sigma^2); training minimises a reconstruction
error plus beta * KL(q(z | x) || N(0, I)), the VAE objective of Kingma & Welling 2014 with a small beta,
so the latents stay near the origin without blurring the reconstructions.
"""
from __future__ import annotations

import math
from pathlib import Path

import torch
from torch.nn import functional as F

from . import part_folders
from .runtime import random_normal
from .validation import (check_generator, check_image_range, check_images, check_integer, check_number, check_same_shape,
                         check_tensor)

IMAGE_SIZE = 32  # MNIST's 28x28 padded by 2 pixels of background on each side
PADDING = (IMAGE_SIZE - 28) // 2
LATENT_CHANNELS = 4
LATENT_SIZE = 8
# Samplers clip their estimate of z_0 to [-6, 6]: the scaled latents of the course VAE lie within +-5.3 on 2,000
# training digits (99.9% within +-4.1; notebook 05 prints both) and within +-5.7 on 5,000 test digits, as images
# lie within [-1, 1].
LATENT_CLIP_RANGE = 6.0


def pad_to_32(images: torch.Tensor) -> torch.Tensor:
    """[N, 1, 28, 28] in [-1, 1] -> [N, 1, 32, 32], padded with background (-1). The diffusers pipelines
    need image sides divisible by 8, and 32 halves cleanly twice more to the 8x8 latent."""
    check_images("images", images, size=28)
    check_image_range("images", images)  # the padding is background at -1
    return F.pad(images, (PADDING,) * 4, value=-1.0)


def crop_to_28(images: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`pad_to_32`: the centre 28x28, what the course classifier reads."""
    check_tensor("images", images, shape=(None, None, IMAGE_SIZE, IMAGE_SIZE))
    return images[..., PADDING:PADDING + 28, PADDING:PADDING + 28]


VAE_WIDTHS = (16, 32, 64)  # the shipped VAE's channels per resolution level (data/vae_mnist.json says which)


def vae_config(widths=VAE_WIDTHS) -> dict:
    """The ``AutoencoderKL`` configuration of a course VAE with ``widths`` channels at its three resolution
    levels (32, 16, 8; the default 16/32/64 has 0.68M parameters, against Stable Diffusion v1's 84M); the 8x8
    bottleneck has self-attention. Each width is a multiple of 8, the group count of its GroupNorm layers."""
    if not isinstance(widths, (tuple, list)) or len(widths) != 3:
        raise ValueError(f"widths must be three channel counts, one per resolution level, got {widths!r}")
    for width in widths:
        check_integer("widths", width, 8, 4096)
        if width % 8:
            raise ValueError(f"widths must be multiples of 8 (GroupNorm with 8 groups), got {list(widths)}")
    return {
        "in_channels": 1, "out_channels": 1, "latent_channels": LATENT_CHANNELS,
        "down_block_types": ["DownEncoderBlock2D"] * 3, "up_block_types": ["UpDecoderBlock2D"] * 3,
        "block_out_channels": list(widths), "layers_per_block": 1, "norm_num_groups": 8,
        "sample_size": IMAGE_SIZE,
    }


def make_vae(scaling_factor: float = 1.0, widths=VAE_WIDTHS):
    """A fresh (untrained) course VAE as a ``diffusers.AutoencoderKL`` (``widths``: see :func:`vae_config`)."""
    check_number("scaling_factor", scaling_factor, 0, 1000, open_low=True)
    config = vae_config(widths)
    from diffusers import AutoencoderKL

    return AutoencoderKL(**config, scaling_factor=scaling_factor)


def load_vae(folder=None):
    """The shipped course VAE, in eval mode, with its latent scaling factor in ``vae.config.scaling_factor``.

    It lives in the course's Stable Diffusion folder, ``data/course_pipeline/vae/`` (weights and the config
    that defines the model, both covered by ``checksums.json``), written by ``scripts/train_vae.py``, whose
    command and measured quality are recorded in ``data/vae_mnist.json``. ``folder``: another such folder
    (a trial run's ``--pipeline-dir``)."""
    from diffusers import AutoencoderKL

    if folder is not None and not isinstance(folder, (str, Path)):
        raise TypeError(f"folder must be a path to a Stable Diffusion folder holding vae/ (or None for the "
                        f"shipped one), got {type(folder).__name__} {folder!r:.60}")
    folder = part_folders.COURSE_PIPELINE_DIR if folder is None else Path(folder)
    part_folders.verify_pipeline_folder(folder, parts=("vae",))
    return AutoencoderKL.from_pretrained(folder / "vae", local_files_only=True, use_safetensors=True,
                                         low_cpu_mem_usage=False).eval()


def reparameterise(mean: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None):
    """z = mu + sigma * eps, eps ~ N(0, I): a sample of q(z | x) through which gradients reach mu and
    sigma (the reparameterisation trick, Kingma & Welling 2014, section 2.4)."""
    check_tensor("mean", mean, floating=True)
    check_same_shape("logvar", logvar, "mean", mean)
    check_tensor("logvar", logvar, floating=True)
    check_generator("generator", generator)
    noise = random_normal(mean.shape, generator, mean.device, mean.dtype)
    return mean + torch.exp(0.5 * logvar) * noise


def kl_to_standard_normal(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, sigma^2) || N(0, 1)) = 1/2 (mu^2 + sigma^2 - 1 - log sigma^2), summed over each
    sample's latent elements -> [N] (Kingma & Welling 2014, appendix B)."""
    check_tensor("mean", mean, dims=4, floating=True)
    check_same_shape("logvar", logvar, "mean", mean)
    check_tensor("logvar", logvar, floating=True)
    return 0.5 * torch.sum(mean**2 + logvar.exp() - 1.0 - logvar, dim=(1, 2, 3))


def vae_loss(vae, images: torch.Tensor, kl_weight: float, generator: torch.Generator | None = None):
    """Per-pixel mean squared reconstruction error + ``kl_weight`` * KL per latent element.

    Returns ``(loss, reconstruction_mse, kl_per_element)``."""
    check_images("images", images, size=IMAGE_SIZE, channels=vae.config.in_channels)
    check_image_range("images", images)
    check_number("kl_weight", kl_weight, 0, 1000)
    check_generator("generator", generator)
    posterior = vae.encode(images).latent_dist
    latents = reparameterise(posterior.mean, posterior.logvar, generator)
    reconstruction = vae.decode(latents).sample
    mse = F.mse_loss(reconstruction, images)
    kl = kl_to_standard_normal(posterior.mean, posterior.logvar).mean() / posterior.mean[0].numel()
    return mse + kl_weight * kl, mse, kl


def psnr(reconstruction: torch.Tensor, target: torch.Tensor, data_range: float = 2.0) -> torch.Tensor:
    """Peak signal-to-noise ratio per image, 10 log10(range^2 / MSE) in dB; the range of [-1, 1] is 2."""
    check_images("reconstruction", reconstruction)
    check_same_shape("target", target, "reconstruction", reconstruction)
    check_images("target", target)
    check_number("data_range", data_range, 0, 1000, open_low=True)
    mse = ((reconstruction - target) ** 2).flatten(1).mean(dim=1).clamp_min(1e-12)
    return 10.0 * torch.log10(data_range**2 / mse)


def latent_scaling_factor(latents: torch.Tensor) -> float:
    """1 / std of the latents, so the scaled latents have unit variance like the diffusion's N(0, I)
    prior. Stable Diffusion v1's 0.18215 is this number for its VAE, computed on a batch of images
    (Rombach et al. 2022 rescale their latents this way; their code, ``scale_by_std``, takes 1 / std of
    *sampled* latents z = mu + sigma eps of the first training batch. Stored as the ``scaling_factor`` of
    ``AutoencoderKL``). The course passes posterior means of 10,000 training digits (``scripts/train_vae.py``):
    its VAE's sigma is small, and on 2,000 digits the two factors differ by 0.4% (1.165 against 1.160,
    notebook 05)."""
    check_tensor("latents", latents)
    if latents.numel() < 2:
        raise ValueError(f"latents must hold at least 2 numbers to have a standard deviation, got shape "
                         f"{tuple(latents.shape)}")
    std = latents.float().std()
    if not 0 < std < math.inf:
        raise ValueError(f"latents must have a positive, finite standard deviation, got {std.item()}")
    return float(1.0 / std)


@torch.no_grad()
def encode(vae, images28: torch.Tensor, batch_size: int = 100) -> torch.Tensor:
    """MNIST images [N, 1, 28, 28] -> scaled latents z = scaling_factor * mu(x) [N, 4, 8, 8].

    The posterior mean, not a sample: the course encodes its training digits once and trains its latent
    models on these fixed means. Latent diffusion's code (Rombach et al. 2022, ``get_first_stage_encoding``)
    trains on a fresh sample z = mu + sigma eps of q(z | x) instead; the course VAE's sigma averages 0.057
    against a latent std of 0.86 (notebook 05), so a sample differs from the mean by about 7% of the spread."""
    check_images("images28", images28, size=28, channels=vae.config.in_channels)
    check_image_range("images28", images28)
    check_integer("batch_size", batch_size, 1, 1_000_000)
    chunks = [vae.encode(pad_to_32(chunk.to(vae.device))).latent_dist.mean for chunk in images28.split(batch_size)]
    return torch.cat(chunks) * vae.config.scaling_factor


@torch.no_grad()
def decode(vae, latents: torch.Tensor, batch_size: int = 100) -> torch.Tensor:
    """Scaled latents [N, 4, 8, 8] -> MNIST images [N, 1, 28, 28] in [-1, 1]."""
    check_tensor("latents", latents, floating=True, shape=(None, vae.config.latent_channels, LATENT_SIZE, LATENT_SIZE))
    check_integer("batch_size", batch_size, 1, 1_000_000)
    chunks = [vae.decode(chunk.to(vae.device) / vae.config.scaling_factor).sample for chunk in latents.split(batch_size)]
    return crop_to_28(torch.cat(chunks)).clamp(-1.0, 1.0)


@torch.no_grad()
def reconstruction_floor(classifier, test_images: torch.Tensor, reconstructions: torch.Tensor, size: int = 1000,
                         seed: int = 0) -> dict:
    """The two floors a latent model's MNIST FID is read against (notebook 05, ``scripts/compare_latent_pixel.py``,
    ``scripts/train_vae.py``). ``test_images`` are the 10,000 MNIST test digits in [-1, 1], [N, 1, 28, 28], and
    ``reconstructions`` the same digits, in the same order, after a trip through the VAE (encode, decode).

    Of the two disjoint sets of ``metrics.test_digit_indices(size, seed)``, the first is the reference; the second
    is measured against it twice: as it is (the **data floor**, what real digits score) and reconstructed (the
    **VAE floor**). A latent model draws what the decoder can draw, so the VAE floor is the score to expect of a
    perfect latent model, though not a bound: a model could, by chance, miss the decoder's errors.

    Returns the reference features and, rounded, both FIDs and confident shares."""
    from . import metrics

    check_same_shape("reconstructions", reconstructions, "test_images", test_images)
    check_tensor("test_images", test_images, shape=(metrics.NUM_TEST_DIGITS, 1, 28, 28), floating=True)
    first, second = metrics.test_digit_indices(size, seed)
    reference, _ = metrics.classify(classifier, test_images[first])
    real = metrics.evaluate_samples(classifier, test_images[second], reference)
    reconstructed = metrics.evaluate_samples(classifier, reconstructions[second], reference)
    return {"reference": reference, "data_floor_fid": round(real["fid"], 3),
            "real_confident_share": round(real["confident_share"], 4),
            "vae_floor_fid": round(reconstructed["fid"], 3),
            "vae_confident_share": round(reconstructed["confident_share"], 4)}


def channel_images(z: torch.Tensor) -> torch.Tensor:
    """Latents [N, C, 8, 8] -> each channel as a picture over the padded 32x32 frame it encodes,
    [N, C, 1, 32, 32]: every 8x8 map divided by its largest |value| (so it lies in [-1, 1], sign kept) and
    each cell drawn over the 4x4 block of pixels it sits on (nearest neighbour, 32 / 8 = 4 pixels per cell),
    so a channel lines up with ``pad_to_32`` of its digit."""
    check_tensor("z", z, dims=4, floating=True, shape=(None, None, LATENT_SIZE, LATENT_SIZE))
    largest = z.abs().amax(dim=(2, 3), keepdim=True).clamp_min(1e-12)
    enlarged = F.interpolate(z / largest, scale_factor=IMAGE_SIZE // LATENT_SIZE, mode="nearest")
    return enlarged.unsqueeze(2)  # [N, C, 1, 32, 32]: one one-channel image per latent channel


def latent_shape(num_images: int) -> tuple[int, int, int, int]:
    """The shape of ``num_images`` latents of the course VAE, [N, 4, 8, 8]."""
    check_integer("num_images", num_images, 1, 1_000_000)
    return (num_images, LATENT_CHANNELS, LATENT_SIZE, LATENT_SIZE)


def compression_ratio() -> float:
    """Pixels in a 32x32 image per number in its latent: 1024 / 256 = 4 (Stable Diffusion: 48)."""
    return IMAGE_SIZE**2 / math.prod(latent_shape(1)[1:])
