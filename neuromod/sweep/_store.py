"""The sweep store: one zarr store that is the record of what a sweep has done.

Layout (zarr format 3, a folder on a file system every worker sees)::

    X.zarr/                  root group: the index, one entry per point (chunk 1)
        point, <axes>, seed  coordinates
        status               0 pending, 1 running, 2 done, 3 failed (CF flag_values / flag_meanings)
        attempts             times the point started, over all runs
        wall_s, worker       of the committed (or failed) attempt
        error                traceback of the last failure ("" when none)
        run_id               the run that committed the point
        config_json          the point's resolved config
    X.zarr/points/p000012/   point 12's result (a neuromod result: a Dataset or a DataTree)
    .X.zarr.staging/         results being written (next to the store; removed when empty)

Root attributes: the provenance of :func:`neuromod.results.provenance` (``config_json`` holds the sweep spec),
``neuromod_structure = "sweep"``, ``sweep_digest`` (:attr:`SweepSpec.digest`) and ``run_id`` (the run that
may commit now).

Commit protocol. A worker writes a point's result completely under the staging folder, checks that its run
is still the store's run, and renames it to ``points/pNNNNNN`` (a rename is atomic, and fails if another
task got there first: a point's data are never written twice or seen half-written). Only then does it set
the point's ``status`` to done. Every chunk of the index belongs to one point, and only the task running that
point writes it (the client writes it only for a point whose worker died), and zarr replaces a chunk
atomically: a reader sees each entry before or after a change, never during it.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from neuromod import _files, results
from neuromod.sweep.spec import SweepSpec

__all__ = ["STATUS", "SweepStore", "SweepStoreError"]

#: Status codes of the ``status`` variable.
STATUS: dict[str, int] = {"pending": 0, "running": 1, "done": 2, "failed": 3}
PENDING, RUNNING, DONE, FAILED = (STATUS[k] for k in ("pending", "running", "done", "failed"))

_UNITS_BY_SUFFIX = {"_ms": "ms", "_s": "s", "_hz": "Hz", "_na": "nA", "_pct": "%", "_mv": "mV"}


class SweepStoreError(ValueError):
    """A store that is not this sweep's (another spec, not a sweep store, or damaged)."""


def _units(key: str) -> str:
    for suffix, units in _UNITS_BY_SUFFIX.items():
        if key.lower().endswith(suffix):
            return units
    return "1"


def _column(values: list[Any]) -> np.ndarray:
    """Axis values as an array: numbers and strings as they are, anything else (lists) as JSON text."""
    if all(isinstance(v, (bool, np.bool_)) for v in values):
        return np.asarray(values, dtype=bool)
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return np.asarray(values)
    if all(isinstance(v, str) for v in values):
        return np.asarray(values, dtype=object)
    return np.asarray([json.dumps(results._jsonable(v)) for v in values], dtype=object)


def build_index(spec: SweepSpec) -> xr.Dataset:
    """The index of a new sweep: every point pending, its axes, seed and config."""
    points = spec.points()
    n = len(points)
    var = results.var_attrs
    coords: dict[str, Any] = {"point": ("point", np.arange(n), var("1", "point index"))}
    for dim in spec.dimensions:
        if dim.name in ("replicate", "seed") and not dim.settings:
            continue
        if dim.name not in dim.settings:  # a zipped group: its position, then each setting
            coords[dim.name] = ("point", np.array([p.values[dim.name] for p in points]), var("1", dim.name))
        for key in dim.settings:
            coords[key] = ("point", _column([p.settings[key] for p in points]), var(_units(key), key))
    if "replicate" in spec.dims:
        coords["replicate"] = (
            "point",
            np.array([p.values["replicate"] for p in points]),
            var("1", "replicate"),
        )
    coords["seed"] = (
        "point",
        np.array([p.seed for p in points], dtype=np.int64),
        var("1", "seed of the point"),
    )
    strings = np.array([""] * n, dtype=object)
    flags = {"flag_values": list(STATUS.values()), "flag_meanings": " ".join(STATUS)}
    data = {
        "status": ("point", np.zeros(n, dtype=np.int8), var("1", "status of the point", **flags)),
        "attempts": ("point", np.zeros(n, dtype=np.int32), var("1", "times the point started")),
        "wall_s": ("point", np.full(n, np.nan), var("s", "wall time of the point's last attempt")),
        "worker": ("point", strings.copy(), var("1", "worker of the point's last attempt")),
        "error": ("point", strings.copy(), var("1", "traceback of the point's last failure")),
        "run_id": ("point", strings.copy(), var("1", "run that committed the point")),
        "config_json": (
            "point",
            np.array([results.to_json(p.config) for p in points], dtype=object),
            var("1", "the point's resolved config (JSON)"),
        ),
    }
    attrs = results.provenance(spec.to_dict(), title=f"sweep of {spec.experiment}")
    attrs.update(
        {results.SWEEP_STRUCTURE_KEY: "sweep", "sweep_digest": spec.digest, "run_id": "", "n_points": n}
    )
    return xr.Dataset(data, coords=coords, attrs=attrs)


