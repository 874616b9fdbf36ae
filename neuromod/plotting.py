"""Figures from neuromod results.

Every function takes the data and an optional ``ax`` and returns the Axes (or a Figure for multi-panel
overviews). Nothing here calls ``plt.show()`` or writes files: save with
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

__all__ = ["label", "plot_overview", "plot_psychometric"]


def label(da: xr.DataArray) -> str:
    """Axis label ``"long_name (units)"`` from a variable's attributes (``units="1"`` is left out)."""
    name = da.attrs.get("long_name", da.name or "")
    units = da.attrs.get("units", "")
    return f"{name} ({units})" if units and units != "1" else str(name)


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
        [node.to_dataset(inherit=False) for node in obj.subtree] if isinstance(obj, xr.DataTree) else [obj]
    )
    items = [
        (name if len(nodes) == 1 else f"{ds.attrs.get('group', '')}{name}", ds[name])
        for ds in nodes
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
