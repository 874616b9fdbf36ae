"""Tests for the decision experiment (rate model part; the spiking part is covered in tests/spiking)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from neuromod import registry, results
from neuromod.config import ConfigError
from neuromod.protocols.decision import DecisionConfig, run_decision

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def config() -> DecisionConfig:
    cfg = DecisionConfig(models=("rate",), coherences_pct=(0.0, 51.2), seed=5)
    return cfg.replace(rate=cfg.rate.replace(n_trials=200, duration_ms=1000.0))


def test_result_schema_and_summary(config):
    tree = run_decision(config)
    results.validate(tree)
    summary = tree["summary"].to_dataset()
    assert list(summary["model"].values) == ["rate"]
    assert summary["accuracy"].dims == ("model", "coherence")
    # Wong & Wang (2006): chance at 0 %, near-perfect at 51.2 % (binomial 99 % bounds for 200 trials)
    acc = summary["accuracy"].sel(model="rate")
    assert 0.5 - 0.1 < float(acc.sel(coherence=0.0)) < 0.5 + 0.1
    assert float(acc.sel(coherence=51.2)) >= 0.95
    rt = summary["mean_rt"].sel(model="rate")
    assert float(rt.sel(coherence=51.2)) < float(rt.sel(coherence=0.0))


def test_same_seed_identical_data_and_config(config):
    a, b = run_decision(config), run_decision(config)
    xr.testing.assert_identical(results.without_timestamps(a), results.without_timestamps(b))
    c = run_decision(config.replace(seed=6))
    assert not np.array_equal(a["rate"]["rt"].values, c["rate"]["rt"].values, equal_nan=True)


def test_config_errors():
    with pytest.raises(ConfigError, match=r"coherences_pct=.*element 120\.0.*\[0, 100\]"):
        DecisionConfig(coherences_pct=(0.0, 120.0))
    with pytest.raises(ConfigError, match=r"models\[0\]='brain' is not one of \['rate', 'spiking'\]"):
        DecisionConfig.from_dict({"models": ["brain"]})
    with pytest.raises(ConfigError, match=r"spiking\.max_rt_ms=1000\.5 must be a whole number of ms"):
        DecisionConfig.from_dict({"spiking": {"max_rt_ms": 1000.5}})
    with pytest.raises(ConfigError, match=r"rate\.duration_ms=1000\.3 must be a multiple of dt_ms=0\.5"):
        DecisionConfig.from_dict({"rate": {"duration_ms": 1000.3}})
    with pytest.raises(ValueError, match="at most once"):
        DecisionConfig(models=("rate", "rate"))


@pytest.mark.parametrize("path", sorted((ROOT / "experiments").glob("*.toml")), ids=lambda p: p.name)
def test_every_experiment_file_is_a_valid_config(path):
    from neuromod.config import read_toml

    data = read_toml(path)
    experiment = registry.get(data["experiment"])
    assert experiment.config_cls.from_toml(path) is not None
