"""Gain-curve fits and the classification of a modulation as multiplicative, divisive, additive or mixed.

A gain curve is a response (a firing rate, a gated activation) against a drive (an injected current, an input
strength), measured at several modulation levels. Whether a modulation is *multiplicative* (the slope of the
curve changes), *additive* (the curve shifts along the drive axis) or both is the first question asked of any
gain control (Salinas & Thier 2000; Chance, Abbott & Reyes 2002; Silver 2010). This module answers it from
data:

* :func:`fit_gain_curve` fits a parametric form to every curve of a DataArray with
  :meth:`xarray.DataArray.curvefit` (scipy's ``curve_fit``), returning gain, threshold (and saturation),
  standard errors and R^2;
* :func:`classify_modulation` compares each level's fit with a reference level;
* :func:`regress_modulation` is the model-free check: the modulated response regressed on the reference
  response (slope = gain change, intercept = offset).

References
----------
Salinas, E. & Thier, P. (2000). Gain modulation: a major computational principle of the central nervous
system. Neuron 27:15-21.
Chance, F. S., Abbott, L. F. & Reyes, A. D. (2002). Gain modulation from background synaptic input. Neuron
35:773-782.
Silver, R. A. (2010). Neuronal arithmetic. Nat. Rev. Neurosci. 11:474-489.
Albrecht, D. G. & Hamilton, D. B. (1982). Striate cortex of monkey and cat: contrast response function.
J. Neurophysiol. 48:217-237 (the Naka-Rushton form).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Literal

import numpy as np
import xarray as xr

from neuromod._checks import check_choice, check_positive, check_range

__all__ = [
    "FORMS",
    "classify_modulation",
    "fit_and_classify",
    "fit_gain_curve",
    "gain_curve",
    "regress_modulation",
]

#: A curve responds at a drive where its mean exceeds this fraction of its condition's largest mean.
RESPONSIVE_FRACTION = 0.05
#: Fewest responsive drives for a curve to be fitted (and classified) at all.
MIN_RESPONSIVE_DRIVES = 3

Form = Literal["threshold_linear", "softplus", "naka_rushton"]


def _threshold_linear(x, gain, threshold):
    return gain * np.maximum(x - threshold, 0.0)


def _softplus(x, gain, threshold, width):
    # gain * width * log(1 + exp((x - threshold) / width)), written to avoid overflow
    return gain * width * np.logaddexp(0.0, (x - threshold) / width)


def _naka_rushton(x, saturation, threshold, semi_saturation, exponent):
    u = np.maximum(x - threshold, 0.0)
    un = u**exponent
    return saturation * un / (un + semi_saturation**exponent)


#: The parametric forms, each ``(function, parameter names)``. Every form has a ``threshold`` (the drive at
#: which the response starts to rise); ``gain`` is the slope scale (for Naka-Rushton ``saturation /
#: semi_saturation``, which scales with both response gain and input gain).
FORMS: dict[str, tuple[Callable[..., np.ndarray], tuple[str, ...]]] = {
    "threshold_linear": (_threshold_linear, ("gain", "threshold")),
    "softplus": (_softplus, ("gain", "threshold", "width")),
    "naka_rushton": (_naka_rushton, ("saturation", "threshold", "semi_saturation", "exponent")),
}


def gain_curve(drive, params: xr.Dataset | dict, *, form: Form = "threshold_linear") -> np.ndarray:
    """Evaluate a fitted form at `drive` (for plotting fitted curves over data)."""
    check_choice("form", form, list(FORMS))
    func, names = FORMS[form]
    return func(np.asarray(drive, dtype=float), *(np.asarray(params[n], dtype=float) for n in names))


def _initial_guess(da: xr.DataArray, dim: Hashable, form: str) -> tuple[dict, dict]:
    """Data-driven starting values (DataArrays, one per curve) and bounds for curve_fit."""
    x = da[dim]
    span = float(x.max() - x.min()) or 1.0
    top = da.max(dim)
    # threshold: the last drive at which the response is still below 5 % of the curve's maximum
    below = da.where(da <= 0.05 * top)
    thr = x.where(below.notnull()).max(dim).fillna(x.min())
    upper = da.where(x >= thr)
    slope = (upper.max(dim) - upper.min(dim)) / (x.where(upper.notnull()).max(dim) - thr + 1e-12 * span)
    slope = slope.where(np.isfinite(slope) & (slope > 0), 1.0)
    lo_x, hi_x = float(x.min()) - span, float(x.max()) + span
    if form == "threshold_linear":
        return {"gain": slope, "threshold": thr}, {"gain": (0.0, np.inf), "threshold": (lo_x, hi_x)}
    if form == "softplus":
        return (
            {"gain": slope, "threshold": thr, "width": xr.full_like(thr, 0.05 * span)},
            {"gain": (0.0, np.inf), "threshold": (lo_x, hi_x), "width": (1e-6 * span, span)},
        )
    return (
        {
            "saturation": 1.2 * top,
            "threshold": thr,
            "semi_saturation": xr.full_like(thr, 0.5 * span),
            "exponent": xr.full_like(thr, 1.5),
        },
        {
            "saturation": (0.0, np.inf),
            "threshold": (lo_x, hi_x),
            "semi_saturation": (1e-6 * span, 10 * span),
            "exponent": (0.5, 6.0),
        },
    )


def fit_gain_curve(
    da: xr.DataArray,
    dim: Hashable = "drive",
    *,
    form: Form = "threshold_linear",
    reduce_dims: Hashable | list[Hashable] | None = None,
) -> xr.Dataset:
    """Fit a gain-curve form to every curve in `da` (vectorised over all other dimensions).

    Parameters
    ----------
    da : xarray.DataArray
        Responses with a numeric coordinate `dim` (the drive). Its ``units`` and the drive's ``units`` set
        the units of the fitted parameters. NaNs are skipped.
    dim : str
        The drive dimension.
    form : {"threshold_linear", "softplus", "naka_rushton"}
        ``threshold_linear``: r = g [I - theta]+ ; ``softplus``: r = g w log(1 + exp((I - theta)/w));
        ``naka_rushton``: r = r_max u^n / (u^n + c50^n), u = [I - theta]+ (Albrecht & Hamilton 1982).
    reduce_dims : str or list of str, optional
        Dimensions fitted jointly (e.g. ``"repeat"``: one fit to all repeats of a condition).

    Returns
    -------
    xarray.Dataset
        Over the remaining dimensions: ``gain`` and ``threshold`` (and ``saturation``, ``width``,
        ``semi_saturation``, ``exponent`` where the form has them), each with a standard error
        ``<name>_se`` from the fit covariance, and ``r2`` (coefficient of determination). ``attrs["form"]``
        names the form.

    Raises
    ------
    ValueError
        For an unknown form, a missing dimension or fewer drive values than parameters.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> drive = np.linspace(0, 1, 21)
    >>> r = xr.DataArray(40 * np.maximum(drive - 0.3, 0), coords={"drive": drive}, dims="drive")
    >>> fit = fit_gain_curve(r)
    >>> round(float(fit.gain), 3), round(float(fit.threshold), 3)
    (40.0, 0.3)
    """
    check_choice("form", form, list(FORMS))
    if dim not in da.dims:
        raise ValueError(f"dim={dim!r} is not a dimension of the data; dimensions are {list(da.dims)}")
    func, names = FORMS[form]
    if da.sizes[dim] <= len(names):
        raise ValueError(
            f"{form} has {len(names)} parameters; it needs more than {len(names)} values along {dim!r}, "
            f"got {da.sizes[dim]}"
        )
    reduce = (
        [] if reduce_dims is None else [reduce_dims] if isinstance(reduce_dims, str) else list(reduce_dims)
    )
    guess_source = da.mean(reduce) if reduce else da
    p0, bounds = _initial_guess(guess_source, dim, form)
    # The drive and the jointly fitted dimensions are flattened here, in this order, into one dimension of
    # fit points: xarray's curvefit would order them through a set, i.e. by string hash, which differs
    # between Python processes, so the least-squares sums (and an ill-conditioned fit's last digits) would
    # change from run to run.
    points = "__fit_point__"
    flat = da.stack({points: [dim, *reduce]}, create_index=False)
    fit = flat.curvefit(
        coords=flat[dim],
        func=func,
        reduce_dims=points,
        p0=p0,
        bounds=bounds,
        param_names=list(names),
        skipna=True,
        errors="ignore",
        kwargs={"maxfev": 20000},
    )
    coef = fit["curvefit_coefficients"]
    cov = fit["curvefit_covariance"]
    out = xr.Dataset()
    r_units = da.attrs.get("units", "1")
    d_units = da[dim].attrs.get("units", "1")
    units = {
        "gain": f"{r_units}/{d_units}" if d_units != "1" else r_units,
        "threshold": d_units,
        "width": d_units,
        "saturation": r_units,
        "semi_saturation": d_units,
        "exponent": "1",
    }
    long = {
        "gain": "gain (slope scale)",
        "threshold": "threshold (drive at response onset)",
        "width": "softplus width",
        "saturation": "saturation response",
        "semi_saturation": "semi-saturation drive above threshold",
        "exponent": "Naka-Rushton exponent",
    }
    for name in names:
        value = coef.sel(param=name, drop=True)
        se = np.sqrt(cov.sel(cov_i=name, cov_j=name, drop=True).clip(min=0))
        out[name] = value.assign_attrs(units=units[name], long_name=long[name])
        out[f"{name}_se"] = se.assign_attrs(units=units[name], long_name=f"standard error of {long[name]}")
    if form == "naka_rushton":
        g = out["saturation"] / out["semi_saturation"]
        rel = np.hypot(
            out["saturation_se"] / out["saturation"], out["semi_saturation_se"] / out["semi_saturation"]
        )
        out["gain"] = g.assign_attrs(units=units["gain"], long_name="gain (saturation / semi-saturation)")
        out["gain_se"] = (np.abs(g) * rel).assign_attrs(
            units=units["gain"], long_name="standard error of gain"
        )
    predicted = xr.apply_ufunc(func, da[dim], *(coef.sel(param=n, drop=True) for n in names))
    resid = ((da - predicted) ** 2).sum([dim, *reduce], skipna=True)
    total = ((da - da.mean([dim, *reduce])) ** 2).sum([dim, *reduce], skipna=True)
    out["r2"] = (1 - resid / total.where(total > 0)).assign_attrs(
        units="1", long_name="coefficient of determination R^2"
    )
    return out.assign_attrs(form=form)


def classify_modulation(
    fits: xr.Dataset,
    *,
    reference_level: float | int = 0,
    dim: Hashable = "level",
    z: float = 2.0,
    gain_tolerance: float = 0.1,
    threshold_tolerance: float | None = None,
) -> xr.Dataset:
    """Label each level's modulation relative to a reference level.

    Parameters
    ----------
    fits : xarray.Dataset
        Output of :func:`fit_gain_curve` with a `dim` dimension (``gain``, ``gain_se``, ``threshold``,
        ``threshold_se``).
    reference_level : scalar
        The `dim` coordinate value of the unmodulated curve.
    dim : str
        The modulation-level dimension.
    z : float
        How many standard errors a change must exceed to count (2 ~ 95 %).
    gain_tolerance : float
        Smallest relative gain change that counts (0.1: a gain ratio outside [0.9, 1.1]).
    threshold_tolerance : float, optional
        Smallest threshold shift that counts, in drive units. Default: 10 % of the spread of the reference
        threshold's magnitude plus its standard error, i.e. ``0.1 * max(|theta_ref|, se_ref, tiny)``; pass a
        value in drive units (e.g. 2 % of the drive range) for curves whose threshold is near zero.

    Returns
    -------
    xarray.Dataset
        ``gain_ratio`` (gain / reference gain) with ``gain_ratio_se`` (delta method), ``threshold_shift``
        (threshold - reference threshold) with ``threshold_shift_se``, and ``modulation_class`` (string):

        - ``none``: neither changes beyond both its tolerance and `z` standard errors;
        - ``multiplicative``: only the gain changes, upwards (ratio > 1);
        - ``divisive``: only the gain changes, downwards (ratio < 1), as balanced background input does
          (Chance et al. 2002);
        - ``additive``: only the threshold changes (the curve shifts along the drive axis);
        - ``mixed``: both change.

        The reference level itself is ``none``.
    """
    z = check_positive("z", z)
    gain_tolerance = check_positive("gain_tolerance", gain_tolerance)
    for name in ("gain", "gain_se", "threshold", "threshold_se"):
        if name not in fits:
            raise ValueError(f"fits has no {name!r}; pass the output of fit_gain_curve")
    if dim not in fits.dims:
        raise ValueError(f"dim={dim!r} is not a dimension of fits; dimensions are {list(fits.dims)}")
    if reference_level not in fits[dim].values:
        raise ValueError(
            f"reference_level={reference_level!r} is not a value of {dim!r}; "
            f"values: {fits[dim].values.tolist()}"
        )
    ref = fits.sel({dim: reference_level})
    ratio = fits["gain"] / ref["gain"]
    ratio_se = np.abs(ratio) * np.hypot(fits["gain_se"] / fits["gain"], ref["gain_se"] / ref["gain"])
    shift = fits["threshold"] - ref["threshold"]
    shift_se = np.hypot(fits["threshold_se"], ref["threshold_se"])
    is_ref = fits[dim] == reference_level
    ratio_se = ratio_se.where(~is_ref, 0.0)
    shift_se = shift_se.where(~is_ref, 0.0)
    if threshold_tolerance is None:
        scale = np.maximum(np.abs(ref["threshold"]), ref["threshold_se"])
        tol = 0.1 * np.maximum(scale, 1e-12)
    else:
        tol = check_positive("threshold_tolerance", threshold_tolerance)
    gain_changed = (np.abs(ratio - 1) > gain_tolerance) & (np.abs(ratio - 1) > z * ratio_se) & ~is_ref
    thr_changed = (np.abs(shift) > tol) & (np.abs(shift) > z * shift_se) & ~is_ref
    label = xr.where(
        gain_changed & thr_changed,
        "mixed",
        xr.where(
            gain_changed,
            xr.where(ratio > 1, "multiplicative", "divisive"),
            xr.where(thr_changed, "additive", "none"),
        ),
    ).astype(str)
    t_units = fits["threshold"].attrs.get("units", "1")
    out = xr.Dataset(
        {
            "gain_ratio": ratio.assign_attrs(units="1", long_name="gain relative to the reference level"),
            "gain_ratio_se": ratio_se.assign_attrs(units="1", long_name="standard error of the gain ratio"),
            "threshold_shift": shift.assign_attrs(units=t_units, long_name="threshold shift from reference"),
            "threshold_shift_se": shift_se.assign_attrs(
                units=t_units, long_name="standard error of the threshold shift"
            ),
            "modulation_class": label.assign_attrs(
                units="1", long_name="modulation class (none/multiplicative/divisive/additive/mixed)"
            ),
        }
    )
    return out.assign_attrs(reference_level=float(reference_level), z=z, gain_tolerance=gain_tolerance)


def _r2_mean(ds: xr.Dataset, form: str) -> xr.DataArray:
    """R^2 of each (condition, level) fit against the curve's mean over repeats."""
    drive = ds["drive"].values
    mean = ds["response"].mean("repeat").transpose("condition", "level", "drive").values
    names = FORMS[form][1]
    params = {n: ds[f"fit_{n}"].transpose("condition", "level").values for n in names}
    pred = FORMS[form][0](drive, *(params[n][..., None] for n in names))
    total = ((mean - mean.mean(-1, keepdims=True)) ** 2).sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        r2 = 1.0 - ((mean - pred) ** 2).sum(-1) / total
    r2 = np.where((total > 0) & np.all(np.isfinite(pred), axis=-1), r2, np.nan)
    return xr.DataArray(
        r2, dims=("condition", "level"), coords={"condition": ds["condition"], "level": ds["level"]}
    )


