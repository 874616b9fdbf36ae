"""Tests of run_sessions: one task-switching trial table on the SE, rate and spiking families.

References for the behavioural predictions: with instantaneous modulation nothing carries over between
trials (the decision state is reset at each stimulus onset), so switch and repeat trials see exactly the
same gains (checked as an identity, not as an interval that contains 0); with a modulator time constant of
300 ms the gains are still set for the previous task shortly after a switch cue, so switch trials are slower
and the cost shrinks as the cue-stimulus interval grows (Meiran 1996; Monsell 2003), and the still-amplified
irrelevant feature makes incongruent stimuli error-prone right after a switch. The modulator after a cue is
checked against the exact first-order relaxation ``m(t) = u + (m0 - u) exp(-t / tau)``.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr
from scipy import stats

from neuromod import results
from neuromod.measures import congruency_effect, switch_cost
from neuromod.protocols import run_sessions
from neuromod.protocols.families.se import SEConfig, SEFamily
from neuromod.protocols.families.spiking import SpikingConfig, SpikingFamily
from neuromod.protocols.se_task import train_se_task_model
from neuromod.protocols.sessions import DEFAULT_RELEASE
from neuromod.tasks import CuedTaskSwitching

RATE_TASK = {"n_trials": 2000, "csi_ms": (100.0, 1000.0), "max_rt_ms": 1000.0, "rsi_ms": 300.0}


@pytest.fixture(scope="module")
def se_model():
    model, _ = train_se_task_model(quick=True, progress=False, seed=0)
    return model


@pytest.fixture(scope="module")
def rate_instant() -> xr.DataTree:
    return run_sessions(
        CuedTaskSwitching(**RATE_TASK, seed=102), ["rate"], tau_ms=0.0, seed=2, decimate_ms=10.0
    )


@pytest.fixture(scope="module")
def rate_slow() -> xr.DataTree:
    return run_sessions(CuedTaskSwitching(**RATE_TASK, seed=102), ["rate"], tau_ms=300.0, seed=2)


@pytest.fixture(scope="module")
def full_tree(se_model) -> xr.DataTree:
    """All three models on one small session with two CSIs (spiking: few trials, short windows)."""
    task = CuedTaskSwitching(
        n_trials=24, coherences_pct=(25.6, 51.2), csi_ms=(100.0, 300.0), max_rt_ms=500.0, rsi_ms=200.0, seed=3
    )
    return run_sessions(
        task,
        [SEFamily.from_model(se_model), "rate", "spiking"],
        seed=2,
        tau_ms=100.0,
        release=((1.0, 1.0, 0.0, 0.0), (0.0, 0.0, 1.0, 1.0)),
    )


# ---------------------------------------------------------------------------------------------- rate model
def test_rate_instantaneous_modulation_gives_switch_and_repeat_trials_identical_gains(rate_instant):
    """With tau = 0 nothing carries over: during every stimulus the gains are exactly those of the trial's
    own context, so a switch trial and a repeat trial of the same context see identical gains."""
    table = rate_instant.to_dataset(inherit=False)
    gain = rate_instant["rate"]["gain"]
    release = np.asarray(DEFAULT_RELEASE)
    t = gain["time"].values
    seen = {0: set(), 1: set()}
    for k in range(1, table.sizes["trial"]):
        on = (t >= float(table["stim_onset_ms"][k])) & (t < float(table["stim_offset_ms"][k]))
        ctx = int(table["context"][k])
        np.testing.assert_array_equal(gain.values[on], np.broadcast_to(release[ctx], (on.sum(), 4)))
        seen[int(table["is_switch"][k])].add(ctx)
    assert seen[0] == seen[1] == {0, 1}  # both kinds of trial, in both contexts, were compared
    # the model is good at the task: > 85 % correct overall with the default release pattern
    assert float(rate_instant["rate"]["correct"].mean()) > 0.85


def test_rate_slow_modulation_switch_cost_falls_with_csi(rate_slow):
    cost = switch_cost(rate_slow, model="rate")
    short, long = cost.sel(csi=100.0), cost.sel(csi=1000.0)
    assert float(short["rt_cost_low"]) > 0.0, short["rt_cost"].values
    assert float(long["rt_cost"]) < float(short["rt_cost"])
    # the fall is clear: the intervals do not overlap
    assert float(long["rt_cost_high"]) < float(short["rt_cost_low"])
    assert float(short["error_cost_low"]) > 0.0


def test_rate_incongruent_less_accurate_after_switch(rate_slow):
    effect = congruency_effect(rate_slow, model="rate").sel(switch=1)
    assert float(effect["error_effect_low"]) > 0.0, effect["error_effect"].values


def test_rate_modulator_relaxes_exponentially_after_a_cue():
    task = CuedTaskSwitching(n_trials=4, csi_ms=(600.0,), max_rt_ms=1000.0, rsi_ms=300.0, seed=1)
    tree = run_sessions(task, ["rate"], tau_ms=300.0, seed=0, decimate_ms=100.0)
    table = tree.to_dataset()
    k = int(np.flatnonzero(table["is_switch"].values)[0])
    cue = float(table["cue_onset_ms"][k])
    u = np.asarray(DEFAULT_RELEASE)[int(table["context"][k])]
    m0 = np.asarray(DEFAULT_RELEASE)[int(table["context"][k - 1])]
    mod = tree["rate"]["modulator"]
    for dt in (100.0, 300.0, 500.0):
        expected = u + (m0 - u) * np.exp(-dt / 300.0)
        np.testing.assert_allclose(mod.sel(time=cue + dt).values, expected, rtol=0, atol=5e-3)
    gain = tree["rate"]["gain"]  # input gain g(m) = m with the default rate settings
    np.testing.assert_allclose(gain.values, mod.values, atol=1e-12)


# ------------------------------------------------------------------------------------------------ spiking
def test_spiking_above_chance_in_both_contexts(full_tree):
    table = full_tree.to_dataset()
    correct = full_tree["spiking"]["correct"].values
    for context in (0, 1):
        sel = table["context"].values == context
        k, n = int(correct[sel].sum()), int(sel.sum())
        p = stats.binomtest(k, n, 0.5, alternative="greater").pvalue
        assert p < 0.05, f"context {context}: {k}/{n} correct (p = {p:.3g})"


def test_spiking_modulator_trace_is_on_the_task_time_axis(full_tree):
    """After a switch cue the spiking modulator relaxes as u + (m0 - u) exp(-t / tau) from the cue onset."""
    table = full_tree.to_dataset()
    mod = full_tree["spiking"]["modulator"]
    release = np.array([[1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 1.0]])
    switches = np.flatnonzero(table["is_switch"].values)
    assert switches.size > 0
    for k in switches[:3]:
        cue = float(table["cue_onset_ms"][k])
        u, m0 = release[int(table["context"][k])], release[int(table["context"][k - 1])]
        np.testing.assert_allclose(mod.sel(time=cue).values, m0, atol=0.02)
        expected = u + (m0 - u) * np.exp(-100.0 / 100.0)
        np.testing.assert_allclose(mod.sel(time=cue + 100.0).values, expected, atol=0.02)
    assert full_tree["spiking"].attrs["tau_ms"] == 100.0


def test_tau_reaches_every_model(se_model):
    task = CuedTaskSwitching(n_trials=6, csi_ms=(300.0,), max_rt_ms=800.0, seed=1)
    tree = run_sessions(task, [SEFamily.from_model(se_model), "rate"], tau_ms=50.0, seed=0)
    assert tree["se"].attrs["tau_ms"] == 50.0
    assert tree["rate"].attrs["tau_ms"] == 50.0
    assert json.loads(tree["rate"].attrs["sensory_json"])["tau_ms"] == 50.0
    assert se_model.config.tau_ms == 200.0  # the passed model is not modified


# ---------------------------------------------------------------------------------------------- schema
def test_tree_schema_all_models(full_tree):
    assert set(full_tree.children) == {"se", "rate", "spiking"}
    table = full_tree.to_dataset()
    for name in (
        "context",
        "feature_a",
        "feature_b",
        "csi_ms",
        "is_switch",
        "is_congruent",
        "correct_choice",
    ):
        assert table[name].dims == ("trial",)
    config = json.loads(full_tree.attrs["config_json"])
    assert config["task"]["n_trials"] == 24 and config["task"]["csi_ms"] == [100.0, 300.0]
    assert config["models"] == ["se", "rate", "spiking"]
    assert config["spiking"] == SpikingConfig().to_dict() and config["se"] == SEConfig().to_dict()
    n = table.sizes["trial"]
    for model in ("se", "rate", "spiking"):
        ds = full_tree[model].to_dataset(inherit=False)
        for name in ("choice", "correct", "rt"):
            assert ds[name].dims == ("trial",) and ds.sizes["trial"] == n, (model, name)
        assert set(np.unique(ds["choice"].values)) <= {0, 1, 2}
        np.testing.assert_array_equal(
            ds["correct"].values, (ds["choice"].values == table["correct_choice"].values).astype(np.int8)
        )
        rt = ds["rt"].values
        assert np.all(np.isnan(rt) == (ds["choice"].values == 0))
        assert np.all(rt[np.isfinite(rt)] > 0) and np.all(rt[np.isfinite(rt)] <= 500.0)
        assert ds["gain"].dims == ("time", "population"), model
        assert ds["rt"].attrs["units"] == "ms" and ds["time"].attrs["units"] == "ms"
        assert ds.attrs["model"] == model
    se = full_tree["se"].to_dataset(inherit=False)
    assert se["channel_gain"].dims == ("time", "channel")
    assert se["channel_population"].dims == ("channel",)
    for model in ("rate", "spiking"):
        np.testing.assert_array_equal(
            full_tree[model]["release"].values, [[1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 1.0]]
        )
    results.validate(full_tree)


def test_netcdf_round_trip(full_tree, tmp_path):
    path = results.save(full_tree, tmp_path / "switching.nc")
    back = results.load(path)
    assert isinstance(back, xr.DataTree)
    xr.testing.assert_identical(back.to_dataset(), full_tree.to_dataset())
    for model in ("se", "rate", "spiking"):
        xr.testing.assert_equal(
            back[model].to_dataset(inherit=False), full_tree[model].to_dataset(inherit=False)
        )


def test_same_seed_identical_other_seed_differs(se_model):
    def run(seed: int) -> xr.DataTree:
        task = CuedTaskSwitching(n_trials=40, csi_ms=(100.0, 600.0), max_rt_ms=800.0, seed=4)
        return run_sessions(task, [SEFamily.from_model(se_model), "rate"], seed=seed)

    a, b, c = run(1), run(1), run(2)
    xr.testing.assert_identical(results.without_timestamps(a), results.without_timestamps(b))
    assert not np.array_equal(a["rate"]["rt"].values, c["rate"]["rt"].values, equal_nan=True)


def test_release_from_se_model(se_model):
    task = CuedTaskSwitching(n_trials=10, csi_ms=(300.0,), max_rt_ms=800.0, seed=1)
    tree = run_sessions(task, ["rate"], seed=0, release=SEFamily.from_model(se_model))  # not run itself
    rel = tree["rate"]["release"]
    assert float(rel.max()) == pytest.approx(1.0, abs=1e-12) and float(rel.min()) >= 0.0
    mapping = json.loads(tree.attrs["release_mapping_json"])
    assert mapping["source"] == "se"
    np.testing.assert_allclose(mapping["release"], rel.values, atol=1e-12)
    assert "population_gains" in tree.attrs["release_mapping"]
    assert list(tree.children) == ["rate"]  # the SE family provides the pattern, it does not run
    from neuromod.protocols.families.se import se_release

    np.testing.assert_array_equal(rel.values, se_release(se_model, coherences_pct=task.coherences_pct).values)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"families": ["rate", "spike"]}, KeyError, "unknown model family 'spike'"),
        ({"families": ["rate", "rate"]}, ValueError, "at most once"),
        ({"families": "rate"}, TypeError, "sequence of family names or instances"),
        ({"families": []}, ValueError, "families is empty"),
        ({"tau_ms": -1.0}, ValueError, r"tau_ms=-1\.0"),
        ({"release": ((1.0, 0.0), (0.0, 1.0))}, ValueError, r"release has shape \(2, 2\)"),
        ({"release": ((1.0, 1.0, 2.0, 0.0), (0.0, 0.0, 1.0, 1.0))}, ValueError, "release"),
        ({"release": "pattern"}, KeyError, "unknown model family 'pattern'"),
        ({"release": "rate"}, ValueError, "names no prepared family that provides a release pattern"),
        ({"seed": -3}, ValueError, "seed=-3"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    task = CuedTaskSwitching(n_trials=4, seed=0)
    with pytest.raises(error, match=match):
        run_sessions(task, **{"families": ["rate"], **kwargs})


def test_bad_task_and_family_instances():
    with pytest.raises(TypeError, match="task must be a CuedTaskSwitching"):
        run_sessions("task", ["rate"])
    with pytest.raises(TypeError, match=r"the config of family 'spiking' must be a SpikingConfig"):
        SpikingFamily(SEConfig())
    with pytest.raises(TypeError, match=r"model must be an SETaskModel, got object"):
        SEFamily.from_model(object())
    # a task off the spiking schedule's 1 ms grid is refused before anything runs
    with pytest.raises(ValueError, match=r"csi_ms=\(100.5,\) must be whole numbers of ms"):
        run_sessions(CuedTaskSwitching(n_trials=4, csi_ms=(100.5,), seed=0), ["rate", "spiking"])
