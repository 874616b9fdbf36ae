"""The ``task-switching`` experiment: the model families side by side on the same cued task-switching trials.

:func:`run_task_switching` is the package's main comparison (``neuromod run task-switching``):

1. prepare every family (the SE task model is trained at the run's ``tau_ms``, or loaded from
   ``se.model_path``);
2. take the SE gate's gain ratio irrelevant / relevant of each population (its steady-state gate profile,
   ``neuromod.protocols.se_profile.population_gains``) as the target of the mapping;
3. give every family that takes a release pattern its gain-matched release
   (``neuromod.protocols.gain_match``, ``match_gain``), or the pattern the ``release`` family proposes;
4. run one trial table (:class:`~neuromod.tasks.CuedTaskSwitching`, closed loop: each model's responses
   end its stimuli) on every family with the same modulator time constant ``tau_ms``; a family limited by
   ``max_trials`` runs the table's first trials (the same trials, so paired contrasts stay paired);
5. measure every family's cue gain curves with its own release (each sensory population's response against
   its relative drive with its feature cued, level 0, and with the other feature cued, level 1; fitted,
   screened and classified by :func:`neuromod.measures.fit_and_classify`), which checks the match;
6. put behaviour (accuracy, RT, trial-level switch-cost regressions, preparation fits, costs by direction,
   error RTs, paired contrasts, resolution) and the gain measures side by side along a ``model``
   dimension (``neuromod.protocols.switching_summary``).

The relative drive of the gain curves is shared by all families: 1 is the input of a population during
the task's stimulus at 0 % coherence (each family's ``reference``), from 0 to ``gain.drive_max``.
``gain_ratio`` is gain(irrelevant) / gain(relevant).

Calibration. Every family is calibrated to one behavioural regime, repeat-trial accuracy 0.90-0.97 and
mean correct RT 450-750 ms, by ``neuromod.protocols.calibration`` on a calibration trial table with its
own seed (never the evaluation table); the calibrated values are the ``family_defaults`` below, and the
values, criteria and what the calibration measured are stored with every result (``calibration_json``).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import xarray as xr

from neuromod import registry, results
from neuromod._checks import check_bool
from neuromod._memory import check_memory
from neuromod._random import child, int_seed, seed_sequence
from neuromod.config import Config, ConfigError, FrozenMap, param
from neuromod.protocols.calibration import CALIBRATION, CALIBRATION_SEED, CRITERIA
from neuromod.protocols.experiment import (
    ClassifySettings,
    ExperimentConfig,
    family_stream,
    group_attrs,
    prepare_families,
)
from neuromod.protocols.families._common import RELEVANT_CONTEXT, task_timing
from neuromod.protocols.family import ModelFamily, family_names, get_family
from neuromod.protocols.gain_match import match_release
from neuromod.protocols.memory import estimate_task_switching as estimate_memory
from neuromod.protocols.sessions import check_family_tau, resolve_release, session_groups, session_root
from neuromod.protocols.switching_figure import plot
from neuromod.protocols.switching_report import summarize
from neuromod.protocols.switching_summary import summary
from neuromod.results import var_attrs as _attrs
from neuromod.tasks.switching import CuedTaskSwitching

__all__ = ["CueGainConfig", "TaskSwitchingConfig", "estimate_memory", "quick", "run_task_switching"]


@dataclasses.dataclass(frozen=True)
class CueGainConfig(ClassifySettings):
    """Gain curves of the comparison: each population's response against relative drive, cued vs not."""

    drive_max: float = param(
        4.0, low=0.0, low_inclusive=False, doc="largest relative drive (1 = the task's stimulus at 0 %)"
    )
    n_drives: int = param(17, low=5, doc="number of drive values from 0")
    n_repeats: int = param(128, low=1, doc="noise realisations per drive and level (deterministic: 1)")
    match_levels: int = param(9, low=3, doc="modulator levels of the gain-matching f-I sweep")


