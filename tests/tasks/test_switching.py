"""Tests for the cued task-switching task: trial statistics, reproducibility, inputs on any dt grid."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from scipy import stats

from neuromod.tasks import POPULATIONS, CuedTaskSwitching

N = 4000  # large session: sampling tests at the 0.1 % level


@pytest.fixture(scope="module")
def big_table() -> xr.Dataset:
    return CuedTaskSwitching(n_trials=N, p_switch=0.3, p_congruent=0.5, seed=11).trials()


def test_switch_probability(big_table):
    switches = int(big_table["is_switch"][1:].sum())
    assert stats.binomtest(switches, N - 1, 0.3).pvalue > 1e-3
    ctx = big_table["context"].values
    np.testing.assert_array_equal(big_table["is_switch"].values[1:], ctx[1:] != ctx[:-1])
    assert not bool(big_table["is_switch"][0])


def test_congruency_balance_and_correct_choice(big_table):
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


def test_csi_and_coherence_sets(big_table):
    task = CuedTaskSwitching()
    values, counts = np.unique(big_table["csi_ms"].values, return_counts=True)
    np.testing.assert_array_equal(values, task.csi_ms)
    assert stats.chisquare(counts).pvalue > 1e-3  # uniform over the set
    mags = np.unique(np.abs(big_table["feature_a"].values))
    np.testing.assert_array_equal(mags, task.coherences_pct)


def test_timing_is_continuous(big_table):
    t = big_table
    np.testing.assert_array_equal(t["cue_onset_ms"][1:].values, t["trial_end_ms"][:-1].values)
    np.testing.assert_allclose(t["stim_onset_ms"] - t["cue_onset_ms"], t["csi_ms"])
    np.testing.assert_allclose(t["stim_offset_ms"] - t["stim_onset_ms"], 2000.0)
    np.testing.assert_allclose(t["trial_end_ms"] - t["stim_offset_ms"], 500.0)


def test_same_seed_same_table_other_seed_differs():
    a = CuedTaskSwitching(n_trials=50, seed=3).trials()
    b = CuedTaskSwitching(n_trials=50, seed=3).trials()
    xr.testing.assert_identical(a, b)
    c = CuedTaskSwitching(n_trials=50, seed=4).trials()
    assert not np.array_equal(a["feature_a"].values, c["feature_a"].values)
    task = CuedTaskSwitching(n_trials=50, seed=3)
    xr.testing.assert_identical(task.trials(), task.trials())  # generated once


@pytest.mark.parametrize("dt_ms", [0.1, 0.25, 0.3, 0.5, 1.0, 7.0])
def test_inputs_on_any_dt_grid(dt_ms):
    task = CuedTaskSwitching(n_trials=6, csi_ms=(100.0, 250.0), rsi_ms=300.0, max_rt_ms=800.0, seed=2)
    table, x = task.trials(), task.inputs(dt_ms)
    time = x["time"].values
    np.testing.assert_allclose(np.diff(time), dt_ms, rtol=0, atol=1e-9)
    assert time.size == round(float(table["trial_end_ms"][-1]) / dt_ms)
    onsets = np.flatnonzero(np.diff(x["stim_on"].values.astype(int)) == 1) + 1
    if x["stim_on"].values[0]:
        onsets = np.r_[0, onsets]
    np.testing.assert_array_equal(onsets, np.rint(table["stim_onset_ms"].values / dt_ms).astype(int))
    for i in range(table.sizes["trial"]):
        k = onsets[i]
        fa, fb = float(table["feature_a"][i]) / 100, float(table["feature_b"][i]) / 100
        np.testing.assert_allclose(x["stimulus"].values[k], [1 + fa, 1 - fa, 1 + fb, 1 - fb])
        assert x["cue"].values[k, int(table["context"][i])] == 1.0
        assert int(x["trial_index"][k]) == i
    assert list(x["population"].values) == list(POPULATIONS)
    assert (x["stimulus"].values[~x["stim_on"].values] == 0).all()
    np.testing.assert_array_equal(x["cue"].sum("context").values, 1.0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"p_switch": 1.5}, r"p_switch=1\.5 is outside the valid range \[0, 1\]"),
        ({"coherences_pct": (0.0, 10.0)}, r"coherences_pct=.* must be > 0"),
        ({"csi_ms": ()}, r"csi_ms must not be empty"),
        ({"n_trials": 0}, r"n_trials=0 is outside the valid range \[1, inf\]"),
        ({"rsi_ms": -1.0}, r"rsi_ms=-1\.0 must be a finite number >= 0"),
        ({"max_rt_ms": float("nan")}, r"max_rt_ms=nan must be a finite number > 0"),
        (
            {"rsi_ms": 0.0, "csi_ms": (0.0, 100.0)},
            r"rsi_ms=0 with a CSI of 0 .* would merge consecutive stimuli",
        ),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CuedTaskSwitching(**kwargs)


def test_seed_must_be_a_non_negative_integer():
    with pytest.raises(TypeError, match="seed must be an integer, got True"):
        CuedTaskSwitching(seed=True)
    with pytest.raises(ValueError, match=r"seed=-1 is outside the valid range \[0, inf\]"):
        CuedTaskSwitching(seed=-1)


def test_trial_table_copies_are_independent():
    task = CuedTaskSwitching(n_trials=5, seed=0)
    table = task.trials()
    table["feature_a"].values[:] = 0.0
    assert (task.trials()["feature_a"].values != 0.0).all()


def test_dt_too_coarse():
    task = CuedTaskSwitching(n_trials=2, csi_ms=(50.0,), seed=0)
    with pytest.raises(ValueError, match=r"dt_ms=60\.0 is longer than the shortest task period \(50\.0 ms\)"):
        task.inputs(60.0)
