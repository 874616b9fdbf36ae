"""The ``task-switching`` experiment: the model families side by side on the same cued task-switching trials.

:func:`run_task_switching` is the package's main comparison (``neuromod run task-switching``):

1. prepare every family (the SE task model is trained, or loaded from ``se.model_path``);
2. take the release pattern from the family named by ``release`` (default ``"se"``: the SE gate's
   per-context population gains divided by their largest value), or the default pattern;
3. run one trial table (:class:`~neuromod.tasks.CuedTaskSwitching`) on every family with the same modulator
   time constant ``tau_ms`` (:func:`~neuromod.protocols.sessions.session_groups`);
4. measure each family's cue gain curves: each sensory population's response against its relative drive
   with its feature cued (level 0) and with the other feature cued (level 1), fitted, screened and
   classified like the gain-curves experiment's (:func:`neuromod.measures.fit_and_classify`);
5. put behaviour (accuracy, RT, switch cost by CSI, congruency effect, preparation curve) and the gain
   measures side by side along a ``model`` dimension (:mod:`neuromod.protocols.switching_summary`).

The relative drive of the gain curves is shared by all families: 1 is the input of a population during
the task's stimulus at 0 % coherence (each family's ``reference``), from 0 to ``gain.drive_max`` (the
task's stimuli span 0.49-1.51). ``gain_ratio`` is gain(irrelevant) / gain(relevant).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import xarray as xr
from tqdm.auto import tqdm

from neuromod import registry, results
from neuromod._random import child, int_seed, seed_sequence
from neuromod.config import ConfigError, param
from neuromod.protocols.experiment import (
    ClassifySettings,
    ExperimentConfig,
    family_stream,
    group_attrs,
    prepare_families,
)
from neuromod.protocols.families._common import task_timing
from neuromod.protocols.family import ModelFamily, family_names, get_family
from neuromod.protocols.sessions import resolve_release, session_groups, session_root
from neuromod.protocols.switching_report import plot, summarize
from neuromod.protocols.switching_summary import summary
from neuromod.tasks.switching import CuedTaskSwitching

__all__ = ["CueGainConfig", "TaskSwitchingConfig", "quick", "run_task_switching"]


@dataclasses.dataclass(frozen=True)
class CueGainConfig(ClassifySettings):
    """Gain curves of the comparison: each population's response against relative drive, cued vs not."""

    drive_max: float = param(
        2.0, low=0.0, low_inclusive=False, doc="largest relative drive (1 = the task's stimulus at 0 %)"
    )
    n_drives: int = param(17, low=5, doc="number of drive values from 0")
    n_repeats: int = param(128, low=1, doc="noise realisations per drive and level (deterministic: 1)")


