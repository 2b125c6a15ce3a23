"""Saving and loading the course's weights: safetensors files with a JSON manifest, written atomically.

Weights are stored as safetensors (https://huggingface.co/docs/safetensors), which holds only tensors
and cannot run code when loaded, unlike a pickle. Each shipped file has a manifest beside it
(``NAME.json``) with its SHA-256, the exact command that produced it, and what was measured.
"""
from __future__ import annotations

import glob
import json
import os
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from .data import DATA_DIR, sha256_of
from .validation import check_bool, check_path


class CheckpointError(RuntimeError):
    """A shipped checkpoint is missing or does not match its manifest."""


def _json_text(name: str, value: Any, **options) -> str:
    """``json.dumps(value, **options)``; a value JSON cannot hold is a TypeError naming ``name``."""
    try:
        return json.dumps(value, **options)
    except (TypeError, ValueError) as error:  # a tensor or array, keys of mixed types, a circular reference
        raise TypeError(f"{name} must hold only JSON values (dicts with str keys, lists, str, numbers, bool, "
                        f"None): {error}") from None


def _check_name(name: Any) -> None:
    """A checkpoint's name: a non-empty string such as ``"ddpm_mnist"``."""
    if not isinstance(name, str) or not name:
        raise TypeError(f"name must be a checkpoint name such as 'ddpm_mnist', got {name!r} ({type(name).__name__})")


def _restore_command(path: Path, root: Path = DATA_DIR.parent) -> str:
    """The command that restores a shipped file from the course's git history."""
    return f"git checkout -- {path.relative_to(root) if path.is_relative_to(root) else path}"


def _restore_hint(path: Path) -> str:
    return f"Restore it with `{_restore_command(path)}` or re-clone the course."


STALE_TEMPORARY_S = 3600  # a temporary file this old belongs to no save still running: a killed one left it


def _remove_stale_temporaries(path: Path) -> None:
    """Delete the hidden ``.NAME.*.tmp`` files that a save of ``path`` killed mid-write (SIGKILL, power cut) left
    beside it; younger ones may belong to a save still running in another process, and are kept."""
    now = time.time()
    for temporary in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        try:
            if now - temporary.stat().st_mtime > STALE_TEMPORARY_S:
                temporary.unlink()
        except OSError:  # removed meanwhile by another process, or not ours to remove
            pass


OVERWRITE_FLAG = "--overwrite-shipped"


def with_overwrite_flag(command: str) -> str:
    """A recorded training command made able to rewrite the shipped file it once wrote: the training
    scripts refuse to replace a file in data/ without :data:`OVERWRITE_FLAG`."""
    if not isinstance(command, str):
        raise TypeError(f"command must be a manifest's recorded command, a string such as 'python scripts/"
                        f"train_ddpm.py --steps 3000', got {command!r:.80} ({type(command).__name__})")
    if command.startswith("python scripts/train_") and OVERWRITE_FLAG not in command.split():
        return f"{command} {OVERWRITE_FLAG}"
    return command


def shipped_output_problem(option: str, path: Any, overwrite_shipped: bool) -> str | None:
    """Why a script must not write its output to ``path`` (the value of its ``option``), or None: an existing file
    or folder inside the course's data/ is shipped with the course (a trained model the notebooks load), and a
    training run that replaces it silently loses it. Scripts check this before any work and pass the answer to
    ``parser.error``; ``overwrite_shipped`` (their --overwrite-shipped flag) allows it deliberately."""
    path = check_path(option, path)
    check_bool("overwrite_shipped", overwrite_shipped)
    if overwrite_shipped or not path.exists() or not path.resolve().is_relative_to(DATA_DIR.resolve()):
        return None
    return (f"{option} {path} would replace what the course ships in data/ (a trained model the notebooks load); "
            f"write elsewhere (e.g. {option} runs/{path.name}) or pass {OVERWRITE_FLAG} to replace it on purpose "
            f"({_restore_command(path.resolve())} restores it)")


def atomic_write(path: Path, write) -> None:
    """Call ``write(temporary_path)`` and move the result onto ``path`` in one rename, so that a crash
    never leaves a half-written file where a complete one is expected. A temporary file left by a killed
    earlier save of ``path`` (more than an hour old) is removed first."""
    path = check_path("path", path)
    if path.is_dir():
        raise ValueError(f"path must be a file path, got the folder {path}")
    if not callable(write):
        raise TypeError(f"write must be a function of the temporary path that writes the file, got {write!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(path)
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
    if not isinstance(data, dict):
        raise TypeError(f"data must be a dict, got {type(data).__name__}")
    text = _json_text("data", data, indent=2, sort_keys=True) + "\n"
    atomic_write(path, lambda tmp: tmp.write_text(text))


def save_weights(state_dict: dict[str, torch.Tensor], path: Path, config: dict[str, Any]) -> str:
    """Save tensors as safetensors with ``config`` (JSON) in the header metadata; returns the SHA-256."""
    if not isinstance(state_dict, Mapping):
        raise TypeError(f"state_dict must be a dict of tensors (model.state_dict()), got {type(state_dict).__name__}")
    not_tensors = [name for name, tensor in state_dict.items() if not torch.is_tensor(tensor)]
    if not_tensors:
        raise TypeError(f"state_dict must hold only tensors, got {type(state_dict[not_tensors[0]]).__name__} "
                        f"for {not_tensors[0]!r}")
    if not isinstance(config, dict):
        raise TypeError(f"config must be a dict, got {type(config).__name__}")
    metadata = {"config": _json_text("config", config)}
    tensors = {name: tensor.detach().cpu().contiguous() for name, tensor in state_dict.items()}
    atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata=metadata))
    return sha256_of(Path(path))