def fit_and_classify(
    ds: xr.Dataset,
    *,
    form: Form = "softplus",
    z: float = 2.0,
    gain_tolerance: float = 0.1,
    threshold_tolerance: float = 0.05,
    min_r2: float = 0.9,
    reference_level: float = 0.0,
) -> xr.Dataset:
    """Fit every (condition, level) curve of ``ds.response``, screen out the curves the fit does not
    describe, and classify each level against the reference level.

    Each curve is fitted jointly over ``repeat`` (:func:`fit_gain_curve`). A curve is *fitted well*
    (``fit_ok = 1``) when the R^2 of the fit against its mean over repeats (``fit_r2_mean``: trial noise
    does not count against the form) reaches `min_r2`, at least :data:`MIN_RESPONSIVE_DRIVES` drives give
    a mean response above :data:`RESPONSIVE_FRACTION` of the condition's largest, and the fitted threshold
    lies inside the drive range (beyond it the fit only extrapolates a tail). The classification
    (:func:`classify_modulation`) is kept only where the curve and its reference are fitted well; else
    ``gain_ratio`` and ``threshold_shift`` are NaN and ``modulation_class`` is ``"suppressed"`` (the
    response stays below 5 % of the largest almost everywhere: the strongest gating, no curve left to fit)
    or ``"unfit"``.

    Parameters
    ----------
    ds : xarray.Dataset
        ``response`` over (``condition``, ``level``, ``drive``, ``repeat``).
    form : {"threshold_linear", "softplus", "naka_rushton"}
        The fitted form (:data:`FORMS`).
    z, gain_tolerance
        As for :func:`classify_modulation`.
    threshold_tolerance : float
        Smallest threshold shift that counts, as a fraction of the drive range.
    min_r2 : float
        Smallest R^2 (against the mean curve) of a curve that is classified.
    reference_level : float
        The ``level`` of the reference curve.

    Returns
    -------
    xarray.Dataset
        `ds` with ``fit_<param>`` (and ``_se``), ``fit_r2``, ``fit_r2_mean`` and ``fit_ok`` over
        (``condition``, ``level``), and ``gain_ratio``, ``threshold_shift`` (with ``_se``) and
        ``modulation_class`` against the reference level.

    Raises
    ------
    ValueError
        A missing variable or dimension, an unknown form or a bad tolerance.
    """
    check_choice("form", form, list(FORMS))
    min_r2 = check_range("min_r2", min_r2, 0.0, 1.0)
    threshold_tolerance = check_positive("threshold_tolerance", threshold_tolerance)
    if "response" not in ds:
        raise ValueError("ds has no 'response'; expected response over (condition, level, drive, repeat)")
    missing = {"condition", "level", "drive", "repeat"} - set(ds["response"].dims)
    if missing:
        raise ValueError(
            f"ds.response lacks the dimension(s) {sorted(missing)}; it has {ds['response'].dims}"
        )
    fits = fit_gain_curve(ds["response"], "drive", form=form, reduce_dims="repeat")
    span = float(ds["drive"].max() - ds["drive"].min())
    classes = classify_modulation(
        fits,
        reference_level=reference_level,
        z=z,
        gain_tolerance=gain_tolerance,
        threshold_tolerance=threshold_tolerance * span,
    )
    out = ds.copy()
    for name, var in fits.data_vars.items():
        out[f"fit_{name}"] = var
    r2 = _r2_mean(out, form)
    mean = ds["response"].mean("repeat")
    active = (mean > RESPONSIVE_FRACTION * mean.max(("level", "drive"))).sum("drive")
    inside = out["fit_threshold"] <= float(ds["drive"].max())
    ok = (r2 >= min_r2) & (active >= MIN_RESPONSIVE_DRIVES) & inside
    reference = ok.sel(level=reference_level)  # a comparison needs the reference curve
    both = ok & reference
    suppressed = (active < MIN_RESPONSIVE_DRIVES) & reference
    for name in ("gain_ratio", "gain_ratio_se", "threshold_shift", "threshold_shift_se"):
        out[name] = classes[name].where(both).assign_attrs(classes[name].attrs)
    kind = xr.where(suppressed, "suppressed", classes["modulation_class"].where(both, "unfit"))
    out["modulation_class"] = kind.astype(str).assign_attrs(
        units="1",
        long_name="modulation class (none/multiplicative/divisive/additive/mixed; suppressed: the response "
        "stays below 5 % of the condition's largest; unfit: the fitted form does not describe the curve)",
    )
    out["fit_r2_mean"] = r2.assign_attrs(units="1", long_name="R^2 of the fit against the mean curve")
    out["fit_ok"] = ok.astype(np.int8).assign_attrs(
        units="1",
        long_name=f"fit describes the mean curve (R^2 >= {min_r2:g}), >= {MIN_RESPONSIVE_DRIVES} drives "
        "respond (> 5 % of the condition's largest) and the fitted threshold lies inside the drive range",
    )
    return out.assign_attrs(fit_form=form, reference_level=float(reference_level), min_r2=min_r2)


