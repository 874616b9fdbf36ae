"""The SE task model on cued task switching: training, sessions, gate profiles, save/load.

This module composes :class:`neuromod.gating.SETaskModel` (pure torch) with
:class:`neuromod.tasks.CuedTaskSwitching`:

* :func:`train_se_task_model` trains the model with Adam on batches of short continuous sessions with
  random cue-stimulus intervals (CSI); the default run takes well under a minute on 2 cores;
* :func:`run_se_session` runs one whole continuous session of a task (the gate state carries over from
  trial to trial) and returns choice, correctness and RT per trial and the gain traces as xarray;
* :func:`gate_profile` and :func:`population_gains` give the steady-state gain of each channel, and of each
  sensory population, in each context: the per-context population gains that the rate and spiking models
  receive (see :func:`population_gains` for the mapping);
* :func:`with_tau_ms` re-times a trained model's gate kinetics (same weights, another ``tau_ms``);
* :func:`save_se_model` / :func:`load_se_model` store the state dict (``.pt``) and the JSON config
  (``.json``) atomically, and load with ``torch.load(weights_only=True)`` (no code is executed).

References
----------
Usher, M. & McClelland, J. L. (2001). The time course of perceptual choice: the leaky, competing
accumulator model. Psychol. Rev. 108:550-592.
Meiran, N. (1996). Reconfiguration of processing mode prior to task performance. J. Exp. Psychol. Learn.
Mem. Cogn. 22:1423-1442.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr
from tqdm.auto import tqdm

from neuromod import results
from neuromod._checks import check_int, check_positive
from neuromod.config import ConfigError
from neuromod.gating.task_model import SETaskModel, SETaskModelConfig, decision_loss
from neuromod.results import var_attrs as _attrs
from neuromod.tasks.switching import CONTEXTS, POPULATIONS, CuedTaskSwitching

__all__ = [
    "MAPPING_DOC",
    "TRAIN_TASK",
    "gate_profile",
    "load_se_model",
    "population_gains",
    "run_se_session",
    "save_se_model",
    "train_se_task_model",
    "with_tau_ms",
]

#: Task settings of the training sessions (updated from ``task_kwargs``): the default coherences and CSI
#: set of :class:`CuedTaskSwitching`, with a shorter response window and RSI so sessions are short.
TRAIN_TASK: Mapping[str, Any] = {"rsi_ms": 200.0, "max_rt_ms": 800.0}

#: How channel gains map onto population gains (stored with every result as ``mapping``).
MAPPING_DOC = (
    "population gain = mean over the channels of that sensory population (channel c belongs to population "
    "c // channels_per_population, in the order a+, a-, b+, b-) of the steady-state gate in that context, "
    "averaged over stimuli whose coherences are drawn from the task's set with random signs, with sensory "
    "noise"
)

_FORMAT = "neuromod.SETaskModel"
_FORMAT_VERSION = 1


@contextlib.contextmanager
def _threads(n: int | None) -> Iterator[None]:
    """Temporarily set torch's intra-op threads (restored on exit)."""
    if n is None:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _check_model(model: object) -> SETaskModel:
    if not isinstance(model, SETaskModel):
        raise TypeError(f"model must be an SETaskModel, got {type(model).__name__}")
    return model


def _check_task(task: object) -> CuedTaskSwitching:
    if not isinstance(task, CuedTaskSwitching):
        raise TypeError(f"task must be a CuedTaskSwitching, got {type(task).__name__}")
    return task


def _session_tensors(task: CuedTaskSwitching, dt_ms: float) -> tuple[np.ndarray, ...]:
    """(stimulus (T, 4), cue (T, 2), stim_on (T,), correct_choice (N,)) of one session."""
    x = task.inputs(dt_ms)
    table = task.trials()
    return (
        x["stimulus"].values.astype(np.float32),
        x["cue"].values.astype(np.float32),
        x["stim_on"].values.astype(bool),
        table["correct_choice"].values.astype(np.int64),
    )


