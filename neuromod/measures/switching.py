"""Task-switching measures: accuracy and RT by condition, switch cost, congruency effect, preparation curve.

All functions read the result of :func:`neuromod.protocols.run_sessions` or
:func:`neuromod.protocols.run_task_switching` (an ``xr.DataTree``: the trial
table at the root, one group per model with per-trial ``choice``, ``correct`` and ``rt``) or one model's
trials as an ``xr.Dataset`` that holds the trial-table variables too (see :func:`trial_data`).

Conventions
-----------
* Accuracy and error rate count every trial (a trial without a response is an error); mean RTs use the
  correct responses only (the usual practice in task-switching studies, e.g. Monsell 2003).
* The first trial of a session (``is_first`` in the trial table) has no preceding task: it is left out of
  every split by ``is_switch`` (switch costs, congruency by switch/repeat), as is usual.
* Grouping variables become dimensions with short names: ``csi_ms`` -> ``csi`` (ms), ``is_switch`` ->
  ``switch`` (0 repeat, 1 switch), ``is_congruent`` -> ``congruent`` (0, 1); any other trial variable keeps
  its name.
* Intervals: Wilson (1927) score intervals for proportions and Student-t intervals for means
  (:mod:`neuromod.measures.behaviour`); Welch (1947) intervals (Welch-Satterthwaite degrees of freedom) for
  differences of mean RTs; Newcombe's (1998, method 10) hybrid score interval for differences of independent
  proportions (error rates), built from the two Wilson intervals.

References
----------
Welch, B. L. (1947). The generalization of 'Student's' problem when several different population variances
are involved. Biometrika 34:28-35.
Newcombe, R. G. (1998). Interval estimation for the difference between independent proportions: comparison
of eleven methods. Stat. Med. 17:873-890 (method 10).
Wilson, E. B. (1927). Probable inference, the law of succession, and statistical inference. J. Am. Stat.
Assoc. 22:209-212.
Monsell, S. (2003). Task switching. Trends Cogn. Sci. 7:134-140.
Meiran, N. (1996). Reconfiguration of processing mode prior to task performance. J. Exp. Psychol. Learn.
Mem. Cogn. 22:1423-1442 (preparation: the switch cost falls with the cue-stimulus interval).
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import statsmodels.api as sm
import xarray as xr
from scipy import optimize, stats

from neuromod._checks import check_array, check_positive, check_range
from neuromod.measures.behaviour import wilson_interval
from neuromod.results import var_attrs as _attrs

__all__ = [
    "congruency_effect",
    "error_rt",
    "fit_preparation",
    "fit_preparation_fixed",
    "prep_regressor",
    "switch_cost",
    "switching_behaviour",
    "trial_data",
]

#: Dimension name and coordinate metadata for the usual grouping variables.
_DIMS: dict[str, tuple[str, str, str]] = {
    "csi_ms": ("csi", "ms", "cue-stimulus interval"),
    "is_switch": ("switch", "1", "switch trial (1) or repeat (0)"),
    "is_congruent": ("congruent", "1", "congruent (1) or incongruent (0) stimulus"),
    "context": ("context", "1", "task context (0: task a, 1: task b)"),
}
_TRIAL_VARS = ("choice", "correct", "rt")


# ------------------------------------------------------------------------------------------------------
# input
# ------------------------------------------------------------------------------------------------------
def _model_groups(tree: xr.DataTree) -> list[str]:
    return [name for name, node in tree.children.items() if all(v in node.data_vars for v in _TRIAL_VARS)]


def trial_data(data: xr.Dataset | xr.DataTree, model: str | None = None) -> xr.Dataset:
    """One model's per-trial behaviour merged with the trial table, as one Dataset over ``trial``.

    Parameters
    ----------
    data : xarray.DataTree or xarray.Dataset
        The protocol's tree (trial table at the root, ``choice``/``correct``/``rt`` in the model's group),
        or a Dataset that already has both (returned unchanged, after checks). A group with a boolean
        ``ran`` over ``trial`` ran only those trials of the table; the others are left out.
    model : str, optional
        The group to take from a tree; may be omitted when the tree has exactly one model group.

    Raises
    ------
    ValueError
        A missing group or variable.
    TypeError
        `data` is neither a Dataset nor a DataTree.
    """
    if isinstance(data, xr.DataTree):
        groups = _model_groups(data)
        if model is None:
            if len(groups) != 1:
                raise ValueError(f"model=None is ambiguous: the tree has the model groups {groups}; name one")
            model = groups[0]
        if model not in groups:
            raise ValueError(f"model={model!r} is not a model group of the tree; groups: {groups}")
        table = data.to_dataset(inherit=False)
        node = data[model].to_dataset(inherit=False)
        merged = table.merge(node[list(_TRIAL_VARS)], compat="override", join="exact")
        merged.attrs = {}
        if "ran" in node:  # a model that ran only some trials of the table (e.g. the first ones)
            merged = merged.isel(trial=node["ran"].values.astype(bool))
        return merged
    if isinstance(data, xr.Dataset):
        if model is not None:
            raise ValueError(f"model={model!r} applies to a DataTree; got a Dataset (pass model=None)")
        return data
    raise TypeError(f"data must be an xarray Dataset or DataTree, got {type(data).__name__}")


def _check_vars(ds: xr.Dataset, names: Sequence[str]) -> None:
    missing = [n for n in names if n not in ds.variables]
    if missing:
        raise ValueError(
            f"data lacks the variable(s) {missing}; expected per-trial {list(_TRIAL_VARS)} and the trial "
            "table (use the DataTree from neuromod.protocols.run_sessions, or neuromod.measures.trial_data)"
        )
    for n in names:
        if ds[n].dims != ("trial",):
            raise ValueError(f"data[{n!r}] has dims {ds[n].dims}; expected ('trial',)")


def _over_models(data: Any, model: str | None, func: Any) -> xr.Dataset:
    """Apply ``func(Dataset)`` to one model, or to every model group along a ``model`` dimension."""
    if isinstance(data, xr.DataTree) and model is None and len(_model_groups(data)) != 1:
        groups = _model_groups(data)
        if not groups:
            raise ValueError("the tree has no model group with 'choice', 'correct' and 'rt'")
        parts = [func(trial_data(data, g)) for g in groups]
        out = xr.concat(parts, dim="model", join="outer", combine_attrs="override")
        return out.assign_coords(model=("model", groups, _attrs("1", "model")))
    return func(trial_data(data, model))


# ------------------------------------------------------------------------------------------------------
# cell statistics
# ------------------------------------------------------------------------------------------------------
def _levels(ds: xr.Dataset, by: Sequence[str]) -> list[np.ndarray]:
    return [np.unique(ds[name].values) for name in by]


def _coord(name: str, values: np.ndarray) -> tuple[str, tuple]:
    dim, units, long_name = _DIMS.get(name, (name, "1", name))
    vals = values.astype(np.int8) if values.dtype == bool else values
    return dim, (dim, vals, _attrs(units, long_name))


def _cells(ds: xr.Dataset, by: Sequence[str], levels: list[np.ndarray]) -> dict[str, np.ndarray]:
    """Counts and RT moments per cell of the `by` grid (shape = the level counts)."""
    shape = tuple(len(v) for v in levels)
    out = {k: np.zeros(shape) for k in ("n", "correct", "responded", "rt_n", "rt_mean", "rt_var")}
    correct = ds["correct"].values.astype(bool)
    responded = ds["choice"].values > 0
    rt = ds["rt"].values.astype(float)
    cols = [ds[name].values for name in by]
    # the first trial of a session is neither a switch nor a repeat: left out of any switch/repeat split
    usable = np.ones(ds.sizes["trial"], dtype=bool)
    if "is_switch" in by and "is_first" in ds:
        usable &= ~ds["is_first"].values.astype(bool)
    for idx in itertools.product(*(range(s) for s in shape)):
        mask = usable.copy()
        for col, lev, i in zip(cols, levels, idx, strict=True):
            mask &= col == lev[i]
        x = rt[mask & correct & np.isfinite(rt)]
        out["n"][idx] = mask.sum()
        out["correct"][idx] = (mask & correct).sum()
        out["responded"][idx] = (mask & responded).sum()
        out["rt_n"][idx] = x.size
        out["rt_mean"][idx] = x.mean() if x.size else np.nan
        out["rt_var"][idx] = x.var(ddof=1) if x.size > 1 else np.nan
    return out


def _check_by(by: Sequence[str], name: str = "by") -> tuple[str, ...]:
    if isinstance(by, str) or not isinstance(by, Sequence):
        raise TypeError(f"{name} must be a sequence of trial-variable names, got {by!r}")
    by = tuple(by)
    if len(set(by)) != len(by):
        raise ValueError(f"{name}={by!r} names a variable twice")
    return by


def switching_behaviour(
    data: xr.Dataset | xr.DataTree,
    *,
    model: str | None = None,
    by: Sequence[str] = ("is_switch", "is_congruent", "csi_ms"),
    level: float = 0.95,
) -> xr.Dataset:
    """Accuracy and mean RT per condition (by default switch x congruency x CSI) with intervals.

    Parameters
    ----------
    data : xarray.DataTree or xarray.Dataset
        The protocol's tree or one model's merged trials (:func:`trial_data`).
    model : str, optional
        The model group of a tree; None on a tree with several groups gives a ``model`` dimension.
    by : sequence of str
        Trial variables to group by (``()`` pools all trials).
    level : float
        Confidence level of the intervals.

    Returns
    -------
    xarray.Dataset
        Over the grouping dimensions (``switch``, ``congruent``, ``csi``, ...): ``accuracy`` (fraction
        correct of all trials) with Wilson bounds ``accuracy_low``/``accuracy_high``, ``error_rate``,
        ``p_response``, ``mean_rt`` (correct responses, ms) with t bounds ``mean_rt_low``/``mean_rt_high``,
        ``n_trials`` and ``n_rt``.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> ds = xr.Dataset({"is_switch": ("trial", [0, 0, 1, 1]), "choice": ("trial", [1, 2, 1, 0]),
    ...                  "correct": ("trial", [1, 1, 0, 0]), "rt": ("trial", [300.0, 340.0, 400.0, np.nan])})
    >>> out = switching_behaviour(ds, by=("is_switch",))
    >>> out["accuracy"].values.tolist(), out["mean_rt"].values.tolist()
    ([1.0, 0.0], [320.0, nan])
    """
    by = _check_by(by)
    check_range("level", level, 0.0, 1.0, low_inclusive=False, high_inclusive=False)

    def one(ds: xr.Dataset) -> xr.Dataset:
        _check_vars(ds, (*_TRIAL_VARS, *by))
        levels = _levels(ds, by)
        c = _cells(ds, by, levels)
        coords = dict(_coord(name, lev) for name, lev in zip(by, levels, strict=True))
        dims = tuple(coords)
        pct = f"{100 * level:g} %"
        with np.errstate(invalid="ignore", divide="ignore"):
            acc = c["correct"] / c["n"]
            resp = c["responded"] / c["n"]
            sem = np.sqrt(c["rt_var"] / c["rt_n"])
        low, high = wilson_interval(c["correct"], c["n"], level=level)
        t = stats.t.ppf(0.5 + level / 2, np.maximum(c["rt_n"] - 1, 1))
        half = np.where(c["rt_n"] >= 2, t * sem, np.nan)
        return xr.Dataset(
            {
                "accuracy": (dims, acc, _attrs("1", "fraction correct (all trials)")),
                "accuracy_low": (dims, low, _attrs("1", f"accuracy, lower {pct} Wilson bound")),
                "accuracy_high": (dims, high, _attrs("1", f"accuracy, upper {pct} Wilson bound")),
                "error_rate": (dims, 1 - acc, _attrs("1", "error rate (no response counts as an error)")),
                "p_response": (dims, resp, _attrs("1", "fraction of trials with a response")),
                "mean_rt": (dims, c["rt_mean"], _attrs("ms", "mean RT of correct responses")),
                "mean_rt_low": (dims, c["rt_mean"] - half, _attrs("ms", f"mean RT, lower {pct} t bound")),
                "mean_rt_high": (dims, c["rt_mean"] + half, _attrs("ms", f"mean RT, upper {pct} t bound")),
                "n_trials": (dims, c["n"].astype(np.int64), _attrs("1", "number of trials")),
                "n_rt": (dims, c["rt_n"].astype(np.int64), _attrs("1", "number of correct responses")),
            },
            coords=coords,
            attrs={"level": level, "rt_trials": "correct responses", "interval": "Wilson; Student t"},
        )

    return _over_models(data, model, one)


# ------------------------------------------------------------------------------------------------------
# differences between two conditions
# ------------------------------------------------------------------------------------------------------
def _welch_full(m1, v1, n1, m2, v2, n2, level: float) -> tuple[np.ndarray, ...]:
    """Difference m1 - m2 of two means: (difference, low, high, standard error, Welch df)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        a, b = v1 / n1, v2 / n2
        se2 = a + b
        df = se2**2 / (a**2 / (n1 - 1) + b**2 / (n2 - 1))
        t = stats.t.ppf(0.5 + level / 2, df)
        half = t * np.sqrt(se2)
    diff = m1 - m2
    return diff, diff - half, diff + half, np.sqrt(se2), df


