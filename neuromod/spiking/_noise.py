"""Counter-based noise for brian2 code generation.

brian2's ``xi``/``randn`` draw from a buffered global generator at ~20 ns per number, which would dominate an
f-I sweep of 10^9 neuron-steps. Here each noise sample is a pure function of (neuron index, time step, seed):
a SplitMix64 hash (Steele, Lea & Flood 2014, OOPSLA) of the three integers gives a uniform number ``u`` in
[0, 1), returned as ``sqrt(12) * (u - 1/2)`` (mean 0, variance 1). Used as the increment of an Euler-Maruyama
step (``v += sigma * sqrt(2 dt / tau) * z``) it gives the same diffusion limit as Gaussian increments (weak
order 1), and because it is stateless the result is bit-identical for a given seed, on every target and in
any evaluation order, and a built ``cpp_standalone`` binary can change the seed as a run argument.
"""

from __future__ import annotations

import numpy as np

__all__ = ["nm_noise_function"]

_M1 = 0x9E3779B97F4A7C15
_M2 = 0xBF58476D1CE4E5B9
_M3 = 0x94D049BB133111EB
_M4 = 0xD1B54A32D192ED03
_SCALE = 3.4641016151377544  # sqrt(12)

_CYTHON = f"""
cdef inline unsigned long long _nm_mix(unsigned long long z):
    z = z + {_M1}ULL
    z = (z ^ (z >> 30)) * {_M2}ULL
    z = (z ^ (z >> 27)) * {_M3}ULL
    return z ^ (z >> 31)

cdef inline double nm_noise(long long i, long long step, long long seed):
    cdef unsigned long long z = _nm_mix(<unsigned long long>i * {_M4}ULL
                                        + _nm_mix(<unsigned long long>step
                                                  + (<unsigned long long>seed << 40)))
    return (<double>(<long long>(z >> 11)) * (1.0 / 9007199254740992.0) - 0.5) * {_SCALE!r}
"""

_CPP = f"""
static inline unsigned long long _nm_mix(unsigned long long z) {{
    z = z + {_M1}ULL;
    z = (z ^ (z >> 30)) * {_M2}ULL;
    z = (z ^ (z >> 27)) * {_M3}ULL;
    return z ^ (z >> 31);
}}
static inline double nm_noise(long long i, long long step, long long seed) {{
    unsigned long long z = _nm_mix((unsigned long long)i * {_M4}ULL
                                   + _nm_mix((unsigned long long)step
                                             + ((unsigned long long)seed << 40)));
    return ((double)(long long)(z >> 11) * (1.0 / 9007199254740992.0) - 0.5) * {_SCALE!r};
}}
"""


def _mix(z: np.ndarray) -> np.ndarray:
    z = z + np.uint64(_M1)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(_M2)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(_M3)
    return z ^ (z >> np.uint64(31))


def nm_noise(i: np.ndarray, step: np.ndarray, seed: np.ndarray) -> np.ndarray:
    """NumPy reference implementation of the hash noise (same bits as the compiled versions)."""
    i64 = np.atleast_1d(np.asarray(i, dtype=np.int64)).view(np.uint64)
    s64 = np.atleast_1d(np.asarray(step, dtype=np.int64)).view(np.uint64)
    k64 = np.atleast_1d(np.asarray(seed, dtype=np.int64)).view(np.uint64)
    with np.errstate(over="ignore"):
        z = _mix(i64 * np.uint64(_M4) + _mix(s64 + (k64 << np.uint64(40))))
    u = (z >> np.uint64(11)).astype(np.float64) * (1.0 / 9007199254740992.0)
    return (u - 0.5) * _SCALE


_FUNCTION = None


def nm_noise_function():  # -> brian2.Function
    """The brian2 :class:`~brian2.core.functions.Function` ``nm_noise(i, step, seed)`` (built once)."""
    global _FUNCTION
    if _FUNCTION is None:
        from brian2 import Function

        func = Function(
            nm_noise,
            arg_units=[1, 1, 1],
            return_unit=1,
            arg_types=["integer", "integer", "integer"],
            return_type="float",
            stateless=True,
        )
        func.implementations.add_implementation("cython", _CYTHON, name="nm_noise")
        func.implementations.add_implementation("cpp", _CPP, name="nm_noise")
        _FUNCTION = func
    return _FUNCTION
