"""Tests of ExperimentConfig: one table per model family in every experiment, checked like the rest."""

from __future__ import annotations

import json

import pytest

from neuromod import results
from neuromod.config import ConfigError, FrozenMap
from neuromod.protocols.decision import DecisionConfig
from neuromod.protocols.families.rate import RateConfig
from neuromod.protocols.families.spiking import SpikingConfig
from neuromod.protocols.gain_curves import GainCurvesConfig
from neuromod.protocols.task_switching import TaskSwitchingConfig

#: The task-switching experiment's calibrated settings (neuromod.protocols.calibration), read, not copied:
#: they change when the families are recalibrated.
CALIBRATED = TaskSwitchingConfig.family_defaults


def test_a_family_table_sets_that_familys_config():
    cfg = TaskSwitchingConfig.from_dict({"models": ["rate"], "rate": {"dt_ms": 0.25}, "release": "default"})
    # the keys the table leaves out keep the experiment's (calibrated) defaults, as --set does
    assert cfg.family("rate") == RateConfig(**{**CALIBRATED["rate"], "dt_ms": 0.25})
    assert cfg.family("spiking") == SpikingConfig(**CALIBRATED["spiking"])  # the experiment's defaults
    assert cfg.family("spiking") != SpikingConfig()  # ... which differ from the family's own
    assert GainCurvesConfig().family("spiking") == SpikingConfig()  # another experiment, the family's own


def test_explicit_tables_equal_to_the_defaults_are_not_stored():
    explicit = TaskSwitchingConfig.from_dict(
        {"spiking": dict(CALIBRATED["spiking"]), "rate": dict(CALIBRATED["rate"])}
    )
    assert explicit == TaskSwitchingConfig() and explicit.families == FrozenMap()
    changed = TaskSwitchingConfig.from_dict({"spiking": {**CALIBRATED["spiking"], "dt_ms": 0.1}})
    assert changed != TaskSwitchingConfig() and set(changed.families) == {"spiking"}
    # the se table at the run's tau_ms is what the defaults build: not stored either
    at_tau = TaskSwitchingConfig.from_dict(
        {"tau_ms": 250.0, "se": {**CALIBRATED.get("se", {}), "tau_ms": 250.0}}
    )
    assert at_tau == TaskSwitchingConfig(tau_ms=250.0) and at_tau.families == FrozenMap()


def test_to_dict_writes_every_family_run_in_full_and_round_trips():
    cfg = TaskSwitchingConfig(models=("se", "rate"), tau_ms=300.0)
    data = cfg.to_dict()
    assert set(data) >= {"se", "rate"} and "spiking" not in data and "families" not in data
    assert data["rate"] == RateConfig(**CALIBRATED["rate"]).to_dict()  # the resolved settings, in full
    assert data["se"]["tau_ms"] == 300.0  # built at the run's tau_ms
    assert TaskSwitchingConfig.from_dict(data) == cfg
    # the result's config_json is this dict
    assert json.loads(results.provenance(cfg, title="t")["config_json"]) == json.loads(results.to_json(data))


def test_override_reaches_family_tables_and_mappings():
    cfg = TaskSwitchingConfig().override({"spiking.dt_ms": 0.1, "rate.mode": "threshold", "seed": 2})
    assert cfg.family("spiking").dt_ms == 0.1 and cfg.family("rate").mode == "threshold" and cfg.seed == 2
    dec = DecisionConfig().override({"n_trials.spiking": 10})
    assert dec.trials_of("spiking") == 10 and dec.trials_of("rate") == 500
    with pytest.raises(ConfigError, match=r"unknown key 'spiking\.dt_m' \(did you mean 'dt_ms'\?\)"):
        TaskSwitchingConfig().override({"spiking.dt_m": 0.1})
    with pytest.raises(ConfigError, match=r"'seed' is a single setting, not a table"):
        TaskSwitchingConfig().override({"seed.x": 1})
    with pytest.raises(ConfigError, match=r"unknown key 'spikng' \(did you mean 'spiking'\?\)"):
        TaskSwitchingConfig().override({"spikng.dt_ms": 0.1})


def test_with_family_is_checked_like_a_new_config():
    cfg = GainCurvesConfig().with_family("spiking", fi_duration_ms=500.0, fi_transient_ms=100.0)
    assert cfg.family("spiking").fi_duration_ms == 500.0
    with pytest.raises(ConfigError, match=r"fi_transient_ms=600\.0 must be shorter than fi_duration_ms"):
        GainCurvesConfig().with_family("spiking", fi_duration_ms=500.0, fi_transient_ms=600.0)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"rat": {}}, r"unknown key 'rat' \(did you mean 'rate'\?\)"),
        ({"rate": {"tua_ms": 1}}, r"unknown key 'rate\.tua_ms'"),
        ({"rate": {"mode": "shunt"}}, r"rate\.mode='shunt' is not one of"),
        ({"rate": 3}, r"rate=3 has the wrong type; expected a table \(RateConfig\)"),
        ({"models": []}, r"models=\[\] must name one model family at least"),
        ({"models": ["rate", "rate"]}, r"each once"),
    ],
)
def test_bad_family_settings_name_the_key(data, match):
    with pytest.raises(ConfigError, match=match):
        GainCurvesConfig.from_dict(data)
