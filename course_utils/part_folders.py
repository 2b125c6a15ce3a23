"""The folders of diffusers parts bundled in ``data/``, laid out as a Stable Diffusion checkpoint, and their checks
against ``checksums.json`` and the training records.

``data/course_pipeline/`` holds the course pipeline's parts (``vae/``, ``text_encoder/``, ``tokenizer/``, ``unet/``,
``scheduler/``, ``model_index.json``, safetensors only) and ``data/course_controlnet/`` notebook 09's ControlNet.
The training scripts write their part with :func:`save_part`, which refreshes the folder's ``checksums.json``;
the loaders (``latents.load_vae``, ``guidance.load_text2image``, ``control.load_controlnet``,
``pipeline.load_pipeline``) call :func:`verify_pipeline_folder` before reading a part, which also compares the
shipped files with the checksums their training run recorded (``data/vae_mnist.json``, ``text2image_mnist.json``,
``controlnet_mnist.json``). An error names the files and the command that rebuilds them.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

from .checkpoints import CheckpointError, load_manifest, training_commands, with_overwrite_flag, write_json
from .data import DATA_DIR, sha256_of
from .validation import check_choice, check_path

COURSE_PIPELINE_DIR = DATA_DIR / "course_pipeline"
# Notebook 09's ControlNet, the one part a StableDiffusionControlNetPipeline adds to the course pipeline: its own
# folder (``controlnet/`` and ``checksums.json``), so the other parts are not stored twice.
COURSE_CONTROLNET_DIR = DATA_DIR / "course_controlnet"
CHECKSUMS_FILE = "checksums.json"  # inside the pipeline folder: SHA-256 of every other file
REBUILD = "python scripts/build_pipeline.py"
# The record of the run that wrote each trained part: its command rebuilds the part.
PART_MANIFESTS = {"vae": "vae_mnist.json", "text_encoder": "text2image_mnist.json",
                  "tokenizer": "text2image_mnist.json", "unet": "text2image_mnist.json",
                  "controlnet": "controlnet_mnist.json"}
PART_SCRIPTS = {"vae": "train_vae.py", "text_encoder": "train_text2image.py", "tokenizer": "train_text2image.py",
                "unet": "train_text2image.py", "controlnet": "train_controlnet.py"}
PARTS = ("vae", "text_encoder", "tokenizer", "unet", "scheduler", "controlnet")  # the subfolders of a pipeline folder


def _check_folder_path(name: str, value) -> Path:
    """``value`` is a path (a string or ``pathlib.Path``) that is not an existing file; returns it as a ``Path``."""
    path = check_path(name, value)
    if not os.fspath(value):
        raise ValueError(f"{name} must be a folder path, got the empty string")
    if path.exists() and not path.is_dir():
        raise ValueError(f"{name} must be a directory, got the file {path}")
    return path


def rebuild_command(part: str) -> str:
    """The command that rewrites ``part`` of the course pipeline, from its training record when readable. A part
    trained in stages (``--init-from``) gets every stage's command, first to last, joined by ``"`, then `"``
    (the callers quote the result in backticks), each continuing from the previous one's output."""
    if not isinstance(part, str):
        raise TypeError(f"part must be the name of a pipeline part ({', '.join(PARTS)}), got {part!r}")
    if part not in PART_MANIFESTS:
        return REBUILD
    try:
        commands = training_commands(load_manifest(DATA_DIR / PART_MANIFESTS[part]))
    except (CheckpointError, ValueError):  # unreadable, or a record without its commands
        commands = []
    if not all(isinstance(command, str) for command in commands) or not commands:
        commands = [f"python scripts/{PART_SCRIPTS[part]}"]
    return "`, then `".join(with_overwrite_flag(command) for command in commands)


class PipelineFilesError(RuntimeError):
    """The bundled pipeline folder is missing files or they do not match their checksums."""


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
