"""Tests of the task-switching measures against hand-computed references.

Independent references: scipy's Wilson interval (``binomtest(...).proportion_ci("wilson")``), Student-t
interval (``stats.t.interval``) and Welch test (``ttest_ind(equal_var=False).confidence_interval()``);
Newcombe (1998, Stat. Med. 17:873, Table II, example (a): 56/70 vs 48/80, method 10: 0.0524 to 0.3339); means
and proportions computed by hand on small synthetic trial tables; exponential preparation curves with known
A, tau_eff and residual.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from scipy import stats

from neuromod import results
from neuromod.measures import (
    congruency_effect,
    fit_preparation,
    switch_cost,
    switching_behaviour,
    trial_data,
)
from neuromod.measures.switching import _newcombe


def _table(is_switch, is_congruent, csi, correct, rt, choice=None) -> xr.Dataset:
    correct = np.asarray(correct, dtype=np.int8)
    choice = np.where(correct == 1, 1, 2) if choice is None else np.asarray(choice)
    a = {"units": "1", "long_name": "x"}
    return xr.Dataset(
        {
            "is_switch": ("trial", np.asarray(is_switch, dtype=bool), a),
            "is_congruent": ("trial", np.asarray(is_congruent, dtype=bool), a),
            "csi_ms": ("trial", np.asarray(csi, dtype=float), {"units": "ms", "long_name": "csi"}),
            "correct": ("trial", correct, a),
            "choice": ("trial", choice.astype(np.int8), a),
            "rt": ("trial", np.asarray(rt, dtype=float), {"units": "ms", "long_name": "rt"}),
        }
    )


@pytest.fixture
def small() -> xr.Dataset:
    """12 trials: 2 CSIs x switch/repeat x 3 trials; one error and one non-response."""
    return _table(
        is_switch=[0, 0, 0, 1, 1, 1, 0, 0, 0, 1, 1, 1],
        is_congruent=[1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0],
        csi=[100] * 6 + [800] * 6,
        correct=[1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1],
        rt=[300, 310, 320, 400, 500, np.nan, 290, 300, 310, 330, 340, 350],
        choice=[1, 1, 1, 1, 2, 0, 1, 1, 1, 1, 1, 1],
    )


@pytest.fixture(scope="module")
def synthetic() -> xr.Dataset:
    """A larger random table with a known RT switch cost (seeded)."""
    rng = np.random.default_rng(7)
    n = 600
    sw = rng.random(n) < 0.5
    cg = rng.random(n) < 0.5
    csi = rng.choice([100.0, 500.0], n)
    correct = rng.random(n) < np.where(sw & ~cg, 0.8, 0.95)
    rt = 300 + 60 * sw + rng.normal(0, 40, n)
    return _table(sw, cg, csi, correct, rt)


def test_behaviour_by_switch_and_csi_matches_hand_values(small):
    out = switching_behaviour(small, by=("is_switch", "csi_ms"))
    assert out["accuracy"].dims == ("switch", "csi")
    assert out["csi"].values.tolist() == [100.0, 800.0]
    np.testing.assert_allclose(out["accuracy"].values, [[1.0, 1.0], [1 / 3, 1.0]], rtol=0, atol=1e-12)
    np.testing.assert_allclose(out["p_response"].values, [[1.0, 1.0], [2 / 3, 1.0]], atol=1e-12)
    # mean RT of correct responses only: the error (500 ms) and the miss are left out
    np.testing.assert_allclose(out["mean_rt"].values, [[310.0, 300.0], [400.0, 340.0]], atol=1e-12)
    assert out["n_rt"].values.tolist() == [[3, 3], [1, 3]]
    # intervals: scipy's Wilson interval and Student t interval
    ci = stats.binomtest(1, 3).proportion_ci(0.95, method="wilson")
    np.testing.assert_allclose(
        [out["accuracy_low"][1, 0], out["accuracy_high"][1, 0]], [ci.low, ci.high], atol=1e-12
    )
    lo, hi = stats.t.interval(0.95, 2, loc=340.0, scale=stats.sem([330.0, 340.0, 350.0]))
    np.testing.assert_allclose([out["mean_rt_low"][1, 1], out["mean_rt_high"][1, 1]], [lo, hi], atol=1e-9)
    assert np.isnan(out["mean_rt_low"][1, 0])  # one correct RT: no interval
    results.validate(out, provenance=False)


def test_behaviour_default_grid_and_pooling(small):
    full = switching_behaviour(small)
    assert full["accuracy"].dims == ("switch", "congruent", "csi")
    assert int(full["n_trials"].sum()) == 12
    pooled = switching_behaviour(small, by=())
    assert pooled["accuracy"].dims == ()
    assert float(pooled["accuracy"]) == pytest.approx(10 / 12, abs=1e-12)


def test_switch_cost_matches_welch_and_hand_error_rates(synthetic):
    out = switch_cost(synthetic)
    assert out["rt_cost"].dims == ("csi",)
    for csi in (100.0, 500.0):
        sel = synthetic.isel(trial=synthetic.csi_ms.values == csi)
        ok = sel.correct.values == 1
        sw = sel.is_switch.values.astype(bool)
        a, b = sel.rt.values[ok & sw], sel.rt.values[ok & ~sw]
        res = stats.ttest_ind(a, b, equal_var=False)
        ci = res.confidence_interval(0.95)
        c = out.sel(csi=csi)
        assert float(c["rt_cost"]) == pytest.approx(a.mean() - b.mean(), abs=1e-9)
        assert float(c["rt_cost_low"]) == pytest.approx(ci.low, abs=1e-9)
        assert float(c["rt_cost_high"]) == pytest.approx(ci.high, abs=1e-9)
        err_s, err_r = 1 - sel.correct.values[sw].mean(), 1 - sel.correct.values[~sw].mean()
        assert float(c["error_cost"]) == pytest.approx(err_s - err_r, abs=1e-12)
        assert float(c["error_rate_switch"]) == pytest.approx(err_s, abs=1e-12)
        assert float(c["error_cost_low"]) < float(c["error_cost"]) < float(c["error_cost_high"])
    # the simulated cost is 60 ms: every interval covers it
    assert np.all((out["rt_cost_low"] < 60) & (out["rt_cost_high"] > 60))
    results.validate(out, provenance=False)


def test_newcombe_interval_reproduces_published_example():
    d, low, high = _newcombe(56, 70, 48, 80, 0.95)
    assert float(d) == pytest.approx(0.2, abs=1e-12)
    assert float(low) == pytest.approx(0.0524, abs=5e-5)
    assert float(high) == pytest.approx(0.3339, abs=5e-5)


def test_switch_cost_pooled_on_small_table(small):
    out = switch_cost(small, by=())
    # correct switch RTs 400, 330, 340, 350 vs correct repeat RTs 300..320, 290..310
    assert float(out["rt_cost"]) == pytest.approx(355.0 - 305.0, abs=1e-12)
    assert float(out["error_cost"]) == pytest.approx(2 / 6 - 0.0, abs=1e-12)
    assert out["n_switch"].item() == 6 and out["n_repeat"].item() == 6


def test_congruency_effect_sign(synthetic):
    out = congruency_effect(synthetic)
    assert out["error_effect"].dims == ("switch",)
    sw = synthetic.is_switch.values.astype(bool)
    cg = synthetic.is_congruent.values.astype(bool)
    err = 1 - synthetic.correct.values
    expected = err[sw & ~cg].mean() - err[sw & cg].mean()
    assert float(out["error_effect"].sel(switch=1)) == pytest.approx(expected, abs=1e-12)
    assert float(out["error_effect_low"].sel(switch=1)) > 0  # 20 % vs 5 % errors
    results.validate(out, provenance=False)


def _tree(ds: xr.Dataset) -> xr.DataTree:
    table = ds[["is_switch", "is_congruent", "csi_ms"]]
    beh = ds[["choice", "correct", "rt"]]
    other = beh.copy()
    other["rt"] = beh["rt"] + 100.0 * ds["is_switch"]
    return xr.DataTree.from_dict({"/": table, "/m1": beh, "/m2": other})


def test_tree_input_model_selection_and_model_dimension(synthetic):
    tree = _tree(synthetic)
    one = switch_cost(tree, model="m1")
    xr.testing.assert_allclose(one, switch_cost(synthetic))
    both = switch_cost(tree)
    assert both["model"].values.tolist() == ["m1", "m2"]
    assert both["rt_cost"].dims == ("model", "csi")
    np.testing.assert_allclose(
        both["rt_cost"].sel(model="m2") - both["rt_cost"].sel(model="m1"), 100.0, atol=1e-9
    )
    merged = trial_data(tree, "m2")
    assert {"is_switch", "rt", "correct"} <= set(merged.data_vars)
    results.validate(both, provenance=False)


def test_errors(small, synthetic):
    with pytest.raises(ValueError, match="lacks the variable"):
        switch_cost(small.drop_vars("rt"))
    with pytest.raises(ValueError, match="must not contain 'is_switch'"):
        switch_cost(small, by=("is_switch",))
    with pytest.raises(ValueError, match="model='m3' is not a model group"):
        switch_cost(_tree(synthetic), model="m3")
    with pytest.raises(ValueError, match="applies to a DataTree"):
        switch_cost(small, model="rate")
    with pytest.raises(TypeError, match="sequence of trial-variable names"):
        switch_cost(small, by="csi_ms")
    with pytest.raises(ValueError, match=r"level=1\.5"):
        switching_behaviour(small, level=1.5)
    with pytest.raises(TypeError, match="Dataset or DataTree"):
        switch_cost([1, 2, 3])


CSI = np.array([100.0, 300.0, 600.0, 1000.0, 1500.0])


@pytest.mark.parametrize(("a", "tau", "residual"), [(150.0, 300.0, 20.0), (0.12, 500.0, 0.01)])
def test_fit_preparation_recovers_exact_parameters(a, tau, residual):
    cost = xr.DataArray(
        a * np.exp(-CSI / tau) + residual, dims="csi", coords={"csi": CSI}, attrs={"units": "ms"}
    )
    fit = fit_preparation(cost)
    assert float(fit["amplitude"]) == pytest.approx(a, rel=1e-6)
    assert float(fit["tau_eff"]) == pytest.approx(tau, rel=1e-6)
    assert float(fit["residual"]) == pytest.approx(residual, rel=1e-6, abs=1e-9)
    assert fit["tau_eff"].attrs["units"] == "ms" and fit["amplitude"].attrs["units"] == "ms"
    results.validate(fit, provenance=False)


def test_fit_preparation_with_noise_and_intervals_over_models():
    rng = np.random.default_rng(3)
    truth = {"amplitude": 150.0, "tau_eff": 300.0, "residual": 20.0}
    sigma = 3.0
    csi = np.array([50.0, 100.0, 200.0, 300.0, 450.0, 600.0, 800.0, 1000.0, 1500.0])
    y = truth["amplitude"] * np.exp(-csi / truth["tau_eff"]) + truth["residual"]
    noisy = y[None] + rng.normal(0, sigma, (2, csi.size))
    half = 1.959963984540054 * sigma
    ds = xr.Dataset(
        {
            "rt_cost": (("model", "csi"), noisy, {"units": "ms", "long_name": "cost"}),
            "rt_cost_low": (("model", "csi"), noisy - half, {"units": "ms", "long_name": "low"}),
            "rt_cost_high": (("model", "csi"), noisy + half, {"units": "ms", "long_name": "high"}),
        },
        coords={"model": ["x", "y"], "csi": csi},
        attrs={"level": 0.95},
    )
    fit = fit_preparation(ds)
    assert fit["amplitude"].dims == ("model",)
    for name, value in truth.items():
        z = np.abs(fit[name] - value) / fit[f"{name}_se"]
        assert np.all(z < 4), f"{name}: {fit[name].values} vs {value} (se {fit[f'{name}_se'].values})"
        assert np.all(fit[f"{name}_se"] > 0)
    # absolute sigma: the SE of the residual is of the order of the noise over sqrt(n)
    assert np.all(fit["residual_se"] < 3 * sigma)


def test_fit_preparation_too_few_points_and_errors():
    cost = xr.DataArray([50.0, np.nan, 10.0], dims="csi", coords={"csi": [100.0, 300.0, 600.0]})
    assert np.isnan(float(fit_preparation(cost)["tau_eff"]))
    with pytest.raises(ValueError, match="dim='csi_ms' is not a dimension"):
        fit_preparation(cost, dim="csi_ms")
    with pytest.raises(ValueError, match="variable='error' is not in the dataset"):
        fit_preparation(xr.Dataset({"rt_cost": cost}), variable="error")


def test_first_trial_is_neither_switch_nor_repeat():
    """The session's first trial has no preceding task: it must not count as a repeat."""
    from neuromod.measures import switch_cost

    ds = xr.Dataset(
        {
            "is_switch": ("trial", [False, False, False, True, True]),
            "is_first": ("trial", [True, False, False, False, False]),
            "choice": ("trial", [2, 1, 1, 1, 1]),
            "correct": ("trial", [0, 1, 1, 1, 1]),
            "rt": ("trial", [900.0, 300.0, 300.0, 400.0, 400.0]),
        }
    )
    cost = switch_cost(ds, by=())
    assert float(cost["rt_cost"]) == pytest.approx(100.0)
    assert float(cost["error_cost"]) == pytest.approx(0.0)  # the erroneous first trial is left out
    without = switch_cost(ds.drop_vars("is_first"), by=())
    assert float(without["error_cost"]) == pytest.approx(-1 / 3)  # counted as a repeat, it would bias it