def _newcombe(k1, n1, k2, n2, level: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Difference p1 - p2 of two independent proportions with Newcombe's hybrid score interval."""
    with np.errstate(invalid="ignore", divide="ignore"):
        p1, p2 = k1 / n1, k2 / n2
    l1, u1 = wilson_interval(k1, n1, level=level)
    l2, u2 = wilson_interval(k2, n2, level=level)
    d = p1 - p2
    return d, d - np.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2), d + np.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)


def _difference(
    data: Any,
    model: str | None,
    factor: str,
    first: bool,
    by: Sequence[str],
    level: float,
    names: dict[str, str],
    what: str,
) -> xr.Dataset:
    """``condition factor == first`` minus ``factor == not first``: RT and error-rate differences."""
    by = _check_by(by)
    if factor in by:
        raise ValueError(f"by={by!r} must not contain {factor!r} (the difference is taken over it)")
    check_range("level", level, 0.0, 1.0, low_inclusive=False, high_inclusive=False)

    def one(ds: xr.Dataset) -> xr.Dataset:
        _check_vars(ds, (*_TRIAL_VARS, *by, factor))
        levels = _levels(ds, by)
        grid = [*levels, np.array([first, not first])]
        c = _cells(ds, (*by, factor), grid)
        s = np.s_[..., 0]
        r = np.s_[..., 1]
        rt, rt_low, rt_high, rt_se, _ = _welch_full(
            c["rt_mean"][s],
            c["rt_var"][s],
            c["rt_n"][s],
            c["rt_mean"][r],
            c["rt_var"][r],
            c["rt_n"][r],
            level,
        )
        errors = c["n"] - c["correct"]
        er, er_low, er_high = _newcombe(errors[s], c["n"][s], errors[r], c["n"][r], level)
        with np.errstate(invalid="ignore", divide="ignore"):
            e1, e2 = errors[s] / c["n"][s], errors[r] / c["n"][r]
        coords = dict(_coord(name, lev) for name, lev in zip(by, levels, strict=True))
        dims = tuple(coords)
        pct = f"{100 * level:g} %"
        a, b = names["a"], names["b"]
        p = names["prefix"]
        return xr.Dataset(
            {
                f"rt_{p}": (dims, rt, _attrs("ms", f"RT {what}: mean RT {a} minus {b} (correct responses)")),
                f"rt_{p}_low": (dims, rt_low, _attrs("ms", f"RT {what}, lower {pct} Welch bound")),
                f"rt_{p}_high": (dims, rt_high, _attrs("ms", f"RT {what}, upper {pct} Welch bound")),
                f"rt_{p}_se": (dims, rt_se, _attrs("ms", f"RT {what}, standard error (Welch)")),
                f"error_{p}": (dims, er, _attrs("1", f"error {what}: error rate {a} minus {b}")),
                f"error_{p}_low": (dims, er_low, _attrs("1", f"error {what}, lower {pct} Newcombe bound")),
                f"error_{p}_high": (dims, er_high, _attrs("1", f"error {what}, upper {pct} Newcombe bound")),
                f"mean_rt_{a}": (dims, c["rt_mean"][s], _attrs("ms", f"mean RT, {a} trials (correct)")),
                f"mean_rt_{b}": (dims, c["rt_mean"][r], _attrs("ms", f"mean RT, {b} trials (correct)")),
                f"error_rate_{a}": (dims, e1, _attrs("1", f"error rate, {a} trials")),
                f"error_rate_{b}": (dims, e2, _attrs("1", f"error rate, {b} trials")),
                f"n_{a}": (dims, c["n"][s].astype(np.int64), _attrs("1", f"number of {a} trials")),
                f"n_{b}": (dims, c["n"][r].astype(np.int64), _attrs("1", f"number of {b} trials")),
            },
            coords=coords,
            attrs={
                "level": level,
                "rt_interval": "Welch (1947), Welch-Satterthwaite df",
                "error_interval": "Newcombe (1998) hybrid score (method 10)",
                "rt_trials": "correct responses",
            },
        )

    return _over_models(data, model, one)


