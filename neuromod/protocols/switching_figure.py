"""The task-switching experiment's six-panel figure (``docs/task-switching.png``).

It reads the ``summary`` group of a task-switching result
(``neuromod.protocols.switching_summary.summary``) and, for the gain traces, each model's group (``gain``
over (``time``, ``population``), ``stim_onset_ms``) and the trial table at the root. A variable that a result
lacks is left out of its panel; nothing here fails on it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import xarray as xr

from neuromod.plotting import MODEL_COLORS, error_bars
from neuromod.protocols.calibration import CRITERIA
from neuromod.protocols.families._common import RELEVANT_CONTEXT
from neuromod.protocols.switching_report import (
    _RT_ESTIMATES,
    _csi_text,
    _includes_zero,
    _models,
    _shortest_csi,
    _summary,
    _triple,
    _value,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["plot"]


def _color(model: str) -> str:
    return MODEL_COLORS.get(model, "0.3")


def _offsets(n: int, spread: float) -> np.ndarray:
    return np.linspace(-spread, spread, n) if n > 1 else np.zeros(1)


def _by_csi(s: xr.Dataset, ax: Axes, var: str, models: Sequence[str], fits: bool) -> None:
    """Per-CSI switch cost per model with its intervals (and the fixed-tau fit curve of the RT cost)."""
    if "csi" not in s.coords or var not in s:
        ax.text(0.5, 0.5, f"no {var}", transform=ax.transAxes, ha="center", va="center")
        return
    csi = s["csi"].values.astype(float)
    span = float(csi.max() - csi.min()) or 1.0
    fine = np.linspace(0.0, csi.max() * 1.03, 300)
    tau = float(s.attrs.get("tau_ms", np.nan))
    for i, m in enumerate(models):
        y = s[var].sel(model=m).values.astype(float)
        low = s[f"{var}_low"].sel(model=m).values if f"{var}_low" in s else np.full_like(y, np.nan)
        high = s[f"{var}_high"].sel(model=m).values if f"{var}_high" in s else np.full_like(y, np.nan)
        ax.errorbar(
            csi + _offsets(len(models), 0.012 * span)[i],
            y,
            yerr=np.nan_to_num(error_bars(y, low, high)),
            fmt="o",
            ms=4,
            capsize=2,
            color=_color(m),
            label=m,
        )
        if fits:
            a, r = _value(s, "rt_prep_fixed_amplitude", m), _value(s, "rt_prep_fixed_residual", m)
            if np.isfinite(a) and np.isfinite(r) and np.isfinite(tau):
                ax.plot(fine, a * np.exp(-fine / tau) + r, "-", lw=1.2, color=_color(m))
    ax.axhline(0.0, color="0.6", lw=0.8, ls="--")
    ax.set_xlabel("cue-stimulus interval (ms)")


def _estimates(s: xr.Dataset, ax: Axes, models: Sequence[str]) -> None:
    """The regression estimates of the RT switch cost per model, with their intervals."""
    csi = _csi_text(_shortest_csi(s))
    names = [(v, lab.format(csi=csi)) for v, _, lab in _RT_ESTIMATES if v in s]
    if not names:
        ax.text(0.5, 0.5, "no regression estimates", transform=ax.transAxes, ha="center", va="center")
        return
    ys = np.arange(len(names))[::-1].astype(float)
    for i, m in enumerate(models):
        vals = np.array([_triple(s, v, m) for v, _ in names])
        ax.errorbar(
            vals[:, 0],
            ys + _offsets(len(models), 0.18)[::-1][i],
            xerr=np.nan_to_num(error_bars(vals[:, 0], vals[:, 1], vals[:, 2])),
            fmt="o",
            ms=4,
            capsize=2,
            color=_color(m),
            label=m,
        )
        for y, (v, lo, hi) in zip(ys + _offsets(len(models), 0.18)[::-1][i], vals, strict=True):
            if _includes_zero(lo, hi):  # open marker: not resolved
                ax.plot(v, y, "o", ms=4, mfc="white", mec=_color(m))
    missing = [m for m in models if not any(np.isfinite(_value(s, v, m)) for v, _ in names)]
    if missing:
        ax.text(0.01, 0.01, f"not defined: {', '.join(missing)}", transform=ax.transAxes, fontsize=8)
    ax.axvline(0.0, color="0.3", lw=0.8)
    ax.set_yticks(ys, [lab for _, lab in names])
    ax.set_ylim(ys.min() - 0.5, ys.max() + 0.5)
    ax.set_xlabel("RT (ms)")


def _gain_ratios(s: xr.Dataset, ax: Axes, models: Sequence[str]) -> None:
    """Gain ratio irrelevant / relevant per population per model (±1.96 SE) and the matching target."""
    if "gain_ratio" not in s or "population" not in s.coords:
        ax.text(0.5, 0.5, "no gain ratios", transform=ax.transAxes, ha="center", va="center")
        return
    pops = [str(p) for p in s["population"].values]
    x = np.arange(len(pops), dtype=float)
    for i, m in enumerate(models):
        y = s["gain_ratio"].sel(model=m).values.astype(float)
        se = (
            s["gain_ratio_se"].sel(model=m).values.astype(float) if "gain_ratio_se" in s else np.zeros_like(y)
        )
        ax.errorbar(
            x + _offsets(len(models), 0.2)[i],
            y,
            yerr=np.nan_to_num(1.96 * se),
            fmt="o",
            ms=5,
            capsize=2,
            color=_color(m),
            label=m,
        )
    if not np.isfinite(s["gain_ratio"].sel(model=list(models)).values.astype(float)).any():
        ax.text(
            0.5,
            0.5,
            "gain ratio not defined\nfor any population",
            transform=ax.transAxes,
            ha="center",
            va="center",
            fontsize=9,
        )
    if "gain_match_target" in s:
        target = s["gain_match_target"].values.astype(float)
        if np.isfinite(target).any():
            ax.hlines(target, x - 0.35, x + 0.35, color="black", lw=2, label="target (SE gate ratio)")
    ax.axhline(1.0, color="0.6", lw=0.8, ls="--")
    ax.set_xticks(x, pops)
    ax.set_xlabel("sensory population")
    ax.set_ylabel("f-I gain ratio, irrelevant / relevant")


def _switch_trial(tree: xr.DataTree, models: Sequence[str]) -> tuple[int | None, float]:
    """A switch trial at the shortest CSI that every model ran with a stimulus onset (the first one), and
    the CSI; (None, nan) where there is none."""
    root = tree.to_dataset(inherit=False)
    if not {"is_switch", "csi_ms"} <= set(root.data_vars):
        return None, float("nan")
    csi = root["csi_ms"].values.astype(float)
    shortest = float(np.nanmin(csi))
    ok = root["is_switch"].values.astype(bool) & (csi == shortest)
    if "is_first" in root:
        ok &= ~root["is_first"].values.astype(bool)
    for m in models:
        if m not in tree.children:
            continue
        ds = tree[m].to_dataset(inherit=False)
        if "stim_onset_ms" not in ds or ds.sizes.get("trial") != ok.size:
            continue
        ok &= np.isfinite(ds["stim_onset_ms"].values.astype(float))
        if "ran" in ds:
            ok &= ds["ran"].values.astype(bool)
    idx = np.flatnonzero(ok)
    return (int(idx[0]), shortest) if idx.size else (None, shortest)


def _gain_trace(tree: xr.DataTree, ax: Axes, model: str, trial: int | None, csi: float, legend: bool) -> None:
    """One model's population gains from 1 s before to 1 s after the stimulus onset of `trial`."""
    ds = tree[model].to_dataset(inherit=False) if model in tree.children else xr.Dataset()
    root = tree.to_dataset(inherit=False)
    ax.set_ylabel(model, color=_color(model))
    if trial is None or "gain" not in ds or "stim_onset_ms" not in ds or "context" not in root:
        ax.text(0.5, 0.5, "no gain trace", transform=ax.transAxes, ha="center", va="center", fontsize=8)
        return
    onset = float(ds["stim_onset_ms"].values[trial])
    window = ds["gain"].sel(time=slice(onset - 1000.0, onset + 1000.0))
    t = window["time"].values - onset
    context = int(root["context"].values[trial])
    pops = [str(p) for p in window["population"].values]
    drawn: set[bool] = set()
    for j, pop in enumerate(pops):
        relevant = j < len(RELEVANT_CONTEXT) and RELEVANT_CONTEXT[j] == context
        ax.plot(
            t,
            window.sel(population=pop).values,
            "-" if relevant else "--",
            lw=1.2,
            color=_color(model) if relevant else "0.55",
            label=("relevant" if relevant else "irrelevant") if relevant not in drawn else None,
        )
        drawn.add(relevant)
    ax.axvline(0.0, color="black", lw=0.8)
    if np.isfinite(csi):
        ax.axvline(-csi, color="black", lw=0.8, ls=":")
    rt = float(ds["rt"].values[trial]) if "rt" in ds else float("nan")
    if np.isfinite(rt) and rt <= 1000.0:
        ax.axvline(rt, color="tab:red", lw=0.8, ls=":")
    ax.set_xlim(-1000.0, 1000.0)
    if legend:
        ax.legend(
            fontsize=7, frameon=False, loc="best", title="populations of the new task", title_fontsize=7
        )


