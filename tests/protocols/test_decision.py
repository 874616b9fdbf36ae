"""Tests for the decision experiment (rate and SE families; the spiking network's psychometric curve is
checked in tests/spiking).

Reference: Wong & Wang (2006, Fig. 3): chance at 0 % coherence, near-perfect at 51.2 %, decision time falling
with coherence. Tolerances are binomial: a proportion p from n trials has standard error sqrt(p (1 - p) / n),
and each bound below allows z = 3 of them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from neuromod import registry, results
from neuromod.config import ConfigError, read_toml
from neuromod.protocols import run_decision
from neuromod.protocols.decision import DecisionConfig, quick

ROOT = Path(__file__).resolve().parents[2]
Z = 3.0


@pytest.fixture(scope="module")
def config() -> DecisionConfig:
    return DecisionConfig.from_dict(
        {
            "models": ["rate", "se"],
            "coherences_pct": [0.0, 51.2],
            "seed": 5,
            "max_rt_ms": 1000.0,
            "n_trials": {"rate": 400, "se": 200},
            "se": {"quick": True},
        }
    )


@pytest.fixture(scope="module")
def tree(config) -> xr.DataTree:
    return run_decision(config)


def test_result_schema_and_summary(tree, config):
    results.validate(tree)
    summary = tree["summary"].to_dataset()
    assert list(summary["model"].values) == ["rate", "se"]
    assert summary["accuracy"].dims == ("model", "coherence")
    assert tree["rate"].sizes["trial"] == 400 and tree["se"].sizes["trial"] == 200
    # the Wong & Wang circuit is symmetric: chance at 0 % (the SE model's random channel tunings need not be)
    n_rate = config.trials_of("rate")
    assert abs(float(summary["accuracy"].sel(model="rate", coherence=0.0)) - 0.5) <= Z * np.sqrt(
        0.25 / n_rate
    )
    for model in ("rate", "se"):
        acc = summary["accuracy"].sel(model=model)
        n = config.trials_of(model)
        p = float(acc.sel(coherence=51.2))
        assert p >= 0.9 - Z * np.sqrt(0.9 * 0.1 / n), (model, p)  # near-perfect
        assert p - float(acc.sel(coherence=0.0)) > Z * np.sqrt(0.5 / n), model  # rises with coherence
        rt = summary["mean_rt"].sel(model=model)
        assert float(rt.sel(coherence=51.2)) < float(rt.sel(coherence=0.0)), model
    assert float(tree["rate"]["rt"].max()) <= 1000.0  # the shared deadline


def test_same_seed_identical_data_and_config(tree, config):
    again = run_decision(config)
    xr.testing.assert_identical(results.without_timestamps(again), results.without_timestamps(tree))
    other = run_decision(config.replace(seed=6, models=("rate",)))
    assert not np.array_equal(tree["rate"]["rt"].values, other["rate"]["rt"].values, equal_nan=True)


def test_a_family_stream_does_not_depend_on_the_others(tree, config):
    """Each family's random stream derives from the seed and its name: dropping the SE family changes
    nothing in the rate family's trials."""
    alone = run_decision(config.replace(models=("rate",)))
    xr.testing.assert_identical(alone["rate"].to_dataset(), tree["rate"].to_dataset())


def test_config_errors():
    with pytest.raises(ConfigError, match=r"coherences_pct=.*element 120\.0.*\[0, 100\]"):
        DecisionConfig(coherences_pct=(0.0, 120.0))
    with pytest.raises(ConfigError, match=r"models contains 'brain'"):
        DecisionConfig.from_dict({"models": ["brain"]})
    with pytest.raises(ConfigError, match=r"n_trials\.rate=0 is outside the valid range \[1, inf\)"):
        DecisionConfig.from_dict({"n_trials": {"rate": 0}})
    with pytest.raises(ConfigError, match=r"n_trials\.rate='many' has the wrong type; expected an integer"):
        DecisionConfig.from_dict({"n_trials": {"rate": "many"}})
    with pytest.raises(ConfigError, match=r"unknown key 'rate\.duration_ms'"):  # now the shared max_rt_ms
        DecisionConfig.from_dict({"rate": {"duration_ms": 1000.0}})
    # the spiking network's schedule runs on a 1 ms grid: refused when the config is built, before any run
    with pytest.raises(ConfigError, match=r"max_rt_ms=1000\.5 must be whole numbers of ms"):
        DecisionConfig(max_rt_ms=1000.5)
    assert DecisionConfig(models=("rate",), max_rt_ms=1000.5).max_rt_ms == 1000.5
    with pytest.raises(ConfigError, match="each once"):
        DecisionConfig(models=("rate", "rate"))


def test_quick_keeps_a_fifth_of_each_familys_trials():
    q = quick(DecisionConfig(models=("rate", "spiking")))
    assert (q.trials_of("rate"), q.trials_of("spiking")) == (100, 20)
    assert q.coherences_pct == (0.0, 12.8, 51.2) and q.max_rt_ms == 1000.0


@pytest.mark.parametrize("path", sorted((ROOT / "experiments").glob("*.toml")), ids=lambda p: p.name)
def test_every_experiment_file_is_the_embedded_defaults(path):
    """Each file in experiments/ is what `neuromod run NAME` runs: it parses to the embedded defaults."""
    experiment = registry.get(read_toml(path)["experiment"])
    assert experiment.config_cls.from_toml(path) == experiment.config_cls()
