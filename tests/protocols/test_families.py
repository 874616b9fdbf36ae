"""The model-family interface: the registry, a contract every family passes, and a family that exists only in
this test running through every experiment with no change to protocol code.

The test family is an analytic toy, so what the experiments measure on it is known exactly:

* its f-I curve is ``(1 + k m) * max(d - 0.5, 0)`` plus Gaussian noise of sd ``noise_sd``: response gain
  ``1 + k m`` and threshold 0.5 (relative drive) at modulator level ``m``, so the gain-curves experiment
  must find the gain ratio ``1 + k`` at level 1 and call it multiplicative;
* its choice on a task-switching trial is the sign of ``g_rel f_rel + g_irr f_irr`` (the gain of a feature is
  the release of its populations in the trial's context) and its RT ``300 ms / (0.5 + |evidence|)``; like
  every family it runs the session in closed loop, so its stimulus onsets are the task's timeline of those
  RTs and its gain is the cued context's release from each cue to the response, the mean of the two
  contexts' releases (no cue) in between;
* its psychometric choice is the sign of the coherence plus logistic noise.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import xarray as xr

from neuromod import results
from neuromod.config import Config, ConfigError, param
from neuromod.protocols import (
    FamilyBase,
    create_family,
    family_names,
    get_family,
    register_family,
    run_decision,
    run_gain_curves,
    run_sessions,
    run_task_switching,
    unregister_family,
)
from neuromod.protocols import decision as decision_mod
from neuromod.protocols import gain_curves as gain_mod
from neuromod.protocols import task_switching as switching_mod
from neuromod.protocols.family import OPERATIONS, supports
from neuromod.results import var_attrs
from neuromod.tasks import POPULATIONS, CuedTaskSwitching

BUILTIN = ("se", "rate", "spiking")


# ------------------------------------------------------------------------------------------ the test family
@dataclasses.dataclass(frozen=True)
class ToyConfig(Config):
    """Settings of the toy family."""

    gain_per_level: float = param(1.0, low=0.0, doc="response gain added per unit modulator level")
    noise_sd: float = param(0.02, low=0.0, doc="sd of the response noise")


class ToyFamily(FamilyBase):
    """An analytic family (module docstring) implementing every operation."""

    name = "toy"
    config_cls = ToyConfig
    description = "analytic toy family (tests only)"
    uses_release = True
    config: ToyConfig

    def run_trials(self, task, *, release, tau_ms, decimate_ms, seed, progress=False):
        table = task.trials()
        ctx = table["context"].values.astype(int)
        fa, fb = table["feature_a"].values / 100.0, table["feature_b"].values / 100.0
        g = release[ctx]  # (trial, population): instantaneous in this toy, whatever tau_ms
        rel = np.where(ctx == 0, fa * g[:, 0], fb * g[:, 2])
        irr = np.where(ctx == 0, fb * g[:, 2], fa * g[:, 0])
        evidence = rel + irr
        choice = np.where(evidence >= 0, 1, 2).astype(np.int8)
        rt = np.minimum(300.0 / (0.5 + np.abs(evidence)), task.timing["max_rt_ms"])
        events = task.timeline(rt)  # closed loop: the responses set the session's time axis
        cue, end = events["cue_onset_ms"].values, events["response_ms"].values
        times = np.arange(0.0, float(end[-1]), decimate_ms)
        trial_of = np.searchsorted(end, times, side="right")  # the trial whose slot holds each time
        cued = times >= cue[np.minimum(trial_of, len(cue) - 1)]
        gain = np.where(cued[:, None], release[ctx[np.minimum(trial_of, len(cue) - 1)]], release.mean(axis=0))
        return xr.Dataset(
            {
                "choice": ("trial", choice, var_attrs("1", "choice")),
                "rt": ("trial", rt, var_attrs("ms", "reaction time from stimulus onset")),
                "stim_onset_ms": ("trial", events["stim_onset_ms"].values, var_attrs("ms", "stimulus onset")),
                "gain": (("time", "population"), gain, var_attrs("1", "gain")),
            },
            coords={
                "trial": ("trial", table["trial"].values, var_attrs("1", "trial index")),
                "time": ("time", times, var_attrs("ms", "time in the session")),
                "population": ("population", list(POPULATIONS), var_attrs("1", "sensory population")),
            },
        )

    def _curve(self, drives, levels, n_repeats, seed):
        rng = np.random.default_rng(seed)
        clean = (1 + self.config.gain_per_level * levels[:, None]) * np.maximum(drives[None, :] - 0.5, 0)
        noise = self.config.noise_sd * rng.standard_normal((len(levels), len(drives), n_repeats))
        return clean[..., None] + noise

    def fi_curves(self, *, drives, levels, n_repeats, seed, progress=False):
        response = self._curve(np.asarray(drives), np.asarray(levels), n_repeats, seed)[None]
        return _gain_dataset(response, ["linear"], levels, drives)

    def cue_gain_curves(self, *, release, drives, n_repeats, seed, progress=False):
        own = np.array([0, 0, 1, 1])
        m = np.stack([release[own, range(4)], release[1 - own, range(4)]], axis=1)  # (population, level)
        rng = np.random.default_rng(seed)
        response = np.stack([self._curve(np.asarray(drives), row, n_repeats, rng) for row in m])
        return _gain_dataset(response, list(POPULATIONS), np.array([0.0, 1.0]), drives)

    def decision(self, coherences_pct, *, n_trials, max_rt_ms, seed, progress=False):
        rng = np.random.default_rng(seed)
        c = np.asarray(coherences_pct)[:, None] / 100.0
        evidence = 10 * c + rng.logistic(size=(c.size, n_trials))
        choice = np.where(evidence >= 0, 1, 2)
        rt = np.minimum(300.0 / (0.5 + np.abs(evidence)), max_rt_ms)
        dims = ("coherence", "trial")
        return xr.Dataset(
            {
                "choice": (dims, choice, var_attrs("1", "choice")),
                "rt": (dims, rt, var_attrs("ms", "reaction time")),
            },
            coords={
                "coherence": ("coherence", np.asarray(coherences_pct, float), var_attrs("%", "coherence")),
                "trial": ("trial", np.arange(n_trials), var_attrs("1", "trial")),
            },
        )

    def gain_profile(self, release, coherences_pct=()):
        return 1.0 + self.config.gain_per_level * np.asarray(release)


def _gain_dataset(response, conditions, levels, drives):
    dims = ("condition", "level", "drive", "repeat")
    return xr.Dataset(
        {"response": (dims, response, var_attrs("1", "response"))},
        coords={
            "condition": ("condition", conditions, var_attrs("1", "condition")),
            "level": ("level", np.asarray(levels, float), var_attrs("1", "modulator level")),
            "drive": ("drive", np.asarray(drives, float), var_attrs("1", "relative drive")),
            "repeat": ("repeat", np.arange(response.shape[-1]), var_attrs("1", "repeat")),
        },
    )


@pytest.fixture
def toy():
    """The toy family, registered for one test only."""
    register_family(ToyFamily)
    yield ToyFamily
    unregister_family("toy")


# ---------------------------------------------------------------------------- the test family, end to end
def test_a_new_family_runs_through_every_experiment(toy):
    """Registered at run time, configured by its own TOML table, measured exactly by all three experiments."""
    data = {"models": ["toy"], "toy": {"gain_per_level": 2.0, "noise_sd": 0.01}, "seed": 4}

    gc = run_gain_curves(gain_mod.GainCurvesConfig.from_dict({**data, "n_repeats": 4}))
    curves = gc["toy"].to_dataset()
    assert curves["modulation_class"].sel(level=1.0).item() == "multiplicative"
    # response gain 1 + 2 m: the ratio at m = 1 is 3, within 3 standard errors of the fit
    ratio = curves.sel(condition="linear", level=1.0)
    assert abs(float(ratio["gain_ratio"]) - 3.0) < 3 * float(ratio["gain_ratio_se"]) + 1e-9
    assert json.loads(gc.attrs["config_json"])["toy"] == {"gain_per_level": 2.0, "noise_sd": 0.01}

    ts = run_task_switching(
        switching_mod.TaskSwitchingConfig.from_dict({**data, "release": "default", "n_trials": 40})
    )
    table = ts.to_dataset(inherit=False)
    expected = np.where(  # the toy's choice rule (module docstring) under the default release
        np.where(
            table["context"] == 0,
            table["feature_a"] * 1.0 + table["feature_b"] * 0.1,
            table["feature_b"] * 1.0 + table["feature_a"] * 0.1,
        )
        >= 0,
        1,
        2,
    )
    np.testing.assert_array_equal(ts["toy"]["choice"].values, expected)
    # closed loop: its stimulus onsets are the timeline of its own RTs (the toy's rule: no deadline reached)
    task = switching_mod.TaskSwitchingConfig.from_dict(ts.nm.config).task(seed=int(table.attrs["task_seed"]))
    np.testing.assert_allclose(
        ts["toy"]["stim_onset_ms"].values, task.timeline(ts["toy"]["rt"].values)["stim_onset_ms"].values
    )
    np.testing.assert_array_equal(
        ts["summary"]["gain_profile"].sel(model="toy").values,
        1.0 + 2.0 * ts["summary"]["release"].sel(model="toy").values,
    )
    assert ts["toy/gain_curves"]["response"].dims == ("condition", "level", "drive", "repeat")
    results.validate(ts)

    dec = run_decision(decision_mod.DecisionConfig.from_dict({**data, "n_trials": {"toy": 300}}))
    acc = dec["summary"]["accuracy"].sel(model="toy")
    assert float(acc.sel(coherence=51.2)) > float(acc.sel(coherence=0.0))
    assert dec["toy"].sizes["trial"] == 300
    results.validate(dec)


def test_run_sessions_mixes_names_and_instances(toy):
    task = CuedTaskSwitching(n_trials=12, csi_ms=(200.0,), max_rt_ms=600.0, seed=2)
    tree = run_sessions(task, ["rate", toy(ToyConfig(gain_per_level=0.5))], seed=1, tau_ms=0.0)
    assert sorted(tree.children) == ["rate", "toy"]
    assert json.loads(tree.attrs["config_json"])["toy"]["gain_per_level"] == 0.5


def test_a_family_without_an_operation_is_refused_before_any_work(toy):
    @register_family(replace=True)
    class NoDecision(ToyFamily):
        name = "toy"
        decision = FamilyBase.decision  # the stub that raises: unsupported

    assert not supports(NoDecision, "decision") and supports(NoDecision, "fi_curves")
    with pytest.raises(ConfigError, match=r"models contains 'toy', which does not support \['decision'\]"):
        decision_mod.DecisionConfig(models=("toy",))
    with pytest.raises(NotImplementedError, match="does not support 'decision'"):
        NoDecision().decision(np.array([0.0]), n_trials=1, max_rt_ms=1.0, seed=None)


# ------------------------------------------------------------------------------------------- the registry
def test_registry_knows_the_builtin_families_in_order():
    assert family_names()[:3] == list(BUILTIN)
    for name in BUILTIN:
        assert get_family(name).name == name


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: get_family("rat"), KeyError, r"unknown model family 'rat' \(did you mean 'rate'\?\)"),
        (lambda: register_family(type("X", (), {})), TypeError, r"X is not a model family: it lacks"),
        (lambda: register_family(type("Rate", (ToyFamily,), {"name": "rate"})), ValueError, "already"),
        (lambda: register_family(type("Bad", (ToyFamily,), {"name": "Bad-Name"})), ValueError, "identifier"),
        (lambda: create_family("rate", ToyConfig()), TypeError, r"must be a RateConfig, got ToyConfig"),
    ],
)
def test_registry_refuses_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()


# --------------------------------------------------------------------------- the contract of every family
def _instance(name: str):
    """A family instance ready for its operations (the SE family with an untrained model: no training)."""
    family = create_family(name)
    if name == "se":
        from neuromod.gating import SETaskModel
        from neuromod.protocols.families.se import SEFamily

        family = SEFamily.from_model(SETaskModel())
    family.prepare(seed=np.random.SeedSequence(0))
    return family


def _check_units(ds: xr.Dataset) -> None:
    for name, var in ds.variables.items():
        assert "units" in var.attrs and "long_name" in var.attrs, name


@pytest.mark.parametrize("name", BUILTIN)
def test_contract_config(name):
    cls = get_family(name)
    config = cls.config_cls()
    assert cls.config_cls.from_dict(config.to_dict()) == config
    assert isinstance(cls.quick_config(config), cls.config_cls)
    assert (cls.variant_field is None) == (not cls.variants)
    for variant in cls.variants:  # every variant is a value its config field accepts
        assert getattr(config.replace(**{cls.variant_field: variant}), cls.variant_field) == variant
    with pytest.raises(ConfigError, match=rf"unknown key '{name}\.nope'"):
        gain_mod.GainCurvesConfig.from_dict({"models": [name], name: {"nope": 1}})
    for op in OPERATIONS:
        if op != "release_pattern":
            assert supports(cls, op), (name, op)
    assert supports(cls, "release_pattern") == cls.provides_release


@pytest.mark.parametrize("name", BUILTIN)
def test_contract_tau_field(name):
    """A family with a time constant of its own is built at the experiment's tau_ms; the others take it as an
    argument of their operations, and the experiment's tau_ms leaves their settings alone."""
    from neuromod.protocols.task_switching import TaskSwitchingConfig

    cls = get_family(name)
    built = TaskSwitchingConfig(tau_ms=123.0).family(name)
    if cls.tau_field is None:
        assert built == TaskSwitchingConfig().family(name)
    else:
        assert cls.tau_field in {f.name for f in dataclasses.fields(cls.config_cls)}
        assert getattr(built, cls.tau_field) == 123.0


