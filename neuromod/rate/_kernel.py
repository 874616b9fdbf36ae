"""Compiled (numba) time loop of the batched decision circuit.

Layout: the caller splits the batch into blocks of conditions; every per-condition state array of a
block is C-contiguous with the condition as its last axis, so a block's working set stays in cache
and the inner loops over conditions vectorise (AVX2/AVX-512). The loops start at 0 (no
negative-index wraparound branch) and each writes one or two arrays and reads few, so LLVM needs
few runtime alias checks and vectorises all of them. Nothing is allocated inside the time loop;
the caller owns every buffer. Events (input changes, resets, trial onsets and timeouts) are handled
in a scalar pass only at steps where some condition of the block has one.

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

import numba
import numpy as np

_INVLN2 = 1.4426950408889634
_LN2HI = 6.93147180369123816490e-01
_LN2LO = 1.90821492927058770002e-10
_SHIFT = 6755399441055744.0  # 1.5 * 2**52: adding it rounds to an integer kept in the low bits
_EXP_BIAS = np.int64(1023) << np.int64(52)
_CLAMP = 708.0
_CACHE = os.environ.get("NEUROMOD_NUMBA_CACHE", "1") != "0"
_HALF_CLAMP = 350.0
_TINY = 1e-300  # stands in for y = 0 in H = y / (1 - exp(-d y)); d * 1e-300 is still normal

_JIT = {"nogil": True, "cache": _CACHE, "error_model": "numpy", "fastmath": {"contract"}}

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
    """``x[:n] <- phi(x[:n])`` for transfer ``code`` (0 TL, 1 sigmoid, 2 Abbott-Chance)."""
    if code == 0:
        for i in range(n):
            x[i] = tp[0] * max(x[i] - tp[1], 0.0)
    elif code == 1:
        for i in range(n):
            x[i] = tp[0] / (2.0 + _expm1(-(x[i] - tp[1]) / tp[2]))
    else:
        for i in range(n):
            x[i] = _abbott_chance(tp[0] * x[i] - tp[1], tp[2])


@numba.njit(**_JIT)
def run_block(
    nb: int,
    n0: int,
    n1: int,
    # decision parameters: a, b, d, gamma/1000, 1/tau_S, J11, J12, I0, j_ext, thr, s0,
    # noise_decay (dt/tau_AMPA), noise_scale (sigma sqrt(dt/tau_AMPA)), dt
    wp: np.ndarray,
    noise_on: int,
    # sensory stage: transfer code and params, mode code, (g0, kg, ks), decay (P,), weights (2, P)
    tcode: int,
    tparams: np.ndarray,
    mcode: int,
    mparams: np.ndarray,
    mdecay: np.ndarray,
    weights: np.ndarray,
    # block state (condition last, C-contiguous): S (2, nb), X (2, nb), M (P, nb), cur (2+2P, nb)
    S: np.ndarray,
    X: np.ndarray,
    M: np.ndarray,
    cur: np.ndarray,
    # block events (condition first): inputs (nb, K+1) steps and (nb, K+1, 2+2P) values;
    # resets (nb, R+1); trial onsets/timeouts (nb, J+1); pointers, phases, next event (nb,)
    in_step: np.ndarray,
    in_val: np.ndarray,
    in_ptr: np.ndarray,
    rs_step: np.ndarray,
    rs_ptr: np.ndarray,
    on_step: np.ndarray,
    to_step: np.ndarray,
    tr_ptr: np.ndarray,
    phase: np.ndarray,
    detect: np.ndarray,
    next_ev: np.ndarray,
    # outputs (nb, J): choice and crossing step relative to onset
    choice: np.ndarray,
    cross: np.ndarray,
    # noise for this call: (n1 - n0, 2, nb) standard normals
    xi: np.ndarray,
    # recording every rec_every steps (0: off): rec_s (2, nb, n_rec), rec_r (2, nb, n_rec),
    # rec_m (P, nb, n_rec)
    rec_every: int,
    rec_s: np.ndarray,
    rec_r: np.ndarray,
    rec_m: np.ndarray,
    # scratch: float (6, >= nb)
    scr: np.ndarray,
) -> None:
    """Integrate one block of ``nb`` conditions from step ``n0`` to ``n1`` (module docstring)."""
    a = wp[0]
    bb = wp[1]
    d = wp[2]
    gam = wp[3]
    inv_tau = wp[4]
    j11 = wp[5]
    j12 = wp[6]
    i0 = wp[7]
    j_ext = wp[8]
    thr = wp[9]
    s0 = wp[10]
    ndec = wp[11]
    nscale = wp[12]
    dt = wp[13]
    n_pop = M.shape[0]
    n_val = cur.shape[0]
    big = np.iinfo(np.int64).max
    acc1 = scr[0]
    acc2 = scr[1]
    xr = scr[2]
    h1 = scr[3]
    h2 = scr[4]
    s_1 = S[0]
    s_2 = S[1]
    x_1 = X[0]
    x_2 = X[1]

    block_next = big
    n_detect = 0
    for i in range(nb):
        block_next = min(block_next, next_ev[i])
        n_detect += detect[i]

    for n in range(n0, n1):
        # ---- events (scalar; only at steps where some condition of the block has one)
        if n >= block_next:
            block_next = big
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

        # ---- instantaneous modulators (tau = 0): m = u at once (the limit of the exact update)
        for p in range(n_pop):
            if mdecay[p] == 0.0:
                m_p = M[p]
                rel = cur[2 + n_pop + p]
                for i in range(nb):
                    m_p[i] = rel[i]

        # ---- sensory populations -> decision input (nA, without I0 and noise): in1, in2
        in1 = cur[0]
        in2 = cur[1]
        if n_pop > 0:
            for i in range(nb):
                acc1[i] = in1[i]
            for i in range(nb):
                acc2[i] = in2[i]
            in1 = acc1
            in2 = acc2
        for p in range(n_pop):
            g0 = mparams[0]
            kg = mparams[1]
            ks = mparams[2]
            m_p = M[p]
            drv = cur[2 + p]
            if mcode == 1:  # input gain: phi(g I)
                for i in range(nb):
                    xr[i] = (g0 + kg * m_p[i]) * drv[i]
            elif mcode == 2:  # threshold: phi(I - dtheta)
                for i in range(nb):
                    xr[i] = drv[i] - ks * m_p[i]
            else:
                for i in range(nb):
                    xr[i] = drv[i]
            _transfer_inplace(tcode, tparams, xr, nb)
            w1 = weights[0, p] * j_ext
            w2 = weights[1, p] * j_ext
            if mcode == 0:  # response gain: g phi(I)
                for i in range(nb):
                    r = (g0 + kg * m_p[i]) * xr[i]
                    acc1[i] += w1 * r
                    acc2[i] += w2 * r
            else:
                for i in range(nb):
                    r = xr[i]
                    acc1[i] += w1 * r
                    acc2[i] += w2 * r

        if rec_every > 0 and n % rec_every == 0:
            jr = n // rec_every
            for i in range(nb):
                rec_s[0, i, jr] = s_1[i]
                rec_s[1, i, jr] = s_2[i]
                for p in range(n_pop):
                    rec_m[p, i, jr] = M[p, i]

        # ---- decision rates H(x_i) at t_n (kept in h1, h2 for detection and recording), then
        # S to t_{n+1} (Euler) and the noise (Euler-Maruyama). Each loop writes one or two arrays
        # and reads few: LLVM then needs few runtime alias checks and vectorises every loop.
        for i in range(nb):
            h1[i] = a * (j11 * s_1[i] - j12 * s_2[i] + i0 + in1[i] + x_1[i]) - bb
        for i in range(nb):
            h2[i] = a * (j11 * s_2[i] - j12 * s_1[i] + i0 + in2[i] + x_2[i]) - bb
        for i in range(nb):
            # H = y / (1 - exp(-d y)) for both populations with one division; y = 0 (the
            # removable singularity, H = 1/d) is evaluated at y = 1e-300, where expm1 is exact
            ya = h1[i]
            yb = h2[i]
            ya = ya if ya != 0.0 else _TINY
            yb = yb if yb != 0.0 else _TINY
            da = -_expm1_half(-d * ya)
            db = -_expm1_half(-d * yb)
            inv = 1.0 / (da * db)
            h1[i] = ya * db * inv
            h2[i] = yb * da * inv
        for i in range(nb):
            s1 = s_1[i]
            s2 = s_2[i]
            s_1[i] = s1 + dt * (gam * (1.0 - s1) * h1[i] - s1 * inv_tau)
            s_2[i] = s2 + dt * (gam * (1.0 - s2) * h2[i] - s2 * inv_tau)
        if noise_on:
            xi1 = xi[n - n0, 0]
            xi2 = xi[n - n0, 1]
            for i in range(nb):
                x_1[i] = x_1[i] - ndec * x_1[i] + nscale * xi1[i]
                x_2[i] = x_2[i] - ndec * x_2[i] + nscale * xi2[i]
        hits = 0
        if n_detect > 0:
            for i in range(nb):
                hits += detect[i] & ((h1[i] >= thr) | (h2[i] >= thr))

        # ---- threshold crossings (rates at t_n): rare scalar pass when the count found any
        if hits > 0:
            for i in range(nb):
                if detect[i] == 1:
                    r1 = h1[i]
                    r2 = h2[i]
                    if r1 >= thr or r2 >= thr:
                        j = tr_ptr[i]
                        choice[i, j] = 1 if r1 >= r2 else 2
                        cross[i, j] = n - on_step[i, j]
                        detect[i] = 0
                        n_detect -= 1
        if rec_every > 0 and n % rec_every == 0:
            jr = n // rec_every
            for i in range(nb):
                rec_r[0, i, jr] = h1[i]
                rec_r[1, i, jr] = h2[i]
        # ---- modulators to t_{n+1} (exact update for piecewise-constant release)
        for p in range(n_pop):
            dec = mdecay[p]
            m_p = M[p]
            rel = cur[2 + n_pop + p]
            for i in range(nb):
                m_p[i] = rel[i] + (m_p[i] - rel[i]) * dec
