"""Memory of a run, estimated from its config before any work, and the check that refuses what cannot fit.

An experiment's estimate (:class:`MemoryEstimate`) adds up, in bytes, what its run holds at its peak: the
interpreter and the libraries it loads, its arrays (trial table, per-trial results, recorded traces) and the
largest working memory of one of its steps, worker processes included. :func:`check_memory` compares it with
:func:`memory_limit`: ``NEUROMOD_MEMORY_LIMIT`` when set (``"8GiB"``, ``"500MB"``, or bytes), else
:data:`SAFETY_FRACTION` of the memory available to this process (``MemAvailable`` of ``/proc/meminfo``, or
a cgroup's ``memory.max`` when lower, plus what this process already holds; ``os.sysconf`` elsewhere), and
refuses a run over it with :class:`MemoryLimitError`: one line with the estimate, the limit and what to
change.

This is a base module (the experiments of every layer use it); :mod:`neuromod.protocols.memory` is its
public face, with the estimates of the built-in experiments.

Examples
--------
>>> parse_size("8GiB"), parse_size("1.5 MB"), parse_size("4096")
(8589934592, 1500000, 4096)
>>> est = MemoryEstimate((("results", 3 * 2**30), ("libraries", 2**28)), advice="run fewer trials")
>>> str(est)
'3.2 GiB (results 3.0 GiB, libraries 256 MiB)'
>>> check_memory(est, limit=2**30)  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
neuromod._memory.MemoryLimitError: this run needs about 3.2 GiB of memory (results: 3.0 GiB), more than ...
"""

from __future__ import annotations

import dataclasses
import math
import os
import re

__all__ = [
    "ENV_VAR",
    "SAFETY_FRACTION",
    "Footprint",
    "MemoryEstimate",
    "MemoryLimitError",
    "available_memory",
    "check_memory",
    "format_size",
    "memory_limit",
    "parse_size",
]

#: The environment variable that sets the limit (a size: ``"8GiB"``, ``"500MB"``, bytes).
ENV_VAR = "NEUROMOD_MEMORY_LIMIT"
#: Fraction of the available memory a run may plan to use when ``NEUROMOD_MEMORY_LIMIT`` is not set: the
#: estimates aim at the peak, within a factor 2 (tests/protocols/test_memory.py), and the rest of the machine
#: keeps some room.
SAFETY_FRACTION = 0.8

_UNITS = {
    "": 1,
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
    "k": 2**10,
    "m": 2**20,
    "g": 2**30,
    "t": 2**40,
}
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*")


class MemoryLimitError(MemoryError):
    """A run refused before any work: its estimated memory exceeds the limit (one line: the estimate, the
    limit and what to change)."""


@dataclasses.dataclass(frozen=True)
class MemoryEstimate:
    """The estimated peak memory of a run, in parts that add up.

    Attributes
    ----------
    parts : tuple of (str, int)
        What holds memory at the run's peak and how much (bytes), e.g. ``("trial table", 8_000_000)``.
    advice : str
        What to change for a run that needs less (settings that exist for the experiment), one clause.
    """

    parts: tuple[tuple[str, int], ...]
    advice: str = ""

    def __post_init__(self) -> None:
        parts = tuple((str(name), int(max(0, math.ceil(size)))) for name, size in self.parts)
        object.__setattr__(self, "parts", parts)

    @property
    def total(self) -> int:
        """The estimate (bytes)."""
        return sum(size for _, size in self.parts)

    @property
    def breakdown(self) -> dict[str, int]:
        """The parts as a mapping name -> bytes (parts of the same name added)."""
        out: dict[str, int] = {}
        for name, size in self.parts:
            out[name] = out.get(name, 0) + size
        return out

    def largest(self) -> tuple[str, int]:
        """The largest part (name, bytes)."""
        return max(self.breakdown.items(), key=lambda kv: kv[1], default=("nothing", 0))

    def __int__(self) -> int:
        return self.total

    def __str__(self) -> str:
        items = sorted(self.breakdown.items(), key=lambda kv: -kv[1])
        return f"{format_size(self.total)} (" + ", ".join(f"{k} {format_size(v)}" for k, v in items) + ")"


@dataclasses.dataclass(frozen=True)
class Footprint:
    """Memory of one step of a run (bytes), e.g. one operation of a model family.

    Attributes
    ----------
    kept : int
        What stays after the step: its result, or the libraries and the model it loaded.
    working : int
        What the step holds besides at its peak (buffers, copies, worker processes), freed after it.
    """

    kept: int = 0
    working: int = 0

    def __post_init__(self) -> None:
        for name in ("kept", "working"):
            object.__setattr__(self, name, int(max(0, math.ceil(getattr(self, name)))))

    def __add__(self, other: Footprint) -> Footprint:
        """Two steps one after the other: both kept, the larger working memory."""
        return Footprint(self.kept + other.kept, max(self.working, other.working))


def format_size(n_bytes: float) -> str:
    """A size in bytes as a short text in binary units (``'3.2 GiB'``, ``'256 MiB'``)."""
    size = float(n_bytes)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            break
        size /= 1024
    if unit == "B":
        return f"{int(size)} B"
    return f"{size:.1f} {unit}" if size < 100 else f"{size:.0f} {unit}"