@dataclasses.dataclass(frozen=True)
class TaskSwitchingConfig(ExperimentConfig):
    """The ``task-switching`` experiment (``neuromod run task-switching``): the families compared.

    The task settings (``n_trials`` ... ``p_congruent``) define the one trial table that every family runs;
    ``tau_ms`` is the modulator time constant of every family (the SE gate kinetics are re-timed to it, the
    weights unchanged); ``release`` says where the release pattern of the families that take one comes
    from: a family that provides one (``"se"``: the trained SE gate profile) or ``"default"``
    (:data:`~neuromod.protocols.sessions.DEFAULT_RELEASE`).

    Spiking settings calibrated for this comparison (``family_defaults``): ``dt_ms = 0.2`` (the session is
    the run's main cost), and ``sens_in_hz = 1250`` Hz of sensory input at 0 % coherence instead of the
    2000 Hz at which the unmodulated circuit was calibrated (:class:`neuromod.spiking.DecisionParams`). With
    the input-gain factor ``1 + m``, a fully released feature (factor 2) and a weakly released one then give
    each decision pool about the input the unmodulated circuit was calibrated with (2 x 2000 Hz): with the
    default SE profile, pool 1 gets ``1250 (2.0 + 1.09) = 3860`` Hz under cue a and ``1250 (1.45 + 1.73) =
    3970`` Hz under cue b. 1000 Hz left 40 % of 128 trials without a response; 1500 Hz gave a mean RT of
    194 ms.
    """

    experiment: str = "task-switching"
    models: tuple[str, ...] = ("se", "rate", "spiking")
    tau_ms: float = param(400.0, low=0.0, doc="modulator / gate time constant of every model (ms)")
    n_trials: int = param(192, low=8, doc="trials in the shared session")
    csi_ms: tuple[float, ...] = param(
        (100.0, 300.0, 600.0, 1000.0), low=0.0, doc="cue-stimulus intervals (ms)"
    )
    coherences_pct: tuple[float, ...] = param(
        (3.2, 6.4, 12.8, 25.6, 51.2), low=0.0, low_inclusive=False, high=100.0, doc="coherences (%)"
    )
    rsi_ms: float = param(300.0, low=0.0, doc="response-stimulus interval (ms)")
    max_rt_ms: float = param(800.0, low=0.0, low_inclusive=False, doc="response window (ms)")
    p_switch: float = param(0.5, low=0.0, high=1.0, doc="probability of a task switch")
    p_congruent: float = param(0.5, low=0.0, high=1.0, doc="probability of a congruent stimulus")
    release: str = param(
        "se", doc="release pattern: 'default', or the name of a family that provides one (e.g. 'se')"
    )
    decimate_ms: float = param(20.0, low=0.0, low_inclusive=False, doc="sampling of the gain traces (ms)")
    gain: CueGainConfig = param(default_factory=CueGainConfig)

    family_defaults: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "spiking": {"sens_in_hz": 1250.0, "dt_ms": 0.2}
    }
    operations: ClassVar[tuple[str, ...]] = ("run_trials", "cue_gain_curves", "gain_profile")

    def __post_init__(self) -> None:
        super().__post_init__()
        if len(self.csi_ms) < 1:
            raise ConfigError("csi_ms=() must hold at least one cue-stimulus interval")
        if self.release != "default":
            known = family_names()
            if self.release not in known or not get_family(self.release).provides_release:
                providers = [n for n in known if get_family(n).provides_release]
                raise ConfigError(
                    f"release={self.release!r} must be 'default' or a family that provides a release "
                    f"pattern: {providers}"
                )
        try:
            task = self.task()
            for name in self.models:
                self.create(name).check_timing(task_timing(task))
        except (TypeError, ValueError) as err:
            raise ConfigError(str(err)) from None

    def task(self, seed: int | None = None) -> CuedTaskSwitching:
        """The session every family runs (its trial table is drawn from `seed`)."""
        return CuedTaskSwitching(
            coherences_pct=self.coherences_pct,
            csi_ms=self.csi_ms,
            rsi_ms=self.rsi_ms,
            p_switch=self.p_switch,
            p_congruent=self.p_congruent,
            max_rt_ms=self.max_rt_ms,
            n_trials=self.n_trials,
            seed=seed,
        )

    def needed(self) -> tuple[str, ...]:
        """The families to prepare: those run, and the one that provides the release pattern."""
        extra = () if self.release in ("default", *self.models) else (self.release,)
        return (*self.models, *extra)


def _cue_gain_curves(
    config: TaskSwitchingConfig,
    families: Mapping[str, ModelFamily],
    release: np.ndarray,
    root: np.random.SeedSequence,
    progress: bool,
) -> dict[str, xr.Dataset]:
    """Each family's cue gain curves, fitted, screened and classified."""
    g = config.gain
    drives = np.linspace(0.0, g.drive_max, g.n_drives)
    out = {}
    for name in tqdm(list(config.models), desc="gain curves", unit="model", disable=not progress):
        ds = families[name].cue_gain_curves(
            release=release,
            drives=drives,
            n_repeats=g.n_repeats,
            seed=family_stream(root, name, "cue_gain_curves"),
            progress=progress,
        )
        out[name] = g.classify(ds).assign_attrs(model=name)
    return out


