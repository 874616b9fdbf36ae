"""What runs on a sweep's workers: one point, committed to the store by the worker itself.

A worker never hands a result back through the scheduler: it writes it into the store (see
:mod:`neuromod.sweep._store`) and returns a few numbers. A result is therefore durable the moment it is
committed, whatever happens to the worker, the scheduler or the client afterwards.
"""

from __future__ import annotations

import fcntl
import os
import re
import socket
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from neuromod import _parallel, registry
from neuromod.sweep._store import DONE, FAILED, PENDING, RUNNING, SweepStore

__all__ = ["configure_worker", "mark_killed", "run_point"]

_SLOT_LOCK: Any = None  # the open lock file of this process's slot (held until the process ends)
_PRESET: str | None = None  # $NEUROMOD_WORKER as the process found it (None: not configured yet)


def _worker_name() -> str:
    try:
        from distributed import get_worker

        return str(get_worker().name)
    except Exception:
        return f"{socket.gethostname()}:{os.getpid()}"


def run_point(
    store_path: str, run_id: str, index: int, experiment: str, config: dict[str, Any], tries: int, before: int
) -> dict[str, Any]:
    """Run point `index` and commit it; returns ``{"index", "outcome", "attempts", "wall_s", "worker"}``.

    `before`: the point's attempts when the run began; a failure with fewer than `tries` attempts in this
    run is raised again (the caller retries), the last one is recorded as failed, with its traceback.
    Outcomes: ``done``, ``failed``, ``superseded`` (a newer run owns the store: nothing written).
    """
    store = SweepStore(store_path)
    worker = _worker_name()
    record = {
        "index": index,
        "outcome": "superseded",
        "attempts": 0,
        "wall_s": float("nan"),
        "worker": worker,
    }
    if store.run_id() != run_id:
        return record
    if int(store.array("status")[index]) == DONE:  # committed already (Dask reran a task whose worker died)
        record["outcome"] = "done"
        return record
    attempts = int(store.array("attempts")[index]) + 1
    store.write(index, attempts=attempts, worker=worker, status=RUNNING)
    record["attempts"] = attempts
    start = time.perf_counter()
    try:
        exp = registry.get(experiment)
        result = exp.run(exp.config_cls.from_dict(config), progress=False)
    except Exception:
        wall = time.perf_counter() - start
        last = attempts - before >= tries
        if store.run_id() == run_id:
            store.write(index, error=traceback.format_exc(), wall_s=wall, status=FAILED if last else PENDING)
        if not last:
            raise
        record.update(outcome="failed", wall_s=wall)
        return record
    wall = time.perf_counter() - start
    if store.commit(index, run_id, result, wall_s=wall, worker=worker):
        record.update(outcome="done", wall_s=wall)
    return record


def _claim_slot(directory: Path) -> int:
    """The lowest free slot number on this host, locked for the life of this process (``flock``: the lock
    goes with the process, so a restarted worker finds its slot, and its compile cache, free again)."""
    global _SLOT_LOCK
    directory.mkdir(parents=True, exist_ok=True)
    slot = 0
    while True:
        fh = open(directory / f"slot-{slot}.lock", "a")  # held open on purpose: the lock lives with it
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.close()
            slot += 1
            continue
        _SLOT_LOCK = fh
        return slot


def _import_brian2() -> None:
    """Import brian2 now, in the worker's main thread (where its plugin is set up): brian2's import installs
    a Ctrl+C handler, which Python allows only in the main thread, and Dask runs tasks in other threads."""
    import importlib.util
    import warnings

    if "brian2" in sys.modules or importlib.util.find_spec("brian2") is None:
        return
    try:
        import brian2  # noqa: F401
    except Exception as err:  # a broken brian2 breaks spiking points only, with their own traceback
        warnings.warn(f"brian2 could not be imported on this worker: {err}", RuntimeWarning, stacklevel=2)


def configure_worker(slots_dir: str | None = None) -> str:
    """Make this process a one-core sweep worker: single-threaded libraries, families that fan out no
    further, and a brian2 compile-cache slot of its own: ``$NEUROMOD_WORKER = <host>-slot<k>``, the lowest
    slot free on this host (a restarted worker finds its slot, and the code compiled there, again). A
    ``$NEUROMOD_WORKER`` already in the worker's environment is kept (workers that share it share one
    cache; brian2 locks it). Returns the name. Idempotent."""
    global _PRESET
    os.environ.update(_parallel.SINGLE_THREAD_ENV)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)
    _import_brian2()
    if _PRESET is None:
        _PRESET = os.environ.get("NEUROMOD_WORKER", "")
    if not _PRESET and _SLOT_LOCK is None:
        if slots_dir is None:
            xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
            slots_dir = os.path.join(xdg, "neuromod", "slots")
        host = re.sub(r"[^A-Za-z0-9_.-]", "_", socket.gethostname())
        slot = _claim_slot(Path(slots_dir) / host)
        os.environ["NEUROMOD_WORKER"] = f"{host}-slot{slot}"
    return os.environ["NEUROMOD_WORKER"]


def mark_killed(store: SweepStore, index: int, run_id: str, message: str) -> None:
    """Record a point whose worker died every time it ran it (written by the client: no worker is left)."""
    if store.run_id() == run_id and int(store.array("status")[index]) != DONE:
        store.write(index, error=message, status=FAILED)