def parse_size(text: str, *, name: str = ENV_VAR) -> int:
    """A memory size in bytes from text: bytes (an integer) or a number with a unit.

    Units: ``B``; ``KB``, ``MB``, ``GB``, ``TB`` (powers of 1000); ``KiB``, ``MiB``, ``GiB``, ``TiB`` and
    ``K``, ``M``, ``G``, ``T`` (powers of 1024); any case, space allowed before the unit.

    Raises
    ------
    ValueError
        Text that is not such a size, or a size of 0 (naming `name`, the text and the expected form).
    """
    if not isinstance(text, str):
        raise TypeError(f"{name} must be a str, got {type(text).__name__}")
    match = _SIZE.fullmatch(text)
    unit = match.group(2).lower() if match else ""
    if match is None or unit not in _UNITS:
        raise ValueError(
            f"{name}={text!r} is not a memory size; expected bytes (an integer) or a number with a unit: B, "
            "KB, MB, GB, TB (powers of 1000), KiB, MiB, GiB, TiB or K, M, G, T (powers of 1024), e.g. '8GiB'"
        )
    number = match.group(1)
    if unit in ("", "b") and "." in number:
        raise ValueError(f"{name}={text!r} is a fraction of a byte; expected a whole number of bytes")
    size = int(float(number) * _UNITS[unit]) if "." in number else int(number) * _UNITS[unit]
    if size <= 0:
        raise ValueError(f"{name}={text!r} must be a size above 0 bytes")
    return size


def _meminfo(key: str) -> int | None:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _cgroup_room() -> int | None:
    """What this process's cgroup (v2) still allows: ``memory.max - memory.current``; None without a limit."""
    try:
        with open("/proc/self/cgroup") as fh:
            path = next((line.split(":", 2)[2].strip() for line in fh if line.startswith("0::")), None)
        if path is None:
            return None
        base = os.path.join("/sys/fs/cgroup", path.lstrip("/"))
        with open(os.path.join(base, "memory.max")) as fh:
            limit = fh.read().strip()
        if limit == "max":
            return None
        with open(os.path.join(base, "memory.current")) as fh:
            current = int(fh.read().strip())
        return max(0, int(limit) - current)
    except (OSError, ValueError, IndexError):
        return None


def _own_rss() -> int:
    """Resident memory of this process (bytes; 0 where it cannot be read)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def available_memory() -> int | None:
    """Memory this process may still take (bytes): ``MemAvailable`` (or, where a cgroup limits the process
    to less, what the cgroup still allows); ``os.sysconf`` available (else total) physical pages where
    ``/proc`` is missing; None when nothing tells."""
    room = _meminfo("MemAvailable")
    if room is None:
        for key in ("SC_AVPHYS_PAGES", "SC_PHYS_PAGES"):
            try:
                room = os.sysconf(key) * os.sysconf("SC_PAGE_SIZE")
                break
            except (ValueError, OSError, AttributeError):
                continue
    cgroup = _cgroup_room()
    if cgroup is not None:
        room = cgroup if room is None else min(room, cgroup)
    return room


def memory_limit() -> tuple[int | None, str]:
    """The most memory a run may plan to use (bytes, None: no limit known) and where that number comes from.

    ``NEUROMOD_MEMORY_LIMIT`` when set (:func:`parse_size`); else :data:`SAFETY_FRACTION` of the memory
    available to this process (:func:`available_memory`, plus what the process already holds, since the
    estimates count the whole process).

    Raises
    ------
    ValueError
        ``NEUROMOD_MEMORY_LIMIT`` set to something that is not a size.
    """
    text = os.environ.get(ENV_VAR)
    if text is not None:
        return parse_size(text), f"set by {ENV_VAR}"
    room = available_memory()
    if room is None:
        return None, "no limit known"
    total = room + _own_rss()
    percent = round(100 * SAFETY_FRACTION)
    source = f"{percent} % of the {format_size(total)} available; {ENV_VAR} sets it"
    return int(SAFETY_FRACTION * total), source


def check_memory(estimate: MemoryEstimate | None, *, limit: int | None = None) -> MemoryEstimate | None:
    """Refuse a run whose estimated memory exceeds the limit, before any work.

    Parameters
    ----------
    estimate : MemoryEstimate or None
        The run's estimate (None: nothing known, nothing checked).
    limit : int, optional
        The limit in bytes; default :func:`memory_limit`.

    Returns
    -------
    MemoryEstimate or None
        `estimate`, when it fits.

    Raises
    ------
    MemoryLimitError
        One line: the estimate and its largest part, the limit and where it comes from, and the estimate's
        advice.
    ValueError
        ``NEUROMOD_MEMORY_LIMIT`` is not a size.
    """
    if estimate is None:
        return None
    source = "given"
    if limit is None:
        limit, source = memory_limit()
        if limit is None:
            return estimate
    if estimate.total <= limit:
        return estimate
    name, size = estimate.largest()
    advice = f": {estimate.advice}" if estimate.advice else ""
    raise MemoryLimitError(
        f"this run needs about {format_size(estimate.total)} of memory ({name}: {format_size(size)}), more "
        f"than the limit of {format_size(limit)} ({source}){advice}"
    )
