"""Compiled (numba) time loop of the batched decision circuit.

Layout: the caller splits the batch into blocks of conditions; every per-condition state array of a
block is C-contiguous with the condition as its last axis, so a block's working set stays in cache
and the inner loops over conditions vectorise (AVX2/AVX-512). The loops start at 0 (no
negative-index wraparound branch) and each writes one or two arrays and reads few, so LLVM needs
few runtime alias checks and vectorises all of them. Nothing is allocated inside the time loop;
the caller owns every buffer. Events (input changes, resets, trial onsets and timeouts) are handled
in a scalar pass only at steps where some condition of the block has one.

Interface: :func:`run_block` takes named tuples (numba passes them as plain tuples, the fields are
resolved at compile time): the decision coefficients (:class:`DecisionCoefficients`, scalars), the
sensory stage (:class:`SensoryArgs`), and the block's state, event tables and outputs
(:class:`BlockState`, :class:`BlockEvents`, :class:`BlockOutput`, arrays updated in place). The
integer codes of the transfer functions and modulation modes are the ``TRANSFER_*`` and ``MODE_*``
constants below (the ``code`` of each :mod:`neuromod.rate.transfer` class and the index in
``MODES``).

Structure: the equations are ``inline="always"`` helpers, so the compiled loop is the one a single
function would give. Handing an array to a helper, like taking a view of one, costs two atomic
reference-count updates per call (numba's inliner copies the argument), measurably slower when
done every step (about 2 % with four sensory populations). So the per-step loops over conditions
(sensory stage, decision rates and update, noise, modulators) stay in :func:`run_block`, with
views taken before the time loop where possible and the modulation-mode branches outside the
loops; they call scalar helpers (:func:`_gain`, :func:`_decision_y`, :func:`_rate_pair`,
:func:`_gating_step`, :func:`_noise_step`, :func:`_modulator_step`). Helpers that take arrays run
only at some steps: the events pass, the threshold crossings and the recording.

Closed-loop sessions (:func:`run_session_block`, behind
:func:`neuromod.rate.circuit.simulate_task_session`): a session's events follow from its own
responses (a trial ends at the threshold crossing, the next trial's intervals count from there), so
they are scheduled as the session runs (:class:`SessionTrials`, :class:`SessionEvents`,
:class:`SessionOutput`, :func:`_session_advance`). The equations are the same scalar helpers in the
same order as in :func:`run_block`; the loop runs sessions outer and steps inner, a session's state
in registers, because the common case is one session per call: there the condition-vectorised
loops of :func:`run_block` cost about 150 ns per step in fixed per-loop overhead, the scalar loop
about 45 ns (measured with four sensory populations, noise off).

Noise: with ``NOISE_KERNEL`` the kernels draw the standard normals themselves, two per condition and
step, from each condition's xoshiro256++ stream in ``BlockState.g`` (ziggurat method,
:mod:`neuromod.rate._rng`): :func:`run_block` for the whole block at once (vectorised), the closed-loop
kernel per session (scalar); both give a condition the same numbers. ``NOISE_GIVEN`` reads normals
handed in by the caller (numpy's Generator, the earlier path kept as a benchmark baseline).

``exp`` has no vectorised libm here (numba without SVML calls scalar ``exp``), so ``expm1`` is
written out branch-free: Cody-Waite range reduction ``x = k ln2 + r`` (``|r| <= ln2/2``), a
degree-10 near-minimax polynomial for ``expm1(r) / r`` (fit error 2e-17), ``2**k`` assembled from
the low bits of the rounding constant (a bit cast, no float->int conversion), then
``expm1(x) = 2**k expm1(r) + (2**k - 1)``. Arguments are clamped to [-708, 708]. Measured
relative error against ``numpy.expm1``: <= 2.3e-16 (tests), accurate near 0 where
``1 - exp(-z)`` would cancel.
"""

from __future__ import annotations

import os
from typing import NamedTuple

import numba
import numpy as np

from neuromod.rate import _rng

_INVLN2 = 1.4426950408889634
_LN2HI = 6.93147180369123816490e-01
_LN2LO = 1.90821492927058770002e-10
_SHIFT = 6755399441055744.0  # 1.5 * 2**52: adding it rounds to an integer kept in the low bits
_EXP_BIAS = np.int64(1023) << np.int64(52)
_CLAMP = 708.0
_CACHE = os.environ.get("NEUROMOD_NUMBA_CACHE", "1") != "0"
_HALF_CLAMP = 350.0
_TINY = 1e-300  # stands in for y = 0 in H = y / (1 - exp(-d y)); d * 1e-300 is still normal

#: step sentinel: no (further) event
NEVER = int(np.iinfo(np.int64).max)

