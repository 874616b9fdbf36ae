"""Keyed counter-based random numbers of the session network: one SplitMix64 stream per neuron and purpose.

Every random number of a closed-loop session (the background noise of the decision cells, the white noise and
the Poisson input counts of the sensory cells) is a pure function of a 64-bit *key* of the neuron and of the
time step::

    z = mix(key + (step + 1) * gamma)        (SplitMix64: Steele, Lea & Flood 2014, OOPSLA)

``mix`` is SplitMix64's finaliser and ``gamma`` its golden-ratio increment: for a fixed key the numbers are
the SplitMix64 stream seeded with that key. The key of a neuron is ``mix(purpose_key + (j + 1) * M4)`` for its
index ``j`` *within its session* and a per-session, per-purpose key drawn from the session's
``numpy.random.SeedSequence``. Hence a session's numbers depend on its own seed only: not on its position in
a network of many sessions, nor on what the others draw, so a batch of sessions gives, bit for bit, what the
sessions give one by one. Keys are 64 random bits (the streams of two neurons overlap within 10^9 steps with
probability about 10^-10 per pair). One ``mix`` per number (the stateless hash of :mod:`._noise` takes two,
and keys only 24 bits of its seed), so it is also the cheaper of the two.

brian2 integers are 32-bit: a key is stored as two ``integer`` variables (high and low word).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ._noise import brian_function

__all__ = ["PURPOSES", "knoise_function", "kpoisson_function", "neuron_keys", "nm_knoise", "nm_kpoisson"]

#: The streams of a session, one key each (their order fixes the keys: append, never reorder).
PURPOSES: tuple[str, ...] = ("exc_noise", "inh_noise", "sensory_noise", "sensory_poisson", "potentials")

# SplitMix64's constants (gamma = _M1, the finaliser's multipliers _M2, _M3) and the key multiplier _M4
_M1 = 0x9E3779B97F4A7C15
_M2 = 0xBF58476D1CE4E5B9
_M3 = 0x94D049BB133111EB
_M4 = 0xD1B54A32D192ED03
_SCALE = 3.4641016151377544  # sqrt(12): a uniform on [-1/2, 1/2) scaled to variance 1


def _key_code(tag: str) -> str:
    """Cython of the keyed uniform, its helpers suffixed with `tag` (each Function brings its own copy, and
    one code object may use both Functions)."""
    return f"""
cdef inline unsigned long long _nm_kmix_{tag}(unsigned long long z) noexcept nogil:
    z = z + {_M1}ULL
    z = (z ^ (z >> 30)) * {_M2}ULL
    z = (z ^ (z >> 27)) * {_M3}ULL
    return z ^ (z >> 31)

cdef inline double _nm_kuniform_{tag}(int hi, int lo, long long step) noexcept nogil:
    cdef unsigned long long key = ((<unsigned long long>(<unsigned int>hi)) << 32) | (<unsigned int>lo)
    cdef unsigned long long z = _nm_kmix_{tag}(key + <unsigned long long>step * {_M1}ULL)
    return <double>(<long long>(z >> 11)) * (1.0 / 9007199254740992.0)
"""


_KNOISE_CYTHON = (
    _key_code("n")
    + f"""
cdef inline double nm_knoise(int hi, int lo, long long step) noexcept nogil:
    return (_nm_kuniform_n(hi, lo, step) - 0.5) * {_SCALE!r}
"""
)

# Poisson count by inversion of one uniform (sequential search of the CDF, O(lam) work); lam <= 0 draws
# nothing (most steps of a session: no stimulus), so it costs no hash.
_KPOISSON_CYTHON = (
    _key_code("p")
    + """
cdef inline double nm_kpoisson(double lam, int hi, int lo, long long step) noexcept nogil:
    if lam <= 0.0:
        return 0.0
    cdef double u = _nm_kuniform_p(hi, lo, step)
    cdef double p = exp(-lam)
    cdef double f = p
    cdef double k = 0.0
    while u > f and p > 0.0:
        k += 1.0
        p *= lam / k
        f += p
    return k
"""
)


def _mix(z: np.ndarray) -> np.ndarray:
    z = z + np.uint64(_M1)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(_M2)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(_M3)
    return z ^ (z >> np.uint64(31))


def _uniform(hi: Any, lo: Any, step: Any) -> np.ndarray:
    hi, lo, step = np.broadcast_arrays(np.asarray(hi), np.asarray(lo), np.asarray(step))
    key = (np.asarray(hi, dtype=np.int64).astype(np.uint32).astype(np.uint64) << np.uint64(32)) | np.asarray(
        lo, dtype=np.int64
    ).astype(np.uint32).astype(np.uint64)
    with np.errstate(over="ignore"):
        z = _mix(key + np.asarray(step, dtype=np.int64).view(np.uint64) * np.uint64(_M1))
    return (z >> np.uint64(11)).astype(np.float64) * (1.0 / 9007199254740992.0)


def nm_knoise(hi: Any, lo: Any, step: Any) -> np.ndarray:
    """NumPy version of the keyed noise (same bits as the compiled one): mean 0, variance 1."""
    return (_uniform(hi, lo, step) - 0.5) * _SCALE


def nm_kpoisson(lam: Any, hi: Any, lo: Any, step: Any) -> np.ndarray:
    """NumPy version of the keyed Poisson count with mean `lam` (same algorithm as the compiled one)."""
    lam, hi, lo, step = np.broadcast_arrays(
        np.asarray(lam, dtype=float), np.asarray(hi), np.asarray(lo), step
    )
    u = _uniform(hi, lo, step)
    p = np.exp(-np.maximum(lam, 0.0))
    f = p.copy()
    k = np.zeros_like(p)
    more = (lam > 0.0) & (u > f) & (p > 0.0)
    while more.any():
        k[more] += 1.0
        p[more] *= lam[more] / k[more]
        f[more] += p[more]
        more &= (u > f) & (p > 0.0)
    return k


def session_keys(seeds: Sequence[np.random.SeedSequence]) -> dict[str, np.ndarray]:
    """Per-purpose keys of every session (uint64, one per session), from the sessions' seeds only."""
    words = np.array([s.generate_state(len(PURPOSES), dtype=np.uint64) for s in seeds], dtype=np.uint64)
    return {name: words[:, k] for k, name in enumerate(PURPOSES)}


def neuron_keys(purpose_keys: np.ndarray, n_per_session: int) -> tuple[np.ndarray, np.ndarray]:
    """Keys of every neuron of a group of ``len(purpose_keys)`` sessions x `n_per_session` neurons (session
    major), as the (high, low) 32-bit words that brian2 stores (int32)."""
    j = np.arange(1, n_per_session + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        keys = _mix(purpose_keys[:, None] + j[None, :] * np.uint64(_M4)).ravel()
    hi = (keys >> np.uint64(32)).astype(np.uint32).view(np.int32)
    lo = (keys & np.uint64(0xFFFFFFFF)).astype(np.uint32).view(np.int32)
    return hi, lo


def knoise_function():  # -> brian2.Function
    """The brian2 Function ``nm_knoise(hi, lo, step)`` (built once)."""
    return brian_function("nm_knoise", nm_knoise, ["integer"] * 3, _KNOISE_CYTHON)


def kpoisson_function():  # -> brian2.Function
    """The brian2 Function ``nm_kpoisson(lam, hi, lo, step)`` (built once)."""
    return brian_function(
        "nm_kpoisson", nm_kpoisson, ["float", "integer", "integer", "integer"], _KPOISSON_CYTHON
    )
