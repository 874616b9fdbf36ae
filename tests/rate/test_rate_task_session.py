"""Closed-loop task sessions (:func:`neuromod.rate.simulate_task_session`) against independent references.

References: the open-loop simulator :func:`neuromod.rate.simulate_circuit` driven by the schedule that the
closed loop's own responses imply (same equations, same noise stream), the event times of
:meth:`CuedTaskSwitching.timeline`, the analytic solution of the modulator kinetics, and the deadline.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from numpy.testing import assert_allclose, assert_array_equal

from neuromod.rate import (
    Modulation,
    SensoryStage,
    ThresholdLinear,
    WongWang2006,
    simulate_circuit,
    simulate_task_session,
)
from neuromod.rate import circuit as circuit_module
from neuromod.tasks.switching import CuedTaskSwitching

DT = 0.5
EPS = np.finfo(float).eps
#: the rate family's defaults: threshold-linear populations with input gain g = m, 0.45 nA at 0 % coherence
DRIVE_NA = 0.45
RELEASE = np.array([[1.0, 1.0, 0.1, 0.1], [0.1, 0.1, 1.0, 1.0]])


def _stage(mode: str = "input_gain", tau_ms: float | tuple[float, ...] = 100.0) -> SensoryStage:
    modulation = {
        "input_gain": Modulation(mode="input_gain", gain_at_zero=0.0, gain_per_level=1.0),
        "response_gain": Modulation(mode="response_gain", gain_at_zero=0.0, gain_per_level=1.0),
        "threshold": Modulation(mode="threshold", shift_na_per_level=-0.05),
    }[mode]
    return SensoryStage(
        transfer=ThresholdLinear(slope_hz_per_na=100.0, threshold_na=0.15),
        modulation=modulation,
        tau_ms=tau_ms,
    )


def _drives(feature_a: np.ndarray, feature_b: np.ndarray) -> np.ndarray:
    """(trial, population) drives ``DRIVE_NA (1 +/- c/100)`` of a+, a-, b+, b- (nA)."""
    fa, fb = np.asarray(feature_a) / 100.0, np.asarray(feature_b) / 100.0
    return np.stack([1 + fa, 1 - fa, 1 + fb, 1 - fb], axis=1) * DRIVE_NA


def _task_inputs(task: CuedTaskSwitching) -> dict:
    """The arguments of one session of `task` (batch of 1)."""
    table = task.trials()
    steps = task.steps(DT)
    return {
        "rci_steps": steps["rci"][None],
        "csi_steps": steps["csi"][None],
        "context": table["context"].values[None],
        "drive_na": _drives(table["feature_a"].values, table["feature_b"].values)[None],
        "max_rt_steps": steps["max_rt"],
        "release": RELEASE,
        "dt_ms": DT,
    }


def _open_loop_schedule(ds: xr.Dataset, kw: dict) -> dict:
    """The inputs of :func:`simulate_circuit` that reproduce session 0 of `ds` (a closed-loop run of `kw`).

    Per step: release ``off`` from each trial's end (response or deadline) to its next cue, the context's
    release from the cue on; the stimulus drive from onset up to the deadline, or through the response
    step (whose rates saw the stimulus). The response window of a trial includes its response step.
    """
    onset = ds["stim_onset_step"].values[0]
    end = np.rint(ds["response_ms"].values[0] / DT).astype(int)
    responded = ds["choice"].values[0] > 0
    n_steps = int(end[-1]) + int(responded[-1])
    off = np.asarray(kw.get("off_release", kw["release"].mean(axis=0)))
    n_pop = off.size
    rel = np.tile(off, (n_steps, 1))
    drive = np.zeros((n_steps, n_pop))
    for j in range(onset.size):
        cue = onset[j] - kw["csi_steps"][0, j]
        rel[cue : end[j]] = kw["release"][kw["context"][0, j]]
        drive[onset[j] : end[j] + int(responded[j])] = kw["drive_na"][0, j]
    values = np.concatenate([drive, rel], axis=1)
    change = np.r_[True, np.any(values[1:] != values[:-1], axis=1)]
    steps = np.flatnonzero(change)
    timeout = end + responded.astype(int)
    return {
        "duration_ms": n_steps * DT,
        "onset_ms": (onset * DT)[None],
        "timeout_ms": (timeout * DT)[None],
        "reset_ms": (onset * DT)[None],
        "input_ms": (steps * DT)[None],
        "direct_na": np.zeros((1, steps.size, 2)),
        "drive_na": drive[steps][None],
        "release": rel[steps][None],
        "m0": off,
        "dt_ms": DT,
    }


@pytest.mark.parametrize("mode", ["input_gain", "response_gain", "threshold"])
def test_closed_loop_equals_open_loop_on_its_own_schedule(mode: str) -> None:
    """With noise: the open-loop simulator, given the schedule the responses imply and the same seed (one
    session: the same noise stream), gives the same choices, RTs and traces."""
    rng = np.random.default_rng(11)
    n = 14
    kw = {
        "rci_steps": rng.integers(1, 400, size=(1, n)),
        "csi_steps": rng.integers(1, 600, size=(1, n)),
        "context": rng.integers(0, 2, size=(1, n)),
        "drive_na": _drives(rng.choice([-25.6, 12.8, 51.2], n), rng.choice([-51.2, 6.4, 25.6], n))[None],
        "max_rt_steps": 1600,
        "release": RELEASE,
        "dt_ms": DT,
    }
    kw["rci_steps"][0, 3] = 0  # the next cue at the response step itself
    kw["drive_na"][0, 5:7] = 0.0  # no stimulus: these trials run to the deadline
    stage = _stage(mode, tau_ms=(60.0, 120.0, 90.0, 200.0))
    closed = simulate_task_session(**kw, sensory=stage, seed=21, record=True)
    choice = closed["choice"].values[0]
    # covered: the deadline (trials 5, 6), a response followed by an RCI of 0 (trial 2), other responses
    assert choice[5] == choice[6] == 0 and choice[2] > 0 and (choice > 0).sum() == n - 2
    ref = simulate_circuit(**_open_loop_schedule(closed, kw), sensory=stage, seed=21, record=True)
    assert_array_equal(ref["choice"].values[0], choice)
    assert_array_equal(ref["rt"].values[0], closed["rt"].values[0])
    n_rec = closed.sizes["time"]
    assert n_rec == round(float(closed["duration_ms"][0]) / DT)
    for name in ("r1", "r2", "modulator"):
        got = closed[name].values[..., 0, :] if name == "modulator" else closed[name].values[0]
        want = ref[name].values[..., 0, :n_rec] if name == "modulator" else ref[name].values[0, :n_rec]
        # same operations on the same numbers; allow a few roundings of the largest value
        assert_allclose(got, want, rtol=0, atol=8 * EPS * np.abs(want).max(), err_msg=name)


def test_time_axis_is_the_task_timeline_of_its_own_responses() -> None:
    task = CuedTaskSwitching(n_trials=25, seed=4, max_rt_ms=1500.0)
    ds = simulate_task_session(
        **_task_inputs(task), sensory=_stage(), seed=3, record=True, record_every_ms=5.0
    )
    rt = ds["rt"].values[0]
    assert np.isfinite(rt).sum() >= 20
    times = task.timeline(rt)
    for name in ("stim_onset_ms", "response_ms"):
        assert_allclose(ds[name].values[0], times[name].values, rtol=0, atol=DT, err_msg=name)
    assert_allclose(float(ds["duration_ms"][0]), float(times["response_ms"][-1]), rtol=0, atol=DT)
    assert_array_equal(ds["stim_onset_step"].values[0] * DT, ds["stim_onset_ms"].values[0])
    every = 5.0
    assert ds.sizes["time"] == int(np.ceil(float(ds["duration_ms"][0]) / every))
    assert_allclose(ds["time"].values, np.arange(ds.sizes["time"]) * every, rtol=0, atol=0)


def test_same_seed_same_session_and_independent_of_blocks_and_threads(monkeypatch) -> None:
    rng = np.random.default_rng(5)
    batch, width = 5, 6
    kw = {
        "rci_steps": rng.integers(100, 300, size=(batch, width)).astype(float),
        "csi_steps": rng.integers(1, 300, size=(batch, width)).astype(float),
        "context": rng.integers(0, 2, size=(batch, width)),
        "drive_na": _drives(
            rng.choice([-12.8, 25.6], batch * width), rng.choice([-6.4, 51.2], batch * width)
        ).reshape(batch, width, 4),
        "n_trials": np.array([6, 2, 4, 1, 5]),
        "max_rt_steps": 3000,
        "release": RELEASE,
        "sensory": _stage(),
        "record": True,
        "record_every_ms": 2.0,
    }
    pad = np.arange(width)[None, :] >= kw["n_trials"][:, None]
    kw["rci_steps"][pad] = np.nan  # padding may be anything
    kw["drive_na"][pad] = np.nan
    a = simulate_task_session(**kw, seed=9)
    b = simulate_task_session(**kw, seed=np.random.SeedSequence(9))
    xr.testing.assert_identical(a.drop_attrs(), b.drop_attrs())
    monkeypatch.setattr(circuit_module, "_BLOCK", 2)
    blocked = simulate_task_session(**kw, seed=9, n_threads=2)
    xr.testing.assert_identical(a, blocked)
    other = simulate_task_session(**kw, seed=10)
    assert not np.array_equal(a["rt"].values, other["rt"].values, equal_nan=True)
    # padding: no trial, no onset, NaN times; traces NaN after each session's end
    assert np.all(a["choice"].values[pad] == 0) and np.all(a["stim_onset_step"].values[pad] == -1)
    assert np.all(np.isnan(a["rt"].values[pad])) and np.all(np.isnan(a["response_ms"].values[pad]))
    last = a["response_ms"].values[np.arange(batch), kw["n_trials"] - 1]
    assert_array_equal(a["duration_ms"].values, last)
    after = a["time"].values[None, :] >= a["duration_ms"].values[:, None]
    assert np.all(np.isnan(a["r1"].values[after])) and not np.any(np.isnan(a["r1"].values[~after]))
    assert np.all(np.isnan(a["modulator"].values[:, after]))


def test_session_noise_depends_on_its_index_only() -> None:
    """Session k draws from child k of the seed: with fewer trials, its first trials are the same."""
    task = CuedTaskSwitching(n_trials=6, seed=8)
    kw = _task_inputs(task)
    two = {
        k: np.repeat(v, 2, axis=0) if k in ("rci_steps", "csi_steps", "context", "drive_na") else v
        for k, v in kw.items()
    }
    full = simulate_task_session(**two, sensory=_stage(), seed=2)
    part = simulate_task_session(**two, n_trials=[6, 3], sensory=_stage(), seed=2)
    assert_array_equal(part["rt"].values[1, :3], full["rt"].values[1, :3])
    assert_array_equal(part["rt"].values[0], full["rt"].values[0])
    assert not np.array_equal(full["rt"].values[0], full["rt"].values[1])  # two streams, two sessions


def test_noise_off_single_trial_equals_first_trial() -> None:
    task = CuedTaskSwitching(n_trials=5, seed=1)
    kw = _task_inputs(task)
    session = simulate_task_session(**kw, sensory=_stage(), noise=False)
    first = {
        k: v[:, :1] if k in ("rci_steps", "csi_steps", "context", "drive_na") else v for k, v in kw.items()
    }
    single = simulate_task_session(**first, sensory=_stage(), noise=False)
    assert np.isfinite(single["rt"].values[0, 0])
    assert_array_equal(single["rt"].values[0, 0], session["rt"].values[0, 0])
    assert single["choice"].values[0, 0] == session["choice"].values[0, 0]
    assert float(single["duration_ms"][0]) == float(session["response_ms"][0, 0])


def test_modulator_relaxes_exactly_to_the_release_in_force() -> None:
    """Between the end of a trial and the next cue the level follows ``off + (m_end - off) exp(-t / tau)``;
    from the cue to the end of the trial, the same toward the context's release."""
    tau = np.array([40.0, 80.0, 160.0, 320.0])
    task = CuedTaskSwitching(n_trials=8, seed=6, rci_ms=300.0)
    kw = _task_inputs(task)
    off = np.array([0.3, 0.6, 0.2, 0.5])
    ds = simulate_task_session(**kw, off_release=off, sensory=_stage(tau_ms=tuple(tau)), seed=4, record=True)
    m = ds["modulator"].values[:, 0]  # (population, step)
    onset = ds["stim_onset_step"].values[0]
    end = np.rint(ds["response_ms"].values[0] / DT).astype(int)
    cue = onset - kw["csi_steps"][0]
    starts = np.r_[0, end[:-1]]
    decay = np.exp(-DT / tau)[:, None]
    for j in range(onset.size):
        for lo, hi, target in ((starts[j], cue[j], off), (cue[j], end[j], RELEASE[kw["context"][0, j]])):
            if j == onset.size - 1 and hi == end[j]:
                hi = hi - 1  # the last recorded step of the session
            k = np.arange(hi - lo + 1)[None, :]
            want = target[:, None] + (m[:, lo : lo + 1] - target[:, None]) * decay**k
            # k one-step updates vs one power: a few roundings per step of the level's size
            atol = 4 * EPS * (k.max() + 1) * np.abs(m).max()
            assert_allclose(m[:, lo : hi + 1], want, rtol=0, atol=atol, err_msg=f"trial {j} [{lo}, {hi}]")
    assert_allclose(m[:, 0], off, rtol=0, atol=0)  # m0 defaults to the off release


