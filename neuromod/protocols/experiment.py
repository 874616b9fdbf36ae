"""The base of experiment configurations: a name, a seed, the model families to run, one table per family.

An experiment's TOML file names the families it runs and may hold one table per family, named after it,
with the settings of that family's one config class (``config_cls`` of its adapter, the same class in
every experiment)::

    experiment = "task-switching"
    seed = 0
    models = ["se", "rate", "spiking"]
    tau_ms = 400.0

    [spiking]               # neuromod.protocols.families.spiking.SpikingConfig
    dt_ms = 0.2

A family without a table gets its defaults, calibrated for the experiment where the experiment says so
(``ExperimentConfig.family_defaults``). :meth:`ExperimentConfig.family` gives the resolved settings;
``to_dict`` (and so the ``config_json`` of every result) writes them out in full for every family run, so
a result records exactly what ran. A family registered at run time
(:func:`~neuromod.protocols.register_family`) is configured the same way, with no change to any protocol.

Examples
--------
>>> from neuromod.protocols.gain_curves import GainCurvesConfig
>>> cfg = GainCurvesConfig.from_dict({"models": ["rate"], "rate": {"mode": "threshold"}})
>>> cfg.family("rate").mode
'threshold'
>>> GainCurvesConfig.from_dict({"models": ["rat"]})  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
neuromod.config.ConfigError: models contains 'rat' (did you mean 'rate'?); known model families: [...]
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Self

import numpy as np
import xarray as xr

from neuromod._checks import suggest
from neuromod._random import child
from neuromod.config import Config, ConfigError, FrozenMap, _convert, _unknown_key, param
from neuromod.measures.gain import Form, fit_and_classify
from neuromod.protocols.family import ModelFamily, create_family, family_names, get_family, supports

__all__ = ["ClassifySettings", "ExperimentConfig", "family_stream", "group_attrs", "prepare_families"]


@dataclasses.dataclass(frozen=True)
class ExperimentConfig(Config):
    """Settings of an experiment: its name, seed, the families to run and the families' settings.

    Subclasses add the experiment's own settings as fields, and may set:

    * ``family_defaults``: per family name, settings that differ from the family's own defaults in
      this experiment (its calibration), as a mapping of field -> value;
    * ``operations``: the :class:`~neuromod.protocols.family.ModelFamily` operations the experiment
      calls, so a family that lacks one is refused when the config is built, before any work.

    ``families`` holds the settings given explicitly that differ from the defaults (so two configs that
    run the same thing compare equal); read a family's settings with :meth:`family`.
    """

    experiment: str = ""
    seed: int = param(0, low=0, doc="seed of every random stream in the run")
    models: tuple[str, ...] = param((), doc="model families to run, each at most once")
    families: Mapping[str, Config] = dataclasses.field(default_factory=FrozenMap, repr=False)

    family_defaults: ClassVar[Mapping[str, Mapping[str, Any]]] = {}
    operations: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        own = next(f.default for f in dataclasses.fields(type(self)) if f.name == "experiment")
        if own and self.experiment != own:  # a subclass's own name: a config of one experiment only
            raise ConfigError(
                f"experiment={self.experiment!r}: this is the {own!r} experiment's config; expected "
                f"{own!r} (a TOML file of another experiment runs with that experiment's own config)"
            )
        known = family_names()
        for name in self.models:
            if name not in known:
                raise ConfigError(
                    f"models contains {name!r}{suggest(name, known)}; known model families: {known}"
                )
        if not self.models or len(set(self.models)) != len(self.models):
            raise ConfigError(f"models={list(self.models)!r} must name one model family at least, each once")
        for name in self.models:
            cls = get_family(name)
            missing = [op for op in self.operations if not supports(cls, op)]
            if missing:
                raise ConfigError(
                    f"models contains {name!r}, which does not support {missing} (needed by the "
                    f"{self.experiment!r} experiment)"
                )
        explicit = {}
        for name, cfg in self.families.items():
            cls = get_family(name) if name in known else None
            if cls is None:
                raise ConfigError(f"unknown model family {name!r}{suggest(name, known)}; known: {known}")
            if not isinstance(cfg, cls.config_cls):
                raise ConfigError(
                    f"{name}={cfg!r} has the wrong type; expected a table ({cls.config_cls.__name__})"
                )
            if cfg != self._default(name):
                explicit[name] = cfg
        object.__setattr__(self, "families", FrozenMap(explicit))

    # ------------------------------------------------------------------ families
    @classmethod
    def _default(cls, name: str) -> Config:
        config_cls = get_family(name).config_cls
        try:
            return config_cls.from_dict(dict(cls.family_defaults.get(name, {})), _prefix=name)
        except ConfigError as err:  # pragma: no cover - the defaults are the package's own
            raise ConfigError(f"{cls.__name__}.family_defaults: {err}") from None

    def family(self, name: str) -> Config:
        """The resolved settings of family `name` in this experiment (explicit, else the defaults)."""
        if name in self.families:
            return self.families[name]
        return self._default(name)

    def create(self, name: str) -> ModelFamily:
        """An instance of family `name` with its settings in this experiment."""
        return create_family(name, self.family(name))

    def with_family(self, name: str, **changes: Any) -> Self:
        """A copy with some settings of family `name` changed (checked like a new config)."""
        families = dict(self.families)
        families[name] = self.family(name).replace(**changes)
        return self.replace(families=FrozenMap(families))

    def with_quick_families(self) -> Self:
        """A copy in which every family run has its quick settings (``quick_config``)."""
        families = dict(self.families)
        for name in self.models:
            families[name] = get_family(name).quick_config(self.family(name))
        return self.replace(families=FrozenMap(families))

    # ------------------------------------------------------------------ TOML / dict form
    @classmethod
    def _keys(cls) -> dict[str, Any]:
        hints = typing.get_type_hints(cls)
        keys = {f.name: hints[f.name] for f in dataclasses.fields(cls) if f.init and f.name != "families"}
        for name in family_names():
            if name in keys:  # pragma: no cover - a family name must not shadow a setting
                raise ConfigError(f"the model family {name!r} has the name of a setting of {cls.__name__}")
            keys[name] = get_family(name).config_cls
        return keys

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, _prefix: str = "") -> Self:
        if not isinstance(data, Mapping):
            raise ConfigError(f"{_prefix or cls.__name__} must be a table, got {data!r}")
        keys = cls._keys()
        unknown = [k for k in data if k not in keys]
        if unknown:
            key = unknown[0]
            raise ConfigError(_unknown_key(key, key, keys))
        names = set(family_names())
        fields = {k: _convert(v, keys[k], k) for k, v in data.items() if k not in names}
        # a family table changes the experiment's defaults of that family (its calibrated values included):
        # the keys it leaves out keep them, as `--set family.key=value` does
        tables = {
            k: _convert({**cls._default(k).to_dict(), **v} if isinstance(v, Mapping) else v, keys[k], k)
            for k, v in data.items()
            if k in names
        }
        return cls(**fields, families=FrozenMap(tables))

    def to_dict(self) -> dict[str, Any]:
        """The settings as plain data, with the full table of every family run or configured."""
        from neuromod.results import _jsonable

        fields = [f.name for f in dataclasses.fields(self) if f.init and f.name != "families"]
        out = {name: _jsonable(getattr(self, name)) for name in fields}
        for name in dict.fromkeys([*self.models, *self.families]):
            out[name] = self.family(name).to_dict()
        return out


@dataclasses.dataclass(frozen=True)
class ClassifySettings(Config):
    """How gain curves are fitted, screened and classified (:func:`neuromod.measures.fit_and_classify`);
    shared by every experiment that classifies gain curves.

    ``form = "auto"`` (the default) fits every candidate form (threshold-linear, softplus, saturating) and
    keeps, per condition, the simplest one within 2 AIC units of the best, so curves that saturate are
    fitted with the saturating form and straight ones with a straight line; the chosen form is the result's
    ``fit_form``.
    """

    form: Form = param(
        "auto",
        doc="fitted form: auto (chosen per condition by AIC), threshold_linear, softplus, saturating or "
        "naka_rushton",
    )
    z: float = param(2.0, low=0.0, low_inclusive=False, doc="standard errors a change must exceed")
    gain_tolerance: float = param(0.1, low=0.0, low_inclusive=False, doc="smallest relative gain change")
    threshold_tolerance: float = param(
        0.05, low=0.0, low_inclusive=False, doc="smallest threshold shift, as a fraction of the drive range"
    )
    min_r2: float = param(0.9, low=0.0, high=1.0, doc="smallest R^2 (mean curve) of a classified curve")
    signed_shift: bool = param(
        False, doc="name a threshold-only change by its direction: additive (left) or subtractive (right)"
    )

    def classify(
        self,
        curves: xr.Dataset,
        *,
        reference: xr.DataArray | xr.Dataset | None = None,
        reference_level: float = 0.0,
    ) -> xr.Dataset:
        """`curves` fitted, screened and classified with these settings.

        Every level is classified against `reference`, the *unmodulated* response over (``drive``,
        ``repeat``) or (``condition``, ``drive``, ``repeat``), when given; else against the curve at
        `reference_level` (:func:`neuromod.measures.fit_and_classify`).
        """
        return fit_and_classify(
            curves,
            form=self.form,
            z=self.z,
            gain_tolerance=self.gain_tolerance,
            threshold_tolerance=self.threshold_tolerance,
            min_r2=self.min_r2,
            reference_level=reference_level,
            reference=reference,
            signed_shift=self.signed_shift,
        )


def family_stream(root: np.random.SeedSequence, name: str, operation: str) -> np.random.SeedSequence:
    """The random stream of family `name` for `operation` in a run seeded with `root`.

    It depends on the run's seed and the two names only, so adding, removing or reordering the families of
    a run changes no family's stream, and a family's model (e.g. the trained SE model) is the same in every
    experiment run with the same seed and settings.
    """
    return child(root, "family", name, operation)


def prepare_families(
    config: ExperimentConfig,
    names: Sequence[str],
    *,
    root: np.random.SeedSequence,
    families: Mapping[str, ModelFamily] | None = None,
    progress: bool = False,
) -> tuple[dict[str, ModelFamily], dict[str, xr.Dataset]]:
    """Build (or take from `families`) and prepare the families `names`: instances and what their
    preparation returned (e.g. a training curve).

    Raises
    ------
    TypeError, ValueError
        A passed instance of the wrong family, or a family in `families` that the run does not use.
    """
    given = dict(families or {})
    unused = sorted(set(given) - set(names))
    if unused:
        raise ValueError(f"families={unused} are not used by this run (it uses {list(names)})")
    instances: dict[str, ModelFamily] = {}
    for name in names:
        family = given.get(name)
        if family is None:
            family = config.create(name)
        elif not isinstance(family, get_family(name)):
            raise TypeError(
                f"families[{name!r}] must be a {get_family(name).__name__}, got {type(family).__name__}"
            )
        instances[name] = family
    prepared = {
        name: family.prepare(seed=family_stream(root, name, "prepare"), progress=progress)
        for name, family in instances.items()
    }
    return instances, prepared


def group_attrs(name: str, family: ModelFamily) -> dict[str, Any]:
    """Attributes of a family's result group: its name and the family's provenance."""
    return {"model": name, **family.provenance()}