def switch_cost(
    data: xr.Dataset | xr.DataTree,
    *,
    model: str | None = None,
    by: Sequence[str] = ("csi_ms",),
    level: float = 0.95,
) -> xr.Dataset:
    """Switch cost in RT and error rate: switch minus repeat trials, with 95 % intervals.

    Parameters
    ----------
    data : xarray.DataTree or xarray.Dataset
        The protocol's tree or one model's merged trials (:func:`trial_data`).
    model : str, optional
        The model group of a tree; None on a tree with several model groups gives a ``model`` dimension.
    by : sequence of str
        Trial variables to group by (default the CSI: dimension ``csi``); ``()`` pools all trials.
    level : float
        Confidence level (default 0.95).

    Returns
    -------
    xarray.Dataset
        ``rt_cost`` (ms: mean RT of correct switch responses minus that of correct repeat responses) with its
        Welch interval ``rt_cost_low``/``rt_cost_high`` and standard error ``rt_cost_se``; ``error_cost``
        (error rate on switch minus repeat trials) with its Newcombe interval
        ``error_cost_low``/``error_cost_high``; the per-condition means,
        error rates and counts (``mean_rt_switch``, ``mean_rt_repeat``, ``error_rate_switch``, ...).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> ds = xr.Dataset({"is_switch": ("trial", [0, 0, 1, 1]), "choice": ("trial", [1, 1, 1, 1]),
    ...                  "correct": ("trial", [1, 1, 1, 1]), "rt": ("trial", [300.0, 320.0, 400.0, 440.0])})
    >>> float(switch_cost(ds, by=())["rt_cost"])
    110.0
    """
    return _difference(
        data,
        model,
        "is_switch",
        True,
        by,
        level,
        {"prefix": "cost", "a": "switch", "b": "repeat"},
        "switch cost",
    )


