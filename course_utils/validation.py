"""Checking what a learner passes in: one message format for every bad value, in notebooks and in the library.

Every check raises ``TypeError`` (wrong kind of value) or ``ValueError`` (right kind, outside the allowed
range) with the parameter's name, what is allowed and what it got, e.g.
``ValueError: NUM_STEPS must be an integer in [1, 1000], got 0``. Booleans are not numbers here, although
Python lets ``True`` pass as 1.

Notebooks check their ``parameters`` cell with :func:`check_parameters`, which also refuses names that are
not parameters of the notebook (a misspelled ``papermill -p NUM_STEP 50`` would otherwise run with the
defaults):

    check_parameters(globals(), NUM_STEPS=integer(1, 1000), STEP_SIZE=number(0, 1, allow_none=True))

Misusing the checks themselves (low > high, a NaN or non-numeric bound, ``check_choice`` given a string or
no choices, ``STEPS=integer`` not called) raises at once, naming the argument: such a check could never
pass, or would check nothing.
"""
from __future__ import annotations

import difflib
import math
import numbers
import os
import re
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any

Check = Callable[[str, Any], None]
PARAMETER_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")
# How far outside [-1, 1] the inputs of a forward process or a loss may lie: they also take scaled latents
# (within about +-5.7, see latents.LATENT_CLIP_RANGE), and still refuse pixels in 0..255.
DIFFUSION_SLACK = 9.0


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# Misuse of the checks themselves: a developer's error, not a learner's.

def _check_name(name: Any) -> None:
    if not isinstance(name, str) or not name:
        raise TypeError(f"name must be a non-empty string, the name of the parameter checked, got {name!r}")


def _check_bounds(function: str, low: Any, high: Any) -> None:
    """``low`` and ``high`` are numbers (not bools, not NaN; infinities allowed) with low <= high."""
    for label, bound in (("low", low), ("high", high)):
        if isinstance(bound, bool) or not isinstance(bound, numbers.Real):
            raise TypeError(f"{function}: {label} must be a number, got {bound!r} ({type(bound).__name__})")
        if math.isnan(bound):
            raise ValueError(f"{function}: {label} must be a number, got nan")
    if low > high:
        raise ValueError(f"{function}: low must be <= high (no value could pass), got low={low!r}, high={high!r}")


def _check_choices(function: str, choices: Any) -> tuple:
    """``choices`` as a tuple: a non-empty collection of the allowed values, not a string (whose letters it would be)."""
    if isinstance(choices, (str, bytes)) or not isinstance(choices, Collection):
        raise TypeError(f"{function}: choices must be a list or tuple of the allowed values, got {choices!r}")
    if not choices:
        raise ValueError(f"{function}: choices must not be empty (no value could pass)")
    return tuple(choices)


def _check_unpacked(function: str, choices: tuple) -> None:
    """The factories take the choices themselves: ``choice("ddpm", "ddim")`` or ``choice(*names)``."""
    if not choices:
        raise ValueError(f"{function}: choices must not be empty: list the allowed values, e.g. {function}('ddpm', 'ddim')")
    if len(choices) == 1 and isinstance(choices[0], (list, tuple, set, frozenset, dict)):
        raise TypeError(f"{function}: choices must be the allowed values themselves, got one {type(choices[0]).__name__} "
                        f"{choices[0]!r}: unpack it, {function}(*values)")


def check_integer(name: str, value: Any, low: int, high: int) -> None:
    """``value`` is an int (not a bool) in [low, high]."""
    _check_name(name)
    _check_bounds("check_integer", low, high)
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an integer in [{low}, {high}], got {value!r} ({type(value).__name__})")
    if not low <= value <= high:
        raise ValueError(f"{name} must be an integer in [{low}, {high}], got {value!r}")


def check_number(name: str, value: Any, low: float, high: float, *, open_low: bool = False) -> None:
    """``value`` is a finite int or float (not a bool) in [low, high], or (low, high] with ``open_low``."""
    _check_name(name)
    _check_bounds("check_number", low, high)
    interval = f"{'(' if open_low else '['}{low}, {high}]"
    if not _is_number(value):
        raise TypeError(f"{name} must be a number in {interval}, got {value!r} ({type(value).__name__})")
    if not math.isfinite(value) or value > high or value < low or (open_low and value == low):
        raise ValueError(f"{name} must be a number in {interval}, got {value!r}")


def check_choice(name: str, value: Any, choices) -> None:
    """``value`` is one of ``choices``."""
    _check_name(name)
    choices = _check_choices("check_choice", choices)
    if isinstance(value, bool) or value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")


