"""Strict configuration: TOML -> frozen dataclasses.

A configuration is a frozen dataclass deriving from :class:`Config`. Fields declare their valid range or
choices with :func:`param`, so a config built in Python and one read from TOML are checked the same way.
:meth:`Config.from_dict` and :meth:`Config.from_toml` refuse

* unknown keys, naming the dotted key path and suggesting close matches (``tua_ms`` -> ``tau_ms``);
* wrong types (a string where a number is expected, a float where an integer is expected, ...);
* out-of-range values and values outside a set of choices,

each with a :class:`ConfigError` that names the key, the value and what was expected. Configs are data:
TOML is parsed with :mod:`tomllib` and nothing in it is ever executed.

Examples
--------
>>> from dataclasses import dataclass
>>> from neuromod.config import Config, param
>>> @dataclass(frozen=True)
... class Kinetics(Config):
...     tau_ms: float = param(100.0, low=0.0, low_inclusive=False, doc="release time constant")
>>> Kinetics.from_dict({"tau_ms": 50}).tau_ms
50.0
>>> Kinetics.from_dict({"tua_ms": 50})
Traceback (most recent call last):
...
neuromod.config.ConfigError: unknown key 'tua_ms' (did you mean 'tau_ms'?); valid keys: ['tau_ms']
"""

from __future__ import annotations

import collections.abc
import dataclasses
import math
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, Self, get_args, get_origin

from neuromod._checks import suggest

__all__ = ["Config", "ConfigError", "FrozenMap", "param", "read_toml"]

_MISSING = dataclasses.MISSING


class FrozenMap(Mapping[str, Any]):
    """A read-only, hashable mapping: the value of a config field typed ``Mapping[str, T]``.

    In TOML such a field is a table whose keys are free (model names, say) and whose values all have type
    ``T``: ``n_trials = {rate = 500, spiking = 100}``.
    """

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[str, Any] | None = None) -> None:
        self._data = dict(data or {})

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self):
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __hash__(self) -> int:
        return hash(tuple(sorted(self._data.items(), key=lambda kv: kv[0])))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Mapping) and dict(self._data) == dict(other)

    def __repr__(self) -> str:
        return f"FrozenMap({self._data!r})"


class ConfigError(ValueError):
    """An invalid configuration: the message names the dotted key, the value and what was expected."""


def param(
    default: Any = _MISSING,
    *,
    default_factory: Any = _MISSING,
    low: float | None = None,
    high: float | None = None,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
    doc: str = "",
) -> Any:
    """A dataclass field with a valid range and a description.

    Parameters
    ----------
    default, default_factory
        As for :func:`dataclasses.field` (use a tuple, not a list, for sequences: configs are frozen).
    low, high : float, optional
        Valid range of a number, or of every element of a tuple of numbers.
    low_inclusive, high_inclusive : bool
        Whether the ends of the range are allowed.
    doc : str
        One line on what the field means (and its units); shown by error messages and ``neuromod info``.
    """
    metadata = {
        "low": low,
        "high": high,
        "low_inclusive": low_inclusive,
        "high_inclusive": high_inclusive,
        "doc": doc,
    }
    if default_factory is not _MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return "one of " + repr(list(get_args(tp)))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in get_args(tp))
    if origin is tuple:
        args = get_args(tp)
        inner = _type_name(args[0]) if args else "any"
        return f"a list of {inner}"
    if origin in (Mapping, dict, collections.abc.Mapping):
        return f"a table of {_type_name(get_args(tp)[1])}"
    if tp is type(None):
        return "nothing (None)"
    if isinstance(tp, type) and issubclass(tp, Config):
        return f"a table ({tp.__name__})"
    return getattr(tp, "__name__", str(tp))


