"""The side-by-side summary of the task-switching experiment: behaviour and gain measures along ``model``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import xarray as xr

from neuromod.measures.switching import (
    congruency_effect,
    fit_preparation,
    switch_cost,
    switching_behaviour,
)
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
    release: xr.DataArray,
) -> xr.Dataset:
    """The side-by-side measures along ``model``.

    Parameters
    ----------
    tree : xarray.DataTree
        The trial table at the root and one group per family with per-trial ``choice``, ``correct``, ``rt``.
    gains : mapping of name -> Dataset
        Each family's classified cue gain curves (:func:`neuromod.measures.fit_and_classify`).
    profiles : mapping of name -> array (context, population)
        Each family's steady-state gain profile (NaN where its mechanism has no gain).
    release : xarray.DataArray
        The release pattern of the run over (``context``, ``population``).

    Returns
    -------
    xarray.Dataset
        Along ``model``: ``accuracy``, ``mean_rt``, ``p_response``, ``n_trials``; ``accuracy_by_condition``
        and ``mean_rt_by_condition`` over (``switch``, ``congruent``); ``rt_switch_cost`` and
        ``error_switch_cost`` (pooled and ``_by_csi``), ``rt_congruency_effect``,
        ``error_congruency_effect`` (all with 95 % bounds ``_low``/``_high``); the preparation fits
        ``rt_prep_*``/``error_prep_*`` (``amplitude``, ``tau_eff``, ``residual`` with ``_se``, and
        ``identified``); ``gain_ratio``, ``threshold_shift`` (with ``_se``) and ``modulation_class`` per
        population; ``gain_profile`` and ``relative_gain_profile`` over (``context``, ``population``);
        ``release`` over (``context``, ``population``).
    """
    models = tuple(gains)
    one = len(models) == 1

    def by_model(ds: xr.Dataset) -> xr.Dataset:
        # the measures add a model dimension only for trees with several models
        if one:
            ds = ds.expand_dims(model=list(models))
        return ds.drop_vars("model")

    pooled = by_model(switching_behaviour(tree, by=()))
    cond = by_model(switching_behaviour(tree, by=("is_switch", "is_congruent")))
    cost = by_model(switch_cost(tree, by=()))
    cost_csi = by_model(switch_cost(tree, by=("csi_ms",)))
    cong = by_model(congruency_effect(tree, by=()))
    prep_rt = fit_preparation(cost_csi, variable="rt_cost")
    prep_err = fit_preparation(cost_csi, variable="error_cost")
    data: dict[str, Any] = {}
    data.update(_renamed(pooled, {k: k for k in ("accuracy", "mean_rt", "p_response")}))
    data["n_trials"] = pooled["n_trials"]
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
                long_name = f"{fit[key].attrs['long_name']} (fit of the {prefix} switch cost)"
                data[f"{prefix}_prep_{key}"] = fit[key].assign_attrs(long_name=long_name)
        data[f"{prefix}_prep_identified"] = fit["identified"].assign_attrs(
            long_name=f"{fit['identified'].attrs['long_name']} ({prefix} switch cost)"
        )
    out = xr.Dataset(data)
    # gain measures, relative to each model's relevant context
    ratio = np.stack([gains[m]["gain_ratio"].sel(level=1.0).values for m in models])
    ratio_se = np.stack([gains[m]["gain_ratio_se"].sel(level=1.0).values for m in models])
    shift = np.stack([gains[m]["threshold_shift"].sel(level=1.0).values for m in models])
    shift_se = np.stack([gains[m]["threshold_shift_se"].sel(level=1.0).values for m in models])
    kind = np.stack([gains[m]["modulation_class"].sel(level=1.0).values.astype(str) for m in models])
    profile = np.stack([profiles[m] for m in models])
    top = np.nanmax(profile.reshape(len(models), -1), axis=1)
    dims_g = ("model", "population")
    dims_p = ("model", "context", "population")
    out = out.assign(
        gain_ratio=(dims_g, ratio, _attrs("1", "f-I gain ratio, irrelevant / relevant cue")),
        gain_ratio_se=(dims_g, ratio_se, _attrs("1", "f-I gain ratio, standard error")),
        threshold_shift=(
            dims_g,
            shift,
            _attrs("1", "f-I threshold shift, irrelevant minus relevant cue (relative drive)"),
        ),
        threshold_shift_se=(dims_g, shift_se, _attrs("1", "f-I threshold shift, standard error")),
        modulation_class=(dims_g, kind, _attrs("1", "class of the cue's effect on the f-I curve")),
        gain_profile=(dims_p, profile, _attrs("1", "steady-state gain of each population per context")),
        relative_gain_profile=(
            dims_p,
            profile / top[:, None, None],
            _attrs("1", "steady-state gain / the model's largest (the profile's shape)"),
        ),
    )
    out = out.assign_coords(
        model=("model", list(models), _attrs("1", "model")),
        context=("context", list(CONTEXTS), _attrs("1", "task context (cued feature)")),
        population=("population", list(POPULATIONS), _attrs("1", "sensory population")),
    )
    out["release"] = (
        ("context", "population"),
        release.values,
        _attrs("1", "modulator release level per context and population (families that take one)"),
    )
    return out.assign_attrs(
        rt_trials="correct responses",
        interval_level=0.95,
        first_trial="the session's first trial is left out of switch/repeat splits",
    )
