"""Tests of the task-switching report (:mod:`neuromod.protocols.switching_report`): the text table and the
figure, on a synthetic result (known intervals, missing variables) and on a real quick run."""

from __future__ import annotations

import re

import matplotlib.pyplot as plt
import numpy as np
import pytest
import xarray as xr
from matplotlib.figure import Figure

from neuromod.protocols.switching_figure import plot
from neuromod.protocols.switching_report import summarize
from neuromod.protocols.task_switching import TaskSwitchingConfig, quick, run_task_switching

POPULATIONS = ["a+", "a-", "b+", "b-"]
CSI = [50.0, 300.0, 1200.0]
INTERVAL = re.compile(r"(-?[\d,.]+) \[(-?[\d,.]+), (-?[\d,.]+)\]( ms)?(.*)")


def _synthetic(models=("m1", "m2"), *, contrasts: bool = True) -> xr.DataTree:
    """A task-switching-like result: m1's RT cost interval includes 0, m2's does not."""
    rng = np.random.default_rng(0)
    n_trials, n = 40, len(models)
    context = np.arange(n_trials) // 2 % 2
    is_switch = np.r_[False, context[1:] != context[:-1]]
    root = xr.Dataset(
        {
            "context": ("trial", context.astype(np.int8)),
            "csi_ms": ("trial", np.resize(CSI, n_trials)),
            "is_switch": ("trial", is_switch),
            "is_first": ("trial", np.arange(n_trials) == 0),
        },
        coords={"trial": np.arange(n_trials)},
    )
    time = np.arange(0.0, 3000.0 * n_trials, 20.0)
    groups = {}
    for i, m in enumerate(models):
        ds = xr.Dataset(
            {
                "stim_onset_ms": ("trial", 3000.0 * np.arange(n_trials) + 1000.0),
                "rt": ("trial", np.full(n_trials, 500.0)),
                "gain": (("time", "population"), 0.5 + 0.1 * rng.random((time.size, 4))),
            },
            coords={"time": time, "population": POPULATIONS},
        )
        if i == 1:
            ds["ran"] = ("trial", np.arange(n_trials) < 30)
        groups[f"/{m}"] = ds

    def model_var(values, low, high):
        values = np.asarray(values, dtype=float)
        return values, values + np.asarray(low, dtype=float), values + np.asarray(high, dtype=float)

    data = {}
    for name, (v, lo, hi) in {
        "repeat_accuracy": model_var([0.93, 0.80][:n], [-0.03] * n, [0.03] * n),
        "repeat_mean_rt": model_var([600.0, 800.0][:n], [-20.0] * n, [20.0] * n),
        "rt_cost_shortest": model_var([10.0, 40.0][:n], [-20.0] * n, [20.0] * n),
        "rt_amplitude": model_var([5.0, 50.0][:n], [-30.0] * n, [30.0] * n),
        "rt_residual": model_var([2.0, -3.0][:n], [-5.0] * n, [5.0] * n),
        "rt_cost_drop": model_var([8.0, 35.0][:n], [-20.0] * n, [20.0] * n),
        "rt_error_minus_correct": model_var([50.0, 60.0][:n], [-10.0] * n, [10.0] * n),
    }.items():
        for suffix, values in (("", v), ("_low", lo), ("_high", hi)):
            data[name + suffix] = ("model", values)
    by_csi = np.array([[30.0, 10.0, 0.0], [60.0, 30.0, 5.0]])[:n]
    for suffix, shift in (("", 0.0), ("_low", -15.0), ("_high", 15.0)):
        data[f"rt_switch_cost_by_csi{suffix}"] = (("model", "csi"), by_csi + shift)
        data[f"error_switch_cost_by_csi{suffix}"] = (("model", "csi"), by_csi / 1000.0 + shift / 1000.0)
    data.update(
        rt_prep_fixed_amplitude=("model", [25.0, np.nan][:n]),
        rt_prep_fixed_residual=("model", [1.0, np.nan][:n]),
        rt_prep_tau_eff=("model", [350.0, np.nan][:n]),
        rt_prep_tau_eff_se=("model", [40.0, np.nan][:n]),
        rt_prep_identified=("model", [1, 0][:n]),
        rt_cost_shortest_half_width=("model", [20.0, 20.0][:n]),
        rt_cost_shortest_trials_needed=("model", [1234.0, 100.0][:n]),
        gain_ratio=(("model", "population"), np.full((n, 4), 0.8)),
        gain_ratio_se=(("model", "population"), np.full((n, 4), 0.01)),
        gain_match_error=(("model", "population"), np.full((n, 4), 0.02)),
        gain_match_target=("population", np.full(4, 0.78)),
        modulation_class=(("model", "population"), np.full((n, 4), "multiplicative")),
    )
    summary = xr.Dataset(data, coords={"model": list(models), "csi": CSI, "population": POPULATIONS})
    summary.attrs.update(tau_ms=400.0, equivalence_margin_ms=20.0)
    if contrasts and n > 1:
        summary = summary.assign(
            contrast=(("pair", "quantity"), [[-30.0, -27.0]]),
            contrast_low=(("pair", "quantity"), [[-50.0, -60.0]]),
            contrast_high=(("pair", "quantity"), [[-10.0, 6.0]]),
            contrast_verdict=(("pair", "quantity"), [["different", "inconclusive"]]),
        ).assign_coords(pair=["m1 - m2"], quantity=["rt_cost_shortest", "rt_cost_drop"])
    return xr.DataTree.from_dict({"/": root, **groups, "/summary": summary})


