"""One closed-loop session of cued task switching on the SE task model (:func:`run_se_session`)."""

from __future__ import annotations

import json

import numpy as np
import torch
import xarray as xr

from neuromod._checks import check_int, check_positive
from neuromod.gating.task_model import SETaskModel
from neuromod.protocols.se_task import _check_task, check_model, session_tensors
from neuromod.results import var_attrs as _attrs
from neuromod.tasks.switching import CONTEXTS, POPULATIONS, CuedTaskSwitching

__all__ = ["run_se_session"]


def run_se_session(
    model: SETaskModel,
    task: CuedTaskSwitching,
    *,
    seed: int | None = None,
    decimate_ms: float = 50.0,
    noise: bool = True,
) -> xr.Dataset:
    """Run one closed-loop session of `task` on the model (gate state carried from trial to trial).

    Each stimulus ends at the model's response, so the session's time axis is the model's own
    (:meth:`CuedTaskSwitching.timeline` of its RTs).

    Parameters
    ----------
    model : SETaskModel
        A (trained) model; its ``dt_ms`` sets the time grid of the task's inputs.
    task : CuedTaskSwitching
        The session (its trial table is generated once and reused).
    seed : int, optional
        Seed of the sensory and accumulator noise; same seed, same result.
    decimate_ms : float, default 50
        Sampling interval of the returned gain traces (ms; rounded to a multiple of ``dt_ms``).
    noise : bool, default True
        Noise on; False gives the deterministic (noise-free) session.

    Returns
    -------
    xarray.Dataset
        Over ``trial``: ``choice`` (1, 2; 0 for no response within ``max_rt_ms``), ``correct``, ``rt`` (ms
        from stimulus onset, NaN without a response), ``stim_onset_ms``; ``gain`` over (``time``,
        ``channel``) and
        ``population_gain`` (mean over each population's channels) over (``time``, ``population``), sampled
        every `decimate_ms`; the channel's population as a coordinate (``channel_population``).
        ``attrs["params_json"]`` holds the model config.

    Raises
    ------
    TypeError, ValueError
        A wrong model or task, a bad seed or `decimate_ms`.
    """
    model = check_model(model)
    task = _check_task(task)
    if seed is not None:
        seed = check_int("seed", seed, low=0)
    decimate_ms = check_positive("decimate_ms", decimate_ms)
    cfg = model.config
    if cfg.populations != len(POPULATIONS) or cfg.contexts != len(CONTEXTS):
        raise ValueError(
            f"model has populations={cfg.populations}, contexts={cfg.contexts}; the task needs "
            f"{len(POPULATIONS)} and {len(CONTEXTS)}"
        )
    dt = cfg.dt_ms
    inp = session_tensors(task, dt)
    gen = torch.Generator().manual_seed(0 if seed is None else seed)
    if seed is None:
        gen.seed()
    with torch.no_grad():
        out = model(
            torch.from_numpy(inp["stimulus"])[None],
            torch.from_numpy(inp["context"])[None],
            rci=torch.from_numpy(inp["rci"])[None],
            csi=torch.from_numpy(inp["csi"])[None],
            max_rt=inp["max_rt"],
            noise=noise,
            generator=gen,
            record=True,
        )
        choice, rt = model.decide(out)
    choice = choice[0].numpy().astype(np.int8)
    rt = rt[0].numpy()
    correct_choice = inp["target"]
    step = max(1, round(decimate_ms / dt))
    gain = out.gain[0, ::step].numpy().astype(np.float64)
    times = np.arange(out.gain.shape[1])[::step] * dt
    onset_ms = out.onset[0].numpy() * dt
    pop = model.channel_population.numpy()
    pop_gain = np.stack([gain[:, pop == p].mean(1) for p in range(cfg.populations)], axis=1)
    table = task.trials()
    return xr.Dataset(
        {
            "choice": (
                "trial",
                choice,
                _attrs("1", "choice (1: positive, 2: negative, 0: none)", flag_values=[0, 1, 2]),
            ),
            "correct": ("trial", choice == correct_choice, _attrs("1", "choice was correct")),
            "rt": ("trial", rt, _attrs("ms", "reaction time from stimulus onset")),
            "stim_onset_ms": ("trial", onset_ms, _attrs("ms", "stimulus onset on the session's time axis")),
            "gain": (("time", "channel"), gain, _attrs("1", "gain of each channel (SE gate)")),
            "population_gain": (
                ("time", "population"),
                pop_gain,
                _attrs("1", "mean gain of the channels of each population"),
            ),
        },
        coords={
            "trial": ("trial", table["trial"].values, _attrs("1", "trial index")),
            "time": ("time", times, _attrs("ms", "time in the session")),
            "channel": ("channel", np.arange(cfg.channels), _attrs("1", "SE channel")),
            "channel_population": (
                "channel",
                [POPULATIONS[p] for p in pop],
                _attrs("1", "sensory population of the channel"),
            ),
            "population": ("population", list(POPULATIONS), _attrs("1", "sensory population")),
        },
        attrs={
            "model": "se",
            "params_json": json.dumps(cfg.to_dict(), sort_keys=True),
            "dt_ms": dt,
            "decimate_ms": step * dt,
            "seed": -1 if seed is None else seed,
            "noise": int(noise),
        },
    )
