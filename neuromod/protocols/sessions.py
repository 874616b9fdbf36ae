"""One cued task-switching trial table run, trial for trial and in closed loop, on several model families.

Every family runs the same session (:meth:`neuromod.tasks.CuedTaskSwitching.trials`: contexts, cues,
stimuli, intervals) through :meth:`~neuromod.protocols.family.ModelFamily.run_trials`, with one modulator
time constant ``tau_ms`` and one release pattern: ``release[context][population]`` in [0, 1], the level of
neuromodulator release that the cue of each context sets on each sensory population (default
``DEFAULT_RELEASE``: high release on the cued feature's populations, low on the other's), or the pattern
that a family proposes (``release="se"``: the SE gate's per-context population gains, divided by their
largest value). During the response-cue interval no task is cued and the release is the mean of the two
contexts' rows (the no-cue level, also the modulator's initial level). Families that gate by themselves
(the SE model) ignore the pattern. A family whose model is built at a time constant of its own
(``tau_field``, e.g. the SE model, trained at its gate's ``tau_ms``) is built at the run's ``tau_ms``.

The sessions run in closed loop: each stimulus ends at the family's response (or the deadline), and the next
trial's response-cue interval starts there, so every family has its own time axis; its ``stim_onset_ms``
are :meth:`~neuromod.tasks.CuedTaskSwitching.timeline` of its own reaction times. The modulator state
carries over from trial to trial (continuous sessions): after a switch the gains need time ``~tau`` to
reconfigure, which is what produces switch costs that shrink with the cue-stimulus interval (Meiran 1996;
Monsell 2003).

References
----------
Meiran, N. (1996). Reconfiguration of processing mode prior to task performance. J. Exp. Psychol. Learn.
Mem. Cogn. 22:1423-1442.
Monsell, S. (2003). Task switching. Trends Cogn. Sci. 7:134-140.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr
from tqdm.auto import tqdm

from neuromod import results
from neuromod._checks import check_array, check_positive
from neuromod._random import SeedLike, seed_sequence
from neuromod.protocols.experiment import family_stream, group_attrs
from neuromod.protocols.families._common import context_population, task_timing
from neuromod.protocols.family import ModelFamily, create_family, get_family, supports
from neuromod.results import var_attrs as _attrs
from neuromod.tasks.switching import CONTEXTS, POPULATIONS, CuedTaskSwitching

__all__ = [
    "DEFAULT_RELEASE",
    "build_family",
    "check_family_tau",
    "resolve_release",
    "run_sessions",
    "session_groups",
    "task_json",
]

#: Default release pattern (dimensionless, in [0, 1]) over (context, population): the cue of task a releases
#: the modulator strongly onto a+ and a- and weakly onto b+ and b-, and the reverse for task b.
DEFAULT_RELEASE: tuple[tuple[float, ...], ...] = ((1.0, 1.0, 0.1, 0.1), (0.1, 0.1, 1.0, 1.0))
_PATTERN_MAPPING = "configured release pattern (release[context, population], dimensionless in [0, 1])"


def check_release(release: Any) -> np.ndarray:
    """A release pattern as a (context, population) array in [0, 1], or ValueError naming the shape."""
    arr = check_array("release", release, ndim=2, low=0.0, high=1.0)
    if arr.shape != (len(CONTEXTS), len(POPULATIONS)):
        raise ValueError(
            f"release has shape {arr.shape}, expected ({len(CONTEXTS)}, {len(POPULATIONS)}): one level in "
            f"[0, 1] per context {CONTEXTS} and population {POPULATIONS}"
        )
    return arr


def resolve_release(
    release: Any, families: Mapping[str, ModelFamily], coherences_pct: tuple[float, ...]
) -> xr.DataArray:
    """The release pattern over (``context``, ``population``), with its ``mapping`` and ``source``.

    `release` is None (``DEFAULT_RELEASE``), a (2, 4) array, or the name of a (prepared) family in
    `families` that provides one, evaluated on stimuli of `coherences_pct`.
    """
    if isinstance(release, str):
        family = families.get(release)
        if family is None or not supports(family, "release_pattern"):
            raise ValueError(f"release={release!r} names no prepared family that provides a release pattern")
        da = family.release_pattern(coherences_pct)
        mapping = da.attrs.get("mapping", f"the release pattern of the {release!r} family")
        source = release
    else:
        source = "default" if release is None else "configured"
        da = context_population(check_release(DEFAULT_RELEASE if release is None else release), "")
        mapping = _PATTERN_MAPPING
    return da.assign_attrs(
        _attrs("1", "modulator release level per context and population"), mapping=mapping, source=source
    )


def session_groups(
    task: CuedTaskSwitching,
    families: Mapping[str, ModelFamily],
    *,
    release: xr.DataArray,
    tau_ms: float,
    decimate_ms: float,
    root: np.random.SeedSequence,
    progress: bool = False,
) -> dict[str, xr.Dataset]:
    """Each (prepared) family's closed-loop session: per-trial ``choice``, ``correct`` (scored against the
    task's table), ``rt`` and ``stim_onset_ms`` (on the family's own time axis), gain traces; the release
    pattern in the groups of the families that use one."""
    table = task.trials()
    groups: dict[str, xr.Dataset] = {}
    bar = tqdm(list(families), desc="task switching", unit="model", disable=not progress)
    for name in bar:
        bar.set_postfix_str(name)
        family = families[name]
        ds = family.run_trials(
            task,
            release=release.values,
            tau_ms=tau_ms,
            decimate_ms=decimate_ms,
            seed=family_stream(root, name, "trials"),
            progress=progress,
        )
        correct = (ds["choice"].values == table["correct_choice"].values).astype(np.int8)
        ds["correct"] = ("trial", correct, _attrs("1", "choice was correct (1) or not (0)"))
        if type(family).uses_release:
            ds["release"] = release
        groups[name] = ds.assign_attrs(group_attrs(name, family))
    return groups


def task_json(task: CuedTaskSwitching) -> dict[str, Any]:
    """The task's settings as plain data (enough to rebuild it: ``CuedTaskSwitching(**task_json(task))``).

    No event times: in closed loop they depend on each model's responses (``stim_onset_ms`` of every
    family's group, :meth:`~neuromod.tasks.CuedTaskSwitching.timeline`)."""
    return {
        "coherences_pct": list(task.coherences_pct),
        "csi_ms": list(task.csi_ms),
        "rci_ms": task.timing["rci_ms"],
        "max_rt_ms": task.timing["max_rt_ms"],
        "cues_per_task": task.cues_per_task,
        "p_switch": task.p_switch,
        "p_congruent": task.p_congruent,
        "n_trials": task.n_trials,
        "seed": task.seed,
    }


