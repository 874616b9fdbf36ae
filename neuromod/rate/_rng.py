"""Standard normals inside the compiled kernels: one xoshiro256++ stream per condition, ziggurat.

Generator: every condition (session) ``g`` of a run has its own xoshiro256++ stream (Blackman & Vigna
2021, "Scrambled linear pseudorandom number generators", ACM TOMS 47(4):36; 256-bit state, period
``2**256 - 1``, all 64 output bits usable). Its initial state is four consecutive outputs of SplitMix64
(Steele, Lea & Flood 2014, as Blackman & Vigna recommend for seeding), outputs ``4 g + 1 .. 4 g + 4`` of the
SplitMix64 sequence that starts at a 64-bit key drawn from the run's ``numpy.random.SeedSequence``
(:func:`stream_states`). SplitMix64's output function is a bijection of its counter, so different
conditions start in different states. A condition's noise therefore depends on the seed and its index
only: not on the block it is integrated in, the thread, the chunking of steps or the other conditions.

Transform: the 256-layer ziggurat of Marsaglia & Tsang (2000, "The ziggurat method for generating random
variables", J. Stat. Softw. 5(8)), in the 64-bit form numpy uses: of one 64-bit word, bits 0-7 pick the
layer ``j``, bit 8 the sign, bits 9-60 a 52-bit integer ``u``; ``x = u w_j`` is accepted when
``u < k_j`` (about 99.3 % of words), otherwise the wedge test against ``exp(-x^2/2)`` or, in the base
layer, Marsaglia's tail method draw further uniforms from the same stream (a rejected word is replaced by
a fresh one). The tables are built at import by Marsaglia & Tsang's recursion from ``r = 3.6541528853610088``
and the layer area ``v = 4.92867323399e-3``.

Order of the draws (the same in the vectorised and the scalar path, so both give the same numbers): at
each step a condition draws the two words of decision populations 1 and 2, then (rarely) completes the
rejected ones, population 1 first. :func:`draw_block` turns the accepted words of a whole block into
normals in one loop over conditions with no branch (vectorised: AVX2 for the 64-bit integer
arithmetic, 4 conditions per instruction) and completes the rejected ones in a scalar pass;
:func:`draw_pair` is the scalar version for one condition (closed-loop sessions). The conversion of
``u < 2**52`` to float is a bit cast (``u | 0x433...`` minus ``2**52``), exact and vectorisable.

Measured on the 2-core AMD EPYC (Zen 3) development machine, 512 conditions: about 3 ns per normal
(0.9 ns per xoshiro256++ word, 2 ns per transform) against 12-14 ns for ``Generator.standard_normal``.
"""

from __future__ import annotations

import math
import os

import numba
import numpy as np

__all__ = ["draw_block", "draw_pair", "normals", "stream_key", "stream_states"]

_CACHE = os.environ.get("NEUROMOD_NUMBA_CACHE", "1") != "0"
_JIT = {"nogil": True, "cache": _CACHE, "error_model": "numpy", "fastmath": False}  # as in _kernel

_U = np.uint64
_R = 3.6541528853610088  # start of the tail (right edge of the top layer's base)
_V = 4.92867323399e-3  # area of each layer
_INV_R = 1.0 / _R
_M52 = _U((1 << 52) - 1)
_EXPO = _U(0x4330000000000000)  # exponent bits of 2**52: (u | _EXPO) as a double is 2**52 + u
_TWO52 = 2.0**52
_TWO_M53 = 2.0**-53
_LAYER = _U(255)
_ONE = _U(1)
_S8, _S9, _S11, _S17, _S23, _S45 = _U(8), _U(9), _U(11), _U(17), _U(23), _U(45)
_GOLDEN = 0x9E3779B97F4A7C15  # SplitMix64 increment


