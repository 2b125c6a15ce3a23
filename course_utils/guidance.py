"""Text-conditioned denoising and classifier-free guidance (notebook 06).

The noise predictor eps_theta(z_t, t, c) reads the prompt's token embeddings c through cross-attention
(Rombach et al. 2022, section 3.3): ``diffusers.UNet2DConditionModel``, Stable Diffusion's UNet class.
Classifier-free guidance (Ho & Salimans 2022, https://arxiv.org/abs/2207.12598, eq. 6) trains one model
both with the prompt and, for a random 10% of the examples, with the empty prompt, and samples with

    eps_guided = eps(z_t, t, c_empty) + w * (eps(z_t, t, c) - eps(z_t, t, c_empty)),

w = 0 is the unconditional model, w = 1 the conditional one, w > 1 extrapolates away from "any digit"
towards "this prompt". A negative prompt simply takes the place of the empty one.
"""
from __future__ import annotations

import inspect

import numpy as np
import torch
from tqdm.auto import tqdm

from . import part_folders
from .control import controlnet_residuals
from .latents import LATENT_CHANNELS, LATENT_SIZE
from .runtime import random_normal
from .samplers import check_num_inference_steps, make_scheduler
from .text import tokenize
from .validation import (check_choice, check_generator, check_image_range, check_images, check_integer, check_number,
                         check_path, check_same_shape, check_tensor)

LATENT_SAMPLERS = ("ddpm", "ddim")
TIMESTEP_SPACINGS = ("linspace", "leading", "trailing")


def conditional_unet_config(cross_attention_dim: int = 64) -> dict:
    """``UNet2DConditionModel`` configuration: three levels (8, 4, 2) of widths 32, 64, 128, cross-attention
    at the two finer ones; 3.2M parameters against Stable Diffusion v1's 860M."""
    check_integer("cross_attention_dim", cross_attention_dim, 1, 8192)
    return {"sample_size": LATENT_SIZE, "in_channels": LATENT_CHANNELS, "out_channels": LATENT_CHANNELS,
            "block_out_channels": [32, 64, 128], "layers_per_block": 1, "norm_num_groups": 16,
            "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
            "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
            "cross_attention_dim": cross_attention_dim, "attention_head_dim": 8}


def make_conditional_unet(cross_attention_dim: int = 64):
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(**conditional_unet_config(cross_attention_dim))


def text2image_prediction_type() -> str:
    """What the shipped text-to-image UNet outputs, from its manifest (data/text2image_mnist.json, written by
    ``scripts/train_text2image.py``): "v_prediction" or "epsilon" (models trained before the option existed)."""
    from .checkpoints import load_manifest
    from .data import DATA_DIR

    return load_manifest(DATA_DIR / "text2image_mnist.json")["config"].get("prediction_type", "epsilon")


def default_guidance_scale() -> float:
    """The guidance scale w the course samples the shipped text-to-image model with: the one chosen by
    measurement (``scripts/evaluate_text2image.py --default-scale``, stored in data/text2image_mnist.json's
    quality settings), the smallest w of a sweep on another seed whose adherence reached 0.98."""
    from .checkpoints import load_manifest
    from .data import DATA_DIR

    manifest_path = DATA_DIR / "text2image_mnist.json"
    quality = load_manifest(manifest_path).get("quality")  # a note ("measure with: ...") until measured
    settings = quality.get("settings", {}) if isinstance(quality, dict) else {}
    if "default_scale" not in settings:
        raise ValueError(f"{manifest_path} has no measured default guidance scale (quality.settings.default_scale); "
                         "measure it with `python scripts/evaluate_text2image.py --write-manifest`")
    return float(settings["default_scale"])