class SweepStore:
    """A sweep store on disk (see the module docstring): create, check, resume, write a point's entry."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.staging = self.path.parent / f".{self.path.name}.staging"

    # -------------------------------------------------------------------------------------- the client side
    @classmethod
    def prepare(cls, path: str | os.PathLike[str], spec: SweepSpec, *, restart: bool = False) -> SweepStore:
        """The store of `spec` at `path`: created if absent (or with `restart`; its folder too), else
        checked to be its own.

        Raises
        ------
        SweepStoreError
            If `path` holds something else, or the store of a different spec (without `restart`).
        """
        store = cls(path)
        if store.path.suffix != ".zarr":
            raise ValueError(f"out={str(store.path)!r}: a sweep store's name must end in .zarr")
        _files.check_writable(store.path, overwrite=True, store=True)  # an existing store resumes
        if store.path.exists() and restart:
            store._check_is_sweep()
            shutil.rmtree(store.path)
            shutil.rmtree(store.staging, ignore_errors=True)
        if not store.path.exists():
            store.path.parent.mkdir(parents=True, exist_ok=True)  # as `neuromod run` makes its folder
            store._create(spec)
            return store
        found = store._check_is_sweep().get("sweep_digest")
        if found != spec.digest:
            raise SweepStoreError(
                f"{str(store.path)!r} holds a sweep of another spec (digest {str(found)[:12]}, this one "
                f"{spec.digest[:12]}); pass --restart (restart=True) to discard it, or another --out"
            )
        return store

    def _check_is_sweep(self) -> dict[str, Any]:
        attrs = self.attrs()
        if attrs.get(results.SWEEP_STRUCTURE_KEY) != "sweep":
            raise SweepStoreError(f"{str(self.path)!r} exists and is not a sweep store; choose another --out")
        return attrs

    def _create(self, spec: SweepSpec) -> None:
        index = results.validate(build_index(spec))
        tmp = results.temporary_path(self.path)
        try:
            encoding = {name: {"chunks": (1,)} for name in index.variables}
            index.to_zarr(tmp, mode="w-", consolidated=False, encoding=encoding)
            import zarr

            zarr.open_group(tmp, mode="a").create_group(results.SWEEP_POINTS_GROUP)
            os.rename(tmp, self.path)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def attrs(self) -> dict[str, Any]:
        """The root attributes (read fresh from disk)."""
        try:
            with open(self.path / "zarr.json") as fh:
                return dict(json.load(fh).get("attributes", {}))
        except (OSError, ValueError) as err:
            raise SweepStoreError(f"{str(self.path)!r} is not a readable zarr store: {err}") from None

    def begin_run(self) -> str:
        """Start a run: a new ``run_id`` (tasks of earlier runs can no longer commit), stale staging removed,
        points left running by a dead run set back to pending. Returns the run id."""
        import zarr

        run_id = uuid.uuid4().hex
        zarr.open_group(self.path, mode="r+").attrs.update({"run_id": run_id})
        if self.staging.is_dir():
            for entry in self.staging.iterdir():  # ours, and of an earlier run: provably stale
                if entry.name.startswith("p") and f".{run_id}." not in entry.name:
                    shutil.rmtree(entry, ignore_errors=True)
        status = self.array("status")[:]
        for i in np.flatnonzero(status != DONE):
            if (self.point_path(int(i)) / "zarr.json").exists():  # renamed in, status not yet written
                self.write(int(i), status=DONE)
            elif status[i] == RUNNING:
                self.write(int(i), status=PENDING)
        return run_id

    def run_id(self) -> str:
        """The run that may commit now."""
        return str(self.attrs().get("run_id", ""))

    def status(self) -> np.ndarray:
        """Every point's status code."""
        return self.array("status", mode="r")[:]

    def index(self) -> xr.Dataset:
        """The index (every point's coordinates, status, attempts, ...), loaded into memory."""
        with xr.open_dataset(self.path, engine="zarr", consolidated=False) as ds:
            return ds.load()

    def finish(self) -> None:
        """Remove the staging folder if nothing is left in it."""
        with contextlib.suppress(OSError):
            self.staging.rmdir()

    # -------------------------------------------------------------------------------------- the worker side
    def array(self, name: str, *, mode: str = "r+") -> Any:
        """The zarr array `name` of the index (opened for writing, unless `mode` is ``"r"``)."""
        import zarr

        return zarr.open_array(self.path, path=name, mode=mode)

    def point_path(self, index: int) -> Path:
        """Where point `index`'s result lives."""
        return self.path / results.SWEEP_POINTS_GROUP / results.sweep_point_name(index)

    def write(self, index: int, **values: Any) -> None:
        """Set point `index`'s entries (``status`` last, so it commits what was written before it)."""
        status = values.pop("status", None)
        for name, value in values.items():
            self.array(name)[index] = value
        if status is not None:
            self.array("status")[index] = status

    def commit(self, index: int, run_id: str, result: results.Result, **entries: Any) -> bool:
        """Write point `index`'s result and mark it done, if `run_id` is still the store's run.

        Returns False when the run was superseded (nothing committed). When another task committed the
        point first, its data stay (they are identical: same config, same seed) and the status is set.
        """
        self.staging.mkdir(exist_ok=True)
        staged = self.staging / f"{results.sweep_point_name(index)}.{run_id}.{uuid.uuid4().hex[:8]}.zarr"
        try:
            results.save(result, staged)
            if self.run_id() != run_id:
                return False
            try:
                os.rename(staged, self.point_path(index))
            except OSError as err:
                if err.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                    raise
        finally:
            shutil.rmtree(staged, ignore_errors=True)
        self.write(index, run_id=run_id, error="", **entries, status=DONE)
        return True