def congruency_effect(
    data: xr.Dataset | xr.DataTree,
    *,
    model: str | None = None,
    by: Sequence[str] = ("is_switch",),
    level: float = 0.95,
) -> xr.Dataset:
    """Congruency effect: incongruent minus congruent trials, in RT and error rate, with 95 % intervals.

    As :func:`switch_cost` with the roles of the factors exchanged (default grouping: switch vs repeat):
    ``rt_effect`` (ms) with ``rt_effect_low``/``rt_effect_high`` (Welch) and ``rt_effect_se``, and
    ``error_effect`` with ``error_effect_low``/``error_effect_high`` (Newcombe), plus ``mean_rt_incongruent``,
    ``mean_rt_congruent``, ``error_rate_incongruent``, ``error_rate_congruent`` and counts.
    """
    return _difference(
        data,
        model,
        "is_congruent",
        False,
        by,
        level,
        {"prefix": "effect", "a": "incongruent", "b": "congruent"},
        "congruency effect",
    )


# ------------------------------------------------------------------------------------------------------
# error RTs vs correct RTs
# ------------------------------------------------------------------------------------------------------
def error_rt(
    data: xr.Dataset | xr.DataTree,
    *,
    model: str | None = None,
    by: Sequence[str] = (),
    level: float = 0.95,
) -> xr.Dataset:
    """Mean RT of error responses minus that of correct responses, with a Welch interval, per model.

    Errors here are responses to the wrong side (``choice > 0``, ``correct == 0``, finite RT); trials
    without a response have no RT and are left out. Fast errors (negative difference) point to premature or
    impulsive responses, slow errors to decisions from weak evidence (Ratcliff & McKoon 2008).

    Parameters
    ----------
    data : xarray.DataTree or xarray.Dataset
        The protocol's tree or one model's merged trials (:func:`trial_data`).
    model : str, optional
        The model group of a tree; None on a tree with several model groups gives a ``model`` dimension.
    by : sequence of str
        Trial variables to group by (default: pool all trials); a split by ``is_switch`` leaves out the
        session's first trial.
    level : float
        Confidence level (default 0.95).

    Returns
    -------
    xarray.Dataset
        ``rt_error_minus_correct`` (ms) with its Welch interval ``rt_error_minus_correct_low``/``_high`` and
        standard error ``rt_error_minus_correct_se``; ``mean_rt_error``, ``mean_rt_correct`` (ms);
        ``n_error_rt``, ``n_correct_rt`` (responses with an RT). NaN where a side has fewer than two RTs.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> ds = xr.Dataset({"choice": ("trial", [1, 1, 2, 2, 0]), "correct": ("trial", [1, 1, 0, 0, 0]),
    ...                  "rt": ("trial", [300.0, 320.0, 400.0, 420.0, np.nan])})
    >>> float(error_rt(ds)["rt_error_minus_correct"])
    100.0

    References
    ----------
    Ratcliff, R. & McKoon, G. (2008). The diffusion decision model: theory and data for two-choice decision
    tasks. Neural Comput. 20:873-922.
    """
    by = _check_by(by)
    check_range("level", level, 0.0, 1.0, low_inclusive=False, high_inclusive=False)

    def one(ds: xr.Dataset) -> xr.Dataset:
        _check_vars(ds, (*_TRIAL_VARS, *by))
        levels = _levels(ds, by)
        shape = tuple(len(v) for v in levels)
        rt = ds["rt"].values.astype(float)
        correct = ds["correct"].values.astype(bool)
        responded = ds["choice"].values > 0
        usable = np.ones(ds.sizes["trial"], dtype=bool)
        if "is_switch" in by and "is_first" in ds:
            usable &= ~ds["is_first"].values.astype(bool)
        usable &= np.isfinite(rt)
        stat = {k: np.full(shape, np.nan) for k in ("me", "ve", "ne", "mc", "vc", "nc")}
        cols = [ds[name].values for name in by]
        for idx in itertools.product(*(range(n) for n in shape)):
            mask = usable.copy()
            for col, lev, i in zip(cols, levels, idx, strict=True):
                mask &= col == lev[i]
            for key, sel in (("e", mask & responded & ~correct), ("c", mask & correct)):
                x = rt[sel]
                stat["n" + key][idx] = x.size
                stat["m" + key][idx] = x.mean() if x.size else np.nan
                stat["v" + key][idx] = x.var(ddof=1) if x.size > 1 else np.nan
        diff, low, high, se, _ = _welch_full(
            stat["me"], stat["ve"], stat["ne"], stat["mc"], stat["vc"], stat["nc"], level
        )
        coords = dict(_coord(name, lev) for name, lev in zip(by, levels, strict=True))
        dims = tuple(coords)
        pct = f"{100 * level:g} %"
        name = "rt_error_minus_correct"
        long_name = "mean RT of errors minus mean RT of correct responses"
        return xr.Dataset(
            {
                name: (dims, diff, _attrs("ms", long_name)),
                f"{name}_low": (dims, low, _attrs("ms", f"{long_name}, lower {pct} Welch bound")),
                f"{name}_high": (dims, high, _attrs("ms", f"{long_name}, upper {pct} Welch bound")),
                f"{name}_se": (dims, se, _attrs("ms", f"{long_name}, standard error (Welch)")),
                "mean_rt_error": (dims, stat["me"], _attrs("ms", "mean RT of error responses")),
                "mean_rt_correct": (dims, stat["mc"], _attrs("ms", "mean RT of correct responses")),
                "n_error_rt": (dims, stat["ne"].astype(np.int64), _attrs("1", "error responses with an RT")),
                "n_correct_rt": (
                    dims,
                    stat["nc"].astype(np.int64),
                    _attrs("1", "correct responses with an RT"),
                ),
            },
            coords=coords,
            attrs={"level": level, "interval": "Welch (1947), Welch-Satterthwaite df"},
        )

    return _over_models(data, model, one)


