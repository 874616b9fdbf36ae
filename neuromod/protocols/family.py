"""Model families: the one interface through which every protocol runs a model, and their registry.

A *model family* is one level of description (the SE gate, the rate model, the spiking network, or one of
yours: a NEST network, an RNN from another package) seen from the protocols. The model packages
(``neuromod.gating``, ``neuromod.rate``, ``neuromod.spiking``) know nothing of tasks or protocols; an
*adapter* on the protocol side turns the operations below into calls of its model package. Every
protocol loops over families by name and calls only these operations, so adding a family is one module and
one :func:`register_family` call, and a sweep can run "experiment E with family F, config C and seed S"
for every family alike.

An adapter is a class with

* class attributes: ``name`` (the registry name and the ``model`` coordinate of results),
  ``config_cls`` (its ONE :class:`~neuromod.config.Config` class, reused by every experiment: a TOML
  table ``[name]``), ``description``, ``variant_field`` and ``variants`` (the config field that selects
  the modulation mechanism and its values, e.g. the rate model's ``mode``; ``None`` and ``()`` when there
  is none), ``reference`` (what relative drive 1 means), ``uses_release`` (whether the cue acts through
  a release pattern that the protocol sets) and ``provides_release`` (whether the family can propose a
  release pattern for the others, :meth:`ModelFamily.release_pattern`), ``tau_field`` (the config field
  that fixes the modulator time constant a model is built or trained at, which an experiment sets to its
  own ``tau_ms``; ``None`` when the time constant is only an argument of the operations);
* a constructor taking its config (``Family(config)``, ``config=None`` for the defaults);
* the operations of :class:`ModelFamily`. An operation a family cannot do raises
  :class:`NotImplementedError`; experiments check :func:`supports` before any work;
* optionally, ``memory_footprint(config, operation, **sizes)`` (a classmethod): the memory of an operation
  estimated from the config and the request's sizes alone, before any work
  (:meth:`FamilyBase.memory_footprint` documents the sizes and gives a generic estimate;
  :mod:`neuromod.protocols.memory` adds up a run's).

Drives are *relative*: 1 is the family's reference drive (the input of a sensory population during the
task's stimulus at 0 % coherence), so that gain curves of every family share one axis. Levels of a gain
sweep are the family's modulation levels, 0 being the reference (unmodulated, or the population's own task
cued); each family documents its levels in the ``level`` coordinate's ``long_name``.

Examples
--------
>>> from neuromod.protocols.family import family_names, get_family
>>> family_names()[:3]
['se', 'rate', 'spiking']
>>> get_family("rate").variants
('response_gain', 'input_gain', 'threshold')
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar, runtime_checkable

from neuromod._checks import suggest
from neuromod._memory import Footprint
from neuromod.config import Config

if TYPE_CHECKING:
    import numpy as np
    import xarray as xr

    from neuromod.tasks import CuedTaskSwitching

__all__ = [
    "OPERATIONS",
    "FamilyBase",
    "ModelFamily",
    "create_family",
    "family_names",
    "get_family",
    "register_family",
    "supports",
    "unregister_family",
]

#: Built-in families: name -> module that registers it on import (imported only when asked for).
_BUILTIN: dict[str, str] = {
    "se": "neuromod.protocols.families.se",
    "rate": "neuromod.protocols.families.rate",
    "spiking": "neuromod.protocols.families.spiking",
}
_REGISTRY: dict[str, type[ModelFamily]] = {}

#: The operations of :class:`ModelFamily` that experiments call.
OPERATIONS: tuple[str, ...] = (
    "prepare",
    "run_trials",
    "fi_curves",
    "cue_gain_curves",
    "decision",
    "gain_profile",
    "release_pattern",
)


@runtime_checkable
class ModelFamily(Protocol):
    """What a model family offers the protocols (see the module docstring).

    Every returned Dataset has plain float data with ``units`` and ``long_name`` on every variable and
    coordinate, and never stores wall-clock times, so the same seed gives an identical result.
    """

    name: ClassVar[str]
    config_cls: ClassVar[type[Config]]
    description: ClassVar[str]
    variant_field: ClassVar[str | None]
    variants: ClassVar[tuple[str, ...]]
    reference: ClassVar[str]
    uses_release: ClassVar[bool]
    provides_release: ClassVar[bool]
    tau_field: ClassVar[str | None]

    config: Config

    @classmethod
    def quick_config(cls, config: Config) -> Config:
        """A reduced version of `config` that runs in seconds (tests, notebooks, ``--quick``)."""
        ...

    def prepare(self, *, seed: np.random.SeedSequence, progress: bool = False) -> xr.Dataset:
        """Build the model (train or load it, if it learns); return what to keep of that (e.g. the training
        curve over ``train_step``), or an empty Dataset. Called once per run, before any other operation."""
        ...

    def provenance(self) -> dict[str, str]:
        """Attributes for the family's result group (e.g. where a trained model came from)."""
        ...

    def check_timing(self, times_ms: Mapping[str, float | Sequence[float]]) -> None:
        """Refuse, before any work, named times (ms) the family cannot run, e.g. off its time grid
        (``{"csi_ms": (100.0, 300.0), "max_rt_ms": 800.0}``); ValueError naming the setting."""
        ...

    def run_trials(
        self,
        task: CuedTaskSwitching,
        *,
        release: np.ndarray,
        tau_ms: float,
        decimate_ms: float,
        seed: np.random.SeedSequence,
        progress: bool = False,
    ) -> xr.Dataset:
        """Run the task's session (trial for trial, the modulator state carried over between trials).

        `release` is the release level per (context, population) in [0, 1] that the cue sets (families
        that gate by themselves ignore it); `tau_ms` the modulator time constant (ms, 0 = instantaneous).
        Returns ``choice`` (1, 2; 0 = no response) and ``rt`` (ms from stimulus onset, NaN = none) over
        ``trial`` (the task's ``trial`` coordinate), and the gain traces ``gain`` over (``time``,
        ``population``) sampled every `decimate_ms` on the task's time axis (ms).
        """
        ...

    def fi_curves(
        self,
        *,
        drives: np.ndarray,
        levels: np.ndarray,
        n_repeats: int,
        seed: np.random.SeedSequence,
        progress: bool = False,
    ) -> xr.Dataset:
        """Steady-state response against relative drive at modulation `levels` (level 0 = reference).

        Returns ``response`` over (``condition``, ``level``, ``drive``, ``repeat``), ``condition`` being
        what the family tells apart in one sweep (its configured variant, or its populations).
        """
        ...

    def cue_gain_curves(
        self,
        *,
        release: np.ndarray,
        drives: np.ndarray,
        n_repeats: int,
        seed: np.random.SeedSequence,
        progress: bool = False,
    ) -> xr.Dataset:
        """Each sensory population's response against its relative drive with its feature cued (level 0)
        and with the other feature cued (level 1), under the release pattern `release`.

        Returns ``response`` over (``condition`` = population, ``level``, ``drive``, ``repeat``).
        """
        ...

    def decision(
        self,
        coherences_pct: np.ndarray,
        *,
        n_trials: int,
        max_rt_ms: float,
        seed: np.random.SeedSequence,
        progress: bool = False,
    ) -> xr.Dataset:
        """The plain two-choice task: `n_trials` independent trials per coherence of feature a.

        Returns ``choice`` (1, 2; 0 = none) and ``rt`` (ms) over (``coherence``, ``trial``); pool/choice 1
        is correct for coherence >= 0.
        """
        ...

    def gain_profile(self, release: np.ndarray, coherences_pct: tuple[float, ...]) -> np.ndarray:
        """Steady-state gain of each (context, population) under `release`, during stimuli of these
        coherences (NaN where the mechanism has no gain, e.g. a pure threshold shift)."""
        ...

    def release_pattern(self, coherences_pct: tuple[float, ...]) -> xr.DataArray:
        """The release pattern over (``context``, ``population``) in [0, 1] that this family proposes for
        the others (families with ``provides_release``), averaged over stimuli of these coherences."""
        ...


