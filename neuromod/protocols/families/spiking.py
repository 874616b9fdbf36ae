"""The spiking family: the Wang (2002) decision network with modulated LIF sensory pools (brian2).

Sensory pools ``a+, a-, b+, b-`` of LIF cells (Wang 2002 pyramidal-cell parameters) receive Poisson input
``sens_in_hz (1 ± c/100)`` during the stimulus; a neuromodulator level ``m`` per pool, following
``dm/dt = (u(t) - m) / tau`` with the release ``u`` set by the cue, acts through one biophysical
``mechanism`` (``neuromod.spiking.mechanisms``: input gain, leak, threshold, balanced background,
adaptation); ``a+`` and ``b+`` project to selective pool 1 of the decision network, ``a-`` and ``b-`` to
pool 2 (:func:`neuromod.spiking.simulate_session`).

Relative drive 1 is ``I_ref = sens_in_hz * sens_w_na * tau_AMPA``, the mean synaptic current of a sensory
cell during a stimulus at 0 % coherence; gain curves are f-I sweeps of the sensory LIF cell with that
current injected (:func:`neuromod.spiking.fi_sweep`: constant current plus the cell's own white noise,
where in the task the input is Poisson, whose shot noise smooths the curve near threshold: the sweep
measures the mechanism, the session the circuit). The levels of ``SpikingFamily.fi_curves`` are
modulator levels ``m``.

References
----------
Wang, X.-J. (2002). Probabilistic decision making by slow reverberation in cortical circuits. Neuron
36:955-968.
Chance, F. S., Abbott, L. F. & Reyes, A. D. (2002). Gain modulation from background synaptic input. Neuron
35:773-782.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import xarray as xr

from neuromod._checks import check_array, check_positive
from neuromod._machine import DEFAULT_COMPILE_FLAGS, CompileFlags, brian2_compile_args
from neuromod._memory import Footprint
from neuromod._random import seed_sequence
from neuromod.config import Config, ConfigError, param
from neuromod.protocols.families._common import (
    CUE_LEVEL,
    cue_levels,
    decision_dataset,
    gain_dataset,
    trials_dataset,
)
from neuromod.protocols.families._spiking_blocks import SessionPlan, default_workers, group_bounds, run_groups
from neuromod.protocols.family import FamilyBase, register_family
from neuromod.results import var_attrs as _attrs
from neuromod.spiking.mechanisms import Mechanism
from neuromod.tasks.switching import CONTEXTS, POPULATIONS, CuedTaskSwitching

if TYPE_CHECKING:
    from neuromod.spiking import DecisionParams, ModulationParams

__all__ = ["SpikingConfig", "SpikingFamily"]


@dataclasses.dataclass(frozen=True)
class SpikingConfig(Config):
    """Settings of the spiking family (the ``[spiking]`` table of every experiment).

    Defaults are those of :class:`neuromod.spiking.DecisionParams` (the circuit calibrated with 2000 Hz of
    sensory input) and :class:`neuromod.spiking.ModulationParams`; f-I sweeps (gain curves) simulate
    ``fi_duration_ms`` and count spikes after ``fi_transient_ms``.

    ``compile_flags`` defaults to ``"portable"`` (``neuromod._machine.brian2_compile_args``), which
    makes the spiking network's numbers the same on every x86-64 CPU that takes glibc's FMA code path (AVX2
    and FMA); with ``"native"`` (brian2's ``-march=native -ffast-math``) they depend on the CPU. What it
    costs, measured with ``benchmarks/bench_portable.py`` (portable and native alternating, caches warm, 2
    idle cores; portable / native, median of the per-pair ratios): task-switching sessions 0.98 per
    CPU-second (1,000 trials, 3 pairs; 0.90 for one network in one process, 0.82 on cores shared with
    other work), f-I sweep 0.97.
    """

    mechanism: Mechanism = param("input_gain", doc="how the modulator acts on the sensory cells")
    gain_max: float = param(
        2.0, low=0.0, low_inclusive=False, doc="input_gain: synaptic efficacy at full release (m = 1)"
    )
    gain_min: float = param(
        1.0,
        low=0.0,
        doc="input_gain: efficacy at m = 0 (gain_min + (gain_max - gain_min) m; < 1: below unmodulated)",
    )
    sens_in_hz: float = param(
        2000.0, low=0.0, low_inclusive=False, doc="sensory Poisson input at 0 % coherence (Hz), unmodulated"
    )
    dt_ms: float = param(0.1, low=0.0, low_inclusive=False, high=0.5, doc="integration step (ms)")
    target: Literal["cython", "numpy"] = param("cython", doc="brian2 code generation")
    compile_flags: CompileFlags = param(
        DEFAULT_COMPILE_FLAGS,
        doc="brian2's compiler flags: 'portable' (x86-64-v2, IEEE arithmetic, no FMA contraction: the same "
        "numbers on every x86-64 CPU with AVX2 and FMA; 2-10 % slower, benchmarks/bench_portable.py) or "
        "'native' (-march=native -ffast-math: tuned to, and dependent on, this CPU)",
    )
    fi_duration_ms: float = param(1000.0, low=0.0, low_inclusive=False, doc="f-I sweep length (ms)")
    fi_transient_ms: float = param(200.0, low=0.0, doc="f-I sweep: initial time not counted (ms)")
    fi_noise: bool = param(True, doc="f-I sweep: the cells' white-noise current")
    session_trials: int = param(
        25, low=1, doc="task: trials per closed-loop session (each after a warm-up trial, not recorded)"
    )
    batch_sessions: int = param(
        64, low=1, doc="task: sessions simulated side by side in one network (results do not depend on it)"
    )
    workers: int = param(
        0,
        low=0,
        doc="task: places running the sessions at once (0: one per available core, or per thread of the "
        "Dask cluster of `--scheduler`); results do not depend on it",
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.gain_min > self.gain_max:
            raise ConfigError(f"gain_min={self.gain_min!r} must not exceed gain_max={self.gain_max!r}")
        if self.fi_transient_ms >= self.fi_duration_ms:
            raise ConfigError(
                f"fi_transient_ms={self.fi_transient_ms} must be shorter than "
                f"fi_duration_ms={self.fi_duration_ms}"
            )

    def params(self) -> DecisionParams:
        """The circuit's parameters (:class:`neuromod.spiking.DecisionParams`)."""
        from neuromod.spiking import DecisionParams

        return DecisionParams(sens_in_hz=self.sens_in_hz)

    def modulation(self, tau_ms: float | None = None) -> ModulationParams:
        """The mechanism's parameters, with the modulator time constant `tau_ms` when given."""
        from neuromod.spiking import ModulationParams

        extra = {} if tau_ms is None else {"tau_mod_ms": tau_ms}
        return ModulationParams(gain_max=self.gain_max, gain_min=self.gain_min, **extra)

    @property
    def reference_na(self) -> float:
        """Relative drive 1 in nA: the mean synaptic current of a sensory cell at 0 % coherence."""
        p = self.params()
        return p.sens_in_hz * p.sens_w_na * p.tau_ampa_ms * 1e-3


def _session_times(task: CuedTaskSwitching) -> dict[str, float | tuple[float, ...]]:
    """The times (ms) of the closed-loop task that must lie on the 1 ms grid."""
    return {"csi_ms": task.csi_ms, "rci_ms": task.timing["rci_ms"], "max_rt_ms": task.timing["max_rt_ms"]}


def _check_release(release: object) -> np.ndarray:
    """The release pattern: shape (context, population) = (2, 4), levels in [0, 1]."""
    arr = check_array("release", release, ndim=2, low=0.0, high=1.0)
    if arr.shape != (len(CONTEXTS), len(POPULATIONS)):
        raise ValueError(
            f"release has shape {arr.shape}, expected {(len(CONTEXTS), len(POPULATIONS))}: "
            "a level per (context, population)"
        )
    return arr


def _whole_ms(name: str, values: object) -> None:
    arr = np.atleast_1d(np.asarray(values, dtype=float))
    if np.any(np.abs(arr - np.rint(arr)) > 1e-9):
        raise ValueError(f"{name}={values!r} must be whole numbers of ms (the spiking schedule's 1 ms grid)")


@register_family
class SpikingFamily(FamilyBase):
    """Adapter of :mod:`neuromod.spiking` (see the module docstring)."""

    name = "spiking"
    config_cls = SpikingConfig
    description = "Wang (2002) spiking network with modulated LIF sensory pools (neuromod.spiking, brian2)"
    variant_field = "mechanism"
    #: the classic three first (multiplicative on the drive, additive, divisive: Chance et al. 2002)
    variants = ("input_gain", "threshold", "background", "leak", "adaptation")
    reference = "relative drive 1 = sens_in_hz * sens_w_na * tau_AMPA (nA), the mean input at 0 % coherence"
    uses_release = True
    config: SpikingConfig

    def provenance(self) -> dict[str, str]:
        """The brian2 compile flags of the run: the setting and the flags it stands for here."""
        flags = self.config.compile_flags
        return {"brian2_compile_flags": flags, "brian2_compile_args": " ".join(brian2_compile_args(flags))}

    @classmethod
    def memory_footprint(cls, config: SpikingConfig, operation: str, **sizes: Any) -> Footprint:
        """Memory of an operation (see :meth:`~neuromod.protocols.FamilyBase.memory_footprint`): its
        sessions in groups of ``batch_sessions`` over ``workers`` processes
        (:func:`neuromod.protocols.memory.spiking_footprint`)."""
        from neuromod.protocols.memory import spiking_footprint

        return spiking_footprint(config, operation, **sizes)

    @classmethod
    def quick_config(cls, config: SpikingConfig) -> SpikingConfig:
        """Shorter f-I sweeps (500 ms, 100 ms of them not counted)."""
        return config.replace(fi_duration_ms=500.0, fi_transient_ms=100.0)

    def check_timing(self, times_ms: Mapping[str, float | Sequence[float]]) -> None:
        """Refuse times off the spiking schedule's 1 ms grid (before any work)."""
        for name, values in times_ms.items():
            _whole_ms(name, values)

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
        """Run the task's trials in closed loop (:func:`neuromod.spiking.simulate_session`).

        Trial k: the response-cue interval (no cue: release ``release.mean(axis=0)``, the decision pools
        reset), cue k (release ``release[context[k]]``) for the CSI, then the stimulus until the network's
        response or the deadline; the next RCI starts at the response. The table runs as sessions of
        ``session_trials`` trials, each after a warm-up trial (the table's trial before), ``batch_sessions``
        of them side by side in one network (``_spiking_blocks``); each session's modulator starts at the
        RCI's release level. Returns the layout of every family (``choice``, ``rt``; ``modulator`` and,
        for ``input_gain``, ``gain`` over (``time``, ``population``) every `decimate_ms` rounded to whole
        ms, on the task's time axis stitched from the sessions: trial 0's RCI starts at 0) plus
        ``stim_onset_ms`` per trial; attributes ``session_trials`` and ``n_sessions``.

        Raises
        ------
        ValueError
            A task time off the 1 ms grid, `release` not of shape (2, 4) in [0, 1], or `tau_ms` < 0.
        """
        from neuromod.spiking import input_gain_factor

        self.check_timing(_session_times(task))
        release = _check_release(release)
        tau_ms = check_positive("tau_ms", tau_ms, allow_zero=True)
        decimate_ms = check_positive("decimate_ms", decimate_ms)
        c = self.config
        # the modulator is Euler-integrated: below one step it would overshoot; tau = dt_ms relaxes it to
        # its target in one step (instantaneous on the 1 ms schedule grid)
        tau_eff = max(tau_ms, c.dt_ms)
        modulation = c.modulation(tau_eff)
        table = task.trials()
        plan = SessionPlan.of(table.sizes["trial"], c.session_trials)
        seeds = seed_sequence(seed).spawn(plan.n_sessions)
        workers = c.workers or default_workers()  # a Dask cluster's threads while one is in use
        bounds = group_bounds(plan.n_sessions, c.batch_sessions, workers)
        jobs = [
            self._session_job(
                table,
                plan.rows[a:b],
                seeds[a:b],
                release=release,
                modulation=modulation,
                max_rt_ms=task.timing["max_rt_ms"],
                decimate_ms=decimate_ms,
            )
            for a, b in bounds
        ]
        outs = run_groups(jobs, workers=workers, progress=progress, sizes=[b - a for a, b in bounds])
        res = plan.stitch(outs)
        t, mod = res["t"], res["modulator"]
        data = {"modulator": (("time", "population"), mod, _attrs("1", "modulator level m"))}
        if c.mechanism == "input_gain":
            gain = input_gain_factor(np.clip(mod.reshape(-1), 0.0, 1.0), modulation=modulation)
            data["gain"] = (
                ("time", "population"),
                gain.reshape(mod.shape),
                _attrs("1", "input-gain factor of each sensory pool"),
            )
        ds = trials_dataset(table, res["choice"], res["rt"], t, data)
        ds["stim_onset_ms"] = (
            "trial",
            res["stim_onset_ms"],
            _attrs("ms", "stimulus onset on the session's time axis"),
        )
        return ds.assign_attrs(
            params_json=outs[0].attrs["params_json"],
            mechanism=c.mechanism,
            tau_ms=tau_eff,
            dt_ms=c.dt_ms,
            decimate_ms=float(max(1, round(decimate_ms))),
            target=str(outs[0].attrs["target"]),
            session_trials=c.session_trials,
            n_sessions=plan.n_sessions,
        )

    def _session_job(
        self,
        table: xr.Dataset,
        rows: np.ndarray,
        seeds: list[np.random.SeedSequence],
        *,
        release: np.ndarray,
        modulation: ModulationParams,
        max_rt_ms: float,
        decimate_ms: float,
    ) -> dict[str, Any]:
        """Keywords of :func:`neuromod.spiking.simulate_session` for sessions running the table rows
        `rows` (session, position) side by side in one network."""
        c = self.config
        off = np.broadcast_to(release.mean(axis=0), (rows.shape[0], release.shape[1]))  # no cue
        return {
            "feature_a_pct": table["feature_a"].values[rows],
            "feature_b_pct": table["feature_b"].values[rows],
            "release": release[table["context"].values.astype(int)[rows]],
            "release_off": off,
            "m0": off,
            "mechanism": c.mechanism,
            "csi_ms": table["csi_ms"].values[rows],
            "rci_ms": table["rci_ms"].values[rows],
            "max_rt_ms": max_rt_ms,
            "params": c.params(),
            "modulation": modulation,
            "dt_ms": c.dt_ms,
            "seed": list(seeds),
            "record_dt_ms": float(max(1, round(decimate_ms))),
            "target": c.target,
            "compile_flags": c.compile_flags,
        }

    def _sweep(self, levels: np.ndarray, drives: np.ndarray, n_repeats: int, seed) -> xr.Dataset:
        from neuromod.spiking import fi_sweep

        c = self.config
        return fi_sweep(
            c.mechanism,
            np.asarray(levels, dtype=float),
            np.asarray(drives, dtype=float) * c.reference_na,
            modulation=c.modulation(),
            n_repeats=n_repeats,
            duration_ms=c.fi_duration_ms,
            transient_ms=c.fi_transient_ms,
            noise=c.fi_noise,
            dt_ms=c.dt_ms,
            seed=seed,
            target=c.target,
            compile_flags=c.compile_flags,
        )

    def fi_curves(
        self,
        *,
        drives: np.ndarray,
        levels: np.ndarray,
        n_repeats: int,
        seed: np.random.SeedSequence,
        progress: bool = False,
    ) -> xr.Dataset:
        sweep = self._sweep(levels, drives, n_repeats, seed)
        dims = ("condition", "level", "drive", "repeat")
        ds = gain_dataset(
            sweep["rate"].values[None],
            conditions=[self.config.mechanism],
            condition_name="modulation mechanism",
            levels=levels,
            level_name="modulator level m",
            drives=drives,
            units="Hz",
            long_name="firing rate of a sensory LIF cell",
            extra={"isi_cv": (dims, sweep["isi_cv"].values[None], sweep["isi_cv"].attrs)},
        )
        current = np.asarray(drives) * self.config.reference_na
        return ds.assign_coords(drive_current=("drive", current, _attrs("nA", "injected current")))

    def cue_gain_curves(
        self,
        *,
        release: np.ndarray,
        drives: np.ndarray,
        n_repeats: int,
        seed: np.random.SeedSequence,
        progress: bool = False,
    ) -> xr.Dataset:
        m = np.clip(cue_levels(release), 0.0, 1.0)
        levels = np.unique(m)
        sweep = self._sweep(levels, drives, n_repeats, seed)
        response = sweep["rate"].values[np.searchsorted(levels, m)]  # (population, level, drive, repeat)
        ds = gain_dataset(
            response,
            conditions=list(POPULATIONS),
            condition_name="sensory population",
            levels=np.array([0.0, 1.0]),
            level_name=CUE_LEVEL,
            drives=drives,
            units="Hz",
            long_name="firing rate of a sensory LIF cell",
        )
        return ds.assign_coords(
            modulator=(("condition", "level"), m, _attrs("1", "modulator level m (release)"))
        ).assign_attrs(drive_unit_na=self.config.reference_na, mechanism=self.config.mechanism)

    def decision(
        self,
        coherences_pct: np.ndarray,
        *,
        n_trials: int,
        max_rt_ms: float,
        seed: np.random.SeedSequence,
        progress: bool = False,
    ) -> xr.Dataset:
        from neuromod.spiking import simulate_decision

        self.check_timing({"max_rt_ms": max_rt_ms})
        c = self.config
        ds = simulate_decision(
            np.asarray(coherences_pct, dtype=float),
            n_trials=n_trials,
            params=c.params(),
            max_rt_ms=max_rt_ms,
            dt_ms=c.dt_ms,
            seed=seed,
            target=c.target,
            compile_flags=c.compile_flags,
        )
        return decision_dataset(
            ds["coherence"].values,
            ds["choice"].values,
            ds["rt"].values,
            {"params_json": ds.attrs["params_json"]},
        )

    def gain_profile(self, release: np.ndarray, coherences_pct: tuple[float, ...] = ()) -> np.ndarray:
        from neuromod.spiking import input_gain_factor

        if self.config.mechanism != "input_gain":
            return np.full_like(release, np.nan, dtype=float)
        factor = input_gain_factor(
            np.clip(release, 0.0, 1.0).reshape(-1), modulation=self.config.modulation()
        )
        return factor.reshape(np.shape(release))
