"""Counter-based noise for brian2 code generation.

brian2's ``xi``/``randn`` draw from a buffered global generator at ~20 ns per number, which would dominate an
f-I sweep of 10^9 neuron-steps. Here each noise sample is a pure function of (neuron index, time step, seed),
returned as ``sqrt(12) * (u - 1/2)`` for a uniform ``u`` (mean 0, variance 1). Used as the increment of an
Euler-Maruyama step (``v += sigma * sqrt(2 dt / tau) * z``) it gives the same diffusion limit as Gaussian
increments (weak order 1), and because it is stateless the result is bit-identical for a given seed, on every
target and in any evaluation order, and a built ``cpp_standalone`` binary can change the seed as a run
argument. Two generators (``NOISE_GENERATORS``):

``"splitmix64"`` (:func:`nm_noise_function`, brian2 name ``nm_noise``)
    The SplitMix64 finaliser (Steele, Lea & Flood 2014, "Fast splittable pseudorandom number generators",
    OOPSLA) applied twice: ``k = mix64(step + seed << 40)``, ``z = mix64(i * M4 + k)``; ``u`` is the top 53
    bits of ``z``. 64-bit multiplies and an int64-to-double conversion, which AVX2 has no vector instructions
    for, so the neuron loop stays scalar (~4 ns per sample in an f-I sweep).

``"lowbias32"`` (:func:`nm_noise32_function`, brian2 name ``nm_noise32``)
    A keyed 32-bit hash: the same per-step key ``k = mix64(step + seed << 40)`` (the same for every neuron,
    so the compiler computes it once per step, outside the neuron loop), then per neuron Wellons'
    ``lowbias32`` (C. Wellons, "Prospecting for hash functions", 2018, https://nullprogram.com/blog/2018/07/31/,
    https://github.com/skeeto/hash-prospector; two xorshift-multiply rounds, avalanche bias 0.17) of
    ``i ^ k_lo``, with the high key half ``k_hi`` xored in between its two rounds::

        x = i ^ k_lo;  x = (x ^ x >> 16) * 0x7feb352d;  x = (x ^ x >> 15) ^ k_hi
        x = x * 0x846ca68b;  x = x ^ x >> 16;  z = sqrt(12) (int32(x) + 1/2) / 2^32

    Only 32-bit integer operations and an int32-to-double conversion, so the neuron loop vectorises (8 lanes
    with AVX2): about 8x cheaper than ``splitmix64`` in the state update. For a fixed step the map from ``i``
    to ``x`` is a bijection (no two neurons share a value); the second key half breaks the structure a single
    xor key would leave (step t' a permutation ``i -> i ^ d`` of step t whenever the low key halves differ by
    ``d``). ``int32(x) + 1/2`` is symmetric about 0 over the 2^32 values: mean exactly 0, variance
    ``1 - 2^-64``, resolution 2^-32 (against 2^-53 for ``splitmix64``, immaterial for a diffusion
    increment). The statistical tests are in ``tests/spiking/test_noise.py``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["NOISE_GENERATORS", "nm_noise32_function", "nm_noise_function", "noise_call"]

#: The noise generators (see the module docstring); ``"splitmix64"`` is ``nm_noise``.
NOISE_GENERATORS: tuple[str, ...] = ("splitmix64", "lowbias32")

_M1 = 0x9E3779B97F4A7C15
_M2 = 0xBF58476D1CE4E5B9
_M3 = 0x94D049BB133111EB
_M4 = 0xD1B54A32D192ED03
_SCALE = 3.4641016151377544  # sqrt(12)
_L1 = 0x7FEB352D  # lowbias32 multipliers (Wellons 2018)
_L2 = 0x846CA68B
_SCALE32 = _SCALE / 4294967296.0  # sqrt(12) / 2^32 (exact: a power-of-two scaling of sqrt(12))

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

# noexcept: without it Cython checks PyErr_Occurred() after every call, which keeps the loop from vectorising
_CYTHON32 = f"""
cdef inline unsigned long long _nm32_key(long long step, long long seed) noexcept nogil:
    cdef unsigned long long z = <unsigned long long>step + (<unsigned long long>seed << 40) + {_M1}ULL
    z = (z ^ (z >> 30)) * {_M2}ULL
    z = (z ^ (z >> 27)) * {_M3}ULL
    return z ^ (z >> 31)

cdef inline double nm_noise32(int i, long long step, long long seed) noexcept nogil:
    cdef unsigned long long k = _nm32_key(step, seed)
    cdef unsigned int x = (<unsigned int>i) ^ (<unsigned int>k)
    x = (x ^ (x >> 16)) * {_L1}U
    x = (x ^ (x >> 15)) ^ (<unsigned int>(k >> 32))
    x = x * {_L2}U
    x = x ^ (x >> 16)
    return (<double>(<int>x) + 0.5) * {_SCALE32!r}