@pytest.mark.parametrize("name", BUILTIN)
def test_contract_fi_curves(name):
    family = _instance(name)
    kwargs = {"drives": np.linspace(0.5, 2.0, 5), "levels": np.array([0.0, 1.0]), "n_repeats": 2}
    a = family.fi_curves(seed=np.random.SeedSequence(1), **kwargs)
    b = family.fi_curves(seed=np.random.SeedSequence(1), **kwargs)
    assert a["response"].dims == ("condition", "level", "drive", "repeat")
    assert a.sizes["level"] == 2 and a.sizes["drive"] == 5 and a.sizes["repeat"] in (1, 2)
    _check_units(a)
    xr.testing.assert_identical(a, b)  # same seed, same curves
    assert np.all(np.isfinite(a["response"].values))


@pytest.mark.parametrize("name", BUILTIN)
def test_contract_cue_gain_curves_and_profile(name):
    family = _instance(name)
    release = np.array([[1.0, 0.8, 0.2, 0.1], [0.1, 0.2, 0.9, 1.0]])
    ds = family.cue_gain_curves(
        release=release, drives=np.linspace(0.0, 2.0, 5), n_repeats=2, seed=np.random.SeedSequence(2)
    )
    assert list(ds["condition"].values) == list(POPULATIONS) and ds["level"].values.tolist() == [0.0, 1.0]
    _check_units(ds)
    profile = family.gain_profile(release, (25.6, 51.2))
    assert np.shape(profile) == (2, 4)