def check_tensor(name: str, value: Any, *, dims: int | tuple[int, ...] | None = None, floating: bool = False,
                 shape: tuple[int | None, ...] | None = None) -> None:
    """``value`` is a ``torch.Tensor`` with ``dims`` dimensions (a count or a tuple of allowed counts), a
    floating-point dtype if ``floating`` (uint8 images would be silently cast, integer timesteps passed as
    alpha_bar give NaN), and ``shape`` where given (``None`` entries match any size)."""
    import torch

    _check_name(name)
    if not torch.is_tensor(value):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    allowed = (dims,) if isinstance(dims, int) else dims
    if allowed is not None and value.dim() not in allowed:
        raise ValueError(f"{name} must have {' or '.join(map(str, allowed))} dimensions, got shape {tuple(value.shape)}")
    if floating and not value.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor (images in [-1, 1]: convert with "
                        f"course_utils.data.to_model_range), got dtype {value.dtype}")
    if shape is not None and (value.dim() != len(shape)
                              or any(want is not None and got != want for got, want in zip(value.shape, shape))):
        wanted = "[" + ", ".join("*" if size is None else str(size) for size in shape) + "]"
        raise ValueError(f"{name} must have shape {wanted}, got {tuple(value.shape)}")


def check_images(name: str, value: Any, *, size: int | None = None, channels: int | None = None) -> None:
    """A floating-point batch of images [N, C, H, W] (``size`` = H = W, ``channels`` = C where given)."""
    check_tensor(name, value, dims=4, floating=True, shape=(None, channels, size, size))


def _range_fix(low: float, high: float, found_low: float, found_high: float) -> str:
    """What to do about images found in [found_low, found_high] where [low, high] is expected."""
    if (low, high) == (-1.0, 1.0):
        if found_low >= 0 and found_high > 1:
            return ("for pixels in 0..255, divide by 127.5 and subtract 1 (course_utils.data.to_model_range does "
                    "it for uint8 digits)")
        if found_low >= 0:
            return "for images in [0, 1], multiply by 2 and subtract 1"
    if (low, high) == (0.0, 1.0):
        if found_low >= 0:
            return "for pixels in 0..255, divide by 255"
        if found_low >= -1 and found_high <= 1 + 1e-6:
            return "for images in [-1, 1], add 1 and divide by 2 (x / 2 + 0.5)"
    return f"rescale them to [{low:g}, {high:g}] (or clamp, for values just outside it)"


def check_image_range(name: str, images: Any, low: float = -1.0, high: float = 1.0, *,
                      slack: float | None = None, digits: bool = False, any_noise: bool = False,
                      centred: bool = False) -> None:
    """The values of the image batch ``images`` lie in [low, high] (the course's images: [-1, 1]).

    The usual mistake, pixels as floats in 0..255 or images in [0, 1] where [-1, 1] is expected, is refused
    with the range found, the range expected and the fix. ``slack`` (default: half the range's width, so
    [-2, 2] for [-1, 1]) is how far outside the range a value may lie: a sampler's unclipped output or a
    decoder's overshoot lies a little outside, and is legitimate. With ``digits`` the batch is MNIST-like,
    ink on a background at ``low``: when no pixel lies below the middle of the range there is no background,
    which for [-1, 1] means the images are in [0, 1]. With ``any_noise`` (figures, which also show x_t with noise
    of any size) only the unmistakable case is refused: no value below ``low`` and values beyond the slack, that
    is pixels in 0..255. With ``centred`` (the inputs of a forward process or a loss: images in [-1, 1] or
    scaled latents, both centred on 0) a batch whose values all lie in [0, 1], not all equal, is refused: images
    in [0, 1] (a constant batch, such as zeros, is a legitimate test input).
    NaN and empty batches are left to other checks.
    One pass over the batch (a min and a max); on a GPU that costs one synchronisation."""
    import torch

    check_tensor(name, images)
    check_bool("digits", digits)
    check_bool("any_noise", any_noise)
    check_bool("centred", centred)
    if slack is not None:
        check_number("slack", slack, 0, math.inf)
    if images.numel() == 0 or images.is_complex() or images.device.type == "meta":
        return
    found_low, found_high = (value.item() for value in torch.aminmax(images.detach().float()))
    if math.isnan(found_low) or math.isnan(found_high):
        return
    margin = (high - low) / 2 if slack is None else slack
    no_background = digits and found_low >= (low + high) / 2
    in_unit_range = centred and 0 <= found_low < found_high <= 1
    outside = found_low < low - margin or found_high > high + margin
    if any_noise:
        outside = found_low >= low and found_high > high + margin
    if outside or no_background or in_unit_range:
        raise ValueError(f"{name} must have values in [{low:g}, {high:g}], got values in "
                         f"[{found_low:.4g}, {found_high:.4g}]: {_range_fix(low, high, found_low, found_high)}")


