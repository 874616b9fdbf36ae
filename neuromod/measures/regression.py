"""Trial-level regressions of the task-switching switch cost, with the modulator's time constant fixed.

The cost of switching falls with the cue-stimulus interval (CSI) as the modulator settles. With the
modulator's time constant ``tau`` known, the preparation curve ``cost(CSI) = A exp(-CSI / tau) + R`` is
linear in A and R, so it can be fitted on the single trials instead of on per-CSI means:

* RT (correct responses, ms), ordinary least squares (:func:`statsmodels.formula.api.ols`)::

      rt ~ switch + prep + switch:prep + congruent + context + C(|relevant coherence|) + C(|irrelevant|)

  with ``prep = exp(-CSI / tau)`` (:func:`neuromod.measures.prep_regressor`). The switch x prep interaction
  is the preparable cost A, the switch main effect the residual cost R (the cost as CSI -> infinity), and
  the cost at a CSI ``c`` is ``switch + switch:prep * exp(-c / tau)``. ``prep`` alone is the effect of
  preparation time on repeat trials; ``context`` (task b vs task a) also makes the switch direction
  (to b vs to a) a covariate; the coherence terms enter only when the coherence varies.
  Standard errors: heteroskedasticity-consistent HC3 (MacKinnon & White 1985) by default, t intervals on
  the residual degrees of freedom.
* Errors (every trial but the first; a missing response is an error), a binomial GLM with the logit link
  (:func:`statsmodels.formula.api.glm`) with the same terms; coefficients in log odds, model-based
  standard errors, normal intervals.

Derived quantities are linear contrasts of the coefficients (the fitted model's ``t_test``, exact for
linear combinations): ``cost_shortest`` (cost at the shortest CSI of the design),
``cost_longest``, ``amplitude`` (A), ``residual`` (R) and ``cost_drop`` (shortest minus longest CSI).

Degenerate designs never raise: a covariate that is constant or collinear with the others is dropped (and
named in ``<outcome>_dropped``); with ``exp(-CSI / tau)`` constant (one CSI, or ``tau = 0``) the preparation
terms are dropped and A (and, with one CSI, R) is NaN; with no switch (or no repeat) trials, too few trials
for the coefficients, no errors (or no correct trials) for the GLM, the outcome's results are NaN and
``<outcome>_status`` says why; GLM terms that run off to infinity (quasi-separation, e.g. no errors at the
highest coherence) get NaN and so do the quantities that use them.

:func:`model_contrast` estimates the difference of a quantity between two models that ran the same trials
by one regression on both models' trials (every coefficient interacted with the model), with standard errors
clustered by trial, so the shared trials' correlation is accounted for. :func:`resolution` turns a run's
standard error into the trial count needed to resolve an effect.

References
----------
MacKinnon, J. G. & White, H. (1985). Some heteroskedasticity-consistent covariance matrix estimators with
improved finite sample properties. J. Econom. 29:305-325.
Cameron, A. C. & Miller, D. L. (2015). A practitioner's guide to cluster-robust inference. J. Hum. Resour.
50:317-372.
Meiran, N. (1996). Reconfiguration of processing mode prior to task performance. J. Exp. Psychol. Learn.
Mem. Cogn. 22:1423-1442.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import statsmodels.api as sm
import statsmodels.formula.api as smf
import xarray as xr
from scipy import stats

from neuromod._checks import check_choice, check_positive, check_range
from neuromod.measures.comparison import equivalence_test
from neuromod.measures.switching import (
    _TRIAL_VARS,
    _check_vars,
    _model_groups,
    prep_regressor,
    trial_data,
)
from neuromod.results import var_attrs as _attrs

__all__ = [
    "COVARIATES",
    "QUANTITIES",
    "model_contrast",
    "resolution",
    "switch_cost_split",
    "switch_regression",
]

#: Derived quantities of the switch-cost regression (prefixed by the outcome, ``rt_`` or ``error_``).
QUANTITIES = ("cost_shortest", "cost_longest", "amplitude", "residual", "cost_drop")
#: Covariates the regressions can adjust for.
COVARIATES = ("coherence", "congruency", "context")
_OUTCOMES = ("rt", "error")
_RT_COV = ("HC3", "HC2", "HC1", "HC0", "nonrobust")
#: Coherence enters as a factor up to this many levels, as a linear term above.
_MAX_LEVELS = 10
#: A GLM coefficient with a larger standard error (log odds) has run off (quasi-separation).
_UNSTABLE_SE = 50.0
_UNITS = {"rt": "ms", "error": "log odds"}
_LONG = {
    "cost_shortest": "switch cost at the shortest CSI",
    "cost_longest": "switch cost at the longest CSI",
    "amplitude": "preparable switch cost A (switch x exp(-CSI/tau))",
    "residual": "residual switch cost R (switch main effect; CSI -> infinity)",
    "cost_drop": "switch cost at the shortest minus the longest CSI",
}
_KIND_NOTE = {
    "ok": "preparation terms estimated",
    "zero": "preparation terms dropped (tau_ms = 0 or exp(-CSI/tau) = 0 at every CSI)",
    "constant": "preparation terms dropped (one CSI)",
}
_SPLITS = {
    "context": ("context", "task context of the trial (0: a, 1: b); for switches the task switched to"),
    "is_congruent": ("congruent", "congruent (1) or incongruent (0) stimulus"),
}


# ------------------------------------------------------------------------------------------------------
# input
# ------------------------------------------------------------------------------------------------------
def _check_common(covariates: Sequence[str], level: float, outcomes: Sequence[str]) -> tuple[tuple, tuple]:
    if isinstance(covariates, str) or not isinstance(covariates, Sequence):
        raise TypeError(f"covariates must be a sequence of names from {list(COVARIATES)}, got {covariates!r}")
    for c in covariates:
        check_choice("covariates", c, COVARIATES)
    if isinstance(outcomes, str) or not isinstance(outcomes, Sequence) or not outcomes:
        raise ValueError(f"outcomes={outcomes!r} must be a non-empty sequence from {list(_OUTCOMES)}")
    for o in outcomes:
        check_choice("outcomes", o, _OUTCOMES)
    check_range("level", level, 0.0, 1.0, low_inclusive=False, high_inclusive=False)
    return tuple(covariates), tuple(dict.fromkeys(outcomes))


def _config_tau(tau_ms: Any, data: Any) -> Any:
    """`tau_ms`, or (when None) the ``tau_ms`` of the run's config in a DataTree's ``config_json``."""
    if tau_ms is not None:
        return tau_ms
    text = data.attrs.get("config_json") if isinstance(data, xr.DataTree) else None
    config = json.loads(text) if text else {}
    if "tau_ms" not in config:
        raise ValueError(
            "tau_ms=None and the data carry no run config with 'tau_ms' (a DataTree's config_json); pass "
            "the modulator time constant, e.g. tau_ms=400.0 or {model: tau}"
        )
    return config["tau_ms"]


def _tau(tau_ms: Any, model: str | None) -> float:
    if isinstance(tau_ms, Mapping):
        if model is None or model not in tau_ms:
            raise ValueError(
                f"tau_ms={dict(tau_ms)!r} has no entry for model {model!r}; expected one per model"
            )
        return check_positive(f"tau_ms[{model!r}]", tau_ms[model], allow_zero=True)
    return check_positive("tau_ms", tau_ms, allow_zero=True)


def _models(data: Any, model: str | None) -> list[str | None]:
    """The model groups to fit: [None] for a Dataset, [model] when named, else every group of the tree."""
    if isinstance(data, xr.DataTree) and model is None:
        groups = _model_groups(data)
        if not groups:
            raise ValueError("the tree has no model group with 'choice', 'correct' and 'rt'")
        return list(groups)
    return [model]


def _frame(ds: xr.Dataset, tau: float, covariates: Sequence[str], split: str | None) -> pd.DataFrame:
    """One model's non-first trials as a DataFrame of the regression's raw variables."""
    need = ["is_switch", "csi_ms", *_TRIAL_VARS]
    if "coherence" in covariates:
        need += ["feature_a", "feature_b", "context"]
    if "congruency" in covariates:
        need.append("is_congruent")
    if "context" in covariates:
        need.append("context")
    if split is not None:
        need.append(split)
    _check_vars(ds, list(dict.fromkeys(need)))
    n = ds.sizes["trial"]
    keep = ~ds["is_first"].values.astype(bool) if "is_first" in ds else np.ones(n, dtype=bool)
    trial = ds["trial"].values if "trial" in ds.coords else np.arange(n)
    csi = ds["csi_ms"].values.astype(float)
    if np.any(~np.isfinite(csi)) or np.any(csi < 0):
        raise ValueError("data['csi_ms'] must hold finite values >= 0 (ms)")
    correct = ds["correct"].values.astype(float)
    f = {
        "trial": np.asarray(trial),
        "rt": ds["rt"].values.astype(float),
        "correct": correct,
        "error": 1.0 - correct,
        "switch": ds["is_switch"].values.astype(float),
        "csi": csi,
        "prep": prep_regressor(csi, tau),
    }
    if "congruency" in covariates or split == "is_congruent":
        f["congruent"] = ds["is_congruent"].values.astype(float)
    if "context" in covariates or "coherence" in covariates or split == "context":
        f["context"] = ds["context"].values.astype(float)
    if "coherence" in covariates:
        a, b = np.abs(ds["feature_a"].values.astype(float)), np.abs(ds["feature_b"].values.astype(float))
        task_b = f["context"] == 1
        f["coh_rel"] = np.where(task_b, b, a)
        f["coh_irr"] = np.where(task_b, a, b)
    if split is not None:
        g = ds[split].values
        levels = np.unique(g[keep])
        if not set(levels.tolist()) <= {0, 1}:
            raise ValueError(f"data[{split!r}] must hold 0/1 (or False/True) to split by it, got {levels}")
        f["group"] = g.astype(float)
    return pd.DataFrame(f)[keep].reset_index(drop=True)


# ------------------------------------------------------------------------------------------------------
# design
# ------------------------------------------------------------------------------------------------------
def _level_name(prefix: str, value: float) -> str:
    return f"{prefix}_{format(value, 'g').replace('.', 'p').replace('-', 'm')}"


def _candidates(f: pd.DataFrame, covariates: Sequence[str], split: str | None):
    """(core columns, nuisance columns, prep kind: 'ok', 'zero' or 'constant') of one model's rows."""
    prep, sw = f["prep"].to_numpy(), f["switch"].to_numpy()
    kind = (
        "ok"
        if np.ptp(prep) > 0
        else ("zero" if np.all(prep == 0) else "constant")
        if prep.size
        else "constant"
    )
    core: dict[str, np.ndarray] = {"const": np.ones(len(f))}
    if split is None:
        core["switch"] = sw
        if kind == "ok":
            core["prep"] = prep
            core["switch_prep"] = sw * prep
    else:
        g = f["group"].to_numpy()
        core["group"] = g
        if kind == "ok":
            core["prep"] = prep
            core["prep_group"] = prep * g
        for k in (0, 1):
            core[f"switch_{k}"] = sw * (g == k)
            if kind == "ok":
                core[f"switch_prep_{k}"] = sw * prep * (g == k)
    nuisance: dict[str, np.ndarray] = {}
    if "congruency" in covariates and split != "is_congruent":
        nuisance["congruent"] = f["congruent"].to_numpy()
    if "context" in covariates and split != "context":
        nuisance["context"] = f["context"].to_numpy()
    if "coherence" in covariates:
        for name in ("coh_rel", "coh_irr"):
            x = f[name].to_numpy()
            levels = np.unique(x)
            if levels.size > _MAX_LEVELS:
                nuisance[name] = x
            else:
                for v in levels[1:]:
                    nuisance[_level_name(name, float(v))] = (x == v).astype(float)
    return core, nuisance, kind


