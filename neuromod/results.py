"""The neuromod results schema: provenance, validation and atomic save/load.

Every experiment returns an :class:`xarray.Dataset` (one model) or an :class:`xarray.DataTree` (several
models, one group each, the shared trial table at the root). This module defines what such an object must
carry to be a neuromod result, and reads and writes it safely:

* :func:`provenance` builds the global attributes (``Conventions``, ``title``, ``source``, ``history``,
  ``config_json``, ``schema_version``, ``created``);
* :func:`validate` checks ``units`` and ``long_name`` on every variable, that all attributes are
  netCDF-safe and that the global attributes are there;
* :func:`check_writable` checks an output location before any work;
* :func:`save` writes netCDF (``.nc``, netCDF4 engine) or zarr (``.zarr``) atomically: to a temporary name in
  the destination folder, then renamed, so no partial file is ever left at the output path; it records every
  variable's dimensions, shape and a checksum of its data;
* :func:`load` reads a result back and refuses files that are not neuromod results, are corrupt, have an
  incompatible ``schema_version``, or whose groups, variables or data differ from what was saved.

Examples
--------
>>> import numpy as np, xarray as xr
>>> from neuromod import results
>>> ds = xr.Dataset(
...     {"rate": ("drive", np.array([0.0, 5.0, 12.0]), {"units": "Hz", "long_name": "firing rate"})},
...     coords={"drive": ("drive", [0.0, 0.1, 0.2], {"units": "nA", "long_name": "injected current"})},
...     attrs=results.provenance({"seed": 0}, title="example"),
... )
>>> results.validate(ds) is ds
True
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import enum
import functools
import hashlib
import importlib.metadata
import json
import os
import shlex
import subprocess
import sys
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
import xarray as xr

from neuromod import _files, _machine

__all__ = [
    "REQUIRED_ATTRS",
    "SCHEMA_VERSION",
    "ResultsError",
    "SchemaError",
    "check_writable",
    "load",
    "provenance",
    "save",
    "save_figure",
    "temporary_path",
    "to_json",
    "validate",
    "var_attrs",
    "without_timestamps",
]

#: Version of the on-disk schema. Bump the major part for incompatible changes; :func:`load` refuses files
#: whose major version differs from this one. 1.1 added the checksums (1.0 files load, with a warning that
#: they cannot be checked).
SCHEMA_VERSION = "1.1"

#: Global attributes every neuromod result carries (see :func:`provenance`).
REQUIRED_ATTRS = (
    "Conventions",
    "title",
    "source",
    "history",
    "config_json",
    "schema_version",
    "created",
)

# Written into the file only, popped again by `load`: tells a one-node DataTree from a Dataset (or a sweep).
_STRUCTURE_ATTR = "neuromod_structure"
#: The root attribute that marks a sweep store (value ``"sweep"``), and the group of its points' results.
SWEEP_STRUCTURE_KEY = _STRUCTURE_ATTR
SWEEP_POINTS_GROUP = "points"
# Written into the file only, popped again by `load`: every variable's dims, shape and data checksum.
_CHECKSUM_ATTR = "neuromod_checksums"
_FORMATS: dict[str, Literal["netcdf", "zarr"]] = {".nc": "netcdf", ".zarr": "zarr"}

Result = xr.Dataset | xr.DataTree


class ResultsError(ValueError):
    """A file that cannot be read as a neuromod result (not a result, corrupt, or incompatible)."""


class SchemaError(ValueError):
    """An object that does not follow the neuromod schema; the message lists every problem found."""


# --------------------------------------------------------------------------------------------------------
# provenance
# --------------------------------------------------------------------------------------------------------
def _jsonable(obj: Any) -> Any:
    """Convert configs (dataclasses, enums, paths, numpy scalars and arrays, tuples) into JSON types."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        if callable(getattr(obj, "to_dict", None)):  # a Config knows its own table (keys that are not fields)
            return obj.to_dict()
        return {f.name: _jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [_jsonable(v) for v in obj.tolist()]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, enum.Enum):
        return _jsonable(obj.value)
    if isinstance(obj, Path):
        return str(obj)
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot store {type(obj).__name__} value {obj!r} in config_json")


