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
    "plot_gain_curves",
    "plot_modulation_summary",
    "plot_overview",
    "plot_psychometric",
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
        A gain-curves result (``neuromod.protocols.gain_curves``) or one model's group of it.
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
