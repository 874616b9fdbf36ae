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


def _spy_toy(monkeypatch) -> list:
    """Replace the toy experiment's run by a spy; the list it returns records every call."""
    calls: list = []
    spy = dataclasses.replace(registry.get("toy"), run=lambda *a, **k: calls.append(1))
    monkeypatch.setitem(registry._REGISTRY, "toy", spy)
    return calls


def _refuse_probe_in(monkeypatch, folder) -> None:
    """Make `folder` refuse new files, as a read-only folder does for a user who is not root (as root, and
    on every machine, chmod alone cannot show it)."""
    import errno
    import os

    from neuromod import _files

    real = _files._probe

    def probe(where):
        if os.path.samefile(where, folder):
            return PermissionError(errno.EACCES, os.strerror(errno.EACCES))
        return real(where)

    monkeypatch.setattr(_files, "_probe", probe)


@pytest.mark.parametrize(
    ("case", "message"),
    [
        (
            "read-only folder",
            r"cannot write '.*ro/toy\.nc': the folder '.*ro' is not writable \(Permission denied\)",
        ),
        (
            "read-only parent of a folder to make",
            r"cannot write '.*ro/new/toy\.nc': the folder '.*ro/new' cannot be made in '.*ro' "
            r"\(Permission denied\)",
        ),
        ("folder at the output path", r"'.*toy\.nc' is a folder; expected a file there"),
        ("folder at the figure path", r"'.*toy\.png' is a folder; expected a file there"),
        ("a file on the way", r"cannot write '.*afile/sub/toy\.nc': '.*afile' is a file, not a folder"),
        ("store path is a file", r"'.*toy\.zarr' is a file; a \.zarr store is a folder"),
    ],
)
def test_run_output_problems_fail_before_any_work(tmp_path, monkeypatch, case, message):
    """Issue 16 item 2: each output-location problem is one line, in well under 3 s, before the model runs,
    and nothing is written."""
    import re
    import time

    calls = _spy_toy(monkeypatch)
    (tmp_path / "ro").mkdir()
    out = tmp_path / "toy.nc"
    if case == "read-only folder":
        out = tmp_path / "ro" / "toy.nc"
        _refuse_probe_in(monkeypatch, tmp_path / "ro")
    elif case == "read-only parent of a folder to make":
        out = tmp_path / "ro" / "new" / "toy.nc"
        _refuse_probe_in(monkeypatch, tmp_path / "ro")
    elif case == "folder at the output path":
        out.mkdir()
    elif case == "folder at the figure path":
        (tmp_path / "toy.png").mkdir()
    elif case == "a file on the way":
        (tmp_path / "afile").write_text("x")
        out = tmp_path / "afile" / "sub" / "toy.nc"
    else:
        out = tmp_path / "toy.zarr"
        out.write_text("x")
    before = sorted(p.name for p in tmp_path.rglob("*"))
    start = time.perf_counter()
    res = runner.invoke(app, ["run", "toy", "--out", str(out), "--overwrite"])
    elapsed = time.perf_counter() - start
    assert res.exit_code == 1
    assert res.output.startswith("neuromod: error: ") and res.output.count("\n") == 1, res.output
    assert re.search(message, res.output), res.output
    assert calls == [] and elapsed < 3.0
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


@pytest.mark.skipif(
    not hasattr(__import__("os"), "geteuid") or __import__("os").geteuid() == 0,
    reason="root writes into read-only folders; the simulated test above covers the check",
)
def test_run_refuses_a_really_read_only_folder(tmp_path, monkeypatch):
    calls = _spy_toy(monkeypatch)
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        res = runner.invoke(app, ["run", "toy", "--out", str(folder / "toy.nc")])
    finally:
        folder.chmod(0o755)
    assert res.exit_code == 1 and "is not writable" in res.output and calls == []


def test_plot_checks_its_output_before_reading(tmp_path, monkeypatch):
    out = tmp_path / "toy.nc"
    assert runner.invoke(app, ["run", "toy", "--out", str(out), "--quick"]).exit_code == 0
    loads = []
    monkeypatch.setattr(results, "load", lambda *a, **k: loads.append(1))
    (tmp_path / "figs").mkdir()
    (tmp_path / "figs" / "toy.png").mkdir()
    res = runner.invoke(app, ["plot", str(out), "--out", str(tmp_path / "figs")])
    assert res.exit_code == 1 and "is a folder; expected a file" in res.output and loads == []


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("experiment = 5", r"experiment = 5 \(int\); expected the name of an experiment as a string"),
        ("seed = 1", r"missing key 'experiment'"),
    ],
)
def test_toml_experiment_key_messages(tmp_path, line, message):
    """Issue 16 item 7: a wrong type is named as such, not as a missing key."""
    import re

    toml = tmp_path / "x.toml"
    toml.write_text(line + "\n")
    res = runner.invoke(app, ["run", str(toml), "--out", str(tmp_path / "x.nc")])
    assert res.exit_code == 1 and re.search(message, res.output), res.output
    assert str(toml) in res.output