def test_fit_preparation_identified_only_when_the_data_pin_the_curve_down():
    csi = np.array([100.0, 300.0, 600.0, 1000.0])
    rng = np.random.default_rng(4)
    attrs = {"units": "ms", "long_name": "RT switch cost"}

    def cost(values):
        return xr.DataArray(values, dims="csi", coords={"csi": csi}, attrs=attrs)

    clear = cost(150 * np.exp(-csi / 250) + 20 + rng.normal(0, 2, 4))
    assert int(fit_preparation(clear)["identified"]) == 1
    assert int(fit_preparation(clear, z=1e6)["identified"]) == 0  # a stricter z only removes it
    assert int(fit_preparation(cost(20 + rng.normal(0, 15, 4)))["identified"]) == 0  # flat and noisy


@pytest.mark.parametrize(
    ("tau", "identified"),
    [(250.0, 1), (20.0, 1), (3.0, 0), (5e3, 1), (2e4, 0)],  # range: [50 / 10, 10 x 1000] ms
)
def test_fit_preparation_tau_must_lie_within_reach_of_the_csis(tau, identified):
    # exact data: the standard errors vanish, so only the range rule can refuse the fit
    csi = np.array([0.0, 50.0, 100.0, 300.0, 600.0, 1000.0])
    cost = xr.DataArray(
        80 * np.exp(-csi / tau) + 20, dims="csi", coords={"csi": csi}, attrs={"units": "ms", "long_name": "c"}
    )
    fit = fit_preparation(cost)
    assert float(fit["tau_eff"]) == pytest.approx(tau, rel=1e-3)
    assert int(fit["identified"]) == identified


