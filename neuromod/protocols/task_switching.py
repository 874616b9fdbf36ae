"""The ``task-switching`` protocol: one cued task-switching session run on the SE, rate and spiking models.

One trial table (:meth:`neuromod.tasks.CuedTaskSwitching.trials`) is run, trial for trial, on every model:

* ``se``: the SE task model (:class:`neuromod.gating.SETaskModel`: sensory channels -> causal ContextSE with
  gate kinetics -> leaky competing accumulators), via :func:`neuromod.protocols.se_task.run_se_session`;
  trained with :func:`~neuromod.protocols.se_task.train_se_task_model` when none is passed;
* ``rate``: sensory populations ``a+, a-, b+, b-`` (:class:`neuromod.rate.SensoryStage`, threshold-linear
  with input gain ``g = m``: ``r = slope * max(m * drive - theta, 0)``) feeding the Wong & Wang (2006)
  circuit (``a+`` and ``b+`` -> pool 1, ``a-`` and ``b-`` -> pool 2); the decision state is reset at every
  stimulus onset; each population's modulator follows ``dm/dt = (u(t) - m) / tau`` with the release ``u``
  set by the cue (:func:`neuromod.rate.simulate_circuit`);
* ``spiking``: the Wang (2002) network with modulated LIF sensory pools
  (:func:`neuromod.spiking.simulate_session`, mechanism ``input_gain`` by default), the modulator target of
  each pool set by the cue.

The cue sets the release pattern: ``release[context][population]`` in [0, 1] (default
:data:`DEFAULT_RELEASE`: high release on the cued feature's populations, low on the other's), or, with
``release="se"``, the trained SE model's per-context population gains (:func:`population_gains`) mapped
onto release levels by :func:`se_release` (the mapping is stored with the result as ``release_mapping``).
The modulator state carries over from trial to trial (continuous sessions): after a switch the gains need
time ``~tau`` to reconfigure, which is what produces switch costs that shrink with the cue-stimulus
interval (Meiran 1996; Monsell 2003).

Every model family plugs in through :class:`TaskModel`: ``run(task, plan, seed) -> Dataset`` with per-trial
``choice``, ``correct``, ``rt`` and decimated traces over (``time``, ``population``).

References
----------
Wong, K.-F. & Wang, X.-J. (2006). A recurrent network mechanism of time integration in perceptual
decisions. J. Neurosci. 26:1314-1328.
Wang, X.-J. (2002). Probabilistic decision making by slow reverberation in cortical circuits. Neuron
36:955-968.
Meiran, N. (1996). Reconfiguration of processing mode prior to task performance. J. Exp. Psychol. Learn.
Mem. Cogn. 22:1423-1442.
Monsell, S. (2003). Task switching. Trends Cogn. Sci. 7:134-140.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np
import xarray as xr
from tqdm.auto import tqdm

from neuromod import results
from neuromod._checks import check_array, check_choice, check_int, check_positive, suggest
from neuromod.config import Config, param
from neuromod.results import var_attrs as _attrs
from neuromod.tasks.switching import CONTEXTS, POPULATIONS, CuedTaskSwitching

if TYPE_CHECKING:
    from neuromod.gating.task_model import SETaskModel
    from neuromod.rate import Modulation, ThresholdLinear

__all__ = [
    "DEFAULT_RELEASE",
    "MODELS",
    "RateSwitchConfig",
    "SESwitchConfig",
    "SpikingSwitchConfig",
    "SwitchPlan",
    "TaskModel",
    "se_release",
    "task_switching",
]

#: Model families, in the order their random streams are spawned from the seed (fixed: adding or dropping a
#: model from ``models`` changes no other model's result).
MODELS: tuple[str, ...] = ("se", "rate", "spiking")

#: Default release pattern (dimensionless, in [0, 1]) over (context, population): the cue of task a releases
#: the modulator strongly onto a+ and a- and weakly onto b+ and b-, and the reverse for task b.
DEFAULT_RELEASE: tuple[tuple[float, ...], ...] = ((1.0, 1.0, 0.1, 0.1), (0.1, 0.1, 1.0, 1.0))

#: How SE population gains become release levels (stored as ``release_mapping`` with the result).
SE_RELEASE_MAPPING = (
    "release[context, population] = se_gain[context, population] / max over (context, population) of "
    "se_gain, where se_gain is neuromod.protocols.se_task.population_gains (the mean steady-state SE gate "
    "of the population's channels): the population with the largest SE gain gets full release (1) and the "
    "ratios between populations and contexts are kept; the rate model's gain is then g = release at steady "
    "state (response gain g(m) = m), the spiking model's input-gain factor 1 + (gain_max - 1) release"
)
_PATTERN_MAPPING = "configured release pattern (release[context, population], dimensionless in [0, 1])"

ModelName = Literal["se", "rate", "spiking"]
RateMode = Literal["response_gain", "input_gain", "threshold"]
SpikingMechanism = Literal["input_gain", "leak", "threshold", "background", "adaptation"]


# ------------------------------------------------------------------------------------------------------
# configuration
# ------------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class RateSwitchConfig(Config):
    """Rate model: gated sensory populations feeding the Wong & Wang (2006) circuit (published parameters).

    Population ``x±`` gets the drive ``I = drive_na * (1 ± c_x / 100)`` during the stimulus (0 otherwise) and
    fires ``r = slope * max(g(m) I - theta, 0)`` (threshold-linear with input gain, ``g(m) = gain_at_zero +
    gain_per_level * m``). Defaults (calibrated for this protocol): ``g = m``, ``I = 0.45 (1 ± c/100)`` nA,
    ``theta = 0.15`` nA, slope 100 Hz/nA, so a fully released population (m = 1) fires ``30 ± 45 c/100`` Hz
    (the Wong & Wang stimulus ``mu0 = 30`` Hz, with the coherence amplified 1.5x by the threshold) and a
    population at the low release 0.1 of :data:`DEFAULT_RELEASE` is silent (``0.045 < theta``): on a prepared
    trial the circuit sees the relevant feature only. While the modulators travel between the two patterns
    (after a switch cue, for ``~tau``) the threshold makes the two features' summed drive smaller than at
    either end, and the old task's feature is still amplified: RTs are longer and incongruent stimuli
    error-prone.
    """

    tau_ms: float = param(300.0, low=0.0, doc="modulator time constant (ms); 0 = instantaneous")
    drive_na: float = param(0.45, low=0.0, low_inclusive=False, doc="sensory drive at 0 % coherence (nA)")
    slope_hz_per_na: float = param(100.0, low=0.0, low_inclusive=False, doc="sensory f-I slope (Hz/nA)")
    threshold_na: float = param(0.15, doc="sensory rheobase (nA)")
    mode: RateMode = "input_gain"
    gain_at_zero: float = param(0.0, doc="gain at modulator level 0 (1)")
    gain_per_level: float = param(1.0, doc="gain added per unit modulator level (1)")
    shift_na_per_level: float = param(-0.05, doc="threshold shift per unit level, threshold mode (nA)")
    dt_ms: float = param(
        0.5, low=0.0, low_inclusive=False, high=1.0, doc="integration step (ms), at most tau_AMPA / 2"
    )
    noise: bool = True

    def transfer(self) -> ThresholdLinear:
        """The sensory populations' transfer function (threshold-linear)."""
        from neuromod.rate import ThresholdLinear

        return ThresholdLinear(slope_hz_per_na=self.slope_hz_per_na, threshold_na=self.threshold_na)

    def modulation(self) -> Modulation:
        """How the modulator level acts on the sensory populations."""
        from neuromod.rate import Modulation

        return Modulation(
            mode=self.mode,
            gain_at_zero=self.gain_at_zero,
            gain_per_level=self.gain_per_level,
            shift_na_per_level=self.shift_na_per_level,
        )


