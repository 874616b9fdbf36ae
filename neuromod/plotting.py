"""Figures from neuromod results.

Every function takes the data and an optional ``ax`` and returns the Axes (or a Figure for multi-panel
overviews). Nothing here opens a window or writes files: save with
:func:`neuromod.results.save_figure`. Axis labels come from the ``long_name`` and ``units`` attributes that
every neuromod variable carries.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import xarray as xr

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "MODEL_COLORS",
    "error_bars",
    "format_interval",
    "label",
    "plot_by_condition",
    "plot_cue_gain_curves",
    "plot_gain_curves",
    "plot_gain_profile",
    "plot_modulation_summary",
    "plot_overview",
    "plot_psychometric",
    "plot_switch_cost",
]

#: The colour of each model family in every neuromod figure.
MODEL_COLORS: dict[str, str] = {"se": "tab:purple", "rate": "tab:blue", "spiking": "tab:orange"}


def label(da: xr.DataArray) -> str:
    """Axis label ``"long_name (units)"`` from a variable's attributes (``units="1"`` is left out)."""
    name = da.attrs.get("long_name", da.name or "")
    units = da.attrs.get("units", "")
    return f"{name} ({units})" if units and units != "1" else str(name)


def error_bars(value, low, high) -> np.ndarray:
    """``[value - low, high - value]``, shape (2, n), for matplotlib's ``yerr`` from interval bounds.

    A side of zero width can come out a rounding error below 0 (e.g. a Wilson bound at accuracy 1), which
    matplotlib refuses; such sides are set to 0. NaN stays NaN (no bar).

    >>> error_bars([1.0, 0.5], [1.0 + 1e-16, 0.25], [1.0, 0.75]).tolist()
    [[0.0, 0.25], [0.0, 0.25]]
    """
    value, low, high = (np.atleast_1d(np.asarray(a, dtype=float)) for a in (value, low, high))
    out = np.vstack([value - low, high - value])
    return np.where(out < 0, 0.0, out)


def format_interval(
    value: float, low: float | None = None, high: float | None = None, *, digits: int = 0
) -> str:
    """``"value [low, high]"`` for tables; ``"-"`` for a missing value, no brackets for missing bounds.

    >>> format_interval(41.73, 10.2, 70.9), format_interval(0.8123, digits=2), format_interval(float("nan"))
    ('42 [10, 71]', '0.81', '-')
    """
    if value is None or not np.isfinite(value):
        return "-"
    text = f"{value:.{digits}f}"
    if low is not None and high is not None and np.isfinite(low) and np.isfinite(high):
        text += f" [{low:.{digits}f}, {high:.{digits}f}]"
    return text


def _new_axes(ax: Axes | None) -> Axes:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=(4.5, 3.5), layout="constrained")
    return ax


def plot_psychometric(ds: xr.Dataset, *, ax: Axes | None = None, **kwargs) -> Axes:
    """Accuracy against coherence, with the 95 % binomial (Wilson) interval as error bars.

    Parameters
    ----------
    ds : xarray.Dataset
        A decision result with ``accuracy``, ``accuracy_low`` and ``accuracy_high`` over ``coherence``
        (as written by the ``decision`` experiment).
    ax : matplotlib Axes, optional
        Where to draw; a new figure when omitted.
    **kwargs
        Passed to :meth:`matplotlib.axes.Axes.errorbar` (``label``, ``color``, ...).
    """
    ax = _new_axes(ax)
    acc = ds["accuracy"]
    x = ds["coherence"].values
    err = np.vstack([acc.values - ds["accuracy_low"].values, ds["accuracy_high"].values - acc.values])
    kwargs.setdefault("marker", "o")
    kwargs.setdefault("capsize", 3)
    ax.errorbar(x, acc.values, yerr=err, **kwargs)
    ax.set_xticks(x, [f"{v:g}" for v in x])
    ax.set_xlabel(label(ds["coherence"]))
    ax.set_ylabel(label(acc))
    ax.set_ylim(0.4, 1.02)
    return ax


