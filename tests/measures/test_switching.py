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
    results.validate(out)


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
    results.validate(out)


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
    results.validate(out)


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
    results.validate(both)


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
    results.validate(fit)


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
