"""Tests of the comparison (``neuromod run task-switching``): SE gate vs rate model vs spiking network.

The end-to-end checks read the real command's result in quick mode (all three models on one shared,
closed-loop trial table; the spiking network limited to the table's first trials), run twice with the same
seed in two processes (tests/conftest.py). They check what the design implies, not calibrated values:

* a family limited by ``max_trials`` ran exactly the table's first trials: its results are padded to the
  table with ``ran``, its trial table is the root table's first rows, its closed-loop stimulus onsets are
  the task's timeline of its own RTs, and at each stimulus after a long CSI its modulator favours the
  populations of the cued feature;
* the gain-matched release puts 1 on the cued feature's populations and, on the others, the level at
  which the family's measured f-I gain ratio equals the SE gate's ratio; the run measures the result:
  the rate model is threshold-linear with input gain ``g(m) = m``, so its measured gain ratio must come
  out at the target (within 10 % where both curves are fitted);
* the summary holds the documented variables, recomputed here from the per-trial data (pooled measures,
  the trial-level regressions, the paired contrasts on the trials both models ran).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from neuromod import results
from neuromod.config import ConfigError, FrozenMap
from neuromod.protocols import run_task_switching
from neuromod.protocols.families.se import SEFamily
from neuromod.protocols.se_files import save_se_model
from neuromod.protocols.se_task import train_se_task_model
from neuromod.protocols.task_switching import CALIBRATION, TaskSwitchingConfig, quick

MODELS = ["se", "rate", "spiking"]
RELEVANT = np.array([0, 0, 1, 1])  # a+, a- are judged in context a; b+, b- in context b
POPS = np.arange(4)

#: The summary's documented variables (switching_summary.summary) and their dimensions.
SUMMARY_DIMS = {
    **{
        v: ("model",)
        for v in (
            "accuracy",
            "mean_rt",
            "p_response",
            "n_trials",
            "repeat_accuracy",
            "repeat_mean_rt",
            "rt_switch_cost",
            "error_switch_cost",
            "rt_congruency_effect",
            "error_congruency_effect",
            "rt_cost_shortest",
            "rt_amplitude",
            "rt_residual",
            "rt_cost_drop",
            "error_cost_shortest",
            "error_amplitude",
            "error_residual",
            "error_cost_drop",
            "rt_prep_fixed_amplitude",
            "rt_prep_fixed_residual",
            "rt_prep_amplitude",
            "rt_prep_tau_eff",
            "rt_prep_residual",
            "rt_prep_identified",
            "error_prep_amplitude",
            "rt_error_minus_correct",
            "rt_cost_shortest_half_width",
            "rt_cost_shortest_trials_needed",
        )
    },
    "accuracy_by_condition": ("model", "switch", "congruent"),
    "mean_rt_by_condition": ("model", "switch", "congruent"),
    "rt_switch_cost_by_csi": ("model", "csi"),
    "error_switch_cost_by_csi": ("model", "csi"),
    "rt_cost_shortest_by_direction": ("model", "direction"),
    "gain_ratio": ("model", "population"),
    "gain_ratio_se": ("model", "population"),
    "threshold_shift": ("model", "population"),
    "modulation_class": ("model", "population"),
    "gain_match_error": ("model", "population"),
    "gain_match_target": ("population",),
    "gain_profile": ("model", "context", "population"),
    "relative_gain_profile": ("model", "context", "population"),
    "release": ("model", "context", "population"),
    "contrast": ("pair", "quantity"),
    "contrast_low": ("pair", "quantity"),
    "contrast_high": ("pair", "quantity"),
    "contrast_verdict": ("pair", "quantity"),
}


@pytest.fixture(scope="module")
def cli_files(task_switching_runs) -> tuple[Path, Path, str]:
    """``neuromod run task-switching --quick`` twice with the same seed (tests/conftest.py)."""
    return task_switching_runs


@pytest.fixture(scope="module")
def tree(cli_files) -> xr.DataTree:
    return results.load(cli_files[0])


@pytest.fixture(scope="module")
def config(tree) -> TaskSwitchingConfig:
    return TaskSwitchingConfig.from_dict(tree.nm.config)


@pytest.fixture(scope="module")
def summary(tree) -> xr.Dataset:
    return tree["summary"].to_dataset(inherit=False)


def _ran(tree: xr.DataTree, name: str) -> np.ndarray:
    group = tree[name].to_dataset(inherit=False)
    n = tree.to_dataset(inherit=False).sizes["trial"]
    return group["ran"].values.astype(bool) if "ran" in group else np.ones(n, dtype=bool)


# --------------------------------------------------------------------------------------------- the command
def test_run_writes_a_valid_result_and_figure(cli_files, tree, config):
    out, _, output = cli_files
    assert out.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"
    assert isinstance(tree, xr.DataTree)
    results.validate(tree)
    assert config == quick(TaskSwitchingConfig())  # the --quick defaults, recorded in full
    header = output.splitlines()[0]
    for name in MODELS:
        assert name in header  # the side-by-side table: one column per model
    assert "RT switch cost (ms)" in output and "accuracy" in output


def test_the_calibration_is_stored_and_its_values_are_the_defaults(tree, config):
    from neuromod.protocols.calibration import CALIBRATION_SEED, CRITERIA

    calibration = json.loads(tree.attrs["calibration_json"])
    assert calibration["families"] == json.loads(results.to_json(dict(CALIBRATION)))
    assert calibration["criteria"] == {k: list(v) for k, v in CRITERIA.items()}
    assert calibration["seed"] == CALIBRATION_SEED
    for name, record in CALIBRATION.items():  # what the calibration chose is what the run used
        if record.get("value") is None or name not in config.models:
            continue
        for key, value in record["value"].items():
            assert getattr(config.family(name), key) == pytest.approx(value), (name, key)


def test_same_seed_gives_identical_file_contents(cli_files):
    first, second, _ = cli_files
    a, b = results.load(first), results.load(second)
    xr.testing.assert_identical(results.without_timestamps(a), results.without_timestamps(b))
    for node in a.subtree:  # and every group's own attributes (assert_identical checks the root's)
        if node.path != "/":
            assert node.attrs == b[node.path].attrs, node.path


def test_tree_layout(tree, config):
    assert sorted(tree.children) == sorted([*MODELS, "summary"])
    root = tree.to_dataset(inherit=False)
    for var in (
        "context",
        "cue",
        "feature_a",
        "feature_b",
        "csi_ms",
        "rci_ms",
        "is_switch",
        "is_cue_switch",
        "is_first",
        "is_congruent",
        "correct_choice",
    ):
        assert root[var].dims == ("trial",), var
    assert root.sizes["trial"] == config.n_trials
    assert not any(v in root for v in ("cue_onset_ms", "stim_onset_ms"))  # closed loop: per family
    task = json.loads(root.attrs["task_json"])
    assert task["rci_ms"] == config.rci_ms and task["csi_ms"] == list(config.csi_ms)
    for name in MODELS:
        group = tree[name].to_dataset(inherit=False)
        for var in ("choice", "correct", "rt", "stim_onset_ms"):
            assert group[var].dims == ("trial",) and group.sizes["trial"] == config.n_trials, (name, var)
        assert group["gain"].dims == ("time", "population")
        assert group.attrs["tau_ms"] == config.tau_ms
        curves = tree[f"{name}/gain_curves"].to_dataset(inherit=False)
        assert curves["response"].dims == ("condition", "level", "drive", "repeat")
        assert list(curves["condition"].values) == ["a+", "a-", "b+", "b-"]
        # the families that take a release are gain-matched to the SE gate; the SE family is the source
        expected = ["gain_curves", "gain_match"] if name != "se" else ["gain_curves"]
        assert sorted(tree[name].children) == expected, name
    assert "train_loss" in tree["se"].data_vars  # trained in this run
    assert "release" not in tree["se"].data_vars  # the SE model gates by itself


# ----------------------------------------------------------------------------------------- the limited family
def test_a_limited_family_is_padded_to_the_table_with_ran(tree, config):
    n, total = config.trials_of("spiking"), config.n_trials
    assert n < total  # quick mode limits the spiking network
    group = tree["spiking"].to_dataset(inherit=False)
    ran = group["ran"].values
    assert group["ran"].dtype == bool
    np.testing.assert_array_equal(ran, np.arange(total) < n)  # the table's first n trials
    assert np.all(group["choice"].values[~ran] == 0) and np.all(group["correct"].values[~ran] == 0)
    assert np.all(np.isnan(group["rt"].values[~ran])) and np.all(
        np.isnan(group["stim_onset_ms"].values[~ran])
    )
    assert np.all(np.isfinite(group["stim_onset_ms"].values[ran]))
    for name in ("se", "rate"):  # families without a limit run every trial, and have no mask
        assert "ran" not in tree[name].data_vars
        assert np.all(np.isfinite(tree[name]["stim_onset_ms"].values))


def test_a_limited_family_ran_the_tables_first_trials(tree, config):
    n = config.trials_of("spiking")
    root = tree.to_dataset(inherit=False)
    group = tree["spiking"].to_dataset(inherit=False)
    ran = group["ran"].values
    # the trials it was given are the root table's first n (the table is drawn trial by trial)
    sub = config.task(seed=int(root.attrs["task_seed"]), n_trials=n)
    table = sub.trials()
    for var in ("context", "cue", "feature_a", "feature_b", "csi_ms", "rci_ms", "correct_choice"):
        np.testing.assert_array_equal(table[var].values, root[var].values[:n], err_msg=var)
    # ... and it ran them: scored against the root table, its stimulus onsets are the timeline that the
    # table's intervals and its own RTs imply
    choice = group["choice"].values[ran]
    np.testing.assert_array_equal(
        group["correct"].values[ran], (choice == root["correct_choice"].values[:n]).astype(np.int8)
    )
    times = sub.timeline(group["rt"].values[ran])
    np.testing.assert_allclose(group["stim_onset_ms"].values[ran], times["stim_onset_ms"].values, atol=1e-6)
    # after a long CSI the modulator at stimulus onset favours the cued feature's populations: it ran the
    # table's contexts
    mod = group["modulator"]
    long = np.flatnonzero(root["csi_ms"].values[:n] >= 600.0)
    assert long.size >= 3, long
    for k in long:
        m = mod.sel(time=float(group["stim_onset_ms"][k]), method="nearest").values
        cued = RELEVANT == int(root["context"][k])
        assert m[cued].min() > m[~cued].max(), (k, m)


# ------------------------------------------------------------------------------------------- gain matching
def test_gain_matched_release_is_one_on_the_cued_feature_and_the_matched_level_elsewhere(tree, summary):
    for name in ("rate", "spiking"):
        release = tree[name]["release"].values  # (context, population)
        table = tree[f"{name}/gain_match"].to_dataset(inherit=False)
        np.testing.assert_array_equal(release[RELEVANT, POPS], 1.0)
        np.testing.assert_allclose(release[1 - RELEVANT, POPS], table["matched_level"].values, rtol=1e-12)
        np.testing.assert_array_equal(summary["release"].sel(model=name).values, release)
        # the matched level interpolates the family's measured ratio-by-level at the SE target
        np.testing.assert_allclose(table["target_ratio"].values, summary["gain_match_target"].values)
        ok = np.isfinite(table["ratio"].values)
        expected = np.interp(
            table["target_ratio"].values, table["ratio"].values[ok], table["level"].values[ok]
        )
        inside = table["in_range"].values.astype(bool)
        assert inside.any()
        np.testing.assert_allclose(table["matched_level"].values[inside], expected[inside], rtol=1e-9)
        # the cue gain curves were measured with that release: level 0 = own feature cued, 1 = the other
        m = tree[f"{name}/gain_curves"]["modulator"].values  # (population, level)
        np.testing.assert_allclose(m[:, 0], release[RELEVANT, POPS], rtol=1e-12)
        np.testing.assert_allclose(m[:, 1], release[1 - RELEVANT, POPS], rtol=1e-12)


def test_the_target_is_the_se_gate_ratio_and_the_rate_model_meets_it(tree, summary):
    # the target: the SE gate's steady-state gain, irrelevant / relevant, of each population
    profile = summary["gain_profile"].sel(model="se").values
    target = profile[1 - RELEVANT, POPS] / profile[RELEVANT, POPS]
    np.testing.assert_allclose(summary["gain_match_target"].values, target, rtol=1e-9)
    assert np.all(target < 1.0)  # the gate is lower when the population's feature is irrelevant
    # what the run measured: the rate model's cue gain ratio, where both curves are fitted
    curves = tree["rate/gain_curves"].to_dataset(inherit=False)
    fitted = curves["fit_ok"].values.astype(bool).all(axis=1)
    assert fitted.sum() >= 2, curves["fit_ok"].values
    ratio = summary["gain_ratio"].sel(model="rate").values
    np.testing.assert_array_equal(ratio, curves["gain_ratio"].sel(level=1.0).values)
    np.testing.assert_allclose(ratio[fitted], target[fitted], rtol=0.10)
    error = summary["gain_match_error"].sel(model="rate").values
    np.testing.assert_allclose(error, ratio / target - 1.0, rtol=1e-9, atol=1e-12)
    # the spiking input gain is gain_min + (gain_max - gain_min) m at the matched release
    sp = tree.nm.config["spiking"]
    release = summary["release"].sel(model="spiking").values
    expected = sp["gain_min"] + (sp["gain_max"] - sp["gain_min"]) * release
    np.testing.assert_allclose(summary["gain_profile"].sel(model="spiking").values, expected, rtol=1e-12)


# ------------------------------------------------------------------------------ summary against the trials
def test_summary_has_the_documented_variables(summary, config):
    for var, dims in SUMMARY_DIMS.items():
        assert var in summary, var
        assert summary[var].dims == dims, (var, summary[var].dims)
    assert list(summary["model"].values) == MODELS
    assert summary["csi"].values.tolist() == list(config.csi_ms)
    assert summary.attrs["tau_ms"] == config.tau_ms
    assert summary.attrs["equivalence_margin_ms"] == config.equivalence_margin_ms
    for var in ("rt_cost_shortest", "rt_amplitude", "rt_residual", "rt_cost_drop", "rt_prep_fixed_amplitude"):
        for suffix in ("_se", "_low", "_high"):
            assert summary[var + suffix].dims == ("model",), var + suffix
    assert summary["pair"].values.tolist() == ["se - rate", "se - spiking", "rate - spiking"]
    assert summary["quantity"].values.tolist() == ["rt_cost_shortest", "rt_cost_drop"]
    verdicts = {"equivalent", "different", "inconclusive", "undefined"}
    assert set(np.unique(summary["contrast_verdict"].values)) <= verdicts
    ok = np.isfinite(summary["contrast"].values)
    assert ok.any()
    assert np.all(summary["contrast_low"].values[ok] <= summary["contrast"].values[ok])
    assert np.all(summary["contrast"].values[ok] <= summary["contrast_high"].values[ok])
    results.validate(summary, provenance=False)


def test_summary_matches_the_trials(tree, summary):
    root = tree.to_dataset(inherit=False)
    for name in MODELS:
        ran = _ran(tree, name)  # a limited family's measures use the trials it ran
        usable = ~root["is_first"].values[ran]
        switch = root["is_switch"].values[ran]
        congruent = root["is_congruent"].values[ran]
        correct = tree[name]["correct"].values[ran].astype(bool)
        rt = tree[name]["rt"].values[ran]
        row = summary.sel(model=name)
        assert int(row["n_trials"]) == ran.sum()
        assert float(row["accuracy"]) == pytest.approx(correct.mean(), abs=1e-12)
        assert float(row["mean_rt"]) == pytest.approx(np.nanmean(rt[correct]), abs=1e-9)
        ok = correct & np.isfinite(rt) & usable
        cost = rt[ok & switch].mean() - rt[ok & ~switch].mean()
        assert float(row["rt_switch_cost"]) == pytest.approx(cost, abs=1e-9)
        error_cost = (1 - correct[usable & switch]).mean() - (1 - correct[usable & ~switch]).mean()
        assert float(row["error_switch_cost"]) == pytest.approx(error_cost, abs=1e-12)
        repeat = usable & ~switch
        assert float(row["repeat_accuracy"]) == pytest.approx(correct[repeat].mean(), abs=1e-12)
        assert float(row["repeat_mean_rt"]) == pytest.approx(rt[repeat & correct].mean(), abs=1e-9)
        effect = rt[correct & ~congruent].mean() - rt[correct & congruent].mean()
        assert float(row["rt_congruency_effect"]) == pytest.approx(effect, abs=1e-9)
        cell = usable & switch & ~congruent
        expected = correct[cell].mean()
        assert float(row["accuracy_by_condition"].sel(switch=1, congruent=0)) == pytest.approx(expected)


def test_summary_regressions_and_contrasts_are_the_measures_on_the_shared_trials(tree, summary, config):
    from neuromod.measures import model_contrast, switch_regression

    reg = switch_regression(tree, config.tau_ms)
    for name in MODELS:
        for var in (
            "rt_cost_shortest",
            "rt_cost_shortest_se",
            "rt_amplitude",
            "rt_cost_drop",
            "error_residual",
        ):
            np.testing.assert_allclose(
                float(summary[var].sel(model=name)), float(reg[var].sel(model=name)), rtol=1e-9, err_msg=var
            )
    # the paired contrast of se and the limited family uses the trials both ran: the same as restricting
    # the SE model to the spiking network's trials by hand
    root = tree.to_dataset(inherit=False)
    ran = _ran(tree, "spiking")
    nodes = {"/": root}
    for name in ("se", "spiking"):
        group = tree[name].to_dataset(inherit=False)[["choice", "correct", "rt"]]
        nodes[f"/{name}"] = group.assign(ran=("trial", ran))
    shared = xr.DataTree.from_dict(nodes)
    quantities = ["rt_cost_shortest", "rt_cost_drop"]
    c = model_contrast(
        shared,
        "se",
        "spiking",
        tau_ms=config.tau_ms,
        quantity=quantities,
        margin=config.equivalence_margin_ms,
    )
    assert np.all(c["n_clusters"].values <= ran.sum())
    row = summary.sel(pair="se - spiking")
    np.testing.assert_allclose(row["contrast"].values, c["difference"].values, rtol=1e-9)
    np.testing.assert_allclose(row["contrast_low"].values, c["difference_low"].values, rtol=1e-9)
    np.testing.assert_array_equal(row["contrast_verdict"].values, c["verdict"].values)
    full = model_contrast(tree, "se", "rate", tau_ms=config.tau_ms, quantity=quantities, margin=20.0)
    np.testing.assert_allclose(summary["contrast"].sel(pair="se - rate").values, full["difference"].values)


def test_summary_preparation_fits_are_fit_preparation_of_the_costs(tree, summary, config):
    from neuromod.measures import fit_preparation, fit_preparation_fixed, switch_cost

    cost = switch_cost(tree, by=("csi_ms",))
    for prefix in ("rt", "error"):
        fit = fit_preparation(cost, variable=f"{prefix}_cost")
        for key in ("amplitude", "tau_eff", "residual", "identified"):
            np.testing.assert_array_equal(summary[f"{prefix}_prep_{key}"].values, fit[key].values)
    fixed = fit_preparation_fixed(cost, config.tau_ms, variable="rt_cost")
    np.testing.assert_array_equal(summary["rt_prep_fixed_amplitude"].values, fixed["amplitude"].values)


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


def test_gain_curve_levels_are_the_relevant_and_irrelevant_cue(tree, summary):
    # spiking input gain: the more released cue drives the cells harder at the largest drive
    curves = tree["spiking/gain_curves"].to_dataset(inherit=False)
    top = curves["response"].isel(drive=-1).mean("repeat").values
    m = curves["modulator"].values
    clear = np.abs(m[:, 0] - m[:, 1]) > 0.1
    assert clear.any()
    assert np.all(np.sign(top[clear, 0] - top[clear, 1]) == np.sign(m[clear, 0] - m[clear, 1]))
    # SE: the gate at the task's drive is higher under the cue whose steady-state profile is higher
    se = tree["se/gain_curves"].to_dataset(inherit=False)
    gate = se["gain"].sel(drive=1.0).mean("repeat").values  # (population, level)
    profile = summary["gain_profile"].sel(model="se").values
    diff_profile = profile[RELEVANT, POPS] - profile[1 - RELEVANT, POPS]
    clear = np.abs(diff_profile) > 0.1
    assert clear.any()
    assert np.all(np.sign(gate[clear, 0] - gate[clear, 1]) == np.sign(diff_profile[clear]))


# ----------------------------------------------------------------------------------------- bad input, SE
@pytest.mark.parametrize(
    ("make", "match"),
    [
        # the spiking family runs on a 1 ms schedule grid
        (lambda: TaskSwitchingConfig(csi_ms=(100.5,)), r"csi_ms=\(100.5,\) must be whole numbers of ms"),
        (lambda: TaskSwitchingConfig(models=("rate", "rate")), r"must name one model family at least"),
        (lambda: TaskSwitchingConfig(rci_ms=0.0, csi_ms=(0.0, 100.0)), r"rci_ms=0 with a CSI of 0"),
        (lambda: TaskSwitchingConfig.from_dict({"models": ["brain"]}), r"models contains 'brain'; known"),
        (lambda: TaskSwitchingConfig(release="rate"), r"release='rate' must be 'default' or a family that"),
        (
            lambda: TaskSwitchingConfig.from_dict({"spiking": {"tau_ms": 100.0}}),
            r"unknown key 'spiking\.tau_ms'",
        ),
        (
            lambda: TaskSwitchingConfig(max_trials=FrozenMap({"spikng": 10})),
            r"max_trials names \['spikng'\], which are not model families",
        ),
        (
            lambda: TaskSwitchingConfig.from_dict({"max_trials": {"spiking": 4}}),
            r"max_trials\.spiking=4 is outside",
        ),
        (
            lambda: TaskSwitchingConfig.from_dict({"tau_ms": 200.0, "se": {"tau_ms": 300.0}}),
            r"se\.tau_ms=300\.0 differs from tau_ms=200\.0: the 'se' family is built at the run's",
        ),
        (
            lambda: TaskSwitchingConfig(tau_ms=200.0).with_family("se", tau_ms=250.0),
            r"se\.tau_ms=250\.0 differs from tau_ms=200\.0",
        ),
        (lambda: TaskSwitchingConfig(coherences_pct=()), r"coherences_pct"),
    ],
)
def test_bad_settings_are_refused_with_the_key(make, match):
    with pytest.raises(ConfigError, match=match):
        make()


def test_settings_the_config_resolves():
    assert TaskSwitchingConfig(models=("rate",), release="default", csi_ms=(100.5,)).csi_ms == (100.5,)
    cfg = TaskSwitchingConfig(tau_ms=250.0)
    assert cfg.family("se").tau_ms == 250.0  # the SE model is built at the run's tau
    assert cfg.to_dict()["se"]["tau_ms"] == 250.0
    assert TaskSwitchingConfig.from_dict(cfg.to_dict()) == cfg
    assert (
        TaskSwitchingConfig.from_dict({"tau_ms": 250.0, "se": {"tau_ms": 250.0}}).family("se").tau_ms == 250.0
    )
    limited = TaskSwitchingConfig(n_trials=100, max_trials=FrozenMap({"spiking": 30, "rate": 500}))
    assert (
        limited.trials_of("spiking") == 30
        and limited.trials_of("rate") == 100
        and limited.trials_of("se") == 100
    )
    with pytest.raises(TypeError, match=r"config must be a TaskSwitchingConfig, got dict"):
        run_task_switching({"n_trials": 8})


def test_experiment_file_holds_the_defaults():
    path = Path(__file__).resolve().parents[2] / "experiments" / "task_switching.toml"
    assert TaskSwitchingConfig.from_toml(path) == TaskSwitchingConfig()


def test_missing_se_model_file_fails_before_training(tmp_path, monkeypatch):
    import neuromod.protocols.se_task as se_task

    monkeypatch.setattr(se_task, "train_se_task_model", lambda *a, **k: pytest.fail("trained"))
    config = TaskSwitchingConfig(models=("rate",)).with_family("se", model_path=str(tmp_path / "none"))
    with pytest.raises(FileNotFoundError, match="none"):
        run_task_switching(config)


@pytest.fixture(scope="module")
def se_model():
    """A quick SE model trained at the default tau_ms (400 ms)."""
    from neuromod.gating.task_model import SETaskModelConfig

    model, _ = train_se_task_model(SETaskModelConfig(tau_ms=400.0), quick=True, progress=False, seed=5)
    return model


def test_an_se_model_trained_at_another_tau_is_refused_before_any_work(se_model, monkeypatch):
    import neuromod.protocols.task_switching as ts

    monkeypatch.setattr(ts, "match_release", lambda *a, **k: pytest.fail("gain matching ran"))
    config = quick(TaskSwitchingConfig(models=("se", "rate"), tau_ms=300.0, n_trials=16))
    with pytest.raises(
        ValueError, match=r"'se' family was built at tau_ms=400\.0, but this run's tau_ms=300\.0"
    ):
        run_task_switching(config, families={"se": SEFamily.from_model(se_model)})


def test_loaded_se_model_gives_the_same_run(tmp_path, se_model):
    save_se_model(se_model, tmp_path / "se")
    config = quick(TaskSwitchingConfig(models=("se", "rate"), n_trials=16, seed=1))
    config = config.replace(gain=config.gain.replace(n_repeats=8, n_drives=7, match_levels=4))  # seconds
    passed = run_task_switching(config, families={"se": SEFamily.from_model(se_model)})
    loaded = run_task_switching(config.with_family("se", model_path=str(tmp_path / "se")))
    assert loaded["se"].attrs["se_model_origin"].startswith("loaded from")
    assert passed["se"].attrs["se_model_origin"] == "passed in"
    assert "train_loss" not in loaded["se"].data_vars
    for group in ("se", "rate", "summary", "se/gain_curves", "rate/gain_curves", "rate/gain_match"):
        a, b = passed[group].to_dataset(inherit=False), loaded[group].to_dataset(inherit=False)
        xr.testing.assert_equal(a, b)
        drop = {"se_model_origin"}
        assert {k: v for k, v in a.attrs.items() if k not in drop} == {
            k: v for k, v in b.attrs.items() if k not in drop
        }, group


def test_default_release_without_se_trains_nothing(monkeypatch):
    import neuromod.protocols.se_task as se_task
    from neuromod.protocols.sessions import DEFAULT_RELEASE

    monkeypatch.setattr(se_task, "train_se_task_model", lambda *a, **k: pytest.fail("trained"))
    tree = run_task_switching(quick(TaskSwitchingConfig(models=("rate",), release="default", n_trials=16)))
    assert sorted(tree.children) == ["rate", "summary"]
    assert sorted(tree["rate"].children) == ["gain_curves"]  # nothing to match: no gain_match group
    np.testing.assert_array_equal(tree["summary"]["release"].sel(model="rate").values, DEFAULT_RELEASE)
    np.testing.assert_array_equal(tree["summary"]["gain_profile"].sel(model="rate").values, DEFAULT_RELEASE)
    assert np.all(np.isnan(tree["summary"]["gain_match_target"].values))