@dataclasses.dataclass(frozen=True)
class SpikingSwitchConfig(Config):
    """Spiking model: reduced Wang (2002) network with modulated LIF sensory pools (its own defaults)."""

    tau_ms: float = param(300.0, low=0.0, doc="modulator time constant (ms); below dt_ms: one step")
    mechanism: SpikingMechanism = "input_gain"
    gain_max: float = param(2.0, low=0.0, low_inclusive=False, doc="input-gain factor at level 1 (1)")
    sens_in_hz: float = param(
        2000.0, low=0.0, low_inclusive=False, doc="sensory Poisson input at 0 % coherence (Hz), unmodulated"
    )
    dt_ms: float = param(0.1, low=0.0, low_inclusive=False, high=0.5, doc="integration step (ms)")
    target: Literal["cython", "numpy"] = "cython"


@dataclasses.dataclass(frozen=True)
class SESwitchConfig(Config):
    """SE task model: training when no model is passed (``quick``: a few seconds, for tests and demos)."""

    quick: bool = False
    train_steps: int | None = param(None, low=1, doc="Adam steps (default: train_se_task_model's)")
    noise: bool = True


@dataclasses.dataclass(frozen=True)
class SwitchPlan:
    """What every model adapter receives: the resolved settings of one run.

    Attributes
    ----------
    release : ndarray, shape (2, 4)
        Release level per (context, population) in [0, 1].
    release_mapping : str
        How `release` was obtained.
    tau_ms : float or None
        Modulator time-constant override (ms) for every model; None keeps each model's own.
    decimate_ms : float
        Sampling interval of the returned traces (ms).
    rate, spiking, se : configs
        Settings per model family.
    se_model : SETaskModel or None
        The (trained) SE task model, when the SE model runs or provides the release pattern.
    progress : bool
        Show the adapters' own progress bars (the spiking session's simulated time).
    """

    release: np.ndarray
    release_mapping: str
    tau_ms: float | None
    decimate_ms: float
    rate: RateSwitchConfig
    spiking: SpikingSwitchConfig
    se: SESwitchConfig
    se_model: SETaskModel | None = None
    progress: bool = False


