"""Reference right-hand side of the deterministic Wong & Wang (2006) model, for ``solve_ivp``.

This is the independent, plain-Python formulation used as the accuracy reference in the tests and
as the baseline in ``benchmarks/bench_rate.py`` (what a user would otherwise write).
"""

from __future__ import annotations

import math

import numpy as np

from neuromod.rate.params import WongWang2006

__all__ = ["abbott_chance_scalar", "wong_wang_rhs"]


def abbott_chance_scalar(x_na: float, params: WongWang2006) -> float:
    """``H(x) = (a x - b) / (1 - exp(-d (a x - b)))`` in Hz for one current (nA)."""
    y = params.a_hz_per_na * x_na - params.b_hz
    z = params.d_s * y
    if abs(z) < 1e-5:
        return (1.0 + z / 2.0 + z * z / 12.0) / params.d_s
    return y / -math.expm1(-z)


def wong_wang_rhs(t_ms: float, s: np.ndarray, params: WongWang2006, i1_na: float, i2_na: float) -> np.ndarray:
    """``dS/dt`` (per ms) of the noise-free two-variable model at ``s = (S1, S2)``.

    Parameters
    ----------
    t_ms
        Time (ms); unused (autonomous for constant input), kept for ``solve_ivp``.
    s
        ``(S1, S2)``.
    params
        Model parameters.
    i1_na, i2_na
        External stimulus currents (nA) of populations 1 and 2.

    Returns
    -------
    numpy.ndarray
        ``(dS1/dt, dS2/dt)`` in 1/ms.

    Examples
    --------
    >>> from scipy.integrate import solve_ivp
    >>> p = WongWang2006()
    >>> sol = solve_ivp(wong_wang_rhs, (0.0, 100.0), [0.1, 0.1], args=(p, 0.02, 0.01),
    ...                 rtol=1e-8, atol=1e-10)
    >>> bool(sol.success)
    True
    """
    s1, s2 = float(s[0]), float(s[1])
    x1 = params.j11_na * s1 - params.j12_na * s2 + params.i0_na + i1_na
    x2 = params.j11_na * s2 - params.j12_na * s1 + params.i0_na + i2_na
    g = params.gamma / 1000.0
    h1 = abbott_chance_scalar(x1, params)
    h2 = abbott_chance_scalar(x2, params)
    return np.array(
        [
            -s1 / params.tau_s_ms + (1.0 - s1) * g * h1,
            -s2 / params.tau_s_ms + (1.0 - s2) * g * h2,
        ]
    )