def plot_overview(obj: xr.Dataset | xr.DataTree, *, max_panels: int = 12) -> Figure:
    """One panel per data variable (first `max_panels`), for results without a dedicated figure.

    Variables with more than two dimensions are averaged over the extra ones (``trial``, ``repeat``, ...
    first) so that each panel is a line or an image, labelled from the attributes.
    """
    import matplotlib.pyplot as plt

    nodes = (
        [(node.path, node.to_dataset(inherit=False)) for node in obj.subtree]
        if isinstance(obj, xr.DataTree)
        else [("/", obj)]
    )
    items = [
        (name if len(nodes) == 1 else f"{path.rstrip('/')}/{name}", ds[name])
        for path, ds in nodes
        for name in ds.data_vars
        if ds[name].dtype.kind in "biuf" and ds[name].size > 0
    ][:max_panels]
    if not items:
        raise ValueError("nothing to plot: the result has no numeric data variables")
    ncols = min(3, len(items))
    nrows = math.ceil(len(items) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.2 * nrows), layout="constrained")
    for ax, (name, da) in zip(np.atleast_1d(axes).ravel(), items, strict=False):
        prefer = [d for d in ("trial", "repeat", "seed", "condition") if d in da.dims]
        extra = [d for d in da.dims if d not in prefer]
        drop = prefer + extra[2:] if len(da.dims) > 2 else prefer if len(da.dims) > 1 else []
        reduced = da.mean(dim=drop, keep_attrs=True) if drop else da
        if reduced.ndim == 0:
            ax.bar([0], [float(reduced)])
            ax.set_ylabel(label(da))
        else:
            reduced.plot(ax=ax)
        ax.set_title(str(name), fontsize=9)
    for ax in np.atleast_1d(axes).ravel()[len(items) :]:
        ax.set_visible(False)
    return fig


def _model_dataset(data: xr.Dataset | xr.DataTree, model: str | None) -> xr.Dataset:
    if isinstance(data, xr.DataTree):
        if model is None or model not in data.children:
            raise ValueError(f"model={model!r} is not a group of the result; groups: {list(data.children)}")
        return data[model].to_dataset()
    return data


def plot_gain_curves(
    data: xr.Dataset | xr.DataTree,
    *,
    model: str | None = None,
    condition: str | None = None,
    variable: str = "response",
    ax: Axes | None = None,
    legend: bool = True,
) -> Axes:
    """Response against drive, one colour per modulation level: mean and SD over repeats, fitted curve.

    Parameters
    ----------
    data : xarray.DataTree or Dataset
        A gain-curves result (:func:`neuromod.protocols.run_gain_curves`) or one model's group of it.
    model : str
        The model group (``"se"``, ``"rate"``, ``"spiking"``) when `data` is a tree.
    condition : str, optional
        The mechanism / mode / channel group; default the first.
    variable : str
        ``"response"`` (with fitted curves) or another variable over the same dimensions, e.g. the SE
        gate's ``"gain"`` against drive.
    ax : matplotlib Axes, optional
        Where to draw; a new figure when omitted.
    legend : bool
        Draw a legend of the levels.
    """
    from matplotlib import colormaps

    from neuromod.measures.gain import gain_curve

    ds = _model_dataset(data, model)
    ax = _new_axes(ax)
    condition = str(ds["condition"].values[0]) if condition is None else condition
    if condition not in ds["condition"].values:
        raise ValueError(f"condition={condition!r} is not one of {list(ds['condition'].values)}")
    if variable not in ds:
        raise ValueError(f"variable={variable!r} is not in the dataset; variables: {list(ds.data_vars)}")
    sub = ds.sel(condition=condition)
    form = ds.attrs.get("fit_form")
    drive = sub["drive"].values
    fine = np.linspace(drive.min(), drive.max(), 200)
    levels = sub["level"].values
    cmap = colormaps["viridis"]
    for i, level in enumerate(levels):
        color = cmap(i / max(len(levels) - 1, 1))
        resp = sub[variable].sel(level=level)
        mean = resp.mean("repeat").values
        sd = resp.std("repeat").values if resp.sizes.get("repeat", 1) > 1 else None
        ax.errorbar(drive, mean, yerr=sd, fmt="o", ms=3, color=color, label=f"{level:g}")
        if form and variable == "response":
            fit = {k[4:]: sub[k].sel(level=level).values for k in sub.data_vars if k.startswith("fit_")}
            ax.plot(fine, gain_curve(fine, fit, form=form), color=color, lw=1.2)
    ax.set_xlabel(label(ds["drive"]))
    ax.set_ylabel(label(ds[variable]))
    title = f"{ds.attrs.get('model', model or '')}: {condition}".strip(": ")
    ax.set_title(title, fontsize=10)
    if legend:
        ax.legend(
            title=ds["level"].attrs.get("long_name", "level"), fontsize=7, title_fontsize=7, frameon=False
        )
    return ax