# ------------------------------------------------------------------------------------------------------
# model families
# ------------------------------------------------------------------------------------------------------
class TaskModel(Protocol):
    """How a model family plugs into the task-switching protocol."""

    name: str

    def run(self, task: CuedTaskSwitching, plan: SwitchPlan, seed: np.random.SeedSequence) -> xr.Dataset:
        """Per-trial ``choice`` (1, 2, 0 = none), ``correct``, ``rt`` (ms from stimulus onset, NaN = none)
        over ``trial``, and traces over (``time``, ``population``), every variable with units."""
        ...


def _int_seed(seed: np.random.SeedSequence) -> int:
    return int(seed.generate_state(1)[0] & 0x7FFFFFFF)


def _behaviour(table: xr.Dataset, choice: np.ndarray, rt: np.ndarray) -> dict[str, Any]:
    choice = np.asarray(choice).astype(np.int8)
    correct = choice == table["correct_choice"].values
    return {
        "choice": (
            "trial",
            choice,
            _attrs("1", "choice (1: positive, 2: negative, 0: none)", flag_values=[0, 1, 2]),
        ),
        "correct": ("trial", correct.astype(np.int8), _attrs("1", "choice was correct (1) or not (0)")),
        "rt": ("trial", np.asarray(rt, dtype=float), _attrs("ms", "reaction time from stimulus onset")),
    }


def _coords(table: xr.Dataset, times: np.ndarray) -> dict[str, Any]:
    return {
        "trial": ("trial", table["trial"].values, _attrs("1", "trial index")),
        "time": ("time", np.asarray(times, dtype=float), _attrs("ms", "time in the session")),
        "population": ("population", list(POPULATIONS), _attrs("1", "sensory population")),
    }