F = TypeVar("F", bound=type)


def _check_adapter(cls: type) -> None:
    """Refuse a class that does not have the shape of a model family (names what is missing)."""
    problems = []
    for attr, kind in (
        ("name", str),
        ("description", str),
        ("variants", tuple),
        ("reference", str),
        ("uses_release", bool),
        ("provides_release", bool),
    ):
        if not isinstance(getattr(cls, attr, None), kind):
            problems.append(f"class attribute {attr!r} ({kind.__name__})")
    config_cls = getattr(cls, "config_cls", None)
    if not (isinstance(config_cls, type) and issubclass(config_cls, Config)):
        problems.append("class attribute 'config_cls' (a neuromod.config.Config subclass)")
    for attr in ("variant_field", "tau_field"):
        value = getattr(cls, attr, "")
        if value is not None and not isinstance(value, str):
            problems.append(f"class attribute {attr!r} (str or None)")
    for op in (*OPERATIONS, "provenance", "check_timing", "quick_config"):
        if not callable(getattr(cls, op, None)):
            problems.append(f"method {op!r}")
    if problems:
        raise TypeError(f"{cls.__name__} is not a model family: it lacks {', '.join(problems)}")
    name = cls.name
    if not name.isidentifier() or name != name.lower():
        raise ValueError(f"family name {name!r} must be a lowercase identifier (it is a TOML table name)")


