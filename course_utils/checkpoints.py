"""Saving and loading the course's weights: safetensors files with a JSON manifest, written atomically.

Weights are stored as safetensors (https://huggingface.co/docs/safetensors), which holds only tensors
and cannot run code when loaded, unlike a pickle. Each shipped file has a manifest beside it
(``NAME.json``) with its SHA-256, the exact command that produced it, and what was measured.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from .data import DATA_DIR, sha256_of


class CheckpointError(RuntimeError):
    """A shipped checkpoint is missing or does not match its manifest."""


def atomic_write(path: Path, write) -> None:
    """Call ``write(temporary_path)`` and move the result onto ``path`` in one rename, so that a crash
    never leaves a half-written file where a complete one is expected."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        write(Path(temporary))
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)  # mkstemp creates files private to the owner
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` as indented JSON, atomically."""
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n"))


def save_weights(state_dict: dict[str, torch.Tensor], path: Path, config: dict[str, Any]) -> str:
    """Save tensors as safetensors with ``config`` (JSON) in the header metadata; returns the SHA-256."""
    tensors = {name: tensor.detach().cpu().contiguous() for name, tensor in state_dict.items()}
    atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata={"config": json.dumps(config)}))
    return sha256_of(Path(path))


def manifest_path(weights_path: Path) -> Path:
    return Path(weights_path).with_suffix(".json")


def load_manifest(weights_path: Path) -> dict[str, Any]:
    path = manifest_path(weights_path)
    if not path.is_file():
        raise CheckpointError(f"The manifest {path} is missing.")
    return json.loads(path.read_text())


def load_weights(name: str, data_dir: Path = DATA_DIR) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Load the shipped checkpoint ``data/NAME.safetensors`` after checking it against its manifest.

    Returns ``(state_dict, manifest)``. A missing or corrupt file raises :class:`CheckpointError` naming
    the command (from the manifest) that rebuilds it.
    """
    path = Path(data_dir) / f"{name}.safetensors"
    try:
        manifest = load_manifest(path)
    except CheckpointError as error:
        raise CheckpointError(f"{error} Restore it with `git checkout -- data/` or re-clone the course.") from None
    rebuild = f"Rebuild it with `{manifest['command']}` (or restore it with `git checkout -- {path.relative_to(data_dir.parent) if path.is_relative_to(data_dir.parent) else path}`)."
    if not path.is_file():
        raise CheckpointError(f"The checkpoint {path} is missing. {rebuild}")
    actual = sha256_of(path)
    if actual != manifest["sha256"]:
        raise CheckpointError(
            f"The checkpoint {path} is corrupt: its SHA-256 {actual[:12]}... does not match the manifest's "
            f"{manifest['sha256'][:12]}.... {rebuild}"
        )
    return load_file(str(path)), manifest


def stored_config(name: str, data_dir: Path = DATA_DIR) -> dict[str, Any]:
    """The configuration saved inside ``data/NAME.safetensors`` (its header metadata): what defines the model
    (widths, schedule, prediction target). Unlike the JSON manifest beside it, it is covered by the file's
    SHA-256, so call this after :func:`load_weights` has verified the file."""
    from safetensors import safe_open

    path = Path(data_dir) / f"{name}.safetensors"
    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata() or {}
    if "config" not in metadata:
        raise CheckpointError(f"The checkpoint {path} stores no configuration in its metadata; rebuild it with "
                              f"the command in {manifest_path(path).name}.")
    return json.loads(metadata["config"])