@dataclasses.dataclass(frozen=True)
class TaskSwitchingConfig(ExperimentConfig):
    """The ``task-switching`` experiment (``neuromod run task-switching``): the families compared.

    The task settings (``n_trials`` ... ``cues_per_task``) define the one trial table that every family runs
    in closed loop; ``max_trials`` limits a family to the table's first trials (the spiking network runs about
    15 trials per wall-second on 2 cores, as short sessions side by side). ``tau_ms`` is the modulator time
    constant of every family (the SE model is trained at it). ``release`` names the family whose gate gives
    the target of the mapping (``"se"``) or ``"default"``
    (``neuromod.protocols.sessions.DEFAULT_RELEASE``, no mapping); with ``match_gain`` each family that
    takes a release gets the levels that match the SE gain ratios (``neuromod.protocols.gain_match``), else
    the SE pattern itself (``se_gain / max``)."""

    experiment: str = "task-switching"
    models: tuple[str, ...] = ("se", "rate", "spiking")
    tau_ms: float = param(
        400.0, low=0.0, low_inclusive=False, doc="modulator time constant of every model (ms)"
    )
    n_trials: int = param(6000, low=8, doc="trials in the shared session")
    max_trials: Mapping[str, int] = param(
        default_factory=lambda: FrozenMap({"spiking": 2000}),
        low=8,
        doc="families limited to the table's first trials (name -> trials)",
    )
    csi_ms: tuple[float, ...] = param(
        (50.0, 150.0, 300.0, 600.0, 1200.0), low=0.0, doc="cue-stimulus intervals (ms)"
    )
    coherences_pct: tuple[float, ...] = param(
        (12.8,), low=0.0, low_inclusive=False, high=100.0, doc="coherences (%); one value = fixed difficulty"
    )
    rci_ms: float = param(100.0, low=0.0, doc="response-cue interval, no cue on (ms)")
    max_rt_ms: float = param(2000.0, low=0.0, low_inclusive=False, doc="response deadline (ms)")
    p_switch: float = param(0.5, low=0.0, high=1.0, doc="probability of a task switch")
    p_congruent: float = param(0.5, low=0.0, high=1.0, doc="probability of a congruent stimulus")
    cues_per_task: int = param(
        1, low=1, high=2, doc="cues per task (2: cue switches apart from task switches)"
    )
    release: str = param(
        "se", doc="release pattern: 'default', or the name of a family that provides one (e.g. 'se')"
    )
    match_gain: bool = param(True, doc="gain-matched release per family (else the SE pattern itself)")
    equivalence_margin_ms: float = param(
        20.0,
        low=0.0,
        low_inclusive=False,
        doc="margin of the equivalence tests of RT costs between models (ms)",
    )
    decimate_ms: float = param(20.0, low=0.0, low_inclusive=False, doc="sampling of the gain traces (ms)")
    gain: CueGainConfig = param(default_factory=CueGainConfig)

    family_defaults: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "rate": {"noise_na": 0.028, "drive_na": 0.27},
        "spiking": {"sens_in_hz": 1080.0, "dt_ms": 0.2, "gain_min": 0.25},
    }
    operations: ClassVar[tuple[str, ...]] = ("run_trials", "cue_gain_curves", "gain_profile")

    def __post_init__(self) -> None:
        super().__post_init__()
        if len(self.csi_ms) < 1:
            raise ConfigError("csi_ms=() must hold at least one cue-stimulus interval")
        unknown = sorted(set(self.max_trials) - set(family_names()))
        if unknown:
            raise ConfigError(f"max_trials names {unknown}, which are not model families: {family_names()}")
        if self.release != "default":
            known = family_names()
            if self.release not in known or not get_family(self.release).provides_release:
                providers = [n for n in known if get_family(n).provides_release]
                raise ConfigError(
                    f"release={self.release!r} must be 'default' or a family that provides a release "
                    f"pattern: {providers}"
                )
        for name in self.families:
            field = get_family(name).tau_field
            value = None if field is None else getattr(self.families[name], field)
            if value is not None and value != self.tau_ms and value != getattr(self._default(name), field):
                raise ConfigError(
                    f"{name}.{field}={value!r} differs from tau_ms={self.tau_ms!r}: the {name!r} family is "
                    "built "
                    f"at the run's modulator time constant; set tau_ms instead"
                )
        # a table that equals the defaults built at tau_ms runs what the defaults run (e.g. the se table that
        # to_dict writes at a tau_ms other than the default's): not stored, so to_dict / from_dict round-trip
        explicit = {
            name: cfg
            for name, cfg in self.families.items()
            if get_family(name).tau_field is None or cfg != self.family_at_tau(name, self._default(name))
        }
        object.__setattr__(self, "families", FrozenMap(explicit))
        try:
            task = self.task()
            for name in self.models:
                self.create(name).check_timing(task_timing(task))
        except (TypeError, ValueError) as err:
            raise ConfigError(str(err)) from None

    def family(self, name: str) -> Config:
        """The resolved settings of family `name`, built at this run's ``tau_ms`` where the family has a
        time constant of its own (``tau_field``)."""
        return self.family_at_tau(name, super().family(name))

    def family_at_tau(self, name: str, cfg: Config) -> Config:
        """`cfg` (settings of family `name`) with its ``tau_field`` set to this run's ``tau_ms``."""
        field = get_family(name).tau_field
        return cfg if field is None else cfg.replace(**{field: self.tau_ms})

    def trials_of(self, name: str) -> int:
        """Trials that family `name` runs (the first ones of the table)."""
        return min(self.n_trials, int(self.max_trials.get(name, self.n_trials)))

    def task(self, seed: int | None = None, n_trials: int | None = None) -> CuedTaskSwitching:
        """The session every family runs (its trial table is drawn from `seed`); `n_trials` of it (the first
        ones: the table is drawn trial by trial from one generator)."""
        return CuedTaskSwitching(
            coherences_pct=self.coherences_pct,
            csi_ms=self.csi_ms,
            rci_ms=self.rci_ms,
            p_switch=self.p_switch,
            p_congruent=self.p_congruent,
            max_rt_ms=self.max_rt_ms,
            cues_per_task=self.cues_per_task,
            n_trials=self.n_trials if n_trials is None else n_trials,
            seed=seed,
        )

    def needed(self) -> tuple[str, ...]:
        """The families to prepare: those run, and the one that provides the release pattern."""
        extra = () if self.release in ("default", *self.models) else (self.release,)
        return (*self.models, *extra)


