"""Fixtures for the spiking tests (fixed seeds; brian2 compile cache per worker, warm across runs).

Tolerances are derived from standard errors or from the resolution of the measurement (see
:func:`_same_dynamics_tolerance_hz`), never tuned to one seed or to rounding noise.
"""

from __future__ import annotations

import numpy as np
import pytest

from neuromod.spiking import DecisionParams, LIFParams


@pytest.fixture
def seed() -> int:
    return 20240517


@pytest.fixture
def lif() -> LIFParams:
    return LIFParams()


@pytest.fixture
def window_s() -> float:
    """Measurement window of the default f-I sweep (1000 ms run, 200 ms transient)."""
    return 0.8


@pytest.fixture
def small_circuit() -> DecisionParams:
    """A 200-neuron circuit (recurrent conductances x10), enough for psychometric tests."""
    return DecisionParams(n_total=200)


def _lif_rate_analytic(drive_na: np.ndarray, p: LIFParams) -> np.ndarray:
    """r = 1 / (t_ref + tau ln((V_inf - V_reset) / (V_inf - V_th))), 0 below rheobase (Hz).

    Textbook LIF result, e.g. Gerstner, Kistler, Naud & Paninski (2014), Neuronal Dynamics, eq. 1.11.
    """
    v_inf = p.e_l_mv + 1e3 * np.asarray(drive_na) / p.g_l_ns
    out = np.zeros_like(v_inf)
    ok = v_inf > p.v_th_mv
    isi_ms = p.t_ref_ms + p.tau_m_ms * np.log((v_inf[ok] - p.v_reset_mv) / (v_inf[ok] - p.v_th_mv))
    out[ok] = 1e3 / isi_ms
    return out


@pytest.fixture
def lif_rate_analytic():
    """The analytic LIF rate function (see :func:`_lif_rate_analytic`)."""
    return _lif_rate_analytic


def _same_dynamics_tolerance_hz(rate_hz: np.ndarray, dt_ms: float, window_s: float) -> np.ndarray:
    """Largest rate difference (Hz) of two noise-free runs of the same dynamics computed differently.

    Two runs of identical dynamics that differ only in rounding (a term moved from the equation to the
    drive, another target or compiler) cross threshold on the same step unless a crossing is within
    rounding of the threshold. As every interspike interval starts from the same reset state, such a
    borderline crossing moves every interval by one step: the rate ``r`` changes by ``r^2 dt`` at most; and
    the count in the window by one spike (its phase), ``1 / window``.
    """
    return np.asarray(rate_hz) ** 2 * (dt_ms * 1e-3) + 1.0 / window_s


@pytest.fixture
def same_dynamics_tolerance_hz():
    """Rate tolerance of two runs of the same noise-free dynamics (:func:`_same_dynamics_tolerance_hz`)."""
    return _same_dynamics_tolerance_hz
