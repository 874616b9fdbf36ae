"""Helpers of the sweep tests: compare stores (timing fields aside), run the command line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import xarray as xr

from neuromod import results

#: Entries of a sweep's index that record when, where and in which run a point ran, not what it gave.
TIMING_VARS = ("wall_s", "worker", "run_id")
TIMING_ATTRS = ("created", "history", "run_id")


def _comparable(tree: xr.DataTree, *, attempts: bool = True) -> xr.DataTree:
    """A loaded sweep store without its timing fields (and without ``attempts`` if `attempts` is False)."""
    drop = [*TIMING_VARS, *(() if attempts else ("attempts",))]
    out = tree.copy()
    root = out.to_dataset(inherit=False).drop_vars(drop)
    root.attrs = {k: v for k, v in root.attrs.items() if k not in TIMING_ATTRS}
    out.dataset = root
    for node in out.subtree:
        if node is not out:
            node.attrs = {k: v for k, v in node.attrs.items() if k not in TIMING_ATTRS}
    return out


def _neuromod_cli(*args: str, cwd: Path, env: dict[str, str] | None = None, **kwargs) -> subprocess.Popen:
    """Start ``neuromod ARGS`` in its own process group (so a test can kill it with all its workers)."""
    return subprocess.Popen(
        [sys.executable, "-m", "neuromod.cli", *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        **kwargs,
    )


@pytest.fixture
def probe_spec():
    """A 12-point sweep of the probe experiment."""
    return {
        "experiment": "sweep-probe",
        "seed": 1,
        "seeds": 2,
        "axes": {"value": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]},
        "fixed": {"duration_s": 0.0},
    }


@pytest.fixture
def comparable():
    """``comparable(tree, attempts=True)``: a loaded sweep store without its timing fields."""
    return _comparable


@pytest.fixture
def neuromod_cli():
    """``neuromod_cli(*args, cwd=...)``: ``neuromod ARGS`` started in its own process group."""
    return _neuromod_cli


@pytest.fixture
def load_sweep():
    """``load_sweep(path)``: :func:`neuromod.results.load` of a sweep store (a DataTree)."""

    def load(path: Path) -> xr.DataTree:
        tree = results.load(path)
        assert isinstance(tree, xr.DataTree)
        return tree

    return load
