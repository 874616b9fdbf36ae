"""Wang (2002) decision circuit with modulated sensory pools; trials as continuous sessions.

Many independent sessions run side by side as separate sub-networks of the same NeuronGroups (one brian2 run
for all of them). Recurrent connections of the Wang circuit are all-to-all within and between pools, with a
weight that depends only on the pre- and postsynaptic *pool*; AMPA and GABA are linear and NMDA saturates
per presynaptic neuron but sums linearly on the postsynaptic side. So every synaptic input is a weighted sum
of pool-level gating variables: each neuron projects to one "pool node" (AMPA/GABA traces incremented by its
spikes, NMDA gating summed), and each neuron reads the pool nodes of its session through linked variables.
This is exact for all-to-all connectivity and costs O(N) per step instead of O(N^2).

Timeline of trial k in a session (all sessions in lockstep, times in ms)::

    |-- reset_ms --|-- csi_ms --|------------- max_rt_ms -------------|
    ^ decision pools inhibited  ^ stimulus on, RT measured from here
                   ^ cue: modulator target u switches to trial k's levels

Background Poisson input of the decision cells (2.4 kHz on AMPA synapses) is simulated in the diffusion
approximation (same mean and variance; noise from :mod:`neuromod.spiking._noise`); the sensory pools receive
genuine Poisson spike counts.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr
from tqdm.auto import tqdm

from neuromod._checks import check_array, check_choice, check_int, check_positive

from ._codegen import configure_codegen
from .fi import _brian_seed
from .mechanisms import MECHANISMS, lif_model
from .params import DecisionParams, LIFParams, ModulationParams, params_json

__all__ = ["SENSORY_POOLS", "simulate_decision", "simulate_session"]

#: Sensory pools, in the order of the ``population`` dimension and of ``modulation[..., k]``.
SENSORY_POOLS: tuple[str, ...] = ("a+", "a-", "b+", "b-")
_N_NODES = 8  # per session: E1, E2, NS, I, a+, a-, b+, b-
_SCHED_DT_MS = 1.0


def _decision_equations(exc: bool) -> str:
    nmda = " + g_nmda*(v - e_e)/(1 + mg*exp(-0.062*v/mV)/3.57)*(w1*sn1 + w2*sn2 + w3*sn3)"
    sens = " + g_sens*ws*(sx + sy)" if exc else ""
    reset = " + g_reset*reset_sched(t)" if exc else ""
    eqs = f"""
dv/dt = int(r_left < 0.5*dt)*(g_l*(e_l - v) - i_syn)/c_m : volt
dr_left/dt = -1 : second
i_syn = (v - e_e)*(g_ext*s_ext + g_ampa*(w1*sa1 + w2*sa2 + w3*sa3){sens}){nmda} \
        + (g_gaba*sg{reset})*(v - e_i) : amp
ds_ext/dt = -s_ext/tau_ampa + ext_rate + sqrt(ext_rate/dt)*nm_noise(i, t_in_timesteps, noise_seed) : 1
w1 : 1 (constant)
w2 : 1 (constant)
w3 : 1 (constant)
noise_seed : integer (constant, shared)
sa1 : 1 (linked)
sa2 : 1 (linked)
sa3 : 1 (linked)
sn1 : 1 (linked)
sn2 : 1 (linked)
sn3 : 1 (linked)
sg : 1 (linked)
"""
    if exc:
        eqs += """