def _calibration(s: xr.Dataset, ax: Axes, models: Sequence[str]) -> None:
    """Repeat-trial accuracy against mean correct RT per model, and the calibration criteria."""
    from matplotlib.patches import Rectangle

    (a_lo, a_hi), (r_lo, r_hi) = CRITERIA["repeat_accuracy"], CRITERIA["repeat_mean_rt_ms"]
    ax.add_patch(
        Rectangle(
            (r_lo, a_lo), r_hi - r_lo, a_hi - a_lo, color="tab:green", alpha=0.15, lw=0, label="criteria"
        )
    )
    xs, ys = [r_lo, r_hi], [a_lo, a_hi]
    for m in models:
        acc, rt = _triple(s, "repeat_accuracy", m), _triple(s, "repeat_mean_rt", m)
        if not (np.isfinite(acc[0]) and np.isfinite(rt[0])):
            continue
        ax.errorbar(
            rt[0],
            acc[0],
            xerr=np.nan_to_num(error_bars(*rt)),
            yerr=np.nan_to_num(error_bars(*acc)),
            fmt="o",
            ms=6,
            capsize=2,
            color=_color(m),
            label=m,
        )
        xs += [v for v in rt if np.isfinite(v)]
        ys += [v for v in acc if np.isfinite(v)]
    pad_x, pad_y = 0.08 * (max(xs) - min(xs)), 0.08 * (max(ys) - min(ys))
    ax.set_xlim(min(xs) - pad_x, max(xs) + pad_x)
    ax.set_ylim(min(ys) - pad_y, min(1.0, max(ys)) + pad_y)
    ax.set_xlabel("mean correct RT, repeat trials (ms)")
    ax.set_ylabel("accuracy, repeat trials")


