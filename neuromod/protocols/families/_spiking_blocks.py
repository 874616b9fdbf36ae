"""A long trial table as many short closed-loop sessions of the spiking network, run side by side.

brian2 pays a fixed cost per time step for every code object of a network, whatever its size; one session of
the decision network is small, so that cost dominates. Many sessions advancing in lockstep in one network
(:func:`neuromod.spiking.simulate_session`) pay it once. A table of ``n`` trials is therefore cut into
sessions of ``session_trials`` trials, each preceded by a *warm-up*: the table's trial before its first one,
run as the session's first trial and not recorded, so that every recorded trial follows the very trial it
follows in the table (same task, cue and interval; the previous trial's context sets the modulator's state
that a switch has to undo). Session ``b`` runs table rows ``b*B, ..., (b+1)*B`` (``B = session_trials``)
and records rows ``b*B + 1, ..., (b+1)*B`` (session 0 records row 0 too); rows past the table's end pad the
last session (run, never recorded). A warm-up starts from the RCI's equilibrium instead of the state the
trial before it left; the difference at the next cue has decayed by ``exp(-(RCI + CSI + RT) / tau)`` (about
0.05 at the defaults).

The recorded pieces are stitched into one time axis in table order: every piece starts where the previous
ended (at the response of the trial before), as in one closed-loop session, so ``stim_onset_ms`` equals
``task.timeline(rt)["stim_onset_ms"]`` as for the other families.

Session ``b`` is seeded with child ``b`` of the run's seed (``SeedSequence.spawn``): the results depend on
``session_trials`` but not on how many sessions share a network (``batch_sessions``), since a batch gives
each session exactly what it gives alone.
"""

from __future__ import annotations

import itertools
import os
import queue
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from neuromod import _parallel

__all__ = ["SessionPlan", "default_workers", "group_bounds", "run_groups"]