#: transfer-function codes (``Transfer.code``): threshold-linear, sigmoid, Abbott-Chance
TRANSFER_THRESHOLD_LINEAR = 0
TRANSFER_SIGMOID = 1
TRANSFER_ABBOTT_CHANCE = 2
#: modulation-mode codes (index in ``neuromod.rate.transfer.MODES``)
MODE_RESPONSE_GAIN = 0
MODE_INPUT_GAIN = 1
MODE_THRESHOLD = 2
#: noise codes (``noise_on`` of the kernels): none, normals handed in (``xi``), drawn in the kernel
NOISE_OFF = 0
NOISE_GIVEN = 1
NOISE_KERNEL = 2

# No fast-math flags, not even "contract": numba compiles for the host CPU, and contraction into fused
# multiply-adds happens only where the CPU has FMA, so results would differ between CPUs (measured: traces
# differ in the 13th digit with NUMBA_CPU_NAME=generic). Without it every kernel does the same IEEE operations
# on every x86-64 CPU (identical results, host vs generic); the kernels are 14-24 % slower (a fraction of a
# second of a task-switching run).
_JIT = {"nogil": True, "cache": _CACHE, "error_model": "numpy", "fastmath": False}

# expm1(r) = r P(r) on |r| <= ln2/2: P of degree 10, a Chebyshev (near-minimax) fit computed in
# 40-digit arithmetic (mpmath.chebyfit on [-1.0001 ln2/2, 1.0001 ln2/2]); fit error 1.8e-17, so the
# result is accurate to rounding (measured max relative error 2.2e-16). Highest degree first.
_C = (
    2.5105217004720745e-08,
    2.7626371065696354e-07,
    2.7557255400206422e-06,
    2.480150431378554e-05,
    0.00019841269874820627,
    0.001388888893251478,
    0.008333333333326136,
    0.041666666666573066,
    0.1666666666666667,
    0.5000000000000006,
    1.0,
)


@numba.njit(inline="always", **_JIT)
def _expm1(x: float) -> float:
    """``expm1(x)`` for one value, branch-free and vectorisable (see module docstring)."""
    return _expm1_core(min(max(x, -_CLAMP), _CLAMP))


@numba.njit(inline="always", **_JIT)
def _expm1_half(x: float) -> float:
    """``expm1`` clamped to [-350, 350], so that a product of two stays finite.

    Used for ``1 - exp(-z)`` in ``H``: beyond the clamp ``H`` is below 1e-150 Hz (z > 350) or
    ``exp(-z) < 1e-152`` is already lost to rounding (z < -350), so nothing changes.
    """
    return _expm1_core(min(max(x, -_HALF_CLAMP), _HALF_CLAMP))


@numba.njit(inline="always", **_JIT)
def _expm1_core(x: float) -> float:
    """``expm1(x)`` for ``|x| <= 708`` (no clamp)."""
    t = x * _INVLN2 + _SHIFT
    kf = t - _SHIFT
    r = (x - kf * _LN2HI) - kf * _LN2LO
    p = _C[0]
    p = p * r + _C[1]
    p = p * r + _C[2]
    p = p * r + _C[3]
    p = p * r + _C[4]
    p = p * r + _C[5]
    p = p * r + _C[6]
    p = p * r + _C[7]
    p = p * r + _C[8]
    p = p * r + _C[9]
    p = p * r + _C[10]
    q = p * r  # expm1(r)
    # 2**k from the low bits of t (k = round(x / ln2), |k| <= 1021)
    p2 = np.int64((np.float64(t).view(np.int64) << 52) + _EXP_BIAS).view(np.float64)
    return p2 * q + (p2 - 1.0)


@numba.njit(inline="always", **_JIT)
def _abbott_chance(y: float, d: float) -> float:
    """``H = y / (1 - exp(-d y))`` (Hz) for ``y = a x - b``.

    At the removable singularity ``y = 0`` (``H = 1/d``) it is evaluated at ``y = 1e-300``, where
    ``expm1`` is exact, so ``H`` is accurate to a few ulp everywhere (branch-free select).
    """
    y = y if y != 0.0 else _TINY
    return y / -_expm1(-d * y)


@numba.njit(**_JIT)
def expm1_array(x: np.ndarray) -> np.ndarray:
    """Vectorised ``expm1`` of a 1-D array (for tests)."""
    out = np.empty_like(x)
    for i in range(x.shape[0]):
        out[i] = _expm1(x[i])
    return out


@numba.njit(**_JIT)
def abbott_chance_array(y: np.ndarray, d: float) -> np.ndarray:
    """Kernel ``H`` for a 1-D array of ``y = a x - b`` (Hz) (for tests)."""
    out = np.empty_like(y)
    for i in range(y.shape[0]):
        out[i] = _abbott_chance(y[i], d)
    return out


