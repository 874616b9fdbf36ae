"""The task-switching analysis script: saved result -> behaviour tables and figures.

Every number is checked against a recomputation with numpy from the file's per-trial data: mean RTs of
correct responses, switch minus repeat with the session's first trial left out (Monsell 2003), Wilson (1927)
score intervals written out here from the formula, and the trial-level regression's point estimates by
least squares (``rt ~ switch + prep + switch:prep + congruent + context`` with ``prep = exp(-CSI / tau)``,
the coherence fixed). The result's rate model ran only the table's first trials (tests/analysis/conftest.py):
its measures use those trials.
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
    "switch_cost_estimates.csv",
    "preparation_fits.csv",
    "model_contrasts.csv",
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
    """Per model: the file's per-trial arrays (numpy) over the trials it ran (independent of the measures)."""
    tree = results.load(saved)
    root = tree.to_dataset(inherit=False)
    table = {k: root[k].values for k in ("is_switch", "is_congruent", "is_first", "csi_ms", "context")}
    out = {}
    for m in tree.nm.config["models"]:
        group = tree[m].to_dataset(inherit=False)
        ran = group["ran"].values.astype(bool) if "ran" in group else np.ones(root.sizes["trial"], dtype=bool)
        out[m] = {k: v[ran] for k, v in {**table, **{k: group[k].values for k in ("correct", "rt")}}.items()}
    return out


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
        if np.isfinite(row.rt_cost_low):  # (undefined with a single RT in a cell)
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


@pytest.fixture(scope="module")
def counts(saved) -> tuple[int, int]:
    """(trials in the table, trials the rate model ran: its max_trials)."""
    config = results.load(saved).nm.config
    return config["n_trials"], config["max_trials"]["rate"]


def test_the_limited_model_counts_the_trials_it_ran(trials, counts):
    n_trials, n_rate = counts
    assert n_rate < n_trials
    assert trials["rate"]["rt"].size == n_rate and trials["se"]["rt"].size == n_trials


@pytest.mark.parametrize("model", ["se", "rate"])
def test_regression_estimates_are_least_squares_on_the_trials(written, trials, saved, model):
    out, _ = written
    df = pd.read_csv(out / "switch_cost_estimates.csv")
    s = results.load(saved)["summary"].to_dataset(inherit=False)
    tau = float(s.attrs["tau_ms"])
    rows = df[df.model == model].set_index(["method", "quantity"])
    # every row is the summary's estimate, with its interval and whether the interval excludes 0
    for (method, quantity), r in rows.iterrows():
        var = quantity if method == "regression" else quantity.replace("rt_", "rt_prep_fixed_")
        for col, suffix in (("estimate", ""), ("se", "_se"), ("low", "_low"), ("high", "_high")):
            np.testing.assert_allclose(
                r[col], float(s[var + suffix].sel(model=model)), rtol=1e-12, equal_nan=True
            )
        if np.isfinite(r.low):
            assert r.resolved == int(r.low > 0 or r.high < 0)
    assert set(rows.index.get_level_values(0)) == {"regression", "fixed-tau fit"}
    # the RT regression's point estimates, by least squares on the model's correct non-first trials
    t = trials[model]
    keep = ~t["is_first"].astype(bool)
    csi = t["csi_ms"][keep]
    ok = t["correct"][keep].astype(bool) & np.isfinite(t["rt"][keep])
    sw, prep = t["is_switch"][keep].astype(float), np.exp(-csi / tau)
    x = np.column_stack(
        [np.ones(keep.sum()), sw, prep, sw * prep, t["is_congruent"][keep], t["context"][keep]]
    )
    beta = np.linalg.lstsq(x[ok], t["rt"][keep][ok], rcond=None)[0]
    e_min, e_max = np.exp(-csi.min() / tau), np.exp(-csi.max() / tau)
    expected = {
        "rt_cost_shortest": beta[1] + beta[3] * e_min,
        "rt_amplitude": beta[3],
        "rt_residual": beta[1],
        "rt_cost_drop": beta[3] * (e_min - e_max),
    }
    for quantity, value in expected.items():
        np.testing.assert_allclose(
            rows.loc[("regression", quantity), "estimate"], value, rtol=1e-6, atol=1e-6
        )


def test_model_contrasts_are_the_summarys(written, saved):
    out, _ = written
    df = pd.read_csv(out / "model_contrasts.csv")
    s = results.load(saved)["summary"].to_dataset(inherit=False)
    assert len(df) == s.sizes["pair"] * s.sizes["quantity"] and set(df.pair) == {"se - rate"}
    for r in df.itertuples():
        c = s.sel(pair=r.pair, quantity=r.quantity)
        np.testing.assert_allclose(
            [r.contrast, r.low, r.high], [float(c[v]) for v in ("contrast", "contrast_low", "contrast_high")]
        )
        assert r.verdict == str(c["contrast_verdict"].values)
        assert (r.model_a, r.model_b) == ("se", "rate") and r.margin == s.attrs["equivalence_margin_ms"]


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


def test_markdown_table_lists_models_and_values(written, trials, counts):
    out, _ = written
    text = (out / "task_switching_table.md").read_text()
    n_trials, n_rate = counts
    header = text.splitlines()[0]
    assert header == "| measure | se | rate |"
    line = next(x for x in text.splitlines() if x.startswith("| accuracy |"))
    for m in ("se", "rate"):
        assert f"{trials[m]['correct'].mean():.2f} [" in line
    assert f"| trials run | {n_trials} | {n_rate} of {n_trials} |" in text
    assert "| se - rate | rt_cost_shortest |" in text and "| se - rate | rt_cost_drop |" in text


def test_refuses_other_results(tmp_path, result_ds):
    path = results.save(result_ds, tmp_path / "other.nc")
    proc = _run(path, "--out", tmp_path / "o")
    assert proc.returncode == 1
    assert "is not a task-switching result" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()