def test_fit_preparation_weighted_uses_the_given_z():
    # a weighted fit (bounds present) must apply the caller's z, not the interval's level
    csi = np.array([100.0, 300.0, 600.0, 1000.0])
    y = 150 * np.exp(-csi / 250) + 20
    ds = xr.Dataset(
        {
            "rt_cost": ("csi", y, {"units": "ms", "long_name": "RT switch cost"}),
            "rt_cost_low": ("csi", y - 10.0),
            "rt_cost_high": ("csi", y + 10.0),
        },
        coords={"csi": csi},
        attrs={"level": 0.95},
    )
    assert int(fit_preparation(ds)["identified"]) == 1
    assert int(fit_preparation(ds, z=1e6)["identified"]) == 0
    assert "> 1e+06 SE" in fit_preparation(ds, z=1e6)["identified"].attrs["long_name"]


# ------------------------------------------------------------------------------------------------------
# standard error of the RT cost, error RTs, and the fixed-tau preparation fit
# ------------------------------------------------------------------------------------------------------
def test_rt_cost_se_is_the_welch_standard_error(synthetic):
    out = switch_cost(synthetic, by=())
    ok = synthetic.correct.values == 1
    sw = synthetic.is_switch.values.astype(bool)
    res = stats.ttest_ind(synthetic.rt.values[ok & sw], synthetic.rt.values[ok & ~sw], equal_var=False)
    assert float(out["rt_cost_se"]) == pytest.approx(float(out["rt_cost"]) / res.statistic, rel=1e-10)
    assert out["rt_cost_se"].attrs["units"] == "ms"
    assert "rt_effect_se" in congruency_effect(synthetic)


