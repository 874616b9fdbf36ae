"""Tests for the `neuromod` command (in process with typer's runner, and one real subprocess)."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import numpy as np
import pytest
import xarray as xr
from typer.testing import CliRunner

from neuromod import __version__, registry, results
from neuromod.cli import app
from neuromod.config import Config, param

runner = CliRunner()


@dataclasses.dataclass(frozen=True)
class ToyConfig(Config):
    experiment: str = "toy"
    seed: int = param(0, low=0)
    n: int = param(50, low=1)
    tau_ms: float = param(20.0, low=0.0, low_inclusive=False)


def _run_toy(config: ToyConfig, *, progress: bool = False) -> xr.Dataset:
    rng = np.random.default_rng(config.seed)
    t = np.arange(config.n, dtype=float)
    return xr.Dataset(
        {
            "x": (
                "time",
                np.exp(-t / config.tau_ms) + 0.01 * rng.standard_normal(config.n),
                {"units": "1", "long_name": "decay"},
            )
        },
        coords={"time": ("time", t, {"units": "ms", "long_name": "time"})},
        attrs=results.provenance(config, title="toy decay"),
    )


def _plot_toy(ds):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ds["x"].plot(ax=ax)
    return fig


@pytest.fixture(autouse=True, scope="module")
def toy_experiment():
    registry.register(
        registry.Experiment(
            name="toy",
            config_cls=ToyConfig,
            run=_run_toy,
            summarize=lambda ds: f"toy: mean x = {float(ds['x'].mean()):.3f}",
            plot=_plot_toy,
            quick=lambda c: c.replace(n=10),
            description="an exponential decay (test only)",
        ),
        replace=True,
    )
    yield
    registry._REGISTRY.pop("toy", None)


def test_version():
    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 0 and res.output.strip() == f"neuromod {__version__}"


def test_run_writes_result_and_figure(tmp_path):
    out = tmp_path / "toy.nc"
    res = runner.invoke(app, ["run", "toy", "--out", str(out), "--seed", "3", "--quick"])
    assert res.exit_code == 0, res.output
    assert "toy: mean x" in res.output and str(out) in res.output
    ds = results.load(out)
    assert ds.sizes["time"] == 10  # --quick
    assert ds.nm.config["seed"] == 3  # --seed
    assert out.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"


def test_run_shows_spiking_log_during_the_run_and_leaves_no_handler(tmp_path):
    """With progress on, `run` shows neuromod.spiking's INFO lines on its stderr, and only during the run:
    a handler left behind would write to the runner's closed stream on the next compile notice."""
    import logging

    log = logging.getLogger("neuromod.spiking")
    before, level = list(log.handlers), log.level

    def run_and_log(config, progress=False):
        log.info("neuromod: compiling (test)")
        return _run_toy(config)

    toy = registry.get("toy")
    registry.register(dataclasses.replace(toy, run=run_and_log), replace=True)
    try:
        res = runner.invoke(app, ["run", "toy", "--out", str(tmp_path / "t.nc"), "--quick"])
    finally:
        registry.register(toy, replace=True)
    assert res.exit_code == 0, res.output
    assert "neuromod: compiling (test)" in res.stderr
    assert log.handlers == before and log.level == level


def test_run_same_seed_same_data(tmp_path):
    for name in ("a", "b"):
        assert runner.invoke(app, ["run", "toy", "--out", str(tmp_path / f"{name}.nc")]).exit_code == 0
    a, b = results.load(tmp_path / "a.nc"), results.load(tmp_path / "b.nc")
    xr.testing.assert_identical(results.without_timestamps(a), results.without_timestamps(b))
    assert a.attrs["created"] <= b.attrs["created"]


def test_run_refuses_existing_output_before_work(tmp_path, monkeypatch):
    out = tmp_path / "toy.nc"
    out.write_text("precious")
    calls = []
    spy = dataclasses.replace(registry.get("toy"), run=lambda *a, **k: calls.append(1))
    monkeypatch.setitem(registry._REGISTRY, "toy", spy)
    res = runner.invoke(app, ["run", "toy", "--out", str(out)])
    assert res.exit_code == 1
    assert "exists; pass --overwrite" in res.output
    assert out.read_text() == "precious" and calls == []


