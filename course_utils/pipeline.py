"""The course's models as a ``diffusers.StableDiffusionPipeline``, and a real Stable Diffusion when available (notebook 07).

A Stable Diffusion pipeline is five parts: tokenizer -> text encoder -> UNet denoising latents under a
scheduler, with classifier-free guidance -> VAE decoder. Notebooks 05 and 06 built every part at toy scale.
``data/course_pipeline/`` is the one home of their weights, laid out as a Stable Diffusion checkpoint
(``vae/``, ``text_encoder/``, ``tokenizer/``, ``unet/``, ``scheduler/``, ``model_index.json``, safetensors
only): the training scripts write their part there with ``part_folders.save_part``, ``checksums.json`` covers
every file (``part_folders.verify_pipeline_folder`` checks it), and ``latents.load_vae`` and
``guidance.load_text2image`` read the parts from there. ``scripts/build_pipeline.py`` adds the scheduler and
``model_index.json``; :func:`build_course_pipeline` assembles the parts, :func:`load_pipeline` loads the folder,
offline, or any Stable-Diffusion-architecture checkpoint (a hub id or a folder) when the user has the
network and a GPU. :func:`build_controlnet_pipeline` adds notebook 09's ControlNet (``data/course_controlnet/``).
"""
from __future__ import annotations

import difflib
import os
import re
import socket
from pathlib import Path

import torch

from . import part_folders
from .control import check_controlnet, load_controlnet
from .guidance import latent_scheduler, load_text2image, sample_with_guidance
from .latents import crop_to_28, load_vae, pad_to_32
from .text import tokenize
from .validation import check_device, check_image_range, check_images, check_number

# The real checkpoint of the online branch: Stable Diffusion v1.5, the architecture whose part sizes the course
# compares against (UNet 860M, text encoder 123M, VAE 84M parameters), stored in fp16 safetensors on the hub.
HUB_MODEL = "stable-diffusion-v1-5/stable-diffusion-v1-5"
HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")  # owner/name