def test_error_rt_matches_welch_and_hand_values(small):
    from neuromod.measures import error_rt

    # the only error with an RT is trial 4 (500 ms); the miss has none
    out = error_rt(small)
    assert np.isnan(float(out["rt_error_minus_correct_low"]))  # one error RT: no interval
    correct = small.rt.values[small.correct.values == 1]
    assert float(out["mean_rt_error"]) == 500.0 and int(out["n_error_rt"]) == 1
    assert float(out["mean_rt_correct"]) == pytest.approx(correct.mean())
    assert float(out["rt_error_minus_correct"]) == pytest.approx(500.0 - correct.mean())
    assert int(out["n_correct_rt"]) == correct.size


def test_error_rt_interval_and_models(synthetic):
    from neuromod.measures import error_rt

    ds = synthetic.copy()
    ds["rt"] = ds["rt"] + 50.0 * (1 - ds["correct"])  # errors are 50 ms slower
    out = error_rt(ds, by=("is_switch",))
    assert out["rt_error_minus_correct"].dims == ("switch",)
    for s in (0, 1):
        sel = ds.isel(trial=ds.is_switch.values == bool(s))
        e = sel.rt.values[sel.correct.values == 0]
        c = sel.rt.values[sel.correct.values == 1]
        ci = stats.ttest_ind(e, c, equal_var=False).confidence_interval(0.95)
        row = out.sel(switch=s)
        assert float(row["rt_error_minus_correct_low"]) == pytest.approx(ci.low, rel=1e-10)
        assert float(row["rt_error_minus_correct_high"]) == pytest.approx(ci.high, rel=1e-10)
    pooled = error_rt(ds)
    se = float(pooled["rt_error_minus_correct_se"])
    assert abs(float(pooled["rt_error_minus_correct"]) - 50.0) < 4 * se
    both = error_rt(_tree(ds))
    assert both["model"].values.tolist() == ["m1", "m2"]
    results.validate(both, provenance=False)
    with pytest.raises(ValueError, match=r"level=0 is outside"):
        error_rt(ds, level=0)