@numba.njit(**_JIT)
def _transfer_inplace(code: int, tp: np.ndarray, x: np.ndarray, n: int) -> None:
    """``x[:n] <- phi(x[:n])`` for transfer ``code`` (``TRANSFER_*``) with ``tp = kernel_params()``."""
    if code == TRANSFER_THRESHOLD_LINEAR:
        for i in range(n):
            x[i] = tp[0] * max(x[i] - tp[1], 0.0)
    elif code == TRANSFER_SIGMOID:
        for i in range(n):
            x[i] = tp[0] / (2.0 + _expm1(-(x[i] - tp[1]) / tp[2]))
    else:
        for i in range(n):
            x[i] = _abbott_chance(tp[0] * x[i] - tp[1], tp[2])


class DecisionCoefficients(NamedTuple):
    """Coefficients of the decision populations, in the kernel's units (time in ms, rates in Hz).

    Built once per call by :func:`neuromod.rate.circuit.simulate_circuit`; numba passes it as a
    tuple of scalars (no array loads inside the time loop).
    """

    a: float  #: Abbott-Chance gain ``a`` (Hz/nA)
    b: float  #: Abbott-Chance offset ``b`` (Hz)
    d: float  #: Abbott-Chance curvature ``d`` (s)
    gamma: float  #: ``gamma / 1000`` (per ms and Hz)
    inv_tau_s: float  #: ``1 / tau_S`` (1/ms)
    j11: float  #: self-excitation (nA)
    j12: float  #: cross-inhibition (nA)
    i0: float  #: background current (nA)
    j_ext: float  #: external coupling of the sensory rates (nA/Hz)
    threshold: float  #: decision threshold on ``r_1, r_2`` (Hz)
    s0: float  #: value of ``S_1, S_2`` after a reset
    noise_decay: float  #: ``dt / tau_AMPA``
    noise_scale: float  #: ``sigma sqrt(dt / tau_AMPA)`` (nA)
    dt: float  #: step (ms)


class SensoryArgs(NamedTuple):
    """The sensory stage of a call (the same for every block); ``P = 0`` for none."""

    transfer_code: int  #: TRANSFER_* code of the transfer function
    transfer_params: np.ndarray  #: (3,) ``Transfer.kernel_params()``
    mode_code: int  #: MODE_* code of the modulation mode
    gain_at_zero: float  #: ``g(m) = gain_at_zero + gain_per_level m``
    gain_per_level: float
    shift_per_level: float  #: ``dtheta(m) = shift_per_level m`` (nA)
    decay: np.ndarray  #: (P,) ``exp(-dt / tau_p)``; 0 marks an instantaneous modulator (tau = 0)
    weights: np.ndarray  #: (2, P) decision-population weights


class BlockState(NamedTuple):
    """State of one block, condition last and C-contiguous (``nb_alloc >= nb`` columns)."""

    s: np.ndarray  #: (2, nb_alloc) NMDA gating ``S_1, S_2``
    x: np.ndarray  #: (2, nb_alloc) OU noise currents (nA)
    m: np.ndarray  #: (P, nb_alloc) modulator levels
    cur: np.ndarray  #: (2 + 2P, nb_alloc) current inputs: direct (2), drive (P), release (P)
    g: np.ndarray  #: (4, nb_alloc) uint64 xoshiro256++ state of each condition's noise (NOISE_KERNEL)


class BlockEvents(NamedTuple):
    """Event tables of one block, condition first; every step row ends with a ``NEVER`` sentinel."""

    in_step: np.ndarray  #: (nb, K + 1) steps of the input changes
    in_val: np.ndarray  #: (nb, K + 1, 2 + 2P) input values from each change on
    in_ptr: np.ndarray  #: (nb,) next input change
    rs_step: np.ndarray  #: (nb, R + 1) steps of the resets of ``S``
    rs_ptr: np.ndarray  #: (nb,) next reset
    on_step: np.ndarray  #: (nb, J + 1) trial onsets
    to_step: np.ndarray  #: (nb, J + 1) trial timeouts
    tr_ptr: np.ndarray  #: (nb,) current trial
    phase: np.ndarray  #: (nb,) 1 inside a response window, else 0
    detect: np.ndarray  #: (nb,) 1 while a window waits for its crossing, else 0
    next_ev: np.ndarray  #: (nb,) step of the next event of the condition


class BlockOutput(NamedTuple):
    """Results of one block (condition first; recordings condition second)."""

    choice: np.ndarray  #: (nb, J) int8 choice 1, 2 (0: none)
    cross: np.ndarray  #: (nb, J) crossing step relative to the onset (-1: none)
    rec_every: int  #: recording interval in steps (0: no recording)
    rec_s: np.ndarray  #: (2, nb, n_rec) ``S_1, S_2`` at the recorded steps
    rec_r: np.ndarray  #: (2, nb, n_rec) ``r_1, r_2`` (Hz)
    rec_m: np.ndarray  #: (P, nb, n_rec) modulator levels


