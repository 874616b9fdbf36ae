"""The ``.nm`` accessor: neuromod helpers on xarray Datasets and DataTrees.

Registered when :mod:`neuromod` is imported. The accessor only stores the object; every helper returns a new
object or a plain value and never mutates the data.

Examples
--------
>>> import json, xarray as xr
>>> import neuromod
>>> ds = xr.Dataset(attrs={"config_json": json.dumps({"seed": 3})})
>>> ds.nm.config["seed"]
3
"""

from __future__ import annotations

import json
from typing import Any

import xarray as xr

__all__ = ["NeuromodAccessor", "NeuromodTreeAccessor"]


class _Common:
    _obj: xr.Dataset | xr.DataTree

    def __init__(self, obj: xr.Dataset | xr.DataTree) -> None:
        self._obj = obj

    @property
    def _attrs(self) -> dict[str, Any]:
        return dict(self._obj.attrs)

    @property
    def config(self) -> dict[str, Any]:
        """The resolved configuration of the run (parsed ``config_json``); ``{}`` when absent."""
        text = self._attrs.get("config_json")
        return json.loads(text) if text else {}

    @property
    def provenance(self) -> dict[str, Any]:
        """The provenance attributes (``title``, ``source``, ``history``, ``created``, ...) as a dict."""
        from neuromod.results import REQUIRED_ATTRS

        return {key: self._attrs[key] for key in REQUIRED_ATTRS if key in self._attrs}

    def validate(self) -> xr.Dataset | xr.DataTree:
        """Check the neuromod schema (see :func:`neuromod.results.validate`) and return the object."""
        from neuromod.results import validate

        return validate(self._obj)

    def save(self, path: str, *, overwrite: bool = False):
        """Save atomically (see :func:`neuromod.results.save`) and return the path written."""
        from neuromod.results import save

        return save(self._obj, path, overwrite=overwrite)

    def plot_gain_curves(self, **kwargs: Any):
        """Response against drive per level (see :func:`neuromod.plotting.plot_gain_curves`)."""
        from neuromod.plotting import plot_gain_curves

        return plot_gain_curves(self._obj, **kwargs)

    def plot_modulation_summary(self, **kwargs: Any):
        """Gain ratio against threshold shift (see :func:`neuromod.plotting.plot_modulation_summary`)."""
        from neuromod.plotting import plot_modulation_summary

        return plot_modulation_summary(self._obj, **kwargs)


@xr.register_dataset_accessor("nm")
class NeuromodAccessor(_Common):
    """neuromod helpers on an :class:`xarray.Dataset` (``ds.nm``)."""

    def fit_gain_curve(self, variable: str = "response", dim: str = "drive", **kwargs: Any) -> xr.Dataset:
        """Fit a gain-curve form to ``ds[variable]`` (see :func:`neuromod.measures.fit_gain_curve`)."""
        from neuromod.measures import fit_gain_curve

        if variable not in self._obj:
            raise ValueError(
                f"variable={variable!r} is not in the dataset; variables: {list(self._obj.data_vars)}"
            )
        return fit_gain_curve(self._obj[variable], dim, **kwargs)


@xr.register_datatree_accessor("nm")
class NeuromodTreeAccessor(_Common):
    """neuromod helpers on an :class:`xarray.DataTree` (``tree.nm``)."""

    @property
    def models(self) -> list[str]:
        """Names of the model groups in the tree (children of the root other than ``summary``)."""
        return [name for name in self._obj.children if name != "summary"]