class _RateModel:
    """Adapter: the session as piecewise-constant inputs of :func:`neuromod.rate.simulate_circuit`."""

    name = "rate"

    def run(self, task: CuedTaskSwitching, plan: SwitchPlan, seed: np.random.SeedSequence) -> xr.Dataset:
        from neuromod.rate import SensoryStage, simulate_circuit

        c = plan.rate
        tau = c.tau_ms if plan.tau_ms is None else plan.tau_ms
        dt = c.dt_ms
        table = task.trials()
        n = table.sizes["trial"]
        context = table["context"].values.astype(int)
        fa, fb = table["feature_a"].values / 100.0, table["feature_b"].values / 100.0
        stim = np.stack([1 + fa, 1 - fa, 1 + fb, 1 - fb], axis=1) * c.drive_na  # (trial, population), nA

        def grid(name: str) -> np.ndarray:
            return np.rint(table[name].values / dt) * dt

        cue_on, stim_on, stim_off = grid("cue_onset_ms"), grid("stim_onset_ms"), grid("stim_offset_ms")
        duration = float(np.rint(table["trial_end_ms"].values[-1] / dt) * dt)
        # events in time order; at equal times the later event wins (stimulus onset over the cue at CSI 0,
        # the next cue over the stimulus offset at RSI 0)
        times = np.stack([cue_on, stim_on, stim_off], axis=1).reshape(-1)
        drive = np.zeros((n, 3, 4))
        drive[:, 1] = stim
        rel = np.repeat(plan.release[context][:, None, :], 3, axis=1)
        drive, rel = drive.reshape(-1, 4), rel.reshape(-1, 4)
        last = np.append(times[1:] != times[:-1], True)
        keep = last & (times < duration)
        times, drive, rel = times[keep], drive[keep], rel[keep]
        if times[0] != 0.0:  # pragma: no cover - the task's first cue is at 0
            times, drive, rel = (
                np.append(0.0, times),
                np.vstack([0 * drive[:1], drive]),
                np.vstack([rel[:1], rel]),
            )
        sensory = SensoryStage(
            populations=POPULATIONS,
            transfer=c.transfer(),
            modulation=c.modulation(),
            tau_ms=float(tau),
        )
        every = max(1, round(plan.decimate_ms / dt)) * dt
        out = simulate_circuit(
            duration_ms=duration,
            onset_ms=stim_on[None],
            timeout_ms=stim_off[None],
            reset_ms=stim_on[None],
            input_ms=times[None],
            direct_na=np.zeros((1, times.size, 2)),
            drive_na=drive[None],
            release=rel[None],
            sensory=sensory,
            dt_ms=dt,
            noise=c.noise,
            m0=plan.release[context[0]],
            seed=seed,
            record=True,
            record_every_ms=every,
        )
        mod = out["modulator"].isel(session=0).transpose("time", "population").values
        gain_name = "shift" if c.mode == "threshold" else "gain"
        gain = out[gain_name].isel(session=0).transpose("time", "population").values
        gain_attrs = (
            _attrs("nA", "threshold shift of each sensory population")
            if gain_name == "shift"
            else _attrs("1", "gain of each sensory population")
        )
        rates = np.stack([out["r1"].values[0], out["r2"].values[0]], axis=1)
        ds = xr.Dataset(
            {
                **_behaviour(table, out["choice"].values[0], out["rt"].values[0]),
                "modulator": (("time", "population"), mod, _attrs("1", "modulator level m")),
                gain_name: (("time", "population"), gain, gain_attrs),
                "pool_rate": (("time", "pool"), rates, _attrs("Hz", "decision-population rate")),
            },
            coords={
                **_coords(table, out["time"].values),
                "pool": ("pool", np.array([1, 2], dtype=np.int8), _attrs("1", "decision population")),
            },
            attrs={
                "params_json": out.attrs["params_json"],
                "sensory_json": out.attrs["sensory_json"],
                "tau_ms": float(tau),
                "dt_ms": dt,
                "decimate_ms": every,
                "noise": int(c.noise),
            },
        )
        return ds


