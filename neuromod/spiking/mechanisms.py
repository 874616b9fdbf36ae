"""Modulation mechanisms as equation changes of the LIF neuron.

Plain LIF (``mechanism="none"``), with ``I_in`` the input current and ``m`` the modulator level::

    C_m dV/dt = g_L (E_L - V) + I_in + C_m sigma sqrt(2 / tau_m) xi(t)  (held at V_reset for t_ref)

Each mechanism changes one term (m = 0 recovers the plain LIF exactly):

=============  =======================================================================================
mechanism      equation change
=============  =======================================================================================
input_gain     ``I_in -> g(m) I_in`` with ``g(m) = 1 + (gain_max - 1) m``  (multiplicative on the drive)
leak           ``g_L -> g_L (1 - (1 - leak_scale_min) m)``  (steeper, left-shifted f-I curve)
threshold      ``+ (- dI(m))`` with ``dI(m) = g_L dV(m)``, ``dV(m) = threshold_shift_mv m``
background     ``+ m g_bg_e (E_E - V) + m g_bg_i (E_I - V)`` and noise variance ``sigma^2 + m sigma_bg^2``
adaptation     ``+ g_a (E_K - V)``, ``dg_a/dt = -g_a / tau_a``, ``g_a += m dg_a`` at each spike
=============  =======================================================================================

Threshold as a pure shift. Raising V_th alone is *not* a pure shift of the LIF f-I curve: it also lengthens
the reset-to-threshold trajectory, which lowers the slope. The ``threshold`` mechanism therefore moves the
threshold *and* the reset (and the resting potential) together relative to the drive: it subtracts the
current ``dI(m) = g_L dV(m)``, which is the same as lowering E_L by dV(m), i.e. raising V_th and V_reset by
dV(m) relative to rest. Then ``r(I; m) = r(I - dI(m); 0)`` exactly: a shift by ``dI(m)`` along the drive axis.

Background (Chance, Abbott & Reyes 2002, Neuron 35:773-782): balanced excitatory and inhibitory background
input raises the total conductance (a subtractive effect with a shorter time constant) and the input noise
(an additive, smoothing effect); together they scale the f-I curve divisively.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from neuromod._checks import check_array, check_choice

from .params import LIFParams, ModulationParams

__all__ = ["MECHANISMS", "Mechanism", "drive_shift_na", "input_gain_factor", "lif_model"]

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
    """Synaptic-efficacy factor ``g(m) = 1 + (gain_max - 1) m`` of the ``input_gain`` mechanism.

    Examples
    --------
    >>> float(input_gain_factor(0.5))
    1.5
    """
    level = check_array("level", level, ndim=(0, 1), low=0.0, high=1.0)
    modulation = modulation or ModulationParams()
    return 1.0 + (modulation.gain_max - 1.0) * level


def _mechanism_terms(mechanism: str, mod: ModulationParams) -> dict[str, Any]:
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
        out.update(i_in="(1 + gain_slope*m)*i_in", namespace={"gain_slope": mod.gain_max - 1.0})
    elif mechanism == "leak":
        out.update(
            leak="g_l*(1 - leak_depth*m)*(e_l - v)", namespace={"leak_depth": 1.0 - mod.leak_scale_min}
        )
    elif mechanism == "threshold":
        out.update(extra=" - g_l*dv_th*m", namespace={"dv_th": mod.threshold_shift_mv * mv})
    elif mechanism == "background":
        out.update(
            extra=" + m*(g_bg_e*(e_e - v) + g_bg_i*(e_i - v))",
            sigma="sqrt(sigma0**2 + m*sigma_bg**2)",
            namespace={
                "g_bg_e": mod.bg_g_e_ns * ns,
                "g_bg_i": mod.bg_g_i_ns * ns,
                "e_e": mod.e_e_mv * mv,
                "e_i": mod.e_i_mv * mv,
                "sigma_bg": mod.bg_noise_mv * mv,
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

    Returns
    -------
    eqs, reset, namespace
        Use without brian2's ``refractory`` argument: refractoriness is built in (``r_left``).
        The namespace holds every constant with its brian2 unit and the noise function ``nm_noise``; the
        equations declare the shared integer ``noise_seed`` (set it on the group).
    """
    import brian2 as b2

    from ._noise import nm_noise_function

    check_choice("mechanism", mechanism, MECHANISMS)
    check_choice("drive", drive, ("constant", "synaptic"))
    check_choice("modulator", modulator, ("constant", "dynamic"))
    p = params or LIFParams()
    mod = modulation or ModulationParams()
    mv, ms = b2.mV, b2.ms
    terms = _mechanism_terms(mechanism, mod)
    namespace: dict[str, Any] = {
        "c_m": p.c_m_nf * b2.nF,
        "g_l": p.g_l_ns * b2.nS,
        "e_l": p.e_l_mv * mv,
        "tau0": p.tau_m_ms * ms,
        "sigma0": p.noise_mv * mv,
        "nm_noise": nm_noise_function(),
        **terms["namespace"],
    }
    sigma = terms["sigma"]
    noise_term = f" + {sigma}*sqrt(2/(tau0*dt))*nm_noise(i, t_in_timesteps, noise_seed)" if noise else ""
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
