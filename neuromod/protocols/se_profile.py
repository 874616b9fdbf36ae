"""The SE task model's gate profile: steady-state gains per context, per channel and per population.

:func:`gate_profile` and :func:`population_gains` give the steady-state gain of each channel, and of each
sensory population, in each context: the per-context population gains that become the release pattern of
the other model families (:func:`neuromod.protocols.families.se.se_release`).
"""

from __future__ import annotations

import json

import numpy as np
import torch
import xarray as xr

from neuromod._checks import check_int
from neuromod.gating.task_model import SETaskModel
from neuromod.protocols.se_task import check_model
from neuromod.results import var_attrs as _attrs
from neuromod.tasks.switching import CONTEXTS, POPULATIONS, CuedTaskSwitching

__all__ = ["MAPPING_DOC", "gate_profile", "population_gains"]

#: How channel gains map onto population gains (stored with every result as ``mapping``).
MAPPING_DOC = (
    "population gain = mean over the channels of that sensory population (channel c belongs to population "
    "c // channels_per_population, in the order a+, a-, b+, b-) of the steady-state gate in that context, "
    "averaged over stimuli whose coherences are drawn from the task's set with random signs, with sensory "
    "noise"
)

_FORMAT = "neuromod.SETaskModel"
_FORMAT_VERSION = 1


def _profile_gains(
    model: SETaskModel, n_samples: int, coherences: tuple[float, ...], seed: int
) -> np.ndarray:
    """Mean steady-state gate per (context, channel)."""
    cfg = model.config
    rng = np.random.default_rng(seed)
    mags = rng.choice(np.asarray(coherences, dtype=float), size=(n_samples, 2)) / 100.0
    signs = rng.choice([-1.0, 1.0], size=(n_samples, 2))
    f = mags * signs
    stim = np.stack([1 + f[:, 0], 1 - f[:, 0], 1 + f[:, 1], 1 - f[:, 1]], axis=1).astype(np.float32)
    gen = torch.Generator().manual_seed(seed)
    out = np.zeros((cfg.contexts, cfg.channels))
    with torch.no_grad():
        x = model.sensory(torch.from_numpy(stim), generator=gen)
        for k in range(cfg.contexts):
            context = torch.zeros(n_samples, cfg.contexts)
            context[:, k] = 1.0
            out[k] = model.steady_gate(x, context).mean(0).double().numpy()
    return out


def gate_profile(
    model: SETaskModel,
    *,
    n_samples: int = 1024,
    coherences_pct: tuple[float, ...] | None = None,
    seed: int = 0,
) -> xr.DataArray:
    """Steady-state mean gain of each channel in each context, during the stimulus.

    The steady state of the gate kinetics under a constant input is the instantaneous gate ``g*`` of the
    excitation; it is averaged over `n_samples` bivalent stimuli (each feature's coherence drawn from
    `coherences_pct` with a random sign) with sensory noise, for each one-hot context.

    Parameters
    ----------
    model : SETaskModel
    n_samples : int, default 1024
        Stimuli averaged per context.
    coherences_pct : tuple of float, optional
        Unsigned coherences (%); default those of :class:`CuedTaskSwitching`.
    seed : int, default 0
        Seed of the stimuli and noise.

    Returns
    -------
    xarray.DataArray
        ``gain`` over (``context``, ``channel``), with the channel's population as a coordinate.
    """
    model = check_model(model)
    n_samples = check_int("n_samples", n_samples, low=1)
    seed = check_int("seed", seed, low=0)
    if coherences_pct is None:
        coherences_pct = CuedTaskSwitching().coherences_pct
    coh = tuple(float(c) for c in coherences_pct)
    if not coh or min(coh) < 0 or max(coh) > 100:
        raise ValueError(f"coherences_pct={coherences_pct!r} must be a non-empty list of values in [0, 100]")
    cfg = model.config
    gains = _profile_gains(model, n_samples, coh, seed)
    pop = model.channel_population.numpy()
    contexts = list(CONTEXTS) if cfg.contexts == len(CONTEXTS) else [str(k) for k in range(cfg.contexts)]
    pops = (
        list(POPULATIONS) if cfg.populations == len(POPULATIONS) else [str(p) for p in range(cfg.populations)]
    )
    return xr.DataArray(
        gains,
        dims=("context", "channel"),
        coords={
            "context": ("context", contexts, _attrs("1", "task context")),
            "channel": ("channel", np.arange(cfg.channels), _attrs("1", "SE channel")),
            "channel_population": ("channel", [pops[p] for p in pop], _attrs("1", "sensory population")),
        },
        name="gain",
        attrs=_attrs(
            "1",
            "steady-state gain (SE gate)",
            n_samples=n_samples,
            coherences_pct=list(coh),
            seed=seed,
            params_json=json.dumps(cfg.to_dict(), sort_keys=True),
        ),
    )


def population_gains(
    model: SETaskModel,
    *,
    n_samples: int = 1024,
    coherences_pct: tuple[float, ...] | None = None,
    seed: int = 0,
) -> xr.DataArray:
    """Per-context gain of each sensory population: the SE gate profile mapped onto populations.

    The mapping (stored in ``attrs["mapping"]`` and, as JSON, ``attrs["mapping_json"]``): the gain of
    population ``p`` in context ``k`` is the mean over the channels of ``p`` (channel ``c`` belongs to
    population ``c // channels_per_population``; populations a+, a-, b+, b-) of :func:`gate_profile`. These
    are the per-context population gains that the rate and spiking models receive.

    Parameters
    ----------
    model, n_samples, coherences_pct, seed
        As for :func:`gate_profile`.

    Returns
    -------
    xarray.DataArray
        ``gain`` over (``context``, ``population``).

    Examples
    --------
    >>> from neuromod.gating import SETaskModel
    >>> population_gains(SETaskModel(), n_samples=16).dims
    ('context', 'population')
    """
    profile = gate_profile(model, n_samples=n_samples, coherences_pct=coherences_pct, seed=seed)
    pops = list(dict.fromkeys(profile["channel_population"].values.tolist()))
    data = np.stack(
        [profile.values[:, profile["channel_population"].values == p].mean(1) for p in pops], axis=1
    )
    mapping = {p: np.flatnonzero(profile["channel_population"].values == p).tolist() for p in pops}
    return xr.DataArray(
        data,
        dims=("context", "population"),
        coords={
            "context": profile["context"],
            "population": ("population", pops, _attrs("1", "sensory population")),
        },
        name="gain",
        attrs={
            **profile.attrs,
            "long_name": "steady-state population gain (mean SE gate of its channels)",
            "mapping": MAPPING_DOC,
            "mapping_json": json.dumps({"channels_of_population": mapping, "reduce": "mean"}, sort_keys=True),
        },
    )
