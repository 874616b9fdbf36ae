"""Tests for the gain-curves experiment: expected modulation classes per model and mechanism."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from typer.testing import CliRunner

from neuromod import results
from neuromod.cli import app
from neuromod.config import ConfigError
from neuromod.protocols.gain_curves import GainCurvesConfig, gain_curves, quick


@pytest.fixture(scope="module")
def rate_se_tree() -> xr.DataTree:
    return gain_curves(quick(GainCurvesConfig(models=("se", "rate"), seed=3)))


@pytest.fixture(scope="module")
def spiking_tree() -> xr.DataTree:
    return gain_curves(quick(GainCurvesConfig(models=("spiking",), seed=1)))


def test_rate_response_gain_is_multiplicative(rate_se_tree):
    ds = rate_se_tree["rate"].to_dataset().sel(condition="response_gain")
    assert list(ds["modulation"].values) == ["none", "multiplicative", "multiplicative"]
    # g(m) = 1 + m (Modulation defaults): the fitted gain ratio recovers it
    np.testing.assert_allclose(ds["gain_ratio"], 1.0 + ds["level"], rtol=0.02)
    np.testing.assert_allclose(ds["threshold_shift"], 0.0, atol=1e-3)


def test_rate_threshold_is_additive_by_the_configured_shift(rate_se_tree):
    ds = rate_se_tree["rate"].to_dataset().sel(condition="threshold")
    assert list(ds["modulation"].values) == ["none", "additive", "additive"]
    np.testing.assert_allclose(ds["threshold_shift"], 0.05 * ds["level"], atol=2e-3)
    np.testing.assert_allclose(ds["gain_ratio"], 1.0, atol=0.02)


def test_spiking_threshold_additive_background_divisive(spiking_tree):
    ds = spiking_tree["spiking"].to_dataset()
    top = ds.sel(level=1.0)
    assert top["modulation"].sel(condition="threshold").item() == "additive"
    assert top["modulation"].sel(condition="background").item() == "divisive"  # Chance et al. (2002)
    assert float(top["gain_ratio"].sel(condition="background")) < 0.9
    # the threshold mechanism shifts by dI = g_L dV = 25 nS * 5 mV = 0.125 nA (softplus knee: within 15 %)
    assert float(top["threshold_shift"].sel(condition="threshold")) == pytest.approx(0.125, rel=0.15)


def test_se_gate_suppresses_the_group_when_the_other_task_is_cued(rate_se_tree):
    ds = rate_se_tree["se"].to_dataset()
    # half-way to the other task's cue the gate scales its group's curve down (divisive) ...
    assert list(ds["modulation"].sel(level=0.5).values) == ["divisive", "divisive"]
    # ... and with the other task cued the slope collapses (the squeeze's drive dependence may also bend
    # the curve, which the classification then calls "mixed": the SE gate need not be purely multiplicative)
    assert (ds["gain_ratio"].sel(level=1.0) < 0.3).all()
    own = ds["gain"].sel(level=0.0).mean(["drive", "repeat"])
    other = ds["gain"].sel(level=1.0).mean(["drive", "repeat"])
    assert (own > 3 * other).all(), (own.values, other.values)
    # the gated response of the relevant group grows with drive
    resp = ds["response"].sel(level=0.0).mean("repeat")
    assert (resp.diff("drive") > 0).all()


def test_result_is_valid_and_same_seed_identical(rate_se_tree, tmp_path):
    results.validate(rate_se_tree)
    path = results.save(rate_se_tree, tmp_path / "gc.nc")
    xr.testing.assert_identical(results.load(path), rate_se_tree)
    again = gain_curves(quick(GainCurvesConfig(models=("se", "rate"), seed=3)))
    xr.testing.assert_identical(results.without_timestamps(again), results.without_timestamps(rate_se_tree))


def test_config_checks():
    with pytest.raises(
        ConfigError, match=r"unknown key 'spiking\.mechanism' \(did you mean 'mechanisms'\?\)"
    ):
        GainCurvesConfig.from_dict({"spiking": {"mechanism": ["leak"]}})
    with pytest.raises(ConfigError, match=r"spiking\.mechanisms\[0\]='shunting' is not one of"):
        GainCurvesConfig.from_dict({"spiking": {"mechanisms": ["shunting"]}})
    with pytest.raises(ValueError, match=r"rate\.drive_max_na=0\.1 must exceed rate\.drive_min_na=0\.2"):
        GainCurvesConfig(rate=GainCurvesConfig().rate.replace(drive_max_na=0.1))
    with pytest.raises(ConfigError, match=r"spiking\.transient_ms=2000\.0 must be shorter than duration_ms"):
        GainCurvesConfig.from_dict({"spiking": {"transient_ms": 2000.0}})
    with pytest.raises(ConfigError, match=r"spiking\.dt_ms=1\.0 is outside the valid range \(0, 0\.5\]"):
        GainCurvesConfig.from_dict({"spiking": {"dt_ms": 1.0}})
    with pytest.raises(ValueError, match=r"must include the reference 0\.0"):
        GainCurvesConfig(rate=GainCurvesConfig().rate.replace(levels=(0.5, 1.0)))


def test_cli_run_and_plot(tmp_path):
    runner = CliRunner()
    out = tmp_path / "gc.nc"
    toml = tmp_path / "gc.toml"
    toml.write_text('experiment = "gain-curves"\nmodels = ["rate"]\n[rate]\nn_drives = 9\n')
    res = runner.invoke(app, ["run", str(toml), "--out", str(out), "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "response_gain" in res.output and "multiplicative" in res.output
    tree = results.load(out)
    results.validate(tree)
    assert list(tree.children) == ["rate"]
    out.with_suffix(".png").unlink()
    res = runner.invoke(app, ["plot", str(out)])
    assert res.exit_code == 0, res.output
    assert out.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"


def test_accessor_shortcuts(rate_se_tree):
    import matplotlib.pyplot as plt

    rate = rate_se_tree["rate"].to_dataset()
    fit = rate.nm.fit_gain_curve(form="softplus", reduce_dims="repeat")
    np.testing.assert_allclose(fit["gain"], rate["fit_gain"])
    ax = rate_se_tree.nm.plot_gain_curves(model="rate", condition="threshold")
    assert ax.get_xlabel() == "input current (nA)" and len(ax.lines) >= 3
    ax = rate_se_tree.nm.plot_modulation_summary()
    assert ax.get_ylabel().startswith("gain ratio")
    with pytest.raises(ValueError, match=r"model='brain' is not a group"):
        rate_se_tree.nm.plot_gain_curves(model="brain")
    plt.close("all")


def test_experiment_file_holds_the_defaults():
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "experiments" / "gain_curves.toml"
    assert GainCurvesConfig.from_toml(path) == GainCurvesConfig()
