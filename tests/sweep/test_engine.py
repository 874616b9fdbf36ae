"""The sweep engine on one 2-core machine: a LocalCluster of 2 workers x 1 thread against the serial loop.

What is shown (issue: "Beyond one machine"): the cluster gives what the serial loop gives, point by point what
``neuromod run`` gives; a killed worker, a killed client and failing points lose nothing and run nothing twice
that was committed; a changed spec is refused; the store reads while the sweep runs.
"""

from __future__ import annotations

import collections
import json
import os
import signal
import time

import numpy as np
import pytest
import xarray as xr
from typer.testing import CliRunner

from neuromod import registry, results
from neuromod.cli import app
from neuromod.sweep import STATUS, Sweep, SweepStoreError, open_sweep
from neuromod.sweep._cluster import connect
from neuromod.sweep._store import SweepStore

RATE = {
    "experiment": "task-switching",
    "seed": 3,
    "seeds": 2,
    "fixed": {
        "models": ["rate"],
        "release": "default",
        "n_trials": 120,
        "csi_ms": [50.0, 600.0],
        "gain": {"n_drives": 5, "match_levels": 3, "n_repeats": 8, "form": "threshold_linear"},
    },
    "axes": {"tau_ms": [200.0, 400.0, 800.0], "p_switch": [0.3, 0.6]},
}


@pytest.fixture(scope="module")
def cluster():
    """A local cluster of 2 single-threaded worker processes (shared by the tests that do not kill it)."""
    with connect("local", n_workers=2) as client:
        yield client


def wait_for_status(path, *, done: int, timeout_s: float) -> None:
    """Poll a store (written by another process) until `done` points are done."""
    store = SweepStore(path)
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        try:
            if int((store.status() == STATUS["done"]).sum()) >= done:
                return
        except Exception:  # not created yet
            pass
        time.sleep(0.05)
    raise TimeoutError(f"{path}: fewer than {done} points done after {timeout_s} s")


def _runs(log) -> collections.Counter:
    """How often each value ran (lines of the probe's runs.log)."""
    return collections.Counter(float(line.split()[0]) for line in log.read_text().splitlines())


def test_cluster_equals_serial_and_each_point_equals_a_run(tmp_path, cluster, comparable, load_sweep):
    sweep = Sweep.from_dict(RATE)
    assert sweep.spec.n_points == 12
    serial = sweep.run(tmp_path / "serial.zarr", scheduler="serial", progress=False)
    parallel = sweep.run(tmp_path / "cluster.zarr", client=cluster, progress=False)
    assert serial.complete and parallel.complete and len(parallel.submitted) == 12
    a, b = load_sweep(tmp_path / "serial.zarr"), load_sweep(tmp_path / "cluster.zarr")
    xr.testing.assert_identical(comparable(a), comparable(b))
    assert len(b["points"].children) == 12
    assert len(set(b["worker"].values.tolist())) == 2  # both workers took points
    # each point is `neuromod run` of its resolved config, as stored: every config reads back exactly, and
    # three points (first, middle, last; both workers) rerun alone give their stored results
    experiment = registry.get("task-switching")
    view = open_sweep(tmp_path / "cluster.zarr")
    stored = [experiment.config_cls.from_dict(json.loads(t)) for t in b["config_json"].values]
    assert stored == [p.config for p in sweep.spec.points()]
    for index in (0, 5, 11):
        alone = results.without_timestamps(experiment.run(stored[index], progress=False))
        xr.testing.assert_identical(results.without_timestamps(view.point(index).load()), alone)


def test_killed_worker_loses_nothing(tmp_path, probe_spec, comparable, load_sweep):
    """The points of one value kill their worker (SIGKILL) the first time: they run twice, every other point
    once, and the store equals the serial one (attempts aside: 2 for those points)."""
    marker = tmp_path / "markers"
    marker.mkdir()
    spec = {**probe_spec, "fixed": {"duration_s": 0.2, "marker_dir": str(marker), "kill_once": [3.0]}}
    with connect("local", n_workers=2) as client:
        report = Sweep.from_dict(spec).run(tmp_path / "c.zarr", client=client, progress=False)
    assert report.complete
    runs = _runs(marker / "runs.log")
    assert runs[3.0] == 4 and all(n == 2 for v, n in runs.items() if v != 3.0)  # 2 replicates per value
    store = load_sweep(tmp_path / "c.zarr")
    attempts = dict(zip(store["point"].values.tolist(), store["attempts"].values.tolist(), strict=True))
    killed = {p for p, v in zip(store["point"].values, store["value"].values, strict=True) if v == 3.0}
    assert len(killed) == 2 and all(attempts[p] == 2 for p in killed)  # one kill per replicate (seed)
    assert all(attempts[p] == 1 for p in attempts if p not in killed)
    # the serial reference, same spec: the markers are there now, so nothing is killed
    Sweep.from_dict(spec).run(tmp_path / "s.zarr", scheduler="serial", progress=False)
    xr.testing.assert_identical(
        comparable(load_sweep(tmp_path / "s.zarr"), attempts=False), comparable(store, attempts=False)
    )