def _adds_rank(cols: list[np.ndarray], v: np.ndarray) -> bool:
    norm = float(np.linalg.norm(v))
    if norm == 0 or not np.all(np.isfinite(v)):
        return False
    m = np.column_stack([*cols, v / norm]) if cols else (v / norm)[:, None]
    return int(np.linalg.matrix_rank(m)) == m.shape[1]


def _select(core: dict, nuisance: dict) -> tuple[list[str] | None, list[str], str]:
    """Columns that keep the design full rank: (names or None, dropped nuisance, status)."""
    names: list[str] = []
    cols: list[np.ndarray] = []
    for name, v in core.items():
        if not _adds_rank(cols, v):
            if name == "const":
                what = "there are no trials"
            elif name.startswith("switch") and "prep" not in name:
                what = "no switch trials or no repeat trials"
            else:
                what = "it is constant or collinear with the terms before it"
            return None, [], f"design is degenerate: the term {name!r} cannot be estimated ({what})"
        names.append(name)
        cols.append(v / np.linalg.norm(v))
    dropped = []
    for name, v in nuisance.items():
        if _adds_rank(cols, v):
            names.append(name)
            cols.append(v / np.linalg.norm(v))
        else:
            dropped.append(name)
    return names, dropped, "ok"


class _Block:
    """One model's design for one outcome: its rows, selected columns and status."""

    def __init__(self, f: pd.DataFrame, outcome: str, covariates, split, prefix: str = "") -> None:
        rows = f[(f["correct"] == 1) & np.isfinite(f["rt"])] if outcome == "rt" else f
        self.rows = rows.reset_index(drop=True)
        self.prefix = prefix
        self.n = len(self.rows)
        self.n_events = int(self.rows["error"].sum()) if outcome == "error" else self.n
        self.names: list[str] = []
        self.columns: dict[str, np.ndarray] = {}
        self.dropped: list[str] = []
        core, nuisance, self.kind = _candidates(self.rows, covariates, split)
        if self.n == 0:
            self.status = "no trials" if outcome == "error" else "no correct responses with an RT"
            return
        names, self.dropped, self.status = _select(core, nuisance)
        if names is None:
            return
        self.names = names
        self.columns = {name: (core | nuisance)[name] for name in names}
        k = len(names)
        if outcome == "rt" and self.n - k < 1:
            self.status = f"too few trials: {self.n} correct RTs for {k} coefficients"
        elif outcome == "error" and self.n_events == 0:
            self.status = f"no errors in {self.n} trials: the error model cannot be fitted"
        elif outcome == "error" and self.n_events == self.n:
            self.status = f"no correct trials in {self.n}: the error model cannot be fitted"
        elif outcome == "error" and self.n < k:
            self.status = f"too few trials: {self.n} trials for {k} coefficients"

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def _fit(blocks: list[_Block], outcome: str, cov_type: str, cluster: bool):
    """Fit the stacked blocks (block-diagonal design): (results or None, status, unstable terms)."""
    frames = []
    all_names = [b.prefix + n for b in blocks for n in b.names]
    for b in blocks:
        part = pd.DataFrame(0.0, index=range(b.n), columns=all_names)
        for n in b.names:
            part[b.prefix + n] = b.columns[n]
        part["y"] = b.rows[outcome].to_numpy()
        part["trial"] = b.rows["trial"].to_numpy()
        frames.append(part)
    df = pd.concat(frames, ignore_index=True)
    formula = "y ~ 0 + " + " + ".join(all_names)
    kw: dict[str, Any] = {}
    if cluster:
        kw = {"cov_type": "cluster", "cov_kwds": {"groups": pd.factorize(df["trial"])[0]}}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if outcome == "rt":
                res = smf.ols(formula, df).fit(use_t=True, **(kw or {"cov_type": cov_type}))
            else:
                res = smf.glm(formula, df, family=sm.families.Binomial()).fit(**kw)
    except Exception as err:  # a degenerate design must give NaN and a reason, never a crash
        return None, f"fit failed: {type(err).__name__}: {err}", set()
    se = np.asarray(res.bse, dtype=float)
    unstable = {n for n, s in zip(res.params.index, se, strict=True) if not np.isfinite(s)}
    status = "ok"
    if outcome == "error":
        unstable |= {n for n, s in zip(res.params.index, se, strict=True) if s > _UNSTABLE_SE}
        if not res.converged:
            status = "the GLM did not converge"
    if unstable and status == "ok":
        shown = sorted(unstable)
        listed = ", ".join(shown[:5]) + (f" and {len(shown) - 5} more" if len(shown) > 5 else "")
        why = "quasi-separation" if outcome == "error" else "a trial with leverage 1"
        status = f"{len(shown)} of {len(se)} terms not estimable ({why}): {listed}"
    return res, status, unstable