def to_json(config: Any) -> str:
    """Serialise a config (dataclass, mapping or ``None``) as canonical JSON (sorted keys, no spaces).

    Two equal configs give the same string, so ``config_json`` can be compared between files.
    """
    return json.dumps(_jsonable({} if config is None else config), sort_keys=True, separators=(",", ":"))


@functools.cache
def _git_commit() -> str | None:
    """The commit of the neuromod checkout this package is imported from, or None outside a checkout."""
    root = Path(__file__).resolve().parent.parent
    if not (root / ".git").exists():
        return None
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "describe", "--always", "--dirty", "--abbrev=12"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


@functools.cache
def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def source_string() -> str:
    """Software provenance: neuromod version and git commit, and the versions of the simulators used."""
    from neuromod import __version__

    commit = _git_commit()
    head = f"neuromod {__version__}" + (f" (git {commit})" if commit else "")
    deps = ", ".join(f"{name} {_version(name)}" for name in ("brian2", "torch", "numpy", "xarray"))
    return f"{head}; {deps}"


def provenance(config: Any, *, title: str) -> dict[str, str]:
    """Global attributes for a neuromod result.

    Parameters
    ----------
    config : dataclass, mapping or None
        The full resolved configuration of the run; stored as canonical JSON in ``config_json``.
    title : str
        A short human-readable description of the dataset.

    Returns
    -------
    dict
        ``Conventions``, ``title``, ``source`` (neuromod version, git commit when available, brian2, torch,
        numpy and xarray versions), ``history`` (UTC time and command line), ``config_json``,
        ``schema_version``, ``created`` (ISO 8601, UTC) and ``machine`` (JSON: architecture, CPU model and
        the features libraries dispatch on, OS, libc and its libm code path, numpy's SIMD, the C++ compiler,
        the numerics environment variables; ``neuromod._machine.host_info``). All values are strings.

    Raises
    ------
    TypeError
        If `config` holds a value that cannot be written as JSON.
    ValueError
        If `title` is empty.
    """
    if not isinstance(title, str) or not title.strip():
        raise ValueError(f"title={title!r} must be a non-empty string")
    created = _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat()
    command = " ".join(shlex.quote(a) for a in [Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv else ""
    return {
        "Conventions": "CF-1.10",
        "title": title,
        "source": source_string(),
        "history": f"{created}: {command}".rstrip(),
        "config_json": to_json(config),
        "schema_version": SCHEMA_VERSION,
        "created": created,
        "machine": json.dumps(_machine.host_info(), sort_keys=True),
    }


def var_attrs(units: str, long_name: str, **extra: Any) -> dict[str, Any]:
    """The attributes every variable and coordinate of a neuromod result carries (see :func:`validate`).

    >>> var_attrs("ms", "reaction time")
    {'units': 'ms', 'long_name': 'reaction time'}
    """
    return {"units": units, "long_name": long_name, **extra}


#: Global attributes that depend on when and how a run was started, not on its config or data.
RUN_STAMP_ATTRS = ("created", "history")


def without_timestamps(obj: Result) -> Result:
    """A shallow copy without the attributes that record when a run happened (``created``, ``history``).

    Two runs with the same seed and config give results that are identical after this (data, coordinates,
    every other attribute, ``config_json`` included)::

        xr.testing.assert_identical(without_timestamps(a), without_timestamps(b))
    """
    out = obj.copy(deep=False)
    out.attrs = {k: v for k, v in obj.attrs.items() if k not in RUN_STAMP_ATTRS}
    return out


# --------------------------------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------------------------------
def _attr_problem(value: Any) -> str | None:
    """Why an attribute value cannot be stored in netCDF, or None if it can."""
    if value is None:
        return "None (store an empty string or leave the attribute out)"
    if isinstance(value, (bool, np.bool_)):
        return "a bool (store 0/1)"
    if isinstance(value, Mapping):
        return "a dict (store it as a JSON string)"
    if isinstance(value, (str, int, float, np.integer, np.floating)):
        return None
    if isinstance(value, (list, tuple, np.ndarray)):
        arr = np.asarray(value)
        if arr.ndim != 1 or arr.dtype.kind not in "iufU" or arr.dtype == bool:
            return f"a {type(value).__name__} that is not a flat list of numbers or strings"
        return None
    return f"of type {type(value).__name__}"


def _node_problems(ds: xr.Dataset, where: str) -> list[str]:
    problems = []
    for kind, variables in (("data variable", ds.data_vars), ("coordinate", ds.coords)):
        for name, var in variables.items():
            missing = [key for key in ("units", "long_name") if key not in var.attrs]
            if missing:
                problems.append(f"{where}{kind} {name!r} has no {' or '.join(missing)} attribute")
            for key, value in var.attrs.items():
                why = _attr_problem(value)
                if why:
                    problems.append(f"{where}{kind} {name!r}: attribute {key!r} is {why}")
    for key, value in ds.attrs.items():
        why = _attr_problem(value)
        if why:
            problems.append(f"{where}global attribute {key!r} is {why}")
    return problems


def _nodes(obj: Result) -> Iterator[tuple[str, xr.Dataset]]:
    if isinstance(obj, xr.DataTree):
        for node in obj.subtree:
            yield node.path, node.to_dataset(inherit=False)
    elif isinstance(obj, xr.Dataset):
        yield "/", obj
    else:
        raise TypeError(f"expected an xarray Dataset or DataTree, got {type(obj).__name__}")


def validate(obj: Result, *, provenance: bool = True) -> Result:
    """Check that `obj` follows the neuromod schema and return it unchanged.

    Every data variable and coordinate must have ``units`` and ``long_name`` attributes, and every
    attribute (global or per variable) must be netCDF-safe: strings, numbers, or flat lists of them; no
    bool, dict or None. With `provenance` (the default: a *result*), the global attributes of
    :func:`provenance` must be there too (at the root of a DataTree), with a ``schema_version`` this
    neuromod reads and a ``config_json`` that is a JSON object.

    Parameters
    ----------
    obj : xarray.Dataset or xarray.DataTree
        The object to check.
    provenance : bool, default True
        Also check the global attributes. Pass False for a part of a result (e.g. a measure's output
        before it joins a result), which carries units and long names but no provenance of its own.

    Raises
    ------
    SchemaError
        Listing every problem found, each with the group and variable it concerns.
    TypeError
        If `obj` is neither a Dataset nor a DataTree.
    """
    problems = []
    for path, ds in _nodes(obj):
        where = "" if path == "/" else f"group {path}: "
        problems.extend(_node_problems(ds, where))
    if provenance:
        attrs = obj.attrs if isinstance(obj, xr.Dataset) else obj.root.attrs
        problems.extend(f"the result {problem}" for problem in _global_problems(attrs))
    if problems:
        shown = "\n  ".join(problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise SchemaError(f"{len(problems)} schema problem(s):\n  {shown}{more}")
    return obj


def _global_problems(attrs: Mapping[str, Any]) -> list[str]:
    """What is wrong with a result's global attributes (empty if nothing)."""
    missing = [key for key in REQUIRED_ATTRS if key not in attrs]
    if missing:
        return [
            f"lacks the global attribute(s) {missing!r}; build them with "
            "neuromod.results.provenance(config, title=...)"
        ]
    problems = []
    version = str(attrs["schema_version"])
    if version.split(".")[0] != SCHEMA_VERSION.split(".")[0]:
        problems.append(
            f"has schema_version {version!r}; this neuromod reads {SCHEMA_VERSION.split('.')[0]}.x"
        )
    try:
        config = json.loads(attrs["config_json"])
    except (TypeError, ValueError) as err:
        problems.append(f"has a config_json that is not valid JSON: {err}")
    else:
        if not isinstance(config, dict):
            problems.append(
                f"has a config_json that is a JSON {type(config).__name__}, not an object "
                "(a table of settings)"
            )
    return problems


def _check_global_attrs(attrs: Mapping[str, Any], where: str) -> None:
    problems = _global_problems(attrs)
    if problems:
        raise SchemaError(f"{where} {'; '.join(problems)}")


# --------------------------------------------------------------------------------------------------------
# checksums
# --------------------------------------------------------------------------------------------------------
def _digest(values: np.ndarray) -> str:
    """SHA-256 (first 16 hex digits) of an array's shape and values, the same before a write and after a
    read: numbers by their little-endian bytes (every NaN as the one NaN a read gives), text by its UTF-8."""
    a = np.asarray(values)
    h = hashlib.sha256(repr(a.shape).encode())
    if a.dtype.kind in "biufcmM":
        if a.dtype.kind in "fc" and np.isnan(a).any():
            a = np.where(np.isnan(a), np.nan, a).astype(a.dtype, copy=False)
        a = np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<"))
        h.update(a.dtype.str.encode())
        h.update(a.reshape(-1).view(np.uint8).data)
    else:  # text (fixed or variable width, str or object): read back with another dtype, same values
        h.update(b"text")
        h.update("\0".join(map(str, a.reshape(-1).tolist())).encode("utf-8", "surrogatepass"))
    return h.hexdigest()[:16]


def _manifest(obj: Result, *, data: bool = True) -> dict[str, dict[str, list[str]]]:
    """Per group, per variable (coordinates included): its dimensions, its shape and its data checksum
    (``""`` without `data`: then nothing is read, and a lazily opened result stays lazy)."""
    return {
        path: {
            str(name): [
                ",".join(map(str, var.dims)),
                "x".join(map(str, var.shape)),
                _digest(var.values) if data else "",
            ]
            for name, var in ds.variables.items()
        }
        for path, ds in _nodes(obj)
    }


def _verify(tree: xr.DataTree, text: str | None, where: str, *, data: bool = True) -> None:
    """Refuse a read result whose groups, variables, shapes or (with `data`) data differ from what was
    saved."""
    if text is None:
        if str(tree.attrs.get("schema_version", "")) == "1.0":
            warnings.warn(
                f"{where} was written before results carried checksums (schema 1.0): it cannot be checked "
                "to be whole; run it again to get a file that can",
                UserWarning,
                stacklevel=3,
            )
            return
        raise ResultsError(
            f"{where} has no checksums ({_CHECKSUM_ATTR}); it was not written by neuromod's save"
        )
    try:
        saved = json.loads(text)
    except ValueError as err:
        raise ResultsError(f"{where}: its checksums ({_CHECKSUM_ATTR}) are not valid JSON: {err}") from None
    found = _manifest(tree, data=data)
    problems = [f"group {g} is missing ({len(v)} variables)" for g, v in saved.items() if g not in found]
    problems += [f"group {g} was not saved" for g in found if g not in saved]
    for group in (g for g in saved if g in found):
        for name, (dims, shape, digest) in saved[group].items():
            got = found[group].get(name)
            if got is None:
                problems.append(f"variable {name!r} of group {group} is missing")
            elif got[:2] != [dims, shape]:
                problems.append(
                    f"variable {name!r} of group {group} has dims ({got[0]}) shape {got[1]}, saved as "
                    f"({dims}) shape {shape}"
                )
            elif data and got[2] != digest:
                problems.append(f"the data of {name!r} in group {group} do not match their checksum")
        problems += [
            f"variable {n!r} of group {group} was not saved" for n in found[group] if n not in saved[group]
        ]
    if problems:
        more = f"; ... and {len(problems) - 4} more" if len(problems) > 4 else ""
        raise ResultsError(
            f"{where} is damaged or was changed after it was saved: {'; '.join(problems[:4])}{more}"
        )


# --------------------------------------------------------------------------------------------------------
# save / load
# --------------------------------------------------------------------------------------------------------
def _as_path(path: Any) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path={path!r} ({type(path).__name__}): expected a str or path-like file name")
    return Path(path)


def _format_of(path: Path) -> Literal["netcdf", "zarr"]:
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"path={str(path)!r} has suffix {path.suffix!r}; expected one of {list(_FORMATS)}")
    return fmt


def _text_encoding(ds: xr.Dataset) -> dict[str, dict[str, Any]]:
    """Fixed-width text (numpy ``<U``) written as variable-length strings: zarr format 3 specifies only the
    latter (the former is written with an ``UnstableSpecificationWarning``, unreadable by other zarr
    libraries). Read back, such text has numpy's variable-length string dtype; the values are the same."""
    return {name: {"dtype": object} for name, var in ds.variables.items() if var.dtype.kind == "U"}


def _write(obj: Result, path: Path, fmt: str) -> None:
    """Write `obj` to `path` (a fresh temporary name). Separate so tests can make it fail half-way."""
    if fmt == "netcdf":
        obj.to_netcdf(path, engine="netcdf4")
    elif isinstance(obj, xr.Dataset):
        obj.to_zarr(path, mode="w-", consolidated=False, encoding=_text_encoding(obj))
    else:
        encoding = {node.path: _text_encoding(node.to_dataset(inherit=False)) for node in obj.subtree}
        obj.to_zarr(path, mode="w-", consolidated=False, encoding={k: v for k, v in encoding.items() if v})


def temporary_path(path: str | os.PathLike[str]) -> Path:
    """A fresh, unused name next to `path` for an atomic write (write there, then ``os.replace``).

    The name is recognisably neuromod's (``.NAME~neuromod-<pid>-<host>-<random>.tmp``): one left behind by a
    killed process is removed by the next write of `path` (``neuromod._files.clean_stale``). Nothing is
    created, so the writer makes the file itself, with the usual permissions (the umask).
    """
    return _files.temporary_name(path)


def _fsync(path: Path) -> None:
    if path.is_file():
        with open(path, "rb") as fh:
            os.fsync(fh.fileno())


def check_writable(path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Check, before any work, that a result (``.nc``, ``.zarr``) or figure (``.png``, ``.pdf``, ``.svg``)
    can be written at `path`: a known suffix, not there already unless `overwrite`, no folder where a file
    goes (or a file where a store goes), its folder writable or creatable. Returns `path` as a Path.

    Raises
    ------
    ValueError
        For an unknown suffix.
    FileExistsError, IsADirectoryError, NotADirectoryError, PermissionError
        Naming the path and what is wrong with it (see ``neuromod._files.check_writable``).
    """
    path = _as_path(path)
    if path.suffix.lower() not in (*_FORMATS, *_FIGURE_FORMATS):
        raise ValueError(
            f"path={str(path)!r} has suffix {path.suffix!r}; expected one of {[*_FORMATS, *_FIGURE_FORMATS]}"
        )
    return _files.check_writable(path, overwrite=overwrite, store=path.suffix.lower() == ".zarr")


def save(obj: Result, path: str | os.PathLike[str], *, overwrite: bool = False, figure: Any = None) -> Path:
    """Write a neuromod result atomically, with a checksum of every variable.

    Parameters
    ----------
    obj : xarray.Dataset or xarray.DataTree
        The result; it must pass :func:`validate` (the attributes of :func:`provenance` included, at the
        root for a DataTree). It is not modified.
    path : str or path-like
        ``*.nc`` for netCDF (netCDF4 engine), ``*.zarr`` for a zarr store (for sweeps).
    overwrite : bool, default False
        Replace an existing file or store at `path` (and the figure).
    figure : matplotlib.figure.Figure, optional
        Also write this figure as `path` with the suffix ``.png``, committed with the data: a failure
        leaves neither new file.

    Returns
    -------
    pathlib.Path
        The path written.

    Raises
    ------
    FileExistsError
        If `path` (or the figure) exists and `overwrite` is False.
    ValueError, SchemaError
        For an unknown suffix or an object that does not follow the schema (nothing is written).

    Notes
    -----
    The data are written to a temporary name in the destination folder and renamed onto `path` only once
    complete, so a failure half-way leaves no file at `path` and leaves an earlier file there untouched; a
    store (a folder) replaced by a crashed write is put back by the next :func:`load` or write. The file
    records every variable's dimensions, shape and data checksum (``neuromod_checksums``): :func:`load`
    refuses a file whose data no longer match.
    """
    path = _as_path(path)
    fmt = _format_of(path)
    validate(obj)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"the folder {str(path.parent)!r} for {str(path)!r} does not exist")
    figure_path = path.with_suffix(".png")
    for target in (path, figure_path) if figure is not None else (path,):
        check_writable(target, overwrite=overwrite)

    attrs = obj.attrs if isinstance(obj, xr.Dataset) else obj.root.attrs
    structure = "tree" if isinstance(obj, xr.DataTree) else "dataset"
    marked = obj.copy(deep=False)
    marked.attrs = {**attrs, _STRUCTURE_ATTR: structure, _CHECKSUM_ATTR: json.dumps(_manifest(obj))}

    tmp, fig_tmp = temporary_path(path), temporary_path(figure_path)
    try:
        if figure is not None:
            _render(figure, fig_tmp, "png", dpi=150)
        _write(marked, tmp, fmt)
        _fsync(tmp)
        _files.swap_into_place(tmp, path)
        if figure is not None:
            os.replace(fig_tmp, figure_path)
    finally:
        _files.remove(tmp)
        _files.remove(fig_tmp)
    return path


def sweep_point_name(index: int) -> str:
    """The group of point `index`'s result in a sweep store (``points/p000012``)."""
    return f"p{index:06d}"


def _is_sweep(path: Path) -> bool:
    try:
        with open(path / "zarr.json") as fh:
            return json.load(fh).get("attributes", {}).get(_STRUCTURE_ATTR) == "sweep"
    except (OSError, ValueError, AttributeError):
        return False


def _open_sweep(path: Path) -> xr.DataTree:
    """A sweep store: its index at the root, the results of the points done so far under ``points/``.

    The status is read first and a point's result is renamed into place before its status says done, so
    this never sees a half-written point, however far the sweep has got.
    """
    with xr.open_dataset(path, engine="zarr", consolidated=False) as index:
        index = index.load()
    done = np.flatnonzero(index["status"].values == 2)
    children = {}
    for i in done:
        name = sweep_point_name(int(i))
        point = _open_point(path / SWEEP_POINTS_GROUP / name, f"{str(path)!r} (point {i})", load=True)
        children[name] = point if isinstance(point, xr.DataTree) else xr.DataTree(point)
    tree = xr.DataTree(index)
    tree[SWEEP_POINTS_GROUP] = xr.DataTree(children=children)
    tree[SWEEP_POINTS_GROUP].attrs = {"long_name": "results of the points done"}
    return tree


def _open_point(path: Path, where: str, *, load: bool) -> Result:
    """A saved zarr result (a sweep's point) with its structure (groups, variables, dims, shapes) checked
    against its record: opened lazily, or with `load` read into memory and its data checked too."""
    tree = xr.open_datatree(path, engine="zarr", consolidated=False)
    if load:
        with tree:
            tree = tree.load().copy()
    attrs = dict(tree.attrs)
    structure = attrs.pop(_STRUCTURE_ATTR, "tree")
    checksums = attrs.pop(_CHECKSUM_ATTR, None)
    tree.attrs = attrs
    _verify(tree, checksums, where, data=load)
    return tree.to_dataset() if structure == "dataset" else tree


def _open(path: Path, fmt: str) -> xr.DataTree:
    if fmt == "netcdf":
        return xr.load_datatree(path, engine="netcdf4")
    if _is_sweep(path):
        return _open_sweep(path)
    with xr.open_datatree(path, engine="zarr", consolidated=False) as tree:
        return tree.load().copy()


def load(path: str | os.PathLike[str], *, experiment: str | None = None) -> Result:
    """Read a neuromod result written by :func:`save`.

    Parameters
    ----------
    path : str or path-like
        A ``.nc`` file or ``.zarr`` store.
    experiment : str, optional
        Also check that the file holds a result of this experiment (the ``experiment`` of its
        ``config_json``, e.g. ``"task-switching"``).

    Returns
    -------
    xarray.Dataset or xarray.DataTree
        What was saved, loaded into memory (the file is closed). A sweep store (``neuromod sweep``) gives
        a DataTree: its index along ``point`` at the root and the results of the points done so far under
        ``points/`` (read it lazily, point by point, with :func:`neuromod.sweep.open_sweep`). A sweep store
        can be loaded while its sweep runs.

    Raises
    ------
    FileNotFoundError
        If `path` does not exist.
    ResultsError
        If the file is not readable as netCDF/zarr (e.g. a text file or a truncated write), lacks the
        neuromod global attributes, has an incompatible ``schema_version``, or is not a result of
        `experiment`.
    """
    path = _as_path(path)
    fmt = _format_of(path)
    if path.parent.is_dir():
        _files.recover(path)  # a store a crash left moved aside is put back first
    if not path.exists():
        raise FileNotFoundError(f"no such file: {str(path)!r}")
    try:
        tree = _open(path, fmt)
    except ResultsError:
        raise
    except Exception as err:  # netCDF4/HDF5/zarr raise many types for unreadable files
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ResultsError(
            f"{str(path)!r} is not a readable {fmt} file (corrupt, truncated or another format): {reason}"
        ) from err
    try:
        _check_global_attrs(tree.attrs, repr(str(path)))
    except SchemaError as err:
        raise ResultsError(f"{err} (is it a neuromod result?)") from err
    if experiment is not None:
        found = json.loads(tree.attrs["config_json"]).get("experiment")
        if found != experiment:
            raise ResultsError(f"{path} is not a {experiment} result (it holds {found or 'no experiment'!r})")
    attrs = dict(tree.attrs)
    structure = attrs.pop(_STRUCTURE_ATTR, "tree" if tree.children else "dataset")
    checksums = attrs.pop(_CHECKSUM_ATTR, None)
    if structure == "sweep":
        attrs[_STRUCTURE_ATTR] = structure  # a sweep's index says what it is (its points were checked)
    tree.attrs = attrs
    if structure != "sweep":
        _verify(tree, checksums, repr(str(path)))
    if structure == "dataset":
        return tree.to_dataset()
    return tree


_FIGURE_FORMATS = (".png", ".pdf", ".svg")


def _render(fig: Any, path: Path, fmt: str, *, dpi: int) -> None:
    fig.savefig(path, format=fmt, dpi=dpi, bbox_inches="tight")
    _fsync(path)


def save_figure(fig: Any, path: str | os.PathLike[str], *, overwrite: bool = False, dpi: int = 150) -> Path:
    """Write a matplotlib figure atomically (temporary name in the same folder, then rename).

    The format follows the suffix (``.png``, ``.pdf``, ``.svg``). Refuses an existing path unless
    `overwrite` is True. Returns the path written.
    """
    path = _as_path(path)
    fmt = path.suffix.lstrip(".").lower()
    if f".{fmt}" not in _FIGURE_FORMATS:
        raise ValueError(f"path={str(path)!r} has suffix {path.suffix!r}; expected .png, .pdf or .svg")
    check_writable(path, overwrite=overwrite)
    tmp = temporary_path(path)
    try:
        _render(fig, tmp, fmt, dpi=dpi)
        os.replace(tmp, path)
    finally:
        _files.remove(tmp)
    return path
