"""Gain-curve fits and the classification of a modulation as multiplicative, divisive, additive or mixed.

A gain curve is a response (a firing rate, a gated activation) against a drive (an injected current, an input
strength), measured at several modulation levels. Whether a modulation is *multiplicative* (the slope of the
curve changes), *additive* (the curve shifts along the drive axis) or both is the first question asked of any
gain control (Salinas & Thier 2000; Chance, Abbott & Reyes 2002; Silver 2010). This module answers it from
data:

* :func:`fit_gain_curve` fits a parametric form to every curve of a DataArray with
  :meth:`xarray.DataArray.curvefit` (scipy's ``curve_fit``), returning gain, threshold (and saturation),
  standard errors and R^2;
* :func:`classify_modulation` compares each level's fit with a reference level, or with an explicit
  reference (unmodulated) curve;
* :func:`fit_and_classify` fits, screens and classifies the curves of an experiment; ``form="auto"`` picks,
  per condition, the form that describes its curves (threshold-linear or saturating, by AIC);
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
Akaike, H. (1974). A new look at the statistical model identification. IEEE Trans. Autom. Control
19:716-723; Burnham, K. P. & Anderson, D. R. (2002). Model Selection and Multimodel Inference, 2nd ed.,
Springer, sec. 2.6 (models within 2 AIC units of the best have substantial support).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Literal

import numpy as np
import xarray as xr

from neuromod._checks import check_array, check_bool, check_choice, check_positive, check_range

__all__ = [
    "AIC_MARGIN",
    "AUTO_CANDIDATES",
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

#: Forms that :func:`fit_and_classify` chooses from with ``form="auto"``, simplest first.
AUTO_CANDIDATES: tuple[str, ...] = ("threshold_linear", "softplus", "saturating")
#: ``form="auto"`` keeps a simpler candidate unless a later one lowers the AIC by more than this.
AIC_MARGIN = 2.0

#: A parametric form of :data:`FORMS`.
CurveForm = Literal["threshold_linear", "softplus", "naka_rushton", "saturating"]
#: A form that :func:`fit_and_classify` accepts: one of :data:`FORMS` or ``"auto"``.
Form = Literal["threshold_linear", "softplus", "naka_rushton", "saturating", "auto"]


def _threshold_linear(x, gain, threshold):
    return gain * np.maximum(x - threshold, 0.0)


def _softplus(x, gain, threshold, width):
    # gain * width * log(1 + exp((x - threshold) / width)), written to avoid overflow
    return gain * width * np.logaddexp(0.0, (x - threshold) / width)


def _saturating(x, gain, threshold, width, saturation):
    # softplus onset of width w, then hyperbolic saturation: slope `gain` just above the knee, tending to
    # `saturation`; softplus as saturation -> inf, threshold-linear as also w -> 0. The large-drive LIF
    # rate 1 / (t_ref + c / (I - I_rh)) has this form (saturation 1 / t_ref).
    u = gain * width * np.logaddexp(0.0, (x - threshold) / width)
    return u / (1.0 + u / saturation)


def _naka_rushton(x, saturation, threshold, semi_saturation, exponent):
    u = np.maximum(x - threshold, 0.0)
    un = u**exponent
    return saturation * un / (un + semi_saturation**exponent)


#: The parametric forms, each ``(function, parameter names)``. Every form has a ``threshold`` (the drive at
#: which the response starts to rise); ``gain`` is the slope scale (for Naka-Rushton ``saturation /
#: semi_saturation``, which scales with both response gain and input gain). ``saturating`` is
#: ``r = g u / (1 + g u / r_max)`` with the softplus onset ``u = w log(1 + exp((I - theta) / w))``: its gain
#: is the slope above the knee before saturation, which, like threshold-linear's and softplus's, scales by k
#: under an input gain ``I -> k I`` (threshold ``theta / k``, width ``w / k``) and under a response gain
#: ``r -> k r`` (saturation ``k r_max``).
FORMS: dict[str, tuple[Callable[..., np.ndarray], tuple[str, ...]]] = {
    "threshold_linear": (_threshold_linear, ("gain", "threshold")),
    "softplus": (_softplus, ("gain", "threshold", "width")),
    "naka_rushton": (_naka_rushton, ("saturation", "threshold", "semi_saturation", "exponent")),
    "saturating": (_saturating, ("gain", "threshold", "width", "saturation")),
}


def gain_curve(drive, params: xr.Dataset | dict, *, form: Form = "threshold_linear") -> np.ndarray:
    """Evaluate a fitted form at `drive` (for plotting fitted curves over data).

    With ``form="auto"`` the form is ``params["form"]`` (the ``fit_form`` that :func:`fit_and_classify`
    chose for the curve's condition).
    """
    check_choice("form", form, [*FORMS, "auto"])
    if form == "auto":
        if "form" not in params:
            raise ValueError(
                'form="auto" needs the chosen form in params["form"] (fit_and_classify: fit_form)'
            )
        form = check_choice('params["form"]', str(np.asarray(params["form"])), list(FORMS))
    func, names = FORMS[form]
    missing = [n for n in names if n not in params]
    if missing:
        raise ValueError(f"params lacks {missing} of the {form} form; expected {list(names)}")
    drive = check_array("drive", drive, ndim=None, finite=False, nonempty=False)
    return func(drive, *(np.asarray(params[n], dtype=float) for n in names))


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
    if form == "saturating":
        top_ok = top.where(np.isfinite(top) & (top > 0), 1.0)
        return (
            {
                "gain": slope,
                "threshold": thr,
                "width": xr.full_like(thr, 0.05 * span),
                "saturation": 2.0 * top_ok,
            },
            {
                "gain": (0.0, np.inf),
                "threshold": (lo_x, hi_x),
                "width": (1e-6 * span, span),
                "saturation": (1e-12, np.inf),
            },
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
    form: CurveForm = "threshold_linear",
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
    form : {"threshold_linear", "softplus", "naka_rushton", "saturating"}
        ``threshold_linear``: r = g [I - theta]+ ; ``softplus``: r = g w log(1 + exp((I - theta)/w));
        ``naka_rushton``: r = r_max u^n / (u^n + c50^n), u = [I - theta]+ (Albrecht & Hamilton 1982);
        ``saturating``: r = g u / (1 + g u / r_max), u = w log(1 + exp((I - theta)/w)) (softplus onset,
        slope g above it, limit r_max).
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
    if not isinstance(da, xr.DataArray):
        raise TypeError(f"da must be an xarray DataArray with a {dim!r} coordinate, got {type(da).__name__}")
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


def _fit_valid(fits: xr.Dataset) -> xr.DataArray:
    """Where a fit gives a usable gain and threshold: finite values and standard errors, gain > 0."""
    ok = (fits["gain"] > 0) & np.isfinite(fits["gain"]) & np.isfinite(fits["threshold"])
    return ok & np.isfinite(fits["gain_se"]) & np.isfinite(fits["threshold_se"])


def _label(
    gain_changed: xr.DataArray,
    thr_changed: xr.DataArray,
    ratio: xr.DataArray,
    shift: xr.DataArray,
    signed: bool,
) -> xr.DataArray:
    """The class of each comparison (the rule of :func:`classify_modulation`)."""
    shifted = xr.where(shift < 0, "additive", "subtractive") if signed else "additive"
    return xr.where(
        gain_changed & thr_changed,
        "mixed",
        xr.where(
            gain_changed,
            xr.where(ratio > 1, "multiplicative", "divisive"),
            xr.where(thr_changed, shifted, "none"),
        ),
    ).astype(str)


def classify_modulation(
    fits: xr.Dataset,
    *,
    reference_level: float | int = 0,
    dim: Hashable = "level",
    z: float = 2.0,
    gain_tolerance: float = 0.1,
    threshold_tolerance: float | None = None,
    reference: xr.Dataset | None = None,
    signed_shift: bool = False,
) -> xr.Dataset:
    """Label each level's modulation relative to a reference level or an explicit reference curve.

    Parameters
    ----------
    fits : xarray.Dataset
        Output of :func:`fit_gain_curve` with a `dim` dimension (``gain``, ``gain_se``, ``threshold``,
        ``threshold_se``).
    reference_level : scalar
        The `dim` coordinate value of the unmodulated curve (ignored when `reference` is given).
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
    reference : xarray.Dataset, optional
        Fit of an explicit reference curve (the *unmodulated* response), from :func:`fit_gain_curve` with
        the same form and without `dim` (other dimensions broadcast against `fits`). Every level, including
        the first, is then classified against it, so a gain above the unmodulated one is multiplicative and
        one below it divisive, whatever the levels are (without it, every class is relative to
        `reference_level`, e.g. the cued curve, and any gain below it is "divisive").
    signed_shift : bool
        Name a threshold-only change by its direction: ``additive`` when the threshold falls (the curve
        moves left along the drive axis: response added) and ``subtractive`` when it rises (moves right),
        as in Silver (2010). Default False: ``additive`` for either direction (the earlier behaviour).

    Returns
    -------
    xarray.Dataset
        ``gain_ratio`` (gain / reference gain) with ``gain_ratio_se`` (delta method), ``threshold_shift``
        (threshold - reference threshold) with ``threshold_shift_se``, and ``modulation_class`` (string).
        The rule: the gain *changed* when ``|ratio - 1| > gain_tolerance`` and ``|ratio - 1| > z se``; the
        threshold *changed* when ``|shift| > threshold_tolerance`` and ``|shift| > z se``; then

        - ``none``: neither changed;
        - ``multiplicative``: only the gain changed, upwards (ratio > 1);
        - ``divisive``: only the gain changed, downwards (ratio < 1), as balanced background input does
          (Chance et al. 2002);
        - ``additive`` (``subtractive`` with `signed_shift` for a rise): only the threshold changed (the
          curve shifts along the drive axis);
        - ``mixed``: both changed;
        - ``unfit``: the level's fit or the reference's failed (non-finite gain, threshold or standard
          error, or gain <= 0); its measures are NaN. A failed fit is never classified.

        Without `reference`, the reference level itself is ``none`` (``unfit`` if its fit failed).
    """
    z = check_positive("z", z)
    gain_tolerance = check_positive("gain_tolerance", gain_tolerance)
    check_bool("signed_shift", signed_shift)
    for name in ("gain", "gain_se", "threshold", "threshold_se"):
        if name not in fits:
            raise ValueError(f"fits has no {name!r}; pass the output of fit_gain_curve")
    if dim not in fits.dims:
        raise ValueError(f"dim={dim!r} is not a dimension of fits; dimensions are {list(fits.dims)}")
    if reference is not None:
        if not isinstance(reference, xr.Dataset):
            raise TypeError(
                f"reference must be an xarray.Dataset (a fit_gain_curve output), got {reference!r}"
            )
        for name in ("gain", "gain_se", "threshold", "threshold_se"):
            if name not in reference:
                raise ValueError(f"reference has no {name!r}; pass the output of fit_gain_curve")
        if dim in reference.dims:
            raise ValueError(f"reference must not have the dimension {dim!r}: it is one curve per condition")
        ref = reference
        is_ref = xr.zeros_like(fits[dim], dtype=bool)
    else:
        if reference_level not in fits[dim].values:
            raise ValueError(
                f"reference_level={reference_level!r} is not a value of {dim!r}; "
                f"values: {fits[dim].values.tolist()}"
            )
        ref = fits.sel({dim: reference_level})
        is_ref = fits[dim] == reference_level
    if threshold_tolerance is None:
        scale = np.maximum(np.abs(ref["threshold"]), ref["threshold_se"])
        tol = 0.1 * np.maximum(scale, 1e-12)
    else:
        tol = check_positive("threshold_tolerance", threshold_tolerance)
    valid = _fit_valid(fits) & _fit_valid(ref)
    ratio = fits["gain"] / ref["gain"]
    ratio_se = np.abs(ratio) * np.hypot(fits["gain_se"] / fits["gain"], ref["gain_se"] / ref["gain"])
    shift = fits["threshold"] - ref["threshold"]
    shift_se = np.hypot(fits["threshold_se"], ref["threshold_se"])
    ratio_se = ratio_se.where(~is_ref, 0.0)
    shift_se = shift_se.where(~is_ref, 0.0)
    gain_changed = (np.abs(ratio - 1) > gain_tolerance) & (np.abs(ratio - 1) > z * ratio_se) & ~is_ref
    thr_changed = (np.abs(shift) > tol) & (np.abs(shift) > z * shift_se) & ~is_ref
    label = _label(gain_changed, thr_changed, ratio, shift, signed_shift).where(valid, "unfit").astype(str)
    ratio, ratio_se, shift, shift_se = (v.where(valid) for v in (ratio, ratio_se, shift, shift_se))
    t_units = fits["threshold"].attrs.get("units", "1")
    classes = "none/multiplicative/divisive/" + ("additive/subtractive" if signed_shift else "additive")
    out = xr.Dataset(
        {
            "gain_ratio": ratio.assign_attrs(units="1", long_name="gain relative to the reference"),
            "gain_ratio_se": ratio_se.assign_attrs(units="1", long_name="standard error of the gain ratio"),
            "threshold_shift": shift.assign_attrs(units=t_units, long_name="threshold shift from reference"),
            "threshold_shift_se": shift_se.assign_attrs(
                units=t_units, long_name="standard error of the threshold shift"
            ),
            "modulation_class": label.assign_attrs(
                units="1", long_name=f"modulation class ({classes}/mixed; unfit: the fit failed)"
            ),
        }
    )
    attrs = {"z": z, "gain_tolerance": gain_tolerance, "signed_shift": int(signed_shift)}
    if reference is None:
        attrs["reference_level"] = float(reference_level)
    else:
        attrs["reference"] = "explicit reference curve"
    return out.assign_attrs(attrs)


def _predict(drive: xr.DataArray, fits: xr.Dataset, form: str) -> xr.DataArray:
    func, names = FORMS[form]
    return xr.apply_ufunc(func, drive, *(fits[n] for n in names))


def _r2_mean(mean: xr.DataArray, fits: xr.Dataset, form: str) -> xr.DataArray:
    """R^2 of each fit against the curve's mean over repeats (`mean`: responses over drive)."""
    pred = _predict(mean["drive"], fits, form)
    total = ((mean - mean.mean("drive")) ** 2).sum("drive")
    r2 = 1.0 - ((mean - pred) ** 2).sum("drive") / total.where(total > 0)
    return r2.where(np.isfinite(pred).all("drive"))


def _aic(response: xr.DataArray, fits: xr.Dataset, form: str) -> xr.DataArray:
    """Akaike's criterion of each fit over all its points: ``n ln(RSS / n) + 2 k`` (Gaussian residuals)."""
    resid = response - _predict(response["drive"], fits, form)
    n = resid.notnull().sum(("drive", "repeat"))
    rss = (resid**2).sum(("drive", "repeat"), skipna=True)
    k = len(FORMS[form][1])
    aic = n * np.log(np.maximum(rss, 1e-300) / n) + 2 * k
    return aic.where((n > k) & np.isfinite(rss))


def _choose(aic: dict[str, xr.DataArray], margin: float) -> xr.DataArray:
    """Per condition, the first candidate whose summed AIC is within `margin` of the lowest (see
    :func:`fit_and_classify`); the first candidate where no level could be compared."""
    forms = list(aic)
    stack = xr.concat([aic[f] for f in forms], dim="__form__")
    common = stack.notnull().all("__form__")  # the curves every candidate fitted
    total = stack.where(common).sum("level", min_count=1)  # (form, condition)
    best = total.min("__form__")
    within = total <= best + margin
    first = within.argmax("__form__").values
    chosen = np.array(forms, dtype=object)[first]
    chosen = np.where(best.notnull().values, chosen, forms[0])
    return xr.DataArray(chosen.astype(str), dims="condition", coords={"condition": total["condition"]})


def _reference_response(reference: xr.DataArray | xr.Dataset, ds: xr.Dataset) -> xr.DataArray:
    """The reference responses, checked: over drive (the drives of `ds`) and repeat, with or without the
    conditions of `ds`; broadcast to (condition, drive, repeat)."""
    if isinstance(reference, xr.Dataset):
        if "response" not in reference:
            raise ValueError(
                "reference has no 'response'; expected the unmodulated response over (drive, repeat)"
            )
        reference = reference["response"]
    if not isinstance(reference, xr.DataArray):
        raise TypeError(f"reference must be an xarray DataArray or Dataset, got {type(reference).__name__}")
    if "level" in reference.dims:
        raise ValueError("reference must not have a 'level' dimension: it is the one unmodulated curve")
    extra = set(reference.dims) - {"condition", "drive", "repeat"}
    if extra or "drive" not in reference.dims:
        raise ValueError(
            f"reference must be over (drive, repeat) or (condition, drive, repeat), got {reference.dims}"
        )
    if reference.sizes["drive"] != ds.sizes["drive"] or not np.allclose(
        reference["drive"].values, ds["drive"].values
    ):
        raise ValueError("reference must have the drives of ds")
    if "condition" in reference.dims and set(reference["condition"].values) != set(ds["condition"].values):
        ref_conditions, conditions = list(reference["condition"].values), list(ds["condition"].values)
        raise ValueError(f"reference has conditions {ref_conditions}, ds has {conditions}")
    if "repeat" not in reference.dims:
        reference = reference.expand_dims(repeat=[0])
    reference = reference.assign_coords(drive=ds["drive"].values)
    return reference.broadcast_like(ds["condition"]).transpose("condition", "drive", "repeat")


def _fit_forms(
    response: xr.DataArray,
    ref_resp: xr.DataArray | None,
    forms: Sequence[str],
    form: str,
    condition: xr.DataArray,
) -> tuple[dict, dict, dict | None, xr.DataArray]:
    """Each candidate form fitted to the curves (and the reference curve), their AIC and the form chosen per
    condition (``form`` itself unless it is ``"auto"``)."""
    fits_by = {f: fit_gain_curve(response, "drive", form=f, reduce_dims="repeat") for f in forms}
    ref_by = (
        {}
        if ref_resp is None
        else {f: fit_gain_curve(ref_resp, "drive", form=f, reduce_dims="repeat") for f in forms}
    )
    if form == "auto":
        aic = {f: _aic(response, fits_by[f], f) for f in forms}
        if ref_resp is not None:  # the reference curve counts like one more level
            aic = {
                f: xr.concat([aic[f], _aic(ref_resp, ref_by[f], f).expand_dims(level=[np.nan])], "level")
                for f in forms
            }
        return fits_by, ref_by, aic, _choose(aic, AIC_MARGIN).reindex(condition=condition)
    return fits_by, ref_by, None, xr.full_like(condition, form, dtype=object).astype(str)


def _with_auto_form(
    out: xr.Dataset, chosen: xr.DataArray, aic: dict, forms: Sequence[str], level: xr.DataArray
) -> xr.Dataset:
    """`out` with the chosen form over (condition, level) and each candidate's AIC summed over the curves."""
    # over (condition, level) like every fit_<param>, so a curve's fit_* values hold its form
    out["fit_form"] = (
        chosen.broadcast_like(level)
        .transpose("condition", "level")
        .assign_attrs(units="1", long_name=f"fitted form chosen by AIC from {', '.join(forms)}")
    )
    for f in forms:
        out[f"aic_{f}"] = (
            aic[f]
            .where(xr.concat([aic[g] for g in forms], "__f__").notnull().all("__f__"))
            .sum("level", min_count=1)
        ).assign_attrs(units="1", long_name=f"AIC of the {f} fits, summed over the compared curves")
    return out


def _check_curves(
    ds: xr.Dataset, form: str, candidates: Sequence[str], reference: object, reference_level: float
) -> list[str]:
    """The checks of :func:`fit_and_classify` on its curves and options: the candidate forms, checked."""
    if "response" not in ds:
        raise ValueError("ds has no 'response'; expected response over (condition, level, drive, repeat)")
    missing = {"condition", "level", "drive", "repeat"} - set(ds["response"].dims)
    if missing:
        raise ValueError(
            f"ds.response lacks the dimension(s) {sorted(missing)}; it has {ds['response'].dims}"
        )
    if isinstance(candidates, str):
        raise TypeError(f"candidates must be a sequence of form names, got the string {candidates!r}")
    candidates = [check_choice("candidates", c, list(FORMS)) for c in candidates]
    if form == "auto" and not candidates:
        raise ValueError('form="auto" needs at least one candidate form')
    if reference is None and reference_level not in ds["level"].values:
        raise ValueError(
            f"reference_level={reference_level!r} is not a value of 'level'; "
            f"values: {ds['level'].values.tolist()}"
        )
    return candidates


def fit_and_classify(
    ds: xr.Dataset,
    *,
    form: Form = "softplus",
    z: float = 2.0,
    gain_tolerance: float = 0.1,
    threshold_tolerance: float = 0.05,
    min_r2: float = 0.9,
    reference_level: float = 0.0,
    reference: xr.DataArray | xr.Dataset | None = None,
    signed_shift: bool = False,
    candidates: Sequence[str] = AUTO_CANDIDATES,
) -> xr.Dataset:
    """Fit every (condition, level) curve of ``ds.response``, screen out the curves the fit does not
    describe, and classify each level against the reference level (or an explicit reference curve).

    Each curve is fitted jointly over ``repeat`` (:func:`fit_gain_curve`). A curve is *fitted well*
    (``fit_ok = 1``) when its fit converged (finite gain, threshold and standard errors, gain > 0), the R^2
    of the fit against its mean over repeats (``fit_r2_mean``: trial noise does not count against the form)
    reaches `min_r2`, at least ``MIN_RESPONSIVE_DRIVES`` drives give a mean response above
    ``RESPONSIVE_FRACTION`` of the condition's largest, and the fitted threshold lies inside the drive
    range (beyond it the fit only extrapolates a tail). The classification (:func:`classify_modulation`) is
    kept only where the curve and its reference are fitted well; else ``gain_ratio`` and
    ``threshold_shift`` are NaN and ``modulation_class`` is ``"suppressed"`` (the response stays below 5 %
    of the largest almost everywhere: the strongest gating, no curve left to fit) or ``"unfit"``. A curve
    whose fit failed is never classified.

    Choosing the form (``form="auto"``). Every curve of a condition (and its explicit reference curve) is
    fitted with each of `candidates` (default threshold-linear, then saturating); each fit gets Akaike's
    criterion over all its points, ``AIC = n ln(RSS / n) + 2 k`` (k parameters). Per condition the AICs
    are summed over the curves that every candidate fitted (finite AIC); the condition gets the first
    candidate (the simplest) whose sum lies within :data:`AIC_MARGIN` (2) of the lowest (Burnham & Anderson
    2002: within 2, both have substantial support, so the simpler form is kept): threshold-linear when it
    describes the curves, the saturating form when their concavity is real beyond the trial noise. All
    levels of a condition share the form, so their gains and thresholds are comparable. The chosen form is
    ``fit_form`` (per condition, repeated over its levels) and each candidate's summed AIC ``aic_<form>``.

    Parameters
    ----------
    ds : xarray.Dataset
        ``response`` over (``condition``, ``level``, ``drive``, ``repeat``).
    form : {"threshold_linear", "softplus", "naka_rushton", "saturating", "auto"}
        The fitted form (:data:`FORMS`), or ``"auto"``: chosen per condition (above).
    z, gain_tolerance
        As for :func:`classify_modulation`.
    threshold_tolerance : float
        Smallest threshold shift that counts, as a fraction of the drive range.
    min_r2 : float
        Smallest R^2 (against the mean curve) of a curve that is classified.
    reference_level : float
        The ``level`` of the reference curve (not used when `reference` is given).
    reference : xarray.DataArray or Dataset, optional
        The *unmodulated* response, over (``drive``, ``repeat``) or (``condition``, ``drive``,
        ``repeat``), at the drives of `ds` (a Dataset: its ``response``). It is fitted with the same form and
        screened like the other curves, and every level is classified against it
        (:func:`classify_modulation`): a gain above the unmodulated one is multiplicative, below it
        divisive, whichever level is cued.
    signed_shift : bool
        ``additive`` for a falling threshold (curve moves left), ``subtractive`` for a rising one (default
        False: ``additive`` for both, the earlier behaviour).
    candidates : sequence of str
        The forms ``"auto"`` chooses from, simplest first (default :data:`AUTO_CANDIDATES`).

    Returns
    -------
    xarray.Dataset
        `ds` with ``fit_<param>`` (and ``_se``), ``fit_r2``, ``fit_r2_mean`` and ``fit_ok`` over
        (``condition``, ``level``), and ``gain_ratio``, ``threshold_shift`` (with ``_se``) and
        ``modulation_class`` against the reference. With ``form="auto"`` also ``fit_form`` and
        ``aic_<form>`` (per condition; the parameters of a form not chosen are NaN); with `reference` also
        ``reference_fit_<param>``, ``reference_fit_r2_mean`` and ``reference_fit_ok`` (per condition).
        ``attrs["fit_form"]`` is the form argument.

    Raises
    ------
    ValueError
        A missing variable or dimension, an unknown form, a bad tolerance or a reference that does not match.
    """
    check_choice("form", form, [*FORMS, "auto"])
    min_r2 = check_range("min_r2", min_r2, 0.0, 1.0)
    threshold_tolerance = check_positive("threshold_tolerance", threshold_tolerance)
    candidates = _check_curves(ds, form, candidates, reference, reference_level)
    response, ref_resp = ds["response"], None if reference is None else _reference_response(reference, ds)
    forms = candidates if form == "auto" else [form]
    fits_by, ref_by, aic, chosen = _fit_forms(response, ref_resp, forms, form, ds["condition"])
    fits = _merge_by_form(fits_by, chosen)
    mean = response.mean("repeat")
    r2 = _merge_by_form({f: _r2_mean(mean, fits_by[f], f).to_dataset(name="r2") for f in forms}, chosen)["r2"]
    top = mean.max(("level", "drive"))
    if ref_resp is not None:
        ref_fits = _merge_by_form(ref_by, chosen)
        ref_mean = ref_resp.mean("repeat")
        ref_r2 = _merge_by_form(
            {f: _r2_mean(ref_mean, ref_by[f], f).to_dataset(name="r2") for f in forms}, chosen
        )["r2"]
        top = np.maximum(top, ref_mean.max("drive"))
    span = float(ds["drive"].max() - ds["drive"].min())

    def screen(fit: xr.Dataset, r2_: xr.DataArray, mean_: xr.DataArray) -> tuple[xr.DataArray, xr.DataArray]:
        active = (mean_ > RESPONSIVE_FRACTION * top).sum("drive")
        inside = fit["threshold"] <= float(ds["drive"].max())
        return _fit_valid(fit) & (r2_ >= min_r2) & (active >= MIN_RESPONSIVE_DRIVES) & inside, active

    ok, active = screen(fits, r2, mean)
    if ref_resp is None:
        ref_ok, against = ok.sel(level=reference_level), {"reference_level": reference_level}
    else:
        ref_ok, against = screen(ref_fits, ref_r2, ref_mean)[0], {"reference": ref_fits}
    classes = classify_modulation(
        fits,
        **against,
        z=z,
        gain_tolerance=gain_tolerance,
        threshold_tolerance=threshold_tolerance * span,
        signed_shift=signed_shift,
    )
    out = ds.assign({f"fit_{name}": var for name, var in fits.data_vars.items()})
    both = ok & ref_ok
    suppressed = (active < MIN_RESPONSIVE_DRIVES) & ref_ok
    for name in ("gain_ratio", "gain_ratio_se", "threshold_shift", "threshold_shift_se"):
        out[name] = classes[name].where(both).assign_attrs(classes[name].attrs)
    kind = xr.where(suppressed, "suppressed", classes["modulation_class"].where(both, "unfit"))
    shifts = "additive/subtractive" if signed_shift else "additive"
    out["modulation_class"] = kind.astype(str).assign_attrs(
        units="1",
        long_name=f"modulation class (none/multiplicative/divisive/{shifts}/mixed; suppressed: the response "
        "stays below 5 % of the condition's largest; unfit: the fitted form does not describe the curve)",
    )
    out["fit_r2_mean"] = r2.assign_attrs(units="1", long_name="R^2 of the fit against the mean curve")
    ok_doc = (
        f"fit converged and describes the mean curve (R^2 >= {min_r2:g}), >= {MIN_RESPONSIVE_DRIVES} drives "
        "respond (> 5 % of the condition's largest) and the fitted threshold lies inside the drive range"
    )
    out["fit_ok"] = ok.astype(np.int8).assign_attrs(units="1", long_name=ok_doc)
    attrs = {"fit_form": form, "min_r2": min_r2, "signed_shift": int(signed_shift)}
    if form == "auto":
        out = _with_auto_form(out, chosen, aic, forms, ds["level"])
        attrs.update(aic_margin=AIC_MARGIN, candidates=",".join(forms))
    if ref_resp is None:
        attrs["reference_level"] = float(reference_level)
    else:
        attrs["reference"] = "explicit unmodulated curve"
        out = out.assign({f"reference_fit_{name}": var for name, var in ref_fits.data_vars.items()})
        out["reference_fit_r2_mean"] = ref_r2.assign_attrs(
            units="1", long_name="R^2 of the reference fit against its mean curve"
        )
        out["reference_fit_ok"] = ref_ok.astype(np.int8).assign_attrs(units="1", long_name=ok_doc)
    return out.assign_attrs(attrs)


def _merge_by_form(by_form: dict[str, xr.Dataset], chosen: xr.DataArray) -> xr.Dataset:
    """Per condition, the variables of the chosen form's dataset (variables of other forms: NaN)."""
    names = list(dict.fromkeys(n for f in by_form.values() for n in f.data_vars))
    out = xr.Dataset()
    for name in names:
        merged = None
        for f, fits in by_form.items():
            if name not in fits:
                continue
            part = fits[name].where(chosen == f)
            merged = part if merged is None else merged.fillna(part)
            attrs = fits[name].attrs
        out[name] = merged.assign_attrs(attrs)
    return out


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