def _drives(g: CueGainConfig) -> np.ndarray:
    return np.linspace(0.0, g.drive_max, g.n_drives)


def _cue_gain_curves(
    config: TaskSwitchingConfig,
    family: ModelFamily,
    name: str,
    release: np.ndarray,
    root: np.random.SeedSequence,
    progress: bool,
) -> xr.Dataset:
    """One family's cue gain curves, fitted, screened and classified."""
    g = config.gain
    ds = family.cue_gain_curves(
        release=release,
        drives=_drives(g),
        n_repeats=g.n_repeats,
        seed=family_stream(root, name, "cue_gain_curves"),
        progress=progress,
    )
    return g.classify(ds).assign_attrs(model=name)


def _releases(
    config: TaskSwitchingConfig,
    instances: Mapping[str, ModelFamily],
    base: xr.DataArray,
    gains: dict[str, xr.Dataset],
    root: np.random.SeedSequence,
    progress: bool,
) -> tuple[dict[str, xr.DataArray], dict[str, xr.Dataset]]:
    """The release pattern of every family run, and the gain-matching tables."""
    releases = {name: base for name in config.models}
    tables: dict[str, xr.Dataset] = {}
    if not config.match_gain or config.release == "default":
        return releases, tables
    source = config.release
    profile = np.asarray(instances[source].gain_profile(base.values, config.coherences_pct), dtype=float)
    pops = np.arange(len(RELEVANT_CONTEXT))
    target = profile[1 - RELEVANT_CONTEXT, pops] / profile[RELEVANT_CONTEXT, pops]
    for name in config.models:
        family = instances[name]
        if name == source or not type(family).uses_release:
            continue
        rel, table = match_release(
            family,
            target,
            drives=_drives(config.gain),
            n_levels=config.gain.match_levels,
            n_repeats=config.gain.n_repeats,
            seed=family_stream(root, name, "gain_match"),
            settings=config.gain,
        )
        releases[name] = rel.assign_attrs(
            _attrs("1", "modulator release level per context and population"),
            source=f"gain-matched to {source}",
            target_ratio=[float(v) for v in target],
        )
        tables[name] = table
    return releases, tables


