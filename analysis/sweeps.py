"""From a sweep store of task-switching runs to the RT switch cost across the sweep's axes.

Usage::

    python analysis/sweeps.py results/rate_tau.zarr --out docs/sweep-rate-tau.png

Reads a store written by ``neuromod sweep`` (e.g. ``experiments/sweeps/rate_tau.toml``) with
:func:`neuromod.sweep.open_sweep` and, for every point that is done, recomputes one model's RT switch cost at
the shortest CSI with its 95 % interval: the trial-level regression
:func:`neuromod.measures.switch_regression` (OLS with HC3 errors, ``cost(CSI) = A exp(-CSI / tau) + R``,
``tau`` the point's own ``tau_ms``), the very estimate that ``neuromod run task-switching`` reports as
"RT switch cost (ms), CSI 50 ms" (the summary's ``rt_cost_shortest``). The per-point values are put onto
the sweep's axes (:meth:`~neuromod.sweep.SweepView.map`, :meth:`~neuromod.sweep.SweepView.hypercube`),
printed as a table (a cost whose interval includes 0 reads "not resolved") and drawn against ``tau_ms``,
one line per ``p_switch`` (or another dimension, ``--hue``), each replicate's estimate side by side with
its own interval (small x offsets, not pooled); the line joins the mean of the replicates' estimates. The
figure is written atomically (:func:`neuromod.results.save_figure`).

Nothing here runs a model: it reads the store only, and points not done (pending, running, failed) are NaN.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import numpy as np
import pandas as pd
import typer
import xarray as xr

from neuromod import results
from neuromod.measures import switch_regression
from neuromod.plotting import error_bars, format_interval
from neuromod.sweep import SweepView, open_sweep

if TYPE_CHECKING:
    from matplotlib.figure import Figure

EXPERIMENT = "task-switching"
DEFAULT_OUT = Path("docs/sweep-rate-tau.png")
#: Dimensions that hold replicates of a grid point (drawn side by side, never as a line of their own).
REPLICATE_DIMS = ("replicate", "seed")
#: The per-point variables of :func:`point_cost`: name -> (units, long name).
COST_VARS = {
    "rt_cost_shortest": ("ms", "RT switch cost at the shortest CSI (trial-level regression)"),
    "rt_cost_shortest_low": ("ms", "RT switch cost at the shortest CSI: lower 95 % bound"),
    "rt_cost_shortest_high": ("ms", "RT switch cost at the shortest CSI: upper 95 % bound"),
    "rt_cost_shortest_se": ("ms", "RT switch cost at the shortest CSI: standard error (HC3)"),
    "csi_shortest": ("ms", "shortest cue-stimulus interval of the point"),
    "rt_n": ("1", "correct RTs in the regression"),
}
NOT_RESOLVED = "not resolved"
#: Markers of the replicates (replicate r: MARKERS[r]).
MARKERS = ("o", "s", "^", "D", "v", "P")


# ------------------------------------------------------------------------------------------------------
# input
# ------------------------------------------------------------------------------------------------------
def open_store(path: str | os.PathLike[str]) -> SweepView:
    """Open a sweep store of task-switching runs.

    Raises
    ------
    ResultsError
        If `path` is not a sweep store.
    ValueError
        If the store sweeps another experiment.
    """
    view = open_sweep(path)
    spec = json.loads(view.index.attrs.get("config_json") or "{}")
    experiment = spec.get("experiment")
    if experiment != EXPERIMENT:
        raise ValueError(
            f"{str(path)!r} is a sweep of {experiment!r}; this script reads sweeps of {EXPERIMENT!r}"
        )
    return view


def swept_models(view: SweepView) -> list[str]:
    """The models that every point of the sweep runs (its config's ``models``, as resolved per point)."""
    configs = [json.loads(text) for text in view.index["config_json"].values]
    common = [m for m in configs[0].get("models", []) if all(m in c.get("models", []) for c in configs)]
    return common


# ------------------------------------------------------------------------------------------------------
# measures
# ------------------------------------------------------------------------------------------------------
def point_cost(result: xr.DataTree, model: str = "rate") -> dict[str, float]:
    """One point's RT switch cost at the shortest CSI, with its 95 % interval (see the module docstring).

    Parameters
    ----------
    result : xarray.DataTree
        A task-switching result (a point of a sweep store, :meth:`SweepView.point`, or a saved run).
    model : str
        The model group to measure.

    Returns
    -------
    dict
        The names of :data:`COST_VARS` -> float.

    Raises
    ------
    ValueError
        If the result has no group `model` with per-trial data.
    """
    groups = [
        g for g in result.children if all(v in result[g].data_vars for v in ("choice", "correct", "rt"))
    ]
    if model not in groups:
        raise ValueError(f"model={model!r}: the result has no such model group; it has {groups}")
    reg = switch_regression(result, model=model, outcomes=("rt",))  # tau_ms: the point's own (its config)
    return {name: float(reg[name]) for name in COST_VARS}


def sweep_costs(view: SweepView, model: str = "rate") -> xr.Dataset:
    """:func:`point_cost` of every point done, over ``point`` (NaN where a point is not done).

    Raises
    ------
    ValueError
        If a done point has no group `model`.
    """
    ds = view.map(functools.partial(point_cost, model=model))
    for name, (units, long_name) in COST_VARS.items():
        if name in ds:
            ds[name] = ds[name].assign_attrs(results.var_attrs(units, long_name))
    return ds.assign_attrs(model=model, interval_level=0.95)


def cost_cube(view: SweepView, model: str = "rate") -> xr.Dataset:
    """:func:`sweep_costs` put onto the sweep's dimensions (axes, zipped groups, replicates)."""
    return view.hypercube(sweep_costs(view, model))


def _label(cube: xr.Dataset, dim: str, k: int) -> str:
    """How position `k` of dimension `dim` reads: its value, or a zipped group's settings."""
    value = cube[dim].values[k]
    settings = [c for c in cube.coords if c != dim and cube[c].dims == (dim,)]
    if dim in settings or not settings:
        return f"{dim} = {value:g}" if isinstance(value, (float, np.floating)) else f"{dim} = {value}"
    return ", ".join(f"{c} = {cube[c].values[k]}" for c in settings)


def cost_table(cube: xr.Dataset) -> pd.DataFrame:
    """One row per point (its position on every dimension, and a zipped group's settings): the cost, its
    interval and ``resolved``.

    ``resolved`` is 1 where the 95 % interval excludes 0, 0 where it includes it, -1 where the point is not
    done or its interval is undefined.
    """
    names = [n for n in COST_VARS if n in cube]
    df = cube[names].to_dataframe().reset_index()
    settings = [c for c in cube.coords if c not in cube.dims and len(cube[c].dims) == 1]  # of zipped groups
    df = df[[c for c in df.columns if c in cube.dims or c in settings or c in names]]
    low, high = df["rt_cost_shortest_low"], df["rt_cost_shortest_high"]
    defined = np.isfinite(low) & np.isfinite(high)
    df["resolved"] = np.where(defined, ((low > 0) | (high < 0)).astype(int), -1)
    return df


def format_table(df: pd.DataFrame) -> str:
    """The table of :func:`cost_table` as markdown, "not resolved" where an interval includes 0."""
    dims = [c for c in df.columns if c not in COST_VARS and c != "resolved"]
    lines = [
        "| " + " | ".join(dims) + " | RT switch cost at the shortest CSI (ms) | CSI (ms) | correct RTs |",
        "|" + "---|" * (len(dims) + 3),
    ]
    for r in df.itertuples(index=False):
        row = r._asdict()
        cost = format_interval(
            row["rt_cost_shortest"], row["rt_cost_shortest_low"], row["rt_cost_shortest_high"]
        )
        if row["resolved"] == 0:
            cost += f" {NOT_RESOLVED}"
        elif row["resolved"] == -1:
            cost = "not done" if not np.isfinite(row["rt_cost_shortest"]) else f"{cost} (no interval)"
        csi = f"{row['csi_shortest']:g}" if np.isfinite(row["csi_shortest"]) else "-"
        n = f"{row['rt_n']:.0f}" if np.isfinite(row["rt_n"]) else "-"
        lines.append("| " + " | ".join(f"{row[d]}" for d in dims) + f" | {cost} | {csi} | {n} |")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------------------
# figure
# ------------------------------------------------------------------------------------------------------
def _hue(cube: xr.Dataset, x: str, hue: str | None) -> str | None:
    others = [d for d in cube["rt_cost_shortest"].dims if d != x and d not in REPLICATE_DIMS]
    if hue is not None:
        if hue not in others:
            raise ValueError(f"hue={hue!r} is not a dimension of the sweep other than x={x!r}: {others}")
        others.remove(hue)
    elif others:
        hue = others.pop(0)
    if others:
        raise ValueError(
            f"the sweep has dimensions {others} besides x={x!r} and hue={hue!r}: select one position of each "
            "first (cube.isel(...)) or plot another pair"
        )
    return hue


def plot_cost(cube: xr.Dataset, x: str = "tau_ms", hue: str | None = None, *, title: str = "") -> Figure:
    """RT switch cost at the shortest CSI against `x`, one line per position of `hue`.

    Each replicate's estimate is drawn with its 95 % interval, side by side (small x offsets; replicate r
    with marker ``MARKERS[r]``), not pooled; the line joins the mean of the replicates' estimates at each
    `x`.

    Parameters
    ----------
    cube : xarray.Dataset
        :func:`cost_cube`'s result.
    x : str
        The dimension along the x axis (a numeric axis; log scale when its values span a factor of 4 or
        more).
    hue : str, optional
        The dimension drawn as separate lines (default: the one dimension left besides `x` and the
        replicates).

    Raises
    ------
    ValueError
        If `x` is not a dimension, or dimensions other than `x`, `hue` and the replicates remain.
    """
    import matplotlib.pyplot as plt

    if x not in cube.dims:
        raise ValueError(f"x={x!r} is not a dimension of the sweep: {list(cube.dims)}")
    hue = _hue(cube, x, hue)
    cost = cube["rt_cost_shortest"]
    xs = np.asarray(cube[x].values, dtype=float)
    log = bool(np.all(xs > 0) and xs.max() / xs.min() >= 4)
    rep = next((d for d in cost.dims if d in REPLICATE_DIMS), None)
    n_rep = cost.sizes[rep] if rep else 1
    n_hue = cost.sizes[hue] if hue else 1
    fig, ax = plt.subplots(figsize=(6.0, 4.0), layout="constrained")
    span = np.log(xs.max() / xs.min()) if log and xs.size > 1 else float(np.ptp(xs)) or 1.0
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for h in range(n_hue):
        sub = cube.isel({hue: h}) if hue else cube
        color = colors[h % len(colors)]
        for r in range(n_rep):
            one = sub.isel({rep: r}) if rep else sub
            step = ((h * n_rep + r) - (n_hue * n_rep - 1) / 2) * 0.015 * span
            xr_ = xs * np.exp(step) if log else xs + step
            y = one["rt_cost_shortest"].values
            bars = np.nan_to_num(
                error_bars(y, one["rt_cost_shortest_low"].values, one["rt_cost_shortest_high"].values)
            )
            marker = MARKERS[r % len(MARKERS)]
            ax.errorbar(xr_, y, yerr=bars, fmt=marker, ms=3.5, capsize=2, color=color, alpha=0.8, lw=1)
        mean = sub["rt_cost_shortest"].mean(rep) if rep else sub["rt_cost_shortest"]
        label = _label(cube, hue, h) if hue else None
        ax.plot(xs, mean.values, "-", color=color, lw=1.5, label=label)
    ax.axhline(0.0, color="0.6", lw=0.8, ls="--")
    if log:
        ax.set_xscale("log")
        ax.set_xticks(xs, [f"{v:g}" for v in xs])
        ax.minorticks_off()
    units = cube[x].attrs.get("units", "")
    ax.set_xlabel(f"{x} ({units})" if units and units != "1" else x)
    csi = np.unique(cube["csi_shortest"].values[np.isfinite(cube["csi_shortest"].values)])
    at = f"CSI {csi[0]:g} ms" if csi.size == 1 else "the shortest CSI"
    ax.set_ylabel(f"RT switch cost at {at} (ms)")
    model = cube.attrs.get("model", "")
    if rep and n_rep > 1:
        keys = ", ".join(f"{r}: {MARKERS[r % len(MARKERS)]}" for r in range(n_rep))
        reps = f"{rep}s side by side ({keys}); line: mean of the {rep}s"
    else:
        reps = "one replicate"
    ax.set_title(title or f"{model}: RT switch cost, 95 % CI ({reps})", fontsize=9, loc="left")
    if hue:
        ax.legend(fontsize=8, frameon=False)
    return fig


# ------------------------------------------------------------------------------------------------------
# script
# ------------------------------------------------------------------------------------------------------
def main(
    store: Annotated[Path, typer.Argument(help="A sweep store of task-switching runs (.zarr).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The figure (.png, .pdf or .svg).")] = DEFAULT_OUT,
    model: Annotated[str, typer.Option(help="The model whose cost is measured.")] = "rate",
    x: Annotated[str, typer.Option(help="The dimension along the x axis.")] = "tau_ms",
    hue: Annotated[
        str | None, typer.Option(help="The dimension drawn as lines (default: the other one).")
    ] = None,
) -> None:
    """Print the RT switch cost of every point of STORE and draw it against tau_ms into OUT."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from neuromod.results import ResultsError

    try:
        view = open_store(store)
        models = swept_models(view)
        if model not in models:
            raise ValueError(f"--model {model}: the sweep's points run {models}")
        counts = view.counts()
        cube = cost_cube(view, model)
        fig = plot_cost(cube, x=x, hue=hue)
    except (OSError, ValueError, ResultsError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"{store}: " + ", ".join(f"{v} {k}" for k, v in counts.items() if v))
    typer.echo(f"model {model}; RT switch cost at the shortest CSI, 95 % interval (HC3 OLS, per point):\n")
    typer.echo(format_table(cost_table(cube)))
    out.parent.mkdir(parents=True, exist_ok=True)
    written = results.save_figure(fig, out, overwrite=True)
    plt.close(fig)
    typer.echo(f"wrote {written}")


if __name__ == "__main__":
    typer.run(main)