def _contrast(res: Any, weights: Mapping[str, float] | None, unstable: set, level: float) -> np.ndarray:
    """[estimate, se, low, high] of a linear combination of the coefficients (NaN when not estimable)."""
    out = np.full(4, np.nan)
    if res is None or weights is None:
        return out
    names = list(res.params.index)
    used = {k: w for k, w in weights.items() if w != 0}
    if any(k not in names or k in unstable for k in used):
        return out
    row = np.zeros(len(names))
    for k, w in used.items():
        row[names.index(k)] = w
    t = res.t_test(row[None, :])
    low, high = np.asarray(t.conf_int(alpha=1 - level), dtype=float).ravel()
    out[:] = float(np.squeeze(t.effect)), float(np.squeeze(t.sd)), low, high
    if not np.isfinite(out[1]):
        out[:] = np.nan
    return out


def _weights(q: str, prefix: str, suffix: str, kind: str, e_min: float, e_max: float) -> dict | None:
    """Coefficient weights of quantity `q` (None: not defined for this design)."""
    s, sp = f"{prefix}switch{suffix}", f"{prefix}switch_prep{suffix}"
    if kind == "ok":
        return {
            "cost_shortest": {s: 1.0, sp: e_min},
            "cost_longest": {s: 1.0, sp: e_max},
            "amplitude": {sp: 1.0},
            "residual": {s: 1.0},
            "cost_drop": {sp: e_min - e_max},
        }[q]
    if q in ("cost_shortest", "cost_longest"):
        return {s: 1.0}
    if q == "residual" and kind == "zero":  # exp(-CSI/tau) = 0 at every CSI: the cost is R everywhere
        return {s: 1.0}
    return None