def run_task_switching(
    config: TaskSwitchingConfig | None = None,
    *,
    families: Mapping[str, ModelFamily] | None = None,
    progress: bool = False,
) -> xr.DataTree:
    """Run the comparison: every configured family on one closed-loop cued task-switching session.

    Parameters
    ----------
    config : TaskSwitchingConfig, optional
        Defaults to ``TaskSwitchingConfig()`` (the ``neuromod run task-switching`` defaults).
    families : mapping of name -> ModelFamily, optional
        Family instances to use instead of building them from `config`, e.g. ``{"se":
        SEFamily.from_model(trained)}`` (:class:`neuromod.protocols.families.se.SEFamily`).
    progress : bool
        Show progress bars (training, each family's session, the gain curves).

    Returns
    -------
    xarray.DataTree
        * root: the trial table (``context``, ``feature_a``, ``csi_ms``, ``is_switch``, ...) and provenance
          (``config_json`` is the resolved :class:`TaskSwitchingConfig`, every family's table in full;
          ``calibration_json`` the calibration of the defaults);
        * one group per family: per-trial ``choice``, ``correct``, ``rt``, ``stim_onset_ms`` (on the
          family's own closed-loop time axis) over its trials (the first ``max_trials``), gain (and
          modulator) traces, ``release`` (families that take one), what the family's preparation
          returned (the SE training curve); a ``gain_curves`` child (the cue gain curves with the family's
          release: ``response`` over ``condition`` = population, ``level`` = cue relevant 0 / irrelevant
          1, ``drive``, ``repeat``, with fits and classification) and, where the release was gain-matched,
          a ``gain_match`` child (``neuromod.protocols.gain_match.match_release``);
        * ``summary``: side-by-side measures along ``model``
          (``neuromod.protocols.switching_summary.summary``).

        No wall-clock time is stored: the same config gives identical data and attributes (up to the
        ``created``/``history`` stamps; :func:`neuromod.results.without_timestamps`).

    Raises
    ------
    TypeError, ValueError
        Bad arguments, a saved SE model that cannot be loaded, or a passed family built (trained) at another
        time constant than ``tau_ms`` (``neuromod.protocols.sessions.check_family_tau``), before any
        session runs.
    neuromod.protocols.memory.MemoryLimitError
        The run's estimated memory (:func:`estimate_memory`) exceeds the limit
        (:func:`neuromod.protocols.memory.memory_limit`), before any work.

    Examples
    --------
    >>> tree = run_task_switching(quick(TaskSwitchingConfig(models=("se", "rate"))))  # seconds
    >>> tree["summary"]["model"].values.tolist(), sorted(tree["rate"].children)
    (['se', 'rate'], ['gain_curves', 'gain_match'])
    """
    config = TaskSwitchingConfig() if config is None else config
    if not isinstance(config, TaskSwitchingConfig):
        raise TypeError(f"config must be a TaskSwitchingConfig, got {type(config).__name__}")
    check_bool("progress", progress)
    check_memory(estimate_memory(config))
    for name, family in (families or {}).items():  # a model trained at another tau: refused before any work
        if name in config.models:
            check_family_tau(family, config.tau_ms)
    root = seed_sequence(config.seed)
    task_seed = int_seed(child(root, "task"))
    task = config.task(seed=task_seed)
    instances, prepared = prepare_families(
        config, config.needed(), root=root, families=families, progress=progress
    )
    base = resolve_release(
        None if config.release == "default" else config.release, instances, task.coherences_pct
    )
    gains: dict[str, xr.Dataset] = {}
    releases, match_tables = _releases(config, instances, base, gains, root, progress)
    run = {name: instances[name] for name in config.models}
    groups = {}
    for name in run:  # one family at a time: a family limited by max_trials runs the table's first trials
        n = config.trials_of(name)
        sub = task if n == config.n_trials else config.task(seed=task_seed, n_trials=n)
        groups.update(
            session_groups(
                sub,
                {name: run[name]},
                release=releases[name],
                tau_ms=config.tau_ms,
                decimate_ms=config.decimate_ms,
                root=root,
                progress=progress,
            )
        )
    full = task.trials()["trial"].values
    for name in config.models:
        n = config.trials_of(name)
        if n < config.n_trials:  # the table's first n trials: pad to the table, marked by `ran`
            ds = groups[name].reindex(trial=full, fill_value={"choice": 0, "correct": 0})
            ds["trial"].attrs.update(task.trials()["trial"].attrs)
            ds["ran"] = (
                "trial",
                full < n,
                _attrs("1", "the family ran this trial (the table's first trials)"),
            )
            groups[name] = ds
    for name in config.models:
        if name not in gains:
            gains[name] = _cue_gain_curves(config, run[name], name, releases[name].values, root, progress)
    profiles = {
        name: np.asarray(family.gain_profile(releases[name].values, task.coherences_pct), dtype=float)
        for name, family in run.items()
    }
    trials = xr.DataTree.from_dict({"/": task.trials(), **{f"/{m}": groups[m] for m in config.models}})
    title = "Model families side by side on cued task switching"
    provenance = {
        **results.provenance(config, title=title),
        "seed_entropy": str(root.entropy),
        "calibration_json": json.dumps(
            results._jsonable(
                {"criteria": dict(CRITERIA), "seed": CALIBRATION_SEED, "families": dict(CALIBRATION)}
            ),
            sort_keys=True,
        ),
    }
    nodes: dict[str, xr.Dataset] = {"/": session_root(task, base, provenance)}
    for name in config.models:
        extra = prepared[name]
        ds = xr.merge([groups[name], extra], combine_attrs="override") if extra.data_vars else groups[name]
        nodes[f"/{name}"] = ds.assign_attrs(groups[name].attrs, **group_attrs(name, instances[name]))
        nodes[f"/{name}/gain_curves"] = gains[name]
        if name in match_tables:
            nodes[f"/{name}/gain_match"] = match_tables[name]
    nodes["/summary"] = summary(
        trials,
        {m: gains[m] for m in config.models},
        profiles,
        {m: releases[m] for m in config.models},
        tau_ms=config.tau_ms,
        margin_ms=config.equivalence_margin_ms,
    )
    return xr.DataTree.from_dict(nodes)


def quick(config: TaskSwitchingConfig) -> TaskSwitchingConfig:
    """A reduced run for tests and notebooks (tens of seconds; the spiking network dominates)."""
    return config.with_quick_families().replace(
        n_trials=60,
        max_trials=FrozenMap({name: 24 for name in config.models if name in config.max_trials}),
        max_rt_ms=1000.0,
        gain=config.gain.replace(n_drives=9, n_repeats=32, match_levels=5),
    )


def _run(config: TaskSwitchingConfig, *, progress: bool = False) -> xr.DataTree:
    return run_task_switching(config, progress=progress)


registry.register(
    registry.Experiment(
        name="task-switching",
        config_cls=TaskSwitchingConfig,
        run=_run,
        summarize=summarize,
        plot=plot,
        quick=quick,
        description="the model families side by side on one closed-loop cued task-switching session",
        memory=estimate_memory,
    ),
    replace=True,
)