ws : 1 (constant)
sx : 1 (linked)
sy : 1 (linked)
ds_nmda/dt = -s_nmda/tau_nmda_d + alpha_nmda*x*(1 - s_nmda) : 1
dx/dt = -x/tau_nmda_r : 1
"""
    return eqs


def _check_features(name: str, value: Any) -> np.ndarray:
    arr = check_array(name, value, ndim=2, low=-100.0, high=100.0)
    return arr


def simulate_session(
    feature_a_pct: Any,
    feature_b_pct: Any | None = None,
    *,
    modulation: Any | None = None,
    initial_modulation: Any | None = None,
    mechanism: str = "input_gain",
    csi_ms: float | Any = 200.0,
    reset_ms: float = 300.0,
    max_rt_ms: float = 1500.0,
    params: DecisionParams | None = None,
    lif: LIFParams | None = None,
    mod_params: ModulationParams | None = None,
    dt_ms: float = 0.1,
    seed: int | None = None,
    stop_when_decided: bool = True,
    record_dt_ms: float = 10.0,
    target: str = "cython",
    cache_dir: str | os.PathLike[str] | None = None,
    progress: bool = False,
) -> xr.Dataset:
    """Run sessions of trials on the decision circuit; the modulator carries over between trials.

    Parameters
    ----------
    feature_a_pct, feature_b_pct : array-like, shape (n_session, n_trial)
        Signed coherence (%) of features a and b per trial. Pool ``a+`` receives input rate
        ``sens_in_hz (1 + c_a/100)``, ``a-`` ``sens_in_hz (1 - c_a/100)`` (likewise b); a+ and b+ feed
        decision pool 1, a- and b- pool 2. ``feature_b_pct=None`` means 0 (uninformative).
    modulation : array-like, shape (n_session, n_trial, 4), optional
        Target level u of the modulator of each sensory pool (a+, a-, b+, b-) from the cue of each trial on;
        the modulator follows ``dm/dt = (u(t) - m) / tau_mod``. Default 0 (unmodulated).
    initial_modulation : array-like, shape (n_session, 4), optional
        m at time 0 (default 0).
    mechanism : str
        How the modulator acts on the sensory cells (:data:`neuromod.spiking.MECHANISMS`).
    csi_ms : float or array-like, shape (n_trial,) or (n_session, n_trial)
        Cue-stimulus interval of every trial, or one for all (whole ms). Sessions run in lockstep, so a
        per-trial CSI must be the same in every session (rows of a 2-D array must be equal).
    reset_ms, max_rt_ms : float
        Reset (inter-trial) period and stimulus duration (the RT deadline); whole ms.
    params, lif, mod_params : optional
        Circuit, sensory-neuron and mechanism parameters.
    dt_ms : float
        Time step (at most 0.5 ms).
    seed : int, optional
        Same seed, bit-identical dataset.
    stop_when_decided : bool
        End the last trial as soon as every session has decided (saves time; no effect on results).
    record_dt_ms : float
        Sampling interval of the returned modulator traces.
    target : {"cython", "numpy"}
        Code-generation target.
    progress : bool
        Show a progress bar over simulated time (updated every 2 s of wall time).

    Returns
    -------
    xarray.Dataset
        ``choice`` (1 or 2; 0 when no pool reached threshold before the deadline) and ``rt`` (ms after
        stimulus onset; NaN without a choice) over (``session``, ``trial``); ``feature_a``/``feature_b``;
        ``modulator`` over (``session``, ``population``, ``time``) and ``pool_rate`` (Hz, filtered rate
        of decision pools 1 and 2) over (``session``, ``pool``, ``time``), every ``record_dt_ms``.
    """
    import brian2 as b2

    from ._noise import nm_noise_function

    fa = _check_features("feature_a_pct", feature_a_pct)
    fb = np.zeros_like(fa) if feature_b_pct is None else _check_features("feature_b_pct", feature_b_pct)
    if fb.shape != fa.shape:
        raise ValueError(f"feature_b_pct has shape {fb.shape}, expected {fa.shape}")
    n_sess, n_trial = fa.shape
    u_in = (
        np.zeros((n_sess, n_trial, 4))
        if modulation is None
        else check_array("modulation", modulation, ndim=3, low=0.0, high=1.0)
    )
    if u_in.shape != (n_sess, n_trial, 4):
        raise ValueError(f"modulation has shape {u_in.shape}, expected {(n_sess, n_trial, 4)}")
    m0 = (
        np.zeros((n_sess, 4))
        if initial_modulation is None
        else check_array("initial_modulation", initial_modulation, ndim=2, low=0.0, high=1.0)
    )
    if m0.shape != (n_sess, 4):
        raise ValueError(f"initial_modulation has shape {m0.shape}, expected {(n_sess, 4)}")
    check_choice("mechanism", mechanism, MECHANISMS)
    check_choice("target", target, ("cython", "numpy"))
    csi = check_array("csi_ms", csi_ms, ndim=(0, 1, 2), low=0.0)
    if csi.ndim == 2:
        if csi.shape != (n_sess, n_trial):
            raise ValueError(f"csi_ms has shape {csi.shape}, expected {(n_sess, n_trial)} or ({n_trial},)")
        if not np.all(csi == csi[:1]):
            raise ValueError("csi_ms must be the same in every session (sessions run in lockstep)")
        csi = csi[0]
    csi = np.broadcast_to(csi, (n_trial,)).astype(float) if csi.ndim == 0 else csi
    if csi.shape != (n_trial,):
        raise ValueError(f"csi_ms has shape {csi.shape}, expected ({n_trial},)")
    if np.any(np.abs(csi - np.rint(csi)) > 1e-9):
        raise ValueError(f"csi_ms={csi_ms!r} must be whole numbers of ms")
    reset_ms = check_positive("reset_ms", reset_ms, allow_zero=True)
    max_rt_ms = check_positive("max_rt_ms", max_rt_ms)
    for name, val in (("reset_ms", reset_ms), ("max_rt_ms", max_rt_ms)):
        if abs(val - round(val)) > 1e-9:
            raise ValueError(f"{name}={val!r} must be a whole number of ms")
    dt_ms = check_positive("dt_ms", dt_ms)
    if dt_ms > 0.5:
        raise ValueError(f"dt_ms={dt_ms!r} is too large: expected at most 0.5 ms")
    record_dt_ms = check_positive("record_dt_ms", record_dt_ms)
    p = params if params is not None else DecisionParams()
    lif = lif if lif is not None else LIFParams()
    mp = mod_params if mod_params is not None else ModulationParams()
    bseed = _brian_seed(seed)

    used = configure_codegen(target, cache_dir=cache_dir)
    # brian2.seed also seeds numpy's global generator: restore it afterwards so that running a session
    # leaves the caller's global random state untouched (neuromod never uses it)
    global_state = np.random.get_state()  # noqa: NPY002 (saved to be restored, never used)
    try:
        b2.seed(bseed)
        ms, mv, ns, hz = b2.ms, b2.mV, b2.nS, b2.Hz

        # ---- schedules on a 1 ms grid ---------------------------------------------------------------
        trial_ms = np.rint(reset_ms + csi + max_rt_ms).astype(np.int64)  # per-trial length
        start_ms = np.concatenate([[0], np.cumsum(trial_ms)[:-1]])  # trial starts (reset onset)
        onset_ms = start_ms + np.rint(reset_ms + csi).astype(np.int64)  # stimulus onsets
        n_steps = int(trial_ms.sum())
        k_of_t = np.repeat(np.arange(n_trial), trial_ms)
        phase = np.arange(n_steps) - start_ms[k_of_t]
        stim_on = phase >= reset_ms + csi[k_of_t]
        cue_on = phase >= reset_ms
        # modulator target: trial k's levels from its cue, trial k-1's before (initial_modulation for k=0)
        u_prev = np.concatenate([m0[:, None, :], u_in[:, :-1, :]], axis=1)  # (sess, trial, 4)
        u_t = np.where(cue_on[None, :, None], u_in[:, k_of_t, :], u_prev[:, k_of_t, :])
        signs = np.array([1.0, -1.0, 1.0, -1.0])
        coh = np.stack([fa, fa, fb, fb], axis=-1) * signs / 100.0  # (sess, trial, 4)
        rate_t = p.sens_in_hz * (1.0 + coh[:, k_of_t, :]) * stim_on[None, :, None]
        # brian2 writes a TimedArray's shape into the generated code, so every new session length would
        # recompile (tens of seconds). The schedules are padded to a power-of-two number of rows (the padding
        # is never read: the run ends at n_steps), so sessions of similar length share compiled code.
        n_rows = 1 << max(n_steps - 1, 1).bit_length()

        def padded(values: np.ndarray) -> np.ndarray:
            out = np.zeros((n_rows, *values.shape[1:]))
            out[:n_steps] = values
            out[n_steps:] = values[-1]
            return out

        u_sched = b2.TimedArray(
            padded(u_t.transpose(1, 0, 2).reshape(n_steps, -1)), dt=_SCHED_DT_MS * ms, name="nm_u_sched"
        )
        stim_sched = b2.TimedArray(
            padded(rate_t.transpose(1, 0, 2).reshape(n_steps, -1)) * hz,
            dt=_SCHED_DT_MS * ms,
            name="nm_stim_sched",
        )
        reset_sched = b2.TimedArray(
            padded((phase < reset_ms).astype(float)), dt=_SCHED_DT_MS * ms, name="nm_reset_sched"
        )

        # ---- sizes and per-neuron parameters ----------------------------------------------------------
        n_e = round(p.n_total * p.frac_exc)
        n_i = p.n_total - n_e
        n_sel = round(p.frac_selective * n_e)
        n_ns = n_e - 2 * n_sel
        scale = p.recurrent_scale
        noise_fn = nm_noise_function()
        common = {
            "e_e": 0.0 * mv,
            "e_i": -70.0 * mv,
            "tau_ampa": p.tau_ampa_ms * ms,
            "ext_rate": p.ext_rate_hz * hz,
            "mg": p.mg_mm / 1.0,
            "nm_noise": noise_fn,
            "reset_sched": reset_sched,
        }
        ns_e = {
            **common,
            "c_m": lif.c_m_nf * b2.nF,
            "g_l": lif.g_l_ns * ns,
            "e_l": lif.e_l_mv * mv,
            "g_ext": p.g_ext_e_ns * ns,
            "g_ampa": p.g_ampa_e_ns * scale * ns,
            "g_nmda": p.g_nmda_e_ns * scale * ns,
            "g_gaba": p.g_gaba_e_ns * scale * ns,
            "g_sens": p.g_sens_ns * ns,
            "g_reset": p.g_reset_ns * ns,
            "tau_nmda_d": p.tau_nmda_decay_ms * ms,
            "tau_nmda_r": p.tau_nmda_rise_ms * ms,
            "alpha_nmda": p.alpha_nmda_per_ms / ms,
            "v_th": lif.v_th_mv * mv,
            "t_ref": lif.t_ref_ms * ms,
            "v_reset": lif.v_reset_mv * mv,
        }
        ns_i = {
            **common,
            "c_m": p.c_m_i_nf * b2.nF,
            "g_l": p.g_l_i_ns * ns,
            "e_l": lif.e_l_mv * mv,
            "g_ext": p.g_ext_i_ns * ns,
            "g_ampa": p.g_ampa_i_ns * scale * ns,
            "g_nmda": p.g_nmda_i_ns * scale * ns,
            "g_gaba": p.g_gaba_i_ns * scale * ns,
            "v_th": lif.v_th_mv * mv,
            "v_reset": lif.v_reset_mv * mv,
            "t_ref": p.t_ref_i_ms * ms,
        }
        dt = dt_ms * ms
        E = b2.NeuronGroup(
            n_sess * n_e,
            _decision_equations(True),
            threshold="v > v_th",
            reset="v = v_reset\nr_left = t_ref - dt\nx += 1",
            method="euler",
            namespace=ns_e,
            dt=dt,
            name="decision_exc*",
        )
        inh = b2.NeuronGroup(
            n_sess * n_i,
            _decision_equations(False),
            threshold="v > v_th",
            reset="v = v_reset\nr_left = t_ref - dt",
            method="euler",
            namespace=ns_i,
            dt=dt,
            name="decision_inh*",
        )
        s_eqs, s_reset, s_ns = lif_model(
            mechanism,
            noise=lif.noise_mv > 0,
            drive="synaptic",
            modulator="dynamic",
            params=lif,
            modulation=mp,
        )
        s_ns.update(u_sched=u_sched, stim_sched=stim_sched, tau_in=p.tau_ampa_ms * ms)
        n_s = p.n_sensory
        S = b2.NeuronGroup(
            n_sess * 4 * n_s,
            s_eqs,
            threshold="v > v_th",
            reset=s_reset,
            method="euler",
            namespace=s_ns,
            dt=dt,
            name="sensory*",
        )
        S.run_regularly("s_in += poisson(stim_sched(t, col)*dt)", dt=dt, when="before_groups")
        P = b2.NeuronGroup(
            n_sess * _N_NODES,
            """
            ds_ampa/dt = -s_ampa/tau_ampa : 1
            ds_gaba/dt = -s_gaba/tau_gaba : 1
            s_nmda_tot : 1
            drate/dt = -rate/tau_r : Hz
            inv_n : 1 (constant)
            """,
            method="exact",
            namespace={
                "tau_ampa": p.tau_ampa_ms * ms,
                "tau_gaba": p.tau_gaba_ms * ms,
                "tau_r": p.rate_tau_ms * ms,
            },
            dt=dt,
            name="pools*",
        )
        sizes = np.array([n_sel, n_sel, n_ns, n_i, n_s, n_s, n_s, n_s], dtype=float)
        P.inv_n = np.tile(1.0 / sizes, n_sess)

        # pool membership
        e_pool = np.repeat(np.array([0, 1, 2]), [n_sel, n_sel, n_ns])  # within a session
        e_sess = np.repeat(np.arange(n_sess), n_e)
        e_pool_all = np.tile(e_pool, n_sess)
        i_sess = np.repeat(np.arange(n_sess), n_i)
        s_sess = np.repeat(np.arange(n_sess), 4 * n_s)
        s_pool = np.tile(np.repeat(np.arange(4), n_s), n_sess)
        wp, wm = p.w_plus, p.w_minus
        w_table = np.array([[wp, wm, wm], [wm, wp, wm], [1.0, 1.0, 1.0]])
        E.w1, E.w2, E.w3 = (w_table[e_pool_all, k] for k in range(3))
        E.ws = (e_pool_all < 2).astype(float)
        inh.w1 = inh.w2 = inh.w3 = 1.0
        base_e, base_i = e_sess * _N_NODES, i_sess * _N_NODES
        for grp, base in ((E, base_e), (inh, base_i)):
            for k, name in enumerate(("1", "2", "3")):
                grp.__setattr__(f"sa{name}", b2.linked_var(P, "s_ampa", index=base + k))
                grp.__setattr__(f"sn{name}", b2.linked_var(P, "s_nmda_tot", index=base + k))
            grp.sg = b2.linked_var(P, "s_gaba", index=base + 3)
        # sensory: pool 1 reads a+ (4) and b+ (6); pool 2 reads a- (5) and b- (7); NS has ws = 0
        E.sx = b2.linked_var(P, "s_ampa", index=base_e + np.where(e_pool_all == 1, 5, 4))
        E.sy = b2.linked_var(P, "s_ampa", index=base_e + np.where(e_pool_all == 1, 7, 6))
        S.col = s_sess * 4 + s_pool
        S.w_in = p.sens_w_na * b2.nA
        S.m = m0[s_sess, s_pool]
        rng = np.random.default_rng(bseed)
        E.v = lif.e_l_mv * mv + rng.uniform(0.0, 5.0, E.N) * mv
        inh.v = lif.e_l_mv * mv + rng.uniform(0.0, 5.0, inh.N) * mv
        S.v = lif.e_l_mv * mv + rng.uniform(0.0, 5.0, S.N) * mv
        E.s_ext = p.ext_rate_hz * p.tau_ampa_ms * 1e-3
        inh.s_ext = p.ext_rate_hz * p.tau_ampa_ms * 1e-3
        E.noise_seed = (bseed + 1) % (2**31)
        inh.noise_seed = (bseed + 2) % (2**31)
        S.noise_seed = (bseed + 3) % (2**31)

        syn_e = b2.Synapses(
            E,
            P,
            "s_nmda_tot_post = s_nmda_pre : 1 (summed)",
            on_pre="s_ampa_post += 1\nrate_post += inv_n_post/tau_r",
            namespace={"tau_r": p.rate_tau_ms * ms},
            dt=dt,
            name="pool_exc*",
        )
        syn_e.connect(i=np.arange(E.N), j=base_e + e_pool_all)
        syn_i = b2.Synapses(
            inh,
            P,
            on_pre="s_gaba_post += 1\nrate_post += inv_n_post/tau_r",
            namespace={"tau_r": p.rate_tau_ms * ms},
            dt=dt,
            name="pool_inh*",
        )
        syn_i.connect(i=np.arange(inh.N), j=base_i + 3)
        syn_s = b2.Synapses(
            S,
            P,
            on_pre="s_ampa_post += 1\nrate_post += inv_n_post/tau_r",
            namespace={"tau_r": p.rate_tau_ms * ms},
            dt=dt,
            name="pool_sens*",
        )
        syn_s.connect(i=np.arange(S.N), j=s_sess * _N_NODES + 4 + s_pool)

        rec_nodes = (np.arange(n_sess)[:, None] * _N_NODES + np.array([0, 1])[None, :]).ravel()
        rate_mon = b2.StateMonitor(P, "rate", record=rec_nodes, dt=1.0 * ms, name="rate_mon*")
        mod_mon = b2.StateMonitor(
            S, "m", record=np.arange(n_sess * 4) * n_s, dt=record_dt_ms * ms, name="mod_mon*"
        )
        net = b2.Network(E, inh, S, P, syn_e, syn_i, syn_s, rate_mon, mod_mon)

        # ---- run: all trials but the last in one go, the last in chunks (early stop) ------------------
        thr = p.threshold_hz
        last_start = int(start_ms[-1])
        onset = float(onset_ms[-1] - last_start)
        bar = tqdm(
            total=round(n_steps / 1000.0, 3),
            desc="spiking session",
            unit="s simulated",
            disable=not progress,
            bar_format="{l_bar}{bar}| {n:.1f}/{total:.1f} s simulated [{elapsed}<{remaining}]",
        )

        def run(duration_ms: float) -> None:
            """net.run, reporting simulated seconds to the progress bar (brian2's report hook)."""
            base = bar.n

            def report(elapsed, completed, start, duration) -> None:
                bar.update(base + float(completed) * duration_ms / 1000.0 - bar.n)

            net.run(
                duration_ms * ms,
                namespace={},
                report=report if progress else None,
                report_period=2.0 * b2.second,
            )

        if n_trial > 1:
            run(last_start)
        run(onset)
        remaining = max_rt_ms
        chunk = 100.0
        while remaining > 0:
            step = min(chunk, remaining)
            run(step)
            remaining -= step
            if stop_when_decided and remaining > 0:
                r = np.asarray(rate_mon.rate / hz)
                t_idx = round(last_start + onset)
                crossed = (r[:, t_idx:] > thr).any(axis=1).reshape(n_sess, 2).any(axis=1)
                if crossed.all():
                    break
        bar.close()
    finally:
        np.random.set_state(global_state)  # noqa: NPY002

    # ---- read-out ---------------------------------------------------------------------------------
    r = np.asarray(rate_mon.rate / hz).reshape(n_sess, 2, -1)
    n_rec = r.shape[-1]
    choice = np.zeros((n_sess, n_trial), dtype=np.int64)
    rt = np.full((n_sess, n_trial), np.nan)
    for k in range(n_trial):
        a = int(onset_ms[k])
        b = min(int(start_ms[k] + trial_ms[k]), n_rec)
        # the pool rates are sampled every 1 ms from stimulus onset; RT is the time of the first sample at or
        # above threshold (the same rule as the rate model: first step at/after onset with r >= threshold)
        above = r[:, :, a:b] >= thr  # (sess, 2, time)
        first = np.where(above.any(axis=2), above.argmax(axis=2), np.iinfo(np.int64).max)
        decided = first.min(axis=1) < np.iinfo(np.int64).max
        choice[:, k] = np.where(decided, np.where(first[:, 0] <= first[:, 1], 1, 2), 0)
        rt[:, k] = np.where(decided, first.min(axis=1).astype(float), np.nan)
    m_trace = np.asarray(mod_mon.m).reshape(n_sess, 4, -1)
    n_t = m_trace.shape[-1]
    step_rec = max(1, round(record_dt_ms))
    r_dec = r[:, :, ::step_rec][:, :, :n_t]
    if r_dec.shape[-1] < n_t:
        r_dec = np.concatenate([r_dec, np.full((*r_dec.shape[:2], n_t - r_dec.shape[-1]), np.nan)], axis=-1)
    t_rec = np.asarray(mod_mon.t / ms)
    st, tr = ("session", "trial")
    ds = xr.Dataset(
        {
            "choice": ((st, tr), choice, {"units": "1", "long_name": "choice (1, 2; 0 = no decision)"}),
            "rt": ((st, tr), rt, {"units": "ms", "long_name": "reaction time from stimulus onset"}),
            "feature_a": ((st, tr), fa, {"units": "%", "long_name": "signed coherence of feature a"}),
            "feature_b": ((st, tr), fb, {"units": "%", "long_name": "signed coherence of feature b"}),
            "modulation_target": (
                (st, tr, "population"),
                u_in,
                {"units": "1", "long_name": "modulator target level u"},
            ),
            "pool_rate": (
                (st, "pool", "time"),
                r_dec,
                {"units": "Hz", "long_name": "decision-pool rate (low-pass filtered)"},
            ),
            "modulator": (
                (st, "population", "time"),
                m_trace,
                {"units": "1", "long_name": "modulator level m"},
            ),
        },
        coords={
            "session": (st, np.arange(n_sess), {"units": "1", "long_name": "session"}),
            "trial": (tr, np.arange(n_trial), {"units": "1", "long_name": "trial"}),
            "population": (
                "population",
                list(SENSORY_POOLS),
                {"units": "1", "long_name": "sensory population"},
            ),
            "pool": ("pool", np.array([1, 2]), {"units": "1", "long_name": "decision pool"}),
            "time": ("time", t_rec, {"units": "ms", "long_name": "time"}),
            "stimulus_onset_ms": (tr, onset_ms.astype(float), {"units": "ms", "long_name": "stimulus onset"}),
            "csi_ms": (tr, csi, {"units": "ms", "long_name": "cue-stimulus interval"}),
        },
        attrs={
            "title": "Wang (2002) decision circuit, modulated sensory pools",
            "model": "spiking",
            "mechanism": mechanism,
            "reset_ms": reset_ms,
            "max_rt_ms": max_rt_ms,
            "dt_ms": dt_ms,
            "seed": -1 if seed is None else int(seed),
            "target": used,
            "params_json": params_json(decision=p, lif=lif, modulation=mp),
        },
    )
    return ds


def simulate_decision(
    coherence_pct: float | Sequence[float] | np.ndarray,
    *,
    n_trials: int,
    params: DecisionParams | None = None,
    max_rt_ms: float = 1500.0,
    settle_ms: float = 100.0,
    dt_ms: float = 0.1,
    seed: int | None = None,
    target: str = "cython",
    cache_dir: str | os.PathLike[str] | None = None,
) -> xr.Dataset:
    """The plain random-dot task: ``n_trials`` independent trials per coherence (feature a only).

    Every trial is its own session (sub-network) starting from rest, with ``settle_ms`` of reset before the
    stimulus; all trials of all coherences run in parallel in one brian2 run. Pool 1 is correct for
    coherence >= 0 (at 0 % either choice is a guess, scored against pool 1).

    Parameters
    ----------
    coherence_pct : float or array-like of float
        Coherence(s) in % (signed; negative favours pool 2).
    n_trials : int
        Trials per coherence.
    params, max_rt_ms, dt_ms, seed, target, cache_dir
        As in :func:`simulate_session`.
    settle_ms : float
        Reset period before the stimulus (whole ms).

    Returns
    -------
    xarray.Dataset
        ``choice`` (1, 2, or 0 for no decision), ``rt`` (ms) and ``correct`` (0/1) over (``coherence``,
        ``trial``), or over ``trial`` with a scalar ``coherence`` when a scalar was given.

    Examples
    --------
    A psychometric curve (about 10 s on one core; not run as a doctest)::

        ds = simulate_decision([0.0, 12.8, 51.2], n_trials=100, seed=0)
        ds.correct.mean("trial")
    """
    n_trials = check_int("n_trials", n_trials, low=1)
    coh = check_array("coherence_pct", coherence_pct, ndim=(0, 1), low=-100.0, high=100.0)
    scalar = coh.ndim == 0
    coh = np.atleast_1d(coh)
    fa = np.repeat(coh, n_trials)[:, None]
    ds = simulate_session(
        fa,
        None,
        mechanism="none",
        csi_ms=0.0,
        reset_ms=settle_ms,
        max_rt_ms=max_rt_ms,
        params=params,
        dt_ms=dt_ms,
        seed=seed,
        target=target,
        cache_dir=cache_dir,
    )
    shape = (coh.size, n_trials)
    choice = ds.choice.values[:, 0].reshape(shape)
    correct_choice = np.where(coh >= 0, 1, 2)[:, None]
    dims = ("coherence", "trial")
    out = xr.Dataset(
        {
            "choice": (dims, choice, ds.choice.attrs),
            "rt": (dims, ds.rt.values[:, 0].reshape(shape), ds.rt.attrs),
            "correct": (
                dims,
                (choice == correct_choice).astype(np.int64),
                {"units": "1", "long_name": "correct choice (1) or not (0)"},
            ),
        },
        coords={
            "coherence": ("coherence", coh, {"units": "%", "long_name": "motion coherence"}),
            "trial": ("trial", np.arange(n_trials), {"units": "1", "long_name": "trial"}),
        },
        attrs={k: v for k, v in ds.attrs.items() if k != "title"}
        | {"title": "Wang (2002) decision circuit, plain task"},
    )
    return out.isel(coherence=0) if scalar else out
