"""Checking what a learner passes in: one message format for every bad value, in notebooks and in the library.

Every check raises ``TypeError`` (wrong kind of value) or ``ValueError`` (right kind, outside the allowed
range) with the parameter's name, what is allowed and what it got, e.g.
``ValueError: NUM_STEPS must be an integer in [1, 1000], got 0``. Booleans are not numbers here, although
Python lets ``True`` pass as 1.

Notebooks check their ``parameters`` cell with :func:`check_parameters`, which also refuses names that are
not parameters of the notebook (a misspelled ``papermill -p NUM_STEP 50`` would otherwise run with the
defaults):

    check_parameters(globals(), NUM_STEPS=integer(1, 1000), STEP_SIZE=number(0, 1, allow_none=True))
"""
from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable
from typing import Any

Check = Callable[[str, Any], None]
PARAMETER_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_integer(name: str, value: Any, low: int, high: int) -> None:
    """``value`` is an int (not a bool) in [low, high]."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an integer in [{low}, {high}], got {value!r} ({type(value).__name__})")
    if not low <= value <= high:
        raise ValueError(f"{name} must be an integer in [{low}, {high}], got {value!r}")


def check_number(name: str, value: Any, low: float, high: float, *, open_low: bool = False) -> None:
    """``value`` is a finite int or float (not a bool) in [low, high], or (low, high] with ``open_low``."""
    interval = f"{'(' if open_low else '['}{low}, {high}]"
    if not _is_number(value):
        raise TypeError(f"{name} must be a number in {interval}, got {value!r} ({type(value).__name__})")
    if not math.isfinite(value) or value > high or value < low or (open_low and value == low):
        raise ValueError(f"{name} must be a number in {interval}, got {value!r}")


def check_choice(name: str, value: Any, choices) -> None:
    """``value`` is one of ``choices``."""
    if isinstance(value, bool) or value not in tuple(choices):
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")


def integer(low: int, high: int) -> Check:
    return lambda name, value: check_integer(name, value, low, high)


def number(low: float, high: float, *, open_low: bool = False, allow_none: bool = False) -> Check:
    def check(name: str, value: Any) -> None:
        if not (allow_none and value is None):
            check_number(name, value, low, high, open_low=open_low)
    return check


def choice(*choices) -> Check:
    return lambda name, value: check_choice(name, value, choices)


def integer_list(low: int, high: int) -> Check:
    """A non-empty list (or tuple) of integers in [low, high]."""
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
    def check(name: str, value: Any) -> None:
        message = f"{name} must be a non-empty list of numbers in [{low}, {high}], got {value!r}"
        if not isinstance(value, (list, tuple)) or not value or not all(_is_number(item) for item in value):
            raise TypeError(message)
        if any(not low <= item <= high for item in value):
            raise ValueError(message)
    return check


def choice_list(*choices) -> Check:
    """A non-empty list (or tuple) drawn from ``choices``."""
    def check(name: str, value: Any) -> None:
        message = f"{name} must be a non-empty list drawn from {', '.join(map(repr, choices))}, got {value!r}"
        if not isinstance(value, (list, tuple)) or not value:
            raise TypeError(message)
        if any(isinstance(item, bool) or item not in choices for item in value):
            raise ValueError(message)
    return check


def string(max_length: int = 1000) -> Check:
    def check(name: str, value: Any) -> None:
        if not isinstance(value, str):
            raise TypeError(f"{name} must be a string, got {value!r} ({type(value).__name__})")
        if len(value) > max_length:
            raise ValueError(f"{name} must be at most {max_length} characters long, got {len(value)}")
    return check


def check_parameters(namespace: dict[str, Any], **checks: Check) -> None:
    """Check a notebook's parameters (``namespace`` is its ``globals()``), each with its check from
    ``checks``, and refuse any other UPPER_CASE value in ``namespace``: it can only be a misspelled
    parameter injected by papermill (the parameters cell is the first to define UPPER_CASE names)."""
    unknown = [name for name, value in namespace.items()
               if PARAMETER_NAME.match(name) and name not in checks
               and (value is None or isinstance(value, (bool, int, float, str, list, tuple, dict)))]
    if unknown:
        hints = []
        for name in unknown:
            close = difflib.get_close_matches(name, list(checks), n=1)
            hints.append(f"{name}" + (f" (did you mean {close[0]}?)" if close else ""))
        raise ValueError(f"unknown parameter(s) {', '.join(hints)}; this notebook's parameters are "
                         f"{', '.join(checks)}")
    for name, check in checks.items():
        if name not in namespace:
            raise ValueError(f"the parameter {name} is not defined: run the parameters cell first")
        check(name, namespace[name])
