"""Tests for the closed-loop cued task-switching task: trial statistics, cues, the timeline that given
reaction times imply, inputs on any dt grid, the step counts of closed-loop runners, bad arguments.

Sampling tests use large sessions and either exact binomial tests at the 0.1 % level or a tolerance of
4 standard errors of a proportion (two-sided p ~ 6e-5 per check), so a correct task passes and a wrong
probability (off by several SE) fails.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import xarray as xr
from scipy import stats

from neuromod.tasks import CONTEXTS, POPULATIONS, CuedTaskSwitching

N = 4000  # large session: sampling tests at the 0.1 % level


@pytest.fixture(scope="module")
def big_table() -> xr.Dataset:
    return CuedTaskSwitching(n_trials=N, p_switch=0.3, p_congruent=0.5, seed=11).trials()


@pytest.fixture(scope="module")
def two_cue_table() -> xr.Dataset:
    return CuedTaskSwitching(n_trials=N, p_switch=0.4, cues_per_task=2, seed=12).trials()


def _within(count: int, n: int, p: float, k_se: float = 4.0) -> bool:
    """Whether ``count / n`` lies within `k_se` standard errors of `p` (binomial SE at `p`)."""
    se = np.sqrt(p * (1 - p) / n)
    return abs(count / n - p) <= k_se * se


# ----------------------------------------------------------------------------------------- trial table
def test_table_columns_and_defaults() -> None:
    task = CuedTaskSwitching(n_trials=5, seed=0)
    table = task.trials()
    assert set(table.data_vars) == {
        "context",
        "cue",
        "feature_a",
        "feature_b",
        "csi_ms",
        "rci_ms",
        "is_switch",
        "is_cue_switch",
        "is_first",
        "is_congruent",
        "correct_choice",
    }
    # no absolute event times in the table: they depend on the responses (timeline)
    assert not any(name.endswith("onset_ms") or name.endswith("end_ms") for name in table.data_vars)
    assert task.csi_ms == (50.0, 150.0, 300.0, 600.0, 1200.0)
    # the constructor's defaults are the documented default timing
    defaults = inspect.signature(CuedTaskSwitching).parameters
    assert task.timing == dict(CuedTaskSwitching.default_timing)
    assert task.timing == {"rci_ms": defaults["rci_ms"].default, "max_rt_ms": defaults["max_rt_ms"].default}
    assert task.timing["max_rt_ms"] == 2000.0
    assert task.cues_per_task == 1 and task.n_cues == 2
    rci = task.timing["rci_ms"]
    np.testing.assert_array_equal(table["rci_ms"].values, rci)
    assert table["is_first"].values.tolist() == [True, False, False, False, False]
    assert (table.attrs["rci_ms"], table.attrs["max_rt_ms"], table.attrs["cues_per_task"]) == (rci, 2000.0, 1)


def test_switch_probability(big_table: xr.Dataset) -> None:
    switches = int(big_table["is_switch"][1:].sum())
    assert stats.binomtest(switches, N - 1, 0.3).pvalue > 1e-3
    ctx = big_table["context"].values
    np.testing.assert_array_equal(big_table["is_switch"].values[1:], ctx[1:] != ctx[:-1])
    assert not bool(big_table["is_switch"][0])


def test_congruency_balance_and_correct_choice(big_table: xr.Dataset) -> None:
    congruent = int(big_table["is_congruent"].sum())
    assert stats.binomtest(congruent, N, 0.5).pvalue > 1e-3
    a, b = big_table["feature_a"].values, big_table["feature_b"].values
    np.testing.assert_array_equal(big_table["is_congruent"].values, np.sign(a) == np.sign(b))
    relevant = np.where(big_table["context"].values == 0, a, b)
    np.testing.assert_array_equal(big_table["correct_choice"].values, np.where(relevant > 0, 1, 2))
    # congruency is balanced within switch and repeat trials too (independent draws)
    for sw in (True, False):
        sub = big_table["is_congruent"].values[big_table["is_switch"].values == sw]
        assert stats.binomtest(int(sub.sum()), sub.size, 0.5).pvalue > 1e-3


def test_csi_and_coherence_sets(big_table: xr.Dataset) -> None:
    task = CuedTaskSwitching()
    values, counts = np.unique(big_table["csi_ms"].values, return_counts=True)
    np.testing.assert_array_equal(values, task.csi_ms)
    assert stats.chisquare(counts).pvalue > 1e-3  # uniform over the set
    mags = np.unique(np.abs(big_table["feature_a"].values))
    np.testing.assert_array_equal(mags, task.coherences_pct)


# ----------------------------------------------------------------------------------------- cues
def test_one_cue_per_task(big_table: xr.Dataset) -> None:
    # with one cue per task the cue is the context, and a cue switch is a task switch
    np.testing.assert_array_equal(big_table["cue"].values, big_table["context"].values)
    np.testing.assert_array_equal(big_table["is_cue_switch"].values, big_table["is_switch"].values)


def test_two_cues_per_task_statistics(two_cue_table: xr.Dataset) -> None:
    t = two_cue_table
    cue, ctx = t["cue"].values.astype(int), t["context"].values.astype(int)
    assert CuedTaskSwitching(cues_per_task=2).n_cues == 4
    assert set(np.unique(cue)) == {0, 1, 2, 3}
    np.testing.assert_array_equal(cue // 2, ctx)  # cues 0, 1 name task a; 2, 3 task b
    np.testing.assert_array_equal(t["is_cue_switch"].values[1:], cue[1:] != cue[:-1])
    assert not bool(t["is_cue_switch"][0])
    # within each task, each of its two cues is drawn with probability 1/2
    for k in range(len(CONTEXTS)):
        mine = cue[ctx == k]
        assert _within(int((mine == 2 * k).sum()), mine.size, 0.5), (k, np.bincount(mine))
    # a task switch always changes the cue; on a task repeat the cue changes with probability 1/2
    sw, cs = t["is_switch"].values[1:], t["is_cue_switch"].values[1:]
    assert cs[sw].all()
    repeats = cs[~sw]
    assert _within(int(repeats.sum()), repeats.size, 0.5), repeats.mean()
    # ... so cue switches happen on p_switch + (1 - p_switch) / 2 = 0.7 of the trials
    assert _within(int(cs.sum()), cs.size, 0.4 + 0.6 / 2), cs.mean()
    # the extra cue draw leaves the task sequence's statistics alone
    assert _within(int(sw.sum()), sw.size, 0.4), sw.mean()


def test_cue_switch_without_task_switch_exists(two_cue_table: xr.Dataset) -> None:
    t = two_cue_table
    cue_only = t["is_cue_switch"].values & ~t["is_switch"].values
    assert cue_only.sum() > 0.2 * N  # expected 0.3 N


# ----------------------------------------------------------------------------------------- seeding
def test_same_seed_same_table_other_seed_differs() -> None:
    a = CuedTaskSwitching(n_trials=50, seed=3).trials()
    b = CuedTaskSwitching(n_trials=50, seed=3).trials()
    xr.testing.assert_identical(a, b)
    c = CuedTaskSwitching(n_trials=50, seed=4).trials()
    assert not np.array_equal(a["feature_a"].values, c["feature_a"].values)
    task = CuedTaskSwitching(n_trials=50, seed=3)
    xr.testing.assert_identical(task.trials(), task.trials())  # generated once
    # the cue draws come from the same generator: two-cue sessions are seeded too
    d = CuedTaskSwitching(n_trials=50, cues_per_task=2, seed=3).trials()
    e = CuedTaskSwitching(n_trials=50, cues_per_task=2, seed=3).trials()
    xr.testing.assert_identical(d, e)


def test_trial_table_copies_are_independent() -> None:
    task = CuedTaskSwitching(n_trials=5, seed=0)
    table = task.trials()
    table["feature_a"].values[:] = 0.0
    assert (task.trials()["feature_a"].values != 0.0).all()


# ----------------------------------------------------------------------------------------- timeline
def _random_rts(task: CuedTaskSwitching, rng: np.random.Generator, p_miss: float = 0.2) -> np.ndarray:
    rt = rng.uniform(0.0, task.timing["max_rt_ms"], size=task.n_trials)
    rt[rng.random(task.n_trials) < p_miss] = np.nan
    return rt


@pytest.mark.parametrize("seed", [0, 1])
def test_timeline_arithmetic(seed: int) -> None:
    task = CuedTaskSwitching(n_trials=40, rci_ms=250.0, max_rt_ms=900.0, seed=seed)
    table = task.trials()
    rt = _random_rts(task, np.random.default_rng(seed))
    assert np.isnan(rt).any() and (~np.isnan(rt)).any()
    times = task.timeline(rt)
    cue, stim, resp = (times[k].values for k in ("cue_onset_ms", "stim_onset_ms", "response_ms"))
    csi = table["csi_ms"].values
    held = np.where(np.isnan(rt), 900.0, rt)  # no response: the stimulus stays on to the deadline
    # a hand-written walk through the session
    t, expected = 0.0, []
    for k in range(task.n_trials):
        c = t + 250.0
        s = c + csi[k]
        t = s + held[k]
        expected.append((c, s, t))
    np.testing.assert_allclose(np.c_[cue, stim, resp], expected, rtol=1e-12, atol=0)
    # the intervals, trial by trial
    assert cue[0] == 250.0
    np.testing.assert_allclose(stim - cue, csi, rtol=0, atol=1e-9)
    np.testing.assert_allclose(resp - stim, held, rtol=0, atol=1e-9)
    np.testing.assert_allclose(cue[1:] - resp[:-1], 250.0, rtol=0, atol=1e-9)
    # RSI = RCI + CSI whatever the reaction time
    rsi = stim[1:] - resp[:-1]
    np.testing.assert_allclose(rsi, 250.0 + csi[1:], rtol=0, atol=1e-9)
    np.testing.assert_allclose(rsi, [task.rsi_ms(k) for k in range(1, task.n_trials)], rtol=0, atol=1e-9)
    np.testing.assert_array_equal(times["trial"].values, table["trial"].values)


def test_rsi_does_not_depend_on_rt() -> None:
    task = CuedTaskSwitching(n_trials=6, seed=5)
    fast = task.timeline(np.full(6, 100.0))
    slow = task.timeline(np.r_[1900.0, np.nan, 1900.0, np.nan, 1900.0, np.nan])
    for times in (fast, slow):
        rsi = times["stim_onset_ms"].values[1:] - times["response_ms"].values[:-1]
        np.testing.assert_allclose(rsi, [task.rsi_ms(k) for k in range(1, 6)], rtol=0, atol=1e-9)
    # but the session is longer with slower responses: by the sum of the RT differences
    extra = (1900.0 - 100.0) * 3 + (2000.0 - 100.0) * 3
    np.testing.assert_allclose(float(slow["response_ms"][-1] - fast["response_ms"][-1]), extra)


def test_timeline_edges_of_the_rt_range() -> None:
    task = CuedTaskSwitching(n_trials=3, max_rt_ms=500.0, seed=0)
    times = task.timeline(np.array([0.0, 500.0, np.nan]))
    held = (times["response_ms"] - times["stim_onset_ms"]).values
    np.testing.assert_allclose(held, [0.0, 500.0, 500.0])  # RT 0 and the deadline are allowed


@pytest.mark.parametrize(
    ("rt", "match"),
    [
        (np.ones(2), r"rt_ms has shape \(2,\), expected \(3,\): one RT per trial"),
        (np.ones((1, 3)), r"rt_ms has shape \(1, 3\), expected \(3,\)"),
        (
            np.array([1.0, -1.0, 1.0]),
            r"rt_ms holds \[-1\.0\]; expected RTs in \[0, max_rt_ms=2000\.0\] or NaN",
        ),
        (np.array([1.0, 2001.0, 1.0]), r"rt_ms holds \[2001\.0\]"),
        (np.array([1.0, np.inf, 1.0]), r"rt_ms holds \[inf\]"),
    ],
)
def test_bad_rt_arrays(rt: np.ndarray, match: str) -> None:
    task = CuedTaskSwitching(n_trials=3, seed=0)
    with pytest.raises(ValueError, match=match):
        task.timeline(rt)
    with pytest.raises(ValueError, match=match):
        task.inputs(1.0, rt)


# ----------------------------------------------------------------------------------------- inputs
@pytest.mark.parametrize("dt_ms", [0.25, 0.3, 1.0, 7.0])
@pytest.mark.parametrize("with_rt", [False, True])
def test_inputs_match_the_timeline(dt_ms: float, with_rt: bool) -> None:
    task = CuedTaskSwitching(n_trials=6, csi_ms=(100.0, 250.0), rci_ms=300.0, max_rt_ms=800.0, seed=2)
    table = task.trials()
    rt = np.array([120.0, np.nan, 650.0, 33.0, 800.0, 410.0]) if with_rt else None
    x = task.inputs(dt_ms, rt)
    times = task.timeline(np.full(6, np.nan) if rt is None else rt)

    def idx(name: str) -> np.ndarray:
        return np.rint(times[name].values / dt_ms).astype(int)

    cue_on, stim_on, resp = idx("cue_onset_ms"), idx("stim_onset_ms"), idx("response_ms")
    time = x["time"].values
    np.testing.assert_allclose(np.diff(time), dt_ms, rtol=0, atol=1e-9)
    assert time.size == resp[-1]  # the session ends at the last response
    assert x.attrs["dt_ms"] == dt_ms
    assert list(x["population"].values) == list(POPULATIONS)
    assert list(x["context"].values) == list(CONTEXTS)
    # expected series, built from the timeline
    on = np.zeros(time.size, bool)
    cued = np.zeros(time.size, bool)
    trial = np.zeros(time.size, int)
    start = 0
    for i in range(6):
        on[stim_on[i] : resp[i]] = True
        cued[cue_on[i] : resp[i]] = True
        trial[start : resp[i]] = i
        start = resp[i]
        fa, fb = float(table["feature_a"][i]) / 100, float(table["feature_b"][i]) / 100
        # stimulus on from its onset to the response, then off (the response ends it)
        np.testing.assert_allclose(
            x["stimulus"].values[stim_on[i] : resp[i]],
            np.tile([1 + fa, 1 - fa, 1 + fb, 1 - fb], (resp[i] - stim_on[i], 1)),
        )
        one_hot = np.eye(2)[int(table["context"][i])]
        np.testing.assert_array_equal(
            x["cue"].values[cue_on[i] : resp[i]], np.tile(one_hot, (resp[i] - cue_on[i], 1))
        )
    np.testing.assert_array_equal(x["stim_on"].values, on)
    np.testing.assert_array_equal(x["trial_index"].values, trial)
    assert (x["stimulus"].values[~on] == 0).all()
    # no cue during the response-cue intervals: uniform context, 1/2 each
    assert (~cued).sum() >= 6 * round(300.0 / dt_ms) - 6
    np.testing.assert_array_equal(x["cue"].values[~cued], 0.5)
    np.testing.assert_array_equal(x["cue"].sum("context").values, 1.0)


def test_inputs_stimulus_ends_at_the_response() -> None:
    task = CuedTaskSwitching(n_trials=2, csi_ms=(200.0,), rci_ms=100.0, max_rt_ms=1000.0, seed=0)
    x = task.inputs(1.0, np.array([250.0, 400.0]))
    on = x["stim_on"].values
    # trial 0: cue at 100, stimulus 300-550; trial 1: cue at 650, stimulus 850-1250
    assert np.flatnonzero(on).tolist() == list(range(300, 550)) + list(range(850, 1250))
    cued = (x["cue"].values != 0.5).any(1)
    assert np.flatnonzero(cued).tolist() == list(range(100, 550)) + list(range(650, 1250))
    assert x.sizes["time"] == 1250
    # without responses every stimulus lasts to the deadline
    x = task.inputs(1.0)
    assert np.flatnonzero(x["stim_on"].values).tolist() == list(range(300, 1300)) + list(range(1600, 2600))


# ----------------------------------------------------------------------------------------- steps
def test_steps_rounding() -> None:
    task = CuedTaskSwitching(
        n_trials=30, csi_ms=(55.0, 150.0, 1200.0), rci_ms=300.0, max_rt_ms=2000.0, seed=1
    )
    table = task.trials()
    steps = task.steps(7.0)
    assert set(steps) == {"rci", "csi", "max_rt"}
    # to the nearest step: 300 / 7 = 42.9 -> 43; 55 / 7 = 7.9 -> 8; 150 / 7 = 21.4 -> 21; 1200 / 7 = 171.4
    # -> 171; 2000 / 7 = 285.7 -> 286
    np.testing.assert_array_equal(steps["rci"], 43)
    lookup = {55.0: 8, 150.0: 21, 1200.0: 171}
    np.testing.assert_array_equal(steps["csi"], [lookup[c] for c in table["csi_ms"].values])
    assert steps["max_rt"] == 286 and isinstance(steps["max_rt"], int)
    assert steps["rci"].dtype == np.int64 and steps["csi"].dtype == np.int64
    assert steps["rci"].shape == steps["csi"].shape == (30,)
    # exact multiples stay exact
    steps = task.steps(5.0)
    np.testing.assert_array_equal(steps["csi"] * 5.0, table["csi_ms"].values)
    assert (steps["rci"] == 60).all() and steps["max_rt"] == 400
    # the deadline is at least one step
    assert task.steps(2000.0)["max_rt"] == 1


def test_steps_refuses_a_step_longer_than_the_deadline() -> None:
    task = CuedTaskSwitching(n_trials=2, max_rt_ms=500.0, seed=0)
    with pytest.raises(ValueError, match=r"dt_ms=600\.0 is longer than max_rt_ms=500\.0"):
        task.steps(600.0)
    with pytest.raises(ValueError, match=r"dt_ms=0\.0 must be a finite number > 0"):
        task.steps(0.0)


# ----------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"p_switch": 1.5}, r"p_switch=1\.5 is outside the valid range \[0, 1\]"),
        ({"coherences_pct": (0.0, 10.0)}, r"coherences_pct=.* must hold one value or more, each > 0"),
        ({"csi_ms": ()}, r"csi_ms must not be empty"),
        ({"csi_ms": (-5.0,)}, r"csi_ms=.* is outside the valid range \[0, inf\)"),
        ({"n_trials": 0}, r"n_trials=0 is outside the valid range \[1, inf\]"),
        ({"rci_ms": -1.0}, r"rci_ms=-1\.0 must be a finite number >= 0"),
        ({"max_rt_ms": float("nan")}, r"max_rt_ms=nan must be a finite number > 0"),
        ({"cues_per_task": 3}, r"cues_per_task=3 is outside the valid range \[1, 2\]"),
        (
            {"rci_ms": 0.0, "csi_ms": (0.0, 100.0)},
            r"rci_ms=0 with a CSI of 0 .* would start a stimulus at the previous response",
        ),
    ],
)
def test_bad_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        CuedTaskSwitching(**kwargs)


def test_removed_arguments_are_refused() -> None:
    with pytest.raises(TypeError, match="rsi_ms"):
        CuedTaskSwitching(rsi_ms=300.0)
    with pytest.raises(TypeError, match="late_ms"):
        CuedTaskSwitching(late_ms=300.0)


def test_zero_rci_is_allowed_with_positive_csis() -> None:
    task = CuedTaskSwitching(n_trials=4, rci_ms=0.0, csi_ms=(100.0,), seed=0)
    times = task.timeline(np.full(4, 200.0))
    np.testing.assert_allclose(times["cue_onset_ms"].values[1:], times["response_ms"].values[:-1])


def test_seed_must_be_a_non_negative_integer() -> None:
    with pytest.raises(TypeError, match="seed must be an integer, got True"):
        CuedTaskSwitching(seed=True)
    with pytest.raises(ValueError, match=r"seed=-1 is outside the valid range \[0, inf\]"):
        CuedTaskSwitching(seed=-1)
