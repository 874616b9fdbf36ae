"""Cross-model comparison: which measured effects each model shows, and where it agrees with a reference.

:func:`agreement` reads a summary with a ``model`` dimension (the ``summary`` group of ``neuromod run
task-switching``, :func:`neuromod.protocols.run_task_switching`) in which each measure ``x`` has its
confidence bounds ``x_low`` and ``x_high``, and answers two questions per (measure, model):

* is the effect *present*: does the interval exclude 0 (for differences such as switch costs) or, for a
  measure with a natural null other than 0 (e.g. chance accuracy 0.5), that null;
* does the model *agree* with the reference model: do the two intervals overlap.

Overlap of two 95 % intervals is a conservative criterion: intervals that do not overlap mean the two values
differ (at better than the 5 % level), but overlapping intervals do not show that they are equal (Schenker &
Gentleman 2001). "agrees" therefore means "not shown to differ with these trials".

References
----------
Schenker, N. & Gentleman, J. F. (2001). On judging the significance of differences by examining the overlap
between confidence intervals. Am. Stat. 55:182-186.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import xarray as xr

from neuromod.results import var_attrs as _attrs

__all__ = ["DEFAULT_MEASURES", "agreement"]

#: Measures compared by default, with their null value (the value of "no effect").
DEFAULT_MEASURES: Mapping[str, float] = {
    "accuracy": 0.5,
    "rt_switch_cost": 0.0,
    "error_switch_cost": 0.0,
    "rt_congruency_effect": 0.0,
    "error_congruency_effect": 0.0,
}


def agreement(
    summary: xr.Dataset,
    *,
    reference: str = "se",
    measures: Mapping[str, float] | Sequence[str] | None = None,
) -> xr.Dataset:
    """Effect presence and agreement with a reference model, per measure and model.

    Parameters
    ----------
    summary : xarray.Dataset
        Scalar measures along ``model`` with bounds ``<measure>_low`` and ``<measure>_high``.
    reference : str
        The model the others are compared with (default ``"se"``: the SE gate, whose gains the others
        receive).
    measures : mapping of name -> null value, or sequence of names (null 0), optional
        Default :data:`DEFAULT_MEASURES`.

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
    >>> out = agreement(s, measures=["rt_switch_cost"])
    >>> out["present"].values.tolist(), out["agrees"].values.tolist()
    ([[1, 0]], [[1, 1]])
    """
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
    null = np.array([nulls[n] for n in names], dtype=float)[:, None]
    ref = models.index(reference)
    defined = np.isfinite(low) & np.isfinite(high)
    present = np.where(defined, ((low > null) | (high < null)).astype(np.int8), -1).astype(np.int8)
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
