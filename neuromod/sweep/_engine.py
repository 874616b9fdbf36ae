"""The sweep engine: run a :class:`~neuromod.sweep.SweepSpec` into its store, resuming what is not done."""

from __future__ import annotations

import dataclasses
import os
import uuid
from pathlib import Path
from typing import Any

from neuromod.sweep._cluster import check_scheduler, connect
from neuromod.sweep._store import DONE, STATUS, SweepStore
from neuromod.sweep._worker import mark_killed, run_point
from neuromod.sweep.spec import SweepSpec

__all__ = ["Sweep", "SweepReport"]


@dataclasses.dataclass(frozen=True)
class SweepReport:
    """What a run of a sweep did and where the sweep stands.

    Attributes
    ----------
    path : pathlib.Path
        The store.
    submitted : tuple of int
        The points this run ran (those not done when it began).
    counts : dict
        Points by status at the end (``pending``, ``running``, ``done``, ``failed``).
    """

    path: Path
    submitted: tuple[int, ...]
    counts: dict[str, int]

    @property
    def complete(self) -> bool:
        """Whether every point is done."""
        return self.counts["done"] == sum(self.counts.values())

    def __str__(self) -> str:
        state = "complete" if self.complete else "INCOMPLETE"
        counts = ", ".join(f"{v} {k}" for k, v in self.counts.items() if v)
        return f"sweep {state}: {counts} ({len(self.submitted)} run now); store: {self.path}"


class Sweep:
    """A sweep of an experiment over axes and seeds (see ``neuromod.sweep.spec`` for the file format).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from neuromod.sweep import Sweep
    >>> sweep = Sweep.from_dict({"experiment": "sweep-probe", "axes": {"value": [1.0, 2.0]}, "seeds": 2})
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "probe.zarr"
    >>> report = sweep.run(out, scheduler="serial", progress=False)
    >>> report.complete, report.counts["done"]
    (True, 4)
    >>> sweep.run(out, scheduler="serial", progress=False).submitted  # a rerun: nothing left to do
    ()
    """

    def __init__(self, spec: SweepSpec) -> None:
        self.spec = spec

    @classmethod
    def from_toml(cls, path: str | os.PathLike[str], **overrides: Any) -> Sweep:
        """A sweep from its file (checked, every point's config included)."""
        return cls(SweepSpec.from_toml(path, **overrides))

    @classmethod
    def from_dict(cls, data: dict[str, Any], **kwargs: Any) -> Sweep:
        """A sweep from a parsed table (see :meth:`SweepSpec.from_dict`)."""
        return cls(SweepSpec.from_dict(data, **kwargs))

    def run(
        self,
        out: str | os.PathLike[str],
        *,
        client: Any = None,
        scheduler: str | None = None,
        restart: bool = False,
        progress: bool = True,
        retries: int = 1,
        n_workers: int | None = None,
        worker_deaths: int | None = None,
    ) -> SweepReport:
        """Run every point that is not done yet, on `client` or on the cluster `scheduler` names.

        Parameters
        ----------
        out : path
            The store (``*.zarr``; its folder is created if needed). A new one is created; an existing one
            must hold this very sweep (same digest) and is resumed: only points not done run.
        client : distributed.Client, optional
            A client to run on (then `scheduler` must be None); its workers are configured as sweep
            workers (``neuromod.sweep._worker.configure_worker``).
        scheduler : str, optional
            See ``neuromod.sweep._cluster.connect``: None/"local", "serial", an address, a scheduler
            file, "slurm".
        restart : bool
            Discard an existing store of this or another spec and start afresh.
        retries : int
            Extra attempts of a point that raises, before it is recorded as failed.
        n_workers, worker_deaths
            Of a cluster started here (see ``neuromod.sweep._cluster.connect``).

        Returns
        -------
        SweepReport

        Raises
        ------
        SweepStoreError
            If `out` holds another sweep (changed spec) and `restart` is False; nothing is run.
        """
        if client is not None and scheduler is not None:
            raise ValueError("pass client or scheduler, not both")
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ValueError(f"retries={retries!r}: expected an integer >= 0")
        check_scheduler(scheduler)
        points = self.spec.points()
        store = SweepStore.prepare(out, self.spec, restart=restart)
        run_id = store.begin_run()
        status = store.status()
        todo = [p for p in points if status[p.index] != DONE]
        before = store.array("attempts")[:]
        tasks = [
            (
                str(store.path),
                run_id,
                p.index,
                self.spec.experiment,
                p.config.to_dict(),
                retries + 1,
                int(before[p.index]),
            )
            for p in todo
        ]
        from tqdm.auto import tqdm

        with tqdm(
            total=len(points),
            initial=len(points) - len(todo),
            desc="sweep points",
            unit="point",
            disable=not progress,
        ) as bar:
            if client is None and scheduler == "serial":
                for task in tasks:
                    _run_serial(task, retries)
                    bar.update(1)
            elif client is not None:
                from neuromod.sweep._plugin import SweepWorkerPlugin

                client.register_plugin(SweepWorkerPlugin())  # one-core workers, compile-cache slots
                _run_dask(client, store, run_id, tasks, retries, bar)
            else:
                with connect(scheduler, n_workers=n_workers, worker_deaths=worker_deaths) as own:
                    _run_dask(own, store, run_id, tasks, retries, bar)
        store.finish()
        final = store.status()
        counts = {name: int((final == code).sum()) for name, code in STATUS.items()}
        return SweepReport(store.path, tuple(p.index for p in todo), counts)


def _run_serial(task: tuple[Any, ...], retries: int) -> dict[str, Any]:
    for _ in range(retries):
        try:
            return run_point(*task)
        except Exception:
            continue
    return run_point(*task)  # the last attempt records a failure instead of raising


def _run_dask(
    client: Any, store: SweepStore, run_id: str, tasks: list[tuple[Any, ...]], retries: int, bar: Any
) -> None:
    from distributed import as_completed

    def submit(task: tuple[Any, ...], priority: int) -> Any:
        key = f"neuromod-point-{task[2]}-{run_id}-{uuid.uuid4().hex[:8]}"
        return client.submit(run_point, *task, key=key, retries=retries, pure=False, priority=priority)

    futures = {submit(task, -k): task for k, task in enumerate(tasks)}
    queue = as_completed(futures)
    for future in queue:
        task = futures.pop(future)
        index, before = task[2], task[-1]
        try:
            future.result()
        except Exception as err:  # the worker died every time (KilledWorker), or the last raise escaped
            if int(store.array("attempts")[index]) == before:  # it never started: deaths of others
                again = submit(task, 0)
                futures[again] = task
                queue.add(again)
                continue
            mark_killed(store, index, run_id, f"{type(err).__name__}: {err}")
        # the point is in the store: let Dask forget the task, so that a worker dying later with its result
        # in memory does not make Dask compute it again
        future.release()
        bar.update(1)
