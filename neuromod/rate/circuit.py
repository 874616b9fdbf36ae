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

``xi`` are standard normals from one ``numpy.random.Generator`` seeded with ``seed``. The time loop
is a compiled numba kernel (:mod:`neuromod.rate._kernel`) working on preallocated buffers.

Response rule: the reaction time of a trial is the time from its onset to the first step
``t_n >= onset`` (and ``< timeout``) at which either rate ``r_i = H(x_i)`` is at or above the
threshold; the choice is the population with the larger rate at that step. No crossing before the
timeout: choice 0 and RT NaN.
"""

from __future__ import annotations

import dataclasses
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import xarray as xr

from neuromod._checks import check_array, check_int, check_positive, check_range
from neuromod.rate import _kernel
from neuromod.rate.params import WongWang2006
from neuromod.rate.transfer import Modulation, ThresholdLinear, Transfer

__all__ = [
    "MAX_DT_FRACTION",
    "SensoryStage",
    "simulate_circuit",
    "simulate_decision",
]

#: dt must not exceed this fraction of the fastest time constant (tau_AMPA). With k = dt/tau the
#: Euler-Maruyama OU update is stable for k < 2 and its stationary variance is sigma^2/(2 - k)
#: instead of sigma^2/2: k <= 1/2 keeps it within 34 % (the published dt = 0.5 ms: k = 1/4, 14 %).
MAX_DT_FRACTION = 0.5

_BLOCK = 512  # conditions per kernel block (working set in L1/L2)
_CHUNK = 512  # steps of noise drawn per block and call
_BIG = np.iinfo(np.int64).max


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


def _with_sentinel(steps: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(
        np.concatenate([steps, np.full((steps.shape[0], 1), _BIG, dtype=np.int64)], axis=1)
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
        Seed of the one ``numpy.random.Generator`` drawing the noise.
    record
        Also return ``s1, s2, r1, r2`` (and ``modulator`` with a sensory stage) over ``time``.
    record_every_ms
        Recording interval (ms, a multiple of `dt_ms`); default every step.
    n_threads
        Threads over blocks of 512 sessions (the compiled kernel and the noise draws release the
        GIL); default 1. More helps on idle cores and hurts on busy shared ones. Results do not
        depend on it (each block has its own noise stream spawned from the seeded Generator).

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
    params = _check_params(params)
    dt = _check_dt(dt_ms, params)
    duration = check_positive("duration_ms", duration_ms)
    n_steps = round(duration / dt)
    if n_steps < 1 or abs(n_steps * dt - duration) > 1e-6 * dt:
        raise ValueError(f"duration_ms={duration_ms!r} is not a positive multiple of dt_ms={dt_ms!r}")
    check_range("s0", s0, 0.0, 1.0)
    if not isinstance(noise, (bool, np.bool_)):
        raise TypeError(f"noise must be a bool, got {noise!r}")

    onset = check_array("onset_ms", onset_ms, ndim=2, finite=False, nonempty=False)
    onset = _padded("onset_ms", onset, onset.shape[0])
    batch, n_trials = onset.shape
    if batch == 0 or n_trials == 0:
        raise ValueError(f"onset_ms must have at least one session and trial, got {onset.shape}")
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

    n_pop = 0 if sensory is None else sensory.n_populations
    if sensory is None:
        if drive_na is not None or release is not None:
            raise ValueError("drive_na and release need a sensory stage (sensory=SensoryStage(...))")
        drive = np.zeros((batch, n_changes, 0))
        rel = np.zeros((batch, n_changes, 0))
    else:
        if not isinstance(sensory, SensoryStage):
            raise TypeError(f"sensory must be a SensoryStage, got {type(sensory).__name__}")
        if drive_na is None or release is None:
            raise ValueError("a sensory stage needs both drive_na and release")
        drive = check_array("drive_na", drive_na, ndim=3)
        rel = check_array("release", release, ndim=3)
        for name, arr in (("drive_na", drive), ("release", rel)):
            if arr.shape != (batch, n_changes, n_pop):
                raise ValueError(f"{name} has shape {arr.shape}, expected ({batch}, {n_changes}, {n_pop})")
    m_init = check_array("m0", m0, ndim=(0, 1))
    if m_init.ndim == 1 and m_init.shape != (n_pop,):
        raise ValueError(f"m0 has {m_init.shape[0]} values, expected 1 or {n_pop}")

    in_steps = _to_steps("input_ms", inputs_t, dt, n_steps)
    if np.any(np.diff(inputs_t, axis=1) <= 0):
        raise ValueError("input_ms must increase strictly along each session")
    on_steps = _to_steps("onset_ms", onset, dt, n_steps)
    if np.any(np.diff(onset, axis=1) <= 0):
        raise ValueError("onset_ms must increase strictly along each session")
    if timeout_ms is None:
        nxt = np.concatenate([onset[:, 1:], np.full((batch, 1), np.nan)], axis=1)
        timeout = np.where(np.isnan(nxt), n_steps * dt, nxt)
        timeout[np.isnan(onset)] = np.nan
    else:
        timeout = _padded("timeout_ms", timeout_ms, batch)
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
    reset = _padded("reset_ms", reset_ms, batch)
    rs_steps = _to_steps("reset_ms", reset, dt, n_steps)
    if reset.shape[1] > 1 and np.any(np.diff(reset, axis=1) <= 0):
        raise ValueError("reset_ms must increase strictly along each session")
    rec_every = 0
    if record:
        every = dt if record_every_ms is None else check_positive("record_every_ms", record_every_ms)
        rec_every = round(every / dt)
        if rec_every < 1 or abs(rec_every * dt - every) > 1e-6 * dt:
            raise ValueError(
                f"record_every_ms={record_every_ms!r} is not a positive multiple of dt_ms={dt_ms!r}"
            )
    n_threads = check_int("n_threads", n_threads, low=1)
    rng = np.random.default_rng(seed)

    # ---- buffers (batch last)
    in_val = np.ascontiguousarray(np.concatenate([direct, drive, rel], axis=2))
    in_val = np.concatenate([in_val, np.zeros((batch, 1, in_val.shape[2]))], axis=1)
    in_step = _with_sentinel(in_steps)
    rs_step = _with_sentinel(rs_steps)
    on_step = _with_sentinel(on_steps)
    to_step = _with_sentinel(to_steps)
    block = min(_BLOCK, batch)
    n_blocks = -(-batch // block)
    # block-major state: (block index, variable, condition in block), each block C-contiguous
    state_s = np.full((n_blocks, 2, block), float(s0))
    state_x = np.zeros((n_blocks, 2, block))
    state_m = np.empty((n_blocks, n_pop, block))
    state_m[...] = m_init.reshape(-1, 1) if m_init.ndim else float(m_init)
    cur = np.zeros((n_blocks, 2 + 2 * n_pop, block))
    in_ptr = np.zeros(batch, dtype=np.int64)
    rs_ptr = np.zeros(batch, dtype=np.int64)
    tr_ptr = np.zeros(batch, dtype=np.int64)
    phase = np.zeros(batch, dtype=np.int64)
    detect = np.zeros(batch, dtype=np.int64)
    next_ev = np.minimum(np.minimum(in_step[:, 0], rs_step[:, 0]), on_step[:, 0])
    choice = np.zeros((batch, n_trials), dtype=np.int8)
    cross = np.full((batch, n_trials), -1, dtype=np.int64)
    n_rec = (n_steps + rec_every - 1) // rec_every if rec_every else 0
    rec_s = np.zeros((2, batch, n_rec))
    rec_r = np.zeros((2, batch, n_rec))
    rec_m = np.zeros((n_pop, batch, n_rec))

    p = params
    noise_decay = dt / p.tau_ampa_ms
    wp = np.array(
        [
            p.a_hz_per_na,
            p.b_hz,
            p.d_s,
            p.gamma / 1000.0,
            1.0 / p.tau_s_ms,
            p.j11_na,
            p.j12_na,
            p.i0_na,
            p.j_ext_na_per_hz,
            p.threshold_hz,
            float(s0),
            noise_decay,
            p.sigma_noise_na * np.sqrt(noise_decay),
            dt,
        ]
    )
    if sensory is None:
        tcode, tparams, mcode = 0, np.zeros(3), 0
        mparams, mdecay, weights = np.zeros(3), np.zeros(0), np.zeros((2, 0))
    else:
        tcode = type(sensory.transfer).code
        tparams = np.array(sensory.transfer.kernel_params(), dtype=float)
        mod = sensory.modulation
        mcode = mod.mode_code
        mparams = np.array([mod.gain_at_zero, mod.gain_per_level, mod.shift_na_per_level])
        tau = np.broadcast_to(np.asarray(sensory.tau_ms, dtype=float), (n_pop,))
        mdecay = np.where(tau > 0, np.exp(-dt / np.where(tau > 0, tau, 1.0)), 0.0)
        weights = np.ascontiguousarray(np.asarray(sensory.weights, dtype=float))

    chunk = min(_CHUNK, n_steps)
    # one child stream per block, spawned from the one seeded Generator: a block's noise does not
    # depend on the other blocks or on how blocks are spread over threads (bit-identical results)
    rngs = rng.spawn(n_blocks) if noise else [rng] * n_blocks

    def run(blocks: range) -> None:
        xi_buf = np.empty(chunk * 2 * block if noise else 2)
        scr = np.empty((6, block))
        for k in blocks:
            b0 = k * block
            b1 = min(batch, b0 + block)
            nb = b1 - b0
            for n0 in range(0, n_steps, chunk):
                n1 = min(n_steps, n0 + chunk)
                if noise:
                    xi = xi_buf[: (n1 - n0) * 2 * nb].reshape(n1 - n0, 2, nb)
                    rngs[k].standard_normal(out=xi)
                else:
                    xi = xi_buf.reshape(1, 2, 1)
                _kernel.run_block(
                    nb,
                    n0,
                    n1,
                    wp,
                    int(noise),
                    tcode,
                    tparams,
                    mcode,
                    mparams,
                    mdecay,
                    weights,
                    state_s[k],
                    state_x[k],
                    state_m[k],
                    cur[k],
                    in_step[b0:b1],
                    in_val[b0:b1],
                    in_ptr[b0:b1],
                    rs_step[b0:b1],
                    rs_ptr[b0:b1],
                    on_step[b0:b1],
                    to_step[b0:b1],
                    tr_ptr[b0:b1],
                    phase[b0:b1],
                    detect[b0:b1],
                    next_ev[b0:b1],
                    choice[b0:b1],
                    cross[b0:b1],
                    xi,
                    rec_every,
                    rec_s[:, b0:b1],
                    rec_r[:, b0:b1],
                    rec_m[:, b0:b1],
                    scr,
                )

    workers = min(n_threads, n_blocks)
    if workers == 1:
        run(range(n_blocks))
    else:  # the kernel releases the GIL (nogil) and so does Generator.standard_normal
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(run, range(w, n_blocks, workers)) for w in range(workers)]
            for fut in futures:
                fut.result()

    rt = np.where(cross >= 0, cross * dt, np.nan)
    ds = xr.Dataset(
        {
            "choice": (
                ("session", "trial"),
                choice,
                {"units": "1", "long_name": "choice (1 or 2; 0 = no response)"},
            ),
            "rt": (
                ("session", "trial"),
                rt,
                {"units": "ms", "long_name": "reaction time from stimulus onset"},
            ),
            "onset": (("session", "trial"), onset, {"units": "ms", "long_name": "trial onset"}),
        },
        coords={
            "session": ("session", np.arange(batch), {"units": "1", "long_name": "session"}),
            "trial": ("trial", np.arange(n_trials), {"units": "1", "long_name": "trial"}),
        },
    )
    if record:
        ds = _add_traces(ds, rec_s, rec_r, rec_every * dt, ("session",))
        if n_pop:
            ds["modulator"] = (
                ("population", "session", "time"),
                rec_m,
                {"units": "1", "long_name": "modulator level"},
            )
            mod = sensory.modulation
            if mod.mode == "threshold":
                ds["shift"] = (
                    ("population", "session", "time"),
                    mod.shift_na(rec_m),
                    {"units": "nA", "long_name": "threshold shift dtheta(m)"},
                )
            else:
                ds["gain"] = (
                    ("population", "session", "time"),
                    mod.gain(rec_m),
                    {"units": "1", "long_name": "gain g(m)"},
                )
            ds = ds.assign_coords(
                population=(
                    "population",
                    list(sensory.populations),
                    {"units": "1", "long_name": "sensory population"},
                )
            )
    ds.attrs.update(_provenance(params, dt, noise, s0, seed))
    ds.attrs["sensory_json"] = "null" if sensory is None else sensory.to_json()
    return ds


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
    duration_ms: float = 2000.0,
    noise: bool = True,
    s0: float = 0.1,
    seed: int | np.random.SeedSequence | None = None,
    record: bool = False,
) -> xr.Dataset:
    """Run the plain Wong & Wang (2006) random-dot task, batched over coherences and trials.

    The stimulus ``I_{1,2} = J_ext mu0 (1 +/- c/100)`` is on from 0 ms to `duration_ms` (the
    timeout); every trial starts at ``S_1 = S_2 = s0`` with zero noise current.

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
    duration_ms
        Stimulus duration = response timeout (ms), a multiple of `dt_ms`.
    noise
        Include the OU input noise (False: deterministic).
    s0
        Initial ``S_1 = S_2`` (in [0, 1]).
    seed
        Seed of the one ``numpy.random.Generator``; same seed, same result.
    record
        Also return ``s1``, ``s2``, ``r1``, ``r2`` over ``time`` (every step).

    Returns
    -------
    xarray.Dataset
        ``choice`` (int8: 1, 2, or 0 = no response) and ``rt`` (ms from stimulus onset, NaN when
        none) with dims ``(coherence, trial)`` for an array `coherence_pct`, ``(trial,)`` with a
        scalar ``coherence`` coordinate for a scalar; traces add a ``time`` dim (ms).
        ``attrs["params_json"]`` holds the resolved parameters.

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
    _check_dt(dt_ms, params)
    scalar = coh.ndim == 0
    coh1 = coh.reshape(-1)
    n_cond = coh1.size
    batch = n_cond * n_trials
    base = params.j_ext_na_per_hz * params.mu0_hz
    per_cond = np.stack([base * (1.0 + coh1 / 100.0), base * (1.0 - coh1 / 100.0)], axis=1)
    direct = np.repeat(per_cond, n_trials, axis=0).reshape(batch, 1, 2)
    out = simulate_circuit(
        duration_ms=duration_ms,
        onset_ms=np.zeros((batch, 1)),
        direct_na=direct,
        params=params,
        dt_ms=dt_ms,
        noise=noise,
        s0=s0,
        seed=seed,
        record=record,
    )
    shape = (n_cond, n_trials)
    ds = xr.Dataset(
        {
            "choice": (("coherence", "trial"), out.choice.values.reshape(shape), out.choice.attrs),
            "rt": (("coherence", "trial"), out.rt.values.reshape(shape), out.rt.attrs),
        },
        coords={
            "coherence": ("coherence", coh1, {"units": "%", "long_name": "motion coherence"}),
            "trial": ("trial", np.arange(n_trials), {"units": "1", "long_name": "trial"}),
        },
    )
    if record:
        n_rec = out.sizes["time"]
        rec_s = np.stack([out.s1.values, out.s2.values])
        rec_r = np.stack([out.r1.values, out.r2.values])
        ds = _add_traces(
            ds,
            rec_s,
            rec_r,
            float(out.time[1] - out.time[0]) if n_rec > 1 else dt_ms,
            ("coherence", "trial"),
            shape,
        )
    ds.attrs.update(_provenance(params, float(dt_ms), noise, s0, seed))
    ds.attrs["duration_ms"] = float(duration_ms)
    if scalar:
        ds = ds.isel(coherence=0)
    return ds
