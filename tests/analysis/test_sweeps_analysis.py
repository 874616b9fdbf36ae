"""The sweep analysis script: a sweep store of task-switching runs -> RT switch cost on the sweep's axes.

A tiny real sweep (experiments/sweeps/rate_tau.toml at 2 tau_ms x 1 p_switch x 1 replicate, few trials, run
serially into a temporary folder) is read back; every per-point cost is checked against the package's
measure applied to that point's result directly, with the point's tau_ms taken from the store's index (not
from the point's config, as the script does), and against the number the run itself reported (its
summary's ``rt_cost_shortest``).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from neuromod.config import read_toml
from neuromod.measures import switch_regression
from neuromod.sweep import Sweep

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "analysis" / "sweeps.py"
SWEEP = ROOT / "experiments" / "sweeps" / "rate_tau.toml"
TAUS = [100.0, 1600.0]
TOL = 1e-9


def _script():
    spec = importlib.util.spec_from_file_location("sweeps_analysis", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def sweeps():
    return _script()


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    """The reference sweep, reduced: 2 points of 160 trials each (a few seconds)."""
    fixed = {
        **read_toml(SWEEP)["fixed"],
        "n_trials": 160,
        "max_rt_ms": 1000.0,
        "gain": {"n_drives": 9, "n_repeats": 1, "match_levels": 3},
    }
    sweep = Sweep.from_toml(SWEEP, fixed=fixed, axes={"tau_ms": TAUS, "p_switch": [0.5]}, seeds=1)
    out = tmp_path_factory.mktemp("sweep") / "rate_tau.zarr"
    report = sweep.run(out, scheduler="serial", progress=False)
    assert report.complete, str(report)
    return out


@pytest.fixture(scope="module")
def cube(sweeps, store):
    return sweeps.cost_cube(sweeps.open_store(store), "rate")


def test_hypercube_has_the_sweeps_dimensions(cube):
    assert cube["rt_cost_shortest"].dims == ("tau_ms", "p_switch", "replicate")
    assert cube["rt_cost_shortest"].shape == (2, 1, 1)
    assert cube["tau_ms"].values.tolist() == TAUS
    assert cube["p_switch"].values.tolist() == [0.5]
    assert cube["rt_cost_shortest"].attrs["units"] == "ms"


def test_point_cost_is_the_packages_measure_of_that_point(sweeps, store, cube):
    view = sweeps.open_store(store)
    index = view.index
    assert view.done() == [0, 1]
    for i in view.done():
        tau = float(index["tau_ms"].values[i])
        tree = view.point(i)
        direct = switch_regression(tree, tau, model="rate", outcomes=("rt",))
        reported = tree["summary"].to_dataset(inherit=False).sel(model="rate")
        at = cube.sel(tau_ms=tau).isel(p_switch=0, replicate=0)
        for suffix in ("", "_low", "_high", "_se"):
            var = f"rt_cost_shortest{suffix}"
            value = float(at[var])
            assert np.isfinite(value)
            assert value == pytest.approx(float(direct[var]), rel=TOL, abs=TOL)
            assert value == pytest.approx(float(reported[var]), rel=TOL, abs=TOL)
        assert float(at["csi_shortest"]) == 50.0
        assert (
            float(at["rt_cost_shortest_low"])
            < float(at["rt_cost_shortest"])
            < float(at["rt_cost_shortest_high"])
        )
    # each point's value sits at its own tau: the two points' costs differ
    costs = cube["rt_cost_shortest"].values.ravel()
    assert costs[0] != costs[1]


def test_table_marks_unresolved_costs(sweeps, cube):
    df = sweeps.cost_table(cube)
    assert list(df["tau_ms"]) == TAUS
    low, high = df["rt_cost_shortest_low"], df["rt_cost_shortest_high"]
    assert list(df["resolved"]) == [int(lo > 0 or hi < 0) for lo, hi in zip(low, high, strict=True)]
    text = sweeps.format_table(df)
    for r in df.itertuples():
        assert (sweeps.NOT_RESOLVED in text.splitlines()[2 + r.Index]) == (r.resolved == 0)


def test_plot_refuses_an_unknown_dimension(sweeps, cube):
    with pytest.raises(ValueError, match="not a dimension"):
        sweeps.plot_cost(cube, x="csi_ms")
    with pytest.raises(ValueError, match="hue='tau_ms'"):
        sweeps.plot_cost(cube, x="tau_ms", hue="tau_ms")


def _cli(sweeps, *args: str | Path):
    """Run the script's command line in this process (as `python analysis/sweeps.py ARGS`)."""
    app = typer.Typer()
    app.command()(sweeps.main)
    return CliRunner().invoke(app, [str(a) for a in args])


def test_script_writes_the_figure_and_prints_the_costs(sweeps, store, cube, tmp_path):
    fig = tmp_path / "sub" / "cost.png"
    run = _cli(sweeps, store, "--out", fig)
    assert run.exit_code == 0, run.output
    assert fig.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    first = float(cube["rt_cost_shortest"].values.ravel()[0])
    assert f"| 100.0 | 0.5 | 0 | {first:.0f} [" in run.output
    assert f"wrote {fig}" in run.output


def test_script_refuses_another_experiments_sweep(sweeps, tmp_path):
    probe = Sweep.from_dict({"experiment": "sweep-probe", "axes": {"value": [1.0]}})
    out = tmp_path / "probe.zarr"
    probe.run(out, scheduler="serial", progress=False)
    run = _cli(sweeps, out, "--out", tmp_path / "never.png")
    assert run.exit_code == 1
    assert "sweep of 'sweep-probe'" in run.output
    assert not (tmp_path / "never.png").exists()


def test_script_refuses_a_model_the_sweep_does_not_run(sweeps, store, tmp_path):
    run = _cli(sweeps, store, "--model", "se", "--out", tmp_path / "never.png")
    assert run.exit_code == 1
    assert "the sweep's points run ['rate']" in run.output
    assert not (tmp_path / "never.png").exists()