def test_killed_client_resumes_only_the_points_not_committed(tmp_path, neuromod_cli, comparable, load_sweep):
    marker = tmp_path / "markers"
    marker.mkdir()
    (tmp_path / "s.toml").write_text(
        'experiment = "sweep-probe"\nseeds = 2\n[fixed]\nduration_s = 0.4\n'
        f'marker_dir = "{marker}"\n[axes]\nvalue = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]\n'
    )
    args = ["sweep", "s.toml", "--out", "c.zarr", "--workers", "2", "--no-progress"]
    first = neuromod_cli(*args, cwd=tmp_path)
    try:
        wait_for_status(tmp_path / "c.zarr", done=3, timeout_s=120)
    finally:
        os.killpg(first.pid, signal.SIGKILL)  # the client, its cluster and its workers
        first.communicate()
    before = open_sweep(tmp_path / "c.zarr").index
    committed = set(np.flatnonzero(before["status"].values == STATUS["done"]).tolist())
    assert 3 <= len(committed) < 12
    second = neuromod_cli(*args, cwd=tmp_path)
    out, err = second.communicate(timeout=240)
    assert second.returncode == 0, err
    assert f"({12 - len(committed)} run now)" in out
    after = load_sweep(tmp_path / "c.zarr")
    assert all(after["attempts"].values[sorted(committed)] == 1)  # committed points never ran again
    Sweep.from_toml(tmp_path / "s.toml").run(tmp_path / "s.zarr", scheduler="serial", progress=False)
    xr.testing.assert_identical(
        comparable(load_sweep(tmp_path / "s.zarr"), attempts=False), comparable(after, attempts=False)
    )


def test_failures_are_recorded_and_a_rerun_retries_only_them(tmp_path, probe_spec):
    """A point that raises is failed with its traceback after one retry; one that kills its worker every time
    is failed when Dask gives up on it; the others complete; a rerun retries only the failed points."""
    spec = {**probe_spec, "seeds": 1, "fixed": {"fail_on": [2.0], "kill_on": [5.0]}}
    sweep = Sweep.from_dict(spec)
    out = tmp_path / "f.zarr"
    report = sweep.run(out, n_workers=2, worker_deaths=1, progress=False)
    assert not report.complete and report.counts == {"pending": 0, "running": 0, "done": 4, "failed": 2}
    index = open_sweep(out).index
    value = dict(zip(index["value"].values.tolist(), range(6), strict=True))
    raised, killed = value[2.0], value[5.0]
    assert int(index["attempts"][raised]) == 2
    assert "Traceback" in str(index["error"][raised].values) and "fails on purpose" in str(
        index["error"][raised].values
    )
    assert "KilledWorker" in str(index["error"][killed].values)
    rerun = sweep.run(out, n_workers=2, worker_deaths=1, progress=False)
    assert sorted(rerun.submitted) == sorted([raised, killed])
    assert int(open_sweep(out).index["attempts"][raised]) == 4
    # the command line says "incomplete" with its exit code
    res = CliRunner().invoke(app, ["info", str(out)])
    assert (
        res.exit_code == 0
        and "2 failed" in res.output
        and f"point {raised} failed after 4 attempt(s)" in res.output
    )


def test_incomplete_sweep_exit_code(tmp_path):
    (tmp_path / "s.toml").write_text(
        'experiment = "sweep-probe"\n[fixed]\nfail_on = [2.0]\n[axes]\nvalue = [1.0, 2.0]\n'
    )
    res = CliRunner().invoke(
        app,
        [
            "sweep",
            str(tmp_path / "s.toml"),
            "--out",
            str(tmp_path / "x.zarr"),
            "--scheduler",
            "serial",
            "--no-progress",
        ],
    )
    assert res.exit_code == 3 and "INCOMPLETE: 1 done, 1 failed" in res.output