PREP_CSI = np.array([50.0, 150.0, 300.0, 600.0, 1200.0])


def _cost(values, se, dims=("csi",), coords=None) -> xr.Dataset:
    coords = {
        k: (k, v, {"units": "ms" if k == "csi" else "1", "long_name": k})
        for k, v in (coords or {"csi": PREP_CSI}).items()
    }
    values = np.asarray(values, dtype=float)
    se = np.broadcast_to(np.asarray(se, dtype=float), values.shape)
    ms = {"units": "ms", "long_name": "RT switch cost"}
    return xr.Dataset(
        {
            "rt_cost": (dims, values, ms),
            "rt_cost_se": (dims, se, ms),
            "rt_cost_low": (dims, values - 1.96 * se, ms),
            "rt_cost_high": (dims, values + 1.96 * se, ms),
        },
        coords=coords,
        attrs={"level": 0.95},
    )


def test_fit_preparation_fixed_recovers_exact_parameters_per_model():
    from neuromod.measures import fit_preparation_fixed

    taus = {"se": 300.0, "rate": 100.0}
    truth = {"se": (80.0, 20.0), "rate": (40.0, 5.0)}
    rows = [truth[m][0] * np.exp(-PREP_CSI / taus[m]) + truth[m][1] for m in taus]
    ds = _cost(rows, 5.0, dims=("model", "csi"), coords={"model": list(taus), "csi": PREP_CSI})
    fit = fit_preparation_fixed(ds, taus)
    assert fit["amplitude"].dims == ("model",)
    for m, (a, r) in truth.items():
        row = fit.sel(model=m)
        assert float(row["amplitude"]) == pytest.approx(a, rel=1e-9)
        assert float(row["residual"]) == pytest.approx(r, rel=1e-9)
        assert float(row["cost_shortest"]) == pytest.approx(a * np.exp(-50 / taus[m]) + r, rel=1e-9)
        assert float(row["chi2"]) == pytest.approx(0.0, abs=1e-12) and int(row["chi2_df"]) == 3
        assert float(row["tau_ms"]) == taus[m] and int(row["identified"]) == 1
        assert float(row["amplitude_low"]) < a < float(row["amplitude_high"])
    results.validate(fit, provenance=False)


