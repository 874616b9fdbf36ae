"""The ``background`` mechanism: its input derived from Poisson statistics, and what it does to the f-I curve.

Reference: Chance, F. S., Abbott, L. F. & Reyes, A. D. (2002). Gain modulation from background synaptic
input. Neuron 35:773-782. In cortical pyramidal cells, balanced excitatory and inhibitory background input
(rates raised together) scaled the f-I curve divisively, the conductance alone shifting it to the right
and the noise alone to the left.

What the run shows for this LIF cell (Wang 2002 parameters, background of :class:`ModulationParams`,
drives of the gain-curves experiment, 0.26-1.04 nA): the background is *not* divisive by the issue's
criterion (slope ratio <= 0.8 with a threshold shift under 5 % of the drive range). Its noise smooths the
knee of the curve and moves its onset to the left by about 9 % of the drive range; the slope over the
firing part falls by about 13 % (ratio 0.87 +- 0.005 over 32 repeats); above ~100 Hz the curves coincide
(an LIF's high-rate slope, about 1 / (C (V_th - V_reset)), does not depend on its conductance). Every
comparison below allows ``Z`` standard errors over independent repeats.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from neuromod.spiking import LIFParams, ModulationParams, fi_sweep
from neuromod.spiking.mechanisms import background_input

Z = 3.0  # standard errors allowed by every statistical check
#: Drives of the gain-curves experiment: relative drive 0.5-2.0 of 0.52 nA (2000 Hz x 0.13 nA x 2 ms).
DRIVES = 2000.0 * 0.13 * 2e-3 * np.linspace(0.5, 2.0, 16)
SPAN = float(DRIVES[-1] - DRIVES[0])


def test_background_is_derived_from_its_poisson_input() -> None:
    """Mean conductances r q tau, the inhibition that balances them at bg_balance_mv, and the noise
    amplitude that gives the free membrane the Campbell variance (no tuned number)."""
    mod = ModulationParams()
    bg = background_input()
    assert bg.g_e_ns == pytest.approx(2400.0 * 2.1 * 2e-3)  # Wang (2002): 800 x 3 Hz, 2.1 nS, 2 ms
    assert bg.g_e_ns * (mod.e_e_mv - mod.bg_balance_mv) == pytest.approx(
        bg.g_i_ns * (mod.bg_balance_mv - mod.e_i_mv)
    )
    assert bg.rate_i_hz == pytest.approx(bg.g_i_ns / (mod.bg_q_i_ns * mod.bg_tau_i_ms * 1e-3))
    p = LIFParams()
    assert bg.tau_eff_ms == pytest.approx(1e3 * p.c_m_nf / (p.g_l_ns + bg.g_e_ns + bg.g_i_ns))
    # white current noise sigma sqrt(2 / tau_m) gives the free membrane the variance sigma^2 tau_eff / tau_m
    assert bg.noise_mv**2 * bg.tau_eff_ms / p.tau_m_ms == pytest.approx(bg.sd_v_mv**2)
    # twice the rates: twice the conductances; the noise follows, it is not set separately
    double = background_input(modulation=ModulationParams(bg_rate_e_hz=4800.0))
    assert double.g_i_ns == pytest.approx(2 * bg.g_i_ns) and double.noise_mv != pytest.approx(bg.noise_mv)


def test_campbell_statistics_match_a_poisson_simulation() -> None:
    """Poisson shot-noise conductances on the passive membrane (no threshold), simulated directly: the
    conductance mean and SD are Campbell's theorem exactly (within Z standard errors over membranes); the
    voltage variance also neglects second-order terms (conductance fluctuations changing the time
    constant, voltage fluctuations changing the driving force), bounded by ``bias`` below."""
    mod, p = ModulationParams(), LIFParams()
    bg = background_input()
    rng = np.random.default_rng(7)
    n, dt = 400, 2e-5  # membranes, s
    n_burn, n_keep = int(0.1 / dt), int(1.0 / dt)
    tau_e, tau_i = mod.bg_tau_e_ms * 1e-3, mod.bg_tau_i_ms * 1e-3
    de, di = math.exp(-dt / tau_e), math.exp(-dt / tau_i)
    # jump sizes giving the discrete exponential kernel the area q tau of the continuous one
    ke, ki = mod.bg_q_e_ns * tau_e * (1 - de) / dt, mod.bg_q_i_ns * tau_i * (1 - di) / dt
    ge, gi, v = np.full(n, bg.g_e_ns), np.full(n, bg.g_i_ns), np.full(n, bg.v_free_mv)
    sums = np.zeros((4, n))
    for k in range(n_burn + n_keep):
        ge = ge * de + ke * rng.poisson(bg.rate_e_hz * dt, n)
        gi = gi * di + ki * rng.poisson(bg.rate_i_hz * dt, n)
        v = v + dt / p.c_m_nf * (p.g_l_ns * (p.e_l_mv - v) + ge * (mod.e_e_mv - v) + gi * (mod.e_i_mv - v))
        if k >= n_burn:
            sums += (ge, ge * ge, v, v * v)
    g_mean, g_sq, v_mean, v_sq = sums / n_keep
    g_var, v_var = g_sq - g_mean**2, v_sq - v_mean**2

    def within(values: np.ndarray, expected: float, extra: float = 0.0) -> None:
        se = values.std(ddof=1) / math.sqrt(n)
        assert abs(values.mean() - expected) <= Z * se + extra, (values.mean(), expected, se, extra)

    within(g_mean, bg.g_e_ns)
    within(g_var, bg.sd_g_e_ns**2, extra=bg.sd_g_e_ns**2 * dt / tau_e)  # discrete kernel: O(dt / tau)
    g_tot = p.g_l_ns + bg.g_e_ns + bg.g_i_ns
    rel = (math.hypot(bg.sd_g_e_ns, bg.sd_g_i_ns) / g_tot) ** 2 + (
        bg.sd_v_mv / (bg.v_free_mv - mod.e_i_mv)
    ) ** 2
    within(v_var, bg.sd_v_mv**2, extra=rel * bg.sd_v_mv**2 + bg.sd_v_mv**2 * dt / (2e-3 * bg.tau_eff_ms))


def _line(rates: np.ndarray) -> tuple[float, float, float, float]:
    """Slope (Hz/nA) and x-intercept (nA) of the straight line through the firing part (mean rate 5-150 Hz)
    of each repeat's curve (rates: drive x repeat), as means over repeats with standard errors (the
    intercept -b/a by the delta method)."""
    mean = rates.mean(axis=1)
    ok = (mean > 5.0) & (mean < 150.0)
    assert ok.sum() >= 6, mean
    a, b = np.polyfit(DRIVES[ok], rates[ok], 1)
    cov = np.cov(np.vstack([a, b]), ddof=1) / rates.shape[1]
    grad = np.array([b.mean() / a.mean() ** 2, -1.0 / a.mean()])
    return a.mean(), math.sqrt(cov[0, 0]), -b.mean() / a.mean(), math.sqrt(grad @ cov @ grad)


def test_background_at_m1_lowers_the_slope_less_than_the_issue_asks_and_moves_the_onset_left(
    seed: int,
) -> None:
    """Chance, Abbott & Reyes (2002) found division in cortical cells; for this LIF cell the derived
    background gives: slope ratio (m = 1 / m = 0) 0.87 +- 0.005, i.e. the slope falls, but not to 0.8;
    onset (x-intercept of the firing part) shifted by -9.0 +- 0.3 % of the drive range, i.e. more than
    5 %, to the left. Each statement is checked at Z standard errors (32 independent repeats)."""
    n_rep = 32
    ds = fi_sweep("background", [0.0, 1.0], DRIVES, n_repeats=n_rep, seed=seed)
    a0, a0_se, t0, t0_se = _line(ds.rate.sel(level=0.0).values)
    a1, a1_se, t1, t1_se = _line(ds.rate.sel(level=1.0).values)
    ratio = a1 / a0
    ratio_se = ratio * math.hypot(a0_se / a0, a1_se / a1)
    shift, shift_se = (t1 - t0) / SPAN, math.hypot(t0_se, t1_se) / SPAN
    msg = f"slope ratio {ratio:.3f} +- {ratio_se:.3f}, shift {shift:+.3f} +- {shift_se:.3f} of the range"
    assert 1.0 - ratio > Z * ratio_se, msg  # the slope falls ...
    assert ratio - 0.8 > Z * ratio_se, msg  # ... but the ratio stays above 0.8: not the issue's division
    assert -shift - 0.05 > Z * shift_se, msg  # the onset moves left by more than 5 % of the drive range
    # noise-driven firing below the plain cell's rheobase (g_L (V_th - E_L) = 0.5 nA) rises
    low = ds.rate.sel(drive=DRIVES[DRIVES < 0.45][-1])
    se = math.sqrt(low.var("repeat", ddof=1).sum().item() / n_rep)
    assert low.sel(level=1.0).mean().item() - low.sel(level=0.0).mean().item() > Z * se
    # and at the top of the range the two curves agree (within Z standard errors of their difference)
    top = ds.rate.sel(drive=DRIVES[-1])
    se_top = math.sqrt(top.var("repeat", ddof=1).sum().item() / n_rep)
    assert abs(top.sel(level=1.0).mean().item() - top.sel(level=0.0).mean().item()) < Z * se_top + 1 / 0.8
