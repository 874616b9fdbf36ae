"""The SE task model on cued task switching: training, sessions, gate profiles, save/load.

This module composes :class:`neuromod.gating.SETaskModel` (pure torch) with
:class:`neuromod.tasks.CuedTaskSwitching`:

* :func:`train_se_task_model` trains the model's excitation with Adam on batches of short closed-loop
  sessions with random cue-stimulus intervals (CSI), at the gate time constant ``config.tau_ms`` it will
  run with; the default run takes well under a minute on 2 cores;
* :func:`neuromod.protocols.se_session.run_se_session` runs one whole closed-loop session of a task (the
  stimulus ends at the response; the gate state carries over from trial to trial) and returns choice,
  correctness and RT per trial and the gain traces as xarray;
* :func:`with_tau_ms` re-times a trained model's gate kinetics (same weights, another ``tau_ms``): for
  what-if analyses only, since the excitation was trained at its own ``tau_ms``.

:mod:`neuromod.protocols.se_profile` gives the model's steady-state gains per context (the gate profile the
other families receive as their release pattern) and :mod:`neuromod.protocols.se_files` saves and loads
trained models.

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
import time
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import torch
import xarray as xr
from tqdm.auto import tqdm

from neuromod import results
from neuromod._checks import check_bool, check_int, check_positive
from neuromod.gating.task_model import SETaskModel, SETaskModelConfig, decision_loss
from neuromod.results import var_attrs as _attrs
from neuromod.tasks.switching import CONTEXTS, CuedTaskSwitching

__all__ = ["TRAIN_TASK", "check_model", "session_tensors", "train_se_task_model", "with_tau_ms"]

#: Task settings of the training sessions (updated from ``task_kwargs``): those of :class:`CuedTaskSwitching`
#: (mixed coherences, the default CSI set, RCI and deadline).
TRAIN_TASK: Mapping[str, Any] = {}


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


def check_model(model: object) -> SETaskModel:
    """`model` if it is an SETaskModel, else TypeError."""
    if not isinstance(model, SETaskModel):
        raise TypeError(f"model must be an SETaskModel, got {type(model).__name__}")
    return model


def _check_task(task: object) -> CuedTaskSwitching:
    if not isinstance(task, CuedTaskSwitching):
        raise TypeError(f"task must be a CuedTaskSwitching, got {type(task).__name__}")
    return task


def session_tensors(task: CuedTaskSwitching, dt_ms: float) -> dict[str, np.ndarray | int]:
    """One session's per-trial inputs of :meth:`SETaskModel.forward`: ``stimulus`` (N, 4), ``context``
    (N, 2) one-hot, ``rci`` and ``csi`` (N,) steps, ``max_rt`` steps, ``target`` (N,) correct choice."""
    table = task.trials()
    steps = task.steps(dt_ms)
    fa, fb = table["feature_a"].values / 100.0, table["feature_b"].values / 100.0
    return {
        "stimulus": np.stack([1 + fa, 1 - fa, 1 + fb, 1 - fb], axis=1).astype(np.float32),
        "context": np.eye(len(CONTEXTS), dtype=np.float32)[table["context"].values.astype(int)],
        "rci": steps["rci"],
        "csi": steps["csi"],
        "max_rt": int(steps["max_rt"]),
        "target": table["correct_choice"].values.astype(np.int64),
    }


def _pool(
    n_sessions: int, n_trials: int, task_kwargs: Mapping[str, Any], dt_ms: float, rng: np.random.Generator
) -> dict[str, Any]:
    """A batch of training sessions (stacked per-trial inputs)."""
    sessions = [
        session_tensors(CuedTaskSwitching(**task_kwargs, n_trials=n_trials, seed=int(seed)), dt_ms)
        for seed in rng.integers(2**31, size=n_sessions)
    ]
    out: dict[str, Any] = {"max_rt": sessions[0]["max_rt"]}
    for key in ("stimulus", "context", "rci", "csi", "target"):
        out[key] = torch.from_numpy(np.stack([s[key] for s in sessions]))
    return out


def train_se_task_model(
    config: SETaskModelConfig | None = None,
    *,
    task_kwargs: Mapping[str, Any] | None = None,
    n_steps: int | None = None,
    batch_size: int = 32,
    n_trials: int = 10,
    lr: float = 0.03,
    gain_cost: float = 0.0,
    quick: bool = False,
    progress: bool = True,
    seed: int = 0,
    num_threads: int | None = 1,
) -> tuple[SETaskModel, xr.Dataset]:
    """Train an :class:`SETaskModel` on sessions of cued task-switching trials.

    Each step draws `batch_size` sessions of `n_trials` continuous trials (random contexts, coherences and
    CSIs from :class:`CuedTaskSwitching` with :data:`TRAIN_TASK` settings) from a fixed pool, runs them in
    closed loop (each stimulus ends at the model's response) with fresh sensory and accumulator noise, and
    takes an Adam step on :func:`~neuromod.gating.task_model.decision_loss` (over the whole response window:
    cross-entropy on the accumulator difference, a penalty on the wrong accumulator nearing the threshold
    at any time, early crossings included, and a push of the correct one to the threshold). Only the
    excitation is trained (the readout is fixed), at the gate time constant ``config.tau_ms``, which is the
    one the model then runs with (the SE family trains at the experiment's ``tau_ms``).

    Parameters
    ----------
    config : SETaskModelConfig, optional
        The model (default ``SETaskModelConfig(seed=seed)``).
    task_kwargs : mapping, optional
        Overrides of :data:`TRAIN_TASK` passed to :class:`CuedTaskSwitching` (``coherences_pct``, ``csi_ms``,
        ``rci_ms``, ``p_switch``, ``p_congruent``, ``max_rt_ms``, ``cues_per_task``); ``n_trials`` and
        ``seed``
        are set here.
    n_steps : int, optional
        Adam steps of the closed-loop phase; default 100 (``quick``: 20).
    batch_size, n_trials : int
        Sessions per step and trials per session (``quick``: 16 sessions).
    lr : float
        Adam learning rate.
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
    check_bool("quick", quick)
    settings = {
        "n_steps": (20 if quick else 100) if n_steps is None else check_int("n_steps", n_steps, low=1),
        "batch_size": min(check_int("batch_size", batch_size, low=1), 16 if quick else batch_size),
        "n_trials": check_int("n_trials", n_trials, low=1),
        "lr": check_positive("lr", lr),
        "gain_cost": check_positive("gain_cost", gain_cost, allow_zero=True),
    }
    if num_threads is not None:
        num_threads = check_int("num_threads", num_threads, low=1)
    task = _training_task(task_kwargs, config.dt_ms)
    start = time.perf_counter()
    with _threads(num_threads):
        model, losses, accuracy = _train(config, task, seed=seed, progress=progress, **settings)
    history = xr.Dataset(
        {
            "loss": ("step", losses, _attrs("1", "training loss")),
            "accuracy": ("step", accuracy, _attrs("1", "fraction correct on the training batch")),
        },
        coords={"step": ("step", np.arange(losses.size), _attrs("1", "Adam step"))},
        attrs={
            "wall_time_s": time.perf_counter() - start,
            "seed": seed,
            **{k: settings[k] for k in ("batch_size", "n_trials", "lr", "gain_cost")},
            "task_json": json.dumps(results._jsonable(task), sort_keys=True),
            "params_json": json.dumps(config.to_dict(), sort_keys=True),
        },
    )
    return model, history


def _training_task(task_kwargs: Mapping[str, Any] | None, dt_ms: float) -> dict[str, Any]:
    """:data:`TRAIN_TASK` updated from `task_kwargs`, checked by building one session."""
    if task_kwargs is not None and not isinstance(task_kwargs, Mapping):
        raise TypeError(f"task_kwargs must be a mapping, got {type(task_kwargs).__name__}")
    reserved = {"n_trials", "seed"} & set(task_kwargs or {})
    if reserved:
        raise ValueError(f"task_kwargs sets {sorted(reserved)!r}; these are set by train_se_task_model")
    kwargs = {**TRAIN_TASK, **(task_kwargs or {})}
    try:
        CuedTaskSwitching(**kwargs, n_trials=1, seed=0).steps(dt_ms)
    except TypeError as err:
        raise TypeError(f"task_kwargs={dict(task_kwargs or {})!r}: {err}") from err
    return kwargs


def _train(
    config: SETaskModelConfig,
    task: Mapping[str, Any],
    *,
    seed: int,
    progress: bool,
    n_steps: int,
    batch_size: int,
    n_trials: int,
    lr: float,
    gain_cost: float,
) -> tuple[SETaskModel, np.ndarray, np.ndarray]:
    """The Adam loop: the trained model (eval mode), and the loss and batch accuracy of every step."""
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    model = SETaskModel(config)
    model.train()
    _pretrain_drift(model, task, rng, gain_cost=gain_cost)
    pool = _pool(4 * batch_size, n_trials, task, config.dt_ms, rng)
    opt = torch.optim.Adam(model.se.parameters(), lr=lr / 3)
    losses = np.zeros(n_steps)
    accuracy = np.zeros(n_steps)
    bar = tqdm(range(n_steps), desc="training SE task model", unit="step", disable=not progress)
    for step in bar:
        idx = torch.from_numpy(rng.choice(pool["target"].shape[0], size=batch_size, replace=False))
        out = model(
            pool["stimulus"][idx],
            pool["context"][idx],
            rci=pool["rci"][idx],
            csi=pool["csi"][idx],
            max_rt=pool["max_rt"],
            generator=gen,
        )
        y = pool["target"][idx]
        loss = decision_loss(out, y, threshold=config.threshold)
        if gain_cost:
            loss = loss + gain_cost * out.state[0].mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses[step] = float(loss.detach())
        accuracy[step] = float((out.choice == y).double().mean())
        if step % 10 == 0 or step == n_steps - 1:
            bar.set_postfix(loss=f"{losses[step]:.3f}", acc=f"{accuracy[step]:.2f}")
    return model.eval(), losses, accuracy


def _pretrain_drift(
    model: SETaskModel,
    task: Mapping[str, Any],
    rng: np.random.Generator,
    *,
    gain_cost: float,
    lr: float = 0.01,
    n_steps: int = 400,
    batch: int = 256,
    scale: float = 0.05,
) -> None:
    """Phase 1 of training: the steady-state drift of the accumulators, without noise or time.

    For stimuli drawn like the task's (coherences from its set, random signs, half congruent) and a cued
    context, the noise-free steady state gives the gated channels and the readout's drift difference
    ``D = rho_1 - rho_2``; the loss ``softplus(-sign D / scale)`` (sign: the correct choice) plus the gain
    cost makes ``D`` point to the correct choice. This deterministic objective sets up the
    context-dependent gating in a fraction of a second; the closed-loop phase then fits the decisions
    themselves (:func:`~neuromod.gating.task_model.decision_loss`). Without it the closed-loop objective,
    whose gradient on the irrelevant feature's gate nearly cancels between congruent and incongruent
    trials, learnt the gating for some seeds and not for others.
    """
    coh = np.asarray(task.get("coherences_pct", CuedTaskSwitching().coherences_pct), dtype=float) / 100.0
    opt = torch.optim.Adam(model.se.parameters(), lr=lr)
    k = model.config.contexts
    for _ in range(n_steps):
        mags = rng.choice(coh, size=(batch, 2))
        sign_a = rng.choice([-1.0, 1.0], size=batch)
        sign_b = np.where(rng.random(batch) < 0.5, sign_a, -sign_a)
        f = mags * np.stack([sign_a, sign_b], axis=1)
        ctx = rng.integers(k, size=batch)
        stim = torch.as_tensor(
            np.stack([1 + f[:, 0], 1 - f[:, 0], 1 + f[:, 1], 1 - f[:, 1]], 1), dtype=torch.float32
        )
        x = model.sensory(stim, noise=False)
        g = model.steady_gate(x, torch.eye(k)[ctx])
        rho = model.readout(g * x)
        sign = torch.as_tensor(np.where(ctx == 0, f[:, 0], f[:, 1]) > 0, dtype=torch.float32) * 2 - 1
        loss = torch.nn.functional.softplus(-sign * (rho[:, 0] - rho[:, 1]) / scale).mean()
        loss = loss + gain_cost * g.mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


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
    model = check_model(model)
    tau_ms = check_positive("tau_ms", tau_ms)
    out = SETaskModel(model.config.replace(tau_ms=tau_ms))
    out.to(device=model.tuning.device, dtype=model.tuning.dtype)  # the same weights: dtype and device too
    out.load_state_dict(model.state_dict())
    out.train(model.training)
    return out
