"""Tests for neuromod.config: strict TOML -> frozen dataclasses."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import pytest

from neuromod.config import Config, ConfigError, FrozenMap, param, read_toml


@dataclass(frozen=True)
class Modulator(Config):
    tau_ms: float = param(100.0, low=0.0, low_inclusive=False, doc="release time constant (ms)")
    mode: Literal["response_gain", "input_gain", "threshold"] = "response_gain"
    levels: tuple[float, ...] = param((0.0, 0.5, 1.0), low=0.0, high=1.0)
    baseline: float | None = None


@dataclass(frozen=True)
class Experiment(Config):
    experiment: str = "toy"
    seed: int = param(0, low=0)
    n_trials: int = param(100, low=1)
    record: bool = False
    modulator: Modulator = param(default_factory=Modulator)


def test_defaults_and_nested_table():
    cfg = Experiment.from_dict({"seed": 4, "modulator": {"tau_ms": 50, "levels": [0, 1]}})
    assert cfg.seed == 4
    assert cfg.modulator == Modulator(tau_ms=50.0, levels=(0.0, 1.0))
    assert isinstance(cfg.modulator.tau_ms, float)  # TOML integer coerced to the declared float
    assert isinstance(cfg.modulator.levels, tuple)


def test_frozen():
    cfg = Experiment()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.seed = 3  # type: ignore[misc]


def test_misspelt_key_suggests_the_right_one():
    with pytest.raises(ConfigError, match=r"unknown key 'modulator\.tua_ms' \(did you mean 'tau_ms'\?\)"):
        Experiment.from_dict({"modulator": {"tua_ms": 30.0}})


def test_unknown_key_without_close_match_lists_valid_keys():
    with pytest.raises(ConfigError, match=r"unknown key 'colour'; valid keys: \['experiment', 'modulator'"):
        Experiment.from_dict({"colour": "red"})


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"seed": 1.5}, r"seed=1\.5 has the wrong type; expected an integer"),
        ({"seed": True}, r"seed=True has the wrong type; expected an integer"),
        ({"record": 1}, r"record=1 has the wrong type; expected true or false"),
        ({"n_trials": 0}, r"n_trials=0 is outside the valid range \[1, inf\)"),
        (
            {"modulator": {"tau_ms": -5}},
            r"modulator\.tau_ms=-5\.0 is outside the valid range \(0, inf\) \(release",
        ),
        (
            {"modulator": {"tau_ms": "fast"}},
            r"modulator\.tau_ms='fast' has the wrong type; expected a number",
        ),
        ({"modulator": {"levels": [0.0, 1.5]}}, r"modulator\.levels=.*element 1\.5.*\[0, 1\]"),
        (
            {"modulator": {"levels": 0.5}},
            r"modulator\.levels=0\.5 has the wrong type; expected a list of float",
        ),
        (
            {"modulator": {"mode": "treshold"}},
            r"mode='treshold' is not one of .* \(did you mean 'threshold'\?\)",
        ),
        ({"modulator": 3}, r"modulator=3 has the wrong type; expected a table \(Modulator\)"),
        ({"modulator": {"tau_ms": float("nan")}}, r"modulator\.tau_ms=nan must be a finite number"),
        (
            {"modulator": {"levels": [0.0, float("inf")]}},
            r"modulator\.levels\[1\]=inf must be a finite number",
        ),
    ],
)
def test_bad_values_name_key_value_and_expectation(data, match):
    with pytest.raises(ConfigError, match=match):
        Experiment.from_dict(data)


def test_python_construction_is_checked_too():
    with pytest.raises(ConfigError, match=r"tau_ms=0\.0 is outside the valid range \(0, inf\)"):
        Modulator(tau_ms=0.0)
    with pytest.raises(ConfigError, match=r"seed=-1 is outside"):
        Experiment().replace(seed=-1)


def test_toml_file_round_trip(tmp_path):
    path = tmp_path / "exp.toml"
    path.write_text('experiment = "toy"\nseed = 7\n[modulator]\ntau_ms = 250\nmode = "threshold"\n')
    cfg = Experiment.from_toml(path)
    assert cfg.seed == 7 and cfg.modulator.tau_ms == 250.0 and cfg.modulator.mode == "threshold"
    assert Experiment.from_dict(cfg.to_dict()) == cfg


def test_toml_errors_name_the_file(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[modulator]\ntua_ms = 3\n")
    with pytest.raises(ConfigError, match=r"bad\.toml: unknown key 'modulator\.tua_ms'.*'tau_ms'"):
        Experiment.from_toml(path)
    path.write_text("seed = = 3\n")
    with pytest.raises(ConfigError, match=r"bad\.toml: invalid TOML: .*line 1"):
        read_toml(path)
    with pytest.raises(FileNotFoundError, match="no such config file"):
        read_toml(tmp_path / "absent.toml")


def test_toml_is_never_executed(tmp_path):
    path = tmp_path / "evil.toml"
    path.write_text("experiment = \"__import__('os').system('touch pwned')\"\n")
    cfg = Experiment.from_toml(path)
    assert cfg.experiment.startswith("__import__")
    assert not (tmp_path / "pwned").exists()


def test_describe():
    assert Modulator.describe()["tau_ms"] == "release time constant (ms)"


def test_override_by_dotted_key_is_checked_like_toml():
    cfg = Experiment(seed=1).override(
        {"n_trials": 7, "modulator.levels": [0, 0.25], "modulator.baseline": 0.5}
    )
    assert cfg == Experiment(
        seed=1, n_trials=7, modulator=Modulator(levels=(0.0, 0.25), baseline=0.5)
    )  # the rest unchanged
    assert Experiment().override({}) == Experiment()
    with pytest.raises(ConfigError, match=r"unknown key 'modulator.tua_ms' \(did you mean 'tau_ms'\?\)"):
        Experiment().override({"modulator.tua_ms": 1.0})
    with pytest.raises(ConfigError, match=r"'seed' is a single setting, not a table"):
        Experiment().override({"seed.value": 1})
    with pytest.raises(ConfigError, match=r"modulator.tau_ms=0.0 is outside the valid range"):
        Experiment().override({"modulator.tau_ms": 0})
    with pytest.raises(ConfigError, match=r"modulator.mode='gain' is not one of"):
        Experiment().override({"modulator.mode": "gain"})


@dataclass(frozen=True)
class PerModel(Config):
    n_trials: Mapping[str, int] = param(default_factory=lambda: FrozenMap({"rate": 10}), low=1)


def test_mapping_fields_are_tables_with_free_keys():
    cfg = PerModel.from_dict({"n_trials": {"rate": 5, "spiking": 2}})
    assert dict(cfg.n_trials) == {"rate": 5, "spiking": 2} and isinstance(cfg.n_trials, FrozenMap)
    assert hash(cfg) == hash(PerModel.from_dict(cfg.to_dict()))  # frozen and hashable
    assert PerModel().override({"n_trials.spiking": 3}).n_trials == {"rate": 10, "spiking": 3}
    with pytest.raises(ConfigError, match=r"n_trials\.spiking=0 is outside the valid range \[1, inf\)"):
        PerModel.from_dict({"n_trials": {"spiking": 0}})
    with pytest.raises(ConfigError, match=r"n_trials=3 has the wrong type; expected a table of int"):
        PerModel.from_dict({"n_trials": 3})
    with pytest.raises(TypeError):
        cfg.n_trials["rate"] = 1  # type: ignore[index]