#: Families whose sessions cost too much for a contract test: the spiking network compiles for about a minute
#: per session shape; its sessions and decisions are checked by tests/spiking and the task-switching run.
_SESSION_CHECKED_ELSEWHERE = {"spiking"}


@pytest.mark.parametrize("name", [n for n in BUILTIN if n not in _SESSION_CHECKED_ELSEWHERE])
def test_contract_run_trials_and_decision(name):
    family = _instance(name)
    task = CuedTaskSwitching(n_trials=6, csi_ms=(100.0, 300.0), max_rt_ms=500.0, rci_ms=200.0, seed=3)
    release = np.array([[1.0, 1.0, 0.1, 0.1], [0.1, 0.1, 1.0, 1.0]])
    # a family with a time constant of its own runs at the one it was built at (the SE default: 400 ms)
    field = get_family(name).tau_field
    tau = 100.0 if field is None else getattr(family.config, field)
    kwargs = {"release": release, "tau_ms": tau, "decimate_ms": 50.0}
    a = family.run_trials(task, seed=np.random.SeedSequence(5), **kwargs)
    b = family.run_trials(task, seed=np.random.SeedSequence(5), **kwargs)
    xr.testing.assert_identical(a, b)
    assert a["choice"].dims == ("trial",) and a.sizes["trial"] == 6
    assert set(np.unique(a["choice"].values)) <= {0, 1, 2}
    np.testing.assert_array_equal(np.isnan(a["rt"].values), a["choice"].values == 0)
    assert a["gain"].dims == ("time", "population") and a["time"].attrs["units"] == "ms"
    _check_units(a)
    # closed loop: the stimulus onsets are the task's timeline of the family's own RTs, and its time axis
    # is its own session's (it ends at the last response)
    events = task.timeline(a["rt"].values)
    np.testing.assert_allclose(a["stim_onset_ms"].values, events["stim_onset_ms"].values, atol=1e-6)
    assert float(a["time"].max()) <= float(events["response_ms"][-1]) + 1e-9
    d = family.decision(np.array([0.0, 51.2]), n_trials=8, max_rt_ms=500.0, seed=np.random.SeedSequence(6))
    assert d["choice"].dims == ("coherence", "trial") and d["rt"].attrs["units"] == "ms"
    ok = np.isfinite(d["rt"].values)
    assert np.all((d["rt"].values[ok] > 0) & (d["rt"].values[ok] <= 500.0))
