"""The rate family: gated sensory populations feeding the Wong & Wang (2006) decision circuit.

Populations ``a+, a-, b+, b-`` (:class:`neuromod.rate.SensoryStage`) fire ``r = phi_mod(I; m)``, a transfer
function (threshold-linear by default, or the Abbott-Chance function of Wong & Wang 2006) modulated by the
level ``m`` of each population's modulator in one of three modes (response gain ``g(m) phi(I)``, input gain
``phi(g(m) I)``, threshold shift ``phi(I - dtheta(m))``, :class:`neuromod.rate.Modulation`); ``a+`` and
``b+`` drive decision population 1, ``a-`` and ``b-`` population 2. Each modulator follows
``dm/dt = (u(t) - m) / tau`` with the release ``u`` set by the cue, and relaxes toward the mean release of
the two contexts between the response and the next cue; the session runs in closed loop, each stimulus ending
at the circuit's response (:func:`neuromod.rate.simulate_task_session`).

Relative drive 1 is ``drive_na``, the sensory drive during a stimulus at 0 % coherence (population ``x+``
gets ``drive_na (1 + c_x / 100)``); the modulation levels of :meth:`RateFamily.fi_curves` are modulator
levels ``m``.

References
----------
Wong, K.-F. & Wang, X.-J. (2006). A recurrent network mechanism of time integration in perceptual
decisions. J. Neurosci. 26:1314-1328.
Abbott, L. F. & Chance, F. S. (2005). Drivers and modulators from push-pull and balanced synaptic input.
Prog. Brain Res. 149:147-155.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import xarray as xr

from neuromod._memory import Footprint
from neuromod.config import Config, param
from neuromod.protocols.families._common import (
    CUE_LEVEL,
    cue_levels,
    decision_dataset,
    gain_dataset,
    trials_dataset,
)
from neuromod.protocols.family import FamilyBase, register_family
from neuromod.rate.transfer import MODES, Mode
from neuromod.results import var_attrs as _attrs
from neuromod.tasks.switching import POPULATIONS, CuedTaskSwitching

if TYPE_CHECKING:
    from neuromod.rate import Modulation, Transfer
    from neuromod.rate.params import WongWang2006

__all__ = ["RateConfig", "RateFamily"]

#: The circuit's kernels, compiled or loaded from numba's cache (numba itself is imported with this module,
#: part of :data:`neuromod.protocols.memory.BASELINE_BYTES`; measured: about 60 MB more once a session ran).
_LIBRARY_BYTES = 60 * 2**20
#: One recorded sample of a session: ``modulator`` and ``gain`` (4 populations each), ``pool_rate`` (2) and
#: ``time``, 11 doubles kept; at the session's peak also the kernel's recording buffers (6 doubles, grown by
#: doubling, so up to twice that) and the copies that pad, join and transpose them (measured: 150 B per
#: sample in all at 40 000 trials).
_SAMPLE_KEPT_BYTES = 11 * 8
_SAMPLE_WORKING_BYTES = 150 - 11 * 8
#: Per trial of a session: the inputs (drives, intervals in steps) and the per-trial outputs with their
#: conversions to ms.
_TRIAL_KEPT_BYTES = 48
_TRIAL_WORKING_BYTES = 200
#: Per trial of the plain decision task (one circuit each, run in blocks; measured: 272 B at 60 000 and
#: 240 000 trials).
_DECISION_TRIAL_BYTES = 272


@dataclasses.dataclass(frozen=True)
class RateConfig(Config):
    """Settings of the rate family (the ``[rate]`` table of every experiment).

    Defaults (calibrated for the task-switching experiment): threshold-linear populations with input gain
    ``g = m``, ``I = 0.45 (1 ± c/100)`` nA, ``theta = 0.15`` nA, slope 100 Hz/nA, so a fully released
    population (m = 1) fires ``30 ± 45 c/100`` Hz (the Wong & Wang stimulus ``mu0 = 30`` Hz, its coherence
    amplified 1.5x by the threshold) and a population at release 0.1 is silent (``0.045 < theta``). While
    the modulators travel between two release patterns (for ``~tau`` after a switch cue) the threshold
    makes the two features' summed drive smaller than at either end, and the old task's feature is still
    amplified: RTs are longer and incongruent stimuli error-prone.
    """

    transfer: Literal["threshold_linear", "abbott_chance"] = param(
        "threshold_linear", doc="sensory transfer function (abbott_chance: Wong & Wang 2006 values)"
    )
    slope_hz_per_na: float = param(
        100.0, low=0.0, low_inclusive=False, doc="f-I slope (Hz/nA), threshold_linear only"
    )
    threshold_na: float = param(0.15, doc="rheobase (nA), threshold_linear only")
    drive_na: float = param(
        0.45, low=0.0, low_inclusive=False, doc="sensory drive at 0 % coherence = relative drive 1 (nA)"
    )
    mode: Mode = param("input_gain", doc="how the modulator acts: response_gain, input_gain or threshold")
    gain_at_zero: float = param(0.0, doc="gain g(m) at modulator level 0 (1)")
    gain_per_level: float = param(1.0, doc="gain added per unit modulator level (1)")
    shift_na_per_level: float = param(-0.05, doc="threshold shift per unit level, threshold mode (nA)")
    dt_ms: float = param(
        0.5, low=0.0, low_inclusive=False, high=1.0, doc="integration step (ms), at most tau_AMPA / 2"
    )
    noise: bool = param(True, doc="the decision circuit's input noise (Wong & Wang 2006)")
    noise_na: float = param(
        0.02, low=0.0, doc="sd of that noise (nA; Wong & Wang 2006: 0.02), calibrated for task switching"
    )

    def circuit_params(self) -> WongWang2006:
        """The decision circuit's parameters (Wong & Wang 2006, with the noise sd ``noise_na``)."""
        from neuromod.rate.params import WongWang2006

        return WongWang2006(sigma_noise_na=self.noise_na)

    def transfer_function(self) -> Transfer:
        """The sensory populations' transfer function (current in nA -> rate in Hz)."""
        from neuromod.rate import AbbottChance, ThresholdLinear

        if self.transfer == "abbott_chance":
            return AbbottChance()
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