def register_family(cls: F | None = None, *, replace: bool = False) -> F | Callable[[F], F]:
    """Register a model-family adapter class under its ``name`` (usable as a class decorator).

    Raises
    ------
    TypeError
        The class lacks an attribute or operation of :class:`ModelFamily` (all are named).
    ValueError
        The name is taken, by a registered family or a built-in one (pass ``replace=True`` to redefine
        it), or is not a lowercase identifier.
    """

    def add(klass: F) -> F:
        _check_adapter(klass)
        name = klass.name  # type: ignore[attr-defined]
        own_builtin = _BUILTIN.get(name) == klass.__module__
        clash = (name in _REGISTRY and _REGISTRY[name] is not klass) or (name in _BUILTIN and not own_builtin)
        if clash and not replace:
            raise ValueError(f"a model family named {name!r} is already registered (pass replace=True)")
        _REGISTRY[name] = klass  # type: ignore[assignment]
        return klass

    return add if cls is None else add(cls)


def unregister_family(name: str) -> None:
    """Remove a registered family (a built-in one is registered again when next asked for)."""
    _REGISTRY.pop(name, None)


def family_names() -> list[str]:
    """Names of all families: the built-in ones first, then the registered ones in registration order."""
    return list(dict.fromkeys([*_BUILTIN, *_REGISTRY]))


def get_family(name: str) -> type[ModelFamily]:
    """The adapter class of the family called `name` (importing its module if it is built in).

    Raises
    ------
    KeyError
        An unknown name, with the known ones and close matches.
    """
    if not isinstance(name, str):
        raise TypeError(f"a family name must be a str, got {type(name).__name__}")
    if name not in _REGISTRY and name in _BUILTIN:
        importlib.import_module(_BUILTIN[name])
    if name not in _REGISTRY:
        raise KeyError(
            f"unknown model family {name!r}{suggest(name, family_names())}; known: {family_names()}"
        )
    return _REGISTRY[name]


def create_family(name: str, config: Config | None = None) -> ModelFamily:
    """An instance of family `name` with `config` (default: the family's own defaults).

    Raises
    ------
    KeyError
        Unknown family.
    TypeError
        `config` is not the family's config class.
    """
    cls = get_family(name)
    if config is None:
        config = cls.config_cls()
    if not isinstance(config, cls.config_cls):
        raise TypeError(
            f"the config of family {name!r} must be a {cls.config_cls.__name__}, got {type(config).__name__}"
        )
    return cls(config)  # type: ignore[call-arg]


def _unsupported(func: Callable[..., Any]) -> Callable[..., Any]:
    func._neuromod_unsupported = True  # type: ignore[attr-defined]
    return func


def supports(family: type[ModelFamily] | ModelFamily, operation: str) -> bool:
    """Whether `family` implements `operation` (not the stub of :class:`FamilyBase` that raises)."""
    if operation not in OPERATIONS:
        raise ValueError(f"operation={operation!r} is not one of {OPERATIONS}")
    cls = family if isinstance(family, type) else type(family)
    impl = getattr(cls, operation, None)
    return callable(impl) and not getattr(impl, "_neuromod_unsupported", False)