def test_run_from_toml_and_misspelt_key(tmp_path):
    good = tmp_path / "toy.toml"
    good.write_text('experiment = "toy"\nseed = 2\nn = 12\n')
    out = tmp_path / "from_toml.nc"
    res = runner.invoke(app, ["run", str(good), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert results.load(out).sizes["time"] == 12
    bad = tmp_path / "bad.toml"
    bad.write_text('experiment = "toy"\ntua_ms = 3.0\n')
    res = runner.invoke(app, ["run", str(bad), "--out", str(tmp_path / "never.nc")])
    assert res.exit_code == 1
    assert "unknown key 'tua_ms' (did you mean 'tau_ms'?)" in res.output
    assert not (tmp_path / "never.nc").exists()


def test_unknown_experiment_suggests(tmp_path):
    res = runner.invoke(app, ["run", "tyo", "--out", str(tmp_path / "x.nc")])
    assert res.exit_code == 1
    assert "unknown experiment 'tyo' (did you mean 'toy'?)" in res.output


def test_info_prints_provenance_and_config(tmp_path):
    out = tmp_path / "toy.nc"
    assert runner.invoke(app, ["run", "toy", "--out", str(out), "--quick"]).exit_code == 0
    res = runner.invoke(app, ["info", str(out)])
    assert res.exit_code == 0, res.output
    for text in (
        "title:   toy decay",
        "source:  neuromod",
        "schema_version:",
        "time=10",
        "[ms]",
        '"tau_ms": 20.0',
    ):
        assert text in res.output


def test_plot_command(tmp_path):
    out = tmp_path / "toy.nc"
    assert runner.invoke(app, ["run", "toy", "--out", str(out), "--quick", "--no-progress"]).exit_code == 0
    out.with_suffix(".png").unlink()
    figdir = tmp_path / "figs" / "new"  # made, as `run` makes its folder (the README's command)
    res = runner.invoke(app, ["plot", str(out), "--out", str(figdir)])
    assert res.exit_code == 0, res.output
    assert (figdir / "toy.png").read_bytes()[:4] == b"\x89PNG"
    (tmp_path / "afile").write_text("")
    res = runner.invoke(app, ["plot", str(out), "--out", str(tmp_path / "afile")])
    assert res.exit_code == 1 and "is a file; expected a folder" in res.stderr


def test_plot_overview_for_unregistered_result(tmp_path, result_tree):
    path = results.save(result_tree, tmp_path / "tree.nc")
    res = runner.invoke(app, ["plot", str(path)])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "tree.png").exists()


@pytest.mark.parametrize("content", [b"hello, I am text\n", None])
def test_info_on_bad_file_is_one_clear_line(tmp_path, result_ds, content):
    """A real subprocess: exit code non-zero, one line on stderr, no traceback."""
    path = tmp_path / "bad.nc"
    if content is None:  # a truncated netCDF
        good = results.save(result_ds, tmp_path / "good.nc").read_bytes()
        path.write_bytes(good[: len(good) // 3])
    else:
        path.write_bytes(content)
    proc = subprocess.run(
        [sys.executable, "-m", "neuromod.cli", "info", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("neuromod: error: ") and "bad.nc" in lines[0] and "not a readable" in lines[0]
    assert "Traceback" not in proc.stderr


def test_debug_shows_traceback(tmp_path):
    path = tmp_path / "bad.nc"
    path.write_text("text")
    res = runner.invoke(app, ["--debug", "info", str(path)])
    assert res.exit_code != 0
    assert isinstance(res.exception, results.ResultsError)


def test_experiments_lists_builtin():
    res = runner.invoke(app, ["experiments"])
    assert res.exit_code == 0
    assert "toy" in res.output


def test_families_lists_every_family_with_its_table():
    from neuromod.protocols.families.rate import RateConfig

    res = runner.invoke(app, ["families"])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert [line.split()[0] for line in lines[::2]][:3] == ["se", "rate", "spiking"]
    assert lines[3].split("[rate] ")[1].split(", ") == list(RateConfig.describe())


def test_failed_figure_write_leaves_no_result(tmp_path, monkeypatch):
    out = tmp_path / "toy.nc"

    def broken_plot(ds):
        raise RuntimeError("figure failed")

    spy = dataclasses.replace(registry.get("toy"), plot=broken_plot)
    monkeypatch.setitem(registry._REGISTRY, "toy", spy)
    res = runner.invoke(app, ["run", "toy", "--out", str(out)])
    assert res.exit_code == 1 and "figure failed" in res.output
    assert list(tmp_path.iterdir()) == []


def test_failed_dataset_write_leaves_no_figure(tmp_path, monkeypatch):
    out = tmp_path / "toy.nc"

    def failing_write(obj, tmp, fmt):
        raise OSError("disk full")

    monkeypatch.setattr(results, "_write", failing_write)
    res = runner.invoke(app, ["run", "toy", "--out", str(out)])
    assert res.exit_code == 1 and "disk full" in res.output
    assert list(tmp_path.iterdir()) == []


def test_plot_no_overwrite_refuses(tmp_path):
    out = tmp_path / "toy.nc"
    assert runner.invoke(app, ["run", "toy", "--out", str(out), "--quick"]).exit_code == 0
    res = runner.invoke(app, ["plot", str(out), "--no-overwrite"])
    assert res.exit_code == 1 and "exists" in res.output
    assert runner.invoke(app, ["plot", str(out)]).exit_code == 0


def test_run_settings_options_and_set(tmp_path):
    out = tmp_path / "toy.nc"
    res = runner.invoke(
        app, ["run", "toy", "--out", str(out), "--tau-ms", "5", "--set", "n=7", "--quick", "--set", "seed=4"]
    )
    assert res.exit_code == 0, res.output
    ds = results.load(out)
    assert ds.sizes["time"] == 7  # an explicit setting wins over --quick (n=10)
    assert ds.nm.config["tau_ms"] == 5.0 and ds.nm.config["seed"] == 4
    np.testing.assert_allclose(ds["x"].values[:3], np.exp(-np.arange(3) / 5.0), atol=0.05)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--n-trials", "3"], "--n-trials: experiment 'toy' has no setting 'n_trials'"),
        (["--csi-ms", "100,abc"], "--csi-ms='100,abc': expected a comma-separated list of floats"),
        (["--set", "tua_ms=3"], "unknown key 'tua_ms' (did you mean 'tau_ms'?)"),
        (["--set", "n=abc"], "n='abc' has the wrong type; expected an integer"),
        (["--set", "n"], "--set 'n': expected KEY=VALUE"),
        (["--set", "tau_ms=-1"], "tau_ms=-1.0 is outside the valid range (0, inf)"),
    ],
)
def test_run_bad_settings_fail_before_work(tmp_path, monkeypatch, args, message):
    calls = []
    spy = dataclasses.replace(registry.get("toy"), run=lambda *a, **k: calls.append(1))
    monkeypatch.setitem(registry._REGISTRY, "toy", spy)
    out = tmp_path / "toy.nc"
    res = runner.invoke(app, ["run", "toy", "--out", str(out), *args])
    assert res.exit_code == 1
    assert message in " ".join(res.output.split()), res.output
    assert calls == [] and not out.exists()