def _combine(*ws: tuple[float, dict | None]) -> dict | None:
    out: dict[str, float] = {}
    for c, w in ws:
        if w is None:
            return None
        for k, v in w.items():
            out[k] = out.get(k, 0.0) + c * v
    return out


def _csi_range(f: pd.DataFrame, tau: float) -> tuple[float, float, float, float]:
    lo, hi = float(f["csi"].min()), float(f["csi"].max())
    return lo, hi, float(prep_regressor(lo, tau)), float(prep_regressor(hi, tau))


# ------------------------------------------------------------------------------------------------------
# one model
# ------------------------------------------------------------------------------------------------------
def _one_model(
    ds: xr.Dataset,
    tau: float,
    covariates: Sequence[str],
    outcomes: Sequence[str],
    split: str | None,
    cov_type: str,
    level: float,
) -> xr.Dataset:
    f = _frame(ds, tau, covariates, split)
    csi_levels = np.unique(f["csi"].to_numpy()) if len(f) else np.array([np.nan])
    lo, hi, e_min, e_max = _csi_range(f, tau) if len(f) else (np.nan,) * 4
    pct = f"{100 * level:g} %"
    data: dict[str, Any] = {}
    coords: dict[str, Any] = {"csi": ("csi", csi_levels, _attrs("ms", "cue-stimulus interval"))}
    split_dim = None
    if split is not None:
        split_dim, split_long = _SPLITS[split]
        coords[split_dim] = (split_dim, np.array([0, 1], dtype=np.int8), _attrs("1", split_long))
    for outcome in outcomes:
        units = _UNITS[outcome]
        block = _Block(f, outcome, covariates, split)
        res, status, unstable = (None, block.status, set())
        if block.ok:
            res, status, unstable = _fit([block], outcome, cov_type, cluster=False)
        o = outcome
        scale = "log odds" if o == "error" else "ms"
        what = "RT (correct responses)" if o == "rt" else "error log odds"
        # coefficients
        terms = list(res.params.index) if res is not None else []
        coef = np.full((len(terms), 4), np.nan)
        for i, t in enumerate(terms):
            coef[i] = _contrast(res, {t: 1.0}, unstable, level)
        tdim = f"{o}_term"
        coords[tdim] = (tdim, np.array(terms, dtype=str), _attrs("1", f"coefficient of the {what} model"))
        for j, suffix in enumerate(("", "_se", "_low", "_high")):
            data[f"{o}_coef{suffix}"] = (
                tdim,
                coef[:, j],
                _attrs(
                    units,
                    f"{what} coefficient ({scale})" + {"": "", "_se": ", SE"}.get(suffix, f", {pct} bound"),
                ),
            )
        # quantities
        levels = [("", None)] if split is None else [("_0", 0), ("_1", 1)]
        for q in QUANTITIES:
            vals = np.stack(
                [
                    _contrast(res, _weights(q, "", sfx, block.kind, e_min, e_max), unstable, level)
                    for sfx, _ in levels
                ]
            )
            dims: tuple = () if split is None else (split_dim,)
            arr = vals[0] if split is None else vals
            long_name = f"{_LONG[q]}, {what}"
            for j, suffix in enumerate(("", "_se", "_low", "_high")):
                part = arr[..., j]
                ln = long_name + {"": "", "_se": ", SE"}.get(suffix, f", {pct} bound")
                data[f"{o}_{q}{suffix}"] = (dims, part, _attrs(units, ln))
            if split is not None:
                w = _combine(
                    (1.0, _weights(q, "", "_1", block.kind, e_min, e_max)),
                    (-1.0, _weights(q, "", "_0", block.kind, e_min, e_max)),
                )
                d = _contrast(res, w, unstable, level)
                for j, suffix in enumerate(("", "_se", "_low", "_high")):
                    ln = f"{_LONG[q]}, {split_dim} 1 minus 0, {what}"
                    ln += {"": "", "_se": ", SE"}.get(suffix, f", {pct} bound")
                    data[f"{o}_{q}_diff{suffix}"] = ((), d[j], _attrs(units, ln))
        # cost at every CSI (no split only)
        if split is None:
            by_csi = (
                np.stack(
                    [
                        _contrast(
                            res,
                            {"switch": 1.0, "switch_prep": float(prep_regressor(c, tau))}
                            if block.kind == "ok"
                            else ({"switch": 1.0} if block.kind != "constant" or c == lo else None),
                            unstable,
                            level,
                        )
                        for c in csi_levels
                    ]
                )
                if len(f)
                else np.full((1, 4), np.nan)
            )
            for j, suffix in enumerate(("", "_se", "_low", "_high")):
                ln = f"fitted switch cost at each CSI, {what}"
                ln += {"": "", "_se": ", SE"}.get(suffix, f", {pct} bound")
                data[f"{o}_cost_by_csi{suffix}"] = ("csi", by_csi[:, j], _attrs(units, ln))
        fitted = int(res is not None)
        note = status if status != "ok" else "ok"
        if block.kind != "ok" and block.status == "ok":
            note = (note + "; " if note != "ok" else "") + _KIND_NOTE[block.kind]
        data[f"{o}_status"] = ((), note, _attrs("1", f"{what} model: 'ok' or what went wrong"))
        data[f"{o}_fitted"] = ((), np.int8(fitted), _attrs("1", f"{what} model fitted (1) or not (0)"))
        data[f"{o}_dropped"] = (
            (),
            ", ".join(block.dropped),
            _attrs("1", f"covariate columns dropped from the {what} model (constant or collinear)"),
        )
        data[f"{o}_n"] = ((), np.int64(block.n), _attrs("1", f"trials in the {what} model"))
        if o == "error":
            data["error_n_errors"] = ((), np.int64(block.n_events), _attrs("1", "errors in the error model"))
    data["tau_ms"] = ((), float(tau), _attrs("ms", "modulator time constant tau (fixed)"))
    data["csi_shortest"] = ((), lo, _attrs("ms", "shortest CSI of the design"))
    data["csi_longest"] = ((), hi, _attrs("ms", "longest CSI of the design"))
    data["n_trials"] = ((), np.int64(ds.sizes["trial"]), _attrs("1", "trials in the run (with the first)"))
    return xr.Dataset(data, coords=coords)