def _pool(
    n_sessions: int, n_trials: int, task_kwargs: Mapping[str, Any], dt_ms: float, rng: np.random.Generator
) -> tuple[torch.Tensor, ...]:
    """Padded batch of training sessions: stimulus, cue, stim_on, target (B, N)."""
    sessions = []
    for seed in rng.integers(2**31, size=n_sessions):
        task = CuedTaskSwitching(**task_kwargs, n_trials=n_trials, seed=int(seed))
        sessions.append(_session_tensors(task, dt_ms))
    t = max(s[0].shape[0] for s in sessions)
    stim = np.zeros((n_sessions, t, 4), np.float32)
    cue = np.zeros((n_sessions, t, 2), np.float32)
    on = np.zeros((n_sessions, t), bool)
    target = np.zeros((n_sessions, n_trials), np.int64)
    for i, (s, c, o, y) in enumerate(sessions):
        n = s.shape[0]
        stim[i, :n], cue[i, :n], on[i, :n], target[i] = s, c, o, y
        cue[i, n:] = c[-1]  # the last cue stays on through the padding
    return tuple(torch.from_numpy(a) for a in (stim, cue, on, target))


def train_se_task_model(
    config: SETaskModelConfig | None = None,
    *,
    task_kwargs: Mapping[str, Any] | None = None,
    n_steps: int | None = None,
    batch_size: int = 32,
    n_trials: int = 10,
    lr: float = 0.01,
    late_ms: float = 300.0,
    gain_cost: float = 0.0,
    quick: bool = False,
    progress: bool = True,
    seed: int = 0,
    num_threads: int | None = 1,
) -> tuple[SETaskModel, xr.Dataset]:
    """Train an :class:`SETaskModel` on sessions of cued task-switching trials.

    Each step draws `batch_size` sessions of `n_trials` continuous trials (random contexts, coherences and
    CSIs from :class:`CuedTaskSwitching` with :data:`TRAIN_TASK` settings) from a fixed pool, runs them with
    fresh sensory and accumulator noise, and takes an Adam step on :func:`decision_loss` (cross-entropy on
    the accumulator difference over the late response window, plus a push of the correct accumulator to the
    threshold).

    Parameters
    ----------
    config : SETaskModelConfig, optional
        The model (default ``SETaskModelConfig(seed=seed)``).
    task_kwargs : mapping, optional
        Overrides of :data:`TRAIN_TASK` passed to :class:`CuedTaskSwitching` (``coherences``, ``csi_ms``,
        ``rsi_ms``, ``p_switch``, ``p_congruent``, ``max_rt_ms``); ``n_trials`` and ``seed`` are set here.
    n_steps : int, optional
        Adam steps; default 300 (``quick``: 60).
    batch_size, n_trials : int
        Sessions per step and trials per session (``quick``: 16 sessions).
    lr : float
        Adam learning rate.
    late_ms : float
        The loss scores the accumulators from this time after stimulus onset (ms) to the window's end.
    gain_cost : float
        Weight of a cost on the mean gain over the session (a metabolic cost of neuromodulation, which
        favours turning irrelevant channels down).
    quick : bool
        A few-second run for tests and smoke checks.
    progress : bool
        Show a tqdm progress bar.
    seed : int
        Seed of the training sessions and noise (and of the model when `config` is None). Same seed, same
        weights.
    num_threads : int or None, default 1
        torch intra-op threads during training (restored afterwards); the tensors are small, so one
        thread is fastest. None leaves the setting alone.

    Returns
    -------
    model : SETaskModel
        The trained model (in eval mode).
    history : xarray.Dataset
        Over ``step``: ``loss`` and ``accuracy`` (threshold readout on the training batch); the wall time
        in ``attrs["wall_time_s"]``.

    Raises
    ------
    TypeError, ValueError
        Bad arguments or task settings, before any training.

    Examples
    --------
    >>> model, history = train_se_task_model(quick=True, progress=False)  # a few seconds
    >>> sorted(history.dims)
    ['step']
    """
    seed = check_int("seed", seed, low=0)
    config = SETaskModelConfig(seed=seed) if config is None else config
    if not isinstance(config, SETaskModelConfig):
        raise TypeError(f"config must be an SETaskModelConfig, got {type(config).__name__}")
    if not isinstance(quick, bool):
        raise TypeError(f"quick must be a bool, got {quick!r}")
    n_steps = (60 if quick else 300) if n_steps is None else check_int("n_steps", n_steps, low=1)
    batch_size = check_int("batch_size", batch_size, low=1)
    if quick:
        batch_size = min(batch_size, 16)
    n_trials = check_int("n_trials", n_trials, low=1)
    lr = check_positive("lr", lr)
    late_ms = check_positive("late_ms", late_ms, allow_zero=True)
    gain_cost = check_positive("gain_cost", gain_cost, allow_zero=True)
    if num_threads is not None:
        num_threads = check_int("num_threads", num_threads, low=1)
    if task_kwargs is not None and not isinstance(task_kwargs, Mapping):
        raise TypeError(f"task_kwargs must be a mapping, got {type(task_kwargs).__name__}")
    reserved = {"n_trials", "seed"} & set(task_kwargs or {})
    if reserved:
        raise ValueError(f"task_kwargs sets {sorted(reserved)!r}; these are set by train_se_task_model")
    kwargs = {**TRAIN_TASK, **(task_kwargs or {})}
    try:
        CuedTaskSwitching(**kwargs, n_trials=1, seed=0).inputs(config.dt_ms)
    except TypeError as err:
        raise TypeError(f"task_kwargs={dict(task_kwargs or {})!r}: {err}") from err

    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    with _threads(num_threads):
        model = SETaskModel(config)
        model.train()
        stim, cue, on, target = _pool(4 * batch_size, n_trials, kwargs, config.dt_ms, rng)
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        losses = np.zeros(n_steps)
        accuracy = np.zeros(n_steps)
        bar = tqdm(range(n_steps), desc="training SE task model", unit="step", disable=not progress)
        for step in bar:
            idx = torch.from_numpy(rng.choice(stim.shape[0], size=batch_size, replace=False))
            out = model(stim[idx], cue[idx], on[idx], generator=gen)
            y = target[idx]
            loss = decision_loss(out, y, dt_ms=config.dt_ms, late_ms=late_ms, threshold=config.threshold)
            if gain_cost:
                loss = loss + gain_cost * out.gain.mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            choice, _ = model.decide(out)
            losses[step] = float(loss.detach())
            accuracy[step] = float((choice == y).double().mean())
            if step % 10 == 0 or step == n_steps - 1:
                bar.set_postfix(loss=f"{losses[step]:.3f}", acc=f"{accuracy[step]:.2f}")
        model.eval()
    wall = time.perf_counter() - start
    history = xr.Dataset(
        {
            "loss": ("step", losses, _attrs("1", "training loss")),
            "accuracy": ("step", accuracy, _attrs("1", "fraction correct on the training batch")),
        },
        coords={"step": ("step", np.arange(n_steps), _attrs("1", "Adam step"))},
        attrs={
            "wall_time_s": wall,
            "seed": seed,
            "batch_size": batch_size,
            "n_trials": n_trials,
            "lr": lr,
            "late_ms": late_ms,
            "gain_cost": gain_cost,
            "task_json": json.dumps(results._jsonable(kwargs), sort_keys=True),
            "params_json": json.dumps(config.to_dict(), sort_keys=True),
        },
    )
    return model, history


