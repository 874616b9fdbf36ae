"""Modulation mechanisms as equation changes of the LIF neuron.

Plain LIF (``mechanism="none"``), with ``I_in`` the input current and ``m`` the modulator level::

    C_m dV/dt = g_L (E_L - V) + I_in + C_m sigma sqrt(2 / tau_m) xi(t)  (held at V_reset for t_ref)

Each mechanism changes one term (m = 0 recovers the plain LIF exactly; for ``input_gain`` when
``gain_min = 1``, the default):

=============  =======================================================================================
mechanism      equation change
=============  =======================================================================================
input_gain     ``I_in -> g(m) I_in``, ``g(m) = gain_min + (gain_max - gain_min) m``  (multiplicative on drive)
leak           ``g_L -> g_L (1 - (1 - leak_scale_min) m)``  (steeper, left-shifted f-I curve)
threshold      ``+ (- dI(m))`` with ``dI(m) = g_L dV(m)``, ``dV(m) = threshold_shift_mv m``
background     ``+ m G_E (E_E - V) + m G_I (E_I - V)`` and noise variance ``sigma^2 + m sigma_bg^2``
adaptation     ``+ g_a (E_K - V)``, ``dg_a/dt = -g_a / tau_a``, ``g_a += m dg_a`` at each spike
=============  =======================================================================================

Threshold as a pure shift. Raising V_th alone is *not* a pure shift of the LIF f-I curve: it also lengthens
the reset-to-threshold trajectory, which lowers the slope. The ``threshold`` mechanism therefore moves the
threshold *and* the reset (and the resting potential) together relative to the drive: it subtracts the
current ``dI(m) = g_L dV(m)``, which is the same as lowering E_L by dV(m), i.e. raising V_th and V_reset by
dV(m) relative to rest. Then ``r(I; m) = r(I - dI(m); 0)`` exactly: a shift by ``dI(m)`` along the drive axis.

Background (Chance, Abbott & Reyes 2002, Neuron 35:773-782): balanced excitatory and inhibitory Poisson
background input raises the total conductance (a subtractive effect with a shorter time constant) and the
input noise (an additive, smoothing effect); in their cortical neurons, together, they scaled the f-I curve
divisively. Here the input is given by its Poisson statistics (:class:`ModulationParams`: rate, unitary
conductance and decay of each synapse type); :func:`background_input` derives from them, with no free
choice, the mean conductances ``G_E``, ``G_I`` (the inhibitory rate balances the excitation at
``bg_balance_mv``) and the noise ``sigma_bg``: Campbell's theorem gives the variance of the free membrane
potential that the two shot-noise conductances produce (driving forces at the free membrane potential of
m = 1); the white-noise current of amplitude ``sigma_bg`` produces the same variance at m = 1. Whether the
result is divisive for this LIF cell is measured, not assumed (``tests/spiking/test_background.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from neuromod._checks import check_array, check_choice

from .params import LIFParams, ModulationParams

__all__ = [
    "MECHANISMS",
    "BackgroundInput",
    "Mechanism",
    "background_input",
    "drive_shift_na",
    "input_gain_factor",
    "lif_model",
]

Mechanism = Literal["none", "input_gain", "leak", "threshold", "background", "adaptation"]
MECHANISMS: tuple[str, ...] = ("none", "input_gain", "leak", "threshold", "background", "adaptation")


def drive_shift_na(
    level: float | np.ndarray,
    *,
    params: LIFParams | None = None,
    modulation: ModulationParams | None = None,
) -> np.ndarray:
    """Drive-axis shift ``dI(m) = g_L dV(m)`` (nA) of the ``threshold`` mechanism.

    Examples
    --------
    >>> float(drive_shift_na(1.0))  # 25 nS * 5 mV
    0.125
    """
    level = check_array("level", level, ndim=(0, 1), low=0.0, high=1.0)
    params = params or LIFParams()
    modulation = modulation or ModulationParams()
    return params.g_l_ns * 1e-3 * modulation.threshold_shift_mv * level


def input_gain_factor(level: float | np.ndarray, *, modulation: ModulationParams | None = None) -> np.ndarray:
    """Synaptic-efficacy factor ``g(m) = gain_min + (gain_max - gain_min) m`` of the ``input_gain`` mechanism.

    Examples
    --------
    >>> float(input_gain_factor(0.5))
    1.5
    >>> float(input_gain_factor(0.0, modulation=ModulationParams(gain_min=0.5, gain_max=1.5)))
    0.5
    """
    level = check_array("level", level, ndim=(0, 1), low=0.0, high=1.0)
    modulation = modulation or ModulationParams()
    return modulation.gain_min + (modulation.gain_max - modulation.gain_min) * level


@dataclass(frozen=True)
class BackgroundInput:
    """The ``background`` mechanism at m = 1, derived from its Poisson input (:func:`background_input`).

    Attributes
    ----------
    rate_e_hz, rate_i_hz : float
        Total excitatory and (balancing) inhibitory event rates.
    g_e_ns, g_i_ns : float
        Mean conductances ``rate q tau``.
    sd_g_e_ns, sd_g_i_ns : float
        Their standard deviations ``sqrt(rate q^2 tau / 2)``.
    v_free_mv, tau_eff_ms : float
        Free membrane potential and effective membrane time constant ``C / (g_L + G_E + G_I)``.
    sd_v_mv : float
        Standard deviation of the free membrane potential due to the background conductances (Campbell).
    noise_mv : float
        ``sigma_bg``: amplitude of the model's white-noise current (in the units of ``LIFParams.noise_mv``,
        whose current is ``C sigma sqrt(2 / tau_m) xi``) that gives the free membrane the variance
        ``sd_v_mv^2`` at m = 1.
    """

    rate_e_hz: float
    rate_i_hz: float
    g_e_ns: float
    g_i_ns: float
    sd_g_e_ns: float
    sd_g_i_ns: float
    v_free_mv: float
    tau_eff_ms: float
    sd_v_mv: float
    noise_mv: float


def background_input(
    *, params: LIFParams | None = None, modulation: ModulationParams | None = None
) -> BackgroundInput:
    """Mean conductances and noise of the ``background`` mechanism at m = 1, from its Poisson statistics.

    Each synapse type x (E, I) receives Poisson events at rate ``r_x``; each opens a conductance ``q_x``
    that decays with ``tau_x``. By Campbell's theorem the conductance has mean ``G_x = r_x q_x tau_x`` and
    variance ``r_x q_x^2 tau_x / 2``. The inhibitory rate balances the excitation at ``V_bal``
    (``G_E (E_E - V_bal) + G_I (E_I - V_bal) = 0``). With the driving forces ``E_x - V`` taken at the free
    membrane potential ``V_0 = (g_L E_L + G_E E_E + G_I E_I) / g_tot`` (``g_tot = g_L + G_E + G_I``,
    ``tau_eff = C / g_tot``), each input's current is shot noise with kernel ``q_x (E_x - V_0)
    exp(-t / tau_x)``, filtered by the membrane (kernel ``exp(-t / tau_eff) / C``), so Campbell's theorem
    gives the voltage variance::

        var_x = r_x (q_x (E_x - V_0) / C)^2 tau_x^2 tau_eff^2 / (2 (tau_x + tau_eff))

    The model's white-noise current ``C sigma sqrt(2 / tau_m) xi`` gives the variance
    ``sigma^2 tau_eff / tau_m``, so ``sigma_bg^2 = (tau_m / tau_eff) (var_E + var_I)``. (The diffusion
    limit ``tau_x -> 0`` would overstate the variance by ``(tau_x + tau_eff) / tau_eff``.)

    Parameters
    ----------
    params, modulation : LIFParams, ModulationParams, optional
        Neuron and mechanism parameters (published defaults).

    Returns
    -------
    BackgroundInput

    Examples
    --------
    >>> bg = background_input()
    >>> round(bg.g_e_ns, 2), round(bg.g_i_ns, 2), round(bg.v_free_mv, 1)  # 2400 Hz * 2.1 nS * 2 ms
    (10.08, 30.24, -59.2)
    """
    p = params if params is not None else LIFParams()
    mod = modulation if modulation is not None else ModulationParams()
    if not isinstance(p, LIFParams):
        raise TypeError(f"params must be a LIFParams, got {type(p).__name__}")
    if not isinstance(mod, ModulationParams):
        raise TypeError(f"modulation must be a ModulationParams, got {type(mod).__name__}")
    ms = 1e-3
    r_e, r_i = mod.bg_rate_e_hz, mod.bg_rate_i_hz
    q_e, q_i = mod.bg_q_e_ns, mod.bg_q_i_ns  # nS
    t_e, t_i = mod.bg_tau_e_ms * ms, mod.bg_tau_i_ms * ms  # s
    g_e, g_i = r_e * q_e * t_e, r_i * q_i * t_i  # nS
    g_tot = p.g_l_ns + g_e + g_i
    v0 = (p.g_l_ns * p.e_l_mv + g_e * mod.e_e_mv + g_i * mod.e_i_mv) / g_tot  # mV
    tau_eff = p.c_m_nf / g_tot  # nF / nS = s
    c = p.c_m_nf

    def var_v(rate: float, q: float, tau: float, rev: float) -> float:  # mV^2
        amp = q * (rev - v0) / c  # nS mV / nF = mV / s
        return rate * amp**2 * tau**2 * tau_eff**2 / (2.0 * (tau + tau_eff))

    var = var_v(r_e, q_e, t_e, mod.e_e_mv) + var_v(r_i, q_i, t_i, mod.e_i_mv)
    return BackgroundInput(
        rate_e_hz=r_e,
        rate_i_hz=r_i,
        g_e_ns=g_e,
        g_i_ns=g_i,
        sd_g_e_ns=math.sqrt(r_e * q_e**2 * t_e / 2.0),
        sd_g_i_ns=math.sqrt(r_i * q_i**2 * t_i / 2.0),
        v_free_mv=v0,
        tau_eff_ms=tau_eff / ms,
        sd_v_mv=math.sqrt(var),
        noise_mv=math.sqrt(var * p.tau_m_ms * ms / tau_eff),
    )


def _mechanism_terms(mechanism: str, mod: ModulationParams, p: LIFParams) -> dict[str, Any]:
    """The terms of the membrane equation that `mechanism` changes (see the module docstring).

    Returns the leak and input terms, the extra current, the noise amplitude, extra equation lines, extra
    reset code and the constants they need (``namespace``), as brian2 strings and quantities.
    """
    import brian2 as b2

    mv, ns, ms = b2.mV, b2.nS, b2.ms
    out: dict[str, Any] = {
        "leak": "g_l*(e_l - v)",
        "i_in": "i_in",
        "extra": "",
        "sigma": "sigma0",
        "lines": [],
        "reset": "",
        "namespace": {},
    }
    if mechanism == "input_gain":
        out.update(
            i_in="(gain_min + gain_slope*m)*i_in",
            namespace={"gain_min": mod.gain_min, "gain_slope": mod.gain_max - mod.gain_min},
        )
    elif mechanism == "leak":
        out.update(
            leak="g_l*(1 - leak_depth*m)*(e_l - v)", namespace={"leak_depth": 1.0 - mod.leak_scale_min}
        )
    elif mechanism == "threshold":
        out.update(extra=" - g_l*dv_th*m", namespace={"dv_th": mod.threshold_shift_mv * mv})
    elif mechanism == "background":
        bg = background_input(params=p, modulation=mod)
        out.update(
            extra=" + m*(g_bg_e*(e_e - v) + g_bg_i*(e_i - v))",
            sigma="sqrt(sigma0**2 + m*sigma_bg**2)",
            namespace={
                "g_bg_e": bg.g_e_ns * ns,
                "g_bg_i": bg.g_i_ns * ns,
                "e_e": mod.e_e_mv * mv,
                "e_i": mod.e_i_mv * mv,
                "sigma_bg": bg.noise_mv * mv,
            },
        )
    elif mechanism == "adaptation":
        out.update(
            extra=" + g_a*(e_k - v)",
            lines=["dg_a/dt = -g_a/tau_a : siemens"],
            reset="\ng_a += m*dg_a",
            namespace={"dg_a": mod.adapt_dg_ns * ns, "tau_a": mod.tau_adapt_ms * ms, "e_k": mod.e_k_mv * mv},
        )
    return out


def lif_model(
    mechanism: str,
    *,
    noise: bool,
    drive: Literal["constant", "synaptic"] = "constant",
    modulator: Literal["constant", "dynamic"] = "constant",
    params: LIFParams | None = None,
    modulation: ModulationParams | None = None,
    noise_generator: str = "splitmix64",
) -> tuple[str, str, dict[str, Any]]:
    """Equations, reset code and namespace of a modulated LIF neuron (brian2 strings).

    Parameters
    ----------
    mechanism : str
        One of :data:`MECHANISMS`.
    noise : bool
        Include the white-noise current (and the background noise of ``background``).
    drive : {"constant", "synaptic"}
        ``"constant"``: per-neuron injected current ``i_drive`` (amp); ``"synaptic"``: current
        ``w_in * s_in`` from a gating variable ``s_in`` (decay ``tau_in``), incremented by the caller.
    modulator : {"constant", "dynamic"}
        ``"constant"``: ``m`` is a per-neuron constant; ``"dynamic"``: ``dm/dt = (u(t) - m) / tau_mod`` with
        ``u = u_sched(t, col)``, a 2-D TimedArray that the caller adds to the namespace as ``u_sched``.
    params, modulation : LIFParams, ModulationParams, optional
        Neuron and mechanism parameters (published defaults).
    noise_generator : {"splitmix64", "lowbias32"}
        Counter-based noise (``neuromod.spiking._noise``): ``"splitmix64"`` (default) calls
        ``nm_noise(i, t_in_timesteps, noise_seed)``; ``"lowbias32"`` calls ``nm_noise32`` (same arguments),
        which vectorises and is several times cheaper (different numbers for the same seed).

    Returns
    -------
    eqs, reset, namespace
        Use without brian2's ``refractory`` argument: refractoriness is built in (``r_left``).
        The namespace holds every constant with its brian2 unit and the noise function ``nm_noise`` (and
        ``nm_noise32`` with that generator); the equations declare the shared integer ``noise_seed`` (set it
        on the group).
    """
    import brian2 as b2

    from ._noise import NOISE_GENERATORS, nm_noise_function, noise_call

    check_choice("mechanism", mechanism, MECHANISMS)
    check_choice("noise_generator", noise_generator, NOISE_GENERATORS)
    check_choice("drive", drive, ("constant", "synaptic"))
    check_choice("modulator", modulator, ("constant", "dynamic"))
    p = params or LIFParams()
    mod = modulation or ModulationParams()
    mv, ms = b2.mV, b2.ms
    terms = _mechanism_terms(mechanism, mod, p)
    namespace: dict[str, Any] = {
        "c_m": p.c_m_nf * b2.nF,
        "g_l": p.g_l_ns * b2.nS,
        "e_l": p.e_l_mv * mv,
        "tau0": p.tau_m_ms * ms,
        "sigma0": p.noise_mv * mv,
        "nm_noise": nm_noise_function(),
        **terms["namespace"],
    }
    call, name, func = noise_call(noise_generator)
    namespace[name] = func
    sigma = terms["sigma"]
    noise_term = f" + {sigma}*sqrt(2/(tau0*dt))*{call}" if noise else ""
    # Refractoriness as a count-down (branch-free, ~2x faster than brian2's ``(unless refractory)``,
    # which divides per neuron and step): integration is off while r_left >= dt/2, and the reset sets
    # r_left = t_ref - dt, so the neuron is held for exactly round(t_ref / dt) steps, as in brian2.
    lines = [
        f"dv/dt = int(r_left < 0.5*dt)*(({terms['leak']} + {terms['i_in']}{terms['extra']})/c_m{noise_term}) "
        ": volt",
        "dr_left/dt = -1 : second",
        *terms["lines"],
    ]
    if drive == "constant":
        lines += ["i_in = i_drive : amp", "i_drive : amp (constant)"]
    else:
        lines += ["i_in = w_in*s_in : amp", "ds_in/dt = -s_in/tau_in : 1", "w_in : amp (constant)"]
    if modulator == "constant":
        lines.append("m : 1 (constant)")
    else:
        namespace["tau_mod"] = mod.tau_mod_ms * ms
        lines += ["dm/dt = (u_sched(t, col) - m)/tau_mod : 1", "col : integer (constant)"]
    lines.append("noise_seed : integer (constant, shared)")
    reset = "v = v_reset\nr_left = t_ref - dt" + terms["reset"]
    namespace.update(t_ref=p.t_ref_ms * ms, v_reset=p.v_reset_mv * mv, v_th=p.v_th_mv * mv)
    return "\n".join(lines), reset, namespace
