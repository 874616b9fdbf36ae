"""Cross-model comparison: which measured effects each model shows, and whether it matches a reference.

:func:`agreement` reads a summary with a ``model`` dimension (the ``summary`` group of ``neuromod run
task-switching``, :func:`neuromod.protocols.run_task_switching`) in which each measure ``x`` has its
confidence bounds ``x_low`` and ``x_high`` (and, when available, its standard error ``x_se``), and answers
two questions per (measure, model):

* is the effect *present*: does the interval exclude 0 (for differences such as switch costs) or, for a
  measure with a natural null other than 0 (e.g. chance accuracy 0.5), that null;
* does the model *agree* with the reference model, by an equivalence test with a stated margin: two one-sided
  tests (TOST; Schuirmann 1987) of the difference model minus reference. The model is ``equivalent`` only
  when the ``1 - 2 alpha`` (90 %) interval of the difference lies inside ``(-margin, margin)``;
  ``different`` when the ``1 - alpha`` (95 %) interval excludes 0 (and equivalence is not shown);
  otherwise ``inconclusive``: too few trials to tell, which is *not* agreement.

Overlap of two intervals (the criterion used before) does not show that two values are equal (Schenker &
Gentleman 2001); it is kept as :func:`interval_overlap` for callers that have no margins.
:func:`equivalence_test` is the TOST itself, for any difference with a standard error (e.g. the paired,
same-trial contrasts of :func:`neuromod.measures.model_contrast`).

References
----------
Schuirmann, D. J. (1987). A comparison of the two one-sided tests procedure and the power approach for
assessing the equivalence of average bioavailability. J. Pharmacokinet. Biopharm. 15:657-680.
Lakens, D. (2017). Equivalence tests: a practical primer for t tests, correlations, and meta-analyses. Soc.
Psychol. Personal. Sci. 8:355-362.
Schenker, N. & Gentleman, J. F. (2001). On judging the significance of differences by examining the overlap
between confidence intervals. Am. Stat. 55:182-186.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr
from scipy import stats

from neuromod._checks import check_range
from neuromod.results import var_attrs as _attrs

__all__ = ["DEFAULT_MEASURES", "agreement", "equivalence_test", "interval_overlap"]

#: Measures compared by default, with their null value (the value of "no effect").
DEFAULT_MEASURES: Mapping[str, float] = {
    "accuracy": 0.5,
    "rt_switch_cost": 0.0,
    "error_switch_cost": 0.0,
    "rt_congruency_effect": 0.0,
    "error_congruency_effect": 0.0,
}


def _read_summary(summary: Any, reference: str, measures: Any):
    """Checked (names, nulls, models, value, low, high) of the measures in a summary along ``model``."""
    if not isinstance(summary, xr.Dataset):
        raise TypeError(f"summary must be an xarray Dataset, got {type(summary).__name__}")
    if "model" not in summary.dims:
        raise ValueError(f"summary has no 'model' dimension; dimensions are {list(summary.dims)}")
    models = [str(m) for m in summary["model"].values]
    if reference not in models:
        raise ValueError(f"reference={reference!r} is not a model of the summary; models: {models}")
    if measures is None:
        measures = DEFAULT_MEASURES
    if isinstance(measures, str):
        raise TypeError(f"measures must be a mapping or a sequence of names, got the string {measures!r}")
    nulls = dict(measures) if isinstance(measures, Mapping) else {name: 0.0 for name in measures}
    if not nulls:
        raise ValueError("measures is empty: name at least one measure")
    for name in nulls:
        missing = [v for v in (name, f"{name}_low", f"{name}_high") if v not in summary]
        if missing:
            raise ValueError(
                f"summary lacks {missing} for measure {name!r}; it has {sorted(summary.data_vars)}"
            )
        if summary[name].dims != ("model",):
            raise ValueError(f"measure {name!r} has dims {summary[name].dims}; expected ('model',)")
    names = list(nulls)
    value = np.stack([summary[n].values.astype(float) for n in names])
    low = np.stack([summary[f"{n}_low"].values.astype(float) for n in names])
    high = np.stack([summary[f"{n}_high"].values.astype(float) for n in names])
    return names, nulls, models, value, low, high


def _present(low: np.ndarray, high: np.ndarray, null: np.ndarray) -> np.ndarray:
    defined = np.isfinite(low) & np.isfinite(high)
    return np.where(defined, ((low > null) | (high < null)).astype(np.int8), -1).astype(np.int8)


def interval_overlap(
    summary: xr.Dataset,
    *,
    reference: str = "se",
    measures: Mapping[str, float] | Sequence[str] | None = None,
) -> xr.Dataset:
    """Effect presence and overlap of intervals with a reference model, per measure and model (legacy).

    The criterion :func:`agreement` used before it tested equivalence: "agrees" here means only "not shown to
    differ with these trials" (Schenker & Gentleman 2001), so an underpowered comparison "agrees". Prefer
    :func:`agreement` with margins; this is kept for callers without margins.

    Parameters
    ----------
    summary : xarray.Dataset
        Scalar measures along ``model`` with bounds ``<measure>_low`` and ``<measure>_high``.
    reference : str
        The model the others are compared with (default ``"se"``: the SE gate, whose gains the others
        receive).
    measures : mapping of name -> null value, or sequence of names (null 0), optional
        Default ``DEFAULT_MEASURES``.

    Returns
    -------
    xarray.Dataset
        Over (``measure``, ``model``): ``value``, ``low``, ``high``; ``present`` (1 when the interval
        excludes the measure's null value, 0 when it includes it; -1 when undefined) and ``agrees`` (1 when
        the interval overlaps the reference model's, 0 when not, -1 when undefined); ``null`` and ``units``
        over ``measure``.

    Raises
    ------
    ValueError
        No ``model`` dimension, an unknown reference, or a measure (or its bounds) missing.

    Examples
    --------
    >>> import xarray as xr
    >>> s = xr.Dataset({"rt_switch_cost": ("model", [40.0, 5.0]),
    ...                 "rt_switch_cost_low": ("model", [10.0, -20.0]),
    ...                 "rt_switch_cost_high": ("model", [70.0, 30.0])}, coords={"model": ["se", "rate"]})
    >>> out = interval_overlap(s, measures=["rt_switch_cost"])
    >>> out["present"].values.tolist(), out["agrees"].values.tolist()
    ([[1, 0]], [[1, 1]])
    """
    names, nulls, models, value, low, high = _read_summary(summary, reference, measures)
    null = np.array([nulls[n] for n in names], dtype=float)[:, None]
    ref = models.index(reference)
    defined = np.isfinite(low) & np.isfinite(high)
    present = _present(low, high, null)
    overlap = (low <= high[:, ref : ref + 1]) & (low[:, ref : ref + 1] <= high)
    both = defined & defined[:, ref : ref + 1]
    agrees = np.where(both, overlap.astype(np.int8), -1).astype(np.int8)
    dims = ("measure", "model")
    units = [str(summary[n].attrs.get("units", "1")) for n in names]
    return xr.Dataset(
        {
            "value": (dims, value, _attrs("various", "measured value (units per measure: see 'units')")),
            "low": (dims, low, _attrs("various", "lower confidence bound")),
            "high": (dims, high, _attrs("various", "upper confidence bound")),
            "present": (
                dims,
                present,
                _attrs("1", "interval excludes the null value (1), includes it (0), undefined (-1)"),
            ),
            "agrees": (
                dims,
                agrees,
                _attrs("1", f"interval overlaps {reference!r}'s (1), does not (0), undefined (-1)"),
            ),
            "null": ("measure", null[:, 0], _attrs("various", "value of no effect")),
            "units": ("measure", units, _attrs("1", "units of the measure")),
        },
        coords={
            "measure": ("measure", names, _attrs("1", "measure")),
            "model": ("model", models, _attrs("1", "model")),
        },
        attrs={"reference": reference, "criterion": "95 % interval overlap (Schenker & Gentleman 2001)"},
    )


def _int8(x: np.ndarray, defined: np.ndarray) -> np.ndarray:
    return np.where(defined, x.astype(np.int8), -1).astype(np.int8)


def equivalence_test(
    difference: Any,
    se: Any,
    margin: Any,
    *,
    alpha: float = 0.05,
    df: Any = None,
) -> xr.Dataset:
    """Two one-sided tests (TOST) of equivalence of a difference within ``(-margin, margin)``.

    The difference is *equivalent* (to 0, within the margin) when both one-sided tests reject at `alpha`,
    i.e. when its ``1 - 2 alpha`` interval lies strictly inside ``(-margin, margin)`` (Schuirmann 1987). It
    *differs* (from 0) when its ``1 - alpha`` interval excludes 0. Verdicts: ``"equivalent"`` (whether or
    not it also differs: a nonzero difference smaller than the margin), ``"different"`` (differs and not
    equivalent), ``"inconclusive"`` (neither: the data cannot tell, e.g. too few trials) and
    ``"undefined"`` (a non-finite difference or standard error).

    Parameters
    ----------
    difference, se : float, array-like or xarray.DataArray
        The difference and its standard error (broadcast together).
    margin : float, array-like or xarray.DataArray
        The equivalence margin (> 0), in the difference's units (e.g. ms for RT costs).
    alpha : float
        Level of each one-sided test, in (0, 0.5) (default 0.05: a 90 % interval for equivalence, a 95 %
        interval for the difference).
    df : float, array-like or xarray.DataArray, optional
        Degrees of freedom of a t reference distribution; None (default) for the normal.

    Returns
    -------
    xarray.Dataset
        ``difference``, ``se``, ``margin``; ``low``, ``high`` (the ``1 - 2 alpha`` interval);
        ``p_equivalence`` (the TOST p-value, the larger of the two one-sided ones) and ``p_difference``
        (two-sided);
        ``equivalent`` and ``differs`` (int8: 1, 0, or -1 undefined); ``verdict`` (str).

    Raises
    ------
    ValueError
        A margin that is not > 0, or `alpha` outside (0, 0.5).

    Examples
    --------
    >>> out = equivalence_test([1.0, 1.0, 30.0], [2.0, 20.0, 2.0], 10.0)
    >>> out["verdict"].values.tolist()
    ['equivalent', 'inconclusive', 'different']
    """
    check_range("alpha", alpha, 0.0, 0.5, low_inclusive=False, high_inclusive=False)
    d, s, m = (
        x if isinstance(x, xr.DataArray) else xr.DataArray(np.asarray(x, dtype=float))
        for x in (difference, se, margin)
    )
    d, s, m = xr.broadcast(d.astype(float), s.astype(float), m.astype(float))
    if np.any(~np.isfinite(m.values)) or np.any(m.values <= 0):
        raise ValueError(
            f"margin={np.asarray(m.values).tolist()!r} must be finite and > 0 (units of the difference)"
        )
    if df is None:
        dist: Any = stats.norm
        nu = None
    else:
        nu = df if isinstance(df, xr.DataArray) else xr.DataArray(np.asarray(df, dtype=float))
        nu = nu.broadcast_like(d).astype(float)
        if np.any(~(nu.values > 0)):
            raise ValueError(f"df={np.asarray(nu.values).tolist()!r} must be > 0 (or None for the normal)")
        dist = stats.t
    args = () if nu is None else (nu.values,)
    q1 = dist.ppf(1 - alpha, *args)
    q2 = dist.ppf(1 - alpha / 2, *args)
    dv, sv, mv = d.values, s.values, m.values
    defined = np.isfinite(dv) & np.isfinite(sv) & (sv >= 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        low, high = dv - q1 * sv, dv + q1 * sv
        p_low = dist.sf((dv + mv) / sv, *args)  # H0: difference <= -margin
        p_high = dist.cdf((dv - mv) / sv, *args)  # H0: difference >= margin
        p_diff = 2 * dist.sf(np.abs(dv) / sv, *args)
    p_eq = np.where(defined, np.maximum(p_low, p_high), np.nan)
    p_diff = np.where(defined, np.where(np.isnan(p_diff), 1.0, p_diff), np.nan)
    equivalent = (low > -mv) & (high < mv)
    differs = (dv - q2 * sv > 0) | (dv + q2 * sv < 0)
    verdict = np.where(
        ~defined,
        "undefined",
        np.where(equivalent, "equivalent", np.where(differs, "different", "inconclusive")),
    )
    dims = d.dims
    units = str(getattr(difference, "attrs", {}).get("units", "1"))
    out = xr.Dataset(
        {
            "difference": (dims, dv, _attrs(units, "difference")),
            "se": (dims, sv, _attrs(units, "standard error of the difference")),
            "margin": (dims, mv, _attrs(units, "equivalence margin")),
            "low": (
                dims,
                np.where(defined, low, np.nan),
                _attrs(units, f"lower {100 * (1 - 2 * alpha):g} % bound"),
            ),
            "high": (
                dims,
                np.where(defined, high, np.nan),
                _attrs(units, f"upper {100 * (1 - 2 * alpha):g} % bound"),
            ),
            "p_equivalence": (dims, p_eq, _attrs("1", "TOST p-value (larger one-sided p)")),
            "p_difference": (dims, p_diff, _attrs("1", "two-sided p-value of difference 0")),
            "equivalent": (
                dims,
                _int8(equivalent, defined),
                _attrs(
                    "1", f"{100 * (1 - 2 * alpha):g} % interval inside (-margin, margin): 1, 0, -1 undefined"
                ),
            ),
            "differs": (
                dims,
                _int8(differs, defined),
                _attrs("1", f"{100 * (1 - alpha):g} % interval excludes 0: 1, 0, -1 undefined"),
            ),
            "verdict": (
                dims,
                verdict.astype(str),
                _attrs("1", "equivalent, different, inconclusive or undefined"),
            ),
        },
        coords=d.coords,
        attrs={
            "alpha": alpha,
            "test": "two one-sided tests (Schuirmann 1987)",
            "reference_distribution": "normal" if nu is None else "Student t",
        },
    )
    return out


def _margins(margins: Mapping[str, Any], names: list[str]) -> np.ndarray:
    """One finite, positive margin per measure, in the order of `names` (or a clear error)."""
    if not isinstance(margins, Mapping):
        raise TypeError(f"margins must be a mapping of measure -> margin, got {margins!r}")
    missing = [n for n in names if n not in margins]
    if missing:
        raise ValueError(
            f"margins={dict(margins)!r} lacks the measure(s) {missing}; give each measure a margin"
        )
    margin = np.empty(len(names))
    for i, n in enumerate(names):
        try:
            margin[i] = float(margins[n])
        except (TypeError, ValueError) as err:
            raise TypeError(f"margins[{n!r}]={margins[n]!r} must be a number") from err
        if not np.isfinite(margin[i]) or margin[i] <= 0:
            raise ValueError(f"margins[{n!r}]={margins[n]!r} must be finite and > 0 (units of the measure)")
    return margin


def _standard_errors(summary: xr.Dataset, names: list[str], level: float) -> np.ndarray:
    """(measure, model) standard errors: ``<measure>_se`` where given, else from the interval bounds."""
    z = stats.norm.ppf(0.5 + level / 2)
    return np.stack(
        [
            summary[f"{n}_se"].values.astype(float)
            if f"{n}_se" in summary and summary[f"{n}_se"].dims == ("model",)
            else (summary[f"{n}_high"].values.astype(float) - summary[f"{n}_low"].values.astype(float))
            / (2 * z)
            for n in names
        ]
    )


def _verdicts(tost: xr.Dataset, ref_defined: np.ndarray, ref: int) -> tuple[np.ndarray, ...]:
    """TOST verdicts, equivalent/differs flags and the agreement code, with the reference model's column
    set to "reference" (or "undefined" where its value is not)."""
    verdict = tost["verdict"].values.astype(object)
    equivalent, differs = tost["equivalent"].values.copy(), tost["differs"].values.copy()
    verdict[:, ref] = np.where(ref_defined, "reference", "undefined")
    equivalent[:, ref] = np.where(ref_defined, 1, -1)
    differs[:, ref] = np.where(ref_defined, 0, -1)
    agrees = np.select(
        [verdict == "equivalent", verdict == "different", verdict == "reference"], [1, 0, 1], -1
    )
    return verdict, equivalent, differs, agrees


def agreement(
    summary: xr.Dataset,
    *,
    reference: str = "se",
    measures: Mapping[str, float] | Sequence[str] | None = None,
    margins: Mapping[str, float] | None = None,
    alpha: float = 0.05,
    level: float | None = None,
) -> xr.Dataset:
    """Effect presence and equivalence with a reference model (TOST with stated margins), per measure/model.

    For each model and measure the difference model minus reference is tested for equivalence within
    ``(-margin, margin)`` by :func:`equivalence_test` (two one-sided tests at `alpha`): ``"equivalent"`` only
    when its 90 % interval (``1 - 2 alpha``) lies inside the margins, ``"different"`` when its 95 % interval
    excludes 0 and equivalence is not shown, ``"inconclusive"`` otherwise: an underpowered comparison does
    not count as agreement.

    The difference's standard error is ``sqrt(se_model^2 + se_reference^2)``: each ``se`` is the summary's
    ``<measure>_se`` when present, otherwise the half-width of its interval over the normal quantile of
    `level` (approximate for asymmetric intervals such as Wilson's). This treats the two models' estimates as
    independent. Models run on the same trials are usually positively correlated, which makes this
    standard error too large: the test is then conservative, and it is more likely to return
    ``"inconclusive"``. :func:`neuromod.measures.model_contrast` gives the paired, same-trial difference.

    Parameters
    ----------
    summary : xarray.Dataset
        Scalar measures along ``model`` with bounds ``<measure>_low``/``<measure>_high`` (and optionally
        ``<measure>_se``).
    reference : str
        The model the others are compared with (default ``"se"``).
    measures : mapping of name -> null value, or sequence of names (null 0), optional
        Default ``DEFAULT_MEASURES``. The null value is used only for ``present``.
    margins : mapping of name -> float
        The equivalence margin of every measure, in its units (e.g. ms for ``rt_switch_cost``). Without it
        (None) the legacy interval-overlap criterion is used (:func:`interval_overlap`, with a
        ``FutureWarning``): kept for callers that have no margins.
    alpha : float
        Level of each one-sided test (default 0.05).
    level : float, optional
        Confidence level of the summary's intervals, used to turn them into standard errors (default: the
        summary's ``level`` attribute, else 0.95).

    Returns
    -------
    xarray.Dataset
        Over (``measure``, ``model``): ``value``, ``low``, ``high``, ``se``; ``present`` (the interval
        excludes the null value: 1, 0, -1 undefined); ``difference`` (model minus reference),
        ``difference_se``, ``equivalence_low``/``equivalence_high`` (its ``1 - 2 alpha`` interval),
        ``p_equivalence``; ``equivalent`` and ``differs`` (int8, -1 undefined); ``verdict`` (str:
        ``equivalent``, ``different``, ``inconclusive``, ``undefined``, or ``reference`` for the reference
        model) and ``agrees`` (int8: 1 equivalent, 0 different, -1 inconclusive or undefined); ``null``,
        ``margin`` and ``units`` over ``measure``.

    Raises
    ------
    ValueError
        No ``model`` dimension, an unknown reference, a measure (or its bounds) missing, or a margin missing
        or not > 0.

    Examples
    --------
    >>> import xarray as xr
    >>> s = xr.Dataset({"rt_switch_cost": ("model", [40.0, 42.0, 5.0]),
    ...                 "rt_switch_cost_se": ("model", [2.0, 2.0, 2.0]),
    ...                 "rt_switch_cost_low": ("model", [36.1, 38.1, 1.1]),
    ...                 "rt_switch_cost_high": ("model", [43.9, 45.9, 8.9])},
    ...                coords={"model": ["se", "rate", "spiking"]})
    >>> out = agreement(s, measures=["rt_switch_cost"], margins={"rt_switch_cost": 10.0})
    >>> out["verdict"].values.tolist()
    [['reference', 'equivalent', 'different']]
    """
    if margins is None:
        warnings.warn(
            "agreement without margins falls back to the overlap of intervals, which cannot show agreement; "
            "pass margins={measure: margin} for the equivalence test (or call interval_overlap)",
            FutureWarning,
            stacklevel=2,
        )
        return interval_overlap(summary, reference=reference, measures=measures)
    names, nulls, models, value, low, high = _read_summary(summary, reference, measures)
    margin = _margins(margins, names)
    level = float(summary.attrs.get("level", 0.95)) if level is None else level
    check_range("level", level, 0.0, 1.0, low_inclusive=False, high_inclusive=False)
    se = _standard_errors(summary, names, level)
    ref = models.index(reference)
    diff = value - value[:, ref : ref + 1]
    diff_se = np.sqrt(se**2 + se[:, ref : ref + 1] ** 2)
    dims = ("measure", "model")
    tost = equivalence_test(
        xr.DataArray(diff, dims=dims),
        xr.DataArray(diff_se, dims=dims),
        xr.DataArray(np.broadcast_to(margin[:, None], diff.shape), dims=dims),
        alpha=alpha,
    )
    verdict, equivalent, differs, agrees = _verdicts(tost, np.isfinite(value[:, ref]), ref)
    p_eq, eq_low, eq_high = (tost[k].values for k in ("p_equivalence", "low", "high"))
    null = np.array([nulls[n] for n in names], dtype=float)
    units = [str(summary[n].attrs.get("units", "1")) for n in names]
    pct = f"{100 * (1 - 2 * alpha):g} %"
    return xr.Dataset(
        {
            "value": (dims, value, _attrs("various", "measured value (units per measure: see 'units')")),
            "low": (dims, low, _attrs("various", "lower confidence bound")),
            "high": (dims, high, _attrs("various", "upper confidence bound")),
            "se": (dims, se, _attrs("various", "standard error (given, or from the interval)")),
            "present": (
                dims,
                _present(low, high, null[:, None]),
                _attrs("1", "interval excludes the null value (1), includes it (0), undefined (-1)"),
            ),
            "difference": (dims, diff, _attrs("various", f"value minus {reference!r}'s")),
            "difference_se": (dims, diff_se, _attrs("various", "difference, SE (models independent)")),
            "equivalence_low": (dims, eq_low, _attrs("various", f"difference, lower {pct} bound")),
            "equivalence_high": (dims, eq_high, _attrs("various", f"difference, upper {pct} bound")),
            "p_equivalence": (dims, p_eq, _attrs("1", "TOST p-value")),
            "equivalent": (
                dims,
                equivalent,
                _attrs("1", f"{pct} interval inside (-margin, margin): 1, 0, -1"),
            ),
            "differs": (dims, differs, _attrs("1", f"{100 * (1 - alpha):g} % interval excludes 0: 1, 0, -1")),
            "verdict": (
                dims,
                verdict.astype(str),
                _attrs("1", "equivalent, different, inconclusive, undefined"),
            ),
            "agrees": (
                dims,
                agrees.astype(np.int8),
                _attrs(
                    "1", f"equivalent to {reference!r} (1), different (0), inconclusive or undefined (-1)"
                ),
            ),
            "null": ("measure", null, _attrs("various", "value of no effect")),
            "margin": ("measure", margin, _attrs("various", "equivalence margin")),
            "units": ("measure", units, _attrs("1", "units of the measure")),
        },
        coords={
            "measure": ("measure", names, _attrs("1", "measure")),
            "model": ("model", models, _attrs("1", "model")),
        },
        attrs={
            "reference": reference,
            "criterion": f"equivalence: two one-sided tests at alpha {alpha:g} (Schuirmann 1987)",
            "alpha": alpha,
            "standard_errors": "independent models: sqrt(se^2 + se_reference^2)",
        },
    )
