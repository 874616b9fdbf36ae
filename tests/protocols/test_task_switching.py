"""Tests of the comparison (``neuromod run task-switching``): SE gate vs rate model vs spiking network.

The end-to-end checks run the real command in quick mode (all three models, one shared trial table). The
summary is checked against measures recomputed from the per-trial data, and the gain measures against what
the mapping and the mechanisms imply analytically:

* the rate model receives the SE gate profile itself: release = SE gain / largest SE gain and the rate
  model's gain is g(m) = m, so the two relative gain profiles are equal;
* the spiking input-gain factor is ``1 + (gain_max - 1) m`` (:func:`neuromod.spiking.input_gain_factor`);
* the rate population is threshold-linear with input gain, ``r = slope max(g d I0 - theta, 0)``, so its
  f-I gain against relative drive d is ``slope g I0`` and its threshold ``theta / (g I0)``: the gain ratio
  between the irrelevant and the relevant cue is ``g_irr / g_rel``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from neuromod import results
from neuromod.config import ConfigError
from neuromod.protocols import run_task_switching
from neuromod.protocols.families.se import SEFamily
from neuromod.protocols.se_files import save_se_model
from neuromod.protocols.se_task import train_se_task_model
from neuromod.protocols.task_switching import TaskSwitchingConfig, quick

MODELS = ["se", "rate", "spiking"]


@pytest.fixture(scope="module")
def cli_files(task_switching_runs) -> tuple[Path, Path, str]:
    """``neuromod run task-switching --quick`` twice with the same seed (tests/conftest.py)."""
    return task_switching_runs


@pytest.fixture(scope="module")
def tree(cli_files) -> xr.DataTree:
    return results.load(cli_files[0])


# --------------------------------------------------------------------------------------------- the command
def test_run_writes_a_valid_result_and_figure(cli_files, tree):
    out, _, output = cli_files
    assert out.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"
    assert isinstance(tree, xr.DataTree)
    results.validate(tree)
    assert tree.nm.config["experiment"] == "task-switching"
    assert tree.nm.config["n_trials"] == quick(TaskSwitchingConfig()).n_trials
    for name in MODELS:
        assert name in output.splitlines()[0]  # the side-by-side table: one column per model
    assert "RT switch cost (ms)" in output and "accuracy" in output


def test_tree_layout(tree):
    assert sorted(tree.children) == sorted([*MODELS, "summary"])
    root = tree.to_dataset(inherit=False)
    for var in ("context", "feature_a", "feature_b", "csi_ms", "is_switch", "is_congruent", "correct_choice"):
        assert root[var].dims == ("trial",), var
    for name in MODELS:
        group = tree[name].to_dataset(inherit=False)
        for var in ("choice", "correct", "rt"):
            assert group[var].dims == ("trial",), (name, var)
        assert group["gain"].dims == ("time", "population")
        curves = tree[f"{name}/gain_curves"].to_dataset(inherit=False)
        assert curves["response"].dims == ("condition", "level", "drive", "repeat")
        assert list(curves["condition"].values) == ["a+", "a-", "b+", "b-"]
    assert "train_loss" in tree["se"].data_vars  # trained in this run
    summary = tree["summary"].to_dataset(inherit=False)
    assert list(summary["model"].values) == MODELS
    for var in (
        "accuracy",
        "mean_rt",
        "rt_switch_cost",
        "error_switch_cost",
        "rt_congruency_effect",
        "error_congruency_effect",
        "rt_prep_tau_eff",
        "error_prep_amplitude",
    ):
        assert summary[var].dims == ("model",), var
    assert summary["rt_switch_cost_by_csi"].dims == ("model", "csi")
    assert summary["accuracy_by_condition"].dims == ("model", "switch", "congruent")
    assert summary["gain_ratio"].dims == ("model", "population")
    assert summary["gain_profile"].dims == ("model", "context", "population")


def test_same_seed_gives_identical_file_contents(cli_files):
    first, second, _ = cli_files
    a, b = results.load(first), results.load(second)
    xr.testing.assert_identical(results.without_timestamps(a), results.without_timestamps(b))
    for node in a.subtree:  # and every group's own attributes (assert_identical checks the root's)
        if node.path != "/":
            assert node.attrs == b[node.path].attrs, node.path


# ------------------------------------------------------------------------------ summary against the trials
def test_summary_matches_the_trials(tree):
    root = tree.to_dataset(inherit=False)
    summary = tree["summary"].to_dataset(inherit=False)
    usable = ~root["is_first"].values
    switch = root["is_switch"].values
    congruent = root["is_congruent"].values
    for name in MODELS:
        correct = tree[name]["correct"].values.astype(bool)
        rt = tree[name]["rt"].values
        row = summary.sel(model=name)
        assert float(row["accuracy"]) == pytest.approx(correct.mean(), abs=1e-12)
        assert float(row["mean_rt"]) == pytest.approx(np.nanmean(rt[correct]), abs=1e-9)
        ok = correct & np.isfinite(rt) & usable
        cost = rt[ok & switch].mean() - rt[ok & ~switch].mean()
        assert float(row["rt_switch_cost"]) == pytest.approx(cost, abs=1e-9)
        error_cost = (1 - correct[usable & switch]).mean() - (1 - correct[usable & ~switch]).mean()
        assert float(row["error_switch_cost"]) == pytest.approx(error_cost, abs=1e-12)
        effect = rt[correct & ~congruent].mean() - rt[correct & congruent].mean()
        assert float(row["rt_congruency_effect"]) == pytest.approx(effect, abs=1e-9)
        cell = usable & switch & ~congruent
        expected = correct[cell].mean()
        assert float(row["accuracy_by_condition"].sel(switch=1, congruent=0)) == pytest.approx(expected)
        assert (
            float(row["rt_switch_cost_low"])
            < float(row["rt_switch_cost"])
            < float(row["rt_switch_cost_high"])
        )


def test_gain_profiles_follow_the_mapping(tree):
    summary = tree["summary"].to_dataset(inherit=False)
    release = summary["release"].values
    config = tree.nm.config
    # the rate model's gain is g(m) = m: it receives the SE profile's shape exactly
    np.testing.assert_allclose(summary["gain_profile"].sel(model="rate").values, release, atol=1e-12)
    np.testing.assert_allclose(
        summary["relative_gain_profile"].sel(model="rate").values,
        summary["relative_gain_profile"].sel(model="se").values,
        atol=1e-9,
    )
    gain_max = config["spiking"]["gain_max"]
    np.testing.assert_allclose(
        summary["gain_profile"].sel(model="spiking").values, 1 + (gain_max - 1) * release, atol=1e-12
    )


def test_rate_gain_curves_match_input_gain_analytically(tree):
    curves = tree["rate/gain_curves"].to_dataset(inherit=False)
    rate = tree.nm.config["rate"]
    m = curves["modulator"].values  # (population, level)
    drive_max = float(curves["drive"].max())
    # the fit is meaningful where the curve leaves zero well inside the drive range at both cues
    onset = rate["threshold_na"] / (m * rate["drive_na"])
    ok = np.all(onset < 0.6 * drive_max, axis=1)
    assert ok.any(), onset
    ratio = curves["gain_ratio"].sel(level=1.0).values
    np.testing.assert_allclose(ratio[ok], (m[:, 1] / m[:, 0])[ok], rtol=0.05)
    shift = curves["threshold_shift"].sel(level=1.0).values
    np.testing.assert_allclose(shift[ok], (onset[:, 1] - onset[:, 0])[ok], atol=0.1 * drive_max / 8)


# ----------------------------------------------------------------------------------------- bad input, SE
def test_bad_settings_are_refused_with_the_key():
    # the spiking family runs on a 1 ms schedule grid; the rate model alone takes any CSI
    with pytest.raises(ConfigError, match=r"csi_ms=\(100.5,\) must be whole numbers of ms"):
        TaskSwitchingConfig(csi_ms=(100.5,))
    assert TaskSwitchingConfig(models=("rate",), release="default", csi_ms=(100.5,)).csi_ms == (100.5,)
    with pytest.raises(ConfigError, match=r"models=\['rate', 'rate'\] must name one model family at least"):
        TaskSwitchingConfig(models=("rate", "rate"))
    with pytest.raises(ConfigError, match=r"rsi_ms=0 with a CSI of 0"):
        TaskSwitchingConfig(rsi_ms=0.0, csi_ms=(0.0, 100.0))
    with pytest.raises(ConfigError, match=r"models contains 'brain'; known model families"):
        TaskSwitchingConfig.from_dict({"models": ["brain"]})
    with pytest.raises(ConfigError, match=r"release='rate' must be 'default' or a family that provides"):
        TaskSwitchingConfig(release="rate")
    with pytest.raises(ConfigError, match=r"unknown key 'spiking\.tau_ms'"):  # tau_ms is the experiment's
        TaskSwitchingConfig.from_dict({"spiking": {"tau_ms": 100.0}})
    with pytest.raises(TypeError, match=r"config must be a TaskSwitchingConfig, got dict"):
        run_task_switching({"n_trials": 8})


def test_missing_se_model_file_fails_before_training(tmp_path, monkeypatch):
    import neuromod.protocols.se_task as se_task

    monkeypatch.setattr(se_task, "train_se_task_model", lambda *a, **k: pytest.fail("trained"))
    config = TaskSwitchingConfig(models=("rate",)).with_family("se", model_path=str(tmp_path / "none"))
    with pytest.raises(FileNotFoundError, match="none"):
        run_task_switching(config)


def test_loaded_se_model_gives_the_same_run(tmp_path):
    model, _ = train_se_task_model(quick=True, progress=False, seed=5)
    save_se_model(model, tmp_path / "se")
    config = quick(TaskSwitchingConfig(models=("se", "rate"), n_trials=16, seed=1))
    passed = run_task_switching(config, families={"se": SEFamily.from_model(model)})
    loaded = run_task_switching(config.with_family("se", model_path=str(tmp_path / "se")))
    assert loaded["se"].attrs["se_model_origin"].startswith("loaded from")
    assert passed["se"].attrs["se_model_origin"] == "passed in"
    assert "train_loss" not in loaded["se"].data_vars
    for group in ("se", "rate", "summary", "se/gain_curves", "rate/gain_curves"):
        a, b = passed[group].to_dataset(inherit=False), loaded[group].to_dataset(inherit=False)
        xr.testing.assert_equal(a, b)
        drop = {"se_model_origin"}
        assert {k: v for k, v in a.attrs.items() if k not in drop} == {
            k: v for k, v in b.attrs.items() if k not in drop
        }, group


def test_experiment_file_holds_the_defaults():
    path = Path(__file__).resolve().parents[2] / "experiments" / "task_switching.toml"
    assert TaskSwitchingConfig.from_toml(path) == TaskSwitchingConfig()


@pytest.mark.parametrize("identified", [0, 1])
def test_preparation_fit_reads_the_identified_flag(identified):
    from neuromod.protocols.switching_summary import preparation_fit

    row = xr.Dataset(
        {
            "rt_prep_amplitude": 80.0,
            "rt_prep_tau_eff": 250.0,
            "rt_prep_residual": 20.0,
            "rt_prep_identified": np.int8(identified),
        }
    )
    assert preparation_fit(row, "rt") == ((80.0, 250.0, 20.0) if identified else None)


def test_summary_preparation_fits_are_fit_preparation_of_the_costs(tree):
    from neuromod.measures import fit_preparation, switch_cost

    summary = tree["summary"].to_dataset(inherit=False)
    cost = switch_cost(tree, by=("csi_ms",))
    for prefix in ("rt", "error"):
        fit = fit_preparation(cost, variable=f"{prefix}_cost")
        for key in ("amplitude", "tau_eff", "residual", "identified"):
            np.testing.assert_array_equal(summary[f"{prefix}_prep_{key}"].values, fit[key].values)


def test_default_release_without_se_trains_nothing(monkeypatch):
    import neuromod.protocols.se_task as se_task
    from neuromod.protocols.sessions import DEFAULT_RELEASE

    monkeypatch.setattr(se_task, "train_se_task_model", lambda *a, **k: pytest.fail("trained"))
    tree = run_task_switching(quick(TaskSwitchingConfig(models=("rate",), release="default", n_trials=16)))
    assert sorted(tree.children) == ["rate", "summary"]
    np.testing.assert_array_equal(tree["summary"]["release"].values, np.asarray(DEFAULT_RELEASE))
    np.testing.assert_array_equal(tree["summary"]["gain_profile"].sel(model="rate").values, DEFAULT_RELEASE)


def test_gain_curve_levels_are_the_relevant_and_irrelevant_cue(tree):
    summary = tree["summary"].to_dataset(inherit=False)
    release = summary["release"].values  # (context, population)
    relevant = np.array([0, 0, 1, 1])  # a+, a- are judged in context a; b+, b- in context b
    pops = np.arange(4)
    for name in ("rate", "spiking"):
        m = tree[f"{name}/gain_curves"]["modulator"].values  # (population, level)
        np.testing.assert_array_equal(m[:, 0], release[relevant, pops])
        np.testing.assert_array_equal(m[:, 1], release[1 - relevant, pops])
    # spiking input gain 1 + m: the more released cue drives the cells harder at the largest drive
    curves = tree["spiking/gain_curves"].to_dataset(inherit=False)
    top = curves["response"].isel(drive=-1).mean("repeat").values
    m = curves["modulator"].values
    clear = np.abs(m[:, 0] - m[:, 1]) > 0.1
    assert np.all(np.sign(top[clear, 0] - top[clear, 1]) == np.sign(m[clear, 0] - m[clear, 1]))
    # SE: the gate at the task's drive is higher under the cue whose steady-state profile is higher
    se = tree["se/gain_curves"].to_dataset(inherit=False)
    gate = se["gain"].sel(drive=1.0).mean("repeat").values  # (population, level)
    profile = summary["gain_profile"].sel(model="se").values
    diff_profile = profile[relevant, pops] - profile[1 - relevant, pops]
    clear = np.abs(diff_profile) > 0.1
    assert clear.any()
    assert np.all(np.sign(gate[clear, 0] - gate[clear, 1]) == np.sign(diff_profile[clear]))