# ------------------------------------------------------------------------------------------------------
# preparation curve
# ------------------------------------------------------------------------------------------------------
def _exp_model(csi: np.ndarray, a: float, tau: float, residual: float) -> np.ndarray:
    return a * np.exp(-csi / tau) + residual


def _fit_one(csi: np.ndarray, y: np.ndarray, sigma: np.ndarray | None) -> np.ndarray:
    """[A, tau, residual, se_A, se_tau, se_residual] (NaN when the fit is impossible or fails)."""
    ok = np.isfinite(y) & np.isfinite(csi)
    if sigma is not None:
        ok &= np.isfinite(sigma) & (sigma > 0)
    out = np.full(6, np.nan)
    if ok.sum() < 3:
        return out
    x, yy = csi[ok], y[ok]
    span = float(x.max() - x.min()) or 1.0
    p0 = (float(yy[np.argmin(x)] - yy.min()) or 1e-3, max(span / 3, 1e-3), float(yy.min()))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optimize.OptimizeWarning)
            popt, pcov = optimize.curve_fit(
                _exp_model,
                x,
                yy,
                p0=p0,
                sigma=None if sigma is None else sigma[ok],
                absolute_sigma=sigma is not None,
                bounds=([-np.inf, 1e-6, -np.inf], [np.inf, np.inf, np.inf]),
                maxfev=20000,
            )
    except (RuntimeError, ValueError):
        return out
    out[:3] = popt
    out[3:] = np.sqrt(np.clip(np.diag(pcov), 0.0, np.inf))
    return out