def _ziggurat_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Marsaglia & Tsang's tables for 256 layers and 52-bit ``u``: ``k`` (acceptance bounds, as exact
    float integers), ``w`` (``x = u w``) and ``f`` (``exp(-x^2/2)`` at the layer edges)."""
    m = 2.0**52
    k, w, f = np.zeros(256), np.zeros(256), np.zeros(256)
    dn = tn = _R
    q = _V / math.exp(-0.5 * dn * dn)
    k[0] = math.floor(dn / q * m)
    w[0], w[255] = q / m, dn / m
    f[0], f[255] = 1.0, math.exp(-0.5 * dn * dn)
    for i in range(254, 0, -1):
        dn = math.sqrt(-2.0 * math.log(_V / dn + math.exp(-0.5 * dn * dn)))
        k[i + 1] = math.floor(dn / tn * m)
        tn = dn
        f[i] = math.exp(-0.5 * dn * dn)
        w[i] = dn / m
    return k, w, f


_K, _W, _F = _ziggurat_tables()


@numba.njit(inline="always", **_JIT)
def _rotl(x: np.uint64, k: np.uint64) -> np.uint64:
    return (x << k) | (x >> (_U(64) - k))


@numba.njit(inline="always", **_JIT)
def _u52_to_float(u: np.uint64) -> float:
    """``float(u)`` for ``u < 2**52`` by a bit cast (exact; vectorises, unlike a uint64 conversion)."""
    return _U(u | _EXPO).view(np.float64) - _TWO52


@numba.njit(inline="always", **_JIT)
def _next(g: np.ndarray, i: int) -> np.uint64:
    """The next word of condition ``i``'s xoshiro256++ stream (state ``g[:, i]``, updated)."""
    s0, s1, s2, s3 = g[0, i], g[1, i], g[2, i], g[3, i]
    r = _rotl(s0 + s3, _S23) + s0
    t = s1 << _S17
    s2 ^= s0
    s3 ^= s1
    s1 ^= s2
    s0 ^= s3
    s2 ^= t
    g[0, i], g[1, i], g[2, i], g[3, i] = s0, s1, s2, _rotl(s3, _S45)
    return r


@numba.njit(inline="always", **_JIT)
def _uniform(g: np.ndarray, i: int) -> float:
    """A uniform double in [0, 1) (53 bits) from condition ``i``'s stream."""
    return np.float64(_next(g, i) >> _S11) * _TWO_M53


@numba.njit(inline="always", **_JIT)
def _fast(r: np.uint64) -> tuple[float, bool]:
    """Ziggurat fast path of word ``r``: the candidate ``x`` and whether it is accepted."""
    j = r & _LAYER
    u = _u52_to_float((r >> _S9) & _M52)
    x = u * _W[j]
    x = -x if (r >> _S8) & _ONE else x
    return x, u < _K[j]


@numba.njit(**_JIT)
def _complete(r: np.uint64, g: np.ndarray, i: int) -> float:
    """The normal of word ``r`` whatever its fate (wedge or tail test, or fresh words from condition
    ``i``'s stream after a rejection); scalar, reached for about 0.7 % of the words."""
    while True:
        x, ok = _fast(r)
        if ok:
            return x
        j = r & _LAYER
        if j == 0:  # base layer beyond r: Marsaglia's tail method
            while True:
                xx = -_INV_R * math.log1p(-_uniform(g, i))
                yy = -math.log1p(-_uniform(g, i))
                if yy + yy > xx * xx:
                    return -(_R + xx) if (r >> _S8) & _ONE else _R + xx
        if (_F[j - 1] - _F[j]) * _uniform(g, i) + _F[j] < math.exp(-0.5 * x * x):  # wedge
            return x
        r = _next(g, i)


@numba.njit(inline="always", **_JIT)
def _fast_pass(nb: int, w: np.ndarray, xi: np.ndarray) -> int:
    """``xi[i]`` = the fast-path normal of word ``w[i]`` or NaN if rejected; returns the rejections."""
    rejected = 0
    for i in range(nb):
        x, ok = _fast(w[i])
        xi[i] = x if ok else np.nan
        rejected += not ok
    return rejected