def check_same_shape(name: str, value: Any, other_name: str, other: Any) -> None:
    """``value`` is a tensor of the shape of the tensor ``other`` (no silent broadcasting between batches)."""
    check_tensor(name, value)
    check_tensor(other_name, other)
    if value.shape != other.shape:
        raise ValueError(f"{name} must have the shape of {other_name} {tuple(other.shape)}, got {tuple(value.shape)}")


def check_path(name: str, value: Any) -> Path:
    """``value`` is a path (a ``str`` or ``os.PathLike``); returns it as a ``pathlib.Path``."""
    _check_name(name)
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{name} must be a path (str or pathlib.Path), got {value!r} ({type(value).__name__})")
    return Path(value)


def check_generator(name: str, value: Any) -> None:
    """``value`` is ``None`` or a ``torch.Generator`` (a seed is not: make one with torch.Generator().manual_seed(seed))."""
    import torch

    _check_name(name)
    if value is not None and not isinstance(value, torch.Generator):
        raise TypeError(f"{name} must be a torch.Generator or None (for a seed s: torch.Generator().manual_seed(s)), "
                        f"got {value!r} ({type(value).__name__})")


def mps_available() -> bool:
    """Whether Apple's MPS backend is usable here (older torch builds have no ``torch.backends.mps``)."""
    import torch

    return getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()


def check_device(name: str, value: Any, *, available: bool = True):
    """``value`` names a device (a string such as ``"cuda:1"`` or a ``torch.device``); returns it as a ``torch.device``.

    With ``available`` (the default) it must also be one this machine has: the CPU, a CUDA GPU that torch sees,
    or Apple's MPS. Without it any device torch can parse passes (``"meta"`` included): for functions that only
    move tensors there."""
    import torch

    _check_name(name)
    if not isinstance(value, (str, torch.device)):
        raise TypeError(f"{name} must be a string or torch.device ('cpu', 'cuda', 'cuda:N', 'mps'), got {value!r} "
                        f"({type(value).__name__})")
    try:
        device = torch.device(value)
    except RuntimeError:
        raise ValueError(f"{name} must be a device name such as 'cpu', 'cuda', 'cuda:N' or 'mps', got {value!r}") from None
    if not available:
        return device
    check_choice(name, device.type, ("cpu", "cuda", "mps"))
    if device.type == "cuda" and not (torch.cuda.is_available() and (device.index or 0) < torch.cuda.device_count()):
        raise ValueError(f"{name} {value!r} was asked for, but this torch sees {torch.cuda.device_count()} CUDA GPU(s); "
                         f"use 'cpu' (or runtime.pick_device())")
    if device.type == "mps" and not mps_available():
        raise ValueError(f"{name} 'mps' was asked for, but Apple's MPS is not available here; use 'cpu'")
    return device


def check_bool(name: str, value: Any) -> None:
    """``value`` is ``True`` or ``False`` (a string such as ``"no"`` would count as true)."""
    _check_name(name)
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {value!r} ({type(value).__name__})")


def check_sizes(name: str, value: Any, *, length: int | None = None, minimum: int = 0) -> None:
    """``value`` is a shape: a tuple (or list, or ``torch.Size``) of ``length`` integers >= ``minimum``."""
    _check_name(name)
    count = "" if length is None else f"{length} "
    message = f"{name} must be a tuple of {count}integers >= {minimum}, got {value!r}"
    if not isinstance(value, (tuple, list)) or any(
            isinstance(size, bool) or not isinstance(size, numbers.Integral) for size in value):
        raise TypeError(message)
    if (length is not None and len(value) != length) or any(size < minimum for size in value):
        raise ValueError(message)


def integer(low: int, high: int) -> Check:
    _check_bounds("integer", low, high)
    return lambda name, value: check_integer(name, value, low, high)


def number(low: float, high: float, *, open_low: bool = False, allow_none: bool = False) -> Check:
    _check_bounds("number", low, high)
    check_bool("open_low", open_low)
    check_bool("allow_none", allow_none)

    def check(name: str, value: Any) -> None:
        if not (allow_none and value is None):
            check_number(name, value, low, high, open_low=open_low)
    return check


def choice(*choices) -> Check:
    _check_unpacked("choice", choices)
    return lambda name, value: check_choice(name, value, choices)


