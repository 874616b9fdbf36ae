"""Fixtures for the spiking tests (fixed seeds; brian2 compile cache per worker, warm across runs)."""

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
