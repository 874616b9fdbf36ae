"""What a sweep is: an experiment, a base config, fixed settings, axes and seeds, resolved into points.

A sweep file (``SWEEP.toml``) is data, read with ``tomllib``; nothing in it is executed::

    experiment = "task-switching"    # a registered experiment (`neuromod experiments`)
    base = "../task_switching.toml"  # optional: its config file (relative to this file); else its defaults
    seed = 0                         # the sweep's seed
    seeds = 2                        # replicates per grid point (or a list of explicit seeds)

    [fixed]                          # settings of every point, by dotted key (as `neuromod run --set`)
    models = ["rate"]
    release = "default"

    [axes]                           # the grid: every combination of these values (in this order)
    tau_ms = [200.0, 400.0, 800.0]
    p_switch = [0.2, 0.5]

    [zip.prep]                       # optional: settings that change together, one dimension ("prep")
    csi_ms = [[50.0, 600.0], [100.0, 1200.0]]
    rci_ms = [100.0, 500.0]

Keys inside ``[fixed]``, ``[axes]`` and ``[zip.NAME]`` are dotted settings (``"rate.noise_na"`` or a nested
table ``[axes.rate]``). Points are the cartesian product of the axes and zipped groups in the order written,
with the replicates innermost; point ``i`` is row ``i`` of that product (row-major).

Seeds. With ``seeds = N`` a point of replicate ``r`` gets the seed ``SeedSequence(seed, spawn_key=(r,))``
(its first 32-bit word): it depends on the sweep's seed and the point's index only, never on scheduling,
and points that differ only in their axes share it (common random numbers: a contrast along an axis is
paired). ``seeds = [3, 7]`` uses those seeds as given (dimension ``seed``).

Every point's config is built and checked by the experiment's strict config class before anything runs; an
error names the point, its axis values and the setting.

Examples
--------
>>> from neuromod.sweep import SweepSpec
>>> spec = SweepSpec.from_dict({"experiment": "sweep-probe", "seeds": 2, "axes": {"value": [1.0, 2.0, 3.0]}})
>>> spec.shape, spec.dims
((3, 2), ('value', 'replicate'))
>>> [p.values for p in spec.points()][:3]
[{'value': 1.0, 'replicate': 0}, {'value': 1.0, 'replicate': 1}, {'value': 2.0, 'replicate': 0}]
>>> spec.points()[0].config.seed == spec.points()[2].config.seed  # replicate 0 at both values
True
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import itertools
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from neuromod import registry, results
from neuromod._checks import suggest
from neuromod.config import Config, ConfigError, read_toml

__all__ = ["Dimension", "Point", "SweepSpec"]

_TOP_KEYS = ("experiment", "base", "seed", "seeds", "fixed", "axes", "zip")


@dataclasses.dataclass(frozen=True)
class Dimension:
    """One dimension of the grid: a single axis (one setting) or a zipped group (settings that move together).

    Attributes
    ----------
    name : str
        The dimension's name: the setting's dotted key, the group's name, ``"replicate"`` or ``"seed"``.
    settings : dict
        Dotted key -> the values along the dimension (one key for a plain axis; none for the seed dimension).
    size : int
        Number of positions.
    """

    name: str
    settings: Mapping[str, tuple[Any, ...]]
    size: int


@dataclasses.dataclass(frozen=True)
class Point:
    """One point of a sweep: its index, its position on every dimension, its seed and its checked config."""

    index: int
    position: tuple[int, ...]
    values: dict[str, Any]  #: dimension name -> value (a zipped group: its position)
    settings: dict[str, Any]  #: dotted key -> value, of the axes and zipped groups only
    seed: int
    config: Config


def _flatten(table: Mapping[str, Any], where: str, prefix: str = "") -> dict[str, Any]:
    """Nested TOML tables as dotted keys; a list (or any non-table value) ends a key."""
    out: dict[str, Any] = {}
    for key, value in table.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flatten(value, where, dotted + "."))
        else:
            out[dotted] = value
    return out


def _values(key: str, raw: Any, where: str) -> tuple[Any, ...]:
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"{where}: {key}={raw!r} must be a non-empty list of the values to sweep")
    seen = [json.dumps(v, sort_keys=True) for v in raw]
    if len(set(seen)) != len(seen):
        raise ConfigError(f"{where}: {key}={raw!r} repeats a value; each value once")
    return tuple(tuple(v) if isinstance(v, list) else v for v in raw)


def _replicate_seed(seed: int, replicate: int) -> int:
    """The seed of replicate `replicate` of a sweep seeded with `seed` (see the module docstring)."""
    state = np.random.SeedSequence(seed, spawn_key=(replicate,)).generate_state(1, dtype=np.uint32)
    return int(state[0])


@dataclasses.dataclass(frozen=True)
class SweepSpec:
    """A checked sweep: the experiment, its base config, the fixed settings, the dimensions and the seeds.

    Build one with :meth:`from_toml` or :meth:`from_dict`; :meth:`points` gives every point with its
    checked config and :attr:`digest` a hash of everything that decides the points' results.
    """

    experiment: str
    base: Config
    fixed: Mapping[str, Any]
    dims: tuple[str, ...]
    dimensions: tuple[Dimension, ...]
    seed: int
    seeds: tuple[int, ...] | None  #: explicit seeds, or None for replicates of the sweep seed
    source: str = ""  #: the file it was read from ("" when built in Python)

    # ---------------------------------------------------------------------------------------------- build
    @classmethod
    def from_toml(cls, path: str | os.PathLike[str], **overrides: Any) -> SweepSpec:
        """Read and check a sweep file, changed by `overrides`: a table (``fixed``, ``axes``, ``zip``) is
        merged into the file's by dotted key (``fixed={"n_trials": 200}`` changes one setting), any other
        key (``seeds=1``) replaces the file's."""
        path = Path(path)
        data = read_toml(path)
        for key, value in overrides.items():
            if key in ("fixed", "axes", "zip") and isinstance(value, Mapping):
                where = f"{path}: {key}"
                data[key] = {**_flatten(cls._table(data, key, str(path)), where), **_flatten(value, where)}
            else:
                data[key] = value
        return cls.from_dict(data, where=str(path), root=path.parent)

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], *, where: str = "sweep", root: str | os.PathLike[str] | None = None
    ) -> SweepSpec:
        """Check a parsed sweep table (see the module docstring); `root` resolves a relative ``base``.

        Raises
        ------
        ConfigError
            For an unknown or missing key, a bad value, or a point whose config the experiment refuses.
        KeyError
            For an unknown experiment.
        """
        if not isinstance(data, Mapping):
            raise ConfigError(f"{where}: a sweep must be a table, got {data!r}")
        unknown = [k for k in data if k not in _TOP_KEYS]
        if unknown:
            raise ConfigError(
                f"{where}: unknown key {unknown[0]!r}{suggest(unknown[0], _TOP_KEYS)}; valid keys: "
                f"{list(_TOP_KEYS)}"
            )
        name = data.get("experiment")
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{where}: experiment={name!r}; expected the name of an experiment")
        experiment = registry.get(name)
        base = cls._base(experiment, data.get("base"), where, root)
        seed = data.get("seed", 0)
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ConfigError(f"{where}: seed={seed!r}; expected an integer >= 0")
        fixed = _flatten(cls._table(data, "fixed", where), where)
        dimensions = cls._dimensions(data, where)
        seeds_raw = data.get("seeds", 1)
        if isinstance(seeds_raw, list):
            seeds = _values("seeds", seeds_raw, where)
            if not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds):
                raise ConfigError(f"{where}: seeds={seeds_raw!r}; expected integers >= 0")
            dimensions.append(Dimension("seed", {}, len(seeds)))
        elif isinstance(seeds_raw, int) and not isinstance(seeds_raw, bool) and seeds_raw >= 1:
            seeds = None
            dimensions.append(Dimension("replicate", {}, seeds_raw))
        else:
            raise ConfigError(f"{where}: seeds={seeds_raw!r}; expected a count >= 1 or a list of seeds")
        swept = [k for d in dimensions for k in d.settings]
        for key in ("seed", "experiment"):
            if key in fixed or key in swept:
                raise ConfigError(f"{where}: {key!r} cannot be set per point (use the sweep's seed/seeds)")
        both = sorted(set(fixed) & set(swept))
        if both:
            raise ConfigError(f"{where}: {both[0]!r} is both fixed and swept")
        if len(set(swept)) != len(swept):
            raise ConfigError(f"{where}: a setting is swept twice: {sorted(swept)}")
        try:
            base = base.override(fixed)
        except ConfigError as err:
            raise ConfigError(f"{where}: [fixed]: {err}") from None
        spec = cls(
            experiment=name,
            base=base,
            fixed=fixed,
            dims=tuple(d.name for d in dimensions),
            dimensions=tuple(dimensions),
            seed=seed,
            seeds=seeds,
            source=where,
        )
        spec.points()  # every point's config, checked now
        return spec

    @staticmethod
    def _base(experiment: registry.Experiment, base: Any, where: str, root: Any) -> Config:
        if base is None:
            return experiment.config_cls()
        if not isinstance(base, str) or not base.endswith(".toml"):
            raise ConfigError(f"{where}: base={base!r}; expected the path of a .toml config file")
        path = Path(root or ".") / base
        table = read_toml(path)
        if table.get("experiment", experiment.name) != experiment.name:
            raise ConfigError(
                f"{where}: base {str(path)!r} configures {table.get('experiment')!r}, not {experiment.name!r}"
            )
        try:
            return experiment.config_cls.from_dict(table)
        except ConfigError as err:
            raise ConfigError(f"{path}: {err}") from None

    @staticmethod
    def _table(data: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
        table = data.get(key, {})
        if not isinstance(table, Mapping):
            raise ConfigError(f"{where}: {key}={table!r} must be a table")
        return table

    @classmethod
    def _dimensions(cls, data: Mapping[str, Any], where: str) -> list[Dimension]:
        dims = [
            Dimension(key, {key: _values(key, raw, f"{where}: [axes]")}, len(raw))
            for key, raw in _flatten(cls._table(data, "axes", where), where).items()
        ]
        for group, table in cls._table(data, "zip", where).items():
            if not isinstance(table, Mapping) or not table:
                raise ConfigError(f"{where}: [zip.{group}] must be a table of settings and their values")
            settings = {
                k: _values(k, v, f"{where}: [zip.{group}]") for k, v in _flatten(table, where).items()
            }
            sizes = {k: len(v) for k, v in settings.items()}
            if len(set(sizes.values())) != 1:
                raise ConfigError(f"{where}: [zip.{group}] lists of different lengths: {sizes}")
            dims.append(Dimension(group, settings, next(iter(sizes.values()))))
        names = [d.name for d in dims]
        for reserved in ("point", "replicate", "seed"):
            if reserved in names:
                raise ConfigError(f"{where}: {reserved!r} is reserved and cannot name a dimension")
        if len(set(names)) != len(names):
            raise ConfigError(f"{where}: a dimension name is used twice: {names}")
        return dims

    # ---------------------------------------------------------------------------------------------- query
    @property
    def shape(self) -> tuple[int, ...]:
        """Size of every dimension (``dims`` order)."""
        return tuple(d.size for d in self.dimensions)

    @property
    def n_points(self) -> int:
        """Number of points."""
        return int(np.prod(self.shape))

    def points(self) -> list[Point]:
        """Every point, in index order, with its checked config (built once, then kept).

        Raises
        ------
        ConfigError
            Naming the point and its axis values, for a config the experiment refuses.
        """
        return list(self._points)

    @functools.cached_property
    def _points(self) -> tuple[Point, ...]:
        out = []
        for index, position in enumerate(itertools.product(*(range(d.size) for d in self.dimensions))):
            values: dict[str, Any] = {}
            settings: dict[str, Any] = {}
            seed = self.seed
            for dim, k in zip(self.dimensions, position, strict=True):
                if dim.name == "replicate":
                    values[dim.name], seed = k, _replicate_seed(self.seed, k)
                elif dim.name == "seed" and not dim.settings:
                    values[dim.name] = seed = self.seeds[k]  # type: ignore[index]
                else:
                    point_settings = {key: vals[k] for key, vals in dim.settings.items()}
                    settings.update(point_settings)
                    values[dim.name] = point_settings[dim.name] if dim.name in dim.settings else k
            try:
                config = self.base.override(settings).replace(seed=seed)
            except ConfigError as err:
                raise ConfigError(f"{self.source}: point {index} {values}: {err}") from None
            out.append(Point(index, position, values, settings, seed, config))
        return tuple(out)

    def to_dict(self) -> dict[str, Any]:
        """The spec as plain data (the resolved base config included), as stored with the sweep."""
        return {
            "experiment": self.experiment,
            "base": self.base.to_dict(),
            "fixed": results._jsonable(dict(self.fixed)),
            "dimensions": [
                {"name": d.name, "size": d.size, "settings": results._jsonable(dict(d.settings))}
                for d in self.dimensions
            ],
            "seed": self.seed,
            "seeds": None if self.seeds is None else list(self.seeds),
        }

    @functools.cached_property
    def digest(self) -> str:
        """SHA-256 of the spec and every point's resolved config: equal digests, equal points."""
        payload = {"spec": self.to_dict(), "points": [p.config.to_dict() for p in self.points()]}
        return hashlib.sha256(results.to_json(payload).encode()).hexdigest()

    def describe(self) -> str:
        """The points as a plain-text table (``neuromod sweep --dry-run``)."""
        head = f"{self.experiment}: {self.n_points} points, dims " + " x ".join(
            f"{n}={s}" for n, s in zip(self.dims, self.shape, strict=True)
        )
        lines = [head]
        for p in self.points():
            shown = ", ".join(f"{k}={v}" for k, v in {**p.settings, "seed": p.seed}.items())
            lines.append(f"  point {p.index:>4}: {shown}")
        return "\n".join(lines)