def test_changed_spec_is_refused_in_one_line(tmp_path):
    sweep_file = tmp_path / "s.toml"
    sweep_file.write_text('experiment = "sweep-probe"\n[axes]\nvalue = [1.0, 2.0]\n')
    args = [
        "sweep",
        str(sweep_file),
        "--out",
        str(tmp_path / "x.zarr"),
        "--scheduler",
        "serial",
        "--no-progress",
    ]
    runner = CliRunner()
    assert runner.invoke(app, args).exit_code == 0
    sweep_file.write_text('experiment = "sweep-probe"\n[axes]\nvalue = [1.0, 2.5]\n')
    res = runner.invoke(app, args)
    assert res.exit_code == 1
    assert res.stderr.count("\n") == 1 and "another spec" in res.stderr and "--restart" in res.stderr
    with pytest.raises(SweepStoreError):
        Sweep.from_toml(sweep_file).run(tmp_path / "x.zarr", scheduler="serial", progress=False)
    res = runner.invoke(app, [*args, "--restart"])
    assert res.exit_code == 0 and "2 run now" in res.output
    assert open_sweep(tmp_path / "x.zarr").index["value"].values.tolist() == [1.0, 2.5]
    (tmp_path / "other.nc").write_text("")
    res = runner.invoke(app, [*args[:3], str(tmp_path / "y.nc"), *args[4:]])
    assert res.exit_code == 1 and "must end in .zarr" in res.stderr


def test_store_reads_while_the_sweep_runs(tmp_path, neuromod_cli, load_sweep):
    (tmp_path / "s.toml").write_text(
        'experiment = "sweep-probe"\nseeds = 2\n[fixed]\nduration_s = 0.15\n'
        "[axes]\nvalue = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]\n"
    )
    proc = neuromod_cli(
        "sweep", "s.toml", "--out", "c.zarr", "--scheduler", "serial", "--no-progress", cwd=tmp_path
    )
    seen, errors = [], []
    runner = CliRunner()
    while proc.poll() is None:
        if not (tmp_path / "c.zarr").exists():
            time.sleep(0.02)
            continue
        try:
            tree = load_sweep(tmp_path / "c.zarr")
            seen.append(len(tree["points"].children))
            assert int((tree["status"].values == STATUS["done"]).sum()) == seen[-1]
            res = runner.invoke(app, ["info", str(tmp_path / "c.zarr")])
            if res.exit_code != 0:
                errors.append(res.output)
        except Exception as err:  # anything at all: the test is that nothing fails
            errors.append(repr(err))
    assert proc.returncode == 0, proc.stderr.read()
    assert not errors
    assert len(seen) >= 5 and seen == sorted(seen) and seen[0] < 12  # read many times, mid-sweep
    assert len(load_sweep(tmp_path / "c.zarr")["points"].children) == 12


def test_a_superseded_run_cannot_commit(tmp_path, probe_spec):
    """A task of an earlier run (its client gone) finds another run id in the store and writes nothing."""
    from neuromod.sweep._worker import run_point

    sweep = Sweep.from_dict(probe_spec)
    store = SweepStore.prepare(tmp_path / "x.zarr", sweep.spec)
    old = store.begin_run()
    store.begin_run()  # a new client took over
    point = sweep.spec.points()[0]
    record = run_point(str(store.path), old, 0, "sweep-probe", point.config.to_dict(), 2, 0)
    assert record["outcome"] == "superseded"
    assert store.status()[0] == STATUS["pending"] and int(store.array("attempts")[0]) == 0
    assert not store.point_path(0).exists()


