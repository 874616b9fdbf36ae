"""The task-switching experiment's report: the side-by-side text table and the four-panel figure."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import xarray as xr

from neuromod.plotting import format_interval
from neuromod.protocols.switching_summary import preparation_fit
from neuromod.tasks.switching import CONTEXTS

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["plot", "summarize"]


def summarize(tree: xr.DataTree) -> str:
    """A side-by-side table of the summary: one column per model."""
    s = tree["summary"].to_dataset(inherit=False)
    models = [str(m) for m in s["model"].values]

    def row(var: str, digits: int = 0, bounds: bool = True) -> list[str]:
        out = []
        for m in models:
            v = s.sel(model=m)
            low = float(v[f"{var}_low"]) if bounds and f"{var}_low" in v else None
            high = float(v[f"{var}_high"]) if bounds and f"{var}_high" in v else None
            out.append(format_interval(float(v[var]), low, high, digits=digits))
        return out

    def prep(prefix: str, digits: int) -> list[str]:
        out = []
        for m in models:
            fit = preparation_fit(s.sel(model=m), prefix)
            out.append(
                "not identified" if fit is None else "{:.{d}f} / {:.0f} / {:.{d}f}".format(*fit, d=digits)
            )
        return out

    def gain_row(var: str, digits: int) -> list[str]:
        return [
            ", ".join(format_interval(float(x), digits=digits) for x in s[var].sel(model=m).values)
            for m in models
        ]

    rows = [
        ("trials", [str(int(s["n_trials"].sel(model=m))) for m in models]),
        ("accuracy", row("accuracy", 2)),
        ("mean RT, correct (ms)", row("mean_rt", 0)),
        ("RT switch cost (ms)", row("rt_switch_cost", 0)),
        ("error switch cost", row("error_switch_cost", 2)),
        ("RT congruency effect (ms)", row("rt_congruency_effect", 0)),
        ("error congruency effect", row("error_congruency_effect", 2)),
        ("RT preparation: A / tau (ms) / residual", prep("rt", 0)),
        ("error preparation: A / tau (ms) / residual", prep("error", 2)),
        ("gain ratio irr./rel. (a+ a- b+ b-)", gain_row("gain_ratio", 2)),
        ("threshold shift (rel. drive)", gain_row("threshold_shift", 2)),
        (
            "f-I effect of the cue",
            [", ".join(dict.fromkeys(s["modulation_class"].sel(model=m).values.astype(str))) for m in models],
        ),
    ]
    csi = s["csi"].values
    for i, c in enumerate(csi):
        rows.insert(
            4 + i,
            (
                f"  at CSI {c:g} ms",
                [
                    format_interval(
                        float(s["rt_switch_cost_by_csi"].sel(model=m)[i]),
                        float(s["rt_switch_cost_by_csi_low"].sel(model=m)[i]),
                        float(s["rt_switch_cost_by_csi_high"].sel(model=m)[i]),
                    )
                    for m in models
                ],
            ),
        )
    width = max(len(r[0]) for r in rows) + 2
    cols = [max(len(m), *(len(r[1][i]) for r in rows)) + 2 for i, m in enumerate(models)]
    header = "".ljust(width) + "".join(m.ljust(w) for m, w in zip(models, cols, strict=True))
    lines = [header.rstrip(), "-" * len(header.rstrip())]
    for name, values in rows:
        lines.append(
            (name.ljust(width) + "".join(v.ljust(w) for v, w in zip(values, cols, strict=True))).rstrip()
        )
    lines.append(
        "95 % intervals in brackets: accuracy Wilson, mean RT t, RT differences Welch, error-rate "
        "differences Newcombe; RTs of correct responses; '-': not defined or not fitted."
    )
    return "\n".join(lines)


def plot(tree: xr.DataTree) -> Figure:
    """The four-panel figure: gain curves per model; gain profiles per context; switch cost against CSI
    per model (RT and errors, with the preparation fit); accuracy by congruency x switch."""
    import matplotlib.pyplot as plt

    from neuromod.plotting import (
        plot_by_condition,
        plot_cue_gain_curves,
        plot_gain_profile,
        plot_switch_cost,
    )

    s = tree["summary"].to_dataset(inherit=False)
    models = [str(m) for m in s["model"].values]
    fig = plt.figure(figsize=(13.0, 8.5), layout="constrained")
    (fa, fb), (fc, fd) = fig.subfigures(2, 2, wspace=0.04, hspace=0.04)
    axes = np.atleast_1d(fa.subplots(1, len(models), sharex=True))
    for ax, m in zip(axes, models, strict=True):
        plot_cue_gain_curves(tree[f"{m}/gain_curves"].to_dataset(inherit=False), ax=ax, legend=ax is axes[0])
    fa.suptitle(
        "A  gain curves (points: mean over the fitted populations; lines: mean of their fits)",
        x=0.02,
        ha="left",
        fontsize=11,
    )
    axes = fb.subplots(1, len(CONTEXTS), sharey=True)
    for ax, ctx in zip(axes, CONTEXTS, strict=True):
        plot_gain_profile(s, context=ctx, ax=ax, legend=ax is axes[0])
    axes[1].set_ylabel("")
    fb.suptitle("B  gain profile per context", x=0.02, ha="left", fontsize=11)
    ax_rt, ax_er = fc.subplots(2, 1, sharex=True)
    plot_switch_cost(s, cost="rt", ax=ax_rt)
    plot_switch_cost(s, cost="error", ax=ax_er, legend=False)
    ax_rt.set_xlabel("")
    fc.suptitle(
        "C  switch cost vs CSI (95 % CI; lines: A exp(-CSI/tau) + residual)", x=0.02, ha="left", fontsize=11
    )
    plot_by_condition(s, variable="accuracy", ax=fd.subplots())
    fd.suptitle("D  accuracy by congruency x switch", x=0.02, ha="left", fontsize=11)
    return fig