def run_task_switching(
    config: TaskSwitchingConfig | None = None,
    *,
    families: Mapping[str, ModelFamily] | None = None,
    progress: bool = False,
) -> xr.DataTree:
    """Run the comparison: every configured family on one cued task-switching session.

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
          (``config_json`` is the resolved :class:`TaskSwitchingConfig`, every family's table in full);
        * one group per family: per-trial ``choice``, ``correct``, ``rt``, gain (and modulator) traces,
          ``release`` (families that take one), what the family's preparation returned (the SE training
          curve ``train_loss``, ``train_accuracy`` over ``train_step`` when trained here); each has a
          ``gain_curves`` child: ``response`` over (``condition`` = population, ``level`` = cue relevant 0 /
          irrelevant 1, ``drive``, ``repeat``), the fits (``fit_*``, ``fit_ok``) and the classification;
        * ``summary``: side-by-side measures along ``model``
          (:func:`neuromod.protocols.switching_summary.summary`).

        No wall-clock time is stored: the same config gives identical data and attributes (up to the
        ``created``/``history`` stamps; :func:`neuromod.results.without_timestamps`).

    Raises
    ------
    TypeError, ValueError
        Bad arguments, or a saved SE model that cannot be loaded, before any session runs.

    Examples
    --------
    >>> tree = run_task_switching(quick(TaskSwitchingConfig(models=("se", "rate"))))  # seconds
    >>> tree["summary"]["model"].values.tolist(), sorted(tree["rate"].children)
    (['se', 'rate'], ['gain_curves'])
    """
    config = TaskSwitchingConfig() if config is None else config
    if not isinstance(config, TaskSwitchingConfig):
        raise TypeError(f"config must be a TaskSwitchingConfig, got {type(config).__name__}")
    if not isinstance(progress, bool):
        raise TypeError(f"progress must be a bool, got {progress!r}")
    root = seed_sequence(config.seed)
    task = config.task(seed=int_seed(child(root, "task")))
    instances, prepared = prepare_families(
        config, config.needed(), root=root, families=families, progress=progress
    )
    release = resolve_release(
        None if config.release == "default" else config.release, instances, task.coherences_pct
    )
    run = {name: instances[name] for name in config.models}
    groups = session_groups(
        task,
        run,
        release=release,
        tau_ms=config.tau_ms,
        decimate_ms=config.decimate_ms,
        root=root,
        progress=progress,
    )
    gains = _cue_gain_curves(config, run, release.values, root, progress)
    profiles = {
        name: np.asarray(family.gain_profile(release.values, task.coherences_pct), dtype=float)
        for name, family in run.items()
    }
    trials = xr.DataTree.from_dict({"/": task.trials(), **{f"/{m}": ds for m, ds in groups.items()}})
    title = "Model families side by side on cued task switching"
    provenance = {**results.provenance(config, title=title), "seed_entropy": str(root.entropy)}
    nodes: dict[str, xr.Dataset] = {"/": session_root(task, release, provenance)}
    for name in config.models:
        extra = prepared[name]
        ds = xr.merge([groups[name], extra], combine_attrs="override") if extra.data_vars else groups[name]
        nodes[f"/{name}"] = ds.assign_attrs(groups[name].attrs, **group_attrs(name, instances[name]))
        nodes[f"/{name}/gain_curves"] = gains[name]
    nodes["/summary"] = summary(trials, gains, profiles, release)
    return xr.DataTree.from_dict(nodes)


def quick(config: TaskSwitchingConfig) -> TaskSwitchingConfig:
    """A reduced run for tests and notebooks (tens of seconds; the spiking network dominates)."""
    return config.with_quick_families().replace(
        n_trials=24,
        csi_ms=(100.0, 300.0, 600.0, 1000.0),
        coherences_pct=(25.6, 51.2),
        max_rt_ms=500.0,
        rsi_ms=200.0,
        gain=config.gain.replace(n_drives=9, n_repeats=32),
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
        description="the model families side by side on one cued task-switching session",
    ),
    replace=True,
)
