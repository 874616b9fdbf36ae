"""The cross-level comparison script: saved task-switching results -> figure, gain table, correspondence.

Checked against the file itself: the gain ratios of each model's ``gain_curves`` group, accuracies
recomputed with numpy from the per-trial data with Wilson (1927) score intervals written out here, and the
interval-overlap verdict (Schenker & Gentleman 2001) recomputed from those intervals.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from neuromod import results

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "analysis" / "compare_models.py"
MODELS = ("se", "rate")
PNG = b"\x89PNG\r\n\x1a\n"


def _run(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True, timeout=300
    )


def _wilson(k: float, n: float, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson (1927) score interval."""
    p = k / n
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z / (1 + z**2 / n) * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2))
    return centre - half, centre + half


@pytest.fixture(scope="module")
def saved(task_switching_file) -> Path:
    return task_switching_file


@pytest.fixture(scope="module")
def single(saved, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    out = tmp_path_factory.mktemp("single") / "figures"
    return out, _run(saved, "--out", out)


def test_single_file_outputs(single):
    out, proc = single
    assert proc.returncode == 0, proc.stderr
    for name in ("comparison.png", "gain_measures.csv", "correspondence.md"):
        assert f"wrote {out / name}" in proc.stdout
    assert (out / "comparison.png").read_bytes()[:8] == PNG
    assert not (out / "summary_across_runs.csv").exists()


def test_gain_measures_match_the_gain_curves(single, saved):
    out, _ = single
    df = pd.read_csv(out / "gain_measures.csv")
    tree = results.load(saved)
    assert len(df) == len(MODELS) * 4
    for m in MODELS:
        gc = tree[f"{m}/gain_curves"].to_dataset(inherit=False).sel(level=1.0)
        rows = df[df.model == m].set_index("population")
        for pop in gc["condition"].values:
            r = rows.loc[pop]
            np.testing.assert_allclose(r.gain_ratio, float(gc["gain_ratio"].sel(condition=pop)), rtol=1e-12)
            np.testing.assert_allclose(
                r.threshold_shift_se, float(gc["threshold_shift_se"].sel(condition=pop)), rtol=1e-12
            )
            assert r["class"] == str(gc["modulation_class"].sel(condition=pop).values)
        # the relative profile is the profile over the model's largest gain
        prof = rows[["gain_profile_a", "gain_profile_b"]].to_numpy()
        rel = rows[["relative_gain_profile_a", "relative_gain_profile_b"]].to_numpy()
        np.testing.assert_allclose(rel, prof / prof.max(), rtol=1e-12)


def test_correspondence_lists_models_and_overlap(single, saved):
    out, _ = single
    lines = (out / "correspondence.md").read_text().splitlines()
    header = next(x for x in lines if x.startswith("| measure"))
    assert header == "| measure | se | rate | rate vs se |"
    tree = results.load(saved)
    bounds = {}
    for m in MODELS:
        correct = tree[m]["correct"].values
        bounds[m] = _wilson(correct.sum(), correct.size)
    overlap = bounds["rate"][0] <= bounds["se"][1] and bounds["se"][0] <= bounds["rate"][1]
    row = next(x for x in lines if x.startswith("| accuracy |")).strip("|").split("|")
    assert row[-1].strip() == ("agrees" if overlap else "differs")
    for m, cell in zip(MODELS, row[1:3], strict=True):
        assert cell.strip().startswith(f"{tree[m]['correct'].values.mean():.2f} [{bounds[m][0]:.2f}, ")
    assert all(x.rstrip().endswith(("agrees |", "differs |", "- |")) for x in lines if x.startswith("| f-I"))


def test_two_files_stack_runs(saved, tmp_path):
    other = tmp_path / "run_b.nc"
    shutil.copy(saved, other)
    out = tmp_path / "figures"
    proc = _run(saved, other, "--out", out)
    assert proc.returncode == 0, proc.stderr
    for name in ("comparison_run_a.png", "comparison_run_b.png"):
        assert (out / name).read_bytes()[:8] == PNG
    df = pd.read_csv(out / "summary_across_runs.csv")
    assert sorted(df.run.unique()) == ["run_a", "run_b"]
    assert len(df) == 2 * len(MODELS)
    tree = results.load(saved)
    config = tree.nm.config
    assert (df.tau_ms == config["tau_ms"]).all() and (df.seed == config["seed"]).all()
    for r in df.itertuples():
        np.testing.assert_allclose(r.accuracy, tree[r.model]["correct"].values.mean(), atol=1e-12)
    gains = pd.read_csv(out / "gain_measures.csv")
    assert gains.groupby("run").size().to_dict() == {"run_a": 8, "run_b": 8}
    text = (out / "correspondence.md").read_text()
    assert "## run_a" in text and "## run_b" in text


def test_refuses_any_other_file_and_writes_nothing(saved, tmp_path, result_ds):
    bad = results.save(result_ds, tmp_path / "other.nc")
    out = tmp_path / "o"
    proc = _run(saved, bad, "--out", out)
    assert proc.returncode == 1
    assert proc.stderr.strip().startswith(f"error: {bad} is not a task-switching result")
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not out.exists()
