"""Tests of run_sessions: one closed-loop task-switching trial table on the SE, rate and spiking families.

The sessions run in closed loop: each family's responses end its stimuli, so each family has its own time
axis and its stimulus onsets must be the task's timeline of its own reaction times
(:meth:`CuedTaskSwitching.timeline`). The modulator is checked against the exact first-order relaxation
``m(t2) - u = (m(t1) - u) exp(-(t2 - t1) / tau)`` toward the release ``u`` in force: the cued context's row
while a cue is on, the mean of the two rows (no task cued) during the response-cue interval.

References for the behavioural predictions: with instantaneous modulation nothing carries over between
trials, so switch and repeat trials see exactly the same gains during the stimulus (checked as an identity,
not as an interval that contains 0); with a modulator time constant of 300 ms the gains are still set for
the previous task shortly after a switch cue, so switch trials are slower and the cost shrinks as the
cue-stimulus interval grows (Meiran 1996; Monsell 2003), and the still-amplified irrelevant feature makes
incongruent stimuli error-prone right after a switch.
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
from neuromod.protocols.families.rate import RateConfig
from neuromod.protocols.families.se import SEConfig, SEFamily
from neuromod.protocols.families.spiking import SpikingConfig, SpikingFamily
from neuromod.protocols.se_task import train_se_task_model
from neuromod.protocols.sessions import DEFAULT_RELEASE, task_json
from neuromod.tasks import CuedTaskSwitching

RATE_TASK = {"n_trials": 2000, "csi_ms": (100.0, 1000.0), "max_rt_ms": 1000.0, "rci_ms": 100.0}
#: the modulator time constant of the SE model and of the sessions that run it
TAU = 100.0
#: a release pattern whose no-cue level (the mean of the rows) differs between populations
RELEASE = np.array([[1.0, 0.8, 0.1, 0.2], [0.2, 0.1, 0.9, 1.0]])


@pytest.fixture(scope="module")
def se_model():
    """A quick SE model trained at TAU (the SE family runs only at the tau it was trained at)."""
    from neuromod.gating.task_model import SETaskModelConfig

    model, _ = train_se_task_model(SETaskModelConfig(tau_ms=TAU), quick=True, progress=False, seed=0)
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
def full_task() -> CuedTaskSwitching:
    return CuedTaskSwitching(
        n_trials=24, coherences_pct=(25.6, 51.2), csi_ms=(100.0, 300.0), max_rt_ms=500.0, rci_ms=200.0, seed=3
    )


@pytest.fixture(scope="module")
def spiking_config() -> SpikingConfig:
    """A spiking network that answers these stimuli well inside the 500 ms window (mean RT about 280 ms):
    weaker sensory input than the family's defaults (which answer in about 100 ms, near chance here) and
    efficacy below 1 at low release, as the task-switching experiment runs it. Fixed here, not read from the
    experiment's calibration, so a recalibration does not move this test's network."""
    return SpikingConfig(sens_in_hz=1250.0, gain_min=0.25, dt_ms=0.2)


@pytest.fixture(scope="module")
def full_tree(se_model, full_task, spiking_config) -> xr.DataTree:
    """All three models on one small session with two CSIs (spiking: few trials, short windows): an SE
    instance, the rate family by name, a spiking instance with its own config."""
    return run_sessions(
        full_task,
        [SEFamily.from_model(se_model), "rate", SpikingFamily(spiking_config)],
        seed=2,
        tau_ms=TAU,
        release=RELEASE,
        decimate_ms=10.0,
    )


def _response_ms(group: xr.Dataset, max_rt_ms: float) -> np.ndarray:
    """Each trial's response (or deadline) on the family's own time axis."""
    rt = group["rt"].values
    return group["stim_onset_ms"].values + np.where(np.isnan(rt), max_rt_ms, rt)


def _check_relaxation(
    mod: xr.DataArray, start: float, end: float, target: np.ndarray, tau: float, atol: float
):
    """Between two samples strictly inside (start, end) the modulator relaxes toward `target` with `tau`."""
    t = mod["time"].values
    step = float(t[1] - t[0])
    inside = np.flatnonzero((t > start + step) & (t < end - step))
    assert inside.size >= 2, (start, end)
    i, j = inside[0], inside[-1]
    m1, m2 = mod.values[i], mod.values[j]
    expected = target + (m1 - target) * np.exp(-(t[j] - t[i]) / tau)
    np.testing.assert_allclose(m2, expected, rtol=0, atol=atol)
    assert np.any(np.abs(m1 - target) > 10 * atol)  # the check has something to see: m was not there yet


# ------------------------------------------------------------------------------------------- closed loop
def test_stimulus_onsets_are_the_timeline_of_each_familys_own_responses(full_tree, full_task):
    onsets = {}
    for name in ("se", "rate", "spiking"):
        group = full_tree[name].to_dataset(inherit=False)
        times = full_task.timeline(group["rt"].values)
        np.testing.assert_allclose(group["stim_onset_ms"].values, times["stim_onset_ms"].values, atol=1e-6)
        assert group["stim_onset_ms"].attrs["units"] == "ms"
        # the family's time axis covers its own session, which ends at its last response
        end = float(times["response_ms"][-1])
        assert float(group["time"].max()) <= end + 1e-9 and float(group["time"].max()) > end - 50.0
        onsets[name] = group["stim_onset_ms"].values
    # the first stimulus comes at rci + csi for every family; later ones depend on each family's RTs
    first = full_task.timing["rci_ms"] + float(full_task.trials()["csi_ms"][0])
    assert all(float(v[0]) == pytest.approx(first) for v in onsets.values())
    assert not np.array_equal(onsets["rate"], onsets["spiking"])


def test_rate_modulator_relaxes_toward_the_no_cue_level_during_the_rci():
    task = CuedTaskSwitching(n_trials=6, csi_ms=(600.0,), max_rt_ms=1000.0, rci_ms=600.0, seed=1)
    tree = run_sessions(task, ["rate"], tau_ms=300.0, seed=0, decimate_ms=5.0, release=RELEASE)
    group = tree["rate"].to_dataset(inherit=False)
    mod = group["modulator"].transpose("time", "population")
    off = RELEASE.mean(axis=0)  # no task cued: the mean of the two contexts' rows
    response = _response_ms(group, task.timing["max_rt_ms"])
    cue = group["stim_onset_ms"].values - task.trials()["csi_ms"].values
    context = task.trials()["context"].values
    for k in range(1, task.n_trials):  # the RCI before trial k: from the last response to cue k
        _check_relaxation(mod, response[k - 1], cue[k], off, 300.0, atol=5e-3)
    for k in range(task.n_trials):  # while cue k is on, until the response: toward its context's row
        _check_relaxation(mod, cue[k], response[k], RELEASE[context[k]], 300.0, atol=5e-3)
    # the session starts at the no-cue level
    np.testing.assert_allclose(mod.isel(time=0).values, off, atol=1e-12)
    gain = group["gain"].transpose("time", "population")  # input gain g(m) = m with the default settings
    np.testing.assert_allclose(gain.values, mod.values, atol=1e-12)


def test_spiking_modulator_follows_the_cue_and_the_rci(full_tree, full_task):
    group = full_tree["spiking"].to_dataset(inherit=False)
    mod = group["modulator"].transpose("time", "population")
    table = full_task.trials()
    response = _response_ms(group, full_task.timing["max_rt_ms"])
    cue = group["stim_onset_ms"].values - table["csi_ms"].values
    switches = np.flatnonzero(table["is_switch"].values)
    assert switches.size >= 3
    for k in switches[:3]:  # after a switch cue: toward the new context's row
        _check_relaxation(mod, cue[k], response[k], RELEASE[int(table["context"][k])], TAU, atol=0.02)
    for k in range(1, 4):  # the RCI: toward the no-cue level
        _check_relaxation(mod, response[k - 1], cue[k], RELEASE.mean(axis=0), TAU, atol=0.02)
    assert group.attrs["tau_ms"] == TAU


# ---------------------------------------------------------------------------------------------- rate model
def test_rate_instantaneous_modulation_gives_switch_and_repeat_trials_identical_gains(rate_instant):
    """With tau = 0 nothing carries over: during every stimulus the gains are exactly those of the trial's
    own context, so a switch trial and a repeat trial of the same context see identical gains."""
    table = rate_instant.to_dataset(inherit=False)
    group = rate_instant["rate"].to_dataset(inherit=False)
    gain = group["gain"].transpose("time", "population")
    release = np.asarray(DEFAULT_RELEASE)
    t = gain["time"].values
    onset, response = group["stim_onset_ms"].values, _response_ms(group, RATE_TASK["max_rt_ms"])
    seen = {0: set(), 1: set()}
    for k in range(1, table.sizes["trial"]):
        on = (t >= onset[k]) & (t < response[k])
        if not on.any():
            continue
        ctx = int(table["context"][k])
        np.testing.assert_array_equal(gain.values[on], np.broadcast_to(release[ctx], (on.sum(), 4)))
        seen[int(table["is_switch"][k])].add(ctx)
    assert seen[0] == seen[1] == {0, 1}  # both kinds of trial, in both contexts, were compared
    # the model is good at the task: > 85 % correct overall with the default release pattern
    assert float(group["correct"].mean()) > 0.85


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


# ------------------------------------------------------------------------------------------------ spiking
def test_spiking_above_chance_in_both_contexts(full_tree):
    table = full_tree.to_dataset()
    correct = full_tree["spiking"]["correct"].values
    for context in (0, 1):
        sel = table["context"].values == context
        k, n = int(correct[sel].sum()), int(sel.sum())
        p = stats.binomtest(k, n, 0.5, alternative="greater").pvalue
        assert p < 0.05, f"context {context}: {k}/{n} correct (p = {p:.3g})"


# ----------------------------------------------------------------------------------------- tau per family
def test_tau_reaches_every_model(se_model):
    task = CuedTaskSwitching(n_trials=6, csi_ms=(300.0,), max_rt_ms=800.0, seed=1)
    tree = run_sessions(task, [SEFamily.from_model(se_model), "rate"], tau_ms=TAU, seed=0)
    assert tree["se"].attrs["tau_ms"] == TAU
    assert tree["rate"].attrs["tau_ms"] == TAU
    assert json.loads(tree["rate"].attrs["sensory_json"])["tau_ms"] == TAU
    assert json.loads(tree["se"].attrs["se_model_json"])["tau_ms"] == TAU


def test_a_family_named_is_built_at_the_runs_tau(monkeypatch):
    import neuromod.protocols.se_task as se_task

    class Stop(Exception):
        pass

    built = []

    def fake_training(config, **kwargs):
        built.append(config.tau_ms)
        raise Stop

    monkeypatch.setattr(se_task, "train_se_task_model", fake_training)
    task = CuedTaskSwitching(n_trials=4, csi_ms=(300.0,), max_rt_ms=800.0, seed=1)
    with pytest.raises(Stop):
        run_sessions(task, ["se"], tau_ms=250.0, seed=0)
    with pytest.raises(Stop):  # also the family that only provides the release pattern
        run_sessions(task, ["rate"], tau_ms=150.0, seed=0, release="se")
    assert built == [250.0, 150.0]
    with pytest.raises(ValueError, match=r"tau_ms=0\.0: the 'se' family is built at the run's tau_ms"):
        run_sessions(task, ["se"], tau_ms=0.0, seed=0)


def test_an_instance_built_at_another_tau_is_refused_before_any_work(se_model, monkeypatch):
    import neuromod.protocols.se_task as se_task
    from neuromod.protocols.families.rate import RateFamily

    monkeypatch.setattr(RateFamily, "run_trials", lambda *a, **k: pytest.fail("a session ran"))
    monkeypatch.setattr(se_task, "train_se_task_model", lambda *a, **k: pytest.fail("trained"))
    task = CuedTaskSwitching(n_trials=4, csi_ms=(300.0,), max_rt_ms=800.0, seed=1)
    # a trained model: the time constant it was trained at
    with pytest.raises(
        ValueError, match=r"'se' family was built at tau_ms=100\.0, but this run's tau_ms=50\.0"
    ):
        run_sessions(task, ["rate", SEFamily.from_model(se_model)], tau_ms=50.0, seed=0)
    # an untrained instance: the time constant its config would train it at
    with pytest.raises(
        ValueError, match=r"built at tau_ms=400\.0, but this run's tau_ms=50\.0.*config\.replace"
    ):
        run_sessions(task, ["rate", SEFamily(SEConfig())], tau_ms=50.0, seed=0)
    assert se_model.config.tau_ms == TAU  # the passed model is not modified


# ---------------------------------------------------------------------------------------------- schema
def test_tree_schema_all_models(full_tree, full_task, spiking_config):
    assert set(full_tree.children) == {"se", "rate", "spiking"}
    table = full_tree.to_dataset()
    for name in (
        "context",
        "cue",
        "feature_a",
        "feature_b",
        "csi_ms",
        "rci_ms",
        "is_switch",
        "is_cue_switch",
        "is_congruent",
        "correct_choice",
    ):
        assert table[name].dims == ("trial",)
    assert json.loads(full_tree.attrs["task_json"]) == json.loads(results.to_json(task_json(full_task)))
    rebuilt = CuedTaskSwitching(**task_json(full_task))  # task_json is enough to rebuild the task
    assert rebuilt.trials().equals(full_task.trials())
    config = json.loads(full_tree.attrs["config_json"])
    assert config["task"]["n_trials"] == 24 and config["task"]["csi_ms"] == [100.0, 300.0]
    assert config["task"]["rci_ms"] == 200.0 and config["tau_ms"] == TAU
    assert config["models"] == ["se", "rate", "spiking"]
    assert config["spiking"] == spiking_config.to_dict() and config["se"] == SEConfig().to_dict()
    assert config["rate"] == RateConfig().to_dict()  # by name: the family's own defaults
    np.testing.assert_array_equal(config["release"], RELEASE)
    n = table.sizes["trial"]
    for model in ("se", "rate", "spiking"):
        ds = full_tree[model].to_dataset(inherit=False)
        for name in ("choice", "correct", "rt", "stim_onset_ms"):
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
    assert "release" not in se  # the SE model gates by itself
    for model in ("rate", "spiking"):
        np.testing.assert_array_equal(full_tree[model]["release"].values, RELEASE)
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
        task = CuedTaskSwitching(n_trials=20, csi_ms=(100.0, 600.0), max_rt_ms=800.0, seed=4)
        return run_sessions(task, [SEFamily.from_model(se_model), "rate"], seed=seed, tau_ms=TAU)

    a, b, c = run(1), run(1), run(2)
    xr.testing.assert_identical(results.without_timestamps(a), results.without_timestamps(b))
    assert not np.array_equal(a["rate"]["rt"].values, c["rate"]["rt"].values, equal_nan=True)
    # closed loop: other responses, another timeline
    assert not np.array_equal(a["rate"]["stim_onset_ms"].values, c["rate"]["stim_onset_ms"].values)


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
        ({"families": ["rate", 3]}, TypeError, "family names or ModelFamily instances, got 3"),
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
