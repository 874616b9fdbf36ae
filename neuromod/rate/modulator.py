"""Modulator kinetics: first-order release/uptake ``dm/dt = (u(t) - m) / tau``.

The level ``m`` (dimensionless) follows the release ``u(t)``, which is piecewise constant on the
simulation grid (it changes only at step boundaries: cue onsets, context switches). Over one step
of length ``dt`` with constant ``u`` the exact solution is::

    m(t + dt) = u + (m(t) - u) * exp(-dt / tau)

which is what every simulator in :mod:`neuromod.rate` uses (no Euler error, stable for any
``dt / tau``). ``tau_ms = 0`` means instantaneous modulation (``m = u`` after each step). In the
correspondence table of ``docs/design.md`` ("The correspondence") ``tau_ms`` is the gate-kinetics
time constant and ``u`` the release pattern set by the ``context``.
"""

from __future__ import annotations

import numpy as np

from neuromod._checks import check_array, check_positive

__all__ = ["modulator_decay", "modulator_step", "simulate_modulator"]


def modulator_decay(dt_ms: float, tau_ms: np.ndarray | float) -> np.ndarray:
    """Per-step decay factor ``exp(-dt / tau)`` (0 where ``tau_ms == 0``).

    Examples
    --------
    >>> float(modulator_decay(1.0, 0.0))
    0.0
    """
    dt = check_positive("dt_ms", dt_ms)
    if np.ndim(tau_ms) == 0:
        tau = np.asarray(check_positive("tau_ms", tau_ms, allow_zero=True))
    else:
        tau = check_array("tau_ms", tau_ms, ndim=None, low=0.0)
    with np.errstate(divide="ignore"):
        return np.where(tau > 0.0, np.exp(-dt / np.where(tau > 0.0, tau, 1.0)), 0.0)


def modulator_step(
    level: np.ndarray,
    release: np.ndarray | float,
    *,
    dt_ms: float,
    tau_ms: np.ndarray | float,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Advance modulator levels by one step with the exact update for constant release.

    Parameters
    ----------
    level
        Current levels ``m`` (dimensionless).
    release
        Release ``u`` over the step (dimensionless), broadcast against `level`.
    dt_ms
        Step length (ms), > 0.
    tau_ms
        Time constant(s) (ms), >= 0 (0: instantaneous), broadcast against `level`.
    out
        Optional output array (may be `level` itself for an in-place update).

    Returns
    -------
    numpy.ndarray
        ``u + (m - u) * exp(-dt / tau)``.

    Raises
    ------
    ValueError
        On non-positive ``dt_ms``, negative ``tau_ms`` or non-finite values.

    Examples
    --------
    >>> m = modulator_step(np.zeros(2), 1.0, dt_ms=100.0, tau_ms=100.0)
    >>> np.allclose(m, 1.0 - np.exp(-1.0))
    True
    """
    lev = check_array("level", level, ndim=None)
    rel = check_array("release", release, ndim=None)
    decay = modulator_decay(dt_ms, tau_ms)
    if out is None:
        out = np.empty(np.broadcast_shapes(lev.shape, rel.shape, decay.shape))
    np.subtract(lev, rel, out=out)
    out *= decay
    out += rel
    return out


def simulate_modulator(
    release: np.ndarray,
    *,
    dt_ms: float,
    tau_ms: np.ndarray | float,
    m0: np.ndarray | float = 0.0,
) -> np.ndarray:
    """Levels over time for a release sampled on the step grid (last axis is time).

    Parameters
    ----------
    release
        ``u`` of shape ``(..., n_steps)``; ``release[..., n]`` holds over ``[n dt, (n+1) dt)``.
    dt_ms
        Step length (ms), > 0.
    tau_ms
        Time constant(s) (ms), >= 0, broadcast against ``release[..., 0]``.
    m0
        Initial level(s), broadcast against ``release[..., 0]``.

    Returns
    -------
    numpy.ndarray
        Levels of shape ``(..., n_steps + 1)``; index ``n`` is ``m(n dt)`` (index 0 is `m0`).

    Raises
    ------
    ValueError
        On non-positive ``dt_ms``, negative ``tau_ms``, non-finite values or an empty time axis.

    Examples
    --------
    >>> m = simulate_modulator(np.ones(3), dt_ms=10.0, tau_ms=10.0)
    >>> np.allclose(m, 1.0 - np.exp(-np.arange(4.0)))
    True
    """
    rel = check_array("release", release, ndim=None)
    if rel.ndim == 0 or rel.shape[-1] == 0:
        raise ValueError(f"release must have a non-empty last (time) axis, got shape {rel.shape}")
    decay = np.broadcast_to(modulator_decay(dt_ms, tau_ms), rel.shape[:-1])
    start = check_array("m0", m0, ndim=None)
    levels = np.empty((*rel.shape[:-1], rel.shape[-1] + 1))
    levels[..., 0] = start
    for n in range(rel.shape[-1]):
        cur = levels[..., n + 1]
        np.subtract(levels[..., n], rel[..., n], out=cur)
        cur *= decay
        cur += rel[..., n]
    return levels