def regress_modulation(
    da: xr.DataArray, *, reference_level: float | int = 0, dim: Hashable = "level", over: Hashable = "drive"
) -> xr.Dataset:
    """Regress each level's responses on the reference level's responses, across `over` (the drive).

    A purely multiplicative modulation gives slope = gain ratio and intercept 0; a purely additive (offset)
    one gives slope 1 and a non-zero intercept. Model-free complement of :func:`classify_modulation`.

    Returns
    -------
    xarray.Dataset
        ``slope`` and ``intercept`` (response units) with standard errors ``slope_se`` and ``intercept_se``
        from ordinary least squares.
    """
    if dim not in da.dims or over not in da.dims:
        raise ValueError(f"da must have dimensions {dim!r} and {over!r}, got {list(da.dims)}")
    if reference_level not in da[dim].values:
        raise ValueError(
            f"reference_level={reference_level!r} is not a value of {dim!r}; "
            f"values: {da[dim].values.tolist()}"
        )
    x = da.sel({dim: reference_level})
    y = da
    n = x.count(over)
    var_x = x.var(over, ddof=1)
    slope = xr.cov(x, y, dim=over) / var_x
    intercept = y.mean(over) - slope * x.mean(over)
    resid = y - (intercept + slope * x)
    s2 = (resid**2).sum(over) / (n - 2)
    slope_se = np.sqrt(s2 / (var_x * (n - 1)))
    intercept_se = np.sqrt(s2 * (1 / n + x.mean(over) ** 2 / (var_x * (n - 1))))
    units = da.attrs.get("units", "1")
    return xr.Dataset(
        {
            "slope": slope.assign_attrs(units="1", long_name="slope against the reference response"),
            "slope_se": slope_se.assign_attrs(units="1", long_name="standard error of the slope"),
            "intercept": intercept.assign_attrs(units=units, long_name="intercept (offset)"),
            "intercept_se": intercept_se.assign_attrs(
                units=units, long_name="standard error of the intercept"
            ),
        }
    )