def test_fit_preparation_fixed_standard_errors_are_the_wls_ones():
    """Known SEs: the covariance is (X' W X)^-1 with W = 1 / SE^2, not rescaled."""
    from neuromod.measures import fit_preparation_fixed

    rng = np.random.default_rng(1)
    se = np.array([4.0, 5.0, 6.0, 5.0, 8.0])
    y = 80 * np.exp(-PREP_CSI / 300) + 20 + rng.normal(0, se)
    fit = fit_preparation_fixed(_cost(y, se), 300.0)
    x = np.column_stack([np.ones(5), np.exp(-PREP_CSI / 300)])
    cov = np.linalg.inv(x.T @ (x / se[:, None] ** 2))
    assert float(fit["residual_se"]) == pytest.approx(np.sqrt(cov[0, 0]), rel=1e-10)
    assert float(fit["amplitude_se"]) == pytest.approx(np.sqrt(cov[1, 1]), rel=1e-10)
    half = 1.959963984540054 * np.sqrt(cov[1, 1])
    assert float(fit["amplitude_high"] - fit["amplitude_low"]) == pytest.approx(2 * half, rel=1e-9)
    scaled = fit_preparation_fixed(_cost(y, se), 300.0, absolute_se=False)
    assert np.isnan(float(scaled["chi2_p"]))
    assert float(scaled["amplitude"]) == pytest.approx(float(fit["amplitude"]), rel=1e-12)


def test_fit_preparation_fixed_goodness_of_fit_rejects_a_wrong_tau():
    from neuromod.measures import fit_preparation_fixed

    y = 80 * np.exp(-PREP_CSI / 300) + 20
    ds = _cost(y, 1.0)
    assert float(fit_preparation_fixed(ds, 300.0)["chi2_p"]) == pytest.approx(1.0)
    assert float(fit_preparation_fixed(ds, 30.0)["chi2_p"]) < 1e-6


