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
def task_switching_runs(tmp_path_factory) -> tuple:
    """``neuromod run task-switching --quick`` twice, same seed: (first.nc, second.nc, printed output).

    Session-scoped: the comparison tests and the README examples share it (each run takes ~20 s).
    """
    from typer.testing import CliRunner

    from neuromod.cli import app

    folder = tmp_path_factory.mktemp("task_switching")
    runs = []
    for name in ("first", "second"):
        out = folder / f"{name}.nc"
        res = CliRunner().invoke(
            app, ["run", "task-switching", "--quick", "--no-progress", "--out", str(out)]
        )
        assert res.exit_code == 0, res.output
        runs.append((out, res.output))
    return runs[0][0], runs[1][0], runs[0][1]
