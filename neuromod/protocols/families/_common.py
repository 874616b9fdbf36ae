"""Pieces the built-in adapters share: dataset layouts of their results and the cue's levels."""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from neuromod.results import var_attrs as _attrs
from neuromod.tasks.switching import CONTEXTS, POPULATIONS, CuedTaskSwitching

#: The context in which each population's feature is relevant (a+, a- in context a; b+, b- in context b).
RELEVANT_CONTEXT = np.array([0, 0, 1, 1])

#: ``long_name`` of the ``level`` coordinate of cue gain curves.
CUE_LEVEL = "cue: 0 = the population's feature is relevant, 1 = irrelevant"


def task_timing(task: CuedTaskSwitching) -> dict[str, float | tuple[float, ...]]:
    """The times (ms) of a task that a family's time grid must hold (``ModelFamily.check_timing``)."""
    return {"csi_ms": task.csi_ms, "rci_ms": task.timing["rci_ms"], "max_rt_ms": task.timing["max_rt_ms"]}


def cue_levels(release: np.ndarray) -> np.ndarray:
    """Release level of each (population, cue level): level 0 = its own context, 1 = the other one."""
    pops = np.arange(len(POPULATIONS))
    return np.stack([release[RELEVANT_CONTEXT, pops], release[1 - RELEVANT_CONTEXT, pops]], axis=1)


def gain_dataset(
    response: np.ndarray,
    *,
    conditions: list[str],
    condition_name: str,
    levels: np.ndarray,
    level_name: str,
    drives: np.ndarray,
    units: str,
    long_name: str,
    extra: dict[str, Any] | None = None,
) -> xr.Dataset:
    """``response`` (condition, level, drive, repeat) with labelled coordinates (drive: relative)."""
    dims = ("condition", "level", "drive", "repeat")
    return xr.Dataset(
        {"response": (dims, response, _attrs(units, long_name)), **(extra or {})},
        coords={
            "condition": ("condition", conditions, _attrs("1", condition_name)),
            "level": ("level", np.asarray(levels, dtype=float), _attrs("1", level_name)),
            "drive": (
                "drive",
                np.asarray(drives, dtype=float),
                _attrs(
                    "1",
                    "relative drive",
                    comment="1 = the input of a population during a 0 % coherence stimulus",
                ),
            ),
            "repeat": ("repeat", np.arange(response.shape[-1]), _attrs("1", "noise sample")),
        },
    )


def trials_dataset(
    table: xr.Dataset, choice: np.ndarray, rt: np.ndarray, times: np.ndarray, data: dict[str, Any]
) -> xr.Dataset:
    """Per-trial ``choice`` and ``rt`` and the traces in `data` over the session's ``time`` (ms)."""
    return xr.Dataset(
        {
            "choice": (
                "trial",
                np.asarray(choice).astype(np.int8),
                _attrs("1", "choice (1: positive, 2: negative, 0: none)", flag_values=[0, 1, 2]),
            ),
            "rt": ("trial", np.asarray(rt, dtype=float), _attrs("ms", "reaction time from stimulus onset")),
            **data,
        },
        coords={
            "trial": ("trial", table["trial"].values, _attrs("1", "trial index")),
            "time": ("time", np.asarray(times, dtype=float), _attrs("ms", "time in the session")),
            "population": ("population", list(POPULATIONS), _attrs("1", "sensory population")),
        },
    )


def decision_dataset(coherences: np.ndarray, choice: np.ndarray, rt: np.ndarray, attrs: dict) -> xr.Dataset:
    """``choice`` and ``rt`` over (``coherence``, ``trial``) of the plain two-choice task."""
    dims = ("coherence", "trial")
    return xr.Dataset(
        {
            "choice": (dims, np.asarray(choice), _attrs("1", "choice (1, 2; 0 = no response)")),
            "rt": (dims, np.asarray(rt, dtype=float), _attrs("ms", "reaction time from stimulus onset")),
        },
        coords={
            "coherence": ("coherence", np.asarray(coherences, dtype=float), _attrs("%", "motion coherence")),
            "trial": ("trial", np.arange(np.shape(choice)[1]), _attrs("1", "trial")),
        },
        attrs=attrs,
    )


def context_population(values: np.ndarray, long_name: str, units: str = "1") -> xr.DataArray:
    """A (context, population) array with labelled coordinates."""
    return xr.DataArray(
        np.asarray(values, dtype=float),
        dims=("context", "population"),
        coords={
            "context": ("context", list(CONTEXTS), _attrs("1", "task context (cued feature)")),
            "population": ("population", list(POPULATIONS), _attrs("1", "sensory population")),
        },
        attrs=_attrs(units, long_name),
    )
