"""The task-switching experiment's report: the side-by-side text table and the six-panel figure.

Both read the ``summary`` group of a task-switching result
(:func:`neuromod.protocols.switching_summary.summary`); the figure's gain traces also read each model's
group (``gain`` over (``time``, ``population``), ``stim_onset_ms``) and the trial table at the root. A
variable that a result lacks (an older file, a single model, a fit that is not defined) is shown as ``-``
or left out of its panel; nothing here fails on it.

Every effect is printed with its 95 % interval, and an effect whose interval includes 0 reads
"not resolved": the run cannot tell it from no effect.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from neuromod.plotting import MODEL_COLORS, error_bars, format_interval
from neuromod.protocols.calibration import CRITERIA
from neuromod.protocols.families._common import RELEVANT_CONTEXT

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["plot", "summarize"]

NOT_RESOLVED = "not resolved"

#: The regression estimates of the RT switch cost: (summary variable, table label, figure label).
_RT_ESTIMATES = (
    ("rt_cost_shortest", "RT switch cost (ms), CSI {csi} ms", "cost at CSI {csi} ms"),
    ("rt_amplitude", "  preparation amplitude A (ms)", "amplitude A"),
    ("rt_residual", "  residual cost R (ms)", "residual R"),
    ("rt_cost_drop", "  shortest minus longest CSI (ms)", "shortest - longest CSI"),
)

#: How the paired contrasts' quantities read in the table.
_CONTRAST_LABELS = {
    "rt_cost_shortest": "RT cost at CSI {csi} ms",
    "rt_cost_drop": "shortest minus longest CSI",
}


# ------------------------------------------------------------------------------------------------------
# reading the summary
# ------------------------------------------------------------------------------------------------------
def _summary(tree: xr.DataTree) -> xr.Dataset:
    return tree["summary"].to_dataset(inherit=False)


def _models(s: xr.Dataset) -> list[str]:
    return [str(m) for m in s["model"].values] if "model" in s.coords else []


def _value(s: xr.Dataset, var: str, model: str | None = None, **sel: Any) -> float:
    """One value of a summary variable as a float; NaN where the variable (or the selection) is missing."""
    if var not in s:
        return float("nan")
    da = s[var]
    if model is not None and "model" in da.dims:
        da = da.sel(model=model)
    try:
        da = da.sel({k: v for k, v in sel.items() if k in da.dims})
        out = float(da)
    except (KeyError, TypeError, ValueError):
        return float("nan")
    return out


def _triple(s: xr.Dataset, var: str, model: str | None = None, **sel: Any) -> tuple[float, float, float]:
    """(value, low, high) of a summary variable with its ``_low``/``_high`` bounds (NaN where missing)."""
    value, low, high = (_value(s, var + suffix, model, **sel) for suffix in ("", "_low", "_high"))
    return value, low, high


def _interval(value: float, low: float = np.nan, high: float = np.nan, digits: int = 0) -> str:
    """:func:`~neuromod.plotting.format_interval` without negative zeros (``-0`` reads as an effect)."""

    def clean(x: float) -> float:
        return round(float(x), digits) + 0.0 if np.isfinite(x) else float(x)

    return format_interval(clean(value), clean(low), clean(high), digits=digits)


def _includes_zero(low: float, high: float) -> bool:
    return bool(np.isfinite(low) and np.isfinite(high) and low <= 0.0 <= high)


def _effect(value: float, low: float, high: float, digits: int = 0, units: str = "") -> str:
    """``"value [low, high]"`` (and `units`), followed by "not resolved" when the interval includes 0."""
    text = _interval(value, low, high, digits=digits)
    if text == "-":
        return text
    text += units
    if not (np.isfinite(low) and np.isfinite(high)):
        return f"{text} (no interval: {NOT_RESOLVED})"
    return f"{text} {NOT_RESOLVED}" if _includes_zero(low, high) else text


def _shortest_csi(s: xr.Dataset) -> float:
    return float(np.min(s["csi"].values)) if "csi" in s.coords and s["csi"].size else float("nan")


def _csi_text(csi: float) -> str:
    return f"{csi:g}" if np.isfinite(csi) else "shortest"


def _trials_run(tree: xr.DataTree, s: xr.Dataset, model: str) -> tuple[float, float]:
    """(trials the model ran, trials in the table)."""
    total = float(tree.to_dataset(inherit=False).sizes.get("trial", np.nan))
    if model in tree.children:
        ds = tree[model].to_dataset(inherit=False)
        if "ran" in ds:
            return float(ds["ran"].values.astype(bool).sum()), total
        if "trial" in ds.sizes:
            return float(ds.sizes["trial"]), total
    return _value(s, "n_trials", model), total


# ------------------------------------------------------------------------------------------------------
# the text table
# ------------------------------------------------------------------------------------------------------
def _criterion(value: float, low: float, high: float, digits: int, bounds: tuple[float, float]) -> str:
    text = _interval(value, low, high, digits=digits)
    if text == "-":
        return text
    return f"{text} {'in' if bounds[0] <= value <= bounds[1] else 'out'}"


def _count(n: float) -> str:
    return f"{n:,.0f}" if np.isfinite(n) else "-"


def _resolution_note(s: xr.Dataset, model: str, csi: str) -> str:
    value, low, high = _triple(s, "rt_cost_shortest", model)
    half = _value(s, "rt_cost_shortest_half_width", model)
    needed = _value(s, "rt_cost_shortest_trials_needed", model)
    if not np.isfinite(value):
        return f"{model}: the RT cost at CSI {csi} ms is not defined"
    width = f"95 % half-width ±{half:.0f} ms" if np.isfinite(half) else "no interval"
    if not (np.isfinite(low) and np.isfinite(high)):
        return f"{model}: {width}, not resolved (no interval)"
    if not _includes_zero(low, high):
        return f"{model}: {width}, resolved"
    if np.isfinite(needed) and needed > 0:
        why = f"{_count(needed)} trials would resolve it at 80 % power"
    else:
        why = "no number of trials would resolve an estimate of 0"
    return f"{model}: {width}, {NOT_RESOLVED} ({why})"


def _table(rows: Sequence[tuple[str, Sequence[str]]], models: Sequence[str]) -> list[str]:
    width = max(len(r[0]) for r in rows) + 2
    cols = [max(len(m), *(len(r[1][i]) for r in rows)) + 3 for i, m in enumerate(models)]
    header = "".ljust(width) + "".join(m.ljust(w) for m, w in zip(models, cols, strict=True))
    lines = [header.rstrip(), "-" * len(header.rstrip())]
    for name, values in rows:
        lines.append(
            (name.ljust(width) + "".join(v.ljust(w) for v, w in zip(values, cols, strict=True))).rstrip()
        )
    return lines


def summarize(tree: xr.DataTree) -> str:
    """A side-by-side table of the summary, one column per model, then the resolution of the RT cost, the
    paired contrasts between the models with their equivalence verdicts, and notes on the measures."""
    s = _summary(tree)
    models = _models(s)
    if not models:
        return "task switching: the summary holds no model"
    tau = float(s.attrs.get("tau_ms", np.nan))
    margin = float(s.attrs.get("equivalence_margin_ms", np.nan))
    csi = _csi_text(_shortest_csi(s))
    (acc_lo, acc_hi), (rt_lo, rt_hi) = CRITERIA["repeat_accuracy"], CRITERIA["repeat_mean_rt_ms"]

    def each(fn) -> list[str]:
        return [fn(m) for m in models]

    def trials(m: str) -> str:
        n, total = _trials_run(tree, s, m)
        return f"{_count(n)} of {_count(total)}" if np.isfinite(total) and total != n else _count(n)

    def tau_eff(m: str) -> str:
        if "rt_prep_tau_eff" not in s:
            return "-"
        if int(np.nan_to_num(_value(s, "rt_prep_identified", m))) != 1:
            return "not identified"
        t, se = _value(s, "rt_prep_tau_eff", m), _value(s, "rt_prep_tau_eff_se", m)
        return f"{t:.0f} (SE {se:.0f})" if np.isfinite(se) else f"{t:.0f}"

    def gain(pop: str):
        def cell(m: str) -> str:
            ratio, match = (
                _value(s, "gain_ratio", m, population=pop),
                _value(s, "gain_match_error", m, population=pop),
            )
            text = _interval(ratio, digits=3)
            return (
                f"{text} ({round(100 * match, 1) + 0.0:+.1f} %)"
                if text != "-" and np.isfinite(match)
                else text
            )

        return cell

    rows: list[tuple[str, list[str]]] = [
        ("trials run", each(trials)),
        (
            f"repeat accuracy (criterion {acc_lo:.2f}-{acc_hi:.2f})",
            each(lambda m: _criterion(*_triple(s, "repeat_accuracy", m), 2, (acc_lo, acc_hi))),
        ),
        (
            f"repeat mean RT, correct (ms; {rt_lo:.0f}-{rt_hi:.0f})",
            each(lambda m: _criterion(*_triple(s, "repeat_mean_rt", m), 0, (rt_lo, rt_hi))),
        ),
    ]
    for var, name, _ in _RT_ESTIMATES:
        rows.append((name.format(csi=csi), each(lambda m, v=var: _effect(*_triple(s, v, m)))))
    rows += [
        (
            f"error-rate switch cost, CSI {csi} ms",
            each(
                lambda m: _effect(*_triple(s, "error_switch_cost_by_csi", m, csi=_shortest_csi(s)), digits=2)
            ),
        ),
        ("free-tau fit: tau_eff (ms)", each(tau_eff)),
        ("error RT minus correct RT (ms)", each(lambda m: _effect(*_triple(s, "rt_error_minus_correct", m)))),
    ]
    if "gain_ratio" in s and "population" in s.coords:
        for pop in (str(p) for p in s["population"].values):
            target = _value(s, "gain_match_target", population=pop)
            name = f"gain ratio irr./rel., {pop}" + (f" (target {target:.3f})" if np.isfinite(target) else "")
            rows.append((name, each(gain(pop))))
    if "modulation_class" in s:
        rows.append(
            (
                "f-I effect of the cue",
                each(
                    lambda m: ", ".join(dict.fromkeys(s["modulation_class"].sel(model=m).values.astype(str)))
                ),
            )
        )
    lines = _table(rows, models)

    lines.append("")
    lines.append(f"resolution of the RT switch cost at CSI {csi} ms:")
    lines += [f"  {_resolution_note(s, m, csi)}" for m in models]

    lines.append("")
    margin_text = f"±{margin:g} ms" if np.isfinite(margin) else "-"
    if "contrast" in s and "pair" in s.dims:
        lines.append(
            f"paired contrasts on the shared trials (a - b; equivalence margin {margin_text}, TOST):"
        )
        pairs = [str(p) for p in s["pair"].values]
        quantities = [str(q) for q in s["quantity"].values] if "quantity" in s.coords else []
        labels = {q: _CONTRAST_LABELS.get(q, q).format(csi=csi) for q in quantities}
        pw = max(len(p) for p in pairs) + 2
        qw = max((len(v) for v in labels.values()), default=0) + 2
        for p in pairs:
            for q in quantities:
                value, low, high = _triple(s, "contrast", pair=p, quantity=q)
                verdict = (
                    str(s["contrast_verdict"].sel(pair=p, quantity=q).values)
                    if "contrast_verdict" in s
                    else "-"
                )
                effect = _effect(value, low, high, units=" ms")
                lines.append(f"  {p.ljust(pw)}{labels[q].ljust(qw)}{effect}; equivalence: {verdict}")
    else:
        lines.append("paired contrasts: none (they need two models or more)")

    lines.append("")
    notes = (
        f"Notes. 95 % intervals in brackets; 'not resolved': the interval includes 0. RT costs from the "
        f"trial-level regression (OLS, HC3 errors; cost(CSI) = A exp(-CSI/tau) + R, tau = {tau:g} ms); "
        "error-rate cost: switch minus repeat error rate (Newcombe); free-tau fit: of the per-CSI RT costs. "
        "Repeat accuracy (Wilson) and mean correct RT (t) against the calibration criteria: in / out. Gain "
        "ratio: f-I gain with the population's feature irrelevant / relevant; in brackets the gain-match "
        "error (ratio / target - 1; target: the release source's gate ratio). '-': not defined."
    )
    lines += textwrap.wrap(notes, width=100, break_on_hyphens=False)
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------------
# the figure
# ------------------------------------------------------------------------------------------------------
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