def with_tau_ms(model: SETaskModel, tau_ms: float) -> SETaskModel:
    """A copy of `model` with the same weights and gate time constant `tau_ms` (ms).

    The gate kinetics have no parameters, so a trained model can be re-timed without retraining: this is
    how a ``tau_ms`` override (e.g. a sweep of the modulator time constant) applies to the SE model while
    the learned gate profile stays fixed.

    Raises
    ------
    TypeError, ValueError
        A wrong model, or `tau_ms` not > 0.
    """
    model = _check_model(model)
    tau_ms = check_positive("tau_ms", tau_ms)
    out = SETaskModel(model.config.replace(tau_ms=tau_ms))
    out.load_state_dict(model.state_dict())
    out.train(model.training)
    return out


# ------------------------------------------------------------------------------------------------ sessions
def run_se_session(
    model: SETaskModel,
    task: CuedTaskSwitching,
    *,
    seed: int | None = None,
    decimate_ms: float = 50.0,
    noise: bool = True,
) -> xr.Dataset:
    """Run one continuous session of `task` on the model (gate state carried from trial to trial).

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
        from stimulus onset, NaN without a response); ``gain`` over (``time``, ``channel``) and
        ``population_gain`` (mean over each population's channels) over (``time``, ``population``), sampled
        every `decimate_ms`; the channel's population as a coordinate. ``attrs["params_json"]`` holds the
        model config, ``attrs["mapping"]`` the channel-to-population mapping.

    Raises
    ------
    TypeError, ValueError
        A wrong model or task, a bad seed or `decimate_ms`.
    """
    model = _check_model(model)
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
    stim, cue, on, correct_choice = _session_tensors(task, dt)
    gen = torch.Generator().manual_seed(0 if seed is None else seed)
    if seed is None:
        gen.seed()
    with torch.no_grad():
        out = model(
            torch.from_numpy(stim)[None],
            torch.from_numpy(cue)[None],
            torch.from_numpy(on)[None],
            noise=noise,
            generator=gen,
        )
        choice, rt = model.decide(out)
    choice = choice[0].numpy().astype(np.int8)
    rt = rt[0].numpy()
    if choice.shape[0] != correct_choice.shape[0]:  # pragma: no cover - guarded by the task's inputs
        raise RuntimeError(f"found {choice.shape[0]} stimulus windows for {correct_choice.shape[0]} trials")
    step = max(1, round(decimate_ms / dt))
    gain = out.gain[0, ::step].numpy().astype(np.float64)
    times = np.arange(stim.shape[0])[::step] * dt
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
            "mapping": MAPPING_DOC,
            "dt_ms": dt,
            "decimate_ms": step * dt,
            "seed": -1 if seed is None else seed,
            "noise": int(noise),
        },
    )