@numba.njit(inline="always", **_JIT)
def _block_start(nb: int, ev: BlockEvents) -> tuple[int, int]:
    """The block's next event step and number of conditions waiting for a crossing."""
    block_next = NEVER
    n_detect = 0
    for i in range(nb):
        block_next = min(block_next, ev.next_ev[i])
        n_detect += ev.detect[i]
    return block_next, n_detect


@numba.njit(inline="always", **_JIT)
def _events_pass(
    n: int, nb: int, s0: float, n_detect: int, state: BlockState, ev: BlockEvents
) -> tuple[int, int]:
    """Apply the events at step ``n`` (input changes, resets, timeouts, onsets), scalar pass.

    Returns the next event step of the block and the updated number of detecting conditions.
    """
    cur = state.cur
    s_1 = state.s[0]
    s_2 = state.s[1]
    in_step = ev.in_step
    in_val = ev.in_val
    in_ptr = ev.in_ptr
    rs_step = ev.rs_step
    rs_ptr = ev.rs_ptr
    on_step = ev.on_step
    to_step = ev.to_step
    tr_ptr = ev.tr_ptr
    phase = ev.phase
    detect = ev.detect
    next_ev = ev.next_ev
    n_val = cur.shape[0]
    block_next = NEVER
    for i in range(nb):
        if next_ev[i] <= n:
            k = in_ptr[i]
            while in_step[i, k] <= n:
                for v in range(n_val):
                    cur[v, i] = in_val[i, k, v]
                k += 1
            in_ptr[i] = k
            k = rs_ptr[i]
            while rs_step[i, k] <= n:
                s_1[i] = s0
                s_2[i] = s0
                k += 1
            rs_ptr[i] = k
            j = tr_ptr[i]
            if phase[i] == 1 and to_step[i, j] <= n:
                n_detect -= detect[i]
                detect[i] = 0
                phase[i] = 0
                j += 1
                tr_ptr[i] = j
            if phase[i] == 0 and on_step[i, j] <= n:
                phase[i] = 1
                detect[i] = 1
                n_detect += 1
            nxt = min(in_step[i, in_ptr[i]], rs_step[i, rs_ptr[i]])
            nxt = min(nxt, to_step[i, j] if phase[i] == 1 else on_step[i, j])
            next_ev[i] = nxt
        block_next = min(block_next, next_ev[i])
    return block_next, n_detect


@numba.njit(inline="always", **_JIT)
def _gain(sens: SensoryArgs, m: float) -> float:
    """Gain ``g(m) = gain_at_zero + gain_per_level m`` of a sensory population."""
    return sens.gain_at_zero + sens.gain_per_level * m


@numba.njit(inline="always", **_JIT)
def _modulator_step(decay: float, m: float, u: float) -> float:
    """Modulator level one step on: ``u + (m - u) exp(-dt / tau)``, exact for constant release."""
    return u + (m - u) * decay


@numba.njit(inline="always", **_JIT)
def _decision_y(dp: DecisionCoefficients, s_own: float, s_other: float, inp: float, x: float) -> float:
    """``y = a x_i - b`` (Hz) of a decision population, ``x_i = J11 S_i - J12 S_j + I0 + I_i + X_i``."""
    return dp.a * (dp.j11 * s_own - dp.j12 * s_other + dp.i0 + inp + x) - dp.b


@numba.njit(inline="always", **_JIT)
def _rate_pair(ya: float, yb: float, d: float) -> tuple[float, float]:
    """``H(y) = y / (1 - exp(-d y))`` (Hz) of both populations with one division.

    ``y = 0`` (the removable singularity, ``H = 1/d``) is evaluated at ``y = 1e-300``, where
    ``expm1`` is exact (branch-free select).
    """
    ya = ya if ya != 0.0 else _TINY
    yb = yb if yb != 0.0 else _TINY
    da = -_expm1_half(-d * ya)
    db = -_expm1_half(-d * yb)
    inv = 1.0 / (da * db)
    return ya * db * inv, yb * da * inv


@numba.njit(inline="always", **_JIT)
def _gating_step(dp: DecisionCoefficients, s: float, h: float) -> float:
    """``S`` one step on (Euler): ``S + dt (gamma (1 - S) H - S / tau_S)``."""
    return s + dp.dt * (dp.gamma * (1.0 - s) * h - s * dp.inv_tau_s)


@numba.njit(inline="always", **_JIT)
def _noise_step(dp: DecisionCoefficients, x: float, xi: float) -> float:
    """OU noise current one step on (Euler-Maruyama) with the standard normal ``xi``."""
    return x - dp.noise_decay * x + dp.noise_scale * xi


