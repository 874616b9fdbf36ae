"""Tests of neuromod.measures.agreement (TOST equivalence with margins), equivalence_test and the legacy
interval_overlap: effect presence (interval vs null), equivalence decisions on clear cases, the TOST p-values
against scipy, and its error rate at the margin (tolerance from the binomial SE)."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from scipy import stats

from neuromod import results
from neuromod.measures import agreement, equivalence_test, interval_overlap


@pytest.fixture
def summary() -> xr.Dataset:
    model = ["se", "rate", "spiking"]
    return xr.Dataset(
        {
            "accuracy": ("model", [0.9, 0.55, 0.8], {"units": "1"}),
            "accuracy_low": ("model", [0.85, 0.45, 0.7]),
            "accuracy_high": ("model", [0.95, 0.65, 0.86]),
            "rt_switch_cost": ("model", [40.0, 100.0, np.nan], {"units": "ms"}),
            "rt_switch_cost_low": ("model", [10.0, 71.0, np.nan]),
            "rt_switch_cost_high": ("model", [70.0, 130.0, np.nan]),
        },
        coords={"model": model},
    )


def test_presence_against_each_null_and_overlap_with_the_reference(summary):
    out = interval_overlap(summary, measures={"accuracy": 0.5, "rt_switch_cost": 0.0})
    # accuracy: se and spiking exclude chance, rate's interval [0.45, 0.65] includes it
    assert out["present"].sel(measure="accuracy").values.tolist() == [1, 0, 1]
    # se [0.85, 0.95] vs rate [0.45, 0.65]: disjoint; vs spiking [0.7, 0.86]: overlapping by 0.01
    assert out["agrees"].sel(measure="accuracy").values.tolist() == [1, 0, 1]
    # switch cost: se [10, 70] vs rate [71, 130] disjoint; spiking undefined
    assert out["present"].sel(measure="rt_switch_cost").values.tolist() == [1, 1, -1]
    assert out["agrees"].sel(measure="rt_switch_cost").values.tolist() == [1, 0, -1]
    assert out["units"].values.tolist() == ["1", "ms"]
    np.testing.assert_array_equal(out["value"].sel(model="rate").values, [0.55, 100.0])


def test_touching_intervals_overlap_and_reference_can_change(summary):
    s = summary.copy()
    s["rt_switch_cost_low"] = ("model", [10.0, 70.0, np.nan])  # rate's low bound touches se's high bound
    out = interval_overlap(s, measures=["rt_switch_cost"], reference="rate")
    assert out.attrs["reference"] == "rate"
    assert out["agrees"].values.tolist() == [[1, 1, -1]]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"reference": "brain"}, ValueError, r"reference='brain' is not a model of the summary"),
        (
            {"measures": ["mean_rt"]},
            ValueError,
            r"summary lacks \['mean_rt', 'mean_rt_low', 'mean_rt_high'\]",
        ),
        ({"measures": "accuracy"}, TypeError, r"measures must be a mapping or a sequence"),
        ({"measures": []}, ValueError, r"measures is empty"),
    ],
)
def test_bad_arguments(summary, kwargs, error, match):
    with pytest.raises(error, match=match):
        interval_overlap(summary, **kwargs)
    margins = {"accuracy": 0.05, "rt_switch_cost": 10.0, "mean_rt": 10.0}
    with pytest.raises(error, match=match):
        agreement(summary, margins=margins, **kwargs)


def test_needs_a_model_dimension(summary):
    with pytest.raises(ValueError, match=r"summary has no 'model' dimension"):
        agreement(summary.isel(model=0), margins={"accuracy": 0.1})


def test_agreement_without_margins_warns_and_keeps_the_overlap_criterion(summary):
    measures = {"accuracy": 0.5, "rt_switch_cost": 0.0}
    with pytest.warns(FutureWarning, match="pass margins"):
        out = agreement(summary, measures=measures)
    xr.testing.assert_identical(out, interval_overlap(summary, measures=measures))


# ------------------------------------------------------------------------------------------------------
# equivalence test
# ------------------------------------------------------------------------------------------------------
def test_equivalence_test_clear_cases_and_p_values():
    d = np.array([1.0, 1.0, 30.0, 5.0, 9.0, np.nan])
    se = np.array([2.0, 20.0, 2.0, 5.0, 2.0, 1.0])
    out = equivalence_test(d, se, 10.0)
    # 9 +- 2: its 95 % interval excludes 0 but its 90 % interval crosses the margin: different, not equivalent
    assert out["verdict"].values.tolist() == [
        "equivalent",
        "inconclusive",
        "different",
        "inconclusive",
        "different",
        "undefined",
    ]
    assert out["equivalent"].values.tolist() == [1, 0, 0, 0, 0, -1]
    assert out["differs"].values.tolist() == [0, 0, 1, 0, 1, -1]
    # TOST p-value: the larger of the two one-sided normal p-values
    p = np.maximum(stats.norm.sf((d + 10) / se), stats.norm.cdf((d - 10) / se))
    np.testing.assert_allclose(out["p_equivalence"].values[:5], p[:5], rtol=1e-12)
    # the 90 % interval: d -+ z_0.95 se
    np.testing.assert_allclose(out["low"].values[:5], d[:5] - stats.norm.ppf(0.95) * se[:5], rtol=1e-12)
    # the decision is p_equivalence < alpha
    assert ((out["p_equivalence"].values[:5] < 0.05) == (out["equivalent"].values[:5] == 1)).all()
    # a small but resolved difference inside the margin is equivalent (and also differs)
    both = equivalence_test(3.0, 0.5, 10.0)
    assert str(both["verdict"].values) == "equivalent" and int(both["differs"]) == 1


def test_equivalence_test_with_t_reference():
    out = equivalence_test(2.0, 3.0, 10.0, df=5)
    q = stats.t.ppf(0.95, 5)
    assert float(out["high"]) == pytest.approx(2.0 + q * 3.0, rel=1e-12)
    p = max(stats.t.sf((2.0 + 10) / 3.0, 5), stats.t.cdf((2.0 - 10) / 3.0, 5))
    assert float(out["p_equivalence"]) == pytest.approx(p, rel=1e-12)
    # fewer df: wider interval, so fewer decisions of equivalence
    assert float(equivalence_test(2.0, 3.0, 8.0, df=3)["high"]) > float(
        equivalence_test(2.0, 3.0, 8.0)["high"]
    )


def test_equivalence_error_rate_at_the_margin_is_alpha():
    """True difference at the margin: "equivalent" must be declared at rate alpha (the test's size)."""
    rng = np.random.default_rng(11)
    n, se, margin, alpha = 4000, 2.0, 10.0, 0.05
    d = rng.normal(margin, se, n)
    rate = float((equivalence_test(d, np.full(n, se), margin, alpha=alpha)["equivalent"] == 1).mean())
    assert abs(rate - alpha) <= 3 * np.sqrt(alpha * (1 - alpha) / n)
    # and never above it well inside the null (difference 1.5 margins)
    far = equivalence_test(rng.normal(1.5 * margin, se, n), np.full(n, se), margin, alpha=alpha)
    assert float((far["equivalent"] == 1).mean()) <= 3 * np.sqrt(alpha * (1 - alpha) / n)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"margin": 0.0}, ValueError, r"margin=0\.0 must be finite and > 0"),
        ({"margin": [1.0, -1.0]}, ValueError, r"must be finite and > 0"),
        ({"alpha": 0.5}, ValueError, r"alpha=0\.5 is outside the valid range"),
        ({"df": 0}, ValueError, r"df=0\.0 must be > 0"),
    ],
)
def test_equivalence_test_bad_arguments(kwargs, error, match):
    kw = {"difference": 1.0, "se": 1.0, "margin": 5.0, **kwargs}
    with pytest.raises(error, match=match):
        equivalence_test(**kw)