def _check_model(model, choices: tuple[str, ...] = ("course",)) -> None:
    """``model`` is one of ``choices``, a hub id ``owner/name`` or an existing local folder."""
    allowed = f"{', '.join(map(repr, choices))}, a hub id 'owner/name' or a local folder"
    if not isinstance(model, (str, os.PathLike)):
        raise TypeError(f"model must be {allowed}, got {model!r} ({type(model).__name__})")
    text = os.fspath(model)
    if text and (text in choices or HUB_ID.match(text) or Path(text).is_dir()):  # Path("") is the current folder
        return
    close = difflib.get_close_matches(text.lower(), choices, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    if text == "auto":
        hint = " (turn 'auto' into a model with choose_model first)"
    raise ValueError(f"model must be {allowed}, got {model!r}{hint}")


def _check_pipe(pipe, parts: tuple[str, ...]) -> None:
    """``pipe`` is a Stable Diffusion pipeline with ``parts`` (load_pipeline, build_course_pipeline ...)."""
    missing = [part for part in parts if getattr(pipe, part, None) is None]
    if missing:
        raise TypeError(f"pipe must be a Stable Diffusion pipeline (load_pipeline, build_course_pipeline) with "
                        f"{', '.join(parts)}, got {type(pipe).__name__}, which has no {', '.join(missing)}")


def build_course_pipeline(scheduler=None):
    """The shipped course parts (``data/course_pipeline/*``) as a ``StableDiffusionPipeline``.

    ``scheduler`` defaults to notebook 06's sampler, DDPM on the cosine schedule with Stable Diffusion's
    "leading" timesteps (``guidance.latent_scheduler``).
    There is no safety checker: the model can only draw digits."""
    from diffusers import SchedulerMixin, StableDiffusionPipeline

    if scheduler is not None and not isinstance(scheduler, SchedulerMixin):
        raise TypeError(f"scheduler must be None or a diffusers scheduler (for a name such as 'ddim': "
                        f"guidance.latent_scheduler('ddim')), got {type(scheduler).__name__}")

    tokenizer, text_encoder, unet, _ = load_text2image()
    return StableDiffusionPipeline(
        vae=load_vae(), text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
        scheduler=scheduler or latent_scheduler("ddpm"),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False)


def build_controlnet_pipeline(controlnet=None, scheduler=None):
    """The course's parts and a ControlNet (default: the shipped one) as a
    ``diffusers.StableDiffusionControlNetPipeline``: the same VAE, tokenizer, text encoder, UNet and sampler
    as :func:`build_course_pipeline`, read from ``data/course_pipeline`` (no second copy of their weights)."""
    from diffusers import SchedulerMixin, StableDiffusionControlNetPipeline

    if controlnet is not None:
        check_controlnet("controlnet", controlnet)
    if scheduler is not None and not isinstance(scheduler, SchedulerMixin):
        raise TypeError(f"scheduler must be a diffusers scheduler (e.g. samplers.make_scheduler('ddim')) or None, "
                        f"got {scheduler!r}")
    parts = build_course_pipeline(scheduler).components
    pipe = StableDiffusionControlNetPipeline(**{name: parts[name] for name in (
        "vae", "text_encoder", "tokenizer", "unet", "scheduler", "safety_checker", "feature_extractor")},
        controlnet=controlnet if controlnet is not None else load_controlnet(), requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def hub_reachable(host: str = "huggingface.co", timeout: float = 2.0) -> bool:
    """Whether the Hugging Face hub may be used: not switched off with ``HF_HUB_OFFLINE`` and answering."""
    if not isinstance(host, str):
        raise TypeError(f"host must be a host name such as 'huggingface.co', got {host!r}")
    check_number("timeout", timeout, 0.0, 600.0, open_low=True)
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        return False
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def choose_model(model: str = "auto") -> str:
    """Which pipeline to load: ``"course"`` (the bundled folder), a hub id or a folder.

    ``"auto"`` gives :data:`HUB_MODEL` when there is a CUDA GPU *and* the hub is reachable, else ``"course"``."""
    _check_model(model, ("auto", "course"))
    if model != "auto":
        return model
    return HUB_MODEL if torch.cuda.is_available() and hub_reachable() else "course"


def model_source(model: str) -> str:
    """Which pipeline :func:`load_pipeline` loads for ``model``, in words: the course's own, a local folder or the hub."""
    _check_model(model)
    if model == "course":
        return "the course's own pipeline, data/course_pipeline (offline)"
    return f"{model}, from " + ("a local folder" if Path(model).is_dir() else "the hub")


def load_pipeline(model: str = "course", device: str | torch.device = "cpu"):
    """Load a ``StableDiffusionPipeline``: ``"course"`` from ``data/course_pipeline`` (checked, offline), or any
    Stable-Diffusion-architecture checkpoint, a hub id or a local folder, in fp16 on a GPU.

    Only safetensors weights are accepted and no remote code is run; a hub checkpoint gets no safety checker
    component from this course (pass your own if you deploy one)."""
    from diffusers import StableDiffusionPipeline

    _check_model(model)
    device = check_device("device", device)
    if model == "course":
        folder = part_folders.COURSE_PIPELINE_DIR
        part_folders.verify_pipeline_folder(folder)
        pipe = StableDiffusionPipeline.from_pretrained(folder, local_files_only=True, use_safetensors=True)
    else:
        dtype = torch.float16 if device.type == "cuda" else torch.float32
        options = dict(dtype=dtype, use_safetensors=True, safety_checker=None, requires_safety_checker=False)
        variant = "fp16" if dtype == torch.float16 else None  # on a GPU: half the download (2 GB for v1.5, not 4)
        try:
            pipe = StableDiffusionPipeline.from_pretrained(model, variant=variant, **options)
        except (OSError, ValueError):
            if variant is None:
                raise
            pipe = StableDiffusionPipeline.from_pretrained(model, **options)  # no fp16 files: cast on loading
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)


@torch.no_grad()
def generate_by_hand(pipe, prompts: list[str], negative_prompts: list[str] | None = None, guidance_scale: float = 4.0,
                     num_inference_steps: int = 25, generator: torch.Generator | None = None,
                     control: torch.Tensor | None = None, conditioning_scale: float = 1.0) -> torch.Tensor:
    """The pipeline's computation spelled out with its own parts: tokenize and encode the prompts, denoise
    latents with guidance (``guidance.sample_with_guidance``), divide by the VAE's scaling factor, decode.
    Returns images [N, C, H, W] in [-1, 1]. Equals ``pipe(..., output_type="pt")`` (mapped to [-1, 1]) for
    guidance_scale > 1; see ``tests/test_pipeline.py``. For a ``StableDiffusionControlNetPipeline``, ``control``
    images [N, C, H, W] in [0, 1] steer it through ``pipe.controlnet`` (``tests/test_control.py``)."""
    _check_pipe(pipe, ("tokenizer", "text_encoder", "unet", "scheduler", "vae"))

    def embed(texts, name):
        ids = tokenize(pipe.tokenizer, texts, name).to(pipe.text_encoder.device)
        return pipe.text_encoder(ids).last_hidden_state

    prompt_embeds = embed(prompts, "prompts")
    negative_embeds = embed(negative_prompts or [""] * len(prompts), "negative_prompts")
    if len(negative_embeds) != len(prompt_embeds):
        raise ValueError(f"negative_prompts must hold one prompt per prompt ({len(prompts)}), got {len(negative_prompts)}")
    controlnet = getattr(pipe, "controlnet", None) if control is not None else None
    latents = sample_with_guidance(pipe.unet, pipe.scheduler, prompt_embeds, negative_embeds,
                                   guidance_scale, num_inference_steps, generator, progress=False,
                                   controlnet=controlnet, control=control, conditioning_scale=conditioning_scale)
    return pipe.vae.decode(latents / pipe.vae.config.scaling_factor).sample.clamp(-1, 1)


def pipeline_resolution(pipe) -> int:
    """Side of the images the pipeline makes by default: UNet sample size x the VAE's downsampling factor."""
    _check_pipe(pipe, ("unet", "vae"))
    return pipe.unet.config.sample_size * pipe.vae_scale_factor


def digits_for_pipeline(digits: torch.Tensor, pipe) -> torch.Tensor:
    """MNIST digits [N, 1, 28, 28] in [-1, 1] -> the pipeline's image input: [N, C, S, S] in [0, 1], padded to
    32x32 and resized to the pipeline's resolution, with as many channels as its VAE reads (1 or RGB)."""
    from torch.nn import functional as F

    check_images("digits", digits, size=28, channels=1)
    check_image_range("digits", digits, digits=True)
    _check_pipe(pipe, ("unet", "vae"))
    side = pipeline_resolution(pipe)
    images = F.interpolate(pad_to_32(digits), size=(side, side), mode="bilinear") if side != 32 else pad_to_32(digits)
    return ((images + 1) / 2).clamp(0, 1).repeat(1, pipe.vae.config.in_channels, 1, 1)


@torch.no_grad()
def vae_round_trip(pipe, images: torch.Tensor) -> torch.Tensor:
    """Images [N, C, S, S] in [0, 1] (the pipeline's image input) encoded and decoded by the pipeline's VAE:
    x -> D(mu(E(2x - 1))) / 2 + 1/2, clamped to [0, 1], on the VAE's device.

    Every image a latent pipeline returns is a decoder output, so no image-to-image or inpainting run can keep
    its input closer than this round trip does: the autoencoder fixes the detail any latent model can reach
    (Rombach et al. 2022, sec. 3.1). The latent is the posterior mean; the pipelines draw a sample of the
    posterior, which differs from it by the VAE's small sigma."""
    _check_pipe(pipe, ("vae",))
    check_images("images", images, channels=pipe.vae.config.in_channels)
    if images.shape[-1] % pipe.vae_scale_factor:
        raise ValueError(f"images must have sides divisible by the VAE's downsampling factor {pipe.vae_scale_factor}, "
                         f"got {images.shape[-1]}")
    if images.numel() and images.isnan().any():
        raise ValueError("images must have values in [0, 1] (the pipeline's image range), got NaN")
    check_image_range("images", images, 0.0, 1.0, slack=0.0)  # the pipeline's image range, exactly
    x = images.to(pipe.vae.device, pipe.vae.dtype) * 2 - 1
    return (pipe.vae.decode(pipe.vae.encode(x).latent_dist.mean).sample / 2 + 0.5).clamp(0, 1)


def pipeline_images_to_digits(images: torch.Tensor) -> torch.Tensor:
    """The course pipeline's output [N, 1, 32, 32] in [0, 1] -> digits [N, 1, 28, 28] in [-1, 1] for the classifier."""
    check_images("images", images, size=32, channels=1)
    check_image_range("images", images, 0.0, 1.0)
    return crop_to_28(images * 2 - 1)