def test_instantaneous_modulator_follows_the_release_in_force() -> None:
    """tau = 0: the level is the release in force at each step; the rates of the response step still see
    the cue's release, the next step the RCI's (or, at an RCI of 0, the next cue's)."""
    task = CuedTaskSwitching(n_trials=8, seed=2, rci_ms=300.0)
    kw = _task_inputs(task)
    kw["rci_steps"][0, 4] = 0
    ds = simulate_task_session(**kw, sensory=_stage(tau_ms=0.0), seed=7, record=True)
    m = ds["modulator"].values[:, 0]
    onset = ds["stim_onset_step"].values[0]
    end = np.rint(ds["response_ms"].values[0] / DT).astype(int)
    assert np.all(ds["choice"].values[0] > 0)  # every trial ends at a response here
    want = np.repeat(RELEASE.mean(axis=0)[:, None], m.shape[1], axis=1)
    for j in reversed(range(onset.size)):  # at an RCI of 0 the response step belongs to the earlier trial
        cue = onset[j] - kw["csi_steps"][0, j]
        want[:, cue : end[j] + 1] = RELEASE[kw["context"][0, j]][:, None]
    assert_array_equal(m, want)


def test_a_trial_without_response_lasts_exactly_max_rt() -> None:
    rci = np.array([[40, 0, 10]])
    csi = np.array([[20, 30, 5]])
    kw = {
        "rci_steps": rci,
        "csi_steps": csi,
        "context": [[0, 1, 0]],
        "drive_na": np.zeros((1, 3, 4)),  # no stimulus: no crossing
        "max_rt_steps": 700,
        "release": RELEASE,
        "sensory": _stage(),
    }
    ds = simulate_task_session(**kw, noise=False)
    assert ds["choice"].values.tolist() == [[0, 0, 0]] and np.all(np.isnan(ds["rt"].values))
    assert_array_equal(ds["response_ms"].values - ds["stim_onset_ms"].values, np.full((1, 3), 700 * DT))
    expected_end = np.cumsum(rci + csi + 700, axis=1) * DT
    assert_array_equal(ds["response_ms"].values, expected_end)
    assert float(ds["duration_ms"][0]) == expected_end[0, -1]
    assert ds.attrs["max_rt_ms"] == 700 * DT


