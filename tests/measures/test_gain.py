"""Tests for gain-curve fits and modulation classification on synthetic curves with known parameters."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from neuromod.measures.gain import (
    AIC_MARGIN,
    FORMS,
    classify_modulation,
    fit_and_classify,
    fit_gain_curve,
    gain_curve,
    regress_modulation,
)

DRIVE = np.linspace(0.0, 1.0, 41)
Z = 3.0  # standard errors allowed by the statistical checks
TRUE = {
    "threshold_linear": {"gain": 60.0, "threshold": 0.3},
    "softplus": {"gain": 60.0, "threshold": 0.3, "width": 0.04},
    "naka_rushton": {"saturation": 80.0, "threshold": 0.2, "semi_saturation": 0.25, "exponent": 2.0},
    "saturating": {"gain": 100.0, "threshold": 0.3, "width": 0.05, "saturation": 100.0},
}


def _curves(form: str, params_by_level: list[dict], *, noise_hz: float = 0.5, seed: int = 0) -> xr.DataArray:
    rng = np.random.default_rng(seed)
    clean = np.stack([gain_curve(DRIVE, p, form=form) for p in params_by_level])[:, None, :]
    data = clean + rng.normal(0.0, noise_hz, size=(len(params_by_level), 8, DRIVE.size))
    return xr.DataArray(
        data,
        dims=("level", "repeat", "drive"),
        coords={
            "level": np.linspace(0.0, 1.0, len(params_by_level)),
            "drive": ("drive", DRIVE, {"units": "nA", "long_name": "drive"}),
        },
        attrs={"units": "Hz", "long_name": "rate"},
    )


@pytest.mark.parametrize("form", list(FORMS))
def test_fit_recovers_known_parameters_within_5_percent(form):
    truth = TRUE[form]
    fit = fit_gain_curve(_curves(form, [truth]), form=form, reduce_dims="repeat").isel(level=0)
    for name, value in truth.items():
        assert float(fit[name]) == pytest.approx(value, rel=0.05), name
        se = float(fit[f"{name}_se"])  # calibrated: the truth lies within 4 standard errors
        assert se > 0 and abs(float(fit[name]) - value) < 4 * se, (name, se)
    assert float(fit["r2"]) > 0.99
    assert fit["gain"].attrs["units"] == "Hz/nA" and fit["threshold"].attrs["units"] == "nA"


def test_fit_is_vectorised_over_levels_and_repeats():
    truth = [{"gain": g, "threshold": t} for g, t in [(20, 0.1), (50, 0.4), (90, 0.6)]]
    fit = fit_gain_curve(_curves("threshold_linear", truth))  # one fit per (level, repeat)
    assert fit["gain"].dims == ("level", "repeat")
    np.testing.assert_allclose(fit["gain"].mean("repeat"), [20, 50, 90], rtol=0.05)
    np.testing.assert_allclose(fit["threshold"].mean("repeat"), [0.1, 0.4, 0.6], rtol=0.05)


@pytest.mark.parametrize(
    ("levels", "expected"),
    [
        ([{"gain": 50, "threshold": 0.3}, {"gain": 100, "threshold": 0.3}], "multiplicative"),
        ([{"gain": 50, "threshold": 0.3}, {"gain": 25, "threshold": 0.3}], "divisive"),
        ([{"gain": 50, "threshold": 0.3}, {"gain": 50, "threshold": 0.5}], "additive"),
        ([{"gain": 50, "threshold": 0.3}, {"gain": 80, "threshold": 0.5}], "mixed"),
        ([{"gain": 50, "threshold": 0.3}, {"gain": 50.5, "threshold": 0.301}], "none"),
    ],
)
def test_classification(levels, expected):
    fit = fit_gain_curve(_curves("threshold_linear", levels), reduce_dims="repeat")
    cls = classify_modulation(fit, reference_level=0.0)
    assert list(cls["modulation_class"].values) == ["none", expected]
    assert cls["gain_ratio"].sel(level=0.0) == 1.0


def test_regression_method():
    drive = xr.DataArray(DRIVE, dims="drive")
    base = 40 * np.maximum(drive - 0.2, 0)
    da = xr.concat([base, 1.5 * base, base + 5.0], dim=xr.DataArray([0, 1, 2], dims="level"))
    da = da.assign_coords(drive=DRIVE).assign_attrs(units="Hz")
    reg = regress_modulation(da, reference_level=0)
    np.testing.assert_allclose(reg["slope"], [1.0, 1.5, 1.0], atol=1e-12)
    np.testing.assert_allclose(reg["intercept"], [0.0, 0.0, 5.0], atol=1e-9)


def test_bad_input():
    da = _curves("threshold_linear", [TRUE["threshold_linear"]])
    with pytest.raises(ValueError, match="form='linear' is not one of"):
        fit_gain_curve(da, form="linear")
    with pytest.raises(ValueError, match="dim='current' is not a dimension"):
        fit_gain_curve(da, dim="current")
    with pytest.raises(ValueError, match="needs more than 4 values along 'drive', got 3"):
        fit_gain_curve(da.isel(drive=slice(0, 3)), form="naka_rushton")
    fit = fit_gain_curve(da, reduce_dims="repeat")
    with pytest.raises(ValueError, match=r"reference_level=0\.5 is not a value of 'level'"):
        classify_modulation(fit, reference_level=0.5)
    with pytest.raises(ValueError, match=r"reference_level=0\.5 is not a value of 'level'"):
        regress_modulation(da.mean("repeat"), reference_level=0.5)


def _two_levels(relevant: np.ndarray, irrelevant: np.ndarray, drive: np.ndarray) -> xr.Dataset:
    """Two repeats (+/- 0.02) of a relevant (level 0) and an irrelevant (level 1) curve of one condition."""
    noise = np.array([-0.02, 0.02])
    response = np.stack([relevant, irrelevant])[None, :, :, None] + noise
    return xr.Dataset(
        {"response": (("condition", "level", "drive", "repeat"), response, {"units": "Hz"})},
        coords={"condition": ["b-"], "level": [0.0, 1.0], "drive": drive, "repeat": [0, 1]},
    )


def test_fit_and_classify_screens_curves_the_form_does_not_describe():
    drive = np.linspace(0.0, 2.0, 9)
    relevant = np.maximum(drive - 0.5, 0.0)  # threshold-linear: softplus describes it
    # irrelevant: below 5 % of the largest response but at two drives -> no curve left to fit
    silent = np.where(drive > 1.6, 0.5, 0.0) * 0.1
    out = fit_and_classify(_two_levels(relevant, silent, drive), min_r2=0.9)
    assert float(out["fit_r2_mean"].sel(level=0.0)[0]) > 0.99  # the mean curve is the fitted form
    assert out["fit_ok"].values.tolist() == [[1, 0]]  # 2 responsive drives < 3
    assert np.isnan(out["gain_ratio"].sel(level=1.0)).all() and np.isnan(out["threshold_shift"][0, 1])
    assert out["modulation_class"].values.tolist() == [["none", "suppressed"]]  # the strongest gating
    # a reference curve the form cannot describe (falling with drive): nothing is classified
    falling = 1.5 - 0.5 * drive
    out = fit_and_classify(_two_levels(falling, 0.5 * falling, drive), min_r2=0.9)
    assert out["modulation_class"].values.tolist() == [["unfit", "unfit"]]
    # a plain gain change of a described curve is classified, with its ratio
    out = fit_and_classify(_two_levels(relevant, 0.5 * relevant, drive), min_r2=0.9)
    assert out["modulation_class"].values.tolist() == [["none", "divisive"]]
    assert float(out["gain_ratio"].sel(level=1.0)[0]) == pytest.approx(0.5, rel=0.05)


def test_fit_and_classify_bad_input():
    drive = np.linspace(0.0, 2.0, 9)
    ds = _two_levels(np.maximum(drive - 0.5, 0.0), np.maximum(drive - 0.5, 0.0), drive)
    with pytest.raises(ValueError, match=r"min_r2=1\.5 is outside the valid range \[0, 1\]"):
        fit_and_classify(ds, min_r2=1.5)
    with pytest.raises(ValueError, match=r"lacks the dimension\(s\) \['repeat'\]"):
        fit_and_classify(ds.isel(repeat=0))


def test_fit_is_identical_in_every_python_process():
    """A poorly determined fit (a softplus width on near-linear data) depends on the order of its sums:
    fitted in processes with different string-hash seeds (which reorder xarray's sets), the result must be
    bit-identical (the same seed gives the same dataset)."""
    import os
    import subprocess
    import sys

    code = (
        "import numpy as np, xarray as xr\n"
        "from neuromod.measures import fit_gain_curve\n"
        "rng = np.random.default_rng(0)\n"
        "d = np.linspace(0, 2, 17)\n"
        "y = 0.6 * d[:, None] + 0.2 + 0.1 * rng.standard_normal((17, 128))\n"
        "da = xr.DataArray(y, dims=('drive', 'repeat'), coords={'drive': d}, attrs={'units': '1'})\n"
        "f = fit_gain_curve(da, 'drive', form='softplus', reduce_dims='repeat')\n"
        "print(repr([float(f[k]) for k in ('gain', 'threshold', 'width', 'gain_se')]))\n"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONHASHSEED": str(h)},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for h in (0, 1, 2, 3)
    }
    assert len(outputs) == 1, outputs


def _experiment(form: str, params_by_level: list[dict], *, reference: dict | None = None, seed: int = 0):
    """A one-condition gain-curve experiment (``fit_and_classify`` layout) drawn from `form` with noise
    0.5 Hz; with `reference`, also the unmodulated curve's responses over (drive, repeat)."""
    curves = _curves(form, [*params_by_level, *([reference] if reference else [])], seed=seed)
    levels = np.arange(len(params_by_level), dtype=float)
    response = curves.isel(level=slice(0, len(params_by_level))).transpose("level", "drive", "repeat")
    ds = xr.Dataset(
        {"response": (("condition", "level", "drive", "repeat"), response.values[None], {"units": "Hz"})},
        coords={
            "condition": ["c"],
            "level": levels,
            "drive": DRIVE,
            "repeat": np.arange(curves.sizes["repeat"]),
        },
    )
    if reference is None:
        return ds, None
    ref = curves.isel(level=-1, drop=True).transpose("drive", "repeat").drop_vars("drive")
    return ds, ref.assign_coords(drive=DRIVE)


def test_auto_keeps_threshold_linear_for_straight_curves_and_reports_the_form():
    """Threshold-linear data: the richer forms gain nothing beyond the noise, so the simplest is kept
    (the rule: the first candidate within AIC_MARGIN of the lowest summed AIC)."""
    ds, _ = _experiment("threshold_linear", [{"gain": 50, "threshold": 0.3}, {"gain": 100, "threshold": 0.3}])
    out = fit_and_classify(ds, form="auto")
    assert out["fit_form"].values.tolist() == [["threshold_linear"] * 2]
    assert out["aic_threshold_linear"].item() <= out["aic_saturating"].item() + AIC_MARGIN
    assert out.attrs["fit_form"] == "auto" and np.isnan(out["fit_saturation"]).all()
    assert out["modulation_class"].values.tolist() == [["none", "multiplicative"]]
    ratio, se = float(out["gain_ratio"][0, 1]), float(out["gain_ratio_se"][0, 1])
    assert abs(ratio - 2.0) < Z * se
    # the fitted curves can be drawn from the dataset alone (gain_curve reads the chosen form)
    row = {k[4:]: out[k].isel(condition=0, level=1).values for k in out.data_vars if k.startswith("fit_")}
    np.testing.assert_allclose(
        gain_curve(DRIVE, row, form="auto"), 100 * np.maximum(DRIVE - 0.3, 0), atol=1.0
    )


def test_auto_chooses_the_saturating_form_for_concave_curves_and_recovers_the_input_gain():
    """Concave curves under an input gain k (r(I) = r0(k I)): a straight fit underestimates the gain ratio;
    the saturating form (chosen by AIC) gives the ratio k within Z standard errors."""
    base = TRUE["saturating"]
    levels = [
        {**base, "gain": k * base["gain"], "threshold": base["threshold"] / k, "width": base["width"] / k}
        for k in (1.0, 1.5, 2.0)
    ]
    ds, _ = _experiment("saturating", levels)
    out = fit_and_classify(ds, form="auto")
    assert out["fit_form"].values.tolist() == [["saturating"] * 3]
    assert out["aic_saturating"].item() < out["aic_threshold_linear"].item() - AIC_MARGIN
    ratio, se = out["gain_ratio"].values[0], out["gain_ratio_se"].values[0]
    np.testing.assert_array_less(np.abs(ratio - [1.0, 1.5, 2.0]), Z * se + 1e-12)
    straight = fit_and_classify(ds, form="threshold_linear")["gain_ratio"].values[0]
    assert straight[2] < 2.0 - 10 * se[2]  # what the straight fit made of it


def test_classes_against_an_explicit_unmodulated_reference():
    """Cued (level 0, gain x1.5) and uncued (level 1, gain x0.5) against the unmodulated curve: the cue
    multiplies, its absence divides; against level 0 both changes would be one 'divisive'. Shifts are signed:
    a falling threshold adds (curve moves left), a rising one subtracts."""
    unmod = {"gain": 50.0, "threshold": 0.3}
    ds, ref = _experiment(
        "threshold_linear",
        [{"gain": 75.0, "threshold": 0.3}, {"gain": 25.0, "threshold": 0.3}],
        reference=unmod,
    )
    out = fit_and_classify(ds, form="threshold_linear", reference=ref, signed_shift=True)
    assert out["modulation_class"].values.tolist() == [["multiplicative", "divisive"]]
    np.testing.assert_array_less(
        np.abs(out["gain_ratio"].values[0] - [1.5, 0.5]), Z * out["gain_ratio_se"].values[0]
    )
    assert int(out["reference_fit_ok"][0]) == 1 and out.attrs["reference"] == "explicit unmodulated curve"
    assert fit_and_classify(ds, form="threshold_linear")["modulation_class"].values.tolist() == [
        ["none", "divisive"]
    ]
    ds, ref = _experiment(
        "threshold_linear",
        [{"gain": 50.0, "threshold": 0.2}, {"gain": 50.0, "threshold": 0.45}],
        reference=unmod,
    )
    out = fit_and_classify(ds, form="threshold_linear", reference=ref, signed_shift=True)
    assert out["modulation_class"].values.tolist() == [["additive", "subtractive"]]
    unsigned = fit_and_classify(ds, form="threshold_linear", reference=ref)  # the earlier naming
    assert unsigned["modulation_class"].values.tolist() == [["additive", "additive"]]
    # classify_modulation takes the reference's fit directly
    fits = fit_gain_curve(ds["response"].isel(condition=0), reduce_dims="repeat")
    ref_fit = fit_gain_curve(ref, reduce_dims="repeat")
    cls = classify_modulation(fits, reference=ref_fit, signed_shift=True, threshold_tolerance=0.05)
    assert cls["modulation_class"].values.tolist() == ["additive", "subtractive"]


def test_a_failed_fit_is_never_classified():
    """classify_modulation: a level (or the reference) whose fit failed (NaN, infinite standard error, zero
    gain) is 'unfit' with NaN measures, never 'none'; fit_and_classify: a reference curve that cannot be
    fitted leaves every level unfit."""
    fit = fit_gain_curve(_curves("threshold_linear", [TRUE["threshold_linear"]] * 4), reduce_dims="repeat")
    fit["gain"][1] = np.nan
    fit["gain_se"][2] = np.inf
    fit["gain"][3] = 0.0
    cls = classify_modulation(fit, reference_level=0.0)
    assert cls["modulation_class"].values.tolist() == ["none", "unfit", "unfit", "unfit"]
    assert np.isnan(cls["gain_ratio"][1:]).all() and np.isnan(cls["threshold_shift"][1:]).all()
    bad_ref = fit.copy(deep=True)
    bad_ref["threshold"][0] = np.nan
    cls = classify_modulation(bad_ref, reference_level=0.0)
    assert set(cls["modulation_class"].values) == {"unfit"} and np.isnan(cls["gain_ratio"]).all()
    drive = np.linspace(0.0, 2.0, 9)
    ds = _two_levels(np.maximum(drive - 0.5, 0.0), 0.5 * np.maximum(drive - 0.5, 0.0), drive)
    flat = xr.DataArray(np.full((9, 2), 3.0), dims=("drive", "repeat"), coords={"drive": drive})
    out = fit_and_classify(ds, reference=flat)
    assert out["modulation_class"].values.tolist() == [["unfit", "unfit"]]
    assert int(out["reference_fit_ok"][0]) == 0 and np.isnan(out["gain_ratio"]).all()


def test_fit_and_classify_new_options_check_their_input():
    drive = np.linspace(0.0, 2.0, 9)
    ds = _two_levels(np.maximum(drive - 0.5, 0.0), np.maximum(drive - 0.5, 0.0), drive)
    ref = xr.DataArray(np.zeros((9, 2)), dims=("drive", "repeat"), coords={"drive": drive})
    with pytest.raises(ValueError, match=r"form='sigmoid' is not one of"):
        fit_and_classify(ds, form="sigmoid")
    with pytest.raises(ValueError, match=r"candidates='linear' is not one of"):
        fit_and_classify(ds, form="auto", candidates=["linear"])
    with pytest.raises(ValueError, match="reference must have the drives of ds"):
        fit_and_classify(ds, reference=ref.isel(drive=slice(0, 8)))
    with pytest.raises(ValueError, match="must not have a 'level' dimension"):
        fit_and_classify(ds, reference=ref.expand_dims(level=[0.0]))
    with pytest.raises(ValueError, match=r"reference_level=0\.5 is not a value of 'level'"):
        fit_and_classify(ds, reference_level=0.5)
    with pytest.raises(TypeError, match="signed_shift must be a bool"):
        classify_modulation(
            fit_gain_curve(ds["response"].isel(condition=0), reduce_dims="repeat"), signed_shift=1
        )
    with pytest.raises(ValueError, match=r"params\[\"form\"\]"):
        gain_curve(drive, {"gain": 1.0, "threshold": 0.0}, form="auto")