def plot(tree: xr.DataTree) -> Figure:
    """The six-panel figure of the comparison.

    A: RT switch cost by CSI per model (95 % intervals) with the fixed-tau fit ``A exp(-CSI/tau) + R`` of
    these costs; B: error-rate switch cost by CSI; C: the regression estimates of the RT cost (at the
    shortest CSI, A, R, shortest minus longest CSI; open markers: the interval includes 0); D: gain ratio
    irrelevant / relevant per population per model against the gain-matching target; E: each model's
    population gains around one switch trial at the shortest CSI (relevant populations of the new task
    solid, irrelevant dashed; dotted lines: cue onset, and the response in red); F: repeat-trial accuracy
    and mean correct RT against the calibration criteria.

    The figure has ``5 + number of models`` axes (panel E has one per model).
    """
    import matplotlib.pyplot as plt

    s = _summary(tree)
    models = _models(s)
    tau = float(s.attrs.get("tau_ms", np.nan))
    fig = plt.figure(figsize=(14.0, 9.0), layout="constrained")
    grid = fig.add_gridspec(2, 3)
    ax_a = fig.add_subplot(grid[0, 0])
    ax_b = fig.add_subplot(grid[0, 1], sharex=ax_a)
    ax_c = fig.add_subplot(grid[0, 2])
    ax_d = fig.add_subplot(grid[1, 0])
    sub = grid[1, 1].subgridspec(max(len(models), 1), 1)
    axes_e = [fig.add_subplot(sub[i, 0]) for i in range(max(len(models), 1))]
    for ax in axes_e[1:]:
        ax.sharex(axes_e[0])
    ax_f = fig.add_subplot(grid[1, 2])

    _by_csi(s, ax_a, "rt_switch_cost_by_csi", models, fits=True)
    ax_a.set_ylabel("RT switch cost (ms)")
    ax_a.set_title(f"A  RT switch cost (95 % CI; lines: A exp(-CSI/{tau:g}) + R)", loc="left", fontsize=10)
    ax_a.legend(fontsize=8, frameon=False)

    _by_csi(s, ax_b, "error_switch_cost_by_csi", models, fits=False)
    ax_b.set_ylabel("error-rate switch cost (switch - repeat)")
    ax_b.set_title("B  error-rate switch cost (95 % Newcombe CI)", loc="left", fontsize=10)

    _estimates(s, ax_c, models)
    ax_c.set_title(
        f"C  RT cost regression, tau = {tau:g} ms\n(95 % CI; open markers: the CI includes 0)",
        loc="left",
        fontsize=10,
    )

    _gain_ratios(s, ax_d, models)
    ax_d.set_title("D  gain ratio vs the gain-matching target (±1.96 SE)", loc="left", fontsize=10)
    ax_d.legend(fontsize=8, frameon=False)

    trial, csi = _switch_trial(tree, models)
    for i, (ax, m) in enumerate(zip(axes_e, models, strict=False)):
        _gain_trace(tree, ax, m, trial, csi, legend=i == 0)
        if ax is not axes_e[-1]:
            ax.tick_params(labelbottom=False)
    axes_e[-1].set_xlabel("time from stimulus onset (ms)")
    which = f"trial {trial}" if trial is not None else "no trial"
    axes_e[0].set_title(
        f"E  gain around a switch, CSI {_csi_text(csi)} ms ({which}; ':' cue, response)",
        loc="left",
        fontsize=10,
    )

    _calibration(s, ax_f, models)
    ax_f.set_title("F  repeat trials vs the calibration criteria (95 % CI)", loc="left", fontsize=10)
    ax_f.legend(fontsize=8, frameon=False)

    n = tree.to_dataset(inherit=False).sizes.get("trial", 0)
    fig.suptitle(f"Cued task switching: {', '.join(models)} on one {n}-trial session", fontsize=12)
    return fig
