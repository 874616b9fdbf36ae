"""Tests of the trial-level switch-cost regressions against simulated behaviour with known ground truth.

The simulator (``conftest.py``) draws RTs with a switch cost ``A exp(-CSI / tau) + R`` plus congruency and
context effects and Gaussian noise, and errors from a logistic model with the same structure. Statistical
checks: intervals must cover the truth at the nominal rate across repetitions, within three binomial
standard errors of the coverage; point estimates within a few of their own standard errors.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from neuromod import results
from neuromod.measures import (
    model_contrast,
    resolution,
    switch_cost_split,
    switch_regression,
)

QUANTITIES = ("cost_shortest", "cost_longest", "amplitude", "residual", "cost_drop")


def _truth(sim) -> dict[str, float]:
    T = sim.TRUTH
    e_min, e_max = np.exp(-50.0 / T["tau"]), np.exp(-1200.0 / T["tau"])
    return {
        "rt_cost_shortest": T["A"] * e_min + T["R"],
        "rt_cost_longest": T["A"] * e_max + T["R"],
        "rt_amplitude": T["A"],
        "rt_residual": T["R"],
        "rt_cost_drop": T["A"] * (e_min - e_max),
        "error_cost_shortest": T["error_A"] * e_min + T["error_R"],
        "error_amplitude": T["error_A"],
        "error_residual": T["error_R"],
    }


def _coverage_tolerance(n: int, level: float = 0.95) -> float:
    return 3 * np.sqrt(level * (1 - level) / n)


# ------------------------------------------------------------------------------------------------------
# exact recovery and layout
# ------------------------------------------------------------------------------------------------------
def test_noise_free_rts_give_the_exact_parameters(sim):
    t = sim.table(400, 1)
    data = sim.tree(t, se=sim.behave(t, 2, sd=1e-6, errors=False))
    fit = switch_regression(data, sim.TRUTH["tau"])
    assert "model" not in fit.dims  # one model group: no model dimension
    truth = _truth(sim)
    for name in ("rt_cost_shortest", "rt_cost_longest", "rt_amplitude", "rt_residual", "rt_cost_drop"):
        assert float(fit[name]) == pytest.approx(truth[name], abs=1e-5), name
        assert (
            float(fit[f"{name}_low"]) <= truth[name] + 1e-5
            and float(fit[f"{name}_high"]) >= truth[name] - 1e-5
        )
    coef = fit["rt_coef"].to_series()
    assert coef["congruent"] == pytest.approx(-sim.TRUTH["incongruent"], abs=1e-5)
    assert coef["context"] == pytest.approx(sim.TRUTH["context"], abs=1e-5)
    assert coef["switch_prep"] == pytest.approx(sim.TRUTH["A"], abs=1e-5)
    expected = sim.TRUTH["A"] * np.exp(-fit["csi"].values / sim.TRUTH["tau"]) + sim.TRUTH["R"]
    np.testing.assert_allclose(fit["rt_cost_by_csi"].values, expected, atol=1e-5)
    assert fit["csi"].values.tolist() == list(sim.CSI)
    assert str(fit["rt_status"].values) == "ok" and int(fit["rt_fitted"]) == 1
    # one coherence: the coherence factors are constant and never enter
    assert not any(str(term).startswith("coh") for term in fit["rt_term"].values)
    # no errors: the GLM is not fitted, NaN with a reason
    assert str(fit["error_status"].values).startswith("no errors")
    assert int(fit["error_fitted"]) == 0 and np.isnan(float(fit["error_cost_shortest"]))
    assert fit.attrs["rt_covariance"].startswith("HC3")
    results.validate(fit, provenance=False)


def test_several_models_each_with_its_own_tau(sim):
    t = sim.table(300, 3)
    data = sim.tree(t, se=sim.behave(t, 4), rate=sim.behave(t, 5, tau=100.0))
    taus = {"se": 300.0, "rate": 100.0}
    both = switch_regression(data, taus)
    assert both["model"].values.tolist() == ["se", "rate"]
    assert both["rt_amplitude"].dims == ("model",)
    assert both["tau_ms"].values.tolist() == [300.0, 100.0]
    for m, tau in taus.items():
        one = switch_regression(data, tau, model=m)
        for name in ("rt_cost_shortest", "rt_amplitude", "error_residual", "rt_cost_shortest_high"):
            assert float(both[name].sel(model=m)) == pytest.approx(float(one[name]), rel=1e-12)
    results.validate(both, provenance=False)


def test_coherence_factors_enter_only_when_the_coherence_varies(sim):
    t = sim.table(300, 6, coherences=(6.4, 25.6, 51.2))
    fit = switch_regression(sim.tree(t, se=sim.behave(t, 7)), 300.0, outcomes=("rt",))
    terms = set(fit["rt_term"].values.tolist())
    assert {"coh_rel_25p6", "coh_rel_51p2", "coh_irr_25p6", "coh_irr_51p2"} <= terms
    assert "coh_rel_6p4" not in terms  # the lowest level is the reference
    without = switch_regression(sim.tree(t, se=sim.behave(t, 7)), 300.0, outcomes=("rt",), covariates=())
    assert set(without["rt_term"].values.tolist()) == {"const", "switch", "prep", "switch_prep"}


def test_a_constant_covariate_is_dropped_and_named(sim):
    t = sim.table(300, 8)
    t["is_congruent"] = xr.full_like(t["is_congruent"], True)
    fit = switch_regression(sim.tree(t, se=sim.behave(t, 9)), 300.0)
    assert str(fit["rt_dropped"].values) == "congruent"
    assert "congruent" not in fit["rt_term"].values.tolist()
    assert np.isfinite(float(fit["rt_cost_shortest"]))


# ------------------------------------------------------------------------------------------------------
# coverage of the intervals across repetitions
# ------------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_intervals_cover_the_truth_at_the_nominal_rate(sim):
    n_rep = 200
    truth = _truth(sim)
    hits = dict.fromkeys(truth, 0)
    for r in range(n_rep):
        t = sim.table(400, 1000 + r)
        fit = switch_regression(sim.tree(t, se=sim.behave(t, 5000 + r)), sim.TRUTH["tau"])
        for name, value in truth.items():
            hits[name] += int(float(fit[f"{name}_low"]) <= value <= float(fit[f"{name}_high"]))
    tol = _coverage_tolerance(n_rep)
    for name, k in hits.items():
        assert abs(k / n_rep - 0.95) <= tol, f"{name}: coverage {k / n_rep:.3f} (tolerance {tol:.3f})"


# ------------------------------------------------------------------------------------------------------
# splits by direction and congruency
# ------------------------------------------------------------------------------------------------------
def test_split_by_direction_finds_a_direction_specific_cost(sim):
    t = sim.table(1500, 11)
    b = sim.behave(t, 12, sd=30.0)
    extra = 30.0  # switching to task b costs 30 ms more, at every CSI
    b["rt"] = b["rt"] + extra * (t["is_switch"] & (t["context"] == 1))
    data = sim.tree(t, se=b)
    out = switch_cost_split(data, 300.0, by="context")
    assert out["rt_residual"].dims == ("context",)
    se = float(out["rt_residual_diff_se"])
    assert abs(float(out["rt_residual_diff"]) - extra) < 4 * se
    assert float(out["rt_residual_diff_low"]) > 0  # resolved at this n (SE about 8 ms)
    to_a = float(out["rt_cost_shortest"].sel(context=0))
    truth = _truth(sim)["rt_cost_shortest"]
    assert abs(to_a - truth) < 4 * float(out["rt_cost_shortest_se"].sel(context=0))
    results.validate(out, provenance=False)
    by_cong = switch_cost_split(data, 300.0, by="is_congruent", outcomes=("rt",))
    assert by_cong["rt_amplitude"].dims == ("congruent",)
    # the simulated cost does not depend on congruency
    assert abs(float(by_cong["rt_cost_shortest_diff"])) < 4 * float(by_cong["rt_cost_shortest_diff_se"])
    assert "congruent" not in by_cong["rt_term"].values.tolist()  # the split variable is not a covariate


# ------------------------------------------------------------------------------------------------------
# paired contrasts between models
# ------------------------------------------------------------------------------------------------------
def _pair(sim, n: int, seed: int, a_b: tuple[float, float] = (80.0, 40.0), sd_shared: float = 50.0):
    t = sim.table(n, seed)
    shared = np.random.default_rng(seed + 1).normal(0, sd_shared, n)
    return sim.tree(
        t,
        a=sim.behave(t, seed + 2, A=a_b[0], shared=shared),
        b=sim.behave(t, seed + 3, A=a_b[1], shared=shared),
    )


def test_model_contrast_equals_the_separate_fits_and_uses_the_pairing(sim):
    data = _pair(sim, 400, 20)
    quantities = ["rt_cost_shortest", "rt_amplitude", "error_residual", "rt_coef_congruent"]
    c = model_contrast(data, "a", "b", tau_ms=300.0, quantity=quantities)
    assert c["quantity"].values.tolist() == quantities
    sep = {m: switch_regression(data, 300.0, model=m) for m in ("a", "b")}
    for q in quantities[:3]:
        for m, var in (("a", "estimate_a"), ("b", "estimate_b")):
            assert float(c[var].sel(quantity=q)) == pytest.approx(float(sep[m][q]), rel=1e-9, abs=1e-9)
        d = float(sep["a"][q]) - float(sep["b"][q])
        assert float(c["difference"].sel(quantity=q)) == pytest.approx(d, rel=1e-9, abs=1e-9)
    coef = float(sep["a"]["rt_coef"].sel(rt_term="congruent") - sep["b"]["rt_coef"].sel(rt_term="congruent"))
    assert float(c["difference"].sel(quantity="rt_coef_congruent")) == pytest.approx(coef, rel=1e-9)
    assert c["units"].values.tolist() == ["ms", "ms", "log odds", "ms"]
    assert set(c["status"].values.tolist()) == {"ok"}
    # the shared per-trial component cancels in the paired difference: smaller SE than independent fits
    independent = np.hypot(float(sep["a"]["rt_cost_shortest_se"]), float(sep["b"]["rt_cost_shortest_se"]))
    assert float(c["difference_se"].sel(quantity="rt_cost_shortest")) < 0.9 * independent
    one = model_contrast(data, "a", "b", tau_ms=300.0)
    assert one["quantity"].item() == "rt_cost_shortest" and one["difference"].dims == ()
    results.validate(c, provenance=False)


@pytest.mark.slow
def test_model_contrast_interval_covers_the_true_difference(sim):
    n_rep = 150
    true = (80.0 - 40.0) * np.exp(-50.0 / 300.0)
    hits = 0
    for r in range(n_rep):
        c = model_contrast(_pair(sim, 400, 100 * r + 7), "a", "b", tau_ms=300.0)
        hits += int(float(c["difference_low"]) <= true <= float(c["difference_high"]))
    tol = _coverage_tolerance(n_rep)
    assert abs(hits / n_rep - 0.95) <= tol, f"coverage {hits / n_rep:.3f} (tolerance {tol:.3f})"


def test_equivalence_decisions_on_clear_cases(sim):
    # the same switch cost in both models, many trials: equivalent within 20 ms
    same = model_contrast(_pair(sim, 2000, 30, (80.0, 80.0)), "a", "b", tau_ms=300.0, margin=20.0)
    assert str(same["verdict"].values) == "equivalent" and int(same["equivalent"]) == 1
    assert -20 < float(same["equivalence_low"]) and float(same["equivalence_high"]) < 20
    # 80 ms vs none: different
    far = model_contrast(_pair(sim, 2000, 31, (80.0, 0.0)), "a", "b", tau_ms=300.0, margin=20.0)
    assert str(far["verdict"].values) == "different" and int(far["differs"]) == 1
    # the same cost but few trials and a tight margin: inconclusive, not "agrees"
    few = model_contrast(_pair(sim, 80, 32, (80.0, 80.0)), "a", "b", tau_ms=300.0, margin=5.0)
    assert str(few["verdict"].values) == "inconclusive" and int(few["equivalent"]) == 0
    # margins per quantity
    both = model_contrast(
        _pair(sim, 400, 33),
        "a",
        "b",
        tau_ms=300.0,
        quantity=["rt_cost_shortest", "error_cost_shortest"],
        margin={"rt_cost_shortest": 15.0, "error_cost_shortest": 0.5},
    )
    assert both["margin"].values.tolist() == [15.0, 0.5]


# ------------------------------------------------------------------------------------------------------
# resolution
# ------------------------------------------------------------------------------------------------------
def test_resolution_scales_as_one_over_root_n(sim):
    small, large = sim.table(400, 40), sim.table(1600, 41)
    r_small = resolution(sim.tree(small, se=sim.behave(small, 42)), 300.0, effect=[10.0, 20.0], power=0.5)
    r_large = resolution(sim.tree(large, se=sim.behave(large, 43)), 300.0, effect=10.0, power=0.5)
    assert r_small["n_trials_needed"].dims == ("effect",)
    # 4x the trials: half the half-width; the SE estimate's own spread is a few % at these n
    ratio = float(r_small["half_width"] / r_large["half_width"])
    assert ratio == pytest.approx(2.0, rel=0.2)
    # power 0.5: the interval's half-width (normal) equals the effect at the needed n
    z = 1.959963984540054
    expected = np.ceil(400 * (z * float(r_small["se"]) / np.array([10.0, 20.0])) ** 2)
    np.testing.assert_array_equal(r_small["n_trials_needed"].values, expected)
    # the prediction from the small run matches the large run's resolution
    predicted = 400 * (float(r_small["se"]) / float(r_large["se"])) ** 2
    assert predicted == pytest.approx(1600, rel=0.4)
    # power 0.8 needs more trials; default effect: the run's own estimate
    more = resolution(sim.tree(small, se=sim.behave(small, 42)), 300.0, effect=10.0)
    assert float(more["n_trials_needed"]) > float(r_small["n_trials_needed"].sel(effect=10.0))
    own = resolution(sim.tree(small, se=sim.behave(small, 42)), 300.0)
    assert float(own["effect"]) == pytest.approx(abs(float(own["estimate"])))
    results.validate(r_small, provenance=False)


# ------------------------------------------------------------------------------------------------------
# degenerate designs: NaN and a reason, never a crash
# ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(6))
def test_a_quick_24_trial_run_never_raises(sim, seed):
    t = sim.table(24, seed, coherences=(3.2, 6.4, 12.8, 25.6, 51.2))
    data = sim.tree(t, se=sim.behave(t, seed + 100), rate=sim.behave(t, seed + 200, errors=False))
    fit = switch_regression(data, {"se": 300.0, "rate": 0.0})
    for o in ("rt", "error"):
        for m in ("se", "rate"):
            status = str(fit[f"{o}_status"].sel(model=m).values)
            assert status
            if int(fit[f"{o}_fitted"].sel(model=m)) == 0:
                assert np.isnan(float(fit[f"{o}_cost_shortest"].sel(model=m))), status
    assert np.isnan(fit["error_cost_shortest"].sel(model="rate"))  # no errors
    assert np.isnan(fit["rt_amplitude"].sel(model="rate"))  # tau 0: A is not defined
    c = model_contrast(
        data, "se", "rate", tau_ms=300.0, quantity=list(f"rt_{q}" for q in QUANTITIES), margin=20.0
    )
    assert set(c["verdict"].values.tolist()) <= {"equivalent", "different", "inconclusive", "undefined"}
    switch_cost_split(data, 300.0, by="context")
    switch_cost_split(data, 300.0, by="is_congruent")
    resolution(data, 300.0, model="se", effect=20.0)


def test_one_csi_and_tau_zero_drop_the_preparation_terms(sim):
    t = sim.table(300, 50, csi=(300.0,))
    data = sim.tree(t, se=sim.behave(t, 51))
    fit = switch_regression(data, 300.0, outcomes=("rt",))
    assert "one CSI" in str(fit["rt_status"].values)
    assert np.isfinite(float(fit["rt_cost_shortest"]))  # the cost at the one CSI
    assert np.isnan(float(fit["rt_amplitude"])) and np.isnan(float(fit["rt_residual"]))
    t = sim.table(300, 52)
    data = sim.tree(t, se=sim.behave(t, 53))
    zero = switch_regression(data, 0.0, outcomes=("rt",))
    assert "tau_ms = 0" in str(zero["rt_status"].values)
    assert float(zero["rt_residual"]) == pytest.approx(float(zero["rt_cost_shortest"]))
    assert np.isnan(float(zero["rt_amplitude"])) and np.isnan(float(zero["rt_cost_drop"]))
    c = model_contrast(
        sim.tree(t, a=sim.behave(t, 54), b=sim.behave(t, 55)), "a", "b", tau_ms=0.0, quantity="rt_amplitude"
    )
    assert np.isnan(float(c["difference"])) and "not defined" in str(c["status"].values)


def test_no_switch_trials_and_no_errors_give_nan_and_a_reason(sim):
    t = sim.table(100, 60, p_switch=0.0)
    fit = switch_regression(sim.tree(t, se=sim.behave(t, 61)), 300.0)
    for o in ("rt", "error"):
        assert "no switch trials or no repeat trials" in str(fit[f"{o}_status"].values)
        assert int(fit[f"{o}_fitted"]) == 0
        assert all(np.isnan(float(fit[f"{o}_{q}"])) for q in QUANTITIES)
    assert fit["rt_coef"].size == 0


def test_separated_error_terms_are_nan_and_the_rest_is_kept(sim):
    t = sim.table(800, 70, coherences=(6.4, 51.2))
    b = sim.behave(t, 71)
    rel = np.where(t["context"].values == 0, np.abs(t["feature_a"].values), np.abs(t["feature_b"].values))
    easy = rel == 51.2
    b["correct"] = xr.where(easy, 1, b["correct"]).astype(np.int8)
    b["choice"] = xr.where(easy, t["correct_choice"], b["choice"]).astype(np.int8)
    b["rt"] = b["rt"].fillna(500.0)
    fit = switch_regression(sim.tree(t, se=b), 300.0, outcomes=("error",))
    assert "quasi-separation" in str(fit["error_status"].values)
    assert np.isnan(float(fit["error_coef"].sel(error_term="coh_rel_51p2")))
    assert np.isfinite(float(fit["error_cost_shortest"]))


# ------------------------------------------------------------------------------------------------------
# input errors
# ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"tau_ms": -1.0}, ValueError, r"tau_ms=-1\.0 must be a finite number >= 0"),
        ({"tau_ms": "300"}, TypeError, r"tau_ms must be a number"),
        ({"tau_ms": {"rate": 100.0}}, ValueError, r"has no entry for model 'se'"),
        ({"covariates": ("coherence", "speed")}, ValueError, r"covariates='speed' is not one of"),
        ({"covariates": "coherence"}, TypeError, r"covariates must be a sequence"),
        ({"outcomes": ("rt", "accuracy")}, ValueError, r"outcomes='accuracy' is not one of"),
        ({"outcomes": ()}, ValueError, r"outcomes=\(\) must be a non-empty sequence"),
        ({"cov_type": "HC9"}, ValueError, r"cov_type='HC9' is not one of"),
        ({"level": 1.0}, ValueError, r"level=1\.0 is outside the valid range"),
        ({"model": "brain"}, ValueError, r"model='brain' is not a model group"),
    ],
)
def test_switch_regression_bad_arguments(sim, kwargs, error, match):
    t = sim.table(60, 80)
    data = sim.tree(t, se=sim.behave(t, 81))
    kw = {"tau_ms": 300.0, **kwargs}
    with pytest.raises(error, match=match):
        switch_regression(data, **kw)


def test_bad_data_and_contrast_arguments(sim):
    t = sim.table(60, 82)
    data = sim.tree(t, a=sim.behave(t, 83), b=sim.behave(t, 84))
    with pytest.raises(ValueError, match=r"lacks the variable\(s\) \['feature_a', 'feature_b'\]"):
        switch_regression(trial_data_without(data, "a", ("feature_a", "feature_b")), 300.0)
    with pytest.raises(ValueError, match=r"by='csi_ms' is not one of"):
        switch_cost_split(data, 300.0, by="csi_ms")
    with pytest.raises(ValueError, match=r"model_b='c' is not a model group"):
        model_contrast(data, "a", "c", tau_ms=300.0)
    with pytest.raises(ValueError, match=r"model_a and model_b are both 'a'"):
        model_contrast(data, "a", "a", tau_ms=300.0)
    with pytest.raises(ValueError, match=r"quantity='rt_cost' is not one of"):
        model_contrast(data, "a", "b", tau_ms=300.0, quantity="rt_cost")
    with pytest.raises(ValueError, match=r"margin=0\.0 must be a finite number > 0"):
        model_contrast(data, "a", "b", tau_ms=300.0, margin=0.0)
    with pytest.raises(ValueError, match=r"lacks the quantity\(ies\) \['rt_amplitude'\]"):
        model_contrast(data, "a", "b", tau_ms=300.0, quantity=["rt_amplitude"], margin={"rt_residual": 5.0})
    with pytest.raises(TypeError, match=r"tree must be an xarray DataTree"):
        model_contrast(data["a"].to_dataset(), "a", "b", tau_ms=300.0)
    with pytest.raises(ValueError, match=r"effect=-5\.0 must be a number > 0"):
        resolution(data, 300.0, model="a", effect=-5.0)
    with pytest.raises(ValueError, match=r"power=1\.0 is outside the valid range"):
        resolution(data, 300.0, model="a", power=1.0)


def trial_data_without(data: xr.DataTree, model: str, names: tuple[str, ...]) -> xr.Dataset:
    from neuromod.measures import trial_data

    return trial_data(data, model).drop_vars(list(names))


def test_tau_defaults_to_the_run_config(sim):
    t = sim.table(200, 90)
    data = sim.tree(t, a=sim.behave(t, 91), b=sim.behave(t, 92))
    with pytest.raises(ValueError, match=r"tau_ms=None and the data carry no run config"):
        switch_regression(data)
    data.attrs["config_json"] = '{"tau_ms": 250.0, "seed": 0}'
    fit = switch_regression(data, outcomes=("rt",))
    assert fit["tau_ms"].values.tolist() == [250.0, 250.0]
    explicit = switch_regression(data, 250.0, outcomes=("rt",))
    xr.testing.assert_identical(fit, explicit)
    c = model_contrast(data, "a", "b", quantity="rt_residual")
    assert c.attrs["tau_ms_a"] == 250.0


def test_model_contrast_refuses_terms_separated_in_a_models_own_fit(sim):
    # model a errs on 2 of 30 trials: its own error GLM is quasi-separated (terms not estimable); the joint
    # fit's cluster-robust errors must not turn that into a finite, "different" contrast
    t = sim.table(30, 5)
    a = sim.behave(t, 1, errors=False)
    wrong = np.flatnonzero(a["choice"].values > 0)[:2]
    a["correct"].values[wrong] = 0
    a["choice"].values[wrong] = 3 - a["choice"].values[wrong]
    b = sim.behave(t, 2)
    data = sim.tree(t, a=a, b=b)
    own = switch_regression(data, 300.0, model="a")
    assert not np.isfinite(float(own["error_cost_shortest"]))
    c = model_contrast(data, "a", "b", tau_ms=300.0, quantity="error_cost_shortest", margin=1.0)
    assert not np.isfinite(float(c["difference"])), c
    assert str(c["verdict"].values) != "different"
