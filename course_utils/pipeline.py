"""The course's models as a ``diffusers.StableDiffusionPipeline``, and a real Stable Diffusion when available (notebook 07).

A Stable Diffusion pipeline is five parts: tokenizer -> text encoder -> UNet denoising latents under a
scheduler, with classifier-free guidance -> VAE decoder. Notebooks 05 and 06 built every part at toy scale.
``data/course_pipeline/`` is the one home of their weights, laid out as a Stable Diffusion checkpoint
(``vae/``, ``text_encoder/``, ``tokenizer/``, ``unet/``, ``scheduler/``, ``model_index.json``, safetensors
only): the training scripts write their part there with :func:`save_part`, ``checksums.json`` covers every
file, and ``latents.load_vae`` and ``guidance.load_text2image`` read the parts from there.
``scripts/build_pipeline.py`` adds the scheduler and ``model_index.json``; ``load_pipeline`` loads the folder,
offline, or any Stable-Diffusion-architecture checkpoint (a hub id or a folder) when the user has the
network and a GPU.
"""
from __future__ import annotations

import contextlib
import difflib
import json
import os
import re
import socket
from pathlib import Path

import torch

from .data import DATA_DIR, sha256_of
from .validation import check_choice, check_device, check_image_range, check_images, check_number, check_path

COURSE_PIPELINE_DIR = DATA_DIR / "course_pipeline"
# Notebook 09's ControlNet, the one part a StableDiffusionControlNetPipeline adds to the course pipeline: its own
# folder (``controlnet/`` and ``checksums.json``), so the other parts are not stored twice.
COURSE_CONTROLNET_DIR = DATA_DIR / "course_controlnet"
CHECKSUMS_FILE = "checksums.json"  # inside the pipeline folder: SHA-256 of every other file
# The real checkpoint of the online branch: Stable Diffusion v1.5, the architecture whose part sizes the course
# compares against (UNet 860M, text encoder 123M, VAE 84M parameters), stored in fp16 safetensors on the hub.
HUB_MODEL = "stable-diffusion-v1-5/stable-diffusion-v1-5"
REBUILD = "python scripts/build_pipeline.py"
# The record of the run that wrote each trained part: its command rebuilds the part.
PART_MANIFESTS = {"vae": "vae_mnist.json", "text_encoder": "text2image_mnist.json",
                  "tokenizer": "text2image_mnist.json", "unet": "text2image_mnist.json",
                  "controlnet": "controlnet_mnist.json"}
PART_SCRIPTS = {"vae": "train_vae.py", "text_encoder": "train_text2image.py", "tokenizer": "train_text2image.py",
                "unet": "train_text2image.py", "controlnet": "train_controlnet.py"}
PARTS = ("vae", "text_encoder", "tokenizer", "unet", "scheduler", "controlnet")  # the subfolders of a pipeline folder
HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")  # owner/name


def _check_folder_path(name: str, value) -> Path:
    """``value`` is a path (a string or ``pathlib.Path``) that is not an existing file; returns it as a ``Path``."""
    path = check_path(name, value)
    if not os.fspath(value):
        raise ValueError(f"{name} must be a folder path, got the empty string")
    if path.exists() and not path.is_dir():
        raise ValueError(f"{name} must be a directory, got the file {path}")
    return path


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


def rebuild_command(part: str) -> str:
    """The command that rewrites ``part`` of the course pipeline (from its training record when readable)."""
    if not isinstance(part, str):
        raise TypeError(f"part must be the name of a pipeline part ({', '.join(PARTS)}), got {part!r}")
    if part not in PART_MANIFESTS:
        return REBUILD
    from .checkpoints import CheckpointError, load_manifest, with_overwrite_flag

    try:
        command = load_manifest(DATA_DIR / PART_MANIFESTS[part]).get("command")
    except CheckpointError:
        command = None
    return with_overwrite_flag(command if isinstance(command, str) else f"python scripts/{PART_SCRIPTS[part]}")


class PipelineFilesError(RuntimeError):
    """The bundled pipeline folder is missing files or they do not match their checksums."""