def _regression(data, tau_ms, model, covariates, outcomes, split, cov_type, level) -> xr.Dataset:
    check_choice("cov_type", cov_type, _RT_COV)
    covariates, outcomes = _check_common(covariates, level, outcomes)
    tau_ms = _config_tau(tau_ms, data)
    models = _models(data, model)
    parts = []
    for m in models:
        ds = trial_data(data, m)
        parts.append(_one_model(ds, _tau(tau_ms, m), covariates, outcomes, split, cov_type, level))
    attrs = {
        "level": level,
        "rt_model": "OLS on correct RTs: rt ~ switch * exp(-csi/tau) + covariates",
        "rt_covariance": f"{cov_type} (heteroskedasticity-consistent), t intervals"
        if cov_type != "nonrobust"
        else "nonrobust (homoskedastic), t intervals",
        "error_model": "binomial GLM, logit link: error ~ switch * exp(-csi/tau) + covariates",
        "error_covariance": "model-based (nonrobust), normal intervals",
        "covariates": ", ".join(covariates) if covariates else "none",
        "first_trial": "left out (no preceding task)",
    }
    if len(models) == 1:  # a Dataset, a named model, or a tree with one model group: no model dimension
        return parts[0].assign_attrs(attrs)
    out = xr.concat(parts, dim="model", join="outer", combine_attrs="override", data_vars="all")
    out = out.assign_coords(model=("model", [str(m) for m in models], _attrs("1", "model")))
    return out.assign_attrs(attrs)


def switch_regression(
    data: xr.Dataset | xr.DataTree,
    tau_ms: float | Mapping[str, float] | None = None,
    *,
    model: str | None = None,
    covariates: Sequence[str] = COVARIATES,
    outcomes: Sequence[str] = ("rt", "error"),
    cov_type: str = "HC3",
    level: float = 0.95,
) -> xr.Dataset:
    """Trial-level regression of RT and errors on switch x exp(-CSI/tau) and covariates (primary estimate).

    Parameters
    ----------
    data : xarray.DataTree or xarray.Dataset
        The protocol's tree (trial table at the root, per-trial ``choice``, ``correct``, ``rt`` per model) or
        one model's merged trials (:func:`neuromod.measures.trial_data`). Needs ``is_switch``, ``csi_ms``
        and the covariates' variables (``feature_a``, ``feature_b``, ``context`` for coherence;
        ``is_congruent``; ``context``); ``is_first`` (when present) leaves out the first trial.
    tau_ms : float or mapping of model -> float, optional
        The modulator's time constant (ms, >= 0), one for all models or one per model. None (default):
        the run config's ``tau_ms`` (``tree.nm.config``, the time constant of every model of the run).
    model : str, optional
        One model group of a tree; None on a tree with several model groups fits each along ``model``.
    covariates : sequence of str
        Any of ``"coherence"`` (factors of the relevant and irrelevant coherence magnitudes, each only
        when it varies), ``"congruency"`` (``is_congruent``) and ``"context"`` (task b vs a: with the switch
        term, the switch direction); ``()`` for none.
    outcomes : sequence of str
        ``"rt"`` and/or ``"error"``.
    cov_type : str
        Covariance of the RT model: ``"HC3"`` (default), ``"HC2"``, ``"HC1"``, ``"HC0"`` or ``"nonrobust"``.
    level : float
        Confidence level of the intervals (default 0.95).

    Returns
    -------
    xarray.Dataset
        Per outcome ``o`` (``rt`` in ms, ``error`` in log odds), over ``model`` for several models:

        * ``o_coef``, ``o_coef_se``, ``o_coef_low``, ``o_coef_high`` over ``o_term`` (``const``,
          ``switch``, ``prep``, ``switch_prep``, ``congruent``, ``context``, ``coh_rel_<value>``,
          ``coh_irr_<value>``; ``prep = exp(-CSI/tau)``; a coherence level's dummy is relative to the lowest);
        * ``o_cost_shortest``, ``o_cost_longest``, ``o_amplitude`` (A), ``o_residual`` (R), ``o_cost_drop``
          (shortest minus longest CSI), each with ``_se``, ``_low``, ``_high``;
        * ``o_cost_by_csi`` (with ``_se``, ``_low``, ``_high``) over ``csi``: the fitted cost at each CSI;
        * ``o_status`` (``"ok"`` or why not), ``o_fitted`` (int8), ``o_dropped`` (covariate columns dropped
          as constant or collinear), ``o_n`` (trials in the model); ``error_n_errors``;

        and ``tau_ms``, ``csi_shortest``, ``csi_longest``, ``n_trials``. Attributes name the models and
        covariance estimators.

    Raises
    ------
    ValueError
        A missing variable or model group, a bad `tau_ms`, `covariates`, `outcomes`, `cov_type` or `level`.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> rng = np.random.default_rng(0)
    >>> n = 400
    >>> sw = rng.random(n) < 0.5
    >>> csi = rng.choice([50.0, 150.0, 300.0, 600.0, 1200.0], n)
    >>> rt = 400 + sw * (60 * np.exp(-csi / 300) + 20) + rng.normal(0, 1e-6, n)
    >>> ones = np.ones(n)
    >>> ds = xr.Dataset({"is_switch": ("trial", sw), "csi_ms": ("trial", csi), "choice": ("trial", ones),
    ...                  "correct": ("trial", ones), "rt": ("trial", rt)})
    >>> fit = switch_regression(ds, 300.0, covariates=(), outcomes=("rt",))
    >>> round(float(fit["rt_amplitude"]), 3), round(float(fit["rt_residual"]), 3)
    (60.0, 20.0)
    """
    return _regression(data, tau_ms, model, covariates, outcomes, None, cov_type, level)


