"""Modulator kinetics: exact update vs the analytic solution of dm/dt = (u - m) / tau."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose

from neuromod.rate import modulator_step, simulate_modulator


@pytest.mark.parametrize("tau_ms", [0.3, 5.0, 100.0, 1000.0])
@pytest.mark.parametrize("dt_ms", [0.1, 0.5, 2.0])
def test_step_in_release_follows_exponential(tau_ms: float, dt_ms: float) -> None:
    n = round(1000.0 / dt_ms)
    release = np.zeros(n)
    release[n // 4 :] = 0.8  # step at t = n/4 * dt
    m = simulate_modulator(release, dt_ms=dt_ms, tau_ms=tau_ms, m0=0.2)
    t = np.arange(n + 1) * dt_ms
    t_step = (n // 4) * dt_ms
    with np.errstate(over="ignore"):
        expected = np.where(
            t <= t_step,
            0.2 * np.exp(-t / tau_ms),
            0.8 + (0.2 * np.exp(-t_step / tau_ms) - 0.8) * np.exp(-(t - t_step) / tau_ms),
        )
    assert_allclose(m, expected, rtol=0, atol=1e-6)
    assert np.max(np.abs(m - expected)) < 1e-12  # exact up to rounding


def test_instantaneous_and_batched() -> None:
    release = np.array([[0.0, 1.0, 0.5], [1.0, 1.0, 0.0]])
    m = simulate_modulator(release, dt_ms=1.0, tau_ms=np.array([0.0, 10.0]), m0=0.0)
    assert_allclose(m[0], [0.0, 0.0, 1.0, 0.5], atol=0)
    d = np.exp(-0.1)
    assert_allclose(m[1], [0.0, 1 - d, 1 - d * d, (1 - d * d) * d], rtol=1e-15)


def test_step_in_place() -> None:
    level = np.array([0.0, 1.0])
    out = modulator_step(level, np.array([1.0, 0.0]), dt_ms=10.0, tau_ms=10.0, out=level)
    assert out is level
    assert_allclose(level, [1 - np.exp(-1), np.exp(-1)], rtol=1e-15)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"tau_ms": -1.0}, r"tau_ms=-1\.0 must be a finite number >= 0"),
        ({"dt_ms": 0.0}, r"dt_ms=0\.0 must be a finite number > 0"),
        ({"release": np.array([0.0, np.nan])}, r"release must be finite"),
    ],
)
def test_errors(kwargs: dict, match: str) -> None:
    args = {"release": np.zeros(3), "dt_ms": 1.0, "tau_ms": 1.0, **kwargs}
    with pytest.raises(ValueError, match=match):
        simulate_modulator(**args)