def test_default_off_release_is_the_mean_of_the_rows() -> None:
    kw = {
        "rci_steps": [[10]],
        "csi_steps": [[10]],
        "context": [[0]],
        "drive_na": np.zeros((1, 1, 4)),
        "max_rt_steps": 5,
        "release": RELEASE,
        "sensory": _stage(),
        "noise": False,
    }
    ds = simulate_task_session(**kw, record=True)
    assert_allclose(ds["off_release"].values, RELEASE.mean(axis=0), rtol=0, atol=0)
    assert_allclose(ds["modulator"].values[:, 0, 0], RELEASE.mean(axis=0), rtol=0, atol=0)
    assert_allclose(ds["gain"].values, ds["modulator"].values, rtol=0, atol=0)  # g = m here
    assert ds["choice"].dtype == np.int8 and ds["stim_onset_step"].dtype == np.int64
    for name in list(ds.data_vars) + list(ds.coords):
        assert {"units", "long_name"} <= set(ds[name].attrs), name
    assert WongWang2006.__name__ == ds.attrs["model"]


_GOOD = {
    "rci_steps": [[10, 10], [10, 10]],
    "csi_steps": [[10, 10], [10, 10]],
    "context": [[0, 1], [1, 0]],
    "drive_na": np.full((2, 2, 4), 0.45),
    "max_rt_steps": 100,
    "release": RELEASE,
}


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"rci_steps": [10, 10]}, ValueError, r"rci_steps must have 2 dimension\(s\), got shape \(2,\)"),
        ({"csi_steps": [[10, 10]]}, ValueError, r"csi_steps has shape \(1, 2\), expected \(2, 2\)"),
        (
            {"rci_steps": [[10, 2.5], [10, 10]]},
            ValueError,
            r"rci_steps must hold whole numbers of steps, got 2\.5",
        ),
        (
            {"csi_steps": [[10, -1], [10, 10]]},
            ValueError,
            r"csi_steps=.* \(e\.g\. -1\) is outside the valid range \[0, inf\)",
        ),
        (
            {"rci_steps": [[0, 10], [10, 10]], "csi_steps": [[0, 10], [10, 10]]},
            ValueError,
            r"rci_steps \+ csi_steps is 0 at session 0, trial 0; expected >= 1 step",
        ),
        (
            {"context": [[0, 2], [1, 0]]},
            ValueError,
            r"context=.* \(e\.g\. 2\) is outside the valid range \[0, 1\]",
        ),
        (
            {"drive_na": np.full((2, 2, 3), 0.45)},
            ValueError,
            r"drive_na has shape \(2, 2, 3\), expected \(2, 2, 4\)",
        ),
        ({"drive_na": np.full((2, 2, 4), np.nan)}, ValueError, r"drive_na must be finite in every trial"),
        ({"max_rt_steps": 0}, ValueError, r"max_rt_steps=0 is outside the valid range \[1, inf\]"),
        ({"max_rt_steps": 10.0}, TypeError, r"max_rt_steps must be an integer"),
        ({"release": np.ones((2, 3))}, ValueError, r"release has shape \(2, 3\), expected \(contexts, 4\)"),
        ({"off_release": [0.5, 0.5]}, ValueError, r"off_release has shape \(2,\), expected \(4,\)"),
        ({"m0": [0.5, 0.5]}, ValueError, r"m0 has 2 values, expected 1 or 4"),
        ({"n_trials": [2, 3]}, ValueError, r"n_trials=.* outside the valid range \[1, 2\]"),
        ({"n_trials": [2]}, ValueError, r"n_trials has shape \(1,\), expected \(2,\)"),
        ({"dt_ms": 1.5}, ValueError, r"dt_ms=1\.5 is too large"),
        ({"s0": -0.1}, ValueError, r"s0=-0\.1 is outside the valid range \[0, 1\]"),
        (
            {"record": True, "record_every_ms": 0.7},
            ValueError,
            r"record_every_ms=0\.7 is not a positive multiple",
        ),
        ({"sensory": None}, TypeError, r"sensory must be a SensoryStage, got NoneType"),
        ({"noise": 1}, TypeError, r"noise must be a bool, got 1"),
        ({"n_threads": 0}, ValueError, r"n_threads=0 is outside the valid range"),
        ({"seed": -1}, ValueError, r"seed=-1 is outside the valid range"),
    ],
)
def test_bad_inputs_are_refused(kwargs: dict, error: type, match: str) -> None:
    args = {**_GOOD, "sensory": _stage(), **kwargs}
    with pytest.raises(error, match=match):
        simulate_task_session(**args)