def _convert(value: Any, tp: Any, key: str) -> Any:
    """Convert a TOML value to the annotated type, or raise ConfigError naming `key`."""
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        errors = []
        for arg in get_args(tp):
            try:
                return _convert(value, arg, key)
            except ConfigError as err:
                errors.append(err)
        raise ConfigError(f"{key}={value!r} has the wrong type; expected {_type_name(tp)}")
    if origin is Literal:
        choices = get_args(tp)
        if value not in choices or isinstance(value, bool) != any(isinstance(c, bool) for c in choices):
            hint = suggest(value, [str(c) for c in choices]) if isinstance(value, str) else ""
            raise ConfigError(f"{key}={value!r} is not one of {list(choices)!r}{hint}")
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}={value!r} has the wrong type; expected {_type_name(tp)}")
        args = get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(v, args[0], f"{key}[{i}]") for i, v in enumerate(value))
        if len(args) != len(value):
            raise ConfigError(f"{key}={value!r} must have {len(args)} elements, got {len(value)}")
        return tuple(_convert(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(args, value, strict=True)))
    if origin in (Mapping, dict, collections.abc.Mapping):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key}={value!r} has the wrong type; expected {_type_name(tp)}")
        inner = get_args(tp)[1]
        out = {}
        for k, v in value.items():
            if not isinstance(k, str) or not k:
                raise ConfigError(f"{key} has the key {k!r}; expected non-empty names")
            out[k] = _convert(v, inner, f"{key}.{k}")
        return FrozenMap(out)
    if tp is type(None):
        if value is not None:
            raise ConfigError(f"{key}={value!r} has the wrong type; expected nothing (None)")
        return None
    if isinstance(tp, type) and issubclass(tp, Config):
        if isinstance(value, tp):
            return value
        if tp is Config:  # a table whose class is only known to the caller (e.g. a model family's)
            raise ConfigError(f"{key}={value!r} has the wrong type; expected a config object")
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key}={value!r} has the wrong type; expected {_type_name(tp)}")
        return tp.from_dict(value, _prefix=key)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}={value!r} has the wrong type; expected true or false")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}={value!r} has the wrong type; expected an integer")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}={value!r} has the wrong type; expected a number")
        if not math.isfinite(value):  # TOML has nan and inf; no setting of neuromod takes them
            raise ConfigError(f"{key}={value!r} must be a finite number")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}={value!r} has the wrong type; expected a string")
        return value
    raise TypeError(f"unsupported config field type {tp!r} for {key}")


def _check_range(key: str, value: Any, meta: Mapping[str, Any]) -> None:
    low, high = meta.get("low"), meta.get("high")
    if low is None and high is None:
        return
    if isinstance(value, Mapping):  # a table of values: check each, named by its key
        for k, v in value.items():
            _check_range(f"{key}.{k}", v, meta)
        return
    values = value if isinstance(value, tuple) else (value,)
    lo_inc, hi_inc = meta.get("low_inclusive", True), meta.get("high_inclusive", True)
    for v in values:
        if v is None or isinstance(v, (str, bool)):
            continue
        if (low is not None and (v < low if lo_inc else v <= low)) or (
            high is not None and (v > high if hi_inc else v >= high)
        ):
            interval = ("[" if lo_inc and low is not None else "(") + ("-inf" if low is None else f"{low:g}")
            interval += (
                ", "
                + ("inf" if high is None else f"{high:g}")
                + ("]" if hi_inc and high is not None else ")")
            )
            doc = f" ({meta['doc']})" if meta.get("doc") else ""
            shown = (
                value if len(values) == 1 and not isinstance(value, tuple) else f"{value!r} (element {v!r})"
            )
            raise ConfigError(f"{key}={shown} is outside the valid range {interval}{doc}")