def switch_cost_split(
    data: xr.Dataset | xr.DataTree,
    tau_ms: float | Mapping[str, float] | None = None,
    *,
    by: str = "context",
    model: str | None = None,
    covariates: Sequence[str] = COVARIATES,
    outcomes: Sequence[str] = ("rt", "error"),
    cov_type: str = "HC3",
    level: float = 0.95,
) -> xr.Dataset:
    """Switch costs split by switch direction (``by="context"``) or by congruency (``by="is_congruent"``).

    One regression as :func:`switch_regression` in which the switch and switch x exp(-CSI/tau) terms (and
    ``prep``) are estimated separately for each level of `by`, with the covariates shared. By context, level
    1 holds the switches to task b (a -> b) and the repeats of b, level 0 the switches to a (b -> a) and the
    repeats of a, so the split is the cost by direction of the switch. (Per-cell means without the model:
    :func:`neuromod.measures.switch_cost` with ``by=("context",)`` or ``("is_congruent",)``.)

    Parameters
    ----------
    by : str
        ``"context"`` (dimension ``context``: 0 to task a, 1 to task b) or ``"is_congruent"`` (dimension
        ``congruent``).
    data, tau_ms, model, covariates, outcomes, cov_type, level
        As :func:`switch_regression` (the `by` variable is not also a covariate).

    Returns
    -------
    xarray.Dataset
        As :func:`switch_regression`, with the quantities ``o_<quantity>`` (and ``_se``, ``_low``, ``_high``)
        over the split dimension, and ``o_<quantity>_diff`` (level 1 minus level 0, with ``_se``, ``_low``,
        ``_high``); no ``o_cost_by_csi``.
    """
    check_choice("by", by, tuple(_SPLITS))
    return _regression(data, tau_ms, model, covariates, outcomes, by, cov_type, level)


# ------------------------------------------------------------------------------------------------------
# paired contrasts between models
# ------------------------------------------------------------------------------------------------------
def _parse_quantity(name: str) -> tuple[str, str, str | None]:
    """(outcome, kind, term): kind is a QUANTITIES name or 'coef' (then term names the coefficient)."""
    if not isinstance(name, str):
        raise TypeError(f"quantity must be a string, got {name!r}")
    for o in _OUTCOMES:
        if name.startswith(o + "_"):
            rest = name[len(o) + 1 :]
            if rest in QUANTITIES:
                return o, rest, None
            if rest.startswith("coef_") and len(rest) > 5:
                return o, "coef", rest[5:]
    choices = [f"{o}_{q}" for o in _OUTCOMES for q in QUANTITIES] + ["rt_coef_<term>", "error_coef_<term>"]
    raise ValueError(f"quantity={name!r} is not one of {choices}")


def _joint_fit(
    frames: Mapping[str, Any], models: tuple[str, str], o: str, covariates: Sequence[str]
) -> tuple:
    """The two models' trials in one fit of outcome `o` (errors clustered by trial): (results or None,
    status, unstable terms, blocks, rows)."""
    blocks = [_Block(frames[m], o, covariates, None, prefix=f"m{i}_") for i, m in enumerate(models)]
    bad = [f"{m}: {b.status}" for m, b in zip(models, blocks, strict=True) if not b.ok]
    if bad:
        return None, "; ".join(bad), set(), blocks, 0
    res, status, unstable = _fit(blocks, o, "cluster", cluster=True)
    if o == "error" and res is not None:
        # cluster-robust errors can stay small for terms that diverge under quasi-separation: a term
        # that is not estimable in its own model's fit (model-based errors) is not estimable here either
        for b in blocks:
            _, _, own = _fit([b], o, "nonrobust", cluster=False)
            unstable |= own
        if unstable and status == "ok":
            status = f"{len(unstable)} terms not estimable (quasi-separation in a model's own fit)"
    return res, status, unstable, blocks, sum(b.n for b in blocks)


def _contrast_dataset(
    rows: list, names: list[str], units: list[str], models: tuple[str, str], level: float
) -> xr.Dataset:
    """The contrasts' Dataset over ``quantity`` from rows (difference (value, se, low, high), estimate a,
    estimate b, status, clusters, rows)."""
    model_a, model_b = models
    dim = "quantity"
    pct = f"{100 * level:g} %"
    data = {
        "difference": ([r[0][0] for r in rows], f"{model_a} minus {model_b}"),
        "difference_se": ([r[0][1] for r in rows], "difference, SE (cluster by trial)"),
        "difference_low": ([r[0][2] for r in rows], f"difference, lower {pct} bound"),
        "difference_high": ([r[0][3] for r in rows], f"difference, upper {pct} bound"),
        "estimate_a": ([r[1] for r in rows], f"{model_a}'s value (joint fit)"),
        "estimate_b": ([r[2] for r in rows], f"{model_b}'s value (joint fit)"),
    }
    out = xr.Dataset(
        {
            **{k: (dim, v, _attrs("various", name)) for k, (v, name) in data.items()},
            "units": (dim, units, _attrs("1", "units of the quantity")),
            "status": (dim, [r[3] for r in rows], _attrs("1", "'ok' or why the contrast is undefined")),
            "n_clusters": (
                dim,
                np.array([r[4] for r in rows], dtype=np.int64),
                _attrs("1", "trials (clusters)"),
            ),
            "n_rows": (
                dim,
                np.array([r[5] for r in rows], dtype=np.int64),
                _attrs("1", "rows of the joint fit"),
            ),
        },
        coords={dim: (dim, names, _attrs("1", "regression quantity"))},
    )
    return out


