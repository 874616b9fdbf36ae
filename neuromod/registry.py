"""The registry of runnable experiments behind ``neuromod run NAME``.

An experiment is a name, a config class (a :class:`neuromod.config.Config` with an ``experiment`` and a
``seed`` field), a function that runs it and returns a neuromod result, and functions that summarise and plot
that result, and a function that estimates a run's memory from its config
(:meth:`Experiment.estimate_memory`; every built-in run refuses, before any work, a config whose estimate
exceeds the memory limit: :func:`neuromod.protocols.memory.check_memory`). Built-in experiments live in
modules that register themselves on import; the registry imports them only when one is asked for, so the
command line starts without importing torch or brian2.

Examples
--------
>>> from neuromod import registry
>>> "decision" in registry.names()
True
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from neuromod._checks import suggest

if TYPE_CHECKING:
    import xarray as xr
    from matplotlib.figure import Figure

    from neuromod._memory import MemoryEstimate
    from neuromod.config import Config

__all__ = ["Experiment", "get", "names", "register"]

#: Built-in experiments: name -> module that registers it on import.
_BUILTIN: dict[str, str] = {
    "decision": "neuromod.protocols.decision",
    "gain-curves": "neuromod.protocols.gain_curves",
    "task-switching": "neuromod.protocols.task_switching",
    "sweep-probe": "neuromod.sweep.probe",
}
_REGISTRY: dict[str, Experiment] = {}


@dataclasses.dataclass(frozen=True)
class Experiment:
    """A runnable experiment.

    Attributes
    ----------
    name : str
        The name used on the command line (``neuromod run NAME``) and in ``experiment = "NAME"`` in TOML.
    config_cls : type
        Its configuration class; ``config_cls()`` gives the embedded defaults.
    run : callable
        ``run(config, *, progress: bool) -> Dataset | DataTree``: the result, with provenance attributes.
    summarize : callable
        ``summarize(result) -> str``: a plain-text table for the terminal.
    plot : callable
        ``plot(result) -> matplotlib.figure.Figure``.
    quick : callable
        ``quick(config) -> config``: a reduced config that runs in seconds (tests, notebooks, ``--quick``).
    description : str
        One line for ``neuromod run --help`` and the experiments list.
    memory : callable, optional
        ``memory(config) -> MemoryEstimate``: the run's peak memory estimated from its config alone, without
        any work (:class:`neuromod.protocols.memory.MemoryEstimate`); None: the experiment has no estimate.
    """

    name: str
    config_cls: type[Config]
    run: Callable[..., xr.Dataset | xr.DataTree]
    summarize: Callable[[Any], str]
    plot: Callable[[Any], Figure]
    quick: Callable[[Any], Any]
    description: str = ""
    memory: Callable[[Any], MemoryEstimate] | None = None

    def _checked(self, config: Any) -> Any:
        if not isinstance(config, self.config_cls):
            raise TypeError(
                f"config must be a {self.config_cls.__name__} (the {self.name!r} experiment's), "
                f"got {type(config).__name__}"
            )
        return config

    def estimate_memory(self, config: Any) -> MemoryEstimate | None:
        """The peak memory of running `config`, estimated from the config alone (no work is done).

        Returns
        -------
        MemoryEstimate or None
            Its ``total`` (bytes) and the parts that add up to it; None for an experiment without an
            estimate.

        Raises
        ------
        TypeError
            `config` is not this experiment's config class.

        Examples
        --------
        >>> exp = get("sweep-probe")
        >>> exp.estimate_memory(exp.config_cls(n=10**9)).total > 10**10
        True
        """
        config = self._checked(config)
        return None if self.memory is None else self.memory(config)

    def check_memory(self, config: Any) -> MemoryEstimate | None:
        """:meth:`estimate_memory`, refused with :class:`neuromod.protocols.memory.MemoryLimitError` (one
        line: the estimate, the limit, what to change) when it exceeds the memory limit
        (:func:`neuromod.protocols.memory.memory_limit`). The built-in run functions call it first."""
        from neuromod._memory import check_memory

        return check_memory(self.estimate_memory(config))


def register(experiment: Experiment, *, replace: bool = False) -> Experiment:
    """Add an experiment to the registry (``replace=True`` to redefine a name)."""
    if experiment.name in _REGISTRY and not replace:
        raise ValueError(f"an experiment named {experiment.name!r} is already registered")
    _REGISTRY[experiment.name] = experiment
    return experiment


def names() -> list[str]:
    """Names of all experiments, built-in and registered."""
    return sorted(set(_BUILTIN) | set(_REGISTRY))


def get(name: str) -> Experiment:
    """The experiment called `name`, importing its module if it is built in.

    Raises
    ------
    KeyError
        For an unknown name, listing the known ones and suggesting close matches.
    """
    if name not in _REGISTRY and name in _BUILTIN:
        importlib.import_module(_BUILTIN[name])
    if name not in _REGISTRY:
        raise KeyError(f"unknown experiment {name!r}{suggest(name, names())}; known: {names()}")
    return _REGISTRY[name]