class _SpikingModel:
    """Adapter: the session as trials of :func:`neuromod.spiking.simulate_session` (one sub-network)."""

    name = "spiking"

    def run(self, task: CuedTaskSwitching, plan: SwitchPlan, seed: np.random.SeedSequence) -> xr.Dataset:
        from neuromod.spiking import DecisionParams, ModulationParams, input_gain_factor, simulate_session

        c = plan.spiking
        tau = c.tau_ms if plan.tau_ms is None else plan.tau_ms
        # the spiking modulator is Euler-integrated: below one step it would overshoot; tau = dt_ms relaxes
        # it to its target in one step (instantaneous on the 1 ms schedule grid)
        tau_eff = max(float(tau), c.dt_ms)
        mp = ModulationParams(tau_mod_ms=tau_eff, gain_max=c.gain_max)
        table = task.trials()
        context = table["context"].values.astype(int)
        csi = np.rint(table["csi_ms"].values)  # per trial, on simulate_session's 1 ms schedule grid
        rsi = float(round(task.timing["rsi"]))
        max_rt = float(round(task.timing["max_rt"]))
        record_ms = float(max(1, round(plan.decimate_ms)))
        kwargs = dict(
            modulation=plan.release[context][None],
            initial_modulation=plan.release[context[0]][None],
            mechanism=c.mechanism,
            params=DecisionParams(sens_in_hz=c.sens_in_hz),
            reset_ms=rsi,
            max_rt_ms=max_rt,
            mod_params=mp,
            dt_ms=c.dt_ms,
            seed=_int_seed(seed),
            record_dt_ms=record_ms,
            target=c.target,
            progress=plan.progress,
        )
        out = simulate_session(
            table["feature_a"].values[None], table["feature_b"].values[None], csi_ms=csi, **kwargs
        )
        # the spiking timeline puts the inter-trial reset (= RSI) before each cue: shift it onto the task's
        m = out["modulator"].isel(session=0).transpose("time", "population")
        t = np.round(m["time"].values - rsi, 6)
        keep = t >= 0
        mod = m.values[keep]
        data = {
            **_behaviour(table, out["choice"].values[0], out["rt"].values[0]),
            "modulator": (("time", "population"), mod, _attrs("1", "modulator level m")),
        }
        if c.mechanism == "input_gain":
            gain = input_gain_factor(np.clip(mod.reshape(-1), 0.0, 1.0), modulation=mp).reshape(mod.shape)
            data["gain"] = (
                ("time", "population"),
                gain,
                _attrs("1", "input-gain factor of each sensory pool"),
            )
        return xr.Dataset(
            data,
            coords=_coords(table, t[keep]),
            attrs={
                "params_json": out.attrs["params_json"],
                "mechanism": c.mechanism,
                "tau_ms": tau_eff,
                "dt_ms": c.dt_ms,
                "decimate_ms": record_ms,
                "target": str(out.attrs["target"]),
            },
        )


class _SEModel:
    """Adapter: :func:`neuromod.protocols.se_task.run_se_session` on the task."""

    name = "se"

    def run(self, task: CuedTaskSwitching, plan: SwitchPlan, seed: np.random.SeedSequence) -> xr.Dataset:
        from neuromod.protocols.se_task import run_se_session, with_tau_ms

        model = plan.se_model
        if model is None:  # pragma: no cover - task_switching trains one first
            raise ValueError("the SE adapter needs a model (task_switching trains one when none is given)")
        if plan.tau_ms is not None:
            model = with_tau_ms(model, max(plan.tau_ms, 1e-3))
        ds = run_se_session(
            model, task, seed=_int_seed(seed), decimate_ms=plan.decimate_ms, noise=plan.se.noise
        )
        table = task.trials()
        correct = (ds["choice"].values == table["correct_choice"].values).astype(np.int8)
        out = ds.rename({"gain": "channel_gain"}).rename({"population_gain": "gain"})
        out["correct"] = ("trial", correct, _attrs("1", "choice was correct (1) or not (0)"))
        out["gain"].attrs.update(long_name="gain of each sensory population (mean SE gate of its channels)")
        return out.assign_attrs(tau_ms=float(model.config.tau_ms))


