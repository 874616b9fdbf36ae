"""Where a sweep runs: in this process, on a local Dask cluster, on a running scheduler, or on SLURM.

``scheduler`` (``--scheduler`` on the command line):

* ``None`` or ``"local"``: a :class:`distributed.LocalCluster` of processes, one thread each, as many as this
  process has cores (``n_workers`` to choose);
* ``"serial"``: no Dask at all; the points run one after the other in this process (the reference);
* ``"tcp://host:port"`` (any Dask address) or the path of a scheduler file (``*.json``): that cluster;
* ``"slurm"``: a :class:`dask_jobqueue.SLURMCluster` configured by Dask's configuration (``jobqueue.slurm``:
  queue, account, cores, memory, walltime, ... in ``~/.config/dask/jobqueue.yaml`` or ``DASK_JOBQUEUE__*``
  variables; extra ``slurm``), scaled adaptively up to ``n_workers`` jobs. Each worker retires before its
  job's walltime (``--lifetime``, staggered so that workers do not all leave at once); a point it was
  running when it left is run again elsewhere, and its attempt is counted in the store.

Every worker is made a one-core worker (:func:`neuromod.sweep._worker.configure_worker`: single-threaded
BLAS, numba and torch, and its own brian2 compile-cache slot that a restarted worker finds again).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from neuromod import _parallel

__all__ = ["connect", "slurm_lifetime", "slurm_options"]

#: Seconds a SLURM worker stops before its walltime, at least (and the spread of the stagger, at most).
_SLURM_MARGIN_S = 300.0


def _seconds(walltime: str) -> float:
    """SLURM's ``[days-]hours:minutes:seconds`` (or ``minutes``, ``minutes:seconds``) in seconds."""
    match = re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?", walltime.strip())
    if not match:
        raise ValueError(f"walltime={walltime!r}: expected [days-]hours:minutes:seconds, e.g. '04:00:00'")
    days, a, b, c = match.groups()
    if b is None:  # minutes
        secs = int(a) * 60
    elif c is None:  # minutes:seconds
        secs = int(a) * 60 + int(b)
    else:
        secs = int(a) * 3600 + int(b) * 60 + int(c)
    return secs + int(days or 0) * 86400


def slurm_lifetime(walltime: str) -> tuple[float, float]:
    """(lifetime, stagger) in seconds of a worker in a job of `walltime`: it retires at ``lifetime`` plus or
    minus ``stagger``, always at least ``min(300 s, walltime / 10)`` before the walltime.

    >>> slurm_lifetime("01:00:00")
    (3240.0, 60.0)
    """
    total = _seconds(walltime)
    margin = min(_SLURM_MARGIN_S, total / 10)
    stagger = margin / 5
    return total - margin - stagger, stagger


def slurm_options(config: dict[str, Any] | None = None) -> dict[str, Any]:
    """Keyword arguments of :class:`dask_jobqueue.SLURMCluster` for sweep workers, from Dask's
    ``jobqueue.slurm`` configuration (or `config`): one thread per worker, single-threaded libraries,
    and the lifetime of :func:`slurm_lifetime`."""
    import dask

    conf = dict(dask.config.get("jobqueue.slurm", {}) if config is None else config)
    walltime = conf.get("walltime") or "01:00:00"
    lifetime, stagger = slurm_lifetime(walltime)
    cores = int(conf.get("cores") or 1)
    extra = list(conf.get("worker-extra-args") or conf.get("worker_extra_args") or [])
    extra += ["--lifetime", f"{lifetime:.0f}s", "--lifetime-stagger", f"{stagger:.0f}s"]
    prologue = list(conf.get("job-script-prologue") or conf.get("job_script_prologue") or [])
    prologue += [f"export {k}={v}" for k, v in _parallel.SINGLE_THREAD_ENV.items()]
    return {
        "walltime": walltime,
        "cores": cores,
        "processes": cores,  # one single-threaded worker per core
        "memory": conf.get("memory") or f"{2 * cores} GiB",
        "worker_extra_args": extra,
        "job_script_prologue": prologue,
    }


def _address(scheduler: str) -> dict[str, Any]:
    if "://" in scheduler:
        return {"address": scheduler}
    if scheduler.endswith(".json"):
        if not Path(scheduler).is_file():
            raise FileNotFoundError(f"--scheduler {scheduler!r}: no such scheduler file")
        return {"scheduler_file": scheduler}
    raise ValueError(
        f"--scheduler {scheduler!r}: expected 'local', 'serial', 'slurm', a Dask address (tcp://host:port) "
        "or a scheduler file (.json)"
    )


def check_scheduler(scheduler: str | None) -> None:
    """Refuse a bad `scheduler` before any work (see the module docstring for the valid ones)."""
    if scheduler in (None, "local", "serial", "slurm"):
        return
    _address(scheduler)


@contextlib.contextmanager
def connect(
    scheduler: str | None = None, *, n_workers: int | None = None, worker_deaths: int | None = None
) -> Iterator[Any]:
    """A Dask client for `scheduler` (None for ``"serial"``), closed on exit with any cluster it started.

    `n_workers`: workers of a local cluster (default: every core) or most jobs on SLURM. `worker_deaths`:
    how often a point may kill its worker before it counts as failed (Dask's ``allowed-failures``; only for
    clusters started here; Dask's default otherwise).
    """
    check_scheduler(scheduler)
    if scheduler == "serial":
        yield None
        return
    import dask
    from distributed import Client

    # one task per worker thread at a time: a task queued behind a point that kills its worker would
    # otherwise count that death against itself (Dask's default saturation is 1.1)
    settings: dict[str, Any] = {"distributed.scheduler.worker-saturation": 1.0}
    if worker_deaths is not None:
        settings["distributed.scheduler.allowed-failures"] = worker_deaths
    with contextlib.ExitStack() as stack:
        stack.enter_context(dask.config.set(settings))
        if scheduler in (None, "local"):
            from distributed import LocalCluster

            cluster = stack.enter_context(
                LocalCluster(
                    n_workers=n_workers or _parallel.available_cores(),
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=":0",  # a free port: several clusters side by side, no warning
                    env=dict(_parallel.SINGLE_THREAD_ENV),
                )
            )
            client = stack.enter_context(Client(cluster))
        elif scheduler == "slurm":
            try:
                from dask_jobqueue import SLURMCluster
            except ImportError:
                raise ImportError(
                    "--scheduler slurm needs dask-jobqueue: pip install 'neuromod[slurm]'"
                ) from None
            cluster = stack.enter_context(SLURMCluster(**slurm_options()))
            cluster.adapt(minimum_jobs=1, maximum_jobs=n_workers or 1)
            client = stack.enter_context(Client(cluster))
        else:
            client = stack.enter_context(Client(**_address(scheduler)))
        from neuromod.sweep._plugin import SweepWorkerPlugin

        client.register_plugin(SweepWorkerPlugin())
        yield client