@numba.njit(**_JIT)
def draw_block(nb: int, g: np.ndarray, words: np.ndarray, xi1: np.ndarray, xi2: np.ndarray) -> None:
    """One step's normals of conditions ``0 .. nb - 1``: ``xi1[i]``, ``xi2[i]`` (populations 1, 2).

    Parameters
    ----------
    nb
        Number of conditions.
    g
        ``(4, >= nb)`` uint64 xoshiro256++ states, one column per condition (updated).
    words
        ``(2, >= nb)`` uint64 scratch (the step's words, kept for the rejected ones).
    xi1, xi2
        ``(>= nb,)`` float outputs.
    """
    g0, g1, g2, g3 = g[0], g[1], g[2], g[3]
    w1, w2 = words[0], words[1]
    for i in range(nb):  # both words of every condition: integer ops only, vectorised
        s0, s1, s2, s3 = g0[i], g1[i], g2[i], g3[i]
        r1 = _rotl(s0 + s3, _S23) + s0
        t = s1 << _S17
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = _rotl(s3, _S45)
        w1[i] = r1
        r2 = _rotl(s0 + s3, _S23) + s0
        t = s1 << _S17
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        g0[i], g1[i], g2[i], g3[i] = s0, s1, s2, _rotl(s3, _S45)
        w2[i] = r2
    # fast path, no branch (a rejected word gives NaN); separate loops vectorise best (measured)
    rejected = _fast_pass(nb, w1, xi1) + _fast_pass(nb, w2, xi2)
    if rejected > 0:  # complete the rejected words (NaN marks them), population 1 first
        for i in range(nb):
            if xi1[i] != xi1[i]:
                xi1[i] = _complete(w1[i], g, i)
            if xi2[i] != xi2[i]:
                xi2[i] = _complete(w2[i], g, i)


@numba.njit(inline="always", **_JIT)
def draw_pair(g: np.ndarray, i: int) -> tuple[float, float]:
    """One step's two normals of condition ``i`` (populations 1, 2): the numbers :func:`draw_block`
    gives that condition, scalar."""
    r1 = _next(g, i)
    r2 = _next(g, i)
    x1, ok1 = _fast(r1)
    x2, ok2 = _fast(r2)
    if not ok1:
        x1 = _complete(r1, g, i)
    if not ok2:
        x2 = _complete(r2, g, i)
    return x1, x2


def _splitmix64(counter: np.ndarray) -> np.ndarray:
    """SplitMix64's output function (Steele, Lea & Flood 2014) of uint64 counters (wrapping)."""
    z = counter.copy()
    z ^= z >> np.uint64(30)
    z *= np.uint64(0xBF58476D1CE4E5B9)
    z ^= z >> np.uint64(27)
    z *= np.uint64(0x94D049BB133111EB)
    z ^= z >> np.uint64(31)
    return z


def stream_key(seed: np.random.SeedSequence) -> int:
    """The 64-bit key of a run's streams, drawn from `seed` (which is not advanced)."""
    return int(seed.generate_state(1, np.uint64)[0])


def stream_states(key: int, first: int, count: int, width: int | None = None) -> np.ndarray:
    """Initial xoshiro256++ states of conditions ``first .. first + count - 1``: ``(4, width)`` uint64
    (``width >= count`` columns; the extra ones are zero and never used).

    Condition ``g`` gets SplitMix64 outputs ``4 g + 1 .. 4 g + 4`` of the sequence that starts at `key`
    (module docstring); none of the states is zero (that would need four zero outputs in a row).
    """
    width = count if width is None else width
    out = np.zeros((4, width), dtype=np.uint64)
    cond = np.arange(first, first + count, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for w in range(4):
            counter = np.uint64(key) + (np.uint64(4) * cond + np.uint64(w + 1)) * np.uint64(_GOLDEN)
            out[w, :count] = _splitmix64(counter)
    return out


@numba.njit(**_JIT)
def _normals_kernel(g: np.ndarray, n_steps: int, out: np.ndarray) -> None:
    nb = g.shape[1]
    words = np.empty((2, nb), dtype=np.uint64)
    for n in range(n_steps):
        draw_block(nb, g, words, out[n, 0], out[n, 1])


def normals(key: int, n_conditions: int, n_steps: int) -> np.ndarray:
    """The ``(n_steps, 2, n_conditions)`` normals the kernels draw for conditions ``0 ..
    n_conditions - 1`` with stream key `key` (for tests and diagnostics)."""
    g = stream_states(key, 0, n_conditions)
    out = np.empty((n_steps, 2, n_conditions))
    _normals_kernel(g, n_steps, out)
    return out
