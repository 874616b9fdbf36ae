"""Batched simulation of the Wong & Wang (2006) decision circuit with gated sensory input.

Each batch element is an independent *session*: a sequence of trials with piecewise-constant inputs
(changing at given times on the dt grid), decision-state resets at given times (the modulator and
noise state run on across them), and one response window per trial. Optionally a sensory stage of
``P`` populations (e.g. ``a+, a-, b+, b-``) with modulated transfer functions feeds the two
decision populations; each population's modulator level follows its release schedule with the
exact first-order update of :mod:`neuromod.rate.modulator`.

Integration (fixed step ``dt``), for ``i in {1, 2}``::

    S_i   <- S_i + dt (gamma (1 - S_i) H(x_i) - S_i / tau_S)                     (Euler)
    X_i   <- X_i - (dt / tau_AMPA) X_i + sigma sqrt(dt / tau_AMPA) xi           (Euler-Maruyama)
    m_p   <- u_p + (m_p - u_p) exp(-dt / tau_p)                                  (exact)
    x_i   = J11 S_i - J12 S_j + I0 + direct_i + J_ext sum_p W_ip r_p + X_i
    r_p   = phi_mod(drive_p; m_p)                                                 (Hz)

``xi`` are standard normals drawn inside the compiled kernel: each session ``k`` has its own
xoshiro256++ stream keyed by ``seed`` and ``k``, turned into normals by the ziggurat method
(:mod:`neuromod.rate._rng`), two per step (populations 1, 2); a session's noise depends on the seed and
its index only, not on ``n_threads`` or the blocks. The time loop is a compiled numba kernel
(:mod:`neuromod.rate._kernel`) working on preallocated buffers.

Response rule: the reaction time of a trial is the time from its onset to the first step
``t_n >= onset`` (and ``< timeout``) at which either rate ``r_i = H(x_i)`` is at or above the
threshold; the choice is the population with the larger rate at that step. No crossing before the
timeout: choice 0 and RT NaN.

Closed loop (:func:`simulate_task_session`): sessions of cued trials (response-cue interval with no cue,
cue, stimulus) in which each stimulus ends at the circuit's own response (or at the deadline) and the next
trial's intervals count from there, so every session has its own, response-dependent time axis. Same
equations and response rule; the events are scheduled as the session runs.
"""

from __future__ import annotations

import dataclasses
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import xarray as xr

from neuromod._checks import check_array, check_bool, check_int, check_positive, check_range
from neuromod._random import seed_sequence
from neuromod.rate import _kernel, _rng
from neuromod.rate.modulator import modulator_decay
from neuromod.rate.params import WongWang2006
from neuromod.rate.transfer import Modulation, ThresholdLinear, Transfer

__all__ = [
    "MAX_DT_FRACTION",
    "SensoryStage",
    "simulate_circuit",
    "simulate_decision",
    "simulate_task_session",
]

#: dt must not exceed this fraction of the fastest time constant (tau_AMPA). With k = dt/tau the
#: Euler-Maruyama OU update is stable for k < 2 and its stationary variance is sigma^2/(2 - k)
#: instead of sigma^2/2: k <= 1/2 keeps it within 34 % (the published dt = 0.5 ms: k = 1/4, 14 %).
MAX_DT_FRACTION = 0.5

_BLOCK = 512  # conditions per kernel block (working set in L1/L2)
_CHUNK = 512  # steps of noise drawn per block and call
_BIG = _kernel.NEVER  # step sentinel: no (further) event
#: private switch (benchmarks): True draws the noise with numpy's ``Generator.standard_normal`` outside the
#: kernel, one stream spawned from the seed per block of 512 (simulate_circuit) or per session
#: (simulate_task_session), as before the in-kernel generator; other numbers, same statistics, slower
_NUMPY_NOISE = False


@dataclass(frozen=True)
class SensoryStage:
    """Gated sensory populations feeding the two decision populations.

    Population ``p`` fires ``r_p = phi_mod(drive_p; m_p)`` (Hz) with the transfer function and
    modulation mode below; the decision inputs are ``J_ext * sum_p weights[i][p] * r_p`` (nA).

    Parameters
    ----------
    populations
        Names of the populations (the ``population`` coordinate), e.g. ``("a+", "a-", "b+", "b-")``.
    weights
        Two rows (decision populations 1 and 2) of ``len(populations)`` dimensionless weights.
    transfer
        Transfer function of the sensory populations (drive in nA -> rate in Hz).
    modulation
        Mode and level -> gain/threshold map (:class:`~neuromod.rate.transfer.Modulation`).
    tau_ms
        Modulator time constant(s) (ms), one for all or one per population; 0 = instantaneous.

    Examples
    --------
    >>> st = SensoryStage()
    >>> st.populations, st.n_populations
    (('a+', 'a-', 'b+', 'b-'), 4)
    """

    populations: tuple[str, ...] = ("a+", "a-", "b+", "b-")
    weights: tuple[tuple[float, ...], ...] = ((1.0, 0.0, 1.0, 0.0), (0.0, 1.0, 0.0, 1.0))
    transfer: Transfer = field(default_factory=lambda: ThresholdLinear(slope_hz_per_na=100.0))
    modulation: Modulation = field(default_factory=Modulation)
    tau_ms: float | tuple[float, ...] = 100.0

    def __post_init__(self) -> None:
        n = len(self.populations)
        if n == 0 or len(set(self.populations)) != n:
            raise ValueError(f"populations must be non-empty and unique, got {self.populations!r}")
        w = check_array("weights", self.weights, ndim=2)
        if w.shape != (2, n):
            raise ValueError(f"weights has shape {w.shape}, expected (2, {n}) for {n} populations")
        tau = check_array("tau_ms", self.tau_ms, ndim=(0, 1), low=0.0)
        if tau.ndim == 1 and tau.shape != (n,):
            raise ValueError(f"tau_ms has {tau.shape[0]} values, expected 1 or {n}")

    @property
    def n_populations(self) -> int:
        """Number of sensory populations."""
        return len(self.populations)

    def to_json(self) -> str:
        """JSON description (transfer type and parameters included)."""
        d = dataclasses.asdict(self)
        d["transfer"] = {"type": type(self.transfer).__name__, **d["transfer"]}
        return json.dumps(d, sort_keys=True)


def _check_seed(seed: object) -> None:
    """An int >= 0, a ``numpy.random.SeedSequence`` or None (checked before any array is built)."""
    if seed is not None and not isinstance(seed, np.random.SeedSequence):
        check_int("seed", seed, low=0)


def _check_params(params: WongWang2006 | None) -> WongWang2006:
    if params is None:
        return WongWang2006()
    if not isinstance(params, WongWang2006):
        raise TypeError(f"params must be a WongWang2006 instance or None, got {type(params).__name__}")
    return params


def _check_dt(dt_ms: float, params: WongWang2006) -> float:
    dt = check_positive("dt_ms", dt_ms)
    limit = MAX_DT_FRACTION * params.tau_ampa_ms
    if dt > limit:
        raise ValueError(
            f"dt_ms={dt_ms!r} is too large for the fastest time constant tau_ampa_ms="
            f"{params.tau_ampa_ms!r}: expected dt_ms <= {MAX_DT_FRACTION} * tau_ampa_ms = {limit:g}"
        )
    return dt


def _check_steps(name: str, value_ms: float, dt: float, dt_ms: float) -> int:
    """Number of steps in `value_ms`, which must be a positive multiple of the step `dt`."""
    value = check_positive(name, value_ms)
    steps = round(value / dt)
    if steps < 1 or abs(steps * dt - value) > 1e-6 * dt:
        raise ValueError(f"{name}={value_ms!r} is not a positive multiple of dt_ms={dt_ms!r}")
    return steps


def _to_steps(name: str, times: np.ndarray, dt: float, n_steps: int) -> np.ndarray:
    """Times (ms, NaN = padding) -> int64 steps (padding -> _BIG); must be on the grid."""
    out = np.full(times.shape, _BIG, dtype=np.int64)
    ok = ~np.isnan(times)
    if np.any(np.isinf(times)):
        raise ValueError(f"{name} must be finite (NaN marks padding), got an infinite value")
    steps = times[ok] / dt
    rounded = np.rint(steps)
    if np.any(np.abs(steps - rounded) > 1e-6 * np.maximum(1.0, np.abs(steps))):
        bad = times[ok][np.abs(steps - rounded) > 1e-6 * np.maximum(1.0, np.abs(steps))][0]
        raise ValueError(f"{name} contains {float(bad)!r} ms, which is not on the dt grid (dt_ms={dt!r})")
    if np.any(rounded < 0) or np.any(rounded > n_steps):
        bad = times[ok][(rounded < 0) | (rounded > n_steps)][0]
        raise ValueError(f"{name} contains {float(bad)!r} ms, outside [0, duration_ms={n_steps * dt:g}]")
    out[ok] = rounded.astype(np.int64)
    return out


