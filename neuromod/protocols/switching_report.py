"""The task-switching experiment's report: the side-by-side text table (the figure:
:mod:`neuromod.protocols.switching_figure`).

It reads the ``summary`` group of a task-switching result
(``neuromod.protocols.switching_summary.summary``); the figure's gain traces also read each model's
group (``gain`` over (``time``, ``population``), ``stim_onset_ms``) and the trial table at the root. A
variable that a result lacks (an older file, a single model, a fit that is not defined) is shown as ``-``
or left out of its panel; nothing here fails on it.

Every effect is printed with its 95 % interval, and an effect whose interval includes 0 reads
"not resolved": the run cannot tell it from no effect.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from neuromod.plotting import format_interval
from neuromod.protocols.calibration import CRITERIA

__all__ = ["summarize"]

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
