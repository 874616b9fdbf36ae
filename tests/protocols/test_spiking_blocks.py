"""The spiking family's table as many short sessions side by side (protocols.families._spiking_blocks): the
plan covers the table once with every trial after its own predecessor, batching does not change results,
and the stitched time axis is the task's own timeline."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import xarray as xr

from neuromod.protocols import create_family
from neuromod.protocols.families._spiking_blocks import SessionPlan, group_bounds
from neuromod.protocols.families.spiking import SpikingConfig
from neuromod.spiking import DecisionParams
from neuromod.tasks import CuedTaskSwitching


@pytest.mark.parametrize(("n", "per"), [(1, 5), (6, 5), (7, 5), (23, 5), (101, 100), (102, 100), (250, 7)])
def test_plan_records_every_row_once_after_its_predecessor(n: int, per: int) -> None:
    plan = SessionPlan.of(n, per)
    recorded = plan.rows[plan.record]
    np.testing.assert_array_equal(np.sort(recorded), np.arange(n))
    assert plan.record.sum(axis=1).max() <= per + 1
    for b, pos in zip(*np.nonzero(plan.record), strict=True):
        row = plan.rows[b, pos]
        if row == 0:
            assert (b, pos) == (0, 0)
        else:  # run right after the table's previous trial, in the same session
            assert pos >= 1 and plan.rows[b, pos - 1] == row - 1
    assert plan.n_sessions == (1 if n <= per + 1 else -(-(n - 1) // per))


RELEASE = np.array([[1.0, 1.0, 0.2, 0.2], [0.2, 0.2, 1.0, 1.0]])


def _run(task: CuedTaskSwitching, **settings) -> xr.Dataset:
    """The family's run_trials with `settings`, on a small network (the point is the bookkeeping, not the
    circuit; the parameters are built here and handed to worker processes with the rest)."""
    family = create_family("spiking", SpikingConfig(**{"dt_ms": 0.2, "session_trials": 3, **settings}))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(SpikingConfig, "params", lambda self: DecisionParams(n_total=100, n_sensory=10))
        return family.run_trials(
            task, release=RELEASE, tau_ms=100.0, decimate_ms=1.0, seed=np.random.SeedSequence(8)
        )


@pytest.fixture(scope="module")
def blocked() -> tuple[xr.Dataset, xr.Dataset, CuedTaskSwitching]:
    task = CuedTaskSwitching(
        n_trials=11, coherences_pct=(51.2,), csi_ms=(0.0, 50.0), rci_ms=60.0, max_rt_ms=300.0, seed=3
    )
    return _run(task, batch_sessions=8), _run(task, batch_sessions=2), task


def test_worker_processes_give_the_same_results(blocked) -> None:
    """Two spawned worker processes (each with its own compile cache) run the 4 sessions as 2 networks:
    the same dataset as one network in this process."""
    wide, _, task = blocked
    xr.testing.assert_identical(_run(task, batch_sessions=8, workers=2), wide)


def test_batching_does_not_change_results(blocked) -> None:
    """4 sessions in one network or in batches of 2 (different positions, networks and run lengths): the
    same dataset, bit for bit."""
    wide, narrow, _ = blocked
    assert wide.attrs["n_sessions"] == 4 and wide.attrs["session_trials"] == 3
    xr.testing.assert_identical(wide, narrow)


def test_stitched_axis_is_the_task_timeline(blocked) -> None:
    wide, _, task = blocked
    times = task.timeline(wide["rt"].values)
    np.testing.assert_array_equal(wide["stim_onset_ms"].values, times["stim_onset_ms"].values)
    t = wide["time"].values
    assert np.all(np.diff(t) == 1.0) and t[0] == 0.0 and t[-1] == times["response_ms"].values[-1]
    assert np.all(np.isfinite(wide["modulator"].values))
    # each trial's cue is on from its cue onset to its response: the modulator relaxes towards that
    # context's release level, so it moves towards it during every cue
    rel = wide["modulator"].sel(population="a+")
    for k in range(task.n_trials):
        cue, end = times["cue_onset_ms"].values[k], times["response_ms"].values[k]
        target = 1.0 if task.trials()["context"].values[k] == 0 else 0.2
        first, last = float(rel.sel(time=cue + 1.0)), float(rel.sel(time=end))
        assert abs(last - target) <= abs(first - target) + 1e-12


def test_refuses_bad_block_settings() -> None:
    from neuromod.config import ConfigError

    with pytest.raises(ConfigError, match="session_trials"):
        SpikingConfig(session_trials=0)
    with pytest.raises(ConfigError, match="batch_sessions"):
        SpikingConfig(batch_sessions=0)


@pytest.mark.parametrize(
    ("n", "batch", "workers"), [(1, 64, 2), (5, 2, 2), (40, 64, 2), (80, 32, 2), (3, 64, 4), (100, 7, 3)]
)
def test_group_bounds_cover_the_sessions_evenly(n: int, batch: int, workers: int) -> None:
    """Contiguous groups covering every session once, at most `batch` each, sizes within one of each
    other, and a multiple of the workers in number where there are enough sessions."""
    bounds = group_bounds(n, batch, workers)
    assert bounds[0][0] == 0 and bounds[-1][1] == n
    assert all(a < b for a, b in bounds) and all(b == c for (_, b), (c, _) in itertools.pairwise(bounds))
    sizes = [b - a for a, b in bounds]
    assert max(sizes) <= batch and max(sizes) - min(sizes) <= 1
    assert len(bounds) == n or len(bounds) % workers == 0


def test_dask_cluster_gives_the_same_results(blocked, monkeypatch) -> None:
    """With a Dask client in use, the groups run as tasks on its 2 workers (grouped for its 2 threads),
    none in this process: the same dataset as one network here. The workers share this process's warm
    compile cache (the reference, from the fixture, ran first), so nothing compiles again."""
    pytest.importorskip("distributed")
    from distributed import get_task_stream

    from neuromod import _parallel
    from neuromod.protocols.families import _spiking_blocks
    from neuromod.spiking._codegen import worker_id
    from neuromod.sweep._cluster import connect

    wide, _, task = blocked
    monkeypatch.setenv("NEUROMOD_WORKER", worker_id())  # inherited by the workers, kept by their plugin

    def here(job):
        raise AssertionError("a group ran in the client's process")

    monkeypatch.setattr(_spiking_blocks, "_simulate", here)  # the workers import their own, unpatched
    with connect("local", n_workers=2) as client, _parallel.using(client), get_task_stream(client) as stream:
        assert _spiking_blocks.default_workers() == 2
        got = _run(task, batch_sessions=8)
    keys = [task["key"] for task in stream.data]
    assert len(keys) == 2 and all(k.startswith("neuromod-spiking-") for k in keys)  # 4 sessions, 2 groups
    xr.testing.assert_identical(got, wide)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--scheduler", "bogus"],
            "neuromod: error: --scheduler 'bogus': expected 'local', 'serial', 'slurm', a Dask address "
            "(tcp://host:port) or a scheduler file (.json)",
        ),
        (
            ["--scheduler", "missing.json"],
            "neuromod: error: --scheduler 'missing.json': no such scheduler file",
        ),
        (["--workers", "2"], "neuromod: error: --workers 2: expected only with --scheduler local or slurm"),
    ],
)
def test_run_refuses_a_bad_scheduler_before_work(tmp_path, monkeypatch, args, message) -> None:
    """`neuromod run --scheduler` is checked before any work: one line on stderr, exit code 1."""
    import dataclasses

    from typer.testing import CliRunner

    from neuromod import registry
    from neuromod.cli import app

    calls = []
    spy = dataclasses.replace(registry.get("task-switching"), run=lambda *a, **k: calls.append(1))
    monkeypatch.setitem(registry._REGISTRY, "task-switching", spy)
    out = tmp_path / "ts.nc"
    res = CliRunner().invoke(app, ["run", "task-switching", "--out", str(out), "--models", "spiking", *args])
    assert res.exit_code == 1
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), res.output
    assert calls == [] and not out.exists()
