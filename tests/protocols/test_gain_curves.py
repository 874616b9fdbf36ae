"""Tests for the gain-curves experiment: expected modulation classes per family and mechanism.

The references, per family:

* rate (Abbott-Chance populations, :class:`neuromod.rate.Modulation` with ``g(m) = 1 + m`` and ``dtheta(m) =
  0.05 m`` nA): response gain ``g phi(I)`` is exactly multiplicative (gain ratio ``g``); a threshold shift
  ``phi(I - dtheta)`` is exactly additive (shift ``dtheta / drive_na`` in relative drive); input gain
  ``phi(g I)`` scales the slope by ``g`` and moves the threshold to ``theta / g`` (mixed);
* spiking (LIF, Wang 2002 cells): the ``threshold`` mechanism shifts the f-I curve by ``dI = g_L dV = 0.125``
  nA; balanced background input is divisive (Chance, Abbott & Reyes 2002); input gain (synaptic efficacy
  ``1 + m``) steepens the curve and moves its onset to lower drive (input gain changes both, Silver 2010);
* SE: the trained gate of a population is lower when the other task is cued wherever its steady-state gate
  profile says so (the profile the comparison maps onto the other families).

Classification thresholds: a change counts when it exceeds ``z`` standard errors and its tolerance (10 %
in gain, 5 % of the drive range in threshold), so the expected classes below are derived from the known
shifts and the configured tolerances, not chosen by hand.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from typer.testing import CliRunner

from neuromod import results
from neuromod.cli import app
from neuromod.config import ConfigError
from neuromod.protocols import run_gain_curves
from neuromod.protocols.families.se import SEConfig, SEFamily
from neuromod.protocols.gain_curves import GainCurvesConfig, quick


@pytest.fixture(scope="module")
def se_family() -> SEFamily:
    """The SE family passed to the run, so its trained model can be inspected afterwards."""
    return SEFamily(SEConfig(quick=True))


@pytest.fixture(scope="module")
def rate_se_tree(se_family) -> xr.DataTree:
    return run_gain_curves(quick(GainCurvesConfig(models=("se", "rate"), seed=3)), families={"se": se_family})


@pytest.fixture(scope="module")
def spiking_tree() -> xr.DataTree:
    return run_gain_curves(quick(GainCurvesConfig(models=("spiking",), seed=1)))


def _tolerance(ds: xr.Dataset, config: dict) -> float:
    return config["threshold_tolerance"] * float(ds["drive"].max() - ds["drive"].min())


def test_quick_mode_sweeps_the_first_three_variants(rate_se_tree, spiking_tree):
    assert list(rate_se_tree["rate"]["condition"].values) == ["response_gain", "input_gain", "threshold"]
    assert list(spiking_tree["spiking"]["condition"].values) == ["input_gain", "threshold", "background"]
    assert list(rate_se_tree["se"]["condition"].values) == ["a+", "a-", "b+", "b-"]


def test_rate_response_gain_is_multiplicative(rate_se_tree):
    ds = rate_se_tree["rate"].to_dataset().sel(condition="response_gain")
    assert list(ds["modulation_class"].values) == ["none", "multiplicative", "multiplicative"]
    np.testing.assert_allclose(ds["gain_ratio"], 1.0 + ds["level"], rtol=0.02)
    np.testing.assert_allclose(ds["threshold_shift"], 0.0, atol=1e-3)


def test_rate_threshold_is_additive_by_the_configured_shift(rate_se_tree):
    ds = rate_se_tree["rate"].to_dataset().sel(condition="threshold")
    config = rate_se_tree.nm.config
    expected_shift = config["rate"]["shift_na_per_level"] * ds["level"] / config["rate"]["drive_na"]
    np.testing.assert_allclose(ds["threshold_shift"], expected_shift, atol=2e-3)
    np.testing.assert_allclose(ds["gain_ratio"], 1.0, atol=0.02)
    tol = _tolerance(ds, config)
    expected = ["none"] + ["additive" if s > tol else "none" for s in expected_shift.values[1:]]
    assert list(ds["modulation_class"].values) == expected
    assert expected[-1] == "additive"  # at m = 1 the shift (0.11) exceeds the tolerance (0.075)


def test_rate_input_gain_scales_slope_and_threshold(rate_se_tree):
    ds = rate_se_tree["rate"].to_dataset().sel(condition="input_gain")
    g = 1.0 + ds["level"]
    np.testing.assert_allclose(ds["gain_ratio"], g, rtol=0.02)
    theta0 = float(ds["fit_threshold"].sel(level=0.0))
    np.testing.assert_allclose(ds["threshold_shift"], theta0 / g - theta0, atol=0.02)
    assert ds["modulation_class"].sel(level=1.0).item() == "mixed"


def test_spiking_threshold_additive_background_divisive(spiking_tree):
    ds = spiking_tree["spiking"].to_dataset()
    top = ds.sel(level=1.0)
    assert top["modulation_class"].sel(condition="threshold").item() == "additive"
    assert top["modulation_class"].sel(condition="background").item() == "divisive"  # Chance et al. (2002)
    assert float(top["gain_ratio"].sel(condition="background")) < 0.9
    # the threshold mechanism shifts by dI = g_L dV = 25 nS * 5 mV = 0.125 nA (softplus knee: within 15 %)
    reference_na = float(ds["drive_current"][0] / ds["drive"][0])
    shift_na = float(top["threshold_shift"].sel(condition="threshold")) * reference_na
    assert shift_na == pytest.approx(0.125, rel=0.15)


def test_spiking_input_gain_steepens_and_moves_the_onset_left(spiking_tree):
    """The mechanism of the main comparison: synaptic efficacy 1 + m scales the input current."""
    top = spiking_tree["spiking"].to_dataset().sel(condition="input_gain", level=1.0)
    z = spiking_tree.nm.config["z"]
    assert float(top["gain_ratio"]) > 1.0 + z * float(top["gain_ratio_se"])
    assert float(top["threshold_shift"]) < -z * float(top["threshold_shift_se"])
    assert top["modulation_class"].item() == "mixed"


def test_se_gate_at_the_task_drive_is_its_gate_profile(rate_se_tree, se_family):
    """At relative drive 1 every population sees the task's stimulus at 0 % coherence, so the mean gate
    under the own (level 0) and the other (level 1) cue is the steady-state gate profile there."""
    from neuromod.protocols.se_profile import population_gains

    ds = rate_se_tree["se"].to_dataset()
    gate = ds["gain"].sel(drive=1.0, level=[0.0, 1.0])  # (condition, level, repeat)
    n = gate.sizes["repeat"]
    measured, se = gate.mean("repeat").values, gate.std("repeat", ddof=1).values / np.sqrt(n)
    n_profile = 4096
    profile = population_gains(se_family.model, coherences_pct=(0.0,), n_samples=n_profile).values
    own = np.array([0, 0, 1, 1])
    pops = np.arange(4)
    expected = np.stack([profile[own, pops], profile[1 - own, pops]], axis=1)
    # both are sample means of the same gate distribution: z = 4 standard errors of their difference
    se_diff = np.sqrt(se**2 + (se * np.sqrt(n)) ** 2 / n_profile)
    np.testing.assert_array_less(np.abs(measured - expected), 4 * se_diff + 1e-6)
    # and the cue matters: the populations' gates differ between the cues by more than that
    assert np.any(np.abs(expected[:, 0] - expected[:, 1]) > 4 * se_diff.max())


def test_every_curve_is_screened(rate_se_tree, spiking_tree):
    for tree in (rate_se_tree, spiking_tree):
        for name in tree.children:
            ds = tree[name].to_dataset()
            ok = ds["fit_ok"].values.astype(bool)
            cls = ds["modulation_class"].values.astype(str)
            assert np.all(np.isin(cls[~ok], ["unfit", "suppressed"])), name
            assert np.all(np.isfinite(ds["gain_ratio"].values[ok & ok[:, :1]])), name


def test_result_is_valid_and_same_seed_identical(rate_se_tree, tmp_path):
    results.validate(rate_se_tree)
    path = results.save(rate_se_tree, tmp_path / "gc.nc")
    xr.testing.assert_identical(results.load(path), rate_se_tree)
    again = run_gain_curves(quick(GainCurvesConfig(models=("se", "rate"), seed=3)))
    xr.testing.assert_identical(results.without_timestamps(again), results.without_timestamps(rate_se_tree))


def test_config_checks():
    with pytest.raises(
        ConfigError, match=r"unknown key 'spiking\.mechanisms' \(did you mean 'mechanism'\?\)"
    ):
        GainCurvesConfig.from_dict({"spiking": {"mechanisms": ["leak"]}})
    with pytest.raises(ConfigError, match=r"variants\.spiking=\['shunting'\]: expected a non-empty list"):
        GainCurvesConfig.from_dict({"variants": {"spiking": ["shunting"]}})
    with pytest.raises(ConfigError, match=r"drive_max=0\.4 must exceed drive_min=0\.5"):
        GainCurvesConfig(drive_max=0.4)
    with pytest.raises(ConfigError, match=r"spiking\.fi_transient_ms=2000\.0 must be shorter than"):
        GainCurvesConfig.from_dict({"spiking": {"fi_transient_ms": 2000.0}})
    with pytest.raises(ConfigError, match=r"spiking\.dt_ms=1\.0 is outside the valid range \(0, 0\.5\]"):
        GainCurvesConfig.from_dict({"spiking": {"dt_ms": 1.0}})
    with pytest.raises(ConfigError, match=r"must include the reference 0\.0"):
        GainCurvesConfig(levels=(0.5, 1.0))
    # all variants of a family, in order, is the default and compares equal to it
    full = GainCurvesConfig.from_dict({"variants": {"rate": ["response_gain", "input_gain", "threshold"]}})
    assert full == GainCurvesConfig()


def test_cli_run_and_plot(tmp_path):
    runner = CliRunner()
    out = tmp_path / "gc.nc"
    toml = tmp_path / "gc.toml"
    toml.write_text('experiment = "gain-curves"\nmodels = ["rate"]\nn_drives = 9\n')
    res = runner.invoke(app, ["run", str(toml), "--out", str(out), "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "response_gain" in res.output and "multiplicative" in res.output
    tree = results.load(out)
    results.validate(tree)
    assert list(tree.children) == ["rate"] and tree["rate"].sizes["drive"] == 9
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
    assert ax.get_xlabel().startswith("relative drive") and len(ax.lines) >= 3
    ax = rate_se_tree.nm.plot_modulation_summary()
    assert ax.get_ylabel().startswith("gain ratio")
    with pytest.raises(ValueError, match=r"model='brain' is not a group"):
        rate_se_tree.nm.plot_gain_curves(model="brain")
    plt.close("all")


def test_experiment_file_holds_the_defaults():
    path = Path(__file__).resolve().parents[2] / "experiments" / "gain_curves.toml"
    assert GainCurvesConfig.from_toml(path) == GainCurvesConfig()