def latent_scheduler(name: str = "ddpm", prediction_type: str | None = None, **overrides):
    """The sampler of the course's text-to-image model and pipeline: a ``diffusers`` scheduler from
    ``samplers.make_scheduler`` (cosine schedule), without clipping and with Stable Diffusion's "leading"
    timesteps, steps_offset=1 (for 25 steps: t = 961, 921, ..., 1). ``prediction_type`` is what the UNet
    outputs ("epsilon", "v_prediction"); by default the shipped model's (:func:`text2image_prediction_type`).

    Why not start at t = 999 ("trailing")? With the cosine schedule sqrt(abar_999) is 5e-5, so the first
    estimate of z_0 = (z_t - sqrt(1 - abar) eps) / sqrt(abar) of an epsilon model magnifies any error of eps
    20,000 times; notebook 05 clips that estimate, but ``StableDiffusionPipeline`` switches ``clip_sample``
    off. At t = 961, sqrt(abar) is 0.06 and the magnification about 16, and no clipping is needed. (A
    v model's estimate, z_0 = sqrt(abar) z_t - sqrt(1 - abar) v, has no such magnification; the same
    timesteps keep the two comparable.)"""
    check_choice("name", name, LATENT_SAMPLERS)
    if "timestep_spacing" in overrides:  # make_scheduler checks the other overrides' names and num_train_timesteps
        check_choice("timestep_spacing", overrides["timestep_spacing"], TIMESTEP_SPACINGS)
    settings = {"timestep_spacing": "leading", "steps_offset": 1, **overrides}
    prediction_type = text2image_prediction_type() if prediction_type is None else prediction_type
    return make_scheduler(name, clip=False, prediction_type=prediction_type, **settings)


def drop_prompts(prompts: list[str], rate: float, rng: np.random.Generator) -> list[str]:
    """Conditioning dropout: replace each prompt by the empty prompt "" with probability ``rate``, so the
    same network also learns the unconditional eps(z_t, t, c_empty)."""
    if not isinstance(prompts, (list, tuple)) or not all(isinstance(prompt, str) for prompt in prompts):
        raise TypeError(f"prompts must be a list of strings (for one prompt: [prompt]), got {prompts!r:.100}")
    check_number("rate", rate, 0.0, 1.0)
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy Generator (np.random.default_rng(seed)), got {type(rng).__name__}")
    return ["" if rng.random() < rate else prompt for prompt in prompts]


def within_class_spread(features: torch.Tensor, labels) -> float:
    """Variety of images within their classes: the mean over classes d of the total variance of their features,

        spread = mean_d tr Cov(f | y = d) = mean_d sum_j Var(f_j | y = d),

    over the classes with at least 2 images. ``features`` [N, D] are the course classifier's features
    (``metrics.classify``), ``labels`` [N] each image's class (for samples: the digit the prompt asked for). The
    course's variety measure (notebook 06, ``scripts/evaluate_text2image.py``): divided by the spread of real digits
    it is 1 for samples as varied as real handwriting and falls as guidance makes the samples of a prompt alike.
    The trace of a covariance is the total variance, the quantity FID's tr(Sigma) terms compare (Heusel et al.
    2017, https://arxiv.org/abs/1706.08500, eq. 6)."""
    check_tensor("features", features, dims=2, floating=True)
    labels = torch.as_tensor(labels)
    if labels.shape != (len(features),) or labels.is_floating_point() or labels.dtype == torch.bool:
        raise ValueError(f"labels must be [N] integer classes, one per row of features ({len(features)}), got "
                         f"shape {tuple(labels.shape)}, dtype {labels.dtype}")
    labels = labels.to(features.device)
    traces = [torch.cov(features[labels == d].T).trace() for d in labels.unique() if (labels == d).sum() > 1]
    if not traces:
        raise ValueError("labels must name at least one class with 2 or more images: a spread needs two of a class")
    return float(torch.stack(traces).mean())


def check_guidance_scale(guidance_scale: float) -> None:
    check_number("guidance_scale", guidance_scale, 0.0, 50.0)


def classifier_free_guidance(eps_uncond: torch.Tensor, eps_cond: torch.Tensor, guidance_scale: float) -> torch.Tensor:
    """eps_uncond + w (eps_cond - eps_uncond) (Ho & Salimans 2022, eq. 6, with w = 1 + their w)."""
    check_tensor("eps_uncond", eps_uncond)
    check_same_shape("eps_cond", eps_cond, "eps_uncond", eps_uncond)
    check_guidance_scale(guidance_scale)
    return eps_uncond + guidance_scale * (eps_cond - eps_uncond)


def check_guidance_rescale(rescale: float) -> None:
    check_number("guidance_rescale", rescale, 0.0, 1.0)