# ------------------------------------------------------------------------------------------- gate profile
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
            out[k] = model.se.excite(x, context).gain.mean(0).double().numpy()
    return out


def gate_profile(
    model: SETaskModel,
    *,
    n_samples: int = 1024,
    coherences: tuple[float, ...] | None = None,
    seed: int = 0,
) -> xr.DataArray:
    """Steady-state mean gain of each channel in each context, during the stimulus.

    The steady state of the gate kinetics under a constant input is the instantaneous gate ``g*`` of the
    excitation; it is averaged over `n_samples` bivalent stimuli (each feature's coherence drawn from
    `coherences` with a random sign) with sensory noise, for each one-hot context.

    Parameters
    ----------
    model : SETaskModel
    n_samples : int, default 1024
        Stimuli averaged per context.
    coherences : tuple of float, optional
        Unsigned coherences (%); default those of :class:`CuedTaskSwitching`.
    seed : int, default 0
        Seed of the stimuli and noise.

    Returns
    -------
    xarray.DataArray
        ``gain`` over (``context``, ``channel``), with the channel's population as a coordinate.
    """
    model = _check_model(model)
    n_samples = check_int("n_samples", n_samples, low=1)
    seed = check_int("seed", seed, low=0)
    if coherences is None:
        coherences = CuedTaskSwitching().coherences
    coh = tuple(float(c) for c in coherences)
    if not coh or min(coh) < 0 or max(coh) > 100:
        raise ValueError(f"coherences={coherences!r} must be a non-empty list of values in [0, 100]")
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
            coherences=list(coh),
            seed=seed,
            params_json=json.dumps(cfg.to_dict(), sort_keys=True),
        ),
    )