def test_rate_family_runs_the_task_in_closed_loop() -> None:
    from neuromod.protocols.families.rate import RateFamily

    task = CuedTaskSwitching(n_trials=12, seed=3, max_rt_ms=1500.0)
    family = RateFamily()
    kw = {"release": RELEASE, "tau_ms": 100.0, "decimate_ms": 10.0}
    ds = family.run_trials(task, seed=np.random.SeedSequence(1), **kw)
    again = family.run_trials(task, seed=np.random.SeedSequence(1), **kw)
    xr.testing.assert_identical(ds, again)
    assert {"choice", "rt", "modulator", "gain", "pool_rate", "stim_onset_ms"} <= set(ds.data_vars)
    assert ds["modulator"].dims == ("time", "population") and ds["pool_rate"].dims == ("time", "pool")
    times = task.timeline(ds["rt"].values)
    assert_allclose(ds["stim_onset_ms"].values, times["stim_onset_ms"].values, rtol=0, atol=DT)
    assert ds["time"].values[-1] < float(times["response_ms"][-1]) <= ds["time"].values[-1] + 10.0 + DT
    assert_allclose(ds["modulator"].values[0], RELEASE.mean(axis=0), rtol=0, atol=0)  # m0: no task cued
    assert ds.attrs["decimate_ms"] == 10.0 and ds.attrs["tau_ms"] == 100.0
    assert np.mean(ds["choice"].values == task.trials()["correct_choice"].values) > 0.5