def _tau_of(family: ModelFamily) -> float | None:
    """The time constant `family` is built at (its ``tau_field``), None for a family without one: that of
    the model it holds when it has one (e.g. a passed-in trained SE model), else its config's."""
    field = type(family).tau_field
    if field is None:
        return None
    model_config = getattr(getattr(family, "model", None), "config", None)
    value = getattr(model_config, field, None)
    if value is None:
        value = getattr(family.config, field)
    return float(value)


def check_family_tau(family: ModelFamily, tau_ms: float) -> None:
    """Refuse a family instance built (trained) at a time constant other than the run's `tau_ms`.

    Raises
    ------
    ValueError
        Naming the family, the time constant it was built at, and how to build it at `tau_ms`.
    """
    built = _tau_of(family)
    if built is None or abs(built - float(tau_ms)) <= 1e-9 * max(1.0, abs(float(tau_ms))):
        return
    name, field, tau = type(family).name, type(family).tau_field, float(tau_ms)
    raise ValueError(
        f"the {name!r} family was built at {field}={built!r}, but this run's tau_ms={tau!r}: it runs only at "
        "the time constant it was built (trained) at. Pass it by name (it is then built at tau_ms), or build "
        f"it at tau_ms (its config.replace({field}={tau!r}), or a model trained at it)"
    )


