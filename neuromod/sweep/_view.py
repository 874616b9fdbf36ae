"""Reading a sweep store: lazily, point by point, and onto the sweep's axes (the hypercube)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from neuromod import results
from neuromod.sweep._store import DONE, STATUS, SweepStore

__all__ = ["SweepView", "hypercube", "open_sweep"]


def _dimensions(index: xr.Dataset) -> list[dict[str, Any]]:
    try:
        return list(json.loads(index.attrs["config_json"])["dimensions"])
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError("not the index of a sweep store (no dimensions in its config_json)") from err


def hypercube(obj: xr.Dataset | xr.DataArray, index: xr.Dataset) -> xr.Dataset | xr.DataArray:
    """Put the ``point`` dimension of `obj` onto the sweep's dimensions (axes, zipped groups, replicates).

    Parameters
    ----------
    obj : Dataset or DataArray
        Values per point (e.g. a measure of every point, or the sweep's index itself); ``point`` must run
        over all points in order.
    index : Dataset
        The sweep's index (:attr:`SweepView.index`), which knows the dimensions.

    Returns
    -------
    Dataset or DataArray
        ``point`` replaced by the sweep's dimensions, each with its values as a coordinate (a zipped group:
        its position, and each of its settings as a coordinate along it).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from neuromod.sweep import SweepSpec, hypercube
    >>> from neuromod.sweep._store import build_index
    >>> index = build_index(SweepSpec.from_dict(
    ...     {"experiment": "sweep-probe", "axes": {"value": [1.0, 2.0, 3.0]}, "seeds": 2}))
    >>> cube = hypercube(xr.DataArray(np.arange(6.0), dims="point"), index)
    >>> cube.dims, cube.sel(value=2.0).values.tolist()
    (('value', 'replicate'), [2.0, 3.0])
    """
    dims = _dimensions(index)
    shape = tuple(int(d["size"]) for d in dims)
    names = tuple(d["name"] for d in dims)
    n = int(np.prod(shape))
    if obj.sizes.get("point") != n:
        raise ValueError(f"expected a 'point' dimension of {n} (the sweep's points), got {dict(obj.sizes)}")
    at = np.unravel_index(np.arange(n), shape)
    first = {
        name: np.flatnonzero(np.all([at[j] == 0 for j in range(len(names)) if j != k], axis=0))
        for k, name in enumerate(names)
    }  # the points along each dimension, the others at 0

    def reshape(var: xr.DataArray) -> xr.DataArray:
        axis = var.dims.index("point")
        data = np.moveaxis(np.asarray(var.values), axis, 0).reshape(
            shape + var.shape[:axis] + var.shape[axis + 1 :]
        )
        rest = tuple(d for d in var.dims if d != "point")
        return xr.DataArray(data, dims=names + rest, attrs=var.attrs)

    coords: dict[str, Any] = {}
    for dim in dims:
        name = dim["name"]
        along = first[name]
        keys = list(dim["settings"]) or [name]
        if name not in keys:  # a zipped group: its position
            coords[name] = (name, np.arange(int(dim["size"])), {"long_name": name, "units": "1"})
        for key in keys:
            if key in index.coords:
                source = index[key].values[along]
                coords[key] = (name, source, dict(index[key].attrs))
    if isinstance(obj, xr.DataArray):
        out = reshape(obj)
        return out.assign_coords(coords).rename(obj.name)
    data_vars = {name: reshape(var) for name, var in obj.data_vars.items() if "point" in var.dims}
    other = {name: var for name, var in obj.data_vars.items() if "point" not in var.dims}
    extra = {
        name: reshape(var).variable
        for name, var in obj.coords.items()
        if "point" in var.dims and name not in coords and name != "point"
    }
    return xr.Dataset({**data_vars, **other}, coords={**coords, **extra}, attrs=obj.attrs)


class SweepView:
    """A sweep store opened for reading (see :func:`open_sweep`); safe while the sweep is still running."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._store = SweepStore(self.path)
        if self._store.attrs().get(results.SWEEP_STRUCTURE_KEY) != "sweep":
            raise results.ResultsError(f"{str(self.path)!r} is not a sweep store")

    @property
    def index(self) -> xr.Dataset:
        """The index, read fresh: every point's coordinates, status, attempts, wall time, worker, error."""
        return self._store.index()

    def counts(self) -> dict[str, int]:
        """Points by status, now."""
        status = self._store.status()
        return {name: int((status == code).sum()) for name, code in STATUS.items()}

    def done(self) -> list[int]:
        """The points done, now."""
        return [int(i) for i in np.flatnonzero(self._store.status() == DONE)]

    def point(self, index: int, *, load: bool = False) -> xr.Dataset | xr.DataTree:
        """Point `index`'s result (a Dataset, or a DataTree for several models).

        Its groups, variables, dimensions and shapes are checked against what was saved. It is opened
        lazily; with `load` it is read into memory and its data checked against their checksums too (as
        :func:`neuromod.results.load` checks every point of a store).

        Raises
        ------
        KeyError
            If the point is not done.
        neuromod.results.ResultsError
            If the point's result does not match what was saved (damaged or changed).
        """
        if int(self._store.array("status", mode="r")[index]) != DONE:
            raise KeyError(f"point {index} is not done (see .counts() and the index's status)")
        return self._open_point(index, load=load)

    def _open_point(self, index: int, *, load: bool = False) -> xr.Dataset | xr.DataTree:
        where = f"{str(self.path)!r} (point {index})"
        return results._open_point(self._store.point_path(index), where, load=load)

    def map(
        self, fn: Callable[[Any], Any], *, name: str = "measure", units: str | Mapping[str, str] = "1"
    ) -> xr.Dataset:
        """``fn(result)`` of every point done, as a Dataset over ``point`` (NaN where not done).

        `fn` returns a number, or a mapping of names to numbers (one variable each); `units` is the units
        of every variable, or a mapping of names to units. Put the answer onto the axes with
        :meth:`hypercube`.
        """
        n = self._store.status().size
        columns: dict[str, np.ndarray] = {}
        for i in self.done():
            out = fn(self._open_point(i))
            items = out.items() if isinstance(out, Mapping) else [(name, out)]
            for key, value in items:
                columns.setdefault(key, np.full(n, np.nan))[i] = float(value)
        index = self.index
        clash = sorted(set(columns) & set(index.variables))
        if clash:
            raise ValueError(f"fn's result names {clash} are taken by the sweep's index; choose others")

        def unit(key: str) -> str:
            return units if isinstance(units, str) else str(units.get(key, "1"))

        data = {k: ("point", v, results.var_attrs(unit(k), k)) for k, v in columns.items()}
        return xr.Dataset(data, coords=index.coords, attrs={"sweep": str(self.path)})

    def hypercube(self, obj: xr.Dataset | xr.DataArray | None = None) -> xr.Dataset | xr.DataArray:
        """`obj` (default: the index) with ``point`` put onto the sweep's dimensions (:func:`hypercube`)."""
        index = self.index
        return hypercube(index if obj is None else obj, index)


def open_sweep(path: str | os.PathLike[str]) -> SweepView:
    """Open a sweep store for reading (lazily: a point's data are read when asked for).

    Raises
    ------
    ResultsError
        If `path` is not a sweep store.
    """
    return SweepView(path)