def test_worker_slot_is_freed_by_a_dead_worker_and_found_again(tmp_path):
    import subprocess
    import sys

    code = (
        "import sys; from pathlib import Path; from neuromod.sweep._worker import _claim_slot; "
        "print(_claim_slot(Path(sys.argv[1])), flush=True); sys.stdin.read()"
    )

    def holder():
        proc = subprocess.Popen(
            [sys.executable, "-c", code, str(tmp_path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        return proc, int(proc.stdout.readline())

    first, slot_a = holder()
    second, slot_b = holder()
    assert (slot_a, slot_b) == (0, 1)
    first.kill()  # the worker dies; its slot (and compile cache) is free for the next one
    first.wait()
    third, slot_c = holder()
    assert slot_c == 0
    for proc in (second, third):
        proc.kill()
        proc.wait()


def test_slurm_workers_retire_before_the_walltime():
    from neuromod.sweep._cluster import slurm_lifetime, slurm_options

    life, stagger = slurm_lifetime("04:00:00")
    assert life + stagger <= 4 * 3600 - 300
    options = slurm_options({"walltime": "04:00:00", "cores": 4, "memory": "8 GiB"})
    assert options["processes"] == 4 and options["cores"] == 4
    args = options["worker_extra_args"]
    assert args[args.index("--lifetime") + 1] == f"{life:.0f}s"
    assert "export OMP_NUM_THREADS=1" in options["job_script_prologue"]
    with pytest.raises(ValueError, match="walltime='4h'"):
        slurm_lifetime("4h")
    dask_jobqueue = pytest.importorskip("dask_jobqueue")  # the `slurm` extra, installed by `make test`
    with dask_jobqueue.SLURMCluster(**options, scheduler_options={"dashboard_address": None}) as cluster:
        script = cluster.job_script()
    assert "--lifetime" in script and "--lifetime-stagger" in script and "export NEUROMOD_CORES=1" in script
    assert "#SBATCH -t 04:00:00" in script


def test_scheduler_errors_before_any_work(tmp_path):
    (tmp_path / "s.toml").write_text('experiment = "sweep-probe"\n[axes]\nvalue = [1.0]\n')
    res = CliRunner().invoke(
        app, ["sweep", str(tmp_path / "s.toml"), "--out", str(tmp_path / "x.zarr"), "--scheduler", "sluurm"]
    )
    assert res.exit_code == 1 and "expected 'local', 'serial', 'slurm'" in res.stderr
    assert not (tmp_path / "x.zarr").exists()
    res = CliRunner().invoke(
        app, ["sweep", str(tmp_path / "s.toml"), "--scheduler", str(tmp_path / "none.json")]
    )
    assert res.exit_code == 1 and "no such scheduler file" in res.stderr


def test_dry_run_prints_the_points_and_writes_nothing(tmp_path):
    (tmp_path / "s.toml").write_text('experiment = "sweep-probe"\nseeds = 2\n[axes]\nvalue = [1.0, 2.0]\n')
    res = CliRunner().invoke(
        app, ["sweep", str(tmp_path / "s.toml"), "--out", str(tmp_path / "x.zarr"), "--dry-run"]
    )
    assert res.exit_code == 0 and "4 points, dims value=2 x replicate=2" in res.output
    assert res.output.count("point ") == 4 and not (tmp_path / "x.zarr").exists()


def test_hypercube_of_a_measure(tmp_path, probe_spec):
    out = tmp_path / "x.zarr"
    Sweep.from_dict(probe_spec).run(out, scheduler="serial", progress=False)
    view = open_sweep(out)
    cube = view.hypercube(view.map(lambda r: float(r["x"].mean()), name="mean_x"))
    assert cube["mean_x"].dims == ("value", "replicate")
    # the probe's x is value + noise: the mean over replicates follows the axis within the noise
    se = 1 / np.sqrt(8 * 2)
    np.testing.assert_allclose(cube["mean_x"].mean("replicate"), cube["value"], atol=5 * se)
    assert view.hypercube()["status"].dims == ("value", "replicate")


def test_a_damaged_point_is_refused_by_load_and_by_the_view(tmp_path, probe_spec):
    """Issue 16 item 1 for sweeps: every point carries its checksums; `load` of the store checks every
    point's data, `open_sweep(...).point(i)` its structure lazily (and its data with ``load=True``)."""
    import shutil

    out = tmp_path / "x.zarr"
    Sweep.from_dict({**probe_spec, "seeds": 1}).run(out, scheduler="serial", progress=False)
    view = open_sweep(out)
    xr.testing.assert_identical(view.point(2, load=True), view.point(2).load())  # whole: both agree
    point = view._store.point_path(2)
    shutil.rmtree(point / "x" / "c")  # its chunks: the data now read as the fill value
    with pytest.raises(results.ResultsError, match=r"\(point 2\) is damaged.*the data of 'x'"):
        results.load(out)
    with pytest.raises(results.ResultsError, match=r"\(point 2\) is damaged.*the data of 'x'"):
        view.point(2, load=True)
    view.point(2)  # lazily: the structure is whole, the data are not read
    shutil.rmtree(point / "x")
    with pytest.raises(
        results.ResultsError, match=r"\(point 2\) is damaged.*variable 'x' of group / is missing"
    ):
        view.point(2)