def build_family(name: str, tau_ms: float) -> ModelFamily:
    """Family `name` with its default settings, built at the run's `tau_ms` where it has a ``tau_field``.

    Raises
    ------
    KeyError
        Unknown family.
    ValueError
        A `tau_ms` the family cannot be built at (e.g. 0 for the SE model, whose gate needs tau_ms > 0).
    """
    cls = get_family(name)
    config = cls.config_cls()
    if cls.tau_field is not None:
        try:
            config = config.replace(**{cls.tau_field: float(tau_ms)})
        except ValueError as err:
            raise ValueError(
                f"tau_ms={float(tau_ms)!r}: the {name!r} family is built at the run's tau_ms ({err})"
            ) from None
    return create_family(name, config)


def session_root(task: CuedTaskSwitching, release: xr.DataArray, provenance: dict[str, str]) -> xr.Dataset:
    """The root of a session tree: the trial table, the task settings and the release's provenance."""
    table = task.trials()
    root = table.copy()
    # scalar task settings as attributes, the lists (coherences, CSI set) in task_json: a length-1 list
    # would come back from netCDF as a scalar
    root.attrs = {
        **{k: v for k, v in table.attrs.items() if k != "seed" and not isinstance(v, (list, tuple))},
        "task_seed": table.attrs["seed"],
        "task_json": json.dumps(results._jsonable(task_json(task)), sort_keys=True),
        **provenance,
        "release_mapping": release.attrs["mapping"],
        "release_mapping_json": json.dumps(
            {
                "source": release.attrs["source"],
                "release": release.values.tolist(),
                "doc": release.attrs["mapping"],
            },
            sort_keys=True,
        ),
    }
    return root