def build_course_pipeline(scheduler=None):
    """The shipped course parts (``data/course_pipeline/*``) as a ``StableDiffusionPipeline``.

    ``scheduler`` defaults to notebook 06's sampler, DDPM on the cosine schedule with Stable Diffusion's
    "leading" timesteps (``guidance.latent_scheduler``).
    There is no safety checker: the model can only draw digits."""
    from diffusers import SchedulerMixin, StableDiffusionPipeline

    if scheduler is not None and not isinstance(scheduler, SchedulerMixin):
        raise TypeError(f"scheduler must be None or a diffusers scheduler (for a name such as 'ddim': "
                        f"guidance.latent_scheduler('ddim')), got {type(scheduler).__name__}")

    from .guidance import latent_scheduler, load_text2image
    from .latents import load_vae

    tokenizer, text_encoder, unet, _ = load_text2image()
    return StableDiffusionPipeline(
        vae=load_vae(), text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
        scheduler=scheduler or latent_scheduler("ddpm"),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False)


def folder_checksums(folder: Path) -> dict[str, str]:
    """SHA-256 of every file under ``folder`` (relative paths, sorted), except the checksum file itself."""
    folder = _check_folder_path("folder", folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"folder {folder} does not exist")
    return {path.relative_to(folder).as_posix(): sha256_of(path) for path in sorted(folder.rglob("*"))
            if path.is_file() and path.name != CHECKSUMS_FILE}


def verify_pipeline_folder(folder: Path = COURSE_PIPELINE_DIR, parts: tuple[str, ...] | None = None) -> None:
    """Check the bundled pipeline folder (or only the subfolders ``parts``) against its ``checksums.json``;
    raise :class:`PipelineFilesError` naming the files and the command that rebuilds them."""
    folder = _check_folder_path("folder", folder)
    if parts is not None:
        if not isinstance(parts, (tuple, list)) or not parts:
            raise TypeError(f"parts must be None or a non-empty tuple of part names ({', '.join(PARTS)}), got {parts!r}")
        for part in parts:
            check_choice("parts", part, PARTS)
    listing = folder / CHECKSUMS_FILE
    if not listing.is_file():
        rebuild = rebuild_command(parts[0]) if parts else REBUILD
        raise PipelineFilesError(f"The pipeline folder {folder} (or its {CHECKSUMS_FILE}) is missing. "
                                 f"Rebuild it with `{rebuild}` or restore it with `git checkout -- data/`.")
    expected = _read_checksums(listing)
    if parts is not None:
        expected = {name: sha for name, sha in expected.items() if name.split("/")[0] in parts}
        missing_parts = [part for part in parts if not any(name.startswith(f"{part}/") for name in expected)]
        if missing_parts:
            raise PipelineFilesError(f"{listing} lists no files of {', '.join(missing_parts)}. Rebuild them with "
                                     f"`{rebuild_command(missing_parts[0])}` or restore them with `git checkout -- data/`.")
    problems = [name for name, sha in expected.items()
                if not (folder / name).is_file() or sha256_of(folder / name) != sha]
    if problems:
        rebuild = rebuild_command(problems[0].split("/")[0])
        raise PipelineFilesError(f"The pipeline folder {folder} has missing or corrupt files: {', '.join(problems)}. "
                                 f"Rebuild them with `{rebuild}` or restore them with `git checkout -- data/`.")
    unlisted = [name for name in _visible_files(folder, parts) if name not in expected]
    if unlisted:  # diffusers would load them unverified (a tokenizer's vocabulary, a changed config)
        raise PipelineFilesError(f"The pipeline folder {folder} has files its {CHECKSUMS_FILE} does not list, so they "
                                 f"were never verified: {', '.join(unlisted)}. Remove them, or rebuild with "
                                 f"`{rebuild_command(unlisted[0].split('/')[0])}`, or restore with `git checkout -- data/`.")
    _check_against_training_records(folder, expected)


def _read_checksums(listing: Path) -> dict[str, str]:
    """``checksums.json``: a JSON object of relative file paths to SHA-256 hex digests."""
    try:
        checksums = json.loads(listing.read_text())
    except (OSError, ValueError) as error:  # unreadable, not UTF-8, not JSON
        raise PipelineFilesError(f"{listing} cannot be read as JSON ({error}); restore it with "
                                 f"`git checkout -- data/`.") from None
    if not isinstance(checksums, dict) or not all(
            isinstance(name, str) and isinstance(sha, str) and re.fullmatch(r"[0-9a-f]{64}", sha)
            for name, sha in checksums.items()):
        raise PipelineFilesError(f"{listing} is damaged: it must map file paths to SHA-256 digests; restore it with "
                                 f"`git checkout -- data/`.")
    return checksums