_ADAPTERS: dict[str, type] = {"se": _SEModel, "rate": _RateModel, "spiking": _SpikingModel}


# ------------------------------------------------------------------------------------------------------
# release patterns
# ------------------------------------------------------------------------------------------------------
def se_release(
    model: SETaskModel, *, seed: int = 0, coherences: Sequence[float] | None = None
) -> xr.DataArray:
    """Release levels over (``context``, ``population``) from the SE model's per-context population gains.

    See :data:`SE_RELEASE_MAPPING`: the gains of
    :func:`~neuromod.protocols.se_task.population_gains` (averaged over stimuli with the given unsigned
    `coherences`, default those of :class:`CuedTaskSwitching`) divided by their largest value.
    """
    from neuromod.protocols.se_task import population_gains

    gains = population_gains(model, seed=seed, coherences=coherences)
    top = float(gains.max())
    if not top > 0:
        raise ValueError(f"the SE model's population gains are all <= 0 (max {top!r}); cannot map to release")
    out = (gains / top).clip(0.0, 1.0)
    return out.assign_attrs(
        _attrs("1", "release level from the SE gate profile"),
        mapping=SE_RELEASE_MAPPING,
        se_gain=gains.values.reshape(-1).tolist(),
    )


def _check_release(release: Any) -> np.ndarray:
    arr = check_array("release", release, ndim=2, low=0.0, high=1.0)
    if arr.shape != (len(CONTEXTS), len(POPULATIONS)):
        raise ValueError(
            f"release has shape {arr.shape}, expected ({len(CONTEXTS)}, {len(POPULATIONS)}): one level in "
            f"[0, 1] per context {CONTEXTS} and population {POPULATIONS}"
        )
    return arr


# ------------------------------------------------------------------------------------------------------
# protocol
# ------------------------------------------------------------------------------------------------------
def _task_json(task: CuedTaskSwitching) -> dict[str, Any]:
    return {
        "coherences": list(task.coherences),
        "csi_ms": list(task.csi_ms),
        "rsi_ms": task.timing["rsi"],
        "max_rt_ms": task.timing["max_rt"],
        "p_switch": task.p_switch,
        "p_congruent": task.p_congruent,
        "n_trials": task.n_trials,
        "seed": task.seed,
    }


