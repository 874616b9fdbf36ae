"""The side-by-side summary of the task-switching experiment: behaviour and gain measures along ``model``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import xarray as xr

from neuromod.measures.regression import model_contrast, resolution, switch_cost_split, switch_regression
from neuromod.measures.switching import (
    congruency_effect,
    error_rt,
    fit_preparation,
    fit_preparation_fixed,
    switch_cost,
    switching_behaviour,
)
from neuromod.protocols.families._common import RELEVANT_CONTEXT
from neuromod.results import var_attrs as _attrs
from neuromod.tasks.switching import CONTEXTS, POPULATIONS

__all__ = ["preparation_fit", "summary"]


def preparation_fit(row: xr.Dataset, prefix: str) -> tuple[float, float, float] | None:
    """(A, tau_eff, residual) of one model's preparation fit in a summary, or None when not identified.

    Reads ``<prefix>_prep_amplitude``, ``_tau_eff``, ``_residual`` and ``_identified`` (see
    :func:`neuromod.measures.fit_preparation` for when a fit counts as identified).
    """
    if int(row[f"{prefix}_prep_identified"]) != 1:
        return None
    a, tau, res = (float(row[f"{prefix}_prep_{k}"]) for k in ("amplitude", "tau_eff", "residual"))
    return a, tau, res


def _renamed(ds: xr.Dataset, names: dict[str, str]) -> dict[str, xr.DataArray]:
    out = {}
    for old, new in names.items():
        for suffix in ("", "_low", "_high", "_se"):
            if old + suffix in ds:
                out[new + suffix] = ds[old + suffix]
    return out


def summary(
    tree: xr.DataTree,
    gains: Mapping[str, xr.Dataset],
    profiles: Mapping[str, np.ndarray],
    releases: Mapping[str, xr.DataArray],
    *,
    tau_ms: float,
    margin_ms: float = 20.0,
) -> xr.Dataset:
    """The side-by-side measures along ``model``.

    Parameters
    ----------
    tree : xarray.DataTree
        The trial table at the root and one group per family with per-trial ``choice``, ``correct``, ``rt``
        (and ``ran`` where a family ran only some trials).
    gains : mapping of name -> Dataset
        Each family's classified cue gain curves (:func:`neuromod.measures.fit_and_classify`).
    profiles : mapping of name -> array (context, population)
        Each family's steady-state gain profile (NaN where its mechanism has no gain).
    releases : mapping of name -> DataArray
        Each family's release pattern over (``context``, ``population``).
    tau_ms : float
        The modulator time constant of every model (the fixed tau of the preparation fits).
    margin_ms : float
        Equivalence margin of the paired RT-cost contrasts between models (ms).

    Returns
    -------
    xarray.Dataset
        Along ``model``:

        * behaviour: ``accuracy``, ``mean_rt``, ``p_response``, ``n_trials``; ``repeat_accuracy`` and
          ``repeat_mean_rt`` (repeat trials, the calibration criteria); ``accuracy_by_condition`` and
          ``mean_rt_by_condition`` over (``switch``, ``congruent``); ``rt_switch_cost`` and
          ``error_switch_cost`` pooled and ``_by_csi`` (Welch / Newcombe intervals ``_low``/``_high``),
          ``rt_congruency_effect``, ``error_congruency_effect``;
        * trial-level regressions (:func:`neuromod.measures.switch_regression`, OLS with HC3 errors for
          RT, binomial GLM for errors, the switch term times ``exp(-CSI / tau_ms)``): ``rt_cost_shortest``,
          ``rt_amplitude`` (A), ``rt_residual`` (R), ``rt_cost_drop`` (shortest minus longest CSI) and the
          same for ``error_`` (log odds), each with ``_se``/``_low``/``_high``;
        * preparation fits of the per-CSI costs: fixed tau (``rt_prep_fixed_amplitude``,
          ``rt_prep_fixed_residual`` with intervals) and free tau (``rt_prep_amplitude``, ``_tau_eff``,
          ``_residual`` with ``_se``, ``rt_prep_identified``);
        * ``rt_cost_shortest_by_direction`` over ``direction`` (switches to task a, to task b);
        * ``rt_error_minus_correct`` (error RT minus correct RT, Welch interval);
        * ``rt_cost_shortest_half_width`` and ``rt_cost_shortest_trials_needed`` (the trials that would
          resolve the estimated cost at 80 % power, :func:`neuromod.measures.resolution`);
        * gain measures per population: ``gain_ratio`` (irrelevant / relevant, ``_se``),
          ``threshold_shift``, ``modulation_class``, ``gain_match_error`` (gain ratio / the release
          source's - 1); ``gain_profile`` and ``relative_gain_profile`` and ``release`` over (``context``,
          ``population``);

        and over ``pair`` (model a - model b) and ``quantity`` (``rt_cost_shortest``, ``rt_cost_drop``):
        the paired contrasts on the shared trials (:func:`neuromod.measures.model_contrast`, one
        regression, errors clustered by trial) with the equivalence test (``margin_ms``): ``contrast``,
        ``contrast_low``/``_high``, ``contrast_verdict``.
    """
    models = tuple(gains)
    one = len(models) == 1

    def by_model(ds: xr.Dataset) -> xr.Dataset:
        # the measures add a model dimension only for trees with several models
        if "model" not in ds.dims:
            ds = ds.expand_dims(model=list(models) if one else [models[0]])
        return ds.drop_vars("model")

    pooled = by_model(switching_behaviour(tree, by=()))
    by_switch = by_model(switching_behaviour(tree, by=("is_switch",)))
    cond = by_model(switching_behaviour(tree, by=("is_switch", "is_congruent")))
    cost = by_model(switch_cost(tree, by=()))
    cost_csi = by_model(switch_cost(tree, by=("csi_ms",)))
    cong = by_model(congruency_effect(tree, by=()))
    prep_rt = fit_preparation(cost_csi, variable="rt_cost")
    prep_err = fit_preparation(cost_csi, variable="error_cost")
    fixed = fit_preparation_fixed(cost_csi, tau_ms, variable="rt_cost")
    reg = by_model(switch_regression(tree, tau_ms))
    direction = by_model(switch_cost_split(tree, tau_ms, by="context", outcomes=("rt",)))
    err_rt = by_model(error_rt(tree))
    res = by_model(resolution(tree, tau_ms))
    data: dict[str, Any] = {}
    data.update(_renamed(pooled, {k: k for k in ("accuracy", "mean_rt", "p_response")}))
    data["n_trials"] = pooled["n_trials"]
    rep = by_switch.sel(switch=0, drop=True)
    data.update(_renamed(rep, {"accuracy": "repeat_accuracy", "mean_rt": "repeat_mean_rt"}))
    data.update(_renamed(cond, {"accuracy": "accuracy_by_condition", "mean_rt": "mean_rt_by_condition"}))
    data.update(_renamed(cost, {"rt_cost": "rt_switch_cost", "error_cost": "error_switch_cost"}))
    data.update(
        _renamed(cost_csi, {"rt_cost": "rt_switch_cost_by_csi", "error_cost": "error_switch_cost_by_csi"})
    )
    data.update(
        _renamed(cong, {"rt_effect": "rt_congruency_effect", "error_effect": "error_congruency_effect"})
    )
    for prefix, fit in (("rt", prep_rt), ("error", prep_err)):
        for name in ("amplitude", "tau_eff", "residual"):
            for key in (name, f"{name}_se"):
                long_name = f"{fit[key].attrs['long_name']} (free-tau fit of the {prefix} switch cost)"
                data[f"{prefix}_prep_{key}"] = fit[key].assign_attrs(long_name=long_name)
        data[f"{prefix}_prep_identified"] = fit["identified"].assign_attrs(
            long_name=f"{fit['identified'].attrs['long_name']} ({prefix} switch cost)"
        )
    fixed = fixed.drop_vars([c for c in ("model",) if c in fixed.coords])
    data.update(
        _renamed(fixed, {"amplitude": "rt_prep_fixed_amplitude", "residual": "rt_prep_fixed_residual"})
    )
    quantities = ("cost_shortest", "amplitude", "residual", "cost_drop")
    for prefix in ("rt", "error"):
        data.update(_renamed(reg, {f"{prefix}_{q}": f"{prefix}_{q}" for q in quantities}))
    data.update(_renamed(direction, {"rt_cost_shortest": "rt_cost_shortest_by_direction"}))
    data.update(_renamed(err_rt, {"rt_error_minus_correct": "rt_error_minus_correct"}))
    data["rt_cost_shortest_half_width"] = res["half_width"]
    data["rt_cost_shortest_trials_needed"] = res["n_trials_needed"]
    out = xr.Dataset({k: v.drop_vars([c for c in v.coords if c not in v.dims]) for k, v in data.items()})
    if "context" in out.dims:
        out = out.rename({"context": "direction"})
    out = out.assign(_gain_measures(models, gains, profiles, releases))
    out = out.assign_coords(
        model=("model", list(models), _attrs("1", "model")),
        context=("context", list(CONTEXTS), _attrs("1", "task context (cued feature)")),
        population=("population", list(POPULATIONS), _attrs("1", "sensory population")),
    )
    if "direction" in out.dims:
        out = out.assign_coords(
            direction=("direction", ["to a", "to b"], _attrs("1", "switch direction (the new task)"))
        )
    if len(models) > 1:
        out = out.merge(_contrasts(tree, models, tau_ms, margin_ms))
    return out.assign_attrs(
        rt_trials="correct responses",
        interval_level=0.95,
        tau_ms=float(tau_ms),
        equivalence_margin_ms=float(margin_ms),
        first_trial="the session's first trial is left out of switch/repeat splits",
    )


def _gain_measures(
    models: tuple[str, ...],
    gains: Mapping[str, xr.Dataset],
    profiles: Mapping[str, np.ndarray],
    releases: Mapping[str, xr.DataArray],
) -> dict[str, Any]:
    """Gain ratio, shift, class, the match to the release source, profiles and releases along ``model``."""

    def level1(name: str, m: str) -> np.ndarray:
        return gains[m][name].sel(level=1.0).values

    ratio = np.stack([level1("gain_ratio", m) for m in models])
    # the matching target: the source's gate ratio irrelevant / relevant, stored with a matched release
    targets = [releases[m].attrs["target_ratio"] for m in models if "target_ratio" in releases[m].attrs]
    if targets:
        target = np.asarray(targets[0], dtype=float)
        match = ratio / target - 1.0
    else:
        target = np.full(len(RELEVANT_CONTEXT), np.nan)
        match = np.full_like(ratio, np.nan)
    profile = np.stack([profiles[m] for m in models])
    top = np.nanmax(profile.reshape(len(models), -1), axis=1)
    dims_g = ("model", "population")
    dims_p = ("model", "context", "population")
    return {
        "gain_ratio": (dims_g, ratio, _attrs("1", "f-I gain ratio, irrelevant / relevant cue")),
        "gain_ratio_se": (
            dims_g,
            np.stack([level1("gain_ratio_se", m) for m in models]),
            _attrs("1", "f-I gain ratio, standard error"),
        ),
        "threshold_shift": (
            dims_g,
            np.stack([level1("threshold_shift", m) for m in models]),
            _attrs("1", "f-I threshold shift, irrelevant minus relevant cue (relative drive)"),
        ),
        "threshold_shift_se": (
            dims_g,
            np.stack([level1("threshold_shift_se", m) for m in models]),
            _attrs("1", "f-I threshold shift, standard error"),
        ),
        "modulation_class": (
            dims_g,
            np.stack([level1("modulation_class", m).astype(str) for m in models]),
            _attrs("1", "class of the cue's effect on the f-I curve"),
        ),
        "gain_match_error": (
            dims_g,
            match,
            _attrs("1", "measured gain ratio / the source's gate ratio - 1 (gain matching)"),
        ),
        "gain_match_target": (
            "population",
            target,
            _attrs("1", "gate ratio irrelevant / relevant of the release source (the matching target)"),
        ),
        "gain_profile": (dims_p, profile, _attrs("1", "steady-state gain of each population per context")),
        "relative_gain_profile": (
            dims_p,
            profile / top[:, None, None],
            _attrs("1", "steady-state gain / the model's largest (the profile's shape)"),
        ),
        "release": (
            dims_p,
            np.stack([releases[m].values for m in models]),
            _attrs("1", "modulator release level per context and population (families that take one)"),
        ),
    }


def _shared(tree: xr.DataTree, a: str, b: str) -> xr.DataTree:
    """The tree with models `a` and `b` only, each restricted to the trials both ran (``ran``)."""
    n = tree.to_dataset(inherit=False).sizes["trial"]
    ran = [
        tree[m]["ran"].values.astype(bool) if "ran" in tree[m].data_vars else np.ones(n, dtype=bool)
        for m in (a, b)
    ]
    both = ran[0] & ran[1]
    if both.all():
        return tree
    nodes = {"/": tree.to_dataset(inherit=False)}
    for m in (a, b):
        ds = tree[m].to_dataset(inherit=False)[["choice", "correct", "rt"]]
        nodes[f"/{m}"] = ds.assign(ran=("trial", both, _attrs("1", "trial run by both models")))
    return xr.DataTree.from_dict(nodes)


def _contrasts(tree: xr.DataTree, models: tuple[str, ...], tau_ms: float, margin_ms: float) -> xr.Dataset:
    """Paired contrasts of the RT switch cost between every pair of models, with equivalence tests."""
    quantities = ["rt_cost_shortest", "rt_cost_drop"]
    rows = []
    pairs = []
    for i, a in enumerate(models):
        for b in models[i + 1 :]:
            shared = _shared(tree, a, b)  # paired: the trials both models ran
            c = model_contrast(shared, a, b, tau_ms=tau_ms, quantity=quantities, margin=margin_ms)
            rows.append(c)
            pairs.append(f"{a} - {b}")
    keep = ["difference", "difference_low", "difference_high", "verdict"]
    ds = xr.concat([r[keep] for r in rows], dim="pair", coords="minimal", compat="override")
    ds = ds.rename({k: k.replace("difference", "contrast") for k in keep if k.startswith("difference")})
    ds = ds.rename({"verdict": "contrast_verdict"})
    return ds.assign_coords(
        pair=("pair", pairs, _attrs("1", "model a - model b")),
        quantity=("quantity", quantities, _attrs("1", "contrasted quantity (ms)")),
    )
