"""Tests of neuromod.measures.agreement: effect presence (interval vs null) and interval overlap."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from neuromod.measures import agreement


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
    out = agreement(summary, measures={"accuracy": 0.5, "rt_switch_cost": 0.0})
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
    out = agreement(s, measures=["rt_switch_cost"], reference="rate")
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
        agreement(summary, **kwargs)


def test_needs_a_model_dimension(summary):
    with pytest.raises(ValueError, match=r"summary has no 'model' dimension"):
        agreement(summary.isel(model=0))