def model_contrast(
    tree: xr.DataTree,
    model_a: str,
    model_b: str,
    *,
    tau_ms: float | Mapping[str, float] | None = None,
    quantity: str | Sequence[str] = "rt_cost_shortest",
    covariates: Sequence[str] = COVARIATES,
    level: float = 0.95,
    margin: float | Mapping[str, float] | None = None,
    alpha: float = 0.05,
) -> xr.Dataset:
    """Difference of a switch-regression quantity between two models that ran the same trials (a minus b).

    Both models' trials are stacked into one regression in which every coefficient of
    :func:`switch_regression` is estimated separately per model (each model keeps its own tau in
    ``exp(-CSI/tau)``), so the point estimates equal the two separate fits; the standard errors are
    cluster-robust with the trial as the cluster (CR1, t on clusters - 1 df for RT; normal for the GLM), which
    accounts for the two models' responses to the same trial being correlated. With `margin` the difference
    is also tested for equivalence (:func:`neuromod.measures.equivalence_test`, TOST at `alpha`).

    Parameters
    ----------
    tree : xarray.DataTree
        The protocol's tree with both model groups.
    model_a, model_b : str
        The two model groups (the difference is a minus b).
    tau_ms : float or mapping of model -> float, optional
        The modulator time constant(s) (ms); None: the run config's ``tau_ms``.
    quantity : str or sequence of str
        ``rt_<q>`` or ``error_<q>`` with ``q`` in ``QUANTITIES``, or ``rt_coef_<term>`` /
        ``error_coef_<term>`` for a coefficient of :func:`switch_regression` (e.g. ``rt_coef_congruent``).
        A sequence gives a ``quantity`` dimension.
    covariates : sequence of str
        As :func:`switch_regression`.
    level : float
        Confidence level of the difference's interval.
    margin : float or mapping of quantity -> float, optional
        Equivalence margin in the quantity's units (ms for RT quantities, log odds for errors).
    alpha : float
        Level of the equivalence test (its interval is the 1 - 2 alpha one).

    Returns
    -------
    xarray.Dataset
        ``difference`` (a minus b) with ``difference_se``, ``difference_low``, ``difference_high``;
        ``estimate_a``, ``estimate_b`` (each model's value from the joint fit); ``units``; ``status``;
        ``n_clusters`` (trials) and ``n_rows``. With `margin`: ``margin``, ``equivalence_low``,
        ``equivalence_high`` (the 1 - 2 alpha interval), ``p_equivalence`` (TOST p-value), ``equivalent``,
        ``differs`` (int8, -1 undefined) and ``verdict`` (``"equivalent"``, ``"different"``,
        ``"inconclusive"`` or ``"undefined"``).

    Raises
    ------
    ValueError
        An unknown model or quantity, identical models, or a bad margin.
    """
    if not isinstance(tree, xr.DataTree):
        raise TypeError(f"tree must be an xarray DataTree (both models' trials), got {type(tree).__name__}")
    groups = _model_groups(tree)
    for name, m in (("model_a", model_a), ("model_b", model_b)):
        if m not in groups:
            raise ValueError(f"{name}={m!r} is not a model group of the tree; groups: {groups}")
    if model_a == model_b:
        raise ValueError(f"model_a and model_b are both {model_a!r}; expected two different models")
    covariates, _ = _check_common(covariates, level, ("rt",))
    check_range("alpha", alpha, 0.0, 0.5, low_inclusive=False, high_inclusive=False)
    single = isinstance(quantity, str)
    names = [quantity] if single else list(quantity)
    if not names:
        raise ValueError("quantity is empty: name at least one quantity")
    parsed = [_parse_quantity(q) for q in names]
    margins = None
    if margin is not None:
        if isinstance(margin, Mapping):
            missing = [q for q in names if q not in margin]
            if missing:
                raise ValueError(f"margin={dict(margin)!r} lacks the quantity(ies) {missing}")
            margins = [check_positive(f"margin[{q!r}]", margin[q]) for q in names]
        else:
            margins = [check_positive("margin", margin)] * len(names)
    tau_ms = _config_tau(tau_ms, tree)
    taus = {m: _tau(tau_ms, m) for m in (model_a, model_b)}
    frames = {m: _frame(trial_data(tree, m), taus[m], covariates, None) for m in (model_a, model_b)}
    models = (model_a, model_b)
    fits = {o: _joint_fit(frames, models, o, covariates) for o in dict.fromkeys(p[0] for p in parsed)}
    rows = []
    for o, kind, term in parsed:
        res, status, unstable, blocks, n_rows = fits[o]
        ws = []
        for i, m in enumerate((model_a, model_b)):
            if kind == "coef":
                ws.append({f"m{i}_{term}": 1.0})
            else:
                _, _, e_min, e_max = _csi_range(frames[m], taus[m])
                ws.append(_weights(kind, f"m{i}_", "", blocks[i].kind, e_min, e_max))
        est_a = _contrast(res, ws[0], unstable, level)
        est_b = _contrast(res, ws[1], unstable, level)
        diff = _contrast(res, _combine((1.0, ws[0]), (-1.0, ws[1])), unstable, level)
        if res is not None and kind == "coef" and any(next(iter(w)) not in res.params.index for w in ws):
            status = f"term {term!r} is not in both models' fits; terms: {sorted(set(res.params.index))}"
        elif res is not None and any(w is None for w in ws):
            why = [f"{m}: {_KIND_NOTE[b.kind]}" for m, b in zip((model_a, model_b), blocks, strict=True)]
            status = f"{kind} is not defined for this design ({'; '.join(why)})"
        n_clusters = len(np.unique(np.concatenate([b.rows["trial"].to_numpy() for b in blocks])))
        rows.append((diff, est_a[0], est_b[0], status, n_clusters, n_rows))
    dim = "quantity"
    units = [_UNITS[p[0]] for p in parsed]
    out = _contrast_dataset(rows, names, units, models, level).assign_attrs(
        model_a=model_a,
        model_b=model_b,
        level=level,
        covariance="cluster-robust by trial (CR1); RT: t on clusters - 1 df; errors: normal",
        tau_ms_a=taus[model_a],
        tau_ms_b=taus[model_b],
    )
    if margins is not None:
        df = xr.DataArray(
            [(r[4] - 1) if p[0] == "rt" and r[4] > 1 else np.inf for r, p in zip(rows, parsed, strict=True)],
            dims=dim,
        )
        tost = equivalence_test(
            out["difference"], out["difference_se"], xr.DataArray(margins, dims=dim), alpha=alpha, df=df
        )
        out = out.assign(
            margin=tost["margin"],
            equivalence_low=tost["low"],
            equivalence_high=tost["high"],
            p_equivalence=tost["p_equivalence"],
            equivalent=tost["equivalent"],
            differs=tost["differs"],
            verdict=tost["verdict"],
        )
        out.attrs["alpha"] = alpha
    return out.isel({dim: 0}) if single else out