@dataclasses.dataclass(frozen=True)
class Config:
    """Base class of neuromod configurations (frozen dataclasses with checked fields).

    Subclasses are ``@dataclasses.dataclass(frozen=True)`` classes whose fields are plain types (``int``,
    ``float``, ``str``, ``bool``, ``Literal[...]``, ``tuple[T, ...]``, ``X | None``) or nested ``Config``
    subclasses (TOML tables). Ranges are declared with :func:`param` and checked on construction.
    """

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            tp = hints[f.name]
            # Python construction: check types as TOML input would be, coercing int -> float.
            converted = _convert(value, tp, f.name)
            if converted is not value:
                object.__setattr__(self, f.name, converted)
            _check_range(f.name, converted, f.metadata)

    @classmethod
    def _keys(cls) -> dict[str, Any]:
        """The keys of this table and their types: the fields (subclasses may add keys that are not)."""
        hints = typing.get_type_hints(cls)
        return {f.name: hints[f.name] for f in dataclasses.fields(cls) if f.init}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, _prefix: str = "") -> Self:
        """Build a config from a mapping (e.g. parsed TOML), checking keys, types and ranges.

        Raises
        ------
        ConfigError
            For unknown keys (with the dotted key path and close matches), wrong types and out-of-range
            values (with the key, the value and the expected type or range).
        """
        if not isinstance(data, Mapping):
            raise ConfigError(f"{_prefix or cls.__name__} must be a table, got {data!r}")
        keys = cls._keys()
        dot = f"{_prefix}." if _prefix else ""
        unknown = [k for k in data if k not in keys]
        if unknown:
            key = unknown[0]
            raise ConfigError(_unknown_key(dot + key, key, keys))
        kwargs = {name: _convert(value, keys[name], dot + name) for name, value in data.items()}
        try:
            return cls(**kwargs)
        except ConfigError as err:
            raise ConfigError(f"{dot}{err}") from None

    @classmethod
    def from_toml(cls, path: str | os.PathLike[str]) -> Self:
        """Read and check a TOML file (see :func:`read_toml` and :meth:`from_dict`)."""
        data = read_toml(path)
        try:
            return cls.from_dict(data)
        except ConfigError as err:
            raise ConfigError(f"{path}: {err}") from None

    def to_dict(self) -> dict[str, Any]:
        """The config as plain data (nested dicts, lists for tuples), as written to ``config_json``.

        ``from_dict(config.to_dict())`` gives the config back.
        """
        from neuromod.results import _jsonable

        return {name: _jsonable(getattr(self, name)) for name in self._keys()}

    def replace(self, **changes: Any) -> Self:
        """A copy with some fields changed (checked like a new config)."""
        return dataclasses.replace(self, **changes)

    def override(self, changes: Mapping[str, Any]) -> Self:
        """A copy with settings changed by dotted key, checked exactly like TOML input.

        Parameters
        ----------
        changes : mapping
            ``{"tau_ms": 300, "spiking.dt_ms": 0.2}``: a key names a field, or a field of a nested table.

        Raises
        ------
        ConfigError
            An unknown key (with close matches), a key into something that is not a table, or a value of
            the wrong type or out of range.

        Examples
        --------
        >>> from neuromod.protocols.gain_curves import GainCurvesConfig
        >>> GainCurvesConfig().override({"seed": 3, "n_drives": 11}).n_drives
        11
        """
        if not isinstance(changes, Mapping):
            raise TypeError(
                f"changes must be a mapping of dotted keys to values, got {type(changes).__name__}"
            )
        data = self.to_dict()
        for key, value in changes.items():
            if not isinstance(key, str) or not key:
                raise ConfigError(f"setting names must be non-empty strings, got {key!r}")
            node: dict[str, Any] = data
            table: Any = type(self)
            path = ""
            parts = key.split(".")
            for i, part in enumerate(parts):
                child = _child_type(table, part, path)
                if i == len(parts) - 1:
                    node[part] = value
                    break
                if not _is_table(child):
                    raise ConfigError(f"{path + part!r} is a single setting, not a table; cannot set {key!r}")
                node = node.setdefault(part, {})
                table, path = child, f"{path}{part}."
        return type(self).from_dict(data)

    @classmethod
    def describe(cls) -> dict[str, str]:
        """Each field's one-line description (from :func:`param`'s ``doc``)."""
        return {f.name: f.metadata.get("doc", "") for f in dataclasses.fields(cls)}


def _is_table(tp: Any) -> bool:
    return (isinstance(tp, type) and issubclass(tp, Config)) or get_origin(tp) in (
        Mapping,
        dict,
        collections.abc.Mapping,
    )


def _unknown_key(dotted: str, key: str, keys: Mapping[str, Any]) -> str:
    """The message for an unknown key: close matches, then the valid keys (the first of them, when many)."""
    valid = sorted(keys)
    shown = repr(valid)
    if len(shown) > 140:
        head: list[str] = []
        for name in valid:
            if len(repr([*head, name])) > 110:
                break
            head.append(name)
        shown = repr(head)[:-1] + f", ... ({len(valid)} in all)]"
    return f"unknown key {dotted!r}{suggest(key, keys)}; valid keys: {shown}"


def _child_type(table: Any, key: str, path: str) -> Any:
    """The type of `key` in a table type (a Config class or a ``Mapping[str, T]``), or ConfigError."""
    if get_origin(table) in (Mapping, dict, collections.abc.Mapping):
        return get_args(table)[1]  # free keys
    keys = table._keys()
    if key not in keys:
        raise ConfigError(_unknown_key(path + key, key, keys))
    return keys[key]


def read_toml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Parse a TOML file. Nothing in the file is executed.

    Parameters
    ----------
    path : str or path-like
        The file.

    Returns
    -------
    dict
        The parsed tables.

    Raises
    ------
    FileNotFoundError, IsADirectoryError, PermissionError, OSError
        A missing file, a folder, a file this process may not read, or another failure to read it: one
        line naming the file.
    ConfigError
        Content that is not TOML: bytes that are not UTF-8 text (the offset of the first one is named),
        or a syntax error (the line and column are named).
    """
    path = Path(path)
    where = repr(str(path))
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise FileNotFoundError(f"no such config file: {where}") from None
    except IsADirectoryError:
        raise IsADirectoryError(f"the config file {where} is a folder; expected a TOML file") from None
    except PermissionError:
        raise PermissionError(f"the config file {where} cannot be read: permission denied") from None
    except UnicodeDecodeError as err:
        raise ConfigError(
            f"the config file {where} is not TOML: it is not UTF-8 text (byte 0x{err.object[err.start]:02x} "
            f"at offset {err.start})"
        ) from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: invalid TOML: {err}") from None
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise OSError(f"the config file {where} cannot be read: {reason}") from None