"""

_CPP32 = f"""
static inline unsigned long long _nm32_key(long long step, long long seed) {{
    unsigned long long z = (unsigned long long)step + ((unsigned long long)seed << 40) + {_M1}ULL;
    z = (z ^ (z >> 30)) * {_M2}ULL;
    z = (z ^ (z >> 27)) * {_M3}ULL;
    return z ^ (z >> 31);
}}
static inline double nm_noise32(int i, long long step, long long seed) {{
    const unsigned long long k = _nm32_key(step, seed);
    unsigned int x = (unsigned int)i ^ (unsigned int)k;
    x = (x ^ (x >> 16)) * {_L1}U;
    x = (x ^ (x >> 15)) ^ (unsigned int)(k >> 32);
    x = x * {_L2}U;
    x = x ^ (x >> 16);
    return ((double)(int)x + 0.5) * {_SCALE32!r};
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


def nm_noise32(i: np.ndarray, step: np.ndarray, seed: np.ndarray) -> np.ndarray:
    """NumPy reference implementation of the ``lowbias32`` noise (same bits as the compiled versions).

    Examples
    --------
    >>> z = nm_noise32(np.arange(200_000), 7, 1)
    >>> bool(abs(z.mean()) < 0.01 and abs(z.var() - 1.0) < 0.01)
    True
    """
    i32 = np.atleast_1d(np.asarray(i, dtype=np.int64)).astype(np.uint32)
    s64 = np.atleast_1d(np.asarray(step, dtype=np.int64)).view(np.uint64)
    k64 = np.atleast_1d(np.asarray(seed, dtype=np.int64)).view(np.uint64)
    with np.errstate(over="ignore"):
        k = _mix(s64 + (k64 << np.uint64(40)))
        x = i32 ^ k.astype(np.uint32)  # astype keeps the low 32 bits
        x = (x ^ (x >> np.uint32(16))) * np.uint32(_L1)
        x = (x ^ (x >> np.uint32(15))) ^ (k >> np.uint64(32)).astype(np.uint32)
        x = x * np.uint32(_L2)
        x = x ^ (x >> np.uint32(16))
    return (x.view(np.int32).astype(np.float64) + 0.5) * _SCALE32


_FUNCTIONS: dict[str, Any] = {}


def brian_function(name: str, py: Any, arg_types: list[str], cython: str, cpp: str | None = None) -> Any:
    """The stateless, dimensionless, float-valued brian2 ``Function`` `name` (built once per name): `py`
    for the numpy target, the `cython` (and `cpp`) code for the compiled ones."""
    if name not in _FUNCTIONS:
        from brian2 import Function

        func = Function(
            py,
            arg_units=[1] * len(arg_types),
            return_unit=1,
            arg_types=arg_types,
            return_type="float",
            stateless=True,
        )
        func.implementations.add_implementation("cython", cython, name=name)
        if cpp is not None:
            func.implementations.add_implementation("cpp", cpp, name=name)
        _FUNCTIONS[name] = func
    return _FUNCTIONS[name]


def nm_noise_function():  # -> brian2.Function
    """The brian2 :class:`~brian2.core.functions.Function` ``nm_noise(i, step, seed)`` (built once)."""
    return brian_function("nm_noise", nm_noise, ["integer"] * 3, _CYTHON, _CPP)


def nm_noise32_function():  # -> brian2.Function
    """The brian2 :class:`~brian2.core.functions.Function` ``nm_noise32(i, step, seed)`` (built once)."""
    return brian_function("nm_noise32", nm_noise32, ["integer"] * 3, _CYTHON32, _CPP32)


def noise_call(generator: str) -> tuple[str, str, object]:
    """The brian2 call of a noise generator, its namespace name and its Function.

    Parameters
    ----------
    generator : {"splitmix64", "lowbias32"}
        One of :data:`NOISE_GENERATORS`.

    Returns
    -------
    call, name, function
        ``call`` is the expression ``name(i, t_in_timesteps, noise_seed)`` for the model equations;
        ``function`` belongs in the namespace under ``name``.

    Examples
    --------
    >>> noise_call("splitmix64")[0]
    'nm_noise(i, t_in_timesteps, noise_seed)'
    """
    if generator == "splitmix64":
        name, func = "nm_noise", nm_noise_function()
    elif generator == "lowbias32":
        name, func = "nm_noise32", nm_noise32_function()
    else:
        raise ValueError(f"noise_generator={generator!r} is not one of {NOISE_GENERATORS}")
    return f"{name}(i, t_in_timesteps, noise_seed)", name, func