def fit_preparation(
    cost_by_csi: xr.Dataset | xr.DataArray,
    *,
    variable: str = "rt_cost",
    dim: Hashable = "csi",
    weighted: bool = True,
    z: float = 2.0,
) -> xr.Dataset:
    """Fit the preparation curve ``cost(CSI) = A exp(-CSI / tau_eff) + residual``.

    Nonlinear least squares (:func:`scipy.optimize.curve_fit`, trust-region reflective with ``tau_eff > 0``)
    per curve along `dim`; A is the preparable part of the cost, ``tau_eff`` the preparation time constant
    and ``residual`` the cost that preparation does not remove (Meiran 1996; Monsell 2003).

    This is the *free-tau* fit: three parameters (A, ``tau_eff``, residual) on as many points as there are
    CSIs (five in the default design, so two residual degrees of freedom), and ``tau_eff`` enters
    nonlinearly. It is identified (``identified == 1``) only when the cost falls clearly within the CSI
    range: A and ``tau_eff`` each more than `z` standard errors from 0 and ``tau_eff`` between a tenth of the
    shortest positive CSI and ten times the longest; with a flat or noisy cost, or a ``tau_eff`` outside
    that reach, A and ``tau_eff`` trade off against each other and the residual and are not reported as
    identified. When the modulator's time constant is known, fix it: :func:`fit_preparation_fixed` (linear
    in A and residual, weighted least squares) and, as the primary estimate, the trial-level regression
    :func:`neuromod.measures.switch_regression`.

    Parameters
    ----------
    cost_by_csi : xarray.Dataset or xarray.DataArray
        A :func:`switch_cost` result over ``csi`` (the `variable` is fitted) or a cost DataArray.
    variable : str
        The cost to fit in a Dataset (``rt_cost`` or ``error_cost``); its ``<variable>_low``/``_high``
        bounds, when present and `weighted`, give the weights (sigma = half-width / z).
    dim : str
        The CSI dimension (its coordinate in ms).
    weighted : bool
        Weight by the intervals (absolute sigma); otherwise unweighted, with the standard errors scaled by
        the residual variance.
    z : float
        Standard errors that A and tau_eff must exceed for the fit to count as ``identified``.

    Returns
    -------
    xarray.Dataset
        Over the other dimensions (e.g. ``model``): ``amplitude`` (A), ``tau_eff`` (ms), ``residual`` and
        their standard errors ``amplitude_se``, ``tau_eff_se``, ``residual_se``; NaN where fewer than three
        finite points or the fit fails. A and residual carry the units of the cost. ``identified`` (int8) is
        1 where the data pin the curve down: all three finite, ``|A| > z SE(A)``, ``tau_eff > z SE(tau_eff)``
        and ``tau_eff`` between a tenth of the shortest positive CSI and ten times the longest (outside that
        range an exponential cannot be told from a step before the first CSI or from a linear trend).

    Raises
    ------
    ValueError
        A missing variable or dimension.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> csi = np.array([100.0, 300.0, 600.0, 1000.0, 1500.0])
    >>> cost = xr.DataArray(80 * np.exp(-csi / 250) + 20, dims="csi", coords={"csi": csi},
    ...                     attrs={"units": "ms", "long_name": "RT switch cost"})
    >>> fit = fit_preparation(cost)
    >>> [round(float(fit[k]), 3) for k in ("amplitude", "tau_eff", "residual")]
    [80.0, 250.0, 20.0]
    """
    if isinstance(cost_by_csi, xr.Dataset):
        if variable not in cost_by_csi:
            raise ValueError(
                f"variable={variable!r} is not in the dataset; it has {sorted(cost_by_csi.data_vars)}"
            )
        y = cost_by_csi[variable]
        lo, hi = cost_by_csi.get(f"{variable}_low"), cost_by_csi.get(f"{variable}_high")
        level = float(cost_by_csi.attrs.get("level", 0.95))
    elif isinstance(cost_by_csi, xr.DataArray):
        y, lo, hi, level = cost_by_csi, None, None, 0.95
    else:
        raise TypeError(
            f"cost_by_csi must be an xarray Dataset or DataArray, got {type(cost_by_csi).__name__}"
        )
    if dim not in y.dims:
        raise ValueError(f"dim={dim!r} is not a dimension of the cost; dimensions are {list(y.dims)}")
    if dim not in y.coords:
        raise ValueError(f"the cost has no coordinate {dim!r} (the CSI values in ms)")
    check_positive("z", z)
    csi = np.asarray(y[dim].values, dtype=float)
    sigma = None
    if weighted and lo is not None and hi is not None:
        z_level = stats.norm.ppf(0.5 + level / 2)
        sigma = ((hi - lo) / (2 * z_level)).transpose(*y.dims)
    units = str(y.attrs.get("units", "1"))
    fitted = xr.apply_ufunc(
        lambda yy, ss: _fit_one(csi, yy, None if sigma is None else ss),
        y,
        sigma if sigma is not None else xr.zeros_like(y),
        input_core_dims=[[dim], [dim]],
        output_core_dims=[["parameter"]],
        vectorize=True,
    )
    names = ("amplitude", "tau_eff", "residual")
    meta = {
        "amplitude": (units, "preparable switch cost A"),
        "tau_eff": ("ms", "preparation time constant tau_eff"),
        "residual": (units, "residual switch cost"),
    }
    out = xr.Dataset()
    for i, name in enumerate(names):
        u, long_name = meta[name]
        out[name] = fitted.isel(parameter=i).assign_attrs(_attrs(u, long_name))
        out[f"{name}_se"] = fitted.isel(parameter=3 + i).assign_attrs(
            _attrs(u, f"{long_name}, standard error")
        )
    positive = csi[csi > 0]
    shortest = float(positive.min()) if positive.size else 1.0
    a, tau = out["amplitude"], out["tau_eff"]
    identified = (
        np.isfinite(out["residual"])
        & (np.abs(a) > z * out["amplitude_se"])
        & (tau > z * out["tau_eff_se"])
        & (tau >= shortest / 10)
        & (tau <= 10 * float(np.nanmax(csi)))
    )
    out["identified"] = identified.astype(np.int8).assign_attrs(
        _attrs("1", f"fit identified: |A| and tau_eff > {z:g} SE, tau_eff within the CSI range's reach")
    )
    return out.assign_attrs(
        model="cost(csi) = amplitude * exp(-csi / tau_eff) + residual",
        fitted=str(y.name if y.name is not None else variable),
        weighted=int(sigma is not None),
    )


# ------------------------------------------------------------------------------------------------------
# preparation curve with the time constant fixed
# ------------------------------------------------------------------------------------------------------
def prep_regressor(csi_ms: Any, tau_ms: float) -> np.ndarray:
    """The preparation regressor ``exp(-CSI / tau)`` (``tau_ms = 0``: 1 at CSI 0, else 0).

    Parameters
    ----------
    csi_ms : array-like
        Cue-stimulus intervals (ms), >= 0.
    tau_ms : float
        The modulator's time constant (ms), >= 0 (0: instantaneous, the cost is the residual at every CSI
        > 0).

    Examples
    --------
    >>> prep_regressor([0.0, 400.0], 400.0).round(4).tolist()
    [1.0, 0.3679]
    """
    tau = check_positive("tau_ms", tau_ms, allow_zero=True)
    csi = check_array("csi_ms", csi_ms, ndim=None, finite=False, nonempty=False)
    if np.any(csi < 0):  # NaN (a missing CSI) passes through as NaN
        raise ValueError(f"csi_ms holds {float(csi[csi < 0].flat[0]):g}; expected intervals >= 0 (ms)")
    if tau == 0:
        return np.where(csi == 0, 1.0, 0.0)
    return np.exp(-csi / tau)


def _tau_array(tau_ms: Any, y: xr.DataArray) -> xr.DataArray:
    """`tau_ms` (a number, a mapping model -> tau, or a DataArray) as a DataArray that broadcasts with `y`."""
    if isinstance(tau_ms, xr.DataArray):
        tau = tau_ms.astype(float)
    elif isinstance(tau_ms, Mapping):
        if "model" not in y.dims:
            raise ValueError(
                f"tau_ms is a mapping ({list(tau_ms)}) but the cost has no 'model' dimension; pass one number"
            )
        models = [str(m) for m in y["model"].values]
        missing = [m for m in models if m not in tau_ms]
        if missing:
            raise ValueError(
                f"tau_ms={dict(tau_ms)!r} lacks the model(s) {missing}; expected one tau per model"
            )
        tau = xr.DataArray([tau_ms[m] for m in models], dims="model", coords={"model": y["model"].values})
        tau = tau.astype(float)
    else:
        tau = xr.DataArray(check_positive("tau_ms", tau_ms, allow_zero=True))
    values = tau.values
    if not np.all(np.isfinite(values)) or np.any(values < 0):
        raise ValueError(f"tau_ms={values.tolist()!r} must hold finite numbers >= 0 (ms)")
    extra = [d for d in tau.dims if d not in y.dims]
    if extra:
        raise ValueError(
            f"tau_ms has the dimension(s) {extra} that the cost lacks; cost dims: {list(y.dims)}"
        )
    return tau