# ------------------------------------------------------------------------------------------------------
# agreement by equivalence
# ------------------------------------------------------------------------------------------------------
@pytest.fixture
def summary_se() -> xr.Dataset:
    ms = {"units": "ms", "long_name": "RT switch cost"}
    value = np.array([40.0, 42.0, 5.0, 45.0, np.nan])
    se = np.array([2.0, 2.0, 2.0, 30.0, np.nan])
    return xr.Dataset(
        {
            "rt_switch_cost": ("model", value, ms),
            "rt_switch_cost_se": ("model", se, ms),
            "rt_switch_cost_low": ("model", value - 1.96 * se, ms),
            "rt_switch_cost_high": ("model", value + 1.96 * se, ms),
        },
        coords={
            "model": ("model", ["se", "rate", "spiking", "pilot", "broken"], {"units": "1", "long_name": "m"})
        },
        attrs={"level": 0.95},
    )


def test_agreement_by_equivalence_on_clear_cases(summary_se):
    out = agreement(summary_se, measures=["rt_switch_cost"], margins={"rt_switch_cost": 10.0})
    v = out.sel(measure="rt_switch_cost")
    assert v["verdict"].values.tolist() == [
        "reference",
        "equivalent",
        "different",
        "inconclusive",
        "undefined",
    ]
    assert v["agrees"].values.tolist() == [1, 1, 0, -1, -1]
    # an underpowered model (SE 30 ms) is inconclusive although its interval overlaps the reference's
    old = interval_overlap(summary_se, measures=["rt_switch_cost"])
    assert old["agrees"].sel(model="pilot").item() == 1
    # the difference's SE treats the models as independent
    assert float(v["difference_se"].sel(model="rate")) == pytest.approx(np.hypot(2.0, 2.0))
    assert float(v["difference"].sel(model="spiking")) == pytest.approx(-35.0)
    assert out["margin"].values.tolist() == [10.0] and out.attrs["reference"] == "se"
    assert out["present"].values.tolist() == [[1, 1, 1, 0, -1]]
    results.validate(out, provenance=False)


def test_agreement_derives_the_se_from_the_interval_when_absent(summary_se):
    bounds = summary_se.drop_vars("rt_switch_cost_se")
    out = agreement(bounds, measures=["rt_switch_cost"], margins={"rt_switch_cost": 10.0})
    np.testing.assert_allclose(out["se"].values[0, :4], [2.0, 2.0, 2.0, 30.0], rtol=1e-3)
    assert out["verdict"].values[0].tolist()[:4] == ["reference", "equivalent", "different", "inconclusive"]
    # intervals declared at another level give other SEs
    wider = agreement(bounds, measures=["rt_switch_cost"], margins={"rt_switch_cost": 10.0}, level=0.5)
    assert wider["se"].sel(model="rate").item() > 5.0


@pytest.mark.parametrize(
    ("margins", "error", "match"),
    [
        ({"accuracy": 0.1}, ValueError, r"lacks the measure\(s\) \['rt_switch_cost'\]"),
        ({"rt_switch_cost": -1.0}, ValueError, r"margins\['rt_switch_cost'\]=-1\.0 must be finite and > 0"),
        ({"rt_switch_cost": "ten"}, TypeError, r"margins\['rt_switch_cost'\]='ten' must be a number"),
        ([10.0], TypeError, r"margins must be a mapping"),
    ],
)
def test_agreement_bad_margins(summary_se, margins, error, match):
    with pytest.raises(error, match=match):
        agreement(summary_se, measures=["rt_switch_cost"], margins=margins)