# ------------------------------------------------------------------------------------------------------
# resolution
# ------------------------------------------------------------------------------------------------------
def resolution(
    data: xr.Dataset | xr.DataTree,
    tau_ms: float | Mapping[str, float] | None = None,
    *,
    model: str | None = None,
    effect: float | Sequence[float] | None = None,
    power: float = 0.8,
    level: float = 0.95,
    outcome: str = "rt",
    covariates: Sequence[str] = COVARIATES,
    cov_type: str = "HC3",
) -> xr.Dataset:
    """Resolution of the switch cost at the shortest CSI in a run (or pilot), and the trials an effect needs.

    The standard error of a trial-level estimate falls as ``1 / sqrt(n)`` at a fixed design (the same CSI,
    switch, congruency and coherence mix and the same accuracy), so from a run of ``n`` trials with standard
    error ``se`` an effect of size ``d`` is resolved (its ``level`` interval excludes 0 with probability
    `power`) with about ``n * ((z_{(1+level)/2} + z_power) * se / d)^2`` trials. ``power = 0.5`` gives the
    count at which the interval's half-width equals ``d``.

    Parameters
    ----------
    data, tau_ms, model, covariates, cov_type
        As :func:`switch_regression`.
    effect : float or sequence of float, optional
        Effect size(s) to resolve (ms for RT, log odds for errors; > 0). Default: the run's own estimate
        (its absolute value).
    power : float
        Probability of resolving the effect, in (0, 1) (default 0.8).
    level : float
        Confidence level (default 0.95).
    outcome : str
        ``"rt"`` (default) or ``"error"``.

    Returns
    -------
    xarray.Dataset
        ``estimate``, ``se`` and ``half_width`` (of the `level` interval of the switch cost at the shortest
        CSI, from the run); ``n_trials`` (trials in the run); ``effect``, and ``n_trials_needed`` (over
        ``effect`` when a sequence is given); over ``model`` for several models.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> rng = np.random.default_rng(1)
    >>> n = 400
    >>> sw = rng.random(n) < 0.5
    >>> csi = rng.choice([50.0, 1200.0], n)
    >>> rt, ones = 400 + 30 * sw + rng.normal(0, 50, n), np.ones(n)
    >>> ds = xr.Dataset({"is_switch": ("trial", sw), "csi_ms": ("trial", csi), "choice": ("trial", ones),
    ...                  "correct": ("trial", ones), "rt": ("trial", rt)})
    >>> res = resolution(ds, 300.0, effect=10.0, power=0.5, covariates=())
    >>> bool(res["n_trials_needed"] > n)
    True
    """
    check_choice("outcome", outcome, _OUTCOMES)
    check_range("power", power, 0.0, 1.0, low_inclusive=False, high_inclusive=False)
    check_range("level", level, 0.0, 1.0, low_inclusive=False, high_inclusive=False)
    effects = None
    if effect is not None:
        effects = np.atleast_1d(np.asarray(effect, dtype=float))
        if effects.ndim != 1 or effects.size == 0 or np.any(~np.isfinite(effects)) or np.any(effects <= 0):
            raise ValueError(
                f"effect={effect!r} must be a number > 0 or a sequence of them ({_UNITS[outcome]})"
            )
    fit = switch_regression(
        data, tau_ms, model=model, covariates=covariates, outcomes=(outcome,), cov_type=cov_type, level=level
    )
    est = fit[f"{outcome}_cost_shortest"]
    se = fit[f"{outcome}_cost_shortest_se"]
    half = (fit[f"{outcome}_cost_shortest_high"] - fit[f"{outcome}_cost_shortest_low"]) / 2
    n = fit["n_trials"]
    z = stats.norm.ppf(0.5 + level / 2) + stats.norm.ppf(power)
    units = _UNITS[outcome]
    sequence = effects is not None and np.ndim(effect) != 0
    if effects is None:
        d = np.abs(est)
    elif sequence:
        d = xr.DataArray(effects, dims="effect", coords={"effect": effects})
    else:
        d = xr.DataArray(effects[0])
    needed = np.ceil(n * (z * se / d) ** 2)
    out = xr.Dataset(
        {
            "estimate": est.assign_attrs(_attrs(units, "switch cost at the shortest CSI (run)")),
            "se": se.assign_attrs(_attrs(units, "its standard error")),
            "half_width": half.assign_attrs(_attrs(units, f"half-width of its {100 * level:g} % interval")),
            "n_trials": n,
            "n_trials_needed": needed.assign_attrs(
                _attrs("1", f"trials to resolve the effect at {100 * level:g} % with power {power:g}")
            ),
        },
        attrs={"level": level, "power": power, "outcome": outcome, "scaling": "se ~ 1/sqrt(n)"},
    )
    if sequence:
        out["effect"].attrs.update(_attrs(units, "effect size to resolve"))
    else:
        out["effect"] = d.assign_attrs(_attrs(units, "effect size to resolve"))
    return out