def _visible_files(folder: Path, parts: tuple[str, ...] | None) -> list[str]:
    """The files a pipeline load reads: every non-hidden file under ``folder`` (under the subfolders ``parts``
    only, if given), as relative paths; hidden files (a killed save's ``.NAME.*.tmp``) are never loaded."""
    roots = [folder / part for part in parts] if parts is not None else [folder]
    return [path.relative_to(folder).as_posix() for root in roots if root.is_dir() for path in sorted(root.rglob("*"))
            if path.is_file() and path.name != CHECKSUMS_FILE
            and not any(piece.startswith(".") for piece in path.relative_to(folder).parts)]


def _check_against_training_records(folder: Path, checksums: dict[str, str]) -> None:
    """The shipped folders' checksums must equal those the training run recorded in its manifest (``files`` of
    data/vae_mnist.json, text2image_mnist.json, controlnet_mnist.json): a part edited by hand and its checksum
    updated to match would otherwise load, and draw other images, without a word."""
    from .checkpoints import CheckpointError, load_manifest

    if folder.resolve() not in (COURSE_PIPELINE_DIR.resolve(), COURSE_CONTROLNET_DIR.resolve()):
        return  # a learner's own folder: no training record to compare with
    for manifest_name in sorted({PART_MANIFESTS[name.split("/")[0]] for name in checksums
                                 if name.split("/")[0] in PART_MANIFESTS}):
        try:
            recorded = load_manifest(DATA_DIR / manifest_name).get("files")
        except CheckpointError as error:
            raise PipelineFilesError(str(error)) from None
        if not isinstance(recorded, dict):
            continue  # a record written before files were listed
        differing = [name for name, sha in recorded.items() if name in checksums and checksums[name] != sha]
        if differing:
            raise PipelineFilesError(f"{', '.join(differing)} in {folder} differ from the files the training run "
                                     f"recorded in data/{manifest_name} (edited, with {CHECKSUMS_FILE} updated to "
                                     f"match?). Restore them with `git checkout -- data/`, or retrain with "
                                     f"`{rebuild_command(differing[0].split('/')[0])}`.")


@contextlib.contextmanager
def quiet_loading():
    """Load the course's small parts without ``transformers``' per-file progress bar, which would write to
    stderr in the middle of a notebook's output."""
    from transformers.utils import logging as transformers_logging

    shown = transformers_logging.is_progress_bar_enabled()
    transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        if shown:
            transformers_logging.enable_progress_bar()


def save_part(part, name: str, folder: Path = COURSE_PIPELINE_DIR) -> dict[str, str]:
    """Write one part (a model or tokenizer with ``save_pretrained``) into ``folder/name`` and refresh the
    folder's ``checksums.json``; returns the new part's checksums. The part is written to a temporary folder
    beside it and swapped in, so an interrupted save leaves the previous part in place."""
    import shutil
    import tempfile

    from .checkpoints import write_json

    if not hasattr(part, "save_pretrained"):
        raise TypeError(f"part must be a model, tokenizer or scheduler with save_pretrained, got {type(part).__name__}")
    if not isinstance(name, str):
        raise TypeError(f"name must be the part's folder name ({', '.join(PARTS)}), got {name!r}")
    if not name or name.startswith(".") or "/" in name or "\\" in name:
        raise ValueError(f"name must be a plain folder name ({', '.join(PARTS)}), got {name!r}")
    folder = _check_folder_path("folder", folder)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    staging = Path(tempfile.mkdtemp(dir=folder, prefix=f".{name}."))
    try:
        part.save_pretrained(staging)
        old = folder / f".{name}.old"
        shutil.rmtree(old, ignore_errors=True)
        if target.exists():
            target.rename(old)
        staging.rename(target)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    listing = folder / CHECKSUMS_FILE
    checksums = _read_checksums(listing) if listing.is_file() else {}
    checksums = {key: value for key, value in checksums.items() if not key.startswith(f"{name}/")}
    new = {f"{name}/{key}": value for key, value in folder_checksums(target).items()}
    write_json(listing, dict(sorted((checksums | new).items())))
    return new


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
        verify_pipeline_folder()
        pipe = StableDiffusionPipeline.from_pretrained(COURSE_PIPELINE_DIR, local_files_only=True, use_safetensors=True)
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
    from .guidance import sample_with_guidance
    from .text import tokenize

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

    from .latents import pad_to_32

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
    from .latents import crop_to_28

    check_images("images", images, size=32, channels=1)
    check_image_range("images", images, 0.0, 1.0)
    return crop_to_28(images * 2 - 1)
