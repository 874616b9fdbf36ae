"""Parameter sets of the spiking models (frozen dataclasses, units in the field names)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from neuromod._checks import check_positive, check_range

__all__ = ["DecisionParams", "LIFParams", "ModulationParams", "params_json"]


@dataclass(frozen=True)
class LIFParams:
    """Conductance-based leaky integrate-and-fire neuron.

    ``C_m dV/dt = g_L (E_L - V) + I``; a spike when ``V > V_th``, then ``V = V_reset`` for ``t_ref``.
    Defaults are the pyramidal cells of Wang (2002), Neuron 36:955-968 (Methods): C_m = 0.5 nF, g_L = 25 nS
    (tau_m = 20 ms), E_L = -70 mV, V_th = -50 mV, V_reset = -55 mV, t_ref = 2 ms. ``noise_mv`` (not in Wang
    2002, whose noise comes from Poisson background input) is the standard deviation of the free membrane
    potential produced by a white-noise current, used when ``noise=True``.

    Attributes
    ----------
    c_m_nf, g_l_ns, e_l_mv, v_th_mv, v_reset_mv, t_ref_ms : float
        Membrane capacitance (nF), leak conductance (nS), leak reversal, threshold and reset potentials (mV),
        absolute refractory period (ms).
    noise_mv : float
        Free-membrane voltage noise (mV) of the unmodulated neuron.
    """

    c_m_nf: float = 0.5
    g_l_ns: float = 25.0
    e_l_mv: float = -70.0
    v_th_mv: float = -50.0
    v_reset_mv: float = -55.0
    t_ref_ms: float = 2.0
    noise_mv: float = 2.0

    def __post_init__(self) -> None:
        for name in ("c_m_nf", "g_l_ns", "t_ref_ms"):
            check_positive(name, getattr(self, name))
        check_positive("noise_mv", self.noise_mv, allow_zero=True)
        if not self.v_reset_mv < self.v_th_mv:
            raise ValueError(f"v_reset_mv={self.v_reset_mv!r} must be below v_th_mv={self.v_th_mv!r}")

    @property
    def tau_m_ms(self) -> float:
        """Membrane time constant C_m / g_L in ms."""
        return 1e3 * self.c_m_nf / self.g_l_ns


@dataclass(frozen=True)
class ModulationParams:
    """How a neuromodulator level m in [0, 1] acts through each mechanism (m = 0: plain LIF).

    The modulator follows ``dm/dt = (u(t) - m) / tau_mod`` with ``u(t)`` the context schedule. The maps
    m -> effect (all linear in m):

    * ``input_gain``: synaptic efficacy ``g(m) = gain_min + (gain_max - gain_min) m`` multiplies the input
      current (:func:`neuromod.spiking.input_gain_factor`). With the default ``gain_min = 1`` m = 0 is the
      plain LIF and the gain only rises; ``gain_min < 1`` lets it fall below the unmodulated efficacy 1
      (reached at ``m = (1 - gain_min) / (gain_max - gain_min)``).
    * ``leak``: leak conductance ``g_L(m) = g_L (1 - (1 - leak_scale_min) m)`` (neuromodulatory closure of K+
      leak channels, e.g. by acetylcholine or noradrenaline; McCormick 1992, Prog Neurobiol 39:337).
    * ``threshold``: effective threshold raised by ``dV(m) = threshold_shift_mv m``, realised as the
      subtractive current ``dI(m) = g_L dV(m)`` (see :func:`neuromod.spiking.drive_shift_na`).
    * ``background``: the balanced background of Chance, Abbott & Reyes (2002), Neuron 35:773-782:
      excitatory and inhibitory Poisson synaptic input whose rates rise together with m. Each event opens a
      conductance ``q`` decaying with ``tau`` (reversals ``e_e_mv``, ``e_i_mv``). Everything else follows
      from these numbers (``neuromod.spiking.mechanisms.background_input``): the mean conductances
      ``G = m rate q tau`` (Campbell's theorem), the inhibitory rate that balances the excitation (the
      background's mean current vanishes at ``bg_balance_mv``: it adds conductance and noise, no net
      drive), and the current noise, whose variance grows in proportion to m and matches, at m = 1, the
      free-membrane voltage variance that the Poisson conductances produce. No number is tuned to the f-I
      curve it gives.
    * ``adaptation``: spike-triggered K+ conductance increment ``m adapt_dg_ns`` decaying with
      ``tau_adapt_ms`` (reversal ``e_k_mv``), as in Benda & Herz 2003, Neural Comput 15:2523.

    Background input, at m = 1. Chance et al. (2002) give the construction (Summary: a barrage of
    excitatory and inhibitory synaptic conductances, injected by dynamic clamp, both background firing
    rates increased together in a balanced manner); the numbers here are those of this cell's own synapses,
    scaled to it by construction: the excitatory input is the background of the same cell in Wang (2002),
    Neuron 36:955-968 (Methods), 800 external synapses at 3 Hz (2400 Hz in all) through AMPA synapses of
    2.1 nS with a 2 ms decay; the inhibitory synapses are the cell's GABA_A synapses there (1.3 nS, 5 ms
    decay). Their size sets the noise per unit of conductance (a Poisson conductance of mean G has variance
    ``G q / 2``). The balance potential is the middle of the interspike trajectory, ``(V_reset + V_th) / 2``
    of :class:`LIFParams` (-52.5 mV), so the background adds no mean current where the cell integrates
    towards a spike. This gives G_E = 10.1 nS, G_I = 30.2 nS (4650 Hz of inhibition), a free membrane at
    -59.2 mV with tau_eff = 7.7 ms and a background voltage SD of 1.4 mV. Defaults of the reversal
    potentials are Wang (2002): E_E = 0 mV, E_I = -70 mV.

    Measured with :func:`neuromod.spiking.fi_sweep` over 0.26-1.04 nA (``tests/spiking/test_background.py``):
    at m = 1 the f-I slope falls by 13 % (ratio 0.87) and the onset moves 9 % of that range to the left:
    for this LIF cell the background is mostly a leftward, smoothing shift, not the division Chance et al.
    found in cortical neurons.
    """

    tau_mod_ms: float = 100.0
    gain_max: float = 2.0
    gain_min: float = 1.0
    leak_scale_min: float = 0.5
    threshold_shift_mv: float = 5.0
    bg_rate_e_hz: float = 2400.0
    bg_q_e_ns: float = 2.1
    bg_tau_e_ms: float = 2.0
    bg_q_i_ns: float = 1.3
    bg_tau_i_ms: float = 5.0
    bg_balance_mv: float = -52.5
    e_e_mv: float = 0.0
    e_i_mv: float = -70.0
    adapt_dg_ns: float = 2.0
    tau_adapt_ms: float = 100.0
    e_k_mv: float = -80.0

    def __post_init__(self) -> None:
        for name in (
            "tau_mod_ms",
            "gain_max",
            "tau_adapt_ms",
            "bg_q_e_ns",
            "bg_q_i_ns",
            "bg_tau_e_ms",
            "bg_tau_i_ms",
        ):
            check_positive(name, getattr(self, name))
        for name in ("gain_min", "bg_rate_e_hz", "adapt_dg_ns"):
            check_positive(name, getattr(self, name), allow_zero=True)
        if self.gain_min > self.gain_max:
            raise ValueError(f"gain_min={self.gain_min!r} must not exceed gain_max={self.gain_max!r}")
        check_range("leak_scale_min", self.leak_scale_min, 0.0, 10.0, low_inclusive=False)
        for name in ("e_e_mv", "e_i_mv", "bg_balance_mv", "e_k_mv"):
            check_range(name, getattr(self, name), -200.0, 200.0)
        if not self.e_i_mv < self.bg_balance_mv < self.e_e_mv:
            raise ValueError(
                f"bg_balance_mv={self.bg_balance_mv!r} must lie between e_i_mv={self.e_i_mv!r} and "
                f"e_e_mv={self.e_e_mv!r} (excitation and inhibition can only balance between their reversals)"
            )

    @property
    def bg_rate_i_hz(self) -> float:
        """Inhibitory background rate (Hz) at m = 1 that balances the excitation at ``bg_balance_mv``.

        ``r_I q_I tau_I (E_I - V_bal) + r_E q_E tau_E (E_E - V_bal) = 0``.
        """
        g_e = self.bg_rate_e_hz * self.bg_q_e_ns * self.bg_tau_e_ms * 1e-3
        g_i = g_e * (self.e_e_mv - self.bg_balance_mv) / (self.bg_balance_mv - self.e_i_mv)
        return g_i / (self.bg_q_i_ns * self.bg_tau_i_ms * 1e-3)


@dataclass(frozen=True)
class DecisionParams:
    """Wang (2002) decision circuit, scaled down, with sensory pools a+, a-, b+, b-.

    Architecture and synaptic parameters of Wang (2002), Neuron 36:955-968: ``n_total`` neurons, a fraction
    ``frac_exc`` excitatory; two selective pools (fraction ``frac_selective`` of the excitatory cells each),
    the rest non-selective; shared inhibition; recurrent AMPA, NMDA (saturating, Mg2+ block) and GABA_A
    synapses; structured weights ``w_plus`` within a selective pool and
    ``w_minus = 1 - frac_selective (w_plus - 1) / (1 - frac_selective)`` between selective pools and from the
    non-selective pool; every cell receives ``ext_rate_hz`` background Poisson input (800 synapses at 3 Hz in
    the paper) through AMPA. Interneurons: C_m = 0.2 nF, g_L = 20 nS, t_ref = 1 ms.

    Scaling: the full network has ``n_total = 2000`` (``DecisionParams.full_size()``). The default
    ``n_total = 400`` keeps every per-neuron quantity and multiplies the recurrent conductances by
    ``2000 / n_total`` (``recurrent_scale``), so each neuron receives the same mean recurrent input; only the
    finite-size fluctuations grow (about sqrt(5) larger for 400 cells).

    Sensory stage (not in Wang 2002): four pools of ``n_sensory`` LIF cells (:class:`LIFParams` and the
    chosen mechanism); pool ``x±`` receives Poisson input of rate ``sens_in_hz (1 ± c_x / 100)`` (all
    inputs of a cell pooled) through a current synapse of ``sens_w_na`` per event (tau 2 ms) during the
    stimulus; a+ and b+ project to selective pool 1, a- and b- to pool 2 through AMPA synapses of
    ``g_sens_ns`` (this replaces the stimulus input of ``mu0 (1 ± c/100)`` Hz of the paper).
    Reaction time: first time after stimulus onset at which a selective pool's rate, low-pass filtered
    with ``rate_tau_ms``, exceeds ``threshold_hz``. Between trials a
    GABA_A-like conductance ``g_reset_ns`` on every excitatory decision cell for ``reset_ms`` silences the
    circuit so NMDA reverberation dies out (the sensory pools and the modulator are untouched).
    """

    n_total: int = 400
    frac_exc: float = 0.8
    frac_selective: float = 0.15
    w_plus: float = 1.7
    ext_rate_hz: float = 2400.0
    # Wang 2002 conductances for N = 2000 (nS): pyramidal / interneuron
    g_ext_e_ns: float = 2.1
    g_ext_i_ns: float = 1.62
    g_ampa_e_ns: float = 0.05
    g_ampa_i_ns: float = 0.04
    g_nmda_e_ns: float = 0.165
    g_nmda_i_ns: float = 0.13
    g_gaba_e_ns: float = 1.3
    g_gaba_i_ns: float = 1.0
    tau_ampa_ms: float = 2.0
    tau_nmda_rise_ms: float = 2.0
    tau_nmda_decay_ms: float = 100.0
    alpha_nmda_per_ms: float = 0.5
    tau_gaba_ms: float = 5.0
    mg_mm: float = 1.0
    c_m_i_nf: float = 0.2
    g_l_i_ns: float = 20.0
    t_ref_i_ms: float = 1.0
    # sensory stage
    n_sensory: int = 20
    sens_in_hz: float = 2000.0
    sens_w_na: float = 0.13
    g_sens_ns: float = 0.1
    # read-out and reset
    rate_tau_ms: float = 20.0
    threshold_hz: float = 25.0
    g_reset_ns: float = 20.0

    def __post_init__(self) -> None:
        if isinstance(self.n_total, bool) or not isinstance(self.n_total, int) or self.n_total < 50:
            raise ValueError(f"n_total={self.n_total!r} must be an integer >= 50")
        check_range("frac_exc", self.frac_exc, 0.0, 1.0, low_inclusive=False, high_inclusive=False)
        check_range(
            "frac_selective", self.frac_selective, 0.0, 0.5, low_inclusive=False, high_inclusive=False
        )
        check_positive("w_plus", self.w_plus)
        if self.n_sensory < 1:
            raise ValueError(f"n_sensory={self.n_sensory!r} must be >= 1")

    @classmethod
    def full_size(cls, **changes: Any) -> DecisionParams:
        """The full-size network of Wang (2002): 2000 neurons (1600 excitatory, 400 inhibitory)."""
        return cls(**{"n_total": 2000, **changes})

    @property
    def recurrent_scale(self) -> float:
        """Factor multiplying the recurrent conductances, 2000 / n_total."""
        return 2000.0 / self.n_total

    @property
    def w_minus(self) -> float:
        """Weight between selective pools and from the non-selective pool (keeps mean input at 1)."""
        f = self.frac_selective
        return 1.0 - f * (self.w_plus - 1.0) / (1.0 - f)


def params_json(**parts: Any) -> str:
    """JSON of one or more parameter dataclasses, ``{"name": asdict(value), ...}``, keys sorted."""
    return json.dumps({k: dataclasses.asdict(v) for k, v in parts.items()}, sort_keys=True)