def rescale_guidance(eps_guided: torch.Tensor, eps_cond: torch.Tensor, rescale: float) -> torch.Tensor:
    """Guidance rescale (Lin et al. 2024, "Common Diffusion Noise Schedules and Sample Steps Are Flawed",
    https://arxiv.org/abs/2305.08891, section 3.4, eqs. 15-16): a large w inflates the guided prediction's
    standard deviation; scale it back, per sample, to the conditional prediction's, and mix

        eps_rescaled = eps_guided * std(eps_cond) / std(eps_guided)
        eps = phi * eps_rescaled + (1 - phi) * eps_guided,      phi = ``rescale`` in [0, 1]

    (phi = 0: plain guidance; the paper uses 0.7). ``diffusers``' ``guidance_rescale`` (``rescale_noise_cfg``)."""
    check_tensor("eps_guided", eps_guided)
    check_same_shape("eps_cond", eps_cond, "eps_guided", eps_guided)
    check_guidance_rescale(rescale)
    dims = list(range(1, eps_guided.dim()))
    rescaled = eps_guided * (eps_cond.std(dim=dims, keepdim=True) / eps_guided.std(dim=dims, keepdim=True))
    return rescale * rescaled + (1 - rescale) * eps_guided


def guidance_scale_at(timestep: int, guidance_scale: float, interval: tuple[int, int] | None) -> float:
    """Guidance in a limited interval (Kynkaanniemi et al. 2024, "Applying Guidance in a Limited Interval
    Improves Sample and Distribution Quality in Diffusion Models", https://arxiv.org/abs/2404.07724): guide with
    w only while the timestep lies in ``interval`` = (low, high), inclusive, and use the conditional model
    (w = 1) elsewhere. At high noise strong guidance collapses every sample towards one layout; at low noise it
    has nothing left to decide. ``None`` guides at every step."""
    if torch.is_tensor(timestep):
        if timestep.numel() != 1:
            raise ValueError(f"timestep must be one timestep, got a tensor of shape {tuple(timestep.shape)}")
    else:
        check_number("timestep", timestep, 0, 100_000)
    check_guidance_scale(guidance_scale)
    check_interval(interval)
    if interval is None:
        return guidance_scale
    low, high = interval
    return guidance_scale if low <= int(timestep) <= high else 1.0


def check_interval(interval) -> None:
    if interval is None:
        return
    allowed = f"None or (low, high) timesteps with 0 <= low <= high, got {interval!r}"
    if not isinstance(interval, (tuple, list)) or any(isinstance(t, bool) or not isinstance(t, int) for t in interval):
        raise TypeError(f"guidance_interval must be {allowed}")
    if len(interval) != 2 or not 0 <= interval[0] <= interval[1]:
        raise ValueError(f"guidance_interval must be {allowed}")


@torch.no_grad()
def embed_prompts(tokenizer, text_encoder, prompts: list[str]) -> torch.Tensor:
    """Prompts -> per-token embeddings [N, tokens, width], the encoder's last hidden states."""
    if not isinstance(text_encoder, torch.nn.Module):
        raise TypeError(f"text_encoder must be a torch.nn.Module (a CLIPTextModel), got {type(text_encoder).__name__}")
    device = next(text_encoder.parameters()).device
    return text_encoder(tokenize(tokenizer, prompts).to(device)).last_hidden_state