def plot_modulation_summary(data: xr.Dataset | xr.DataTree, *, ax: Axes | None = None) -> Axes:
    """Gain ratio against threshold shift (fraction of the drive range) per mechanism and model.

    Each point is one (model, condition) at its highest modulation level, with standard-error bars; the
    dashed lines mark pure multiplication (shift 0) and pure addition (ratio 1).
    """
    ax = _new_axes(ax)
    groups = (
        [(name, data[name].to_dataset()) for name in data.children]
        if isinstance(data, xr.DataTree)
        else [(data.attrs.get("model", ""), data)]
    )
    markers = {"se": "s", "rate": "o", "spiking": "^"}
    for name, ds in groups:
        top = ds.sel(level=ds["level"].max())
        span = float(ds["drive"].max() - ds["drive"].min())
        for cond in ds["condition"].values:
            row = top.sel(condition=cond)
            ax.errorbar(
                float(row.threshold_shift) / span,
                float(row.gain_ratio),
                xerr=float(row.threshold_shift_se) / span,
                yerr=float(row.gain_ratio_se),
                fmt=markers.get(name, "o"),
                capsize=2,
                label=f"{name}: {cond}",
            )
    ax.axhline(1.0, color="0.6", ls="--", lw=0.8)
    ax.axvline(0.0, color="0.6", ls="--", lw=0.8)
    ax.set_xlabel("threshold shift (fraction of drive range)")
    ax.set_ylabel("gain ratio (top level / level 0)")
    ax.set_title("modulation summary", fontsize=10)
    ax.legend(fontsize=6, frameon=False, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    return ax


# ------------------------------------------------------------------------------------------------------
# the task-switching comparison (the ``summary`` group and the ``<model>/gain_curves`` groups)
# ------------------------------------------------------------------------------------------------------
def _models(summary: xr.Dataset) -> list[str]:
    if "model" not in summary.dims:
        raise ValueError(f"expected a summary with a 'model' dimension; dimensions are {list(summary.dims)}")
    return [str(m) for m in summary["model"].values]


def plot_cue_gain_curves(
    ds: xr.Dataset, *, ax: Axes | None = None, color: str | None = None, legend: bool = True
) -> Axes:
    """One model's response against drive with the cue relevant (level 0, solid) and irrelevant (level 1,
    dashed): points are the mean over populations and repeats, lines the mean of the populations' fits. Only
    populations whose curve the fit describes (``fit_ok``) are drawn; the legend gives their number
    (suppressed and unfit curves are in the summary's ``modulation_class``).

    `ds` is a ``<model>/gain_curves`` group of a task-switching result (``tree["rate/gain_curves"]``).
    """
    from neuromod.measures.gain import gain_curve

    ax = _new_axes(ax)
    color = color or MODEL_COLORS.get(str(ds.attrs.get("model", "")), "k")
    drive = ds["drive"].values
    fine = np.linspace(drive.min(), drive.max(), 200)
    form = ds.attrs.get("fit_form")
    params = [k for k in ds.data_vars if k.startswith("fit_") and not k.endswith("_se")]
    for level, style, name in ((0.0, "-", "relevant"), (1.0, "--", "irrelevant")):
        sub = ds.sel(level=level)
        # the populations whose curve the fit describes (``fit_ok``, when present); all of them otherwise
        good = [
            c for c in sub["condition"].values if "fit_ok" not in sub or int(sub["fit_ok"].sel(condition=c))
        ]
        if not good:
            continue
        mean = sub["response"].sel(condition=good).mean(("condition", "repeat")).values
        ax.plot(drive, mean, "o", ms=3, color=color, alpha=1.0 if level == 0 else 0.5)
        if form:
            curves = [
                gain_curve(fine, {k[4:]: sub[k].sel(condition=c).values for k in params}, form=form)
                for c in good
            ]
            ax.plot(fine, np.mean(curves, axis=0), style, color=color, label=f"{name} ({len(good)})")
    ax.set_xlabel("relative drive")  # 1 = the task's stimulus at 0 % coherence (the coordinate's long_name)
    units = ds["response"].attrs.get("units", "")
    ax.set_ylabel(f"response ({units})" if units and units != "1" else "response (a.u.)")
    ax.set_title(str(ds.attrs.get("model", "")), fontsize=10)
    if legend:
        ax.legend(fontsize=7, frameon=False, title="cue", title_fontsize=7)
    return ax


def plot_gain_profile(
    summary: xr.Dataset, *, context: str, ax: Axes | None = None, legend: bool = True
) -> Axes:
    """Bars of each population's relative gain (``relative_gain_profile``) per model, under one cue."""
    ax = _new_axes(ax)
    models = _models(summary)
    pops = [str(p) for p in summary["population"].values]
    width = 0.8 / len(models)
    x = np.arange(len(pops))
    for i, m in enumerate(models):
        vals = summary["relative_gain_profile"].sel(model=m, context=context).values
        ax.bar(x + (i - (len(models) - 1) / 2) * width, vals, width, color=MODEL_COLORS.get(m), label=m)
    ax.set_xticks(x, pops)
    ax.set_title(f"cue: task {context}", fontsize=10)
    ax.set_xlabel("sensory population")
    ax.set_ylabel("gain / model's largest")
    if legend:
        ax.legend(fontsize=7, frameon=False)
    return ax


def plot_switch_cost(
    summary: xr.Dataset, *, cost: str = "rt", ax: Axes | None = None, legend: bool = True
) -> Axes:
    """Switch cost against CSI per model with 95 % intervals, and the preparation fit where identified.

    Reads ``<cost>_switch_cost_by_csi`` (with ``_low``/``_high``) and ``<cost>_prep_*`` from a summary
    (`cost` is ``"rt"`` or ``"error"``); see :func:`neuromod.measures.fit_preparation`.
    """
    if cost not in ("rt", "error"):
        raise ValueError(f"cost={cost!r} is not one of ['rt', 'error']")
    ax = _new_axes(ax)
    models = _models(summary)
    var = f"{cost}_switch_cost_by_csi"
    csi = summary["csi"].values
    fine = np.linspace(csi.min(), csi.max(), 200)
    offsets = (np.linspace(-0.015, 0.015, len(models)) if len(models) > 1 else np.zeros(1)) * (
        csi.max() - csi.min() or 1.0
    )
    for i, m in enumerate(models):
        v = summary.sel(model=m)
        y = v[var].values
        ax.errorbar(
            csi + offsets[i],
            y,
            yerr=error_bars(y, v[f"{var}_low"].values, v[f"{var}_high"].values),
            fmt="o",
            ms=4,
            capsize=2,
            color=MODEL_COLORS.get(m),
            label=m,
        )
        if int(v.get(f"{cost}_prep_identified", 0)) == 1:
            a, tau, res = (float(v[f"{cost}_prep_{k}"]) for k in ("amplitude", "tau_eff", "residual"))
            ax.plot(fine, a * np.exp(-fine / tau) + res, "-", lw=1, color=MODEL_COLORS.get(m))
    ax.axhline(0.0, color="0.6", lw=0.8, ls="--")
    ax.set_xlabel(label(summary["csi"]))
    ax.set_ylabel("RT switch cost (ms)" if cost == "rt" else "error switch cost")
    if legend:
        ax.legend(fontsize=7, frameon=False)
    return ax


def plot_by_condition(
    summary: xr.Dataset, *, variable: str = "accuracy", ax: Axes | None = None, legend: bool = True
) -> Axes:
    """Accuracy (or mean RT) by switch x congruency per model, with its 95 % intervals.

    Reads ``<variable>_by_condition`` with ``_low``/``_high`` over (``model``, ``switch``, ``congruent``)
    from a summary; `variable` is ``"accuracy"`` (Wilson intervals) or ``"mean_rt"`` (t intervals). Light
    bars: repeat trials; dark: switch trials; hatched: incongruent stimuli. An empty cell draws no bar.
    """
    if variable not in ("accuracy", "mean_rt"):
        raise ValueError(f"variable={variable!r} is not one of ['accuracy', 'mean_rt']")
    ax = _new_axes(ax)
    models = _models(summary)
    cells = [
        (0, 1, "repeat, congruent"),
        (0, 0, "repeat, incongruent"),
        (1, 1, "switch, congruent"),
        (1, 0, "switch, incongruent"),
    ]
    width = 0.8 / len(cells)
    for j, (sw, cg, name) in enumerate(cells):
        xs = np.arange(len(models)) + (j - (len(cells) - 1) / 2) * width
        v = summary.sel(switch=sw, congruent=cg)
        var = f"{variable}_by_condition"
        y = v[var].values
        low, high = v[f"{var}_low"].values, v[f"{var}_high"].values
        ax.bar(
            xs,
            y,
            width,
            yerr=error_bars(y, low, high),
            capsize=2,
            color="0.45" if sw else "0.85",
            label=name,
            hatch="///" if cg == 0 else None,
            edgecolor="black",
            linewidth=0.5,
        )
    ax.set_xticks(np.arange(len(models)), models)
    if variable == "accuracy":
        ax.set_ylim(0.0, 1.2)
        ax.set_yticks(np.linspace(0.0, 1.0, 6))
        ax.axhline(0.5, color="0.6", lw=0.8, ls="--")
        ax.set_ylabel("accuracy (95 % Wilson CI)")
    else:
        top = np.nanmax(summary[f"{variable}_by_condition_high"].values)
        ax.set_ylim(0.0, 1.2 * top if np.isfinite(top) else None)
        ax.set_ylabel("mean RT of correct responses (ms, 95 % t CI)")
    if legend:
        ax.legend(fontsize=7, frameon=False, ncols=4, loc="upper center", handlelength=1.5, columnspacing=1.0)
    return ax