def task_switching(
    task: CuedTaskSwitching | None = None,
    *,
    models: Sequence[str] = ("se", "rate", "spiking"),
    tau_ms: float | None = None,
    seed: int | None = None,
    release: Any = None,
    se_model: SETaskModel | None = None,
    rate: RateSwitchConfig | None = None,
    spiking: SpikingSwitchConfig | None = None,
    se: SESwitchConfig | None = None,
    decimate_ms: float = 50.0,
    progress: bool = False,
) -> xr.DataTree:
    """Run one cued task-switching session on each model.

    Parameters
    ----------
    task : CuedTaskSwitching, optional
        The session (default ``CuedTaskSwitching(seed=seed)``); its trial table is shared by all models.
    models : sequence of {"se", "rate", "spiking"}
        Models to run (each at most once).
    tau_ms : float, optional
        Modulator time constant (ms) for every model, overriding ``rate.tau_ms`` and ``spiking.tau_ms``
        and re-timing the SE gate (:func:`~neuromod.protocols.se_task.with_tau_ms`, same weights). 0 means
        instantaneous (rate: exact; spiking: one integration step; SE: 1e-3 ms).
    seed : int, optional
        Seed of every random stream of the run (one child stream per model, in :data:`MODELS` order);
        same seed, same task and models -> identical result. None: fresh entropy.
    release : array-like (2, 4), "se", or None
        Release level per (context, population) in [0, 1] for the rate and spiking models; None:
        :data:`DEFAULT_RELEASE`; ``"se"``: the SE model's population gains mapped by :func:`se_release`
        (trains the SE model if `se_model` is None).
    se_model : SETaskModel, optional
        A trained SE task model. If None and the SE model is needed, one is trained with
        :func:`~neuromod.protocols.se_task.train_se_task_model` (``quick=se.quick``; the full run is under a
        minute on 2 cores, quick a few seconds) with a seed from `seed`.
    rate, spiking, se : configs, optional
        Settings per model family (defaults: :class:`RateSwitchConfig`, :class:`SpikingSwitchConfig`,
        :class:`SESwitchConfig`).
    decimate_ms : float
        Sampling interval of the gain and modulator traces (ms).
    progress : bool
        Show progress bars.

    Returns
    -------
    xarray.DataTree
        Root: the trial table (``task.trials()``), the ``release`` pattern over (``context``,
        ``population``), and provenance (``config_json`` with the task settings and every model's config).
        One group per model with ``choice`` (int8: 1, 2; 0 = none), ``correct`` (int8 0/1), ``rt`` (ms
        from stimulus onset, NaN = none) over ``trial``; ``gain`` over (``time``, ``population``) (rate: the
        input gain, or ``shift`` in nA in the threshold mode; spiking: the input-gain factor with the
        ``input_gain`` mechanism; SE: the mean gate of each population's channels), ``modulator`` (rate,
        spiking) and ``release`` over (``context``, ``population``) (rate, spiking); the SE group also has
        ``channel_gain`` over (``time``, ``channel``) and the rate group ``pool_rate`` over (``time``,
        ``pool``). ``time`` is the task's session time (ms). (No wall-clock time is stored: the same seed
        gives an identical tree.)

    Raises
    ------
    TypeError, ValueError
        On bad arguments, before any model runs.

    Examples
    --------
    >>> from neuromod.tasks import CuedTaskSwitching
    >>> task = CuedTaskSwitching(n_trials=20, csi_ms=(100.0, 800.0), max_rt_ms=1000.0, seed=1)
    >>> tree = task_switching(task, models=("rate",), seed=0)
    >>> sorted(tree["rate"].data_vars)[:3]
    ['choice', 'correct', 'gain']
    """
    if task is None:
        task = CuedTaskSwitching(seed=seed)
    if not isinstance(task, CuedTaskSwitching):
        raise TypeError(f"task must be a CuedTaskSwitching, got {type(task).__name__}")
    if isinstance(models, str) or not isinstance(models, Sequence):
        raise TypeError(f"models must be a sequence of model names, got {models!r}")
    for m in models:
        if m not in MODELS:
            raise ValueError(f"models contains {m!r}{suggest(str(m), MODELS)}; expected names from {MODELS}")
    if not models or len(set(models)) != len(models):
        raise ValueError(
            f"models={tuple(models)!r} must name each of {MODELS} at most once, and at least one"
        )
    if tau_ms is not None:
        tau_ms = check_positive("tau_ms", tau_ms, allow_zero=True)
    if seed is not None:
        seed = check_int("seed", seed, low=0)
    decimate_ms = check_positive("decimate_ms", decimate_ms)
    rate = RateSwitchConfig() if rate is None else rate
    spiking = SpikingSwitchConfig() if spiking is None else spiking
    se = SESwitchConfig() if se is None else se
    for name, cfg, cls in (
        ("rate", rate, RateSwitchConfig),
        ("spiking", spiking, SpikingSwitchConfig),
        ("se", se, SESwitchConfig),
    ):
        if not isinstance(cfg, cls):
            raise TypeError(f"{name} must be a {cls.__name__}, got {type(cfg).__name__}")
    if se_model is not None:
        from neuromod.gating.task_model import SETaskModel

        if not isinstance(se_model, SETaskModel):
            raise TypeError(f"se_model must be an SETaskModel, got {type(se_model).__name__}")
    use_se_release = isinstance(release, str)
    if use_se_release:
        check_choice("release", release, ("se",))
    else:
        release_arr = _check_release(DEFAULT_RELEASE if release is None else release)
    root_seed = np.random.SeedSequence(seed)  # seed=None: fresh entropy, recorded below so the run repeats
    *children, train_stream = root_seed.spawn(len(MODELS) + 1)
    streams = dict(zip(MODELS, children, strict=True))

    # ---- the SE model (trained when needed)
    se_trained = 0
    if se_model is None and ("se" in models or use_se_release):
        from neuromod.protocols.se_task import train_se_task_model

        se_model, _ = train_se_task_model(
            quick=se.quick, n_steps=se.train_steps, progress=progress, seed=_int_seed(train_stream)
        )
        se_trained = 1
    if use_se_release:
        rel_da = se_release(se_model, coherences=task.coherences)  # the gate profile on this task's stimuli
        release_arr = rel_da.values
        mapping = SE_RELEASE_MAPPING
    else:
        mapping = _PATTERN_MAPPING
    plan = SwitchPlan(
        release=np.asarray(release_arr, dtype=float),
        release_mapping=mapping,
        tau_ms=tau_ms,
        decimate_ms=decimate_ms,
        rate=rate,
        spiking=spiking,
        se=se,
        se_model=se_model,
        progress=progress,
    )

    groups: dict[str, xr.Dataset] = {}
    bar = tqdm(list(models), desc="task switching", unit="model", disable=not progress)
    for name in bar:
        bar.set_postfix_str(name)
        model: TaskModel = _ADAPTERS[name]()
        ds = model.run(task, plan, streams[name])
        ds.attrs.update(model=name)
        groups[name] = ds

    table = task.trials()
    config = {
        "protocol": "task-switching",
        "task": _task_json(task),
        "models": list(models),
        "tau_ms": tau_ms,
        "seed": seed,
        "seed_entropy": str(root_seed.entropy),
        "release": plan.release.tolist(),
        "release_source": "se" if use_se_release else ("default" if release is None else "configured"),
        "decimate_ms": decimate_ms,
        "rate": rate,
        "spiking": spiking,
        "se": se,
        "se_model": (
            None if se_model is None else {"trained_here": se_trained, "config": se_model.config.to_dict()}
        ),
    }
    release_da = xr.DataArray(
        plan.release,
        dims=("context", "population"),
        coords={
            "context": ("context", list(CONTEXTS), _attrs("1", "task context (cued feature)")),
            "population": ("population", list(POPULATIONS), _attrs("1", "sensory population")),
        },
        attrs=_attrs("1", "modulator release level per context and population", mapping=mapping),
    )
    for name in ("rate", "spiking"):
        if name in groups:
            groups[name]["release"] = release_da
    root = table.copy()
    # task settings live in config_json; the table's list-valued attrs are kept as netCDF-safe lists
    # scalar task settings as attributes, the lists (coherences, CSI set) in task_json: a length-1 list
    # would come back from netCDF as a scalar
    root.attrs = {
        **{k: v for k, v in table.attrs.items() if k != "seed" and not isinstance(v, (list, tuple))},
        "task_seed": table.attrs["seed"],
        "task_json": json.dumps(results._jsonable(config["task"]), sort_keys=True),
        **results.provenance(config, title="Cued task switching: one trial table on every model"),
        "release_mapping": mapping,
        "release_mapping_json": json.dumps(
            {"source": config["release_source"], "release": plan.release.tolist(), "doc": mapping},
            sort_keys=True,
        ),
    }
    return xr.DataTree.from_dict({"/": root, **{f"/{m}": ds for m, ds in groups.items()}})