def run_sessions(
    task: CuedTaskSwitching | None = None,
    families: Sequence[str | ModelFamily] = ("se", "rate", "spiking"),
    *,
    tau_ms: float = 300.0,
    seed: SeedLike = None,
    release: Any = None,
    decimate_ms: float = 50.0,
    progress: bool = False,
) -> xr.DataTree:
    """Run one cued task-switching session on each family.

    Parameters
    ----------
    task : CuedTaskSwitching, optional
        The session (default ``CuedTaskSwitching(seed=seed)``); its trial table is shared by all families.
    families : sequence of family names or ModelFamily instances
        Each at most once. A name gets the family's default settings, built at `tau_ms` where the family
        has a time constant of its own (``tau_field``: the SE model is trained at it); an instance (e.g.
        ``SEFamily.from_model(trained)`` or a family built with your own config) is used as it is, and
        refused if it was built (trained) at another time constant. Every family is prepared
        (:meth:`~neuromod.protocols.family.ModelFamily.prepare`: the SE model is trained when it has none)
        before any session runs.
    tau_ms : float
        Modulator time constant of every family (ms); 0 is instantaneous (not for the SE model, whose gate
        needs tau_ms > 0).
    seed : int, SeedSequence or None
        Seed of every random stream of the run (one stream per family, derived from its name); same seed,
        task and families -> identical result. None: fresh entropy (recorded in ``seed_entropy``).
    release : array-like (2, 4), family name, ModelFamily, or None
        Release level per (context, population) in [0, 1]; None: ``DEFAULT_RELEASE``; a family name
        (``"se"``, built at `tau_ms`) or instance (``SEFamily.from_model(trained)``): the pattern that
        family proposes (it is prepared, and run only if it is in `families`). During the response-cue
        interval (no cue) every family that takes a release gets the mean of the two rows.
    decimate_ms : float
        Sampling interval of the gain traces (ms).
    progress : bool
        Show progress bars.

    Returns
    -------
    xarray.DataTree
        Root: the trial table (``task.trials()``: contexts, cues, stimuli, ``csi_ms``, ``rci_ms``; no event
        times) and provenance (``task_json``, ``config_json``). One group per family with ``choice`` (int8:
        1, 2; 0 = none), ``correct`` (int8 0/1), ``rt`` (ms from stimulus onset, NaN = none) and
        ``stim_onset_ms`` over ``trial``, ``gain`` over (``time``, ``population``) and what else the family
        records, and (for families that use it) ``release`` over (``context``, ``population``). ``time``
        (ms) is the family's own closed-loop session time: its ``stim_onset_ms`` equal
        ``task.timeline(rt)["stim_onset_ms"]``. No wall-clock time is stored: the same seed gives an
        identical tree.

    Raises
    ------
    TypeError, ValueError, KeyError
        Bad arguments, an unknown family, or a family instance built at another time constant than
        `tau_ms`, before any family is prepared or runs.

    Examples
    --------
    >>> from neuromod.tasks import CuedTaskSwitching
    >>> task = CuedTaskSwitching(n_trials=20, csi_ms=(100.0, 800.0), max_rt_ms=1000.0, seed=1)
    >>> tree = run_sessions(task, ["rate"], seed=0)
    >>> sorted(tree["rate"].data_vars)[:3]
    ['choice', 'correct', 'gain']
    >>> rt = tree["rate"]["rt"].values  # closed loop: the rate model's responses set its own timeline
    >>> bool(np.allclose(tree["rate"]["stim_onset_ms"], task.timeline(rt)["stim_onset_ms"]))
    True
    """
    seed_ss = seed_sequence(seed)
    task = CuedTaskSwitching(seed=seed if isinstance(seed, int) else None) if task is None else task
    if not isinstance(task, CuedTaskSwitching):
        raise TypeError(f"task must be a CuedTaskSwitching, got {type(task).__name__}")
    if isinstance(families, (str, ModelFamily)) or not isinstance(families, Sequence):
        raise TypeError(f"families must be a sequence of family names or instances, got {families!r}")
    tau_ms = check_positive("tau_ms", tau_ms, allow_zero=True)
    decimate_ms = check_positive("decimate_ms", decimate_ms)
    instances = {}
    for item in families:
        if isinstance(item, str):
            family = build_family(item, tau_ms)
        elif isinstance(item, ModelFamily):
            family = item
            check_family_tau(family, tau_ms)
        else:
            raise TypeError(f"families must hold family names or ModelFamily instances, got {item!r}")
        name = type(family).name
        if name in instances:
            raise ValueError(f"families names {name!r} twice; each family runs at most once")
        get_family(name)  # a registered family
        family.check_timing(task_timing(task))
        instances[name] = family
    if not instances:
        raise ValueError("families is empty; name one family at least")
    instances_all = dict(instances)
    if isinstance(release, ModelFamily) and not isinstance(release, str):
        source = type(release).name
        instances_all.setdefault(source, release)
        release = source
    elif isinstance(release, str) and release not in instances:
        instances_all[release] = build_family(release, tau_ms)
    for name, family in instances_all.items():
        family.prepare(seed=family_stream(seed_ss, name, "prepare"), progress=progress)
    rel = resolve_release(release, instances_all, task.coherences_pct)
    groups = session_groups(
        task, instances, release=rel, tau_ms=tau_ms, decimate_ms=decimate_ms, root=seed_ss, progress=progress
    )
    config = {
        "protocol": "sessions",
        "task": task_json(task),
        "models": list(instances),
        "tau_ms": tau_ms,
        "seed": seed if isinstance(seed, int) else None,
        "seed_entropy": str(seed_ss.entropy),
        "release": rel.values.tolist(),
        "release_source": rel.attrs["source"],
        "decimate_ms": decimate_ms,
        **{name: family.config for name, family in instances.items()},
    }
    title = "Cued task switching: one trial table on every model"
    root = session_root(task, rel, results.provenance(config, title=title))
    return xr.DataTree.from_dict({"/": root, **{f"/{m}": ds for m, ds in groups.items()}})