@numba.njit(inline="always", **_JIT)
def _crossings(
    n: int,
    nb: int,
    thr: float,
    n_detect: int,
    ev: BlockEvents,
    out: BlockOutput,
    h1: np.ndarray,
    h2: np.ndarray,
) -> int:
    """Record the threshold crossings at step ``n`` (rare scalar pass); returns the new detect count."""
    detect = ev.detect
    for i in range(nb):
        if detect[i] == 1:
            r1 = h1[i]
            r2 = h2[i]
            if r1 >= thr or r2 >= thr:
                j = ev.tr_ptr[i]
                out.choice[i, j] = 1 if r1 >= r2 else 2
                out.cross[i, j] = n - ev.on_step[i, j]
                detect[i] = 0
                n_detect -= 1
    return n_detect


@numba.njit(inline="always", **_JIT)
def _record_state(
    nb: int, jr: int, s: np.ndarray, m: np.ndarray, rec_s: np.ndarray, rec_m: np.ndarray
) -> None:
    """Store ``S_1, S_2`` and the modulator levels at recording index ``jr``."""
    for i in range(nb):
        rec_s[0, i, jr] = s[0, i]
        rec_s[1, i, jr] = s[1, i]
        for p in range(m.shape[0]):
            rec_m[p, i, jr] = m[p, i]


@numba.njit(inline="always", **_JIT)
def _record_rates(nb: int, jr: int, h1: np.ndarray, h2: np.ndarray, rec_r: np.ndarray) -> None:
    """Store ``r_1, r_2`` at recording index ``jr``."""
    for i in range(nb):
        rec_r[0, i, jr] = h1[i]
        rec_r[1, i, jr] = h2[i]