def integer_list(low: int, high: int) -> Check:
    """A non-empty list (or tuple) of integers in [low, high]."""
    _check_bounds("integer_list", low, high)

    def check(name: str, value: Any) -> None:
        message = f"{name} must be a non-empty list of integers in [{low}, {high}], got {value!r}"
        if not isinstance(value, (list, tuple)) or not value:
            raise TypeError(message)
        if any(isinstance(item, bool) or not isinstance(item, int) for item in value):
            raise TypeError(message)
        if any(not low <= item <= high for item in value):
            raise ValueError(message)
    return check


def number_list(low: float, high: float) -> Check:
    """A non-empty list (or tuple) of numbers in [low, high]."""
    _check_bounds("number_list", low, high)

    def check(name: str, value: Any) -> None:
        message = f"{name} must be a non-empty list of numbers in [{low}, {high}], got {value!r}"
        if not isinstance(value, (list, tuple)) or not value or not all(_is_number(item) for item in value):
            raise TypeError(message)
        if any(not low <= item <= high for item in value):
            raise ValueError(message)
    return check


def choice_list(*choices) -> Check:
    """A non-empty list (or tuple) drawn from ``choices``."""
    _check_unpacked("choice_list", choices)

    def check(name: str, value: Any) -> None:
        message = f"{name} must be a non-empty list drawn from {', '.join(map(repr, choices))}, got {value!r}"
        if not isinstance(value, (list, tuple)) or not value:
            raise TypeError(message)
        if any(isinstance(item, bool) or item not in choices for item in value):
            raise ValueError(message)
    return check


def string(max_length: int = 1000) -> Check:
    check_integer("max_length", max_length, 0, math.inf)

    def check(name: str, value: Any) -> None:
        if not isinstance(value, str):
            raise TypeError(f"{name} must be a string, got {value!r} ({type(value).__name__})")
        if len(value) > max_length:
            raise ValueError(f"{name} must be at most {max_length} characters long, got {len(value)}")
    return check


FACTORIES = (integer, number, choice, integer_list, number_list, choice_list, string)
PAPERMILL_CELL = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\s*=", re.MULTILINE)


def _papermill_names(namespace: Mapping[str, Any]) -> list[str]:
    """The names papermill's ``-p NAME VALUE`` assigned: papermill injects a cell that starts with the line
    ``# Parameters`` and holds one ``NAME = value`` per line; IPython keeps every executed cell's source in the
    list ``In``. (Names not in UPPER_CASE, such as ``-p num_steps 20``, would otherwise go unnoticed.)"""
    history = namespace.get("In")
    if not isinstance(history, list):
        return []
    return [name for source in history if isinstance(source, str) and source.startswith("# Parameters\n")
            for name in PAPERMILL_CELL.findall(source)]


def check_parameters(namespace: dict[str, Any], **checks: Check) -> None:
    """Check a notebook's parameters (``namespace`` is its ``globals()``), each with its check from
    ``checks``, and refuse any other UPPER_CASE value in ``namespace``: it can only be a misspelled
    parameter injected by papermill (the parameters cell is the first to define UPPER_CASE names), and any other
    name papermill's ``-p`` assigned (a lower-case ``-p num_steps 20`` too: parameters are UPPER_CASE)."""
    if not isinstance(namespace, Mapping):
        raise TypeError(f"namespace must be the notebook's globals(), a dict, got {type(namespace).__name__}")
    for name, check in checks.items():
        if any(check is factory for factory in FACTORIES):
            raise TypeError(f"{name}={check.__name__} is the factory of a check, not a check: call it with what is "
                            f"allowed, e.g. {name}=integer(1, 100)")
        if not callable(check):
            raise TypeError(f"{name} needs a check such as integer(1, 100) or choice('a', 'b'), got {check!r}")
    unknown = [name for name, value in namespace.items()
               if PARAMETER_NAME.match(name) and name not in checks
               and (value is None or isinstance(value, (bool, int, float, str, list, tuple, dict)))]
    unknown += [name for name in dict.fromkeys(_papermill_names(namespace)) if name not in checks and name not in unknown]
    if unknown:
        hints = []
        for name in unknown:
            close = [name.upper()] if name.upper() in checks else difflib.get_close_matches(name, list(checks), n=1)
            hints.append(f"{name}" + (f" (did you mean {close[0]}?)" if close else ""))
        raise ValueError(f"unknown parameter(s) {', '.join(hints)}; this notebook's parameters are "
                         f"{', '.join(checks)} (UPPER_CASE, as written)")
    for name, check in checks.items():
        if name not in namespace:
            raise ValueError(f"the parameter {name} is not defined: run the parameters cell first")
        check(name, namespace[name])
