"""Parameters of the Wong & Wang (2006) reduced two-variable decision circuit."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

from neuromod._checks import check_positive

__all__ = ["WongWang2006"]


@dataclass(frozen=True)
class WongWang2006:
    """Published parameters of the reduced two-variable decision model.

    Wong, K.-F. & Wang, X.-J. (2006). A recurrent network mechanism of time integration in perceptual
    decisions. *J. Neurosci.* 26(4):1314-1328, doi:10.1523/JNEUROSCI.3733-05.2006 (Table 1 and
    eqs. 10-15 of the two-variable model with the full-model fitted values).

    The model, with ``i in {1, 2}`` and ``j`` the other population::

        dS_i/dt  = -S_i / tau_S + (1 - S_i) * gamma * H(x_i)
        x_i      = J11 * S_i - J12 * S_j + I0 + I_i + I_noise,i
        H(x)     = (a x - b) / (1 - exp(-d (a x - b)))             (Abbott & Chance 2005)
        I_i      = J_ext * mu0 * (1 +/- c' / 100)                    (c' = coherence in %)
        tau_AMPA dI_noise,i/dt = -I_noise,i + eta_i(t) sqrt(tau_AMPA) sigma_noise

    ``r_i = H(x_i)`` is the firing rate of population ``i``; a decision is made when one rate reaches
    ``threshold_hz``. In the correspondence table of ``docs/design.md`` ("The correspondence") the
    two populations are two ``population`` entries driven by (gated) sensory input; the gain of that
    input is what neuromodulation sets.

    Parameters
    ----------
    a_hz_per_na, b_hz, d_s
        Abbott-Chance transfer function constants ``a`` (Hz/nA), ``b`` (Hz), ``d`` (s).
    gamma
        Kinetic parameter of the NMDA gating variable (dimensionless).
    tau_s_ms
        NMDA gating time constant ``tau_S`` (ms).
    tau_ampa_ms
        Time constant of the Ornstein-Uhlenbeck input noise ``tau_AMPA`` (ms).
    j11_na, j12_na
        Self-excitation ``J_N11 = J_N22`` and cross-inhibition ``J_N12 = J_N21`` (nA), entering
        ``x_1 = J11 S_1 - J12 S_2`` (the published sign convention).
    j_ext_na_per_hz
        Average external synaptic coupling ``J_A,ext`` (nA/Hz).
    i0_na
        Background current ``I_0`` (nA).
    sigma_noise_na
        Noise amplitude ``sigma_noise`` (nA).
    mu0_hz
        Stimulus strength ``mu_0`` (Hz).
    threshold_hz
        Decision threshold on the population rates (Hz).

    Examples
    --------
    >>> p = WongWang2006()
    >>> p.gamma, p.tau_s_ms
    (0.641, 100.0)
    >>> WongWang2006(tau_s_ms=-1.0)
    Traceback (most recent call last):
    ...
    ValueError: tau_s_ms=-1.0 must be a finite number > 0
    """

    a_hz_per_na: float = 270.0
    b_hz: float = 108.0
    d_s: float = 0.154
    gamma: float = 0.641
    tau_s_ms: float = 100.0
    tau_ampa_ms: float = 2.0
    j11_na: float = 0.2609
    j12_na: float = 0.0497
    j_ext_na_per_hz: float = 5.2e-4
    i0_na: float = 0.3255
    sigma_noise_na: float = 0.02
    mu0_hz: float = 30.0
    threshold_hz: float = 15.0

    def __post_init__(self) -> None:
        for name in ("a_hz_per_na", "d_s", "gamma", "tau_s_ms", "tau_ampa_ms", "threshold_hz"):
            check_positive(name, getattr(self, name))
        for name in ("b_hz", "j11_na", "j12_na", "j_ext_na_per_hz", "i0_na", "sigma_noise_na", "mu0_hz"):
            check_positive(name, getattr(self, name), allow_zero=True)

    def to_json(self) -> str:
        """Return the parameters as a sorted JSON object (for ``attrs["params_json"]``)."""
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    def stimulus_na(self, coherence_pct: float) -> tuple[float, float]:
        """External stimulus currents ``(I_1, I_2)`` in nA for a coherence in percent.

        Examples
        --------
        >>> [round(i, 6) for i in WongWang2006().stimulus_na(51.2)]
        [0.023587, 0.007613]
        """
        base = self.j_ext_na_per_hz * self.mu0_hz
        c = float(coherence_pct) / 100.0
        return (base * (1.0 + c), base * (1.0 - c))
