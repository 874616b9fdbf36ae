"""Input checks shared by every public function of neuromod.

Each check raises :class:`ValueError` (or :class:`TypeError` for a wrong type) with a message that names the
parameter, the value received and what was expected, *before* any work starts. Call them at the top of public
functions; they return the (converted) value so they can be used inline::

    tau_ms = check_positive("tau_ms", tau_ms)
    levels = check_array("levels", levels, ndim=1, finite=True, low=0.0, high=1.0)
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

__all__ = [
    "check_array",
    "check_bool",
    "check_choice",
    "check_finite",
    "check_int",
    "check_positive",
    "check_range",
    "check_shape",
    "suggest",
]


def _fmt(value: Any) -> str:
    """Short, readable representation of a value for an error message."""
    if isinstance(value, np.ndarray):
        if value.ndim == 0:  # a scalar converted on the way in: show the value itself
            return repr(value.item())
        if value.size > 8:
            return f"array of shape {value.shape}"
        value = value.tolist()
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def suggest(name: str, candidates: Iterable[str]) -> str:
    """Return ``" (did you mean 'x'?)"`` for the closest candidate to `name`, or ``""``."""
    close = difflib.get_close_matches(name, list(candidates), n=3, cutoff=0.6)
    if not close:
        return ""
    return " (did you mean " + " or ".join(repr(c) for c in close) + "?)"


def check_choice(name: str, value: Any, choices: Sequence[Any]) -> Any:
    """Check that `value` is one of `choices`.

    Raises
    ------
    ValueError
        ``name='value' is not one of [...]`` with a close-match suggestion for strings.
    """
    if value not in choices:
        hint = suggest(value, [str(c) for c in choices]) if isinstance(value, str) else ""
        raise ValueError(f"{name}={value!r} is not one of {list(choices)!r}{hint}")
    return value


def check_finite(name: str, value: Any) -> Any:
    """Check that a scalar or array holds only finite numbers (no NaN or inf)."""
    arr = np.asarray(value)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be numeric, got {_fmt(value)} of dtype {arr.dtype}")
    if not np.all(np.isfinite(arr)):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise ValueError(f"{name} must be finite, got {_fmt(value)} with {bad} non-finite value(s)")
    return value


def check_range(
    name: str,
    value: Any,
    low: float | None = None,
    high: float | None = None,
    *,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
) -> Any:
    """Check that a scalar (or every element of an array) lies in ``[low, high]``.

    Open ends are given by ``low_inclusive=False`` / ``high_inclusive=False``.
    """
    check_finite(name, value)
    arr = np.asarray(value, dtype=float)
    bad = np.zeros(arr.shape, dtype=bool)
    if low is not None:
        bad |= (arr < low) if low_inclusive else (arr <= low)
    if high is not None:
        bad |= (arr > high) if high_inclusive else (arr >= high)
    if np.any(bad):
        lo = "-inf" if low is None else f"{low:g}"
        hi = "inf" if high is None else f"{high:g}"
        interval = ("[" if low_inclusive and low is not None else "(") + f"{lo}, {hi}"
        interval += "]" if high_inclusive and high is not None else ")"
        first = arr[bad].flat[0] if arr.ndim else float(arr)
        shown = _fmt(value) if arr.ndim == 0 else f"{_fmt(value)} (e.g. {first:g})"
        raise ValueError(f"{name}={shown} is outside the valid range {interval}")
    return value


def check_bool(name: str, value: Any) -> bool:
    """Check that `value` is a bool (Python's or numpy's) and return it as a Python bool.

    >>> check_bool("progress", "yes")
    Traceback (most recent call last):
    ...
    TypeError: progress must be a bool, got 'yes'
    """
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {value!r}")
    return bool(value)


def check_positive(name: str, value: Any, *, allow_zero: bool = False) -> float:
    """Check that a scalar is a finite number > 0 (or >= 0 with ``allow_zero``) and return it as float."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {_fmt(value)}")
    if not math.isfinite(float(value)) or (value < 0 if allow_zero else value <= 0):
        expected = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name}={value!r} must be a finite number {expected}")
    return float(value)


def check_int(name: str, value: Any, *, low: int | None = None, high: int | None = None) -> int:
    """Check that `value` is an integer (not a bool) within ``[low, high]`` and return it."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {_fmt(value)}")
    if (low is not None and value < low) or (high is not None and value > high):
        lo = "-inf" if low is None else str(low)
        hi = "inf" if high is None else str(high)
        raise ValueError(f"{name}={value!r} is outside the valid range [{lo}, {hi}]")
    return int(value)


def check_shape(name: str, value: Any, expected: Sequence[int | None]) -> Any:
    """Check an array's shape; ``None`` in `expected` matches any length along that axis."""
    shape = tuple(np.shape(value))
    ok = len(shape) == len(expected) and all(
        e is None or e == s for e, s in zip(expected, shape, strict=False)
    )
    if not ok:
        exp = "(" + ", ".join("*" if e is None else str(e) for e in expected) + ")"
        raise ValueError(f"{name} has shape {shape}, expected {exp}")
    return value


def check_array(
    name: str,
    value: Any,
    *,
    ndim: int | Sequence[int] | None = None,
    finite: bool = True,
    low: float | None = None,
    high: float | None = None,
    nonempty: bool = True,
    dtype: Any = float,
) -> np.ndarray:
    """Convert `value` to an array and check its dimensionality, emptiness, finiteness and range."""
    try:
        arr = np.asarray(value, dtype=dtype)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be array-like of numbers, got {_fmt(value)}") from err
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if arr.ndim not in allowed:
            raise ValueError(
                f"{name} must have {' or '.join(map(str, allowed))} dimension(s), got shape {arr.shape}"
            )
    if nonempty and arr.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {arr.shape}")
    if finite:
        check_finite(name, arr)
    if low is not None or high is not None:
        check_range(name, arr, low, high)
    return arr
