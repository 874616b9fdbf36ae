"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os

import matplotlib
import numpy as np
import pytest
import xarray as xr

matplotlib.use("Agg")
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture
def result_ds() -> xr.Dataset:
    """A small valid neuromod Dataset with provenance (fixed seed)."""
    from neuromod import results

    rng = np.random.default_rng(1234)
    return xr.Dataset(
        {
            "rate": (
                ("level", "drive"),
                rng.random((3, 4)),
                {"units": "Hz", "long_name": "firing rate"},
            ),
            "responded": (
                ("level",),
                np.array([1, 0, 1], dtype=np.int8),
                {"units": "1", "long_name": "flag"},
            ),
        },
        coords={
            "level": ("level", [0.0, 0.5, 1.0], {"units": "1", "long_name": "modulator level"}),
            "drive": (
                "drive",
                [0.1, 0.2, 0.3, 0.4],
                {"units": "nA", "long_name": "injected current"},
            ),
        },
        attrs={
            **results.provenance({"seed": 0, "levels": (0.0, 0.5, 1.0)}, title="test result"),
            "n_repeats": 3,
        },
    )


@pytest.fixture
def result_tree(result_ds: xr.Dataset) -> xr.DataTree:
    """A DataTree with provenance at the root and two model groups."""
    body = result_ds.drop_attrs(deep=False)
    trials = xr.Dataset(
        {"context": ("trial", np.array([0, 1, 1, 0]), {"units": "1", "long_name": "task context"})},
        coords={"trial": ("trial", np.arange(4), {"units": "1", "long_name": "trial index"})},
        attrs=result_ds.attrs,
    )
    return xr.DataTree.from_dict({"/": trials, "/rate": body, "/spiking": body})


@pytest.fixture(scope="session")
def task_switching_run(tmp_path_factory) -> tuple:
    """``neuromod run task-switching --quick`` once: (first.nc, printed output). Session-scoped: the
    comparison tests and the README examples share it (~30 s)."""
    from typer.testing import CliRunner

    from neuromod.cli import app

    folder = tmp_path_factory.mktemp("task_switching")
    first = folder / "first.nc"
    res = CliRunner().invoke(app, [*_QUICK_ARGS, str(first)])
    assert res.exit_code == 0, res.output
    return first, res.output


_QUICK_ARGS = ["run", "task-switching", "--quick", "--no-progress", "--out"]


@pytest.fixture(scope="session")
def task_switching_runs(task_switching_run, tmp_path_factory) -> tuple:
    """``neuromod run task-switching --quick`` twice, same seed: (first.nc, second.nc, printed output).

    The second run is a separate Python process with another string-hash seed, so "same seed, identical
    file" is checked across processes (set and dict orders, memory layout), not only within one.
    """
    import os
    import subprocess
    import sys

    first, output = task_switching_run
    second = tmp_path_factory.mktemp("task_switching_second") / "second.nc"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    command = [sys.executable, "-m", "neuromod.cli", *_QUICK_ARGS, str(second)]
    proc = subprocess.run(command, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return first, second, output