@torch.no_grad()
def sample_with_guidance(unet, scheduler, prompt_embeds: torch.Tensor, negative_embeds: torch.Tensor,
                         guidance_scale: float, num_inference_steps: int,
                         generator: torch.Generator | None = None, progress: bool = True,
                         controlnet=None, control: torch.Tensor | None = None,
                         conditioning_scale: float = 1.0, guidance_rescale: float = 0.0,
                         guidance_interval: tuple[int, int] | None = None) -> torch.Tensor:
    """Latents for each prompt embedding, by the loop the Stable Diffusion pipeline runs:

        z ~ N(0, I) * init_noise_sigma
        for t in timesteps:  eps_u, eps_c = unet([z, z], t, [c_negative, c_prompt])   (one batched call)
                             z = scheduler.step(eps_u + w (eps_c - eps_u), t, z)

    ``negative_embeds`` has one row per prompt (the empty prompt's embedding for plain guidance). The
    latent shape is the UNet's (``in_channels``, ``sample_size``): 8x8x4 for the course model, 64x64x4 for
    Stable Diffusion v1.
    Unlike the diffusers pipeline, which skips the unconditional pass when w <= 1 and so runs the
    conditional model at w = 0, this follows the formula at every w: w = 0 is the unconditional model.
    A v-prediction UNet (the scheduler's ``prediction_type``) is guided by the same formula on its outputs:
    eps = sqrt(1 - abar) z_t + sqrt(abar) v is affine in v with the same z_t term for both passes, so guiding
    v or eps gives the same step.

    ``guidance_rescale`` (phi, :func:`rescale_guidance`) and ``guidance_interval`` (timesteps (low, high),
    :func:`guidance_scale_at`) are the two remedies for over-guidance of notebook 06; both default to off.

    With a ``controlnet`` (notebook 09), each step first runs it on the same input and the ``control`` images
    [N, C, H, W] (the same control for both halves of the batch, as ``StableDiffusionControlNetPipeline``
    does), and the UNet adds its residuals, times ``conditioning_scale``, to its skip connections and middle
    block (``control.controlnet_residuals``).
    """
    check_tensor("prompt_embeds", prompt_embeds, dims=3, floating=True)
    check_same_shape("negative_embeds", negative_embeds, "prompt_embeds", prompt_embeds)
    check_guidance_scale(guidance_scale)
    check_num_inference_steps(num_inference_steps, scheduler.config.num_train_timesteps)
    check_generator("generator", generator)
    check_interval(guidance_interval)
    check_guidance_rescale(guidance_rescale)
    if (controlnet is None) != (control is None):
        raise ValueError("pass controlnet and control together (or neither)")
    if control is not None:
        check_images("control", control)
        check_image_range("control", control, 0.0, 1.0)  # skeletons in {0, 1}
        if control.shape[0] != prompt_embeds.shape[0]:
            raise ValueError(f"control must hold one image per prompt embedding ({prompt_embeds.shape[0]}), "
                             f"got {control.shape[0]}")
        control = control.to(prompt_embeds.device, prompt_embeds.dtype)
    num_images, device, dtype = prompt_embeds.shape[0], prompt_embeds.device, prompt_embeds.dtype
    scheduler.set_timesteps(num_inference_steps, device=device)
    extra = {"generator": generator} if "generator" in inspect.signature(scheduler.step).parameters else {}
    shape = (num_images, unet.config.in_channels, unet.config.sample_size, unet.config.sample_size)
    latents = random_normal(shape, generator, device).to(dtype) * scheduler.init_noise_sigma
    both_embeds = torch.cat([negative_embeds, prompt_embeds])
    for t in tqdm(scheduler.timesteps, desc="guided sampling", disable=not progress):
        model_input = scheduler.scale_model_input(torch.cat([latents, latents]), t)
        residuals = {} if controlnet is None else controlnet_residuals(
            controlnet, model_input, t, both_embeds, torch.cat([control, control]), conditioning_scale)
        eps_uncond, eps_cond = unet(model_input, t, encoder_hidden_states=both_embeds, **residuals).sample.chunk(2)
        eps = classifier_free_guidance(eps_uncond, eps_cond, guidance_scale_at(t, guidance_scale, guidance_interval))
        if guidance_rescale > 0:
            eps = rescale_guidance(eps, eps_cond, guidance_rescale)
        latents = scheduler.step(eps, t, latents, **extra).prev_sample
    return latents


def load_text2image(folder=None, manifest=None):
    """The shipped text-to-image model: ``(tokenizer, text_encoder, unet, manifest)``, in eval mode.

    The parts live in the course's Stable Diffusion folder, ``data/course_pipeline/{tokenizer,text_encoder,unet}``
    (checked against its ``checksums.json``), written by ``scripts/train_text2image.py``; ``manifest`` is
    ``data/text2image_mnist.json``, the command that made them and their measured quality. ``folder`` and
    ``manifest`` name another such pair (a run's export, ``scripts/train_text2image.py --init-from``)."""
    from diffusers import UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    from .checkpoints import load_manifest
    from .data import DATA_DIR

    folder = part_folders.COURSE_PIPELINE_DIR if folder is None else check_path("folder", folder)
    manifest = DATA_DIR / "text2image_mnist.json" if manifest is None else check_path("manifest", manifest)
    part_folders.verify_pipeline_folder(folder, parts=("tokenizer", "text_encoder", "unet"))
    tokenizer = CLIPTokenizer.from_pretrained(folder / "tokenizer", local_files_only=True)
    with part_folders.quiet_loading():
        text_encoder = CLIPTextModel.from_pretrained(folder / "text_encoder", local_files_only=True, use_safetensors=True)
        unet = UNet2DConditionModel.from_pretrained(folder / "unet", local_files_only=True, use_safetensors=True,
                                                    low_cpu_mem_usage=False)
    return tokenizer, text_encoder.eval(), unet.eval(), load_manifest(manifest)
