"""The cross-level comparison script: saved task-switching results -> figure, gain table, correspondence.

Checked against the file itself: the gain ratios of each model's ``gain_curves`` group and the gain
matching, accuracies recomputed with numpy from the per-trial data (the trials each model ran) with Wilson
(1927) score intervals written out here, the equivalence verdict (two one-sided tests, Schuirmann 1987)
recomputed from those intervals and the script's margin, and the paired verdicts read from the run's
summary.
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
VERDICTS = ("equivalent", "different", "inconclusive", "-")


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
        # the gain matching: the measured ratio against the SE gate's target
        s = tree["summary"].to_dataset(inherit=False)
        target = s["gain_match_target"].sel(population=list(rows.index)).values
        np.testing.assert_allclose(rows["gain_match_target"].to_numpy(), target, rtol=1e-12)
        np.testing.assert_allclose(
            rows["gain_match_error"].to_numpy(), rows["gain_ratio"] / target - 1, rtol=1e-9
        )
        release = s["release"].sel(model=m).transpose("population", "context").values
        np.testing.assert_array_equal(rows[["release_a", "release_b"]].to_numpy(), release)


def _tost(diff: float, se: float, margin: float) -> str:
    """Two one-sided tests at alpha 0.05, written out: the verdict of a difference with standard error se."""
    q90, q95 = 1.6448536269514722, 1.959963984540054
    if diff - q90 * se > -margin and diff + q90 * se < margin:
        return "equivalent"
    if abs(diff) > q95 * se:
        return "different"
    return "inconclusive"


def test_correspondence_lists_models_and_equivalence(single, saved):
    import importlib.util

    spec = importlib.util.spec_from_file_location("compare_models", SCRIPT)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    out, _ = single
    lines = (out / "correspondence.md").read_text().splitlines()
    header = next(x for x in lines if x.startswith("| measure"))
    assert header == "| measure | se | rate | rate vs se |"
    tree = results.load(saved)
    s = tree["summary"].to_dataset(inherit=False)
    acc, se = {}, {}
    for m in MODELS:
        group = tree[m].to_dataset(inherit=False)
        ran = (
            group["ran"].values.astype(bool) if "ran" in group else np.ones(group.sizes["trial"], dtype=bool)
        )
        correct = group["correct"].values[ran]  # the trials the model ran
        low, high = _wilson(correct.sum(), correct.size)
        acc[m], se[m] = correct.mean(), (high - low) / (2 * 1.959963984540054)
        row = next(x for x in lines if x.startswith("| accuracy |")).strip("|").split("|")
        cell = row[1 + MODELS.index(m)]
        assert cell.strip() == f"{acc[m]:.2f} [{low:.2f}, {high:.2f}]"
    expected = _tost(acc["rate"] - acc["se"], np.hypot(se["rate"], se["se"]), script.MARGINS["accuracy"])
    assert row[-1].strip() == expected
    # the primary RT quantities: the run's paired contrast on the trials both models ran
    for label, quantity in (
        ("RT switch cost at the shortest CSI", "rt_cost_shortest"),
        ("  shortest minus", "rt_cost_drop"),
    ):
        line = next(x for x in lines if x.startswith(f"| {label}"))
        paired = str(s["contrast_verdict"].sel(pair="se - rate", quantity=quantity).values)
        assert line.rstrip().endswith(f"| {paired} (paired) |"), line
    for line in lines:
        if line.startswith("| f-I class"):
            assert line.rstrip().endswith(("same |", "differs |", "- |"))
        elif line.startswith("| ") and not line.startswith(("| measure", "| pair", "| se - rate")):
            assert line.rstrip(" |").split("|")[-1].strip().replace(" (paired)", "") in VERDICTS, line
    margin = s.attrs["equivalence_margin_ms"]
    text = "\n".join(lines)
    assert f"rt_cost_shortest {margin:g}" in text and "Paired contrasts on the trials both models ran" in text
    for q in ("rt_cost_shortest", "rt_cost_drop"):
        c = s.sel(pair="se - rate", quantity=q)
        assert f"| se - rate | {q} | {float(c['contrast']):.0f} [" in text


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
        group = tree[r.model].to_dataset(inherit=False)
        ran = (
            group["ran"].values.astype(bool) if "ran" in group else np.ones(group.sizes["trial"], dtype=bool)
        )
        np.testing.assert_allclose(r.accuracy, group["correct"].values[ran].mean(), atol=1e-12)
        assert r.n_trials == ran.sum()
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