@dataclass(frozen=True)
class SessionPlan:
    """Which table rows every session runs and which of them it records (see the module docstring)."""

    rows: np.ndarray  #: (session, position): table row run there (padding past the end repeats rows)
    record: np.ndarray  #: (session, position): the position's trial is recorded (bool)

    @classmethod
    def of(cls, n_trials: int, session_trials: int) -> SessionPlan:
        """The plan for a table of `n_trials` rows in sessions of `session_trials` recorded trials."""
        if n_trials <= session_trials + 1:  # one session: the whole table, nothing to warm up
            return cls(np.arange(n_trials)[None, :], np.ones((1, n_trials), dtype=bool))
        n_sess = -(-(n_trials - 1) // session_trials)
        pos = np.arange(session_trials + 1)
        rows = np.arange(n_sess)[:, None] * session_trials + pos[None, :]
        record = (rows < n_trials) & (pos[None, :] >= 1)
        record[0, 0] = True
        return cls(rows % n_trials, record)

    @property
    def n_sessions(self) -> int:
        """Number of sessions."""
        return self.rows.shape[0]

    def stitch(self, outs: list[xr.Dataset]) -> dict[str, np.ndarray]:
        """Per table row ``choice``, ``rt`` and ``stim_onset_ms``, and the ``modulator`` trace over (``t``,
        population), stitched in table order from the datasets of :func:`~neuromod.spiking.simulate_session`
        whose sessions are this plan's, in order."""
        per_trial = {
            v: np.concatenate([o[v].values for o in outs])
            for v in ("choice", "rt", "stim_onset_ms", "response_ms")
        }
        sizes = [o.sizes["session"] for o in outs]
        batch, within = np.repeat(np.arange(len(outs)), sizes), np.concatenate([np.arange(s) for s in sizes])
        n = int(self.record.sum())
        res = {"choice": np.zeros(n, np.int64), "rt": np.full(n, np.nan), "stim_onset_ms": np.full(n, np.nan)}
        pieces_t, pieces_m = [], []
        offset = 0.0  # where the next piece starts on the stitched axis
        for b in range(self.n_sessions):
            pos = np.flatnonzero(self.record[b])
            rows = self.rows[b, pos]
            start = 0.0 if pos[0] == 0 else float(per_trial["response_ms"][b, pos[0] - 1])
            end = float(per_trial["response_ms"][b, pos[-1]])
            shift = offset - start
            for v in ("choice", "rt"):
                res[v][rows] = per_trial[v][b, pos]
            res["stim_onset_ms"][rows] = per_trial["stim_onset_ms"][b, pos] + shift
            t = outs[batch[b]]["time"].values
            keep = (t <= end) & (t > start if pos[0] > 0 else True)
            pieces_t.append(t[keep] + shift)
            pieces_m.append(outs[batch[b]]["modulator"].values[within[b]][:, keep].T)
            offset = end + shift
        res["t"] = np.concatenate(pieces_t)
        res["modulator"] = np.concatenate(pieces_m)
        return res


def default_workers() -> int:
    """How many places the sessions' groups run at once: with a Dask client in use
    (:func:`neuromod._parallel.using`), the total threads of its cluster (at least 1); else the cores this
    process may run on (:func:`neuromod._parallel.available_cores`: 1 on a sweep's Dask workers)."""
    client = _parallel.current_client()
    if client is None:
        return _parallel.available_cores()
    return max(1, sum(client.nthreads().values()))


def group_bounds(n_sessions: int, batch_sessions: int, workers: int) -> list[tuple[int, int]]:
    """Contiguous groups of sessions, one network each: at most `batch_sessions` per network, and a multiple
    of the worker processes in number when there are enough sessions, so that no worker idles while
    another runs a last group alone (sizes differ by at most one)."""
    n_groups = -(-n_sessions // batch_sessions)
    n_groups = min(n_sessions, -(-n_groups // workers) * workers)
    edges = np.linspace(0, n_sessions, n_groups + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in itertools.pairwise(edges)]


def _simulate(kwargs: dict[str, Any]) -> xr.Dataset:
    from neuromod.spiking import simulate_session

    return simulate_session(**kwargs)


_PARAMS = {"params": "DecisionParams", "lif": "LIFParams", "modulation": "ModulationParams"}


def _write_job(job: dict[str, Any], path: str) -> None:
    """A job of :func:`_simulate` as plain data: its arrays in ``path.npz`` (no pickled objects), the rest
    (parameter dataclasses as dicts, seeds as entropy and spawn key, settings such as ``target`` and
    ``compile_flags`` as they are) in ``path.json``."""
    import dataclasses
    import json

    arrays = {k: np.asarray(v) for k, v in job.items() if isinstance(v, np.ndarray)}
    rest: dict[str, Any] = {}
    for key, value in job.items():
        if key in arrays:
            continue
        if key in _PARAMS:
            rest[key] = dataclasses.asdict(value)
        elif key == "seed":
            rest[key] = [{"entropy": s.entropy, "spawn_key": list(s.spawn_key)} for s in value]
        else:
            rest[key] = value
    np.savez(path + ".npz", **arrays)
    with open(path + ".json", "w") as f:
        json.dump(rest, f)


def _read_job(path: str) -> dict[str, Any]:
    """The job written by :func:`_write_job` (``allow_pickle=False``: data only, no code)."""
    import json

    from neuromod import spiking

    with np.load(path + ".npz", allow_pickle=False) as npz:
        job: dict[str, Any] = {k: npz[k] for k in npz.files}
    with open(path + ".json") as f:
        rest = json.load(f)
    for key, value in rest.items():
        if key in _PARAMS:
            job[key] = getattr(spiking, _PARAMS[key])(**value)
        elif key == "seed":
            job[key] = [np.random.SeedSequence(s["entropy"], spawn_key=s["spawn_key"]) for s in value]
        else:
            job[key] = value
    return job


def _run_worker(job: dict[str, Any], slot: int, echo: bool) -> xr.Dataset:
    """Run one job in a fresh interpreter (``python -m`` this module): its own brian2 compile cache (per
    slot, so the next run finds its compiled code again) and one thread for the numeric libraries. A
    subprocess rather than multiprocessing, so that a user's script needs no ``if __name__ == "__main__"``
    guard. Job and result travel as plain data through a private temporary directory: the job as ``.npz``
    and JSON (:func:`_write_job`), the result as netCDF; nothing is unpickled."""
    import subprocess
    import sys
    import tempfile

    from neuromod.spiking import worker_id

    env = {**os.environ, "NEUROMOD_WORKER": f"{worker_id()}-w{slot}", "NEUROMOD_ECHO": "1" if echo else "0"}
    env.update(
        dict.fromkeys(
            ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"), "1"
        )
    )
    with tempfile.TemporaryDirectory(prefix="neuromod-spiking-") as tmp:
        job_path, out_path = os.path.join(tmp, "job"), os.path.join(tmp, "out.nc")
        _write_job(job, job_path)
        proc = subprocess.run(
            [sys.executable, "-m", __name__, job_path, out_path],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=None if echo else subprocess.PIPE,
            text=True,
        )
        if proc.returncode != 0:
            tail = (proc.stderr or "").strip().splitlines()[-5:]
            raise RuntimeError(f"spiking worker {slot} failed (exit {proc.returncode}): " + " | ".join(tail))
        return xr.load_dataset(out_path)


def _run_dask_job(job: dict[str, Any]) -> xr.Dataset:
    """One job on a Dask worker (its progress bar stays off: the client shows one over sessions).

    brian2 must be imported already: its import installs a Ctrl+C handler, which Python allows only in a
    process's main thread, and Dask runs tasks in other threads. The workers of
    :func:`neuromod.sweep._cluster.connect` import it at start (in their main thread)."""
    import sys

    if "brian2" not in sys.modules and threading.current_thread() is not threading.main_thread():
        raise RuntimeError(
            "brian2 is not imported on this Dask worker, and its import needs the worker's main thread: "
            "use a client of neuromod.sweep._cluster.connect (its workers import brian2 at start) or "
            "import brian2 in a worker plugin"
        )
    return _simulate({**job, "progress": False})


def _run_on_client(
    client: Any, jobs: list[dict[str, Any]], *, progress: bool, sizes: list[int]
) -> list[xr.Dataset]:
    """Every job as one task of `client`'s cluster, results in the order of `jobs`. Keys of their own and
    ``pure=False``: two runs of equal jobs are two computations, never one shared result. A failing job
    cancels the others and raises its error here."""
    import uuid

    from distributed import as_completed
    from tqdm.auto import tqdm

    run = uuid.uuid4().hex
    futures = [
        client.submit(_run_dask_job, job, key=f"neuromod-spiking-{run}-{k}", pure=False)
        for k, job in enumerate(jobs)
    ]
    index = {fut.key: k for k, fut in enumerate(futures)}
    out: list[xr.Dataset | None] = [None] * len(jobs)
    try:
        with tqdm(total=sum(sizes), desc="spiking sessions", unit="session", disable=not progress) as bar:
            for fut in as_completed(futures):
                k = index[fut.key]
                out[k] = fut.result()
                bar.update(sizes[k])
    except BaseException:
        client.cancel(futures)
        raise
    return out  # type: ignore[return-value]


def run_groups(
    jobs: list[dict[str, Any]], *, workers: int, progress: bool, sizes: list[int]
) -> list[xr.Dataset]:
    """Run :func:`~neuromod.spiking.simulate_session` on every keyword set of `jobs` (one network each);
    results in the order of `jobs`, the same wherever they ran.

    Where: with a Dask client in use (:func:`neuromod._parallel.using`), one task per job on its cluster;
    else in this process or, with `workers` > 1, in that many worker processes at a time. `sizes`:
    sessions per job (for the progress bar over sessions).
    """
    client = _parallel.current_client()
    if client is not None:
        return _run_on_client(client, jobs, progress=progress, sizes=sizes)
    workers = min(workers, len(jobs))
    if workers <= 1:
        return [_simulate({**job, "progress": progress}) for job in jobs]
    from concurrent.futures import ThreadPoolExecutor, as_completed

    from tqdm.auto import tqdm

    slots: queue.SimpleQueue[int] = queue.SimpleQueue()  # one compile cache per concurrently running worker
    for k in range(workers):
        slots.put(k)

    def run(job: dict[str, Any]) -> xr.Dataset:
        slot = slots.get()
        try:
            return _run_worker(job, slot, progress)
        finally:
            slots.put(slot)

    out: list[xr.Dataset | None] = [None] * len(jobs)
    with (
        ThreadPoolExecutor(workers) as pool,
        tqdm(total=sum(sizes), desc="spiking sessions", unit="session", disable=not progress) as bar,
    ):
        futures = {pool.submit(run, job): k for k, job in enumerate(jobs)}
        for fut in as_completed(futures):
            k = futures[fut]
            out[k] = fut.result()
            bar.update(sizes[k])
    return out  # type: ignore[return-value]


def _worker_main(job_path: str, out_path: str) -> None:
    import logging
    import sys

    if os.environ.get("NEUROMOD_ECHO") == "1":  # the compile notice, on the parent's stderr
        log = logging.getLogger("neuromod.spiking")
        log.setLevel(logging.INFO)
        log.addHandler(logging.StreamHandler(sys.stderr))
    _simulate(_read_job(job_path)).to_netcdf(out_path)


if __name__ == "__main__":
    import sys

    _worker_main(*sys.argv[1:3])