def manifest_path(weights_path: Path) -> Path:
    path = check_path("weights_path", weights_path)
    if not path.name:
        raise ValueError(f"weights_path must name a file, got {weights_path!r}")
    return path.with_suffix(".json")


def images_seen(manifest: dict[str, Any]) -> int:
    """Training images a checkpoint has seen, from its manifest: ``images_seen`` where recorded (runs may
    continue at another batch size), else ``steps * batch_size`` (older manifests, one batch size throughout)."""
    if not isinstance(manifest, dict) or not ("images_seen" in manifest or {"steps", "batch_size"} <= set(manifest)):
        raise ValueError(f"manifest must be a training manifest with 'images_seen' or 'steps' and 'batch_size', "
                         f"got {manifest!r:.100}")
    return manifest["images_seen"] if "images_seen" in manifest else manifest["steps"] * manifest["batch_size"]


LINEAGE_KEYS = ("continued_from", "init_from")  # scripts/train_ddpm.py's; train_reflow.py's and train_text2image.py's


def lineage(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """The records of the runs behind a checkpoint, first to last, ``manifest`` itself last. A run that started
    from another run's weights records that run's manifest (or the part of it that defines the weights) under
    ``continued_from`` (``scripts/train_ddpm.py --init-from``) or ``init_from`` (``scripts/train_reflow.py``,
    ``scripts/train_text2image.py --init-from``), nested back to the run that started from scratch; ``init_from:
    "none"`` marks a run from scratch."""
    if not isinstance(manifest, dict) or "command" not in manifest:
        raise ValueError(f"manifest must be a training manifest with a 'command', got {manifest!r:.100}")
    records, where = [], "manifest"
    while True:
        if not isinstance(manifest, dict) or "command" not in manifest:  # a continued run's record, edited or cut
            raise ValueError(f"manifest must record every run it continued with its 'command', but {where} is "
                             f"{manifest!r:.100}: restore the manifest from the run that wrote it")
        records.append(manifest)
        key = next((key for key in LINEAGE_KEYS if manifest.get(key, "none") != "none"), None)
        if key is None:
            return records[::-1]
        manifest, where = manifest[key], f"{where}[{key!r}]"


def training_commands(manifest: dict[str, Any]) -> list[str]:
    """The commands that made a checkpoint (:func:`lineage`), from the run that started from scratch to the
    last. Run them in order to rebuild the weights (each continues the previous one's output)."""
    return [record["command"] for record in lineage(manifest)]


def load_manifest(weights_path: Path) -> dict[str, Any]:
    path = manifest_path(weights_path)
    restore = _restore_hint(path)
    if not path.is_file():
        raise CheckpointError(f"The manifest {path} is missing. {restore}")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as error:  # unreadable, not UTF-8 text, not JSON
        raise CheckpointError(f"The manifest {path} cannot be read as JSON: {error}. {restore}") from None
    if not isinstance(manifest, dict):
        raise CheckpointError(f"The manifest {path} is damaged: it holds a {type(manifest).__name__}, not a JSON "
                              f"object. {restore}")
    return manifest


def load_weights(name: str, data_dir: Path = DATA_DIR) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Load the shipped checkpoint ``data/NAME.safetensors`` (``data_dir``, a Path or a str, may name another folder)
    after checking it against its manifest.

    Returns ``(state_dict, manifest)``. A missing or corrupt file raises :class:`CheckpointError` naming
    the command (from the manifest) that rebuilds it.
    """
    _check_name(name)
    data_dir = check_path("data_dir", data_dir)
    path = data_dir / f"{name}.safetensors"
    manifest = load_manifest(path)
    lacking = [key for key in ("command", "sha256") if not isinstance(manifest.get(key), str)]
    if lacking:
        raise CheckpointError(f"The manifest {manifest_path(path)} is damaged: it has no {' or '.join(lacking)}. "
                              f"{_restore_hint(manifest_path(path))}")
    rebuild = (f"Rebuild it with `{with_overwrite_flag(manifest['command'])}` "
               f"(or restore it with `{_restore_command(path, data_dir.parent)}`).")
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
    from safetensors import SafetensorError, safe_open

    _check_name(name)
    path = check_path("data_dir", data_dir) / f"{name}.safetensors"
    if not path.is_file():
        raise CheckpointError(f"The checkpoint {path} is missing. {_restore_hint(path)}")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
    except SafetensorError as error:
        raise CheckpointError(f"The checkpoint {path} is damaged ({error}). {_restore_hint(path)}") from None
    if "config" not in metadata:
        raise CheckpointError(f"The checkpoint {path} stores no configuration in its metadata; rebuild it with "
                              f"the command in {manifest_path(path).name}.")
    return json.loads(metadata["config"])