@register_family
class RateFamily(FamilyBase):
    """Adapter of :mod:`neuromod.rate` (see the module docstring)."""

    name = "rate"
    config_cls = RateConfig
    description = "gated rate populations -> Wong & Wang (2006) decision circuit (neuromod.rate)"
    variant_field = "mode"
    variants = MODES
    reference = "relative drive 1 = drive_na (nA), the sensory drive at 0 % coherence"
    uses_release = True
    config: RateConfig

    @classmethod
    def memory_footprint(cls, config: RateConfig, operation: str, **sizes: Any) -> Footprint:
        """Memory of an operation (see :meth:`FamilyBase.memory_footprint`).

        ``run_trials`` keeps per trial ``choice``, ``rt``, ``stim_onset_ms`` and every ``decimate_ms``
        (rounded to the step ``dt_ms``) of the session's closed-loop time the traces ``modulator``, ``gain``
        (or ``shift``) and ``pool_rate``; the session's length is estimated with
        :func:`neuromod.protocols.memory.trial_ms`. Gain curves are steady states (a few numbers per
        drive); the plain decision task runs one circuit per trial.
        """
        from neuromod.protocols.memory import trial_ms

        if operation == "prepare":
            return Footprint(kept=_LIBRARY_BYTES)
        if operation == "run_trials":
            task = sizes["task"]
            every = max(1, round(sizes["decimate_ms"] / config.dt_ms)) * config.dt_ms
            samples = task.n_trials * trial_ms(task) / every
            return Footprint(
                kept=samples * _SAMPLE_KEPT_BYTES + task.n_trials * _TRIAL_KEPT_BYTES,
                working=samples * _SAMPLE_WORKING_BYTES + task.n_trials * _TRIAL_WORKING_BYTES,
            )
        if operation in ("fi_curves", "cue_gain_curves"):
            values = sizes.get("n_levels", 2) * sizes["n_drives"] * len(POPULATIONS)
            return Footprint(kept=values * 8, working=values * 8 * 4)
        if operation == "decision":
            trials = sizes["n_coherences"] * sizes["n_trials"]
            return Footprint(kept=trials * 16, working=trials * (_DECISION_TRIAL_BYTES - 16))
        return Footprint()

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
        """Run the task's session in closed loop (:func:`neuromod.rate.simulate_task_session`).

        Each stimulus ends at the circuit's response (or the deadline) and the next trial's RCI starts
        there, so the ``time`` axis (ms) is the model's own. The cue of context ``k`` sets ``release[k]``;
        during the RCI the release is the mean of the two rows (no task cued), which is also the initial
        modulator level. Population ``x+`` gets ``drive_na (1 + c_x / 100)`` during the stimulus.
        Besides ``neuromod.protocols.families._common.trials_dataset``'s layout (``modulator``, ``gain``
        or ``shift``, ``pool_rate`` every `decimate_ms` rounded to the step), ``stim_onset_ms`` gives each
        trial's stimulus onset on that axis.
        """
        from neuromod.rate import SensoryStage, simulate_task_session

        c = self.config
        dt = c.dt_ms
        table = task.trials()
        steps = task.steps(dt)
        fa, fb = table["feature_a"].values / 100.0, table["feature_b"].values / 100.0
        drive = np.stack([1 + fa, 1 - fa, 1 + fb, 1 - fb], axis=1) * c.drive_na  # (trial, population), nA
        release = np.asarray(release, dtype=float)
        off = release.mean(axis=0)
        sensory = SensoryStage(
            populations=POPULATIONS,
            transfer=c.transfer_function(),
            modulation=c.modulation(),
            tau_ms=float(tau_ms),
        )
        every = max(1, round(decimate_ms / dt)) * dt
        out = simulate_task_session(
            rci_steps=steps["rci"][None],
            csi_steps=steps["csi"][None],
            context=table["context"].values[None],
            drive_na=drive[None],
            max_rt_steps=int(steps["max_rt"]),
            release=release,
            off_release=off,
            sensory=sensory,
            params=c.circuit_params(),
            dt_ms=dt,
            noise=c.noise,
            m0=off,
            seed=seed,
            record=True,
            record_every_ms=every,
        ).isel(session=0)
        mod = out["modulator"].transpose("time", "population").values
        gain_name = "shift" if c.mode == "threshold" else "gain"
        gain = out[gain_name].transpose("time", "population").values
        gain_attrs = (
            _attrs("nA", "threshold shift of each sensory population")
            if gain_name == "shift"
            else _attrs("1", "gain of each sensory population")
        )
        rates = np.stack([out["r1"].values, out["r2"].values], axis=1)
        ds = trials_dataset(
            table,
            out["choice"].values,
            out["rt"].values,
            out["time"].values,
            {
                "modulator": (("time", "population"), mod, _attrs("1", "modulator level m")),
                gain_name: (("time", "population"), gain, gain_attrs),
                "pool_rate": (("time", "pool"), rates, _attrs("Hz", "decision-population rate")),
            },
        )
        ds["stim_onset_ms"] = (
            "trial",
            out["stim_onset_ms"].values,
            _attrs("ms", "stimulus onset on the session's (closed-loop) time axis"),
        )
        ds = ds.assign_coords(
            pool=("pool", np.array([1, 2], dtype=np.int8), _attrs("1", "decision population"))
        )
        return ds.assign_attrs(
            params_json=out.attrs["params_json"],
            sensory_json=out.attrs["sensory_json"],
            tau_ms=float(tau_ms),
            dt_ms=dt,
            decimate_ms=every,
            noise=int(c.noise),
        )

    def _curves(self, drives: np.ndarray, levels: np.ndarray) -> np.ndarray:
        """Steady-state rates (Hz) over (level, drive) at relative `drives`."""
        from neuromod.rate import f_i_curves

        c = self.config
        da = f_i_curves(
            np.asarray(drives, dtype=float) * c.drive_na,
            np.asarray(levels, dtype=float),
            transfer=c.transfer_function(),
            modulation=c.modulation(),
        )
        return da.values

    def fi_curves(
        self,
        *,
        drives: np.ndarray,
        levels: np.ndarray,
        n_repeats: int,
        seed: np.random.SeedSequence,
        progress: bool = False,
    ) -> xr.Dataset:
        """The steady state is deterministic: one repeat whatever `n_repeats`."""
        response = self._curves(drives, levels)[None, :, :, None]
        ds = gain_dataset(
            response,
            conditions=[self.config.mode],
            condition_name="modulation mode",
            levels=levels,
            level_name="modulator level m",
            drives=drives,
            units="Hz",
            long_name="steady-state firing rate",
        )
        return ds.assign_coords(
            drive_current=("drive", np.asarray(drives) * self.config.drive_na, _attrs("nA", "input current"))
        ).assign_attrs(transfer=self.config.transfer)

    def cue_gain_curves(
        self,
        *,
        release: np.ndarray,
        drives: np.ndarray,
        n_repeats: int,
        seed: np.random.SeedSequence,
        progress: bool = False,
    ) -> xr.Dataset:
        m = cue_levels(release)
        response = self._curves(drives, m.reshape(-1)).reshape(*m.shape, len(drives))[..., None]
        ds = gain_dataset(
            response,
            conditions=list(POPULATIONS),
            condition_name="sensory population",
            levels=np.array([0.0, 1.0]),
            level_name=CUE_LEVEL,
            drives=drives,
            units="Hz",
            long_name="steady-state rate of the sensory population",
        )
        return ds.assign_coords(
            modulator=(("condition", "level"), m, _attrs("1", "modulator level m (release)"))
        ).assign_attrs(drive_unit_na=self.config.drive_na)

    def decision(
        self,
        coherences_pct: np.ndarray,
        *,
        n_trials: int,
        max_rt_ms: float,
        seed: np.random.SeedSequence,
        progress: bool = False,
    ) -> xr.Dataset:
        from neuromod.rate import simulate_decision

        c = self.config
        ds = simulate_decision(
            np.asarray(coherences_pct, dtype=float),
            n_trials=n_trials,
            dt_ms=c.dt_ms,
            max_rt_ms=max_rt_ms,
            noise=c.noise,
            seed=seed,
        )
        return decision_dataset(
            ds["coherence"].values,
            ds["choice"].values,
            ds["rt"].values,
            {"params_json": ds.attrs["params_json"]},
        )

    def gain_profile(self, release: np.ndarray, coherences_pct: tuple[float, ...] = ()) -> np.ndarray:
        if self.config.mode == "threshold":
            return np.full_like(release, np.nan, dtype=float)
        return np.asarray(self.config.modulation().gain(release), dtype=float)
