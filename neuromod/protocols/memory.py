"""Memory of an experiment's run, estimated from its config before any work (issue 16, item 10).

``neuromod run task-switching --n-trials 10000000`` would grow to hundreds of GiB before anyone knew; every
built-in run function now starts with :func:`check_memory` of its estimate and refuses, in one line, a run
that cannot fit (:class:`MemoryLimitError`, a :class:`MemoryError`), naming the estimate, the limit and the
settings that make the run smaller.

An estimate (:class:`MemoryEstimate`) adds up what a run holds at its peak, in bytes:

* the interpreter and the libraries loaded (numpy, xarray, ... :data:`BASELINE_BYTES`; torch, numba,
  brian2 when a family loads them: its ``prepare`` footprint);
* what the run keeps: the trial table (:func:`table_bytes`), each family's results (per-trial variables,
  the gain traces recorded every ``decimate_ms`` over the family's own session time, gain curves);
* the largest working memory of one step: an SE model's training, a family's session (its recording
  buffers and copies, worker processes included), the summary's regressions.

Each family says what its operations take, from its config and the request's sizes alone
(:meth:`neuromod.protocols.family.FamilyBase.memory_footprint`, a :class:`Footprint`: what the result keeps
and what the operation holds besides at its peak); :func:`family_footprint` asks it. A session's length is
not known before it runs (closed loop: each trial ends at the model's response): :func:`trial_ms` takes a
trial as its intervals plus a typical reaction time, :func:`typical_rt_ms`.

The estimates aim at the peak resident memory within a factor 2 for large runs; the constants below were
measured on Linux (x86-64, CPython 3.11, glibc) with ``/proc/self/status`` ``VmHWM`` and, for worker
processes, their summed PSS (tests/protocols/test_memory.py holds the check).

Examples
--------
>>> from neuromod import registry
>>> cfg = registry.get("task-switching").config_cls(models=("rate",), release="default")
>>> est = estimate(cfg)
>>> est.total == sum(est.breakdown.values()), est.total < estimate(cfg.replace(n_trials=60000)).total
(True, True)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from neuromod._memory import (
    ENV_VAR,
    SAFETY_FRACTION,
    Footprint,
    MemoryEstimate,
    MemoryLimitError,
    available_memory,
    check_memory,
    format_size,
    memory_limit,
    parse_size,
)
from neuromod.config import Config
from neuromod.protocols.family import FamilyBase, get_family

if TYPE_CHECKING:
    from neuromod.tasks import CuedTaskSwitching

__all__ = [
    "BASELINE_BYTES",
    "DECISION_ADVICE",
    "ENV_VAR",
    "GAIN_CURVES_ADVICE",
    "SAFETY_FRACTION",
    "TASK_SWITCHING_ADVICE",
    "Footprint",
    "MemoryEstimate",
    "MemoryLimitError",
    "available_memory",
    "check_memory",
    "estimate",
    "estimate_decision",
    "estimate_gain_curves",
    "estimate_task_switching",
    "family_footprint",
    "format_size",
    "memory_limit",
    "parse_size",
    "run_estimate",
    "spiking_footprint",
    "table_bytes",
    "trial_ms",
    "typical_rt_ms",
    "window_ms",
]

MiB = 2**20
#: The interpreter with numpy, xarray, pandas, scipy, statsmodels, matplotlib, numba and neuromod's protocols
#: and family adapters, which building an experiment's config imports (measured: 246 MB resident when a
#: run starts).
BASELINE_BYTES = 235 * MiB
#: Per trial of a task-switching table: the task's rows as Python dicts (kept for the task's life, about
#: 730 B), the table (47 B: 11 variables) and the copies that the run holds at once (root, trial tree, the
#: families' inputs: 4 more).
TABLE_BYTES_PER_TRIAL = 775 + 4 * 47
#: Per trial and family run, the summary's trial-level regressions (statsmodels design matrices, HC3
#: errors): measured about 1 kB.
SUMMARY_BYTES_PER_TRIAL = 1024


def typical_rt_ms(max_rt_ms: float) -> float:
    """A typical reaction time (ms) for the memory of closed-loop sessions: half the deadline, at least
    800 ms, at most the deadline. The calibrated regime's mean correct RT is 450-750 ms; errors and misses
    last longer, up to the deadline."""
    return min(float(max_rt_ms), max(800.0, float(max_rt_ms) / 2))


def trial_ms(task: CuedTaskSwitching) -> float:
    """A typical trial of `task` on a closed-loop time axis (ms): RCI + mean CSI + :func:`typical_rt_ms`
    (the CSI is drawn uniformly from the task's set)."""
    rci, max_rt = task.timing["rci_ms"], task.timing["max_rt_ms"]
    return rci + sum(task.csi_ms) / len(task.csi_ms) + typical_rt_ms(max_rt)


def window_ms(task: CuedTaskSwitching) -> float:
    """A trial's whole window (ms): RCI + mean CSI + the deadline (what a runner that allots every trial its
    deadline holds)."""
    rci, max_rt = task.timing["rci_ms"], task.timing["max_rt_ms"]
    return rci + sum(task.csi_ms) / len(task.csi_ms) + max_rt


def table_bytes(n_trials: int) -> int:
    """Memory of a task-switching trial table of `n_trials` trials (``TABLE_BYTES_PER_TRIAL``)."""
    return int(n_trials) * TABLE_BYTES_PER_TRIAL


# ---------------------------------------------------------------------------------------- the spiking family
#: A worker process of the spiking family's sessions: interpreter, brian2, its compiled code (measured:
#: 258 MB PSS each).
SPIKING_WORKER_BYTES = 260 * MiB
#: brian2 and its compiled modules in the main process (f-I sweeps, the plain decision task).
SPIKING_LIBRARY_BYTES = 120 * MiB
#: One session (sub-network) of the decision network: about 490 cells with their state, the pool nodes and
#: synapses (measured: 82 kB per session, the plain decision task at 60 and 240 sessions).
SPIKING_SESSION_BYTES = 82 * 1024
#: One cell of an f-I sweep (its state variables, about 30 doubles).
SPIKING_FI_CELL_BYTES = 256


def _spiking_sessions(config: Any, task: CuedTaskSwitching) -> tuple[int, int, int]:
    """(sessions, sessions per network, worker processes) of a spiking run of `task`, as
    :mod:`neuromod.protocols.families._spiking_blocks` plans them."""
    from neuromod._parallel import available_cores

    n = task.n_trials
    per = config.session_trials
    n_sessions = 1 if n <= per + 1 else -(-(n - 1) // per)
    workers = config.workers or available_cores()
    n_groups = -(-n_sessions // config.batch_sessions)
    n_groups = min(n_sessions, -(-n_groups // workers) * workers)
    return n_sessions, -(-n_sessions // n_groups), min(workers, n_groups)


def spiking_footprint(config: Any, operation: str, **sizes: Any) -> Footprint:
    """The spiking family's memory (:meth:`~neuromod.protocols.family.FamilyBase.memory_footprint`).

    Sessions run in worker processes (``workers`` at once, each a network of up to ``batch_sessions``
    sessions of ``session_trials`` + 1 trials; the main process alone when one worker suffices); each
    records 16 traces every ``decimate_ms`` rounded to whole ms (modulator, input and sensory rates of the 4
    pools, the 2 decision pools) into brian2's monitors, which return them to the main process (14 of them
    per session) to be stitched into ``modulator`` and ``gain``. F-I sweeps and the plain decision task run
    in the main process: one cell per (level, drive, repeat), one session (``SPIKING_SESSION_BYTES``)
    per trial.
    """
    if operation == "prepare":
        return Footprint(kept=SPIKING_LIBRARY_BYTES)
    if operation == "run_trials":
        task = sizes["task"]
        every = float(max(1, round(sizes["decimate_ms"])))
        n_sessions, per_network, workers = _spiking_sessions(config, task)
        run_trials = n_sessions * (config.session_trials + 1)
        samples = run_trials * trial_ms(task) / every
        kept = task.n_trials * 64 + samples / (1 + 1 / config.session_trials) * 9 * 8
        returned = samples * 14 * 8 * 3  # the workers' datasets, the stitched pieces and their concatenation
        network = per_network * (SPIKING_SESSION_BYTES + samples / n_sessions * 16 * 8 * 3)
        processes = workers * SPIKING_WORKER_BYTES if workers > 1 else 0
        return Footprint(kept=kept, working=returned + workers * network + processes)
    if operation in ("fi_curves", "cue_gain_curves"):
        levels = sizes.get("n_levels", 8)  # cue gain curves: the distinct cue levels, at most 8
        cells = levels * sizes["n_drives"] * sizes["n_repeats"]
        return Footprint(kept=cells * 8 * 4, working=cells * SPIKING_FI_CELL_BYTES)
    if operation == "decision":
        trials = sizes["n_coherences"] * sizes["n_trials"]
        return Footprint(kept=trials * 32, working=trials * SPIKING_SESSION_BYTES)
    return Footprint()  # gain_profile, release_pattern: a few numbers


# ---------------------------------------------------------------------------------------- families, runs
def family_footprint(name: str, config: Config, operation: str, **sizes: Any) -> Footprint:
    """What operation `operation` of family `name` with settings `config` takes (:class:`Footprint`).

    The family's own ``memory_footprint`` when it has one, else the generic estimate of
    :class:`~neuromod.protocols.family.FamilyBase` from the layout every family returns.
    """
    cls = get_family(name)
    own = getattr(cls, "memory_footprint", None)
    if own is None:  # an adapter that does not derive from FamilyBase and gives none
        return FamilyBase.memory_footprint.__func__(cls, config, operation, **sizes)
    return own(config, operation, **sizes)


def run_estimate(
    *,
    libraries: Mapping[str, float],
    kept: Mapping[str, float],
    working: Mapping[str, float],
    advice: str,
) -> MemoryEstimate:
    """An estimate from what a run loads, keeps and works with: the interpreter (:data:`BASELINE_BYTES`),
    every library and kept part, and the largest working memory (named after its step)."""
    parts: list[tuple[str, float]] = [("interpreter and libraries", BASELINE_BYTES + sum(libraries.values()))]
    parts += [(k, v) for k, v in kept.items() if v > 0]
    if working:
        step, size = max(working.items(), key=lambda kv: kv[1])
        parts.append((f"working memory of {step}", size))
    return MemoryEstimate(tuple(parts), advice=advice)


def estimate(experiment: str | Config, config: Config | None = None) -> MemoryEstimate | None:
    """The estimated peak memory of a run, from its config alone (no work is done).

    Parameters
    ----------
    experiment : str or Config
        An experiment's name, or a config (its ``experiment`` field names the experiment).
    config : Config, optional
        The config, when `experiment` is a name (default: the experiment's defaults).

    Returns
    -------
    MemoryEstimate or None
        ``total`` (bytes) and its parts (``breakdown``); None for an experiment without an estimate.

    Raises
    ------
    KeyError, TypeError
        An unknown experiment, or a config of another experiment.
    """
    from neuromod import registry

    if isinstance(experiment, Config):
        config, experiment = experiment, getattr(experiment, "experiment", "")
    exp = registry.get(experiment)
    return exp.estimate_memory(exp.config_cls() if config is None else config)


# -------------------------------------------------------------------------------------- the experiments
#: What makes a task-switching run smaller (the refusal of :func:`check_memory` says it).
TASK_SWITCHING_ADVICE = (
    "run fewer trials (--n-trials N, or --set max_trials.FAMILY=N for one family), sample the gain traces "
    "less often (--set decimate_ms=MS), or split the trials over seeds with `neuromod sweep`"
)
#: What makes a gain-curves run smaller.
GAIN_CURVES_ADVICE = (
    "sweep fewer repeats, drives or levels (--set n_repeats=N, --set n_drives=N, --set levels=[...]) or "
    "fewer variants (--set variants.FAMILY=[...])"
)
#: What makes a decision run smaller.
DECISION_ADVICE = (
    "run fewer trials per coherence (--set n_trials.FAMILY=N) or fewer coherences "
    "(--set coherences_pct=[...]), or split the trials over seeds with `neuromod sweep`"
)


def _prepared(config: Any, names: Any) -> tuple[dict[str, float], dict[str, float]]:
    """(libraries, working memory) of preparing the families `names` of an experiment's `config`."""
    libraries: dict[str, float] = {}
    working: dict[str, float] = {}
    for name in names:
        prepared = family_footprint(name, config.family(name), "prepare")
        libraries[name] = prepared.kept
        working[f"preparing {name}"] = prepared.working
    return libraries, working


def estimate_task_switching(config: Any) -> MemoryEstimate:
    """The peak memory of :func:`~neuromod.protocols.run_task_switching` with `config`, from the config alone.

    Adds up (:func:`~neuromod.protocols.memory.run_estimate`) the libraries every family loads, the trial
    tables, every family's results (session: per-trial variables and gain traces every ``decimate_ms``;
    cue gain curves; gain matching) and the largest working memory of one step (a family's preparation,
    session or gain curves, or the summary's regressions over every family's trials).

    Examples
    --------
    >>> from neuromod.protocols.task_switching import TaskSwitchingConfig
    >>> est = estimate_task_switching(TaskSwitchingConfig(models=("rate",), release="default"))
    >>> sorted(est.breakdown)[:2], est.total > 100 * 2**20
    (['interpreter and libraries', 'rate results'], True)
    """
    g = config.gain
    matched = config.match_gain and config.release != "default"
    libraries, working = _prepared(config, config.needed())
    kept: dict[str, float] = {"trial table": table_bytes(config.n_trials)}
    run_trials = 0
    for name in config.models:
        cfg, n = config.family(name), config.trials_of(name)
        run_trials += n
        if n < config.n_trials:  # its own (shorter) table, and its results padded to the full one
            kept["trial table"] += table_bytes(n) + config.n_trials * 48
        steps = {
            "session": family_footprint(
                name, cfg, "run_trials", task=config.task(n_trials=n), decimate_ms=config.decimate_ms
            ),
            "cue gain curves": family_footprint(
                name, cfg, "cue_gain_curves", n_drives=g.n_drives, n_repeats=g.n_repeats
            ),
        }
        if matched and name != config.release and get_family(name).uses_release:
            steps["gain matching"] = family_footprint(
                name, cfg, "fi_curves", n_drives=g.n_drives, n_levels=g.match_levels, n_repeats=g.n_repeats
            )
        kept[f"{name} results"] = sum(fp.kept for fp in steps.values())
        working.update({f"the {name} {step}": fp.working for step, fp in steps.items()})
    working["the summary"] = SUMMARY_BYTES_PER_TRIAL * run_trials
    return run_estimate(libraries=libraries, kept=kept, working=working, advice=TASK_SWITCHING_ADVICE)


def estimate_gain_curves(config: Any) -> MemoryEstimate:
    """The peak memory of :func:`~neuromod.protocols.run_gain_curves` with `config`, from the config alone:
    the libraries of every family, every family's curves (each variant's sweep and reference curve, held
    three times: the sweeps, their concatenation and the classified result) and the largest working memory
    of one sweep (:func:`~neuromod.protocols.memory.run_estimate`).

    Examples
    --------
    >>> from neuromod.protocols.gain_curves import GainCurvesConfig
    >>> est = estimate_gain_curves(GainCurvesConfig(models=("rate",)))
    >>> est.total == sum(est.breakdown.values())
    True
    """
    libraries, working = _prepared(config, config.models)
    kept: dict[str, float] = {}
    for name in config.models:
        cfg = config.family(name)
        sizes = {"n_drives": config.n_drives, "n_repeats": config.n_repeats}
        sweep = family_footprint(name, cfg, "fi_curves", n_levels=len(config.levels), **sizes)
        reference = family_footprint(name, cfg, "fi_curves", n_levels=1, **sizes)
        kept[f"{name} curves"] = 3 * len(config.variants_of(name)) * (sweep.kept + reference.kept)
        working[f"the {name} sweeps"] = max(sweep.working, reference.working)
    return run_estimate(libraries=libraries, kept=kept, working=working, advice=GAIN_CURVES_ADVICE)


def estimate_decision(config: Any) -> MemoryEstimate:
    """The peak memory of :func:`~neuromod.protocols.run_decision` with `config`, from the config alone: the
    libraries of every family, each family's ``choice`` and ``rt`` per (coherence, trial) and the largest
    working memory of one family's trials (:func:`~neuromod.protocols.memory.run_estimate`).

    Examples
    --------
    >>> from neuromod.config import FrozenMap
    >>> from neuromod.protocols.decision import DecisionConfig
    >>> est = estimate_decision(DecisionConfig(models=("rate",), n_trials=FrozenMap({"rate": 10**6})))
    >>> est.largest()[0]
    'working memory of the rate trials'
    """
    libraries, working = _prepared(config, config.models)
    kept: dict[str, float] = {}
    for name in config.models:
        trials = family_footprint(
            name,
            config.family(name),
            "decision",
            n_coherences=len(config.coherences_pct),
            n_trials=config.trials_of(name),
            max_rt_ms=config.max_rt_ms,
        )
        kept[f"{name} results"] = trials.kept
        working[f"the {name} trials"] = trials.working
    return run_estimate(libraries=libraries, kept=kept, working=working, advice=DECISION_ADVICE)