def _wls_one(csi: np.ndarray, y: np.ndarray, se: np.ndarray, tau: float, absolute: bool, level: float):
    """[A, se, low, high, R, se, low, high, cost_min, se, low, high, chi2, df, n] of one curve."""
    out = np.full(15, np.nan)
    ok = np.isfinite(y) & np.isfinite(se) & (se > 0)
    n = int(ok.sum())
    out[14] = n
    if n == 0:
        return out
    x = prep_regressor(csi[ok], tau)
    x_min = float(prep_regressor(np.nanmin(csi), tau))
    varies = np.ptp(x) > 0
    k = 2 if varies else 1
    if n < k + (0 if absolute else 1) or (not varies and np.any(x != 0)):
        # too few points, or one CSI (x constant, not 0): A and R cannot be told apart
        return out
    exog = np.column_stack([np.ones(n), x]) if varies else np.ones((n, 1))
    model = sm.WLS(y[ok], exog, weights=1.0 / se[ok] ** 2)
    res = model.fit(cov_type="fixed scale", cov_kwds={"scale": 1.0}) if absolute else model.fit()
    alpha = 1 - level

    def contrast(row: list[float]) -> list[float]:
        t = res.t_test(np.array([row[:k]]))
        low, high = np.asarray(t.conf_int(alpha=alpha)).ravel()
        return [float(np.squeeze(t.effect)), float(np.squeeze(t.sd)), float(low), float(high)]

    if varies:
        out[0:4] = contrast([0.0, 1.0])
        out[4:8] = contrast([1.0, 0.0])
        out[8:12] = contrast([1.0, x_min])
    else:  # x == 0 at every CSI (tau = 0 or negligible): the cost is R everywhere, A is not identified
        out[4:8] = contrast([1.0])
        out[8:12] = out[4:8]
    resid = (y[ok] - res.fittedvalues) / se[ok]
    out[12] = float(np.sum(resid**2))
    out[13] = n - k
    return out


def _cost_and_se(
    cost_by_csi: xr.Dataset | xr.DataArray, variable: str, se: xr.DataArray | None, dim: Hashable
) -> tuple[xr.DataArray, xr.DataArray, np.ndarray]:
    """The per-CSI costs, their standard errors and the CSI values (ms) of :func:`fit_preparation_fixed`,
    checked (the SEs from ``<variable>_se``, else from the interval bounds)."""
    if isinstance(cost_by_csi, xr.Dataset):
        if variable not in cost_by_csi:
            raise ValueError(
                f"variable={variable!r} is not in the dataset; it has {sorted(cost_by_csi.data_vars)}"
            )
        y = cost_by_csi[variable]
        if se is not None:
            sigma = se
        elif f"{variable}_se" in cost_by_csi:
            sigma = cost_by_csi[f"{variable}_se"]
        elif f"{variable}_low" in cost_by_csi and f"{variable}_high" in cost_by_csi:
            z = stats.norm.ppf(0.5 + float(cost_by_csi.attrs.get("level", 0.95)) / 2)
            sigma = (cost_by_csi[f"{variable}_high"] - cost_by_csi[f"{variable}_low"]) / (2 * z)
        else:
            raise ValueError(
                f"the dataset has neither {variable}_se nor {variable}_low/_high: the weights need the "
                "per-CSI standard errors"
            )
    elif isinstance(cost_by_csi, xr.DataArray):
        if se is None:
            raise ValueError("se=None: a cost DataArray needs its per-CSI standard errors (se=DataArray)")
        y, sigma = cost_by_csi, se
    else:
        raise TypeError(
            f"cost_by_csi must be an xarray Dataset or DataArray, got {type(cost_by_csi).__name__}"
        )
    if not isinstance(sigma, xr.DataArray):
        raise TypeError(f"se must be an xarray DataArray, got {type(sigma).__name__}")
    if dim not in y.dims:
        raise ValueError(f"dim={dim!r} is not a dimension of the cost; dimensions are {list(y.dims)}")
    if dim not in y.coords:
        raise ValueError(f"the cost has no coordinate {dim!r} (the CSI values in ms)")
    if dim not in sigma.dims:
        raise ValueError(f"se has dims {list(sigma.dims)}; expected the CSI dimension {dim!r}")
    csi = np.asarray(y[dim].values, dtype=float)
    if np.any(~np.isfinite(csi)) or np.any(csi < 0):
        raise ValueError(f"the CSI coordinate {dim!r}={csi.tolist()!r} must hold finite values >= 0 (ms)")
    return y, sigma, csi