def population_gains(
    model: SETaskModel,
    *,
    n_samples: int = 1024,
    coherences: tuple[float, ...] | None = None,
    seed: int = 0,
) -> xr.DataArray:
    """Per-context gain of each sensory population: the SE gate profile mapped onto populations.

    The mapping (stored in ``attrs["mapping"]`` and, as JSON, ``attrs["mapping_json"]``): the gain of
    population ``p`` in context ``k`` is the mean over the channels of ``p`` (channel ``c`` belongs to
    population ``c // channels_per_population``; populations a+, a-, b+, b-) of :func:`gate_profile`. These
    are the per-context population gains that the rate and spiking models receive.

    Parameters
    ----------
    model, n_samples, coherences, seed
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
    profile = gate_profile(model, n_samples=n_samples, coherences=coherences, seed=seed)
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


# ------------------------------------------------------------------------------------------- save / load
def _paths(path: str | os.PathLike[str]) -> tuple[Path, Path]:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or path-like, got {type(path).__name__}")
    base = Path(path)
    if base.suffix in (".pt", ".json"):
        base = base.with_suffix("")
    if not base.name:
        raise ValueError(f"path={str(path)!r} has no file name")
    return base.with_name(base.name + ".pt"), base.with_name(base.name + ".json")


def _atomic_write(path: Path, write: Any) -> Path:
    tmp = results.temporary_path(path)
    try:
        write(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def save_se_model(
    model: SETaskModel, path: str | os.PathLike[str], *, overwrite: bool = False
) -> tuple[Path, Path]:
    """Save the model as ``<path>.pt`` (state dict) and ``<path>.json`` (config), atomically.

    Parameters
    ----------
    model : SETaskModel
    path : str or path-like
        Base name; a ``.pt`` or ``.json`` suffix is dropped.
    overwrite : bool, default False
        Replace existing files.

    Returns
    -------
    (Path, Path)
        The ``.pt`` and ``.json`` paths written.

    Raises
    ------
    FileExistsError
        If either file exists and `overwrite` is False (nothing is written).
    FileNotFoundError
        If the folder does not exist.
    """
    model = _check_model(model)
    pt, js = _paths(path)
    if not overwrite:
        for p in (pt, js):
            if p.exists():
                raise FileExistsError(f"{str(p)!r} exists; pass overwrite=True to replace it")
    if not pt.parent.is_dir():
        raise FileNotFoundError(f"the folder {str(pt.parent)!r} for {str(pt)!r} does not exist")
    meta = {"format": _FORMAT, "format_version": _FORMAT_VERSION, "config": model.config.to_dict()}
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    tmp_pt = _atomic_write(pt, lambda p: torch.save(state, p))
    try:
        tmp_js = _atomic_write(js, lambda p: p.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n"))
    except BaseException:
        tmp_pt.unlink(missing_ok=True)
        raise
    try:
        os.replace(tmp_pt, pt)
        os.replace(tmp_js, js)
    finally:  # nothing temporary is left behind, whatever failed
        tmp_pt.unlink(missing_ok=True)
        tmp_js.unlink(missing_ok=True)
    return pt, js


def load_se_model(path: str | os.PathLike[str]) -> SETaskModel:
    """Load a model written by :func:`save_se_model` (no code is executed: ``weights_only=True``).

    Raises
    ------
    FileNotFoundError
        If ``<path>.pt`` or ``<path>.json`` is missing.
    neuromod.results.ResultsError
        If either file is corrupt or does not match the other (wrong format, bad config, missing or
        mismatched weights).
    """
    pt, js = _paths(path)
    for p in (js, pt):
        if not p.is_file():
            raise FileNotFoundError(f"no such SE model file: {str(p)!r}")
    try:
        meta = json.loads(js.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise results.ResultsError(f"{str(js)!r} is not valid JSON: {err}") from err
    if not isinstance(meta, dict) or meta.get("format") != _FORMAT:
        raise results.ResultsError(
            f"{str(js)!r} is not an SE task model config (expected format {_FORMAT!r})"
        )
    if meta.get("format_version") != _FORMAT_VERSION:
        raise results.ResultsError(
            f"{str(js)!r} has format_version {meta.get('format_version')!r}, expected {_FORMAT_VERSION}"
        )
    try:
        config = SETaskModelConfig.from_dict(meta.get("config", {}))
    except (ConfigError, ValueError, TypeError) as err:
        raise results.ResultsError(f"{str(js)!r}: invalid config: {err}") from err
    try:
        state = torch.load(pt, weights_only=True, map_location="cpu")
    except Exception as err:  # torch raises many types for corrupt archives
        raise results.ResultsError(f"{str(pt)!r} is not a readable torch state dict: {err}") from err
    if not isinstance(state, Mapping):
        raise results.ResultsError(f"{str(pt)!r} holds a {type(state).__name__}, expected a state dict")
    model = SETaskModel(config)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise results.ResultsError(f"{str(pt)!r} does not match the config in {str(js)!r}: {err}") from err
    model.eval()
    return model