class FamilyBase:
    """A convenient base for adapters: the constructor, and defaults for what a family may leave out.

    Operations a family does not override raise :class:`NotImplementedError` and count as unsupported
    (:func:`supports`), so experiments refuse the family before any work; ``prepare`` does nothing and
    ``provenance`` is empty.
    """

    name: ClassVar[str]
    config_cls: ClassVar[type[Config]]
    description: ClassVar[str] = ""
    variant_field: ClassVar[str | None] = None
    variants: ClassVar[tuple[str, ...]] = ()
    reference: ClassVar[str] = "relative drive 1: the input of a population during a 0 % coherence stimulus"
    uses_release: ClassVar[bool] = False
    provides_release: ClassVar[bool] = False
    tau_field: ClassVar[str | None] = None

    def __init__(self, config: Config | None = None) -> None:
        if config is None:
            config = self.config_cls()
        if not isinstance(config, self.config_cls):
            raise TypeError(
                f"the config of family {self.name!r} must be a {self.config_cls.__name__}, "
                f"got {type(config).__name__}"
            )
        self.config = config

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config!r})"

    def prepare(self, *, seed: np.random.SeedSequence, progress: bool = False) -> xr.Dataset:
        import xarray as xr

        return xr.Dataset()

    @classmethod
    def quick_config(cls, config: Config) -> Config:
        return config

    def provenance(self) -> dict[str, str]:
        return {}

    @classmethod
    def memory_footprint(cls, config: Config, operation: str, **sizes: Any) -> Footprint:
        """Memory of `operation` run with `config`, from the request's sizes alone (no work is done).

        Adapters override it with what their model really holds; this generic estimate counts the layout
        every family returns (:class:`ModelFamily`), twice (the result and one copy while it is built).

        Parameters
        ----------
        config : Config
            The family's settings (an instance of ``config_cls``).
        operation : str
            ``"prepare"`` (what loading the libraries and building or training the model take), or an
            operation of ``OPERATIONS``.
        **sizes
            The request: ``run_trials``: ``task`` (the :class:`~neuromod.tasks.CuedTaskSwitching`, its
            table not drawn) and ``decimate_ms``; ``fi_curves``: ``n_drives``, ``n_levels``,
            ``n_repeats``; ``cue_gain_curves``: ``n_drives``, ``n_repeats``; ``decision``:
            ``n_coherences``, ``n_trials``, ``max_rt_ms``.

        Returns
        -------
        Footprint
            ``kept``: bytes the result (or, for ``prepare``, the model and its libraries) holds afterwards;
            ``working``: bytes held besides at the operation's peak.
        """
        from neuromod.protocols.memory import trial_ms

        if operation == "run_trials":
            task = sizes["task"]
            samples = task.n_trials * trial_ms(task) / sizes["decimate_ms"]
            kept = task.n_trials * 32 + samples * 5 * 8  # choice, rt, stim_onset_ms; time, gain (4)
        elif operation == "fi_curves":
            kept = 4 * sizes["n_levels"] * sizes["n_drives"] * sizes["n_repeats"] * 8
        elif operation == "cue_gain_curves":
            kept = 4 * 2 * sizes["n_drives"] * sizes["n_repeats"] * 8
        elif operation == "decision":
            kept = sizes["n_coherences"] * sizes["n_trials"] * 16
        else:
            kept = 0
        return Footprint(kept=kept, working=kept)

    def check_timing(self, times_ms: Mapping[str, float | Sequence[float]]) -> None:
        return None

    def _refuse(self, operation: str) -> NotImplementedError:
        return NotImplementedError(f"the model family {self.name!r} does not support {operation!r}")

    @_unsupported
    def run_trials(self, task: CuedTaskSwitching, **kwargs: Any) -> xr.Dataset:
        raise self._refuse("run_trials")

    @_unsupported
    def fi_curves(self, **kwargs: Any) -> xr.Dataset:
        raise self._refuse("fi_curves")

    @_unsupported
    def cue_gain_curves(self, **kwargs: Any) -> xr.Dataset:
        raise self._refuse("cue_gain_curves")

    @_unsupported
    def decision(self, coherences_pct: np.ndarray, **kwargs: Any) -> xr.Dataset:
        raise self._refuse("decision")

    @_unsupported
    def gain_profile(self, release: np.ndarray, coherences_pct: tuple[float, ...]) -> np.ndarray:
        raise self._refuse("gain_profile")

    @_unsupported
    def release_pattern(self, coherences_pct: tuple[float, ...]) -> xr.DataArray:
        raise self._refuse("release_pattern")
