"""The task-switching analysis script: saved result -> behaviour tables and figures.

Every number is checked against a recomputation with numpy from the file's per-trial data: mean RTs of
correct responses, switch minus repeat with the session's first trial left out (Monsell 2003), and Wilson
(1927) score intervals written out here from the formula.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from neuromod import results

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "analysis" / "task_switching.py"
OUTPUTS = (
    "behaviour_by_condition.csv",
    "switch_costs.csv",
    "preparation_fits.csv",
    "switch_cost_vs_csi.png",
    "accuracy_by_condition.png",
    "task_switching_table.md",
)
TOL = 1e-9


def _run(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="module")
def saved(task_switching_file) -> Path:
    return task_switching_file


@pytest.fixture(scope="module")
def written(saved, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    out = tmp_path_factory.mktemp("out") / "figures"
    return out, _run(saved, "--out", out)


@pytest.fixture(scope="module")
def trials(saved) -> dict:
    """Per model: the file's per-trial arrays (numpy), independent of neuromod.measures."""
    tree = results.load(saved)
    table = {k: tree[k].values for k in ("is_switch", "is_congruent", "is_first", "csi_ms")}
    return {
        m: {**table, **{k: tree[m][k].values for k in ("correct", "rt")}} for m in tree.nm.config["models"]
    }


def _wilson(k: float, n: float, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson (1927) score interval."""
    p = k / n
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z / (1 + z**2 / n) * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2))
    return centre - half, centre + half


def test_writes_every_output(written):
    out, proc = written
    assert proc.returncode == 0, proc.stderr
    for name in OUTPUTS:
        assert f"wrote {out / name}" in proc.stdout
    for name in OUTPUTS:
        if name.endswith(".png"):
            assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name


@pytest.mark.parametrize("model", ["se", "rate"])
def test_switch_costs_match_the_trials(written, trials, model):
    out, _ = written
    df = pd.read_csv(out / "switch_costs.csv", dtype={"csi_ms": str})
    t = trials[model]
    usable = ~t["is_first"].astype(bool)
    correct = t["correct"].astype(bool) & np.isfinite(t["rt"])
    switch = t["is_switch"].astype(bool)
    csis = np.unique(t["csi_ms"])
    assert sorted(df[df.model == model].csi_ms) == sorted([f"{c:g}" for c in csis] + ["all"])
    for label, cell in [("all", usable)] + [(f"{c:g}", usable & (t["csi_ms"] == c)) for c in csis]:
        row = df[(df.model == model) & (df.csi_ms == label)].iloc[0]
        rt_s, rt_r = t["rt"][cell & correct & switch], t["rt"][cell & correct & ~switch]
        expected = rt_s.mean() - rt_r.mean() if rt_s.size and rt_r.size else np.nan
        np.testing.assert_allclose(row.rt_cost, expected, atol=TOL, equal_nan=True, err_msg=label)
        err_s = 1 - t["correct"][cell & switch].mean()
        err_r = 1 - t["correct"][cell & ~switch].mean()
        np.testing.assert_allclose(row.error_cost, err_s - err_r, atol=TOL, err_msg=label)
        assert row.n_switch == (cell & switch).sum() and row.n_repeat == (cell & ~switch).sum()
        if np.isfinite(row.rt_cost):
            assert row.rt_cost_low <= row.rt_cost <= row.rt_cost_high


@pytest.mark.parametrize("model", ["se", "rate"])
def test_accuracy_cells_match_the_trials(written, trials, model):
    out, _ = written
    df = pd.read_csv(out / "behaviour_by_condition.csv", dtype={"csi_ms": str})
    t = trials[model]
    rows = df[df.model == model]
    assert len(rows) == 2 * 2 * (np.unique(t["csi_ms"]).size + 1)
    for row in rows.itertuples():
        cell = (
            ~t["is_first"].astype(bool)
            & (t["is_switch"].astype(int) == row.switch)
            & (t["is_congruent"].astype(int) == row.congruent)
        )
        if row.csi_ms != "all":
            cell &= t["csi_ms"] == float(row.csi_ms)
        n, k = cell.sum(), t["correct"][cell].sum()
        assert row.n_trials == n
        if n == 0:
            assert np.isnan(row.accuracy)
            continue
        np.testing.assert_allclose(row.accuracy, k / n, atol=TOL)
        np.testing.assert_allclose([row.accuracy_low, row.accuracy_high], _wilson(k, n), atol=1e-9)
        rt = t["rt"][cell & t["correct"].astype(bool)]
        np.testing.assert_allclose(row.mean_rt, rt.mean() if rt.size else np.nan, atol=TOL, equal_nan=True)
        assert row.n_rt == rt.size


def test_preparation_fits_and_identified_rule(written, saved):
    out, _ = written
    df = pd.read_csv(out / "preparation_fits.csv")
    s = results.load(saved)["summary"].to_dataset(inherit=False)
    csi = s["csi"].values
    assert len(df) == 4 and set(df.cost) == {"rt", "error"}
    for row in df.itertuples():
        for key in ("amplitude", "tau_eff", "residual", "amplitude_se", "tau_eff_se"):
            ref = float(s[f"{row.cost}_prep_{key}"].sel(model=row.model))
            np.testing.assert_allclose(getattr(row, key), ref, rtol=1e-12, equal_nan=True)
        # the rule, written out: finite, |A| > 2 se(A), tau > 2 se(tau), tau in [min CSI / 10, 10 max CSI]
        finite = np.all(
            np.isfinite([row.amplitude, row.tau_eff, row.residual, row.amplitude_se, row.tau_eff_se])
        )
        rule = bool(
            finite
            and abs(row.amplitude) > 2 * row.amplitude_se
            and row.tau_eff > 2 * row.tau_eff_se
            and csi[csi > 0].min() / 10 <= row.tau_eff <= 10 * csi.max()
        )
        assert row.identified == int(rule)


def test_markdown_table_lists_models_and_values(written, trials):
    out, _ = written
    text = (out / "task_switching_table.md").read_text()
    header = text.splitlines()[0]
    assert header == "| measure | se | rate |"
    line = next(x for x in text.splitlines() if x.startswith("| accuracy |"))
    for m in ("se", "rate"):
        assert f"{trials[m]['correct'].mean():.2f} [" in line


def test_refuses_other_results(tmp_path, result_ds):
    path = results.save(result_ds, tmp_path / "other.nc")
    proc = _run(path, "--out", tmp_path / "o")
    assert proc.returncode == 1
    assert "is not a task-switching result" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()
