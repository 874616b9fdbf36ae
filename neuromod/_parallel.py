"""Where the independent pieces of a run execute: this process, local worker processes, or a Dask cluster.

Two things decide it, and neither changes a result (a run's data never depend on where its pieces ran):

* :func:`available_cores`: the cores this process may use. ``$NEUROMOD_CORES`` overrides what the operating
  system grants; the sweep engine sets it to 1 on its Dask workers, so a model family that would otherwise
  fan out over every core of the machine stays within the one core its worker was given.
* :func:`using`: a Dask :class:`~distributed.Client` for the duration of a block. A family whose work splits
  into independent jobs (the spiking family's sessions) submits them to that client instead of starting
  local worker processes (``neuromod run task-switching --scheduler ADDRESS``).

Examples
--------
>>> from neuromod import _parallel
>>> _parallel.current_client() is None
True
>>> with _parallel.using("a client"):
...     _parallel.current_client()
'a client'
"""

from __future__ import annotations

import contextlib
import contextvars
import os
from collections.abc import Iterator
from typing import Any

__all__ = ["SINGLE_THREAD_ENV", "available_cores", "current_client", "using"]

#: Environment of a worker that runs one task at a time on one core: no library starts thread pools of its
#: own (BLAS, OpenMP, numba, torch's intra-op threads), and families fan out no further.
SINGLE_THREAD_ENV: dict[str, str] = {
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "NUMBA_NUM_THREADS": "1",
    "NEUROMOD_CORES": "1",
}

_CLIENT: contextvars.ContextVar[Any] = contextvars.ContextVar("neuromod_client", default=None)


def available_cores() -> int:
    """The cores this process may run on: ``$NEUROMOD_CORES`` if set, else what the OS grants it.

    Raises
    ------
    ValueError
        If ``$NEUROMOD_CORES`` is set to something other than a positive integer.
    """
    text = os.environ.get("NEUROMOD_CORES", "").strip()
    if text:
        if not text.isdigit() or int(text) < 1:
            raise ValueError(f"NEUROMOD_CORES={text!r}: expected a positive integer")
        return int(text)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover (not Linux)
        return os.cpu_count() or 1


def current_client() -> Any:
    """The Dask client set by :func:`using` around the running code, or None (run locally)."""
    return _CLIENT.get()


@contextlib.contextmanager
def using(client: Any) -> Iterator[Any]:
    """Make `client` the place where families submit their independent jobs, for the block."""
    token = _CLIENT.set(client)
    try:
        yield client
    finally:
        _CLIENT.reset(token)