@numba.njit(**_JIT)
def run_block(
    n0: int,
    n1: int,
    dp: DecisionCoefficients,
    sens: SensoryArgs,
    state: BlockState,
    ev: BlockEvents,
    out: BlockOutput,
    noise_on: int,
    xi: np.ndarray,
    scr: np.ndarray,
    words: np.ndarray,
) -> None:
    """Integrate one block of conditions from step ``n0`` to ``n1`` (see the module docstring).

    Parameters
    ----------
    n0, n1
        First and one-past-last step of this call.
    dp, sens
        Decision coefficients and sensory stage (:class:`DecisionCoefficients`,
        :class:`SensoryArgs`).
    state, ev, out
        The block's state, event tables and outputs (its ``nb = ev.next_ev.size`` conditions);
        updated in place.
    noise_on
        ``NOISE_KERNEL``: add the OU noise, normals drawn from the conditions' streams ``state.g``
        (:func:`neuromod.rate._rng.draw_block`); ``NOISE_GIVEN``: normals from `xi`; ``NOISE_OFF``:
        no noise (`xi`, ``state.g`` and `words` are not read).
    xi
        ``(n1 - n0, 2, nb)`` standard normals of this call (``NOISE_GIVEN``).
    scr
        Float scratch of shape ``(>= 7, >= nb)``.
    words
        uint64 scratch of shape ``(2, >= nb)`` (``NOISE_KERNEL``).

    The per-step loops over conditions stay here (module docstring, "Structure").
    """
    nb = ev.next_ev.shape[0]
    thr = dp.threshold
    j_ext = dp.j_ext
    rec_every = out.rec_every
    s_1, s_2, x_1, x_2 = state.s[0], state.s[1], state.x[0], state.x[1]
    m, cur, detect = state.m, state.cur, ev.detect
    n_pop = m.shape[0]
    decay, tparams, weights, mode = sens.decay, sens.transfer_params, sens.weights, sens.mode_code
    acc1, acc2, xr, h1, h2, xi1, xi2 = scr[0], scr[1], scr[2], scr[3], scr[4], scr[5], scr[6]
    block_next, n_detect = _block_start(nb, ev)
    for n in range(n0, n1):
        if n >= block_next:  # only at steps where some condition of the block has an event
            block_next, n_detect = _events_pass(n, nb, dp.s0, n_detect, state, ev)
        in1 = cur[0]
        in2 = cur[1]
        if n_pop > 0:  # sensory stage: inputs acc_i = direct_i + J_ext sum_p W_ip r_p (nA)
            for i in range(nb):
                acc1[i] = in1[i]
            for i in range(nb):
                acc2[i] = in2[i]
            for p in range(n_pop):
                m_p = m[p]
                if decay[p] == 0.0:  # instantaneous modulator (tau = 0): m = u at once
                    rel = cur[2 + n_pop + p]
                    for i in range(nb):
                        m_p[i] = rel[i]
                drv = cur[2 + p]
                if mode == MODE_INPUT_GAIN:  # phi(g I)
                    for i in range(nb):
                        xr[i] = _gain(sens, m_p[i]) * drv[i]
                elif mode == MODE_THRESHOLD:  # phi(I - dtheta)
                    for i in range(nb):
                        xr[i] = drv[i] - sens.shift_per_level * m_p[i]
                else:
                    for i in range(nb):
                        xr[i] = drv[i]
                _transfer_inplace(sens.transfer_code, tparams, xr, nb)
                w1 = weights[0, p] * j_ext
                w2 = weights[1, p] * j_ext
                if mode == MODE_RESPONSE_GAIN:  # g phi(I)
                    for i in range(nb):
                        r = _gain(sens, m_p[i]) * xr[i]
                        acc1[i] += w1 * r
                        acc2[i] += w2 * r
                else:
                    for i in range(nb):
                        r = xr[i]
                        acc1[i] += w1 * r
                        acc2[i] += w2 * r
            in1 = acc1
            in2 = acc2
        if rec_every > 0 and n % rec_every == 0:
            _record_state(nb, n // rec_every, state.s, m, out.rec_s, out.rec_m)
        # decision rates at t_n (kept in h1, h2 for detection and recording), then S and X to
        # t_{n+1}; each loop writes one or two arrays and reads few, so LLVM vectorises all of them
        for i in range(nb):
            h1[i] = _decision_y(dp, s_1[i], s_2[i], in1[i], x_1[i])
        for i in range(nb):
            h2[i] = _decision_y(dp, s_2[i], s_1[i], in2[i], x_2[i])
        for i in range(nb):
            h1[i], h2[i] = _rate_pair(h1[i], h2[i], dp.d)
        for i in range(nb):
            s1 = s_1[i]
            s2 = s_2[i]
            s_1[i] = _gating_step(dp, s1, h1[i])
            s_2[i] = _gating_step(dp, s2, h2[i])
        if noise_on != NOISE_OFF:
            if noise_on == NOISE_KERNEL:
                _rng.draw_block(nb, state.g, words, xi1, xi2)
            else:
                xi1 = xi[n - n0, 0]
                xi2 = xi[n - n0, 1]
            for i in range(nb):
                x_1[i] = _noise_step(dp, x_1[i], xi1[i])
                x_2[i] = _noise_step(dp, x_2[i], xi2[i])
        hits = 0
        if n_detect > 0:  # branch-free count of the detecting conditions at or above threshold
            for i in range(nb):
                hits += detect[i] & ((h1[i] >= thr) | (h2[i] >= thr))
        if hits > 0:  # threshold crossings (rates at t_n): rare scalar pass
            n_detect = _crossings(n, nb, thr, n_detect, ev, out, h1, h2)
        if rec_every > 0 and n % rec_every == 0:
            _record_rates(nb, n // rec_every, h1, h2, out.rec_r)
        for p in range(n_pop):  # modulators to t_{n+1}: exact update for piecewise-constant release
            dec = decay[p]
            m_p = m[p]
            rel = cur[2 + n_pop + p]
            for i in range(nb):
                m_p[i] = _modulator_step(dec, m_p[i], rel[i])


# -- closed-loop task sessions --------------------------------------------------------------------------
#: phases of a closed-loop session (``SessionEvents.phase``)
PHASE_RCI = 0  #: response-cue interval: no cue (release ``off``), no stimulus
PHASE_CUE = 1  #: cue on (release of the trial's context), no stimulus
PHASE_STIMULUS = 2  #: cue and stimulus on, waiting for the response or the deadline
PHASE_DONE = 3  #: the session's last trial has ended


class SessionTrials(NamedTuple):
    """Trial tables of one block of closed-loop sessions (session first) and the shared settings."""

    rci: np.ndarray  #: (nb, J) int64 steps of the response-cue interval before each trial
    csi: np.ndarray  #: (nb, J) int64 steps of the cue-stimulus interval
    context: np.ndarray  #: (nb, J) int64 row of `release` that each trial's cue sets
    drive: np.ndarray  #: (nb, J, P) sensory drive during each stimulus (nA)
    n_trials: np.ndarray  #: (nb,) int64 trials of each session (>= 1; the rest is padding)
    release: np.ndarray  #: (K, P) release while the cue of context k is on
    off: np.ndarray  #: (P,) release during the response-cue interval
    max_rt: int  #: deadline in steps after stimulus onset (>= 1)


class SessionEvents(NamedTuple):
    """Where each session of a block stands (condition first, updated in place)."""

    trial: np.ndarray  #: (nb,) int64 current trial
    phase: np.ndarray  #: (nb,) int64 ``PHASE_*``
    detect: np.ndarray  #: (nb,) int64 1 in the stimulus phase (waiting for a crossing), else 0
    next_ev: np.ndarray  #: (nb,) int64 step of the next scheduled transition (``NEVER`` when done)


class SessionOutput(NamedTuple):
    """Results of one block of closed-loop sessions (condition first; recordings condition second)."""

    choice: np.ndarray  #: (nb, J) int8 choice 1, 2 (0: none)
    cross: np.ndarray  #: (nb, J) int64 response step relative to the onset (-1: none)
    onset: np.ndarray  #: (nb, J) int64 stimulus-onset step (-1: not reached)
    end: np.ndarray  #: (nb, J) int64 step at which the trial ended: response or deadline (-1)
    n_end: np.ndarray  #: (nb,) int64 step at which the session ended (-1: running)
    rec_every: int  #: recording interval in steps (0: no recording)
    rec_r: np.ndarray  #: (2, nb, n_rec) ``r_1, r_2`` (Hz) at steps ``k rec_every``
    rec_m: np.ndarray  #: (P, nb, n_rec) modulator levels


@numba.njit(inline="always", **_JIT)
def _session_end_trial(
    i: int, t: int, tab: SessionTrials, state: BlockState, ev: SessionEvents, out: SessionOutput
) -> None:
    """End session ``i``'s current trial at step ``t``: stimulus off, release ``off``, next RCI (or done)."""
    cur = state.cur
    n_pop = tab.off.shape[0]
    j = ev.trial[i]
    out.end[i, j] = t
    ev.detect[i] = 0
    for p in range(n_pop):
        cur[2 + p, i] = 0.0
        cur[2 + n_pop + p, i] = tab.off[p]
    j += 1
    ev.trial[i] = j
    if j >= tab.n_trials[i]:
        ev.phase[i] = PHASE_DONE
        ev.next_ev[i] = NEVER
        out.n_end[i] = t
    else:
        ev.phase[i] = PHASE_RCI
        ev.next_ev[i] = t + tab.rci[i, j]


@numba.njit(inline="always", **_JIT)
def _session_advance(
    i: int, n: int, s0: float, tab: SessionTrials, state: BlockState, ev: SessionEvents, out: SessionOutput
) -> None:
    """Apply session ``i``'s transitions scheduled at or before step ``n`` (several at one step when an
    interval is 0 steps): cue on, stimulus on (``S`` reset to ``s0``), deadline (no response)."""
    cur = state.cur
    n_pop = tab.off.shape[0]
    while ev.next_ev[i] <= n:
        t = ev.next_ev[i]
        j = ev.trial[i]
        ph = ev.phase[i]
        if ph == PHASE_RCI:  # cue on: the context's release
            k = tab.context[i, j]
            for p in range(n_pop):
                cur[2 + n_pop + p, i] = tab.release[k, p]
            ev.phase[i] = PHASE_CUE
            ev.next_ev[i] = t + tab.csi[i, j]
        elif ph == PHASE_CUE:  # stimulus on: drive, decision state reset, response window opens
            for p in range(n_pop):
                cur[2 + p, i] = tab.drive[i, j, p]
            state.s[0, i] = s0
            state.s[1, i] = s0
            ev.phase[i] = PHASE_STIMULUS
            ev.detect[i] = 1
            out.onset[i, j] = t
            ev.next_ev[i] = t + tab.max_rt
        else:  # deadline without a response: choice 0, the trial ends here
            _session_end_trial(i, t, tab, state, ev, out)


@numba.njit(inline="always", **_JIT)
def _transfer(code: int, t0: float, t1: float, t2: float, x: float) -> float:
    """``phi(x)`` of one value for transfer ``code`` with ``(t0, t1, t2) = kernel_params()`` (the
    formulas of :func:`_transfer_inplace`; scalars, so that no array is handed over per call)."""
    if code == TRANSFER_THRESHOLD_LINEAR:
        return t0 * max(x - t1, 0.0)
    if code == TRANSFER_SIGMOID:
        return t0 / (2.0 + _expm1(-(x - t1) / t2))
    return _abbott_chance(t0 * x - t1, t2)


@numba.njit(**_JIT)
def run_session_block(
    n0: int,
    n1: int,
    dp: DecisionCoefficients,
    sens: SensoryArgs,
    tab: SessionTrials,
    state: BlockState,
    ev: SessionEvents,
    out: SessionOutput,
    noise_on: int,
    xi: np.ndarray,
) -> int:
    """Integrate each running session of a block from step ``n0`` until ``n1`` or until its end.

    The per-step equations are those of :func:`run_block` (same helpers, same order: sensory stage,
    rates at ``t_n``, ``S`` and ``X`` to ``t_{n+1}``, response check, modulators to ``t_{n+1}``); the
    events differ: each session's trial ends at its own response (or deadline), and the next trial's
    intervals count from there (:func:`_session_advance`). Sessions are integrated one after the other
    (session outer, steps inner), each with its state in registers: there is no cross-session
    vectorisation, which at one session per call (the common case) would cost more in loop overhead
    than it gains.

    Parameters
    ----------
    n0, n1
        First and one-past-last step of this call.
    dp, sens
        Decision coefficients and sensory stage (``P >= 1`` populations).
    tab, state, ev, out
        The block's trial tables, state (``cur``: direct inputs (2, zero), drive (P), release (P)),
        progress and outputs (:class:`SessionTrials`, :class:`BlockState`, :class:`SessionEvents`,
        :class:`SessionOutput`); updated in place. Recording writes index ``n // rec_every``.
    noise_on
        ``NOISE_KERNEL``: add the OU noise, normals from each session's stream ``state.g[:, i]``
        (:func:`neuromod.rate._rng.draw_pair`: the numbers :func:`run_block` draws for condition ``i``);
        ``NOISE_GIVEN``: normals from `xi`; ``NOISE_OFF``: no noise (`xi`, ``state.g`` not read).
    xi
        ``(nb, >= 2 (n1 - n0))`` standard normals of this call, per session in step order
        (``xi[i, 2 t + k]`` for decision population ``k`` at step ``n0 + t``; ``NOISE_GIVEN``).

    Returns
    -------
    int
        The number of sessions still running after step ``n1 - 1``.
    """
    nb = ev.next_ev.shape[0]
    thr = dp.threshold
    j_ext = dp.j_ext
    rec_every = out.rec_every
    s, x, m, cur = state.s, state.x, state.m, state.cur
    rec_r, rec_m = out.rec_r, out.rec_m
    n_pop = m.shape[0]
    decay, weights, mode, code = sens.decay, sens.weights, sens.mode_code, sens.transfer_code
    t0 = sens.transfer_params[0]
    t1 = sens.transfer_params[1]
    t2 = sens.transfer_params[2]
    n_running = 0
    for i in range(nb):
        if ev.phase[i] == PHASE_DONE:
            continue
        s1, s2, x1, x2 = s[0, i], s[1, i], x[0, i], x[1, i]
        nxt = ev.next_ev[i]
        for n in range(n0, n1):
            if n >= nxt:  # cue on, stimulus on (S reset) or deadline
                s[0, i] = s1
                s[1, i] = s2
                _session_advance(i, n, dp.s0, tab, state, ev, out)
                s1, s2 = s[0, i], s[1, i]
                nxt = ev.next_ev[i]
                if ev.phase[i] == PHASE_DONE:  # the last trial ended at its deadline
                    break
            # sensory stage: acc_i = direct_i + J_ext sum_p W_ip r_p (nA)
            acc1 = cur[0, i]
            acc2 = cur[1, i]
            for p in range(n_pop):
                rel = cur[2 + n_pop + p, i]
                if decay[p] == 0.0:  # instantaneous modulator (tau = 0): m = u at once
                    m[p, i] = rel
                m_p = m[p, i]
                drv = cur[2 + p, i]
                if mode == MODE_INPUT_GAIN:  # phi(g I)
                    r = _transfer(code, t0, t1, t2, _gain(sens, m_p) * drv)
                elif mode == MODE_THRESHOLD:  # phi(I - dtheta)
                    r = _transfer(code, t0, t1, t2, drv - sens.shift_per_level * m_p)
                else:  # g phi(I)
                    r = _gain(sens, m_p) * _transfer(code, t0, t1, t2, drv)
                acc1 += (weights[0, p] * j_ext) * r
                acc2 += (weights[1, p] * j_ext) * r
            record = rec_every > 0 and n % rec_every == 0
            if record:
                for p in range(n_pop):
                    rec_m[p, i, n // rec_every] = m[p, i]
            # decision rates at t_n, then S and X to t_{n+1}
            h1, h2 = _rate_pair(_decision_y(dp, s1, s2, acc1, x1), _decision_y(dp, s2, s1, acc2, x2), dp.d)
            s1, s2 = _gating_step(dp, s1, h1), _gating_step(dp, s2, h2)
            if noise_on != NOISE_OFF:
                if noise_on == NOISE_KERNEL:
                    e1, e2 = _rng.draw_pair(state.g, i)
                else:
                    e1, e2 = xi[i, 2 * (n - n0)], xi[i, 2 * (n - n0) + 1]
                x1 = _noise_step(dp, x1, e1)
                x2 = _noise_step(dp, x2, e2)
            if record:
                rec_r[0, i, n // rec_every] = h1
                rec_r[1, i, n // rec_every] = h2
            if ev.detect[i] == 1 and (h1 >= thr or h2 >= thr):  # the response: the trial ends here
                j = ev.trial[i]
                out.choice[i, j] = 1 if h1 >= h2 else 2
                out.cross[i, j] = n - out.onset[i, j]
                _session_end_trial(i, n, tab, state, ev, out)
                _session_advance(i, n, dp.s0, tab, state, ev, out)  # the next cue, at an RCI of 0
                nxt = ev.next_ev[i]
            for p in range(n_pop):  # modulators to t_{n+1}: exact update for piecewise-constant release
                m[p, i] = _modulator_step(decay[p], m[p, i], cur[2 + n_pop + p, i])
            if ev.phase[i] == PHASE_DONE:  # the last trial ended at this response
                break
        s[0, i], s[1, i], x[0, i], x[1, i] = s1, s2, x1, x2
        n_running += ev.phase[i] != PHASE_DONE
    return n_running