def fit_preparation_fixed(
    cost_by_csi: xr.Dataset | xr.DataArray,
    tau_ms: float | Mapping[str, float] | xr.DataArray,
    *,
    variable: str = "rt_cost",
    se: xr.DataArray | None = None,
    dim: Hashable = "csi",
    absolute_se: bool = True,
    level: float = 0.95,
) -> xr.Dataset:
    """Fit ``cost(CSI) = A exp(-CSI / tau) + R`` with tau fixed to the modulator's, by weighted least squares.

    With tau known the curve is linear in A (the preparable cost) and R (the residual cost, as CSI -> inf),
    so it is fitted by weighted least squares (``statsmodels.regression.linear_model.WLS``, weights
    ``1 / SE^2`` of the per-CSI costs), with no identification problem as long as there are two CSIs or more
    with ``exp(-CSI / tau)`` different. This is the per-CSI (aggregate) version; the trial-level regression
    :func:`neuromod.measures.switch_regression` is the primary estimate.

    Parameters
    ----------
    cost_by_csi : xarray.Dataset or xarray.DataArray
        A :func:`switch_cost` result over ``csi`` (its `variable` is fitted) or a cost DataArray (then `se`
        is required).
    tau_ms : float, mapping of model -> float, or xarray.DataArray
        The modulator's time constant (ms, >= 0), one number or one per model (the cost's ``model``
        dimension).
    variable : str
        The cost to fit in a Dataset: ``rt_cost`` or ``error_cost``. Its per-CSI standard error is
        ``<variable>_se`` when present (``rt_cost_se``, Welch), otherwise the half-width of the interval
        ``<variable>_low``/``_high`` divided by the normal quantile of the Dataset's ``level`` (an
        approximation for the asymmetric Newcombe interval of an error cost).
    se : xarray.DataArray, optional
        The per-CSI standard errors when `cost_by_csi` is a DataArray.
    dim : str
        The CSI dimension (its coordinate in ms).
    absolute_se : bool
        True (default): the SEs are taken as known (covariance not rescaled; normal intervals) and
        ``chi2``/``chi2_p`` test the curve's fit. False: rescaled by the residual variance (t intervals;
        needs three CSIs or more).
    level : float
        Confidence level of the intervals.

    Returns
    -------
    xarray.Dataset
        Over the cost's other dimensions (e.g. ``model``): ``amplitude`` (A), ``residual`` (R) and
        ``cost_shortest`` (the fitted cost at the shortest CSI, ``A exp(-CSI_min / tau) + R``), each with
        ``_se``, ``_low`` and ``_high``; ``tau_ms`` (the fixed tau); ``chi2`` (sum of squared standardized
        residuals), ``chi2_df`` (points - parameters) and ``chi2_p`` (its upper tail: a small value means
        the exponential with this tau does not describe the costs); ``n_csi`` (points used) and
        ``identified`` (int8, 1 where A and R are both finite). With ``tau_ms = 0`` the cost is R at every
        CSI > 0: A is NaN, R is the weighted mean cost. NaN where fewer than two usable points or one CSI.

    Raises
    ------
    ValueError
        A missing variable, dimension or standard error, or a bad `tau_ms`.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> csi = np.array([50.0, 150.0, 300.0, 600.0, 1200.0])
    >>> cost = xr.DataArray(60 * np.exp(-csi / 300) + 15, dims="csi", coords={"csi": csi})
    >>> fit = fit_preparation_fixed(cost, 300.0, se=xr.full_like(cost, 5.0))
    >>> round(float(fit["amplitude"]), 6), round(float(fit["residual"]), 6)
    (60.0, 15.0)
    """
    check_range("level", level, 0.0, 1.0, low_inclusive=False, high_inclusive=False)
    y, sigma, csi = _cost_and_se(cost_by_csi, variable, se, dim)
    tau = _tau_array(tau_ms, y)
    sigma = sigma.broadcast_like(y)
    fitted = xr.apply_ufunc(
        lambda yy, ss, tt: _wls_one(csi, yy, ss, float(tt), absolute_se, level),
        y,
        sigma,
        tau,
        input_core_dims=[[dim], [dim], []],
        output_core_dims=[["out"]],
        vectorize=True,
    )
    units = str(y.attrs.get("units", "1"))
    pct = f"{100 * level:g} %"
    out = xr.Dataset()
    meta = {
        "amplitude": "preparable switch cost A (tau fixed)",
        "residual": "residual switch cost R (CSI -> infinity; tau fixed)",
        "cost_shortest": "fitted switch cost at the shortest CSI (tau fixed)",
    }
    for i, name in enumerate(meta):
        long_name = meta[name]
        out[name] = fitted.isel(out=4 * i).assign_attrs(_attrs(units, long_name))
        out[f"{name}_se"] = fitted.isel(out=4 * i + 1).assign_attrs(_attrs(units, f"{long_name}, SE"))
        out[f"{name}_low"] = fitted.isel(out=4 * i + 2).assign_attrs(
            _attrs(units, f"{long_name}, lower {pct}")
        )
        out[f"{name}_high"] = fitted.isel(out=4 * i + 3).assign_attrs(
            _attrs(units, f"{long_name}, upper {pct}")
        )
    out["tau_ms"] = tau.broadcast_like(out["residual"]).assign_attrs(_attrs("ms", "fixed time constant tau"))
    chi2, df = fitted.isel(out=12), fitted.isel(out=13)
    out["chi2"] = chi2.assign_attrs(_attrs("1", "sum of squared standardized residuals"))
    out["chi2_df"] = df.assign_attrs(_attrs("1", "residual degrees of freedom (points - parameters)"))
    p_fit = xr.apply_ufunc(
        lambda c, d: np.where((d > 0) & absolute_se, stats.chi2.sf(c, np.maximum(d, 1)), np.nan), chi2, df
    )
    out["chi2_p"] = p_fit.assign_attrs(_attrs("1", "goodness of fit: P(chi2 >= observed) (absolute SEs)"))
    out["n_csi"] = fitted.isel(out=14).astype(np.int64).assign_attrs(_attrs("1", "CSIs used"))
    identified = np.isfinite(out["amplitude"]) & np.isfinite(out["residual"])
    out["identified"] = identified.astype(np.int8).assign_attrs(_attrs("1", "A and R both estimated (1)"))
    return out.assign_attrs(
        model="cost(csi) = amplitude * exp(-csi / tau_ms) + residual, tau_ms fixed",
        fitted=str(y.name if y.name is not None else variable),
        method="weighted least squares (statsmodels WLS, weights 1 / SE^2)",
        covariance="known SEs (scale 1), normal intervals"
        if absolute_se
        else "scaled by residual variance, t",
        level=level,
    )
