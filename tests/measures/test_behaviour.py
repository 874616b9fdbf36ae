"""Tests for neuromod.measures.behaviour against scipy references."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from scipy import stats

from neuromod.measures import mean_interval, psychometric, wilson_interval


@pytest.mark.parametrize(("k", "n"), [(0, 10), (3, 10), (50, 100), (499, 500), (20, 20)])
@pytest.mark.parametrize("level", [0.9, 0.95, 0.99])
def test_wilson_matches_scipy(k, n, level):
    low, high = wilson_interval(k, n, level=level)
    ref = stats.binomtest(k, n).proportion_ci(confidence_level=level, method="wilson")
    np.testing.assert_allclose([low, high], [ref.low, ref.high], rtol=0, atol=1e-12)


def test_wilson_empty_is_nan_and_bad_level():
    low, high = wilson_interval(0, 0)
    assert np.isnan(low) and np.isnan(high)
    with pytest.raises(ValueError, match=r"level=1\.5 is outside the valid range \(0, 1\)"):
        wilson_interval(1, 2, level=1.5)


def test_mean_interval_matches_scipy():
    rng = np.random.default_rng(7)
    x = rng.normal(400.0, 50.0, size=(3, 40))
    x[0, :5] = np.nan
    da = xr.DataArray(x, dims=("coherence", "trial"))
    mean, low, high = mean_interval(da, "trial")
    for i in range(3):
        v = x[i][np.isfinite(x[i])]
        ref = stats.t.interval(0.95, len(v) - 1, loc=v.mean(), scale=stats.sem(v))
        np.testing.assert_allclose([mean[i], low[i], high[i]], [v.mean(), *ref], rtol=1e-12)


def test_psychometric_counts():
    choice = np.array([[1, 2, 1, 0], [1, 1, 1, 2]])
    rt = np.where(choice > 0, [[300.0, 500.0, 400.0, np.nan], [200.0, 250.0, 300.0, 350.0]], np.nan)
    ds = xr.Dataset(
        {"choice": (("coherence", "trial"), choice), "rt": (("coherence", "trial"), rt)},
        coords={"coherence": [0.0, 51.2]},
    )
    out = psychometric(ds)
    np.testing.assert_allclose(out["accuracy"], [2 / 3, 3 / 4])
    np.testing.assert_allclose(out["p_response"], [3 / 4, 1.0])
    np.testing.assert_allclose(out["mean_rt"], [400.0, 275.0])
    assert (out["accuracy_low"] < out["accuracy"]).all() and (out["accuracy"] < out["accuracy_high"]).all()
    assert all("units" in v.attrs and "long_name" in v.attrs for v in out.data_vars.values())
    with pytest.raises(ValueError, match="dim='repeat' is not a dimension"):
        psychometric(ds, dim="repeat")