def _unresolved_intervals_are_marked(text: str) -> int:
    """Every printed interval of an effect that includes 0 is followed by 'not resolved', and no other one;
    returns the number of intervals checked."""
    checked = 0
    for line in text.splitlines():
        if line.startswith("repeat "):  # levels (accuracy, RT), not effects
            continue
        for cell in re.split(r"\s{3,}|; ", line):
            match = INTERVAL.search(cell)
            if not match:
                continue
            low, high = (float(match.group(k).replace(",", "")) for k in (2, 3))
            assert ("not resolved" in match.group(5)) == (low <= 0.0 <= high), line
            checked += 1
    return checked


@pytest.fixture(scope="module")
def quick_tree() -> xr.DataTree:
    """A real quick run of two models (~20 s)."""
    return run_task_switching(quick(TaskSwitchingConfig(models=("se", "rate"))))


# ------------------------------------------------------------------------------------------------ summarize
def test_summarize_names_every_model_and_marks_unresolved_effects():
    text = summarize(_synthetic())
    header = text.splitlines()[0]
    assert "m1" in header and "m2" in header
    row = next(line for line in text.splitlines() if line.startswith("RT switch cost (ms), CSI 50 ms"))
    assert row.count("not resolved") == 1  # m1: 10 [-10, 30]; m2: 40 [20, 60]
    assert "10 [-10, 30] not resolved" in row and "40 [20, 60]" in row
    assert "m1: 95 % half-width ±20 ms, not resolved (1,234 trials would resolve it" in text
    assert "m2: 95 % half-width ±20 ms, resolved" in text
    assert "-30 [-50, -10] ms; equivalence: different" in text
    assert "-27 [-60, 6] ms not resolved; equivalence: inconclusive" in text
    assert "equivalence margin ±20 ms" in text
    assert "0.93 [0.90, 0.96] in" in text and "0.80 [0.77, 0.83] out" in text
    assert "350 (SE 40)" in text and "not identified" in text
    assert "30 of 40" in text  # m2 ran the first 30 trials
    assert _unresolved_intervals_are_marked(text) == 14  # 6 effects x 2 models, 2 contrasts


def test_summarize_one_model_and_missing_variables():
    tree = _synthetic(("m1",))
    summary = tree["summary"].to_dataset(inherit=False).drop_vars(["rt_prep_tau_eff", "gain_match_target"])
    tree["summary"] = xr.DataTree(summary)
    text = summarize(tree)
    assert text.splitlines()[0].split() == ["m1"]
    assert "paired contrasts: none" in text
    assert "(target" not in text


# ----------------------------------------------------------------------------------------------------- plot
@pytest.mark.parametrize("models", [("m1", "m2"), ("m1",)])
def test_plot_panels(models):
    fig = plot(_synthetic(models))
    try:
        assert isinstance(fig, Figure)
        assert len(fig.axes) == 5 + len(models)  # A, B, C, D, F and one gain-trace axis per model (E)
        titles = [ax.get_title(loc="left")[:1] for ax in fig.axes]
        assert sorted(t for t in titles if t) == list("ABCDEF")
    finally:
        plt.close(fig)


def test_plot_survives_nan_fits_and_missing_groups():
    tree = _synthetic()
    summary = tree["summary"].to_dataset(inherit=False)
    summary["gain_ratio"][:] = np.nan
    summary = summary.drop_vars(["rt_prep_fixed_amplitude", "contrast", "error_switch_cost_by_csi"])
    # no model groups: no gain traces
    tree = xr.DataTree.from_dict({"/": tree.to_dataset(inherit=False), "/summary": summary})
    fig = plot(tree)
    try:
        assert len(fig.axes) == 7
    finally:
        plt.close(fig)


# --------------------------------------------------------------------------------------------- a real run
def test_report_of_a_quick_run(quick_tree):
    text = summarize(quick_tree)
    assert text.splitlines()[0].split() == ["se", "rate"]
    assert "RT switch cost (ms)" in text and "paired contrasts on the shared trials" in text
    assert "se - rate" in text
    assert _unresolved_intervals_are_marked(text) >= 1  # how many depends on the quick run's behaviour
    fig = plot(quick_tree)
    try:
        assert len(fig.axes) == 7
        trace = fig.axes[4]  # E: the first model's gains around the switch, 1 s either side of the onset
        assert trace.get_lines() and trace.get_xlim() == (-1000.0, 1000.0)
    finally:
        plt.close(fig)