def _padded(name: str, value: np.ndarray | None, batch: int) -> np.ndarray:
    """(batch, n) float times with NaN padding at the end of each row; None -> (batch, 0)."""
    if value is None:
        return np.empty((batch, 0))
    arr = check_array(name, value, ndim=2, finite=False, nonempty=False)
    if arr.shape[0] != batch:
        raise ValueError(f"{name} has {arr.shape[0]} rows, expected one per session ({batch})")
    nan = np.isnan(arr)
    if np.any(nan[:, :-1] & ~nan[:, 1:]):
        raise ValueError(f"{name} must have its NaN padding at the end of each row")
    return arr


def _increasing_steps(name: str, times: np.ndarray, dt: float, n_steps: int) -> np.ndarray:
    """Grid steps of padded times (:func:`_to_steps`) that increase strictly along each session."""
    steps = _to_steps(name, times, dt, n_steps)
    if times.shape[1] > 1 and np.any(np.diff(times, axis=1) <= 0):
        raise ValueError(f"{name} must increase strictly along each session")
    return steps


def _with_sentinel(steps: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(
        np.concatenate([steps, np.full((steps.shape[0], 1), _BIG, dtype=np.int64)], axis=1)
    )


@dataclass(frozen=True, eq=False)
class _Inputs:
    """Checked, normalised inputs of :func:`simulate_circuit` (times as steps on the dt grid)."""

    params: WongWang2006
    dt: float  #: step (ms)
    n_steps: int  #: steps per session
    s0: float
    noise: bool
    onset: np.ndarray  #: (batch, trial) onsets (ms, NaN-padded), for the output
    values: np.ndarray  #: (batch, change, 2 + 2P) direct inputs, drive, release from each change on
    in_steps: np.ndarray  #: (batch, change) input-change steps (padding: _BIG)
    on_steps: np.ndarray  #: (batch, trial) onset steps
    to_steps: np.ndarray  #: (batch, trial) timeout steps
    rs_steps: np.ndarray  #: (batch, reset) reset steps
    m_init: np.ndarray  #: initial modulator level(s), 0-d or (P,)
    sensory: SensoryStage | None
    rec_every: int  #: recording interval in steps (0: no recording)
    n_threads: int

    @property
    def batch(self) -> int:
        """Number of sessions."""
        return self.onset.shape[0]

    @property
    def n_pop(self) -> int:
        """Number of sensory populations (0 without a sensory stage)."""
        return 0 if self.sensory is None else self.sensory.n_populations


def _check_onset(onset_ms: np.ndarray) -> np.ndarray:
    onset = check_array("onset_ms", onset_ms, ndim=2, finite=False, nonempty=False)
    onset = _padded("onset_ms", onset, onset.shape[0])
    if onset.shape[0] == 0 or onset.shape[1] == 0:
        raise ValueError(f"onset_ms must have at least one session and trial, got {onset.shape}")
    return onset


def _check_direct(
    direct_na: np.ndarray, input_ms: np.ndarray | None, batch: int
) -> tuple[np.ndarray, np.ndarray]:
    """Direct inputs ``(batch, change, 2)`` and their change times ``(batch, change)`` (ms)."""
    direct = check_array("direct_na", direct_na, ndim=3)
    if direct.shape[0] != batch or direct.shape[2] != 2:
        raise ValueError(f"direct_na has shape {direct.shape}, expected ({batch}, *, 2)")
    n_changes = direct.shape[1]
    if input_ms is None:
        if n_changes != 1:
            raise ValueError(f"input_ms is required when direct_na has {n_changes} changes")
        inputs_t = np.zeros((batch, 1))
    else:
        inputs_t = _padded("input_ms", input_ms, batch)
        if inputs_t.shape[1] != n_changes:
            raise ValueError(f"input_ms has {inputs_t.shape[1]} columns, direct_na {n_changes} changes")
    if np.any(inputs_t[:, 0] != 0.0):
        raise ValueError("input_ms must start at 0 ms in every session (the initial inputs)")
    return direct, inputs_t


def _check_sensory_inputs(
    sensory: SensoryStage | None,
    drive_na: np.ndarray | None,
    release: np.ndarray | None,
    shape: tuple[int, int],
) -> tuple[np.ndarray, np.ndarray]:
    """Drive and release ``(batch, change, P)`` for `shape` ``(batch, change)``; P = 0 without a stage."""
    if sensory is None:
        if drive_na is not None or release is not None:
            raise ValueError("drive_na and release need a sensory stage (sensory=SensoryStage(...))")
        return np.zeros((*shape, 0)), np.zeros((*shape, 0))
    if not isinstance(sensory, SensoryStage):
        raise TypeError(f"sensory must be a SensoryStage, got {type(sensory).__name__}")
    if drive_na is None or release is None:
        raise ValueError("a sensory stage needs both drive_na and release")
    drive = check_array("drive_na", drive_na, ndim=3)
    rel = check_array("release", release, ndim=3)
    expected = (*shape, sensory.n_populations)
    for name, arr in (("drive_na", drive), ("release", rel)):
        if arr.shape != expected:
            raise ValueError(f"{name} has shape {arr.shape}, expected {expected}")
    return drive, rel


def _check_windows(
    onset: np.ndarray, timeout_ms: np.ndarray | None, dt: float, n_steps: int
) -> tuple[np.ndarray, np.ndarray]:
    """Onset and timeout steps of the response windows ``(batch, trial)``."""
    on_steps = _increasing_steps("onset_ms", onset, dt, n_steps)
    if timeout_ms is None:
        nxt = np.concatenate([onset[:, 1:], np.full((onset.shape[0], 1), np.nan)], axis=1)
        timeout = np.where(np.isnan(nxt), n_steps * dt, nxt)
        timeout[np.isnan(onset)] = np.nan
    else:
        timeout = _padded("timeout_ms", timeout_ms, onset.shape[0])
        if timeout.shape != onset.shape or np.any(np.isnan(timeout) != np.isnan(onset)):
            raise ValueError(
                f"timeout_ms (shape {timeout.shape}) must match onset_ms (shape {onset.shape}) "
                "including its padding"
            )
    to_steps = _to_steps("timeout_ms", timeout, dt, n_steps)
    real = ~np.isnan(onset)
    if np.any(to_steps[real] <= on_steps[real]):
        raise ValueError("timeout_ms must be later than onset_ms for every trial")
    if np.any((to_steps[:, :-1] > on_steps[:, 1:]) & real[:, 1:]):
        raise ValueError("timeout_ms must not be later than the next trial's onset_ms")
    return on_steps, to_steps


def _check_inputs(
    *,
    duration_ms: float,
    onset_ms: np.ndarray,
    direct_na: np.ndarray,
    input_ms: np.ndarray | None,
    timeout_ms: np.ndarray | None,
    reset_ms: np.ndarray | None,
    drive_na: np.ndarray | None,
    release: np.ndarray | None,
    sensory: SensoryStage | None,
    params: WongWang2006 | None,
    dt_ms: float,
    noise: bool,
    s0: float,
    m0: float | np.ndarray,
    record: bool,
    record_every_ms: float | None,
    n_threads: int,
) -> _Inputs:
    """Check the arguments of :func:`simulate_circuit` (same names) and normalise them."""
    params = _check_params(params)
    dt = _check_dt(dt_ms, params)
    n_steps = _check_steps("duration_ms", duration_ms, dt, dt_ms)
    check_range("s0", s0, 0.0, 1.0)
    check_bool("noise", noise)
    check_bool("record", record)
    onset = _check_onset(onset_ms)
    batch = onset.shape[0]
    direct, inputs_t = _check_direct(direct_na, input_ms, batch)
    drive, rel = _check_sensory_inputs(sensory, drive_na, release, direct.shape[:2])
    n_pop = drive.shape[2]
    m_init = check_array("m0", m0, ndim=(0, 1))
    if m_init.ndim == 1 and m_init.shape != (n_pop,):
        raise ValueError(f"m0 has {m_init.shape[0]} values, expected 1 or {n_pop}")
    in_steps = _increasing_steps("input_ms", inputs_t, dt, n_steps)
    on_steps, to_steps = _check_windows(onset, timeout_ms, dt, n_steps)
    rs_steps = _increasing_steps("reset_ms", _padded("reset_ms", reset_ms, batch), dt, n_steps)
    rec_every = 0
    if record:
        rec_every = (
            1 if record_every_ms is None else _check_steps("record_every_ms", record_every_ms, dt, dt_ms)
        )
    return _Inputs(
        params=params,
        dt=dt,
        n_steps=n_steps,
        s0=float(s0),
        noise=bool(noise),
        onset=onset,
        values=np.concatenate([direct, drive, rel], axis=2),
        in_steps=in_steps,
        on_steps=on_steps,
        to_steps=to_steps,
        rs_steps=rs_steps,
        m_init=m_init,
        sensory=sensory,
        rec_every=rec_every,
        n_threads=check_int("n_threads", n_threads, low=1),
    )


@dataclass(frozen=True, eq=False)
class _Buffers:
    """Event tables, block-major state and outputs of one :func:`simulate_circuit` call.

    The state of block ``k`` is ``s[k]``, ``x[k]``, ``m[k]``, ``cur[k]`` (variable, condition in
    block), each C-contiguous; per-session arrays are sliced by block.
    """

    block: int  #: conditions per block (the last block may be shorter)
    s: np.ndarray  #: (block index, 2, block)
    x: np.ndarray  #: (block index, 2, block)
    m: np.ndarray  #: (block index, P, block)
    cur: np.ndarray  #: (block index, 2 + 2P, block)
    g: np.ndarray  #: (block index, 4, block) uint64 noise-stream states (in-kernel noise; else width 0)
    in_step: np.ndarray  #: (batch, change + 1), ends in the _BIG sentinel (as the other step tables)
    in_val: np.ndarray  #: (batch, change + 1, 2 + 2P)
    rs_step: np.ndarray  #: (batch, reset + 1) reset steps
    on_step: np.ndarray  #: (batch, trial + 1) onset steps
    to_step: np.ndarray  #: (batch, trial + 1) timeout steps
    in_ptr: np.ndarray  #: (batch,) int64 index of the next input change
    rs_ptr: np.ndarray  #: (batch,) int64 index of the next reset
    tr_ptr: np.ndarray  #: (batch,) int64 index of the current trial
    phase: np.ndarray  #: (batch,) int64 1 inside a response window
    detect: np.ndarray  #: (batch,) int64 1 while a window waits for its crossing
    next_ev: np.ndarray  #: (batch,) int64 step of the next event
    choice: np.ndarray  #: (batch, trial) int8
    cross: np.ndarray  #: (batch, trial) crossing step from onset (-1: none)
    rec_every: int  #: recording interval in steps (0: no recording)
    rec_s: np.ndarray  #: (2, batch, n_rec)
    rec_r: np.ndarray  #: (2, batch, n_rec)
    rec_m: np.ndarray  #: (P, batch, n_rec)

    @property
    def n_blocks(self) -> int:
        """Number of blocks."""
        return self.s.shape[0]

    def block_args(self, k: int) -> tuple[_kernel.BlockState, _kernel.BlockEvents, _kernel.BlockOutput]:
        """The kernel's views of block `k` (state, event tables, outputs)."""
        b0 = k * self.block
        b1 = min(self.next_ev.shape[0], b0 + self.block)
        state = _kernel.BlockState(self.s[k], self.x[k], self.m[k], self.cur[k], self.g[k])
        events = _kernel.BlockEvents(
            self.in_step[b0:b1],
            self.in_val[b0:b1],
            self.in_ptr[b0:b1],
            self.rs_step[b0:b1],
            self.rs_ptr[b0:b1],
            self.on_step[b0:b1],
            self.to_step[b0:b1],
            self.tr_ptr[b0:b1],
            self.phase[b0:b1],
            self.detect[b0:b1],
            self.next_ev[b0:b1],
        )
        out = _kernel.BlockOutput(
            self.choice[b0:b1],
            self.cross[b0:b1],
            self.rec_every,
            self.rec_s[:, b0:b1],
            self.rec_r[:, b0:b1],
            self.rec_m[:, b0:b1],
        )
        return state, events, out


def _noise_states(key: int, batch: int, block: int) -> np.ndarray:
    """Initial noise-stream states of all sessions, block-major ``(block index, 4, block)``."""
    n_blocks = -(-batch // block)
    g = np.zeros((4, n_blocks * block), dtype=np.uint64)
    g[:, :batch] = _rng.stream_states(key, 0, batch)
    return np.ascontiguousarray(g.reshape(4, n_blocks, block).transpose(1, 0, 2))


def _prepare_buffers(inp: _Inputs, key: int) -> _Buffers:
    """Event tables with sentinels, the initial block-major state and zeroed outputs; `key`: the noise
    streams' key (:func:`neuromod.rate._rng.stream_key`)."""
    batch, n_pop = inp.batch, inp.n_pop
    in_val = np.concatenate([inp.values, np.zeros((batch, 1, inp.values.shape[2]))], axis=1)
    in_step = _with_sentinel(inp.in_steps)
    rs_step = _with_sentinel(inp.rs_steps)
    on_step = _with_sentinel(inp.on_steps)
    block = min(_BLOCK, batch)
    n_blocks = -(-batch // block)
    m = np.empty((n_blocks, n_pop, block))
    m[...] = inp.m_init.reshape(-1, 1) if inp.m_init.ndim else float(inp.m_init)
    n_rec = (inp.n_steps + inp.rec_every - 1) // inp.rec_every if inp.rec_every else 0
    kernel_noise = inp.noise and not _NUMPY_NOISE
    return _Buffers(
        block=block,
        s=np.full((n_blocks, 2, block), inp.s0),
        x=np.zeros((n_blocks, 2, block)),
        m=m,
        cur=np.zeros((n_blocks, 2 + 2 * n_pop, block)),
        g=_noise_states(key, batch, block) if kernel_noise else np.zeros((n_blocks, 4, 0), dtype=np.uint64),
        in_step=in_step,
        in_val=in_val,
        rs_step=rs_step,
        on_step=on_step,
        to_step=_with_sentinel(inp.to_steps),
        in_ptr=np.zeros(batch, dtype=np.int64),
        rs_ptr=np.zeros(batch, dtype=np.int64),
        tr_ptr=np.zeros(batch, dtype=np.int64),
        phase=np.zeros(batch, dtype=np.int64),
        detect=np.zeros(batch, dtype=np.int64),
        next_ev=np.minimum(np.minimum(in_step[:, 0], rs_step[:, 0]), on_step[:, 0]),
        choice=np.zeros(inp.on_steps.shape, dtype=np.int8),
        cross=np.full(inp.on_steps.shape, -1, dtype=np.int64),
        rec_every=inp.rec_every,
        rec_s=np.zeros((2, batch, n_rec)),
        rec_r=np.zeros((2, batch, n_rec)),
        rec_m=np.zeros((n_pop, batch, n_rec)),
    )


def _decision_coefficients(params: WongWang2006, dt: float, s0: float) -> _kernel.DecisionCoefficients:
    """The decision coefficients in the kernel's units."""
    p = params
    noise_decay = dt / p.tau_ampa_ms
    return _kernel.DecisionCoefficients(
        a=float(p.a_hz_per_na),
        b=float(p.b_hz),
        d=float(p.d_s),
        gamma=p.gamma / 1000.0,
        inv_tau_s=1.0 / p.tau_s_ms,
        j11=float(p.j11_na),
        j12=float(p.j12_na),
        i0=float(p.i0_na),
        j_ext=float(p.j_ext_na_per_hz),
        threshold=float(p.threshold_hz),
        s0=float(s0),
        noise_decay=float(noise_decay),
        noise_scale=float(p.sigma_noise_na * np.sqrt(noise_decay)),
        dt=float(dt),
    )


def _sensory_args(sensory: SensoryStage | None, dt: float) -> _kernel.SensoryArgs:
    """The sensory stage in the kernel's form (an empty stage for None)."""
    if sensory is None:
        return _kernel.SensoryArgs(0, np.zeros(3), 0, 0.0, 0.0, 0.0, np.zeros(0), np.zeros((2, 0)))
    mod = sensory.modulation
    tau = np.broadcast_to(np.asarray(sensory.tau_ms, dtype=float), (sensory.n_populations,))
    return _kernel.SensoryArgs(
        transfer_code=type(sensory.transfer).code,
        transfer_params=np.array(sensory.transfer.kernel_params(), dtype=float),
        mode_code=mod.mode_code,
        gain_at_zero=float(mod.gain_at_zero),
        gain_per_level=float(mod.gain_per_level),
        shift_per_level=float(mod.shift_na_per_level),
        decay=modulator_decay(dt, tau),
        weights=np.ascontiguousarray(np.asarray(sensory.weights, dtype=float)),
    )


def _run_worker(
    blocks: range,
    inp: _Inputs,
    buf: _Buffers,
    dp: _kernel.DecisionCoefficients,
    sens: _kernel.SensoryArgs,
    rngs: list[np.random.Generator],
) -> None:
    """Integrate `blocks` over the whole session (with `rngs`: numpy's noise drawn in chunks of steps)."""
    n_steps = inp.n_steps
    mode = _noise_mode(inp.noise)
    given = mode == _kernel.NOISE_GIVEN
    chunk = min(_CHUNK, n_steps) if given else n_steps  # the kernel draws its own noise: one call
    xi_buf = np.empty(chunk * 2 * buf.block if given else 2)
    scr = np.empty((7, buf.block))
    words = np.empty((2, buf.block), dtype=np.uint64)
    for k in blocks:
        state, events, out = buf.block_args(k)
        nb = events.next_ev.shape[0]
        for n0 in range(0, n_steps, chunk):
            n1 = min(n_steps, n0 + chunk)
            if given:
                xi = xi_buf[: (n1 - n0) * 2 * nb].reshape(n1 - n0, 2, nb)
                rngs[k].standard_normal(out=xi)
            else:
                xi = xi_buf.reshape(1, 2, 1)
            _kernel.run_block(n0, n1, dp, sens, state, events, out, mode, xi, scr, words)


def _noise_mode(noise: bool) -> int:
    """The kernels' noise code: off, in-kernel streams, or numpy's normals (``_NUMPY_NOISE``)."""
    if not noise:
        return _kernel.NOISE_OFF
    return _kernel.NOISE_GIVEN if _NUMPY_NOISE else _kernel.NOISE_KERNEL


def _run_blocks(inp: _Inputs, buf: _Buffers, seed: np.random.SeedSequence) -> None:
    """Run every block of the batch, on ``inp.n_threads`` threads over blocks."""
    dp = _decision_coefficients(inp.params, inp.dt, inp.s0)
    sens = _sensory_args(inp.sensory, inp.dt)
    n_blocks = buf.n_blocks
    # in-kernel noise: each session's stream is in buf.g. numpy's (_NUMPY_NOISE): one child stream per
    # block spawned from the seed. Either way a block's noise does not depend on the other blocks or on
    # how blocks are spread over threads (bit-identical results)
    given = _noise_mode(inp.noise) == _kernel.NOISE_GIVEN
    rngs = np.random.default_rng(seed).spawn(n_blocks) if given else []
    workers = min(inp.n_threads, n_blocks)
    if workers == 1:
        _run_worker(range(n_blocks), inp, buf, dp, sens, rngs)
        return
    # the kernel releases the GIL (nogil) and so does Generator.standard_normal
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [
            pool.submit(_run_worker, range(w, n_blocks, workers), inp, buf, dp, sens, rngs)
            for w in range(workers)
        ]
        for fut in futures:
            fut.result()


def _to_dataset(inp: _Inputs, buf: _Buffers, seed: object) -> xr.Dataset:
    """Choices, reaction times, onsets and (with recording) the traces as a labelled Dataset."""
    rt = np.where(buf.cross >= 0, buf.cross * inp.dt, np.nan)
    ds = xr.Dataset(
        {
            "choice": (
                ("session", "trial"),
                buf.choice,
                {"units": "1", "long_name": "choice (1 or 2; 0 = no response)"},
            ),
            "rt": (
                ("session", "trial"),
                rt,
                {"units": "ms", "long_name": "reaction time from stimulus onset"},
            ),
            "onset": (("session", "trial"), inp.onset, {"units": "ms", "long_name": "trial onset"}),
        },
        coords={
            "session": ("session", np.arange(inp.batch), {"units": "1", "long_name": "session"}),
            "trial": ("trial", np.arange(inp.onset.shape[1]), {"units": "1", "long_name": "trial"}),
        },
    )
    if inp.rec_every:
        ds = _add_traces(ds, buf.rec_s, buf.rec_r, inp.rec_every * inp.dt, ("session",))
        if inp.sensory is not None:
            ds = _add_modulator_traces(ds, inp.sensory, buf.rec_m)
    ds.attrs.update(_provenance(inp.params, inp.dt, inp.noise, inp.s0, seed))
    ds.attrs["sensory_json"] = "null" if inp.sensory is None else inp.sensory.to_json()
    return ds


def _add_modulator_traces(ds: xr.Dataset, sensory: SensoryStage, rec_m: np.ndarray) -> xr.Dataset:
    """Add ``modulator`` and ``gain`` (or ``shift``) over (population, session, time)."""
    dims = ("population", "session", "time")
    ds["modulator"] = (dims, rec_m, {"units": "1", "long_name": "modulator level"})
    mod = sensory.modulation
    if mod.mode == "threshold":
        ds["shift"] = (dims, mod.shift_na(rec_m), {"units": "nA", "long_name": "threshold shift dtheta(m)"})
    else:
        ds["gain"] = (dims, mod.gain(rec_m), {"units": "1", "long_name": "gain g(m)"})
    return ds.assign_coords(
        population=(
            "population",
            list(sensory.populations),
            {"units": "1", "long_name": "sensory population"},
        )
    )


def simulate_circuit(
    *,
    duration_ms: float,
    onset_ms: np.ndarray,
    direct_na: np.ndarray,
    input_ms: np.ndarray | None = None,
    timeout_ms: np.ndarray | None = None,
    reset_ms: np.ndarray | None = None,
    drive_na: np.ndarray | None = None,
    release: np.ndarray | None = None,
    sensory: SensoryStage | None = None,
    params: WongWang2006 | None = None,
    dt_ms: float = 0.5,
    noise: bool = True,
    s0: float = 0.1,
    m0: float | np.ndarray = 0.0,
    seed: int | np.random.SeedSequence | None = None,
    record: bool = False,
    record_every_ms: float | None = None,
    n_threads: int = 1,
) -> xr.Dataset:
    """Simulate independent sessions of trials on the (sensory ->) decision circuit.

    Parameters
    ----------
    duration_ms
        Session length (ms); ``round(duration_ms / dt_ms)`` steps.
    onset_ms
        ``(session, trial)`` trial (stimulus) onsets in ms, increasing along each row, NaN-padded
        at the end of rows with fewer trials. RTs are measured from these.
    direct_na
        ``(session, change, 2)`` currents (nA) added to the inputs of decision populations 1 and 2
        from each input change on (e.g. ``J_ext mu0 (1 +/- c/100)`` for the plain task).
    input_ms
        ``(session, change)`` times (ms) at which the inputs take the values in `direct_na`,
        `drive_na` and `release`; the first must be 0; NaN-padded. Default: one change at 0.
    timeout_ms
        ``(session, trial)`` end of each response window (ms), ``> onset`` and ``<=`` the next
        onset. Default: the next onset, or the end of the session.
    reset_ms
        ``(session, reset)`` times (ms) at which ``S_1, S_2`` are set back to `s0` (noise and
        modulators run on). Default: none.
    drive_na, release
        ``(session, change, P)`` sensory drive (nA) and modulator release (dimensionless) per
        population; required together with `sensory`.
    sensory
        The sensory stage (:class:`SensoryStage`); None: no sensory populations.
    params
        Decision-circuit parameters; default :class:`~neuromod.rate.params.WongWang2006`.
    dt_ms
        Step (ms), ``0 < dt_ms <= MAX_DT_FRACTION * params.tau_ampa_ms``.
    noise
        Whether to include the OU input noise.
    s0
        Initial and reset value of ``S_1, S_2`` (in [0, 1]).
    m0
        Initial modulator level(s): scalar or one per population.
    seed
        Seed (int or ``numpy.random.SeedSequence``) of the noise: session ``k`` draws from its own stream,
        keyed by the seed and ``k`` (module docstring); same seed, same result.
    record
        Also return ``s1, s2, r1, r2`` (and ``modulator`` with a sensory stage) over ``time``.
    record_every_ms
        Recording interval (ms, a multiple of `dt_ms`); default every step.
    n_threads
        Threads over blocks of 512 sessions (the compiled kernel releases the GIL); default 1. More
        helps on idle cores and hurts on busy shared ones. Results do not depend on it (each session
        has its own noise stream).

    Returns
    -------
    xarray.Dataset
        ``choice`` (session, trial; int8: 1, 2, 0 = none), ``rt`` (ms, NaN = none) and
        ``onset`` (ms); with `record` the traces ``s1, s2, r1, r2`` (session, time) and, with a
        sensory stage, ``modulator`` and ``gain`` (or ``shift`` in nA for the threshold mode)
        over (population, session, time). Padded trials have choice 0 and RT NaN. Attrs: ``params_json``,
        ``sensory_json``, ``dt_ms``, ``noise``, ``s0``, ``seed``.

    Raises
    ------
    ValueError, TypeError
        On bad parameters, shapes, times off the dt grid or out of order, before simulating.

    Examples
    --------
    >>> ds = simulate_circuit(duration_ms=1000.0, onset_ms=[[0.0]], direct_na=[[[0.03, 0.0]]],
    ...                       noise=False)
    >>> int(ds.choice[0, 0]), bool(ds.rt[0, 0] < 1000)
    (1, True)
    """
    _check_seed(seed)
    inp = _check_inputs(
        duration_ms=duration_ms,
        onset_ms=onset_ms,
        direct_na=direct_na,
        input_ms=input_ms,
        timeout_ms=timeout_ms,
        reset_ms=reset_ms,
        drive_na=drive_na,
        release=release,
        sensory=sensory,
        params=params,
        dt_ms=dt_ms,
        noise=noise,
        s0=s0,
        m0=m0,
        record=record,
        record_every_ms=record_every_ms,
        n_threads=n_threads,
    )
    return _to_dataset(inp, _simulate(inp, seed), seed)


def _simulate(inp: _Inputs, seed: int | np.random.SeedSequence | None) -> _Buffers:
    """Run checked inputs; the filled buffers (choices, crossings, recordings)."""
    seq = seed_sequence(seed)  # a copy: the caller's SeedSequence is not advanced
    buf = _prepare_buffers(inp, _rng.stream_key(seq) if inp.noise else 0)
    _run_blocks(inp, buf, seq)
    return buf


def _add_traces(
    ds: xr.Dataset,
    rec_s: np.ndarray,
    rec_r: np.ndarray,
    every_ms: float,
    lead: tuple[str, ...],
    shape: tuple[int, ...] | None = None,
) -> xr.Dataset:
    n_rec = rec_s.shape[-1]
    dims = (*lead, "time")
    meta = {
        "s1": (rec_s[0], "1", "NMDA gating variable S1"),
        "s2": (rec_s[1], "1", "NMDA gating variable S2"),
        "r1": (rec_r[0], "Hz", "firing rate of decision population 1"),
        "r2": (rec_r[1], "Hz", "firing rate of decision population 2"),
    }
    for name, (arr, units, long_name) in meta.items():
        data = arr if shape is None else arr.reshape((*shape, n_rec))
        ds[name] = (dims, data, {"units": units, "long_name": long_name})
    return ds.assign_coords(time=("time", np.arange(n_rec) * every_ms, {"units": "ms", "long_name": "time"}))


def _provenance(params: WongWang2006, dt: float, noise: bool, s0: float, seed: object) -> dict[str, object]:
    return {
        "params_json": params.to_json(),
        "dt_ms": dt,
        "noise": int(bool(noise)),
        "s0": float(s0),
        "seed": "None" if seed is None else str(seed),
        "model": "WongWang2006",
    }


def simulate_decision(
    coherence_pct: float | np.ndarray,
    *,
    n_trials: int,
    params: WongWang2006 | None = None,
    dt_ms: float = 0.5,
    max_rt_ms: float = 2000.0,
    noise: bool = True,
    s0: float = 0.1,
    seed: int | np.random.SeedSequence | None = None,
    record: bool = False,
) -> xr.Dataset:
    """Run the plain Wong & Wang (2006) random-dot task, batched over coherences and trials.

    The stimulus ``I_{1,2} = J_ext mu0 (1 +/- c/100)`` is on from 0 ms to `max_rt_ms` (the
    response deadline); every trial starts at ``S_1 = S_2 = s0`` with zero noise current.

    Parameters
    ----------
    coherence_pct
        Motion coherence ``c'`` in percent (positive favours population 1): a scalar or a 1-D
        array (one condition per value).
    n_trials
        Trials per coherence (>= 1).
    params
        Model parameters; default :class:`~neuromod.rate.params.WongWang2006`.
    dt_ms
        Step (ms), ``<= MAX_DT_FRACTION * tau_ampa_ms`` (1 ms at the published values).
    max_rt_ms
        Response deadline = stimulus duration (ms), a multiple of `dt_ms`; a trial without a
        threshold crossing by then has no response.
    noise
        Include the OU input noise (False: deterministic).
    s0
        Initial ``S_1 = S_2`` (in [0, 1]).
    seed
        Seed of the noise (each trial its own stream, as the sessions of :func:`simulate_circuit`);
        same seed, same result.
    record
        Also return ``s1``, ``s2``, ``r1``, ``r2`` over ``time`` (every step).

    Returns
    -------
    xarray.Dataset
        ``choice`` (int8: 1, 2, or 0 = no response) and ``rt`` (ms from stimulus onset, NaN when
        none) with dims ``(coherence, trial)`` for an array `coherence_pct`, ``(trial,)`` with a
        scalar ``coherence`` coordinate for a scalar; traces add a ``time`` dim (ms).
        ``attrs["params_json"]`` holds the resolved parameters, ``attrs["max_rt_ms"]`` the deadline.

    Raises
    ------
    ValueError, TypeError
        On bad input, before simulating.

    Examples
    --------
    >>> ds = simulate_decision([0.0, 51.2], n_trials=20, seed=1)
    >>> ds.choice.dims, ds.rt.attrs["units"]
    (('coherence', 'trial'), 'ms')
    >>> float((ds.choice.sel(coherence=51.2) == 1).mean()) > 0.9
    True
    """
    coh = check_array("coherence_pct", coherence_pct, ndim=(0, 1), low=-100.0, high=100.0)
    n_trials = check_int("n_trials", n_trials, low=1)
    params = _check_params(params)
    dt = _check_dt(dt_ms, params)
    _check_steps("max_rt_ms", max_rt_ms, dt, dt_ms)
    _check_seed(seed)
    coh1 = coh.reshape(-1)
    inp = _check_inputs(  # what simulate_circuit runs, without its intermediate Dataset
        duration_ms=max_rt_ms,
        onset_ms=np.zeros((coh1.size * n_trials, 1)),
        direct_na=_decision_inputs(coh1, n_trials, params),
        input_ms=None,
        timeout_ms=None,
        reset_ms=None,
        drive_na=None,
        release=None,
        sensory=None,
        params=params,
        dt_ms=dt_ms,
        noise=noise,
        s0=s0,
        m0=0.0,
        record=record,
        record_every_ms=None,
        n_threads=1,
    )
    ds = _decision_dataset(inp, _simulate(inp, seed), coh1, n_trials)
    ds.attrs.update(_provenance(params, float(dt_ms), noise, s0, seed))
    ds.attrs["max_rt_ms"] = float(max_rt_ms)
    return ds.isel(coherence=0) if coh.ndim == 0 else ds


def _decision_inputs(coh: np.ndarray, n_trials: int, params: WongWang2006) -> np.ndarray:
    """Direct inputs ``(coherence * trial, 1, 2)`` (nA): ``J_ext mu0 (1 +/- c/100)`` per trial."""
    base = params.j_ext_na_per_hz * params.mu0_hz
    per_cond = np.stack([base * (1.0 + coh / 100.0), base * (1.0 - coh / 100.0)], axis=1)
    return np.repeat(per_cond, n_trials, axis=0).reshape(coh.size * n_trials, 1, 2)


def _decision_dataset(inp: _Inputs, buf: _Buffers, coh: np.ndarray, n_trials: int) -> xr.Dataset:
    """The sessions' choices, RTs (and traces) reshaped to ``(coherence, trial)``."""
    shape = (coh.size, n_trials)
    rt = np.where(buf.cross[:, 0] >= 0, buf.cross[:, 0] * inp.dt, np.nan).reshape(shape)
    ds = xr.Dataset(
        {
            "choice": (
                ("coherence", "trial"),
                buf.choice[:, 0].reshape(shape),
                {"units": "1", "long_name": "choice (1 or 2; 0 = no response)"},
            ),
            "rt": (
                ("coherence", "trial"),
                rt,
                {"units": "ms", "long_name": "reaction time from stimulus onset"},
            ),
        },
        coords={
            "coherence": ("coherence", coh, {"units": "%", "long_name": "motion coherence"}),
            "trial": ("trial", np.arange(n_trials), {"units": "1", "long_name": "trial"}),
        },
    )
    if not inp.rec_every:
        return ds
    return _add_traces(ds, buf.rec_s, buf.rec_r, inp.rec_every * inp.dt, ("coherence", "trial"), shape)


# -- closed-loop task sessions -----------------------------------------------------------------------------
_SESSION_CHUNK_WORK = 1 << 18  #: session-steps of noise drawn per block and call (chunk = this / sessions)
_SESSION_CHUNK_MAX = 16384  #: at most this many steps per call (noise buffer <= 256 KiB per session)


@dataclass(frozen=True, eq=False)
class _SessionInputs:
    """Checked, normalised inputs of :func:`simulate_task_session` (padding zeroed)."""

    params: WongWang2006
    dt: float  #: step (ms)
    s0: float
    noise: bool
    rci: np.ndarray  #: (batch, trial) int64 steps
    csi: np.ndarray  #: (batch, trial) int64 steps
    context: np.ndarray  #: (batch, trial) int64
    drive: np.ndarray  #: (batch, trial, P) nA
    n_trials: np.ndarray  #: (batch,) int64
    max_rt: int  #: deadline in steps
    release: np.ndarray  #: (K, P)
    off: np.ndarray  #: (P,)
    m_init: np.ndarray  #: (P,)
    sensory: SensoryStage
    rec_every: int  #: recording interval in steps (0: no recording)
    n_threads: int

    @property
    def batch(self) -> int:
        """Number of sessions."""
        return self.rci.shape[0]

    def upper_steps(self) -> np.ndarray:
        """(batch,) bound on each session's length in steps (every trial running to its deadline)."""
        return (self.rci + self.csi).sum(axis=1) + self.n_trials * self.max_rt


def _check_trial_table(
    name: str, value: object, shape: tuple[int, ...], valid: np.ndarray, *, integer: bool
) -> np.ndarray:
    """A (session, trial[, ...]) table of shape `shape`, finite (whole numbers with `integer`) where
    `valid`; padding (``~valid``) is set to 0."""
    arr = check_array(name, value, ndim=len(shape), finite=False)
    if arr.shape != shape:
        raise ValueError(f"{name} has shape {arr.shape}, expected {shape} (sessions, trials[, populations])")
    arr = arr.copy()
    arr[~valid] = 0.0
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite in every trial (entries after n_trials are padding)")
    if integer and np.any(arr != np.rint(arr)):
        bad = arr[arr != np.rint(arr)].flat[0]
        raise ValueError(f"{name} must hold whole numbers of steps, got {float(bad)!r}")
    return arr


def _check_n_trials(n_trials: object, batch: int, width: int) -> np.ndarray:
    """Trials per session ``(batch,)`` in ``[1, width]``; None: `width` for every session."""
    if n_trials is None:
        return np.full(batch, width, dtype=np.int64)
    arr = check_array("n_trials", n_trials, ndim=1)
    if arr.shape != (batch,):
        raise ValueError(f"n_trials has shape {arr.shape}, expected ({batch},): one count per session")
    if np.any(arr != np.rint(arr)):
        raise ValueError(f"n_trials must hold whole numbers, got {arr.tolist()!r}")
    check_range("n_trials", arr, 1, width)
    return arr.astype(np.int64)


def _check_session_release(
    release: object, off_release: object, m0: object, n_pop: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Release ``(K, P)``, off release ``(P,)`` (default: mean of the rows) and initial level ``(P,)``
    (default: the off release)."""
    rel = check_array("release", release, ndim=2)
    if rel.shape[1] != n_pop:
        raise ValueError(
            f"release has shape {rel.shape}, expected (contexts, {n_pop}): one row per context, one column "
            "per sensory population"
        )
    if off_release is None:
        off = rel.mean(axis=0)
    else:
        off = check_array("off_release", off_release, ndim=1)
        if off.shape != (n_pop,):
            raise ValueError(f"off_release has shape {off.shape}, expected ({n_pop},): one per population")
    if m0 is None:
        m_init = off.copy()
    else:
        m_init = check_array("m0", m0, ndim=(0, 1))
        if m_init.ndim == 1 and m_init.shape != (n_pop,):
            raise ValueError(f"m0 has {m_init.shape[0]} values, expected 1 or {n_pop}")
        m_init = np.broadcast_to(m_init, (n_pop,)).astype(float)
    return rel, off, m_init


def _check_session_inputs(
    *,
    rci_steps: object,
    csi_steps: object,
    context: object,
    drive_na: object,
    max_rt_steps: int,
    release: object,
    sensory: SensoryStage,
    off_release: object,
    n_trials: object,
    params: WongWang2006 | None,
    dt_ms: float,
    noise: bool,
    s0: float,
    m0: object,
    record: bool,
    record_every_ms: float | None,
    n_threads: int,
) -> _SessionInputs:
    """Check the arguments of :func:`simulate_task_session` (same names) and normalise them."""
    params = _check_params(params)
    dt = _check_dt(dt_ms, params)
    check_range("s0", s0, 0.0, 1.0)
    check_bool("noise", noise)
    check_bool("record", record)
    if not isinstance(sensory, SensoryStage):
        raise TypeError(f"sensory must be a SensoryStage, got {type(sensory).__name__}")
    n_pop = sensory.n_populations
    shape = check_array("rci_steps", rci_steps, ndim=2, finite=False).shape
    counts = _check_n_trials(n_trials, *shape)
    valid = np.arange(shape[1]) < counts[:, None]
    rci = _check_trial_table("rci_steps", rci_steps, shape, valid, integer=True)
    csi = _check_trial_table("csi_steps", csi_steps, shape, valid, integer=True)
    ctx = _check_trial_table("context", context, shape, valid, integer=True)
    drive = _check_trial_table("drive_na", drive_na, (*shape, n_pop), valid, integer=False)
    max_rt = check_int("max_rt_steps", max_rt_steps, low=1)
    rel, off, m_init = _check_session_release(release, off_release, m0, n_pop)
    check_range("rci_steps", rci, 0.0)
    check_range("csi_steps", csi, 0.0)
    check_range("context", ctx, 0, rel.shape[0] - 1)
    short = valid & (rci + csi < 1)
    if np.any(short):
        session, trial = (int(v[0]) for v in np.nonzero(short))
        raise ValueError(
            f"rci_steps + csi_steps is 0 at session {session}, trial {trial}; expected >= 1 step in every "
            "trial (a stimulus cannot start at the step of the previous response)"
        )
    rec_every = 0
    if record:
        rec_every = (
            1 if record_every_ms is None else _check_steps("record_every_ms", record_every_ms, dt, dt_ms)
        )
    return _SessionInputs(
        params=params,
        dt=dt,
        s0=float(s0),
        noise=bool(noise),
        rci=rci.astype(np.int64),
        csi=csi.astype(np.int64),
        context=ctx.astype(np.int64),
        drive=np.ascontiguousarray(drive),
        n_trials=counts,
        max_rt=max_rt,
        release=np.ascontiguousarray(rel),
        off=np.ascontiguousarray(off),
        m_init=m_init,
        sensory=sensory,
        rec_every=rec_every,
        n_threads=check_int("n_threads", n_threads, low=1),
    )


@dataclass(eq=False)
class _SessionResults:
    """Per-trial outputs of every session (filled by the blocks) and each block's recordings."""

    choice: np.ndarray  #: (batch, trial) int8
    cross: np.ndarray  #: (batch, trial) int64, -1: none
    onset: np.ndarray  #: (batch, trial) int64, -1: padding
    end: np.ndarray  #: (batch, trial) int64, -1: padding
    n_end: np.ndarray  #: (batch,) int64
    rec_r: list[np.ndarray | None]  #: per block (2, nb, n_rec_block)
    rec_m: list[np.ndarray | None]  #: per block (P, nb, n_rec_block)

    @classmethod
    def empty(cls, batch: int, width: int, n_blocks: int) -> _SessionResults:
        """Zeroed outputs (choice 0, steps -1)."""
        shape = (batch, width)
        return cls(
            choice=np.zeros(shape, dtype=np.int8),
            cross=np.full(shape, -1, dtype=np.int64),
            onset=np.full(shape, -1, dtype=np.int64),
            end=np.full(shape, -1, dtype=np.int64),
            n_end=np.full(batch, -1, dtype=np.int64),
            rec_r=[None] * n_blocks,
            rec_m=[None] * n_blocks,
        )


def _grow(arr: np.ndarray, size: int) -> np.ndarray:
    """`arr` with its last axis grown to `size` (old values kept, the rest zero)."""
    new = np.zeros((*arr.shape[:-1], size))
    new[..., : arr.shape[-1]] = arr
    return new


def _run_session_block(
    k: int,
    block: int,
    inp: _SessionInputs,
    res: _SessionResults,
    dp: _kernel.DecisionCoefficients,
    sens: _kernel.SensoryArgs,
    rngs: list[np.random.Generator],
    key: int,
) -> None:
    """Run block `k` of sessions (``block`` per block) to the end of its longest session; `rngs`: numpy's
    per-session streams (``_NUMPY_NOISE``), else `key`: the in-kernel streams' key."""
    b0 = k * block
    b1 = min(inp.batch, b0 + block)
    nb = b1 - b0
    n_pop = inp.sensory.n_populations
    tab = _kernel.SessionTrials(
        inp.rci[b0:b1],
        inp.csi[b0:b1],
        inp.context[b0:b1],
        inp.drive[b0:b1],
        inp.n_trials[b0:b1],
        inp.release,
        inp.off,
        inp.max_rt,
    )
    cur = np.zeros((2 + 2 * n_pop, nb))
    cur[2 + n_pop :] = inp.off[:, None]  # the session starts in the first trial's RCI: no cue
    mode = _noise_mode(inp.noise)
    g = _rng.stream_states(key, b0, nb) if mode == _kernel.NOISE_KERNEL else np.zeros((4, 0), dtype=np.uint64)
    state = _kernel.BlockState(
        np.full((2, nb), inp.s0), np.zeros((2, nb)), np.repeat(inp.m_init[:, None], nb, axis=1), cur, g
    )
    ev = _kernel.SessionEvents(
        np.zeros(nb, dtype=np.int64),
        np.full(nb, _kernel.PHASE_RCI, dtype=np.int64),
        np.zeros(nb, dtype=np.int64),
        inp.rci[b0:b1, 0].copy(),
    )
    upper = int(inp.upper_steps()[b0:b1].max())  # no session of the block runs past this step
    chunk = max(_CHUNK, min(_SESSION_CHUNK_MAX, _SESSION_CHUNK_WORK // nb))
    every = inp.rec_every
    cap_max = -(-(upper + 1) // every) if every else 0
    cap = min(cap_max, -(-min(4 * chunk, upper + 1) // every)) if every else 0
    rec_r, rec_m = np.zeros((2, nb, cap)), np.zeros((n_pop, nb, cap))
    xi = np.zeros((nb, 2 * chunk) if mode == _kernel.NOISE_GIVEN else (1, 2))
    n0, running = 0, nb
    while running:
        n1 = n0 + chunk
        if every:
            need = -(-min(n1, upper + 1) // every)
            if need > cap:
                cap = min(cap_max, max(need, 2 * cap))
                rec_r, rec_m = _grow(rec_r, cap), _grow(rec_m, cap)
        out = _kernel.SessionOutput(
            res.choice[b0:b1],
            res.cross[b0:b1],
            res.onset[b0:b1],
            res.end[b0:b1],
            res.n_end[b0:b1],
            every,
            rec_r,
            rec_m,
        )
        if mode == _kernel.NOISE_GIVEN:  # each running session's own stream, in step order
            for i in np.flatnonzero(ev.phase != _kernel.PHASE_DONE):
                rngs[b0 + i].standard_normal(out=xi[i])
        running = _kernel.run_session_block(n0, n1, dp, sens, tab, state, ev, out, mode, xi)
        n0 = n1
    if every:
        n_rec = -(-int(res.n_end[b0:b1].max()) // every)
        res.rec_r[k], res.rec_m[k] = rec_r[..., :n_rec], rec_m[..., :n_rec]


def _run_session_blocks(inp: _SessionInputs, res: _SessionResults, seed: np.random.SeedSequence) -> None:
    """Run every block of sessions, on ``inp.n_threads`` threads over blocks."""
    dp = _decision_coefficients(inp.params, inp.dt, inp.s0)
    sens = _sensory_args(inp.sensory, inp.dt)
    block = min(_BLOCK, inp.batch)
    n_blocks = -(-inp.batch // block)
    # session k's noise: in-kernel stream k of the seed's key, or (_NUMPY_NOISE) child k spawned from the
    # seeded Generator; either way it depends on the seed and k only (not on the blocks, the threads or
    # when the other sessions end)
    mode = _noise_mode(inp.noise)
    rngs = np.random.default_rng(seed).spawn(inp.batch) if mode == _kernel.NOISE_GIVEN else []
    key = _rng.stream_key(seed) if mode == _kernel.NOISE_KERNEL else 0
    workers = min(inp.n_threads, n_blocks)
    if workers == 1:
        for k in range(n_blocks):
            _run_session_block(k, block, inp, res, dp, sens, rngs, key)
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:  # kernel and noise draws release the GIL
        futures = [
            pool.submit(_run_session_block, k, block, inp, res, dp, sens, rngs, key) for k in range(n_blocks)
        ]
        for fut in futures:
            fut.result()


def _session_traces(inp: _SessionInputs, res: _SessionResults) -> tuple[np.ndarray, np.ndarray]:
    """Recordings of all blocks as (2, batch, n_rec) and (P, batch, n_rec); NaN after each session's end."""
    n_rec = max(r.shape[-1] for r in res.rec_r)
    pad = [np.pad(r, ((0, 0), (0, 0), (0, n_rec - r.shape[-1])), constant_values=np.nan) for r in res.rec_r]
    rec_r = np.concatenate(pad, axis=1)
    pad = [np.pad(r, ((0, 0), (0, 0), (0, n_rec - r.shape[-1])), constant_values=np.nan) for r in res.rec_m]
    rec_m = np.concatenate(pad, axis=1)
    after = np.arange(n_rec)[None, :] * inp.rec_every >= res.n_end[:, None]  # (batch, n_rec)
    rec_r[:, after] = np.nan
    rec_m[:, after] = np.nan
    return rec_r, rec_m


def _session_dataset(inp: _SessionInputs, res: _SessionResults, seed: object) -> xr.Dataset:
    """Per-trial results, the session lengths and (with recording) the traces as a labelled Dataset."""
    dt = inp.dt
    dims = ("session", "trial")

    def ms(steps: np.ndarray) -> np.ndarray:
        return np.where(steps >= 0, steps * dt, np.nan)

    sensory = inp.sensory
    ds = xr.Dataset(
        {
            "choice": (dims, res.choice, {"units": "1", "long_name": "choice (1 or 2; 0 = no response)"}),
            "rt": (dims, ms(res.cross), {"units": "ms", "long_name": "reaction time from stimulus onset"}),
            "stim_onset_step": (
                dims,
                res.onset,
                {"units": "1", "long_name": "stimulus-onset step on the session's axis (-1 = padding)"},
            ),
            "stim_onset_ms": (dims, ms(res.onset), {"units": "ms", "long_name": "stimulus onset"}),
            "response_ms": (
                dims,
                ms(res.end),
                {
                    "units": "ms",
                    "long_name": "end of the stimulus and the cue: the response, else the deadline",
                },
            ),
            "duration_ms": (
                "session",
                res.n_end * dt,
                {"units": "ms", "long_name": "session length (end of its last trial)"},
            ),
            "n_trials": ("session", inp.n_trials, {"units": "1", "long_name": "trials in the session"}),
            "release": (
                ("context", "population"),
                inp.release,
                {"units": "1", "long_name": "modulator release while the context's cue is on"},
            ),
            "off_release": (
                "population",
                inp.off,
                {"units": "1", "long_name": "modulator release during the response-cue interval"},
            ),
        },
        coords={
            "session": ("session", np.arange(inp.batch), {"units": "1", "long_name": "session"}),
            "trial": ("trial", np.arange(inp.rci.shape[1]), {"units": "1", "long_name": "trial"}),
            "context": ("context", np.arange(inp.release.shape[0]), {"units": "1", "long_name": "context"}),
            "population": (
                "population",
                list(sensory.populations),
                {"units": "1", "long_name": "sensory population"},
            ),
        },
    )
    if inp.rec_every:
        rec_r, rec_m = _session_traces(inp, res)
        every_ms = inp.rec_every * dt
        for name, row, long_name in (("r1", 0, "population 1"), ("r2", 1, "population 2")):
            ds[name] = (
                ("session", "time"),
                rec_r[row],
                {"units": "Hz", "long_name": f"firing rate of decision {long_name}"},
            )
        ds = _add_modulator_traces(ds, sensory, rec_m)
        ds = ds.assign_coords(
            time=(
                "time",
                np.arange(rec_r.shape[-1]) * every_ms,
                {"units": "ms", "long_name": "time in the session"},
            )
        )
    ds.attrs.update(_provenance(inp.params, dt, inp.noise, inp.s0, seed))
    ds.attrs.update(
        sensory_json=sensory.to_json(),
        max_rt_ms=inp.max_rt * dt,
        record_every_ms=inp.rec_every * dt,
    )
    return ds


def simulate_task_session(
    *,
    rci_steps: np.ndarray,
    csi_steps: np.ndarray,
    context: np.ndarray,
    drive_na: np.ndarray,
    max_rt_steps: int,
    release: np.ndarray,
    sensory: SensoryStage,
    off_release: np.ndarray | None = None,
    n_trials: np.ndarray | None = None,
    params: WongWang2006 | None = None,
    dt_ms: float = 0.5,
    noise: bool = True,
    s0: float = 0.1,
    m0: float | np.ndarray | None = None,
    seed: int | np.random.SeedSequence | None = None,
    record: bool = False,
    record_every_ms: float | None = None,
    n_threads: int = 1,
) -> xr.Dataset:
    """Run sessions of cued trials in closed loop: each trial ends at the model's own response.

    Trial ``j`` of a session: the response-cue interval (``rci_steps``: no cue, release `off_release`, no
    stimulus) from the end of trial ``j - 1`` (from step 0 for the first trial), then the cue
    (``csi_steps``: release ``release[context]``, no stimulus), then the stimulus (drive ``drive_na``) from
    its onset until the response or the deadline ``max_rt_steps`` after the onset; then trial ``j + 1``'s
    RCI begins. The equations per step are those of :func:`simulate_circuit` (module docstring) with no
    direct input; ``S_1, S_2`` are reset to `s0` at every stimulus onset, the noise and the modulators
    run on. The response rule is the same too: the first step ``t_n`` at or after the onset at which
    ``r_1`` or ``r_2`` is at or above the threshold (choice: the larger rate), ``RT = t_n - onset``. The
    rates at ``t_n`` saw the stimulus; from ``t_n`` on the inputs are the RCI's: the modulators relax
    toward `off_release` over ``[t_n, t_n + rci)`` and the drive is 0 from ``t_{n+1}``. No crossing
    before the deadline ``onset + max_rt``: choice 0, RT NaN, and the RCI's inputs start at the
    deadline (the trial lasts exactly ``max_rt_steps`` after the onset).

    Parameters
    ----------
    rci_steps, csi_steps
        ``(session, trial)`` response-cue and cue-stimulus intervals in steps of `dt_ms` (whole numbers
        >= 0, with ``rci + csi >= 1`` in every trial).
    context
        ``(session, trial)`` row of `release` that each trial's cue sets (0 <= context < len(release)).
    drive_na
        ``(session, trial, P)`` sensory drive (nA) during each stimulus, one per population of `sensory`;
        0 outside the stimulus.
    max_rt_steps
        The deadline in steps after stimulus onset (>= 1).
    release
        ``(context, P)`` release of each population while a context's cue is on.
    sensory
        The sensory stage (:class:`SensoryStage`) with ``P`` populations.
    off_release
        ``(P,)`` release during the response-cue interval; default the mean of the rows of `release`.
    n_trials
        ``(session,)`` number of trials of each session (1 to the width of the tables); later entries of
        the tables are padding and may be anything (NaN included). Default: every session has them all.
    params
        Decision-circuit parameters; default :class:`~neuromod.rate.params.WongWang2006`.
    dt_ms
        Step (ms), ``0 < dt_ms <= MAX_DT_FRACTION * params.tau_ampa_ms``.
    noise
        Whether to include the OU input noise.
    s0
        Initial value of ``S_1, S_2`` and their value at every stimulus onset (in [0, 1]).
    m0
        Initial modulator level(s): scalar or one per population; default `off_release`.
    seed
        Seed of the noise: session ``k`` draws from its own stream, keyed by the seed and ``k``, in step
        order; same seed, same result, whatever `n_threads`. Session ``k`` draws the noise that
        :func:`simulate_circuit` draws for its session ``k`` with the same seed.
    record
        Also return ``r1, r2`` (session, time) and ``modulator`` and ``gain`` (or ``shift``) over
        (population, session, time), on each session's own time axis (it depends on the responses), NaN
        after the end of the session's last trial.
    record_every_ms
        Recording interval (ms, a multiple of `dt_ms`); default every step.
    n_threads
        Threads over blocks of 512 sessions; results do not depend on it.

    Returns
    -------
    xarray.Dataset
        Over (session, trial): ``choice`` (int8: 1, 2, 0 = none or padding), ``rt`` (ms, NaN = none),
        ``stim_onset_step`` (int64, -1 = padding), ``stim_onset_ms`` and ``response_ms`` (the end of the
        trial: response or deadline; ms on the session's axis, NaN = padding); ``duration_ms`` (session:
        the end of its last trial), ``n_trials``, ``release``, ``off_release``; traces with `record`.
        Attrs: ``params_json``, ``sensory_json``, ``dt_ms``, ``noise``, ``s0``, ``seed``, ``max_rt_ms``,
        ``record_every_ms`` (0: none).

    Raises
    ------
    ValueError, TypeError
        On bad parameters, shapes, intervals or contexts, before simulating.

    Examples
    --------
    >>> release = np.array([[1.0, 1.0, 0.1, 0.1], [0.1, 0.1, 1.0, 1.0]])  # cue a, cue b
    >>> ds = simulate_task_session(
    ...     rci_steps=[[600, 600]], csi_steps=[[400, 400]], context=[[0, 1]], max_rt_steps=4000,
    ...     drive_na=[[[0.13, 0.07, 0.1, 0.1], [0.1, 0.1, 0.07, 0.13]]],  # a+ wins, then b- wins
    ...     release=release, sensory=SensoryStage(), seed=1)
    >>> ds.choice.values.tolist(), bool(np.all(ds.rt < 2000.0))
    ([[1, 2]], True)
    >>> float(ds.stim_onset_ms[0, 1] - ds.response_ms[0, 0])  # RCI + CSI after the first response
    500.0
    """
    inp = _check_session_inputs(
        rci_steps=rci_steps,
        csi_steps=csi_steps,
        context=context,
        drive_na=drive_na,
        max_rt_steps=max_rt_steps,
        release=release,
        sensory=sensory,
        off_release=off_release,
        n_trials=n_trials,
        params=params,
        dt_ms=dt_ms,
        noise=noise,
        s0=s0,
        m0=m0,
        record=record,
        record_every_ms=record_every_ms,
        n_threads=n_threads,
    )
    seq = seed_sequence(seed)  # a copy: the caller's SeedSequence is not advanced
    block = min(_BLOCK, inp.batch)
    res = _SessionResults.empty(inp.batch, inp.rci.shape[1], -(-inp.batch // block))
    _run_session_blocks(inp, res, seq)
    return _session_dataset(inp, res, seed)