def test_fit_preparation_fixed_degenerate_cases():
    from neuromod.measures import fit_preparation_fixed

    flat = _cost([30.0, 32.0, 28.0, 31.0, 29.0], [2.0, 2.0, 2.0, 2.0, 4.0])
    zero = fit_preparation_fixed(flat, 0.0)  # tau 0: the cost is R at every CSI > 0
    assert np.isnan(float(zero["amplitude"])) and int(zero["identified"]) == 0
    w = 1 / np.array([4.0, 4.0, 4.0, 4.0, 16.0])
    expected = np.sum(w * flat["rt_cost"].values) / w.sum()
    assert float(zero["residual"]) == pytest.approx(expected, rel=1e-12)
    assert float(zero["residual_se"]) == pytest.approx(np.sqrt(1 / w.sum()), rel=1e-12)
    one = _cost([30.0], [2.0], coords={"csi": [300.0]})
    out = fit_preparation_fixed(one, 300.0)
    assert np.isnan(float(out["amplitude"])) and np.isnan(float(out["residual"])) and int(out["n_csi"]) == 1
    nan = _cost([30.0, np.nan, np.nan, np.nan, np.nan], 2.0)
    assert np.isnan(float(fit_preparation_fixed(nan, 300.0)["residual"]))


def test_fit_preparation_fixed_reads_switch_cost_results(synthetic):
    from neuromod.measures import fit_preparation_fixed

    cost = switch_cost(synthetic)  # two CSIs: an exact fit through both
    fit = fit_preparation_fixed(cost, 300.0)
    e = np.exp(-np.array([100.0, 500.0]) / 300)
    y = cost["rt_cost"].values
    a = (y[0] - y[1]) / (e[0] - e[1])
    assert float(fit["amplitude"]) == pytest.approx(a, rel=1e-9)
    assert int(fit["chi2_df"]) == 0
    err = fit_preparation_fixed(cost, 300.0, variable="error_cost")  # SE from the Newcombe bounds
    assert np.isfinite(float(err["amplitude_se"]))


@pytest.mark.slow
def test_fit_preparation_fixed_intervals_cover_the_truth(sim):
    from neuromod.measures import fit_preparation_fixed

    n_rep = 200
    T = sim.TRUTH
    hits = {"amplitude": 0, "residual": 0}
    for r in range(n_rep):
        t = sim.table(400, 3000 + r)
        fit = fit_preparation_fixed(switch_cost(sim.tree(t, se=sim.behave(t, 4000 + r))), T["tau"])
        hits["amplitude"] += int(float(fit["amplitude_low"]) <= T["A"] <= float(fit["amplitude_high"]))
        hits["residual"] += int(float(fit["residual_low"]) <= T["R"] <= float(fit["residual_high"]))
    tol = 3 * np.sqrt(0.95 * 0.05 / n_rep)
    for name, k in hits.items():
        assert abs(k / n_rep - 0.95) <= tol, f"{name}: coverage {k / n_rep:.3f} (tolerance {tol:.3f})"


def test_fit_preparation_fixed_errors():
    from neuromod.measures import fit_preparation_fixed

    ds = _cost(80 * np.exp(-PREP_CSI / 300) + 20, 2.0)
    with pytest.raises(ValueError, match=r"tau_ms=-5\.0 must be a finite number >= 0"):
        fit_preparation_fixed(ds, -5.0)
    with pytest.raises(ValueError, match=r"no 'model' dimension"):
        fit_preparation_fixed(ds, {"se": 300.0})
    two = _cost(
        np.ones((2, 5)), 1.0, dims=("model", "csi"), coords={"model": ["se", "rate"], "csi": PREP_CSI}
    )
    with pytest.raises(ValueError, match=r"lacks the model\(s\) \['rate'\]"):
        fit_preparation_fixed(two, {"se": 300.0})
    with pytest.raises(ValueError, match=r"neither rt_cost_se nor rt_cost_low/_high"):
        fit_preparation_fixed(ds[["rt_cost"]], 300.0)
    with pytest.raises(ValueError, match=r"se=None: a cost DataArray needs"):
        fit_preparation_fixed(ds["rt_cost"], 300.0)
    with pytest.raises(ValueError, match=r"variable='error_cost' is not in the dataset"):
        fit_preparation_fixed(ds, 300.0, variable="error_cost")
    with pytest.raises(ValueError, match=r"dim='csi_ms' is not a dimension"):
        fit_preparation_fixed(ds, 300.0, dim="csi_ms")
    with pytest.raises(TypeError, match=r"Dataset or DataArray"):
        fit_preparation_fixed([1.0, 2.0], 300.0)
