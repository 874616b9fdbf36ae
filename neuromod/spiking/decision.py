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
                   ^ cue: modulator release level u switches to trial k's levels

Background Poisson input of the decision cells (2.4 kHz on AMPA synapses) is simulated in the diffusion
approximation (same mean and variance; noise from :mod:`neuromod.spiking._noise`); the sensory pools receive
genuine Poisson spike counts.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr
from tqdm.auto import tqdm

from neuromod._checks import check_array, check_choice, check_int, check_positive
from neuromod._random import SeedLike

from ._codegen import codegen_context
from ._seed import brian_seed
from .mechanisms import MECHANISMS, lif_model
from .params import DecisionParams, LIFParams, ModulationParams, params_json

__all__ = ["SENSORY_POOLS", "simulate_decision", "simulate_session"]

#: Sensory pools, in the order of the ``population`` dimension and of ``release[..., k]``.
SENSORY_POOLS: tuple[str, ...] = ("a+", "a-", "b+", "b-")
_N_NODES = 8  # per session: E1, E2, NS, I, a+, a-, b+, b-
_SCHED_DT_MS = 1.0
_MAX_DT_MS = 0.5
_CHUNK_MS = 100.0  # the last trial runs in chunks of this length, to stop once every session has decided


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


@dataclass(frozen=True)
class _Session:
    """Checked inputs of :func:`simulate_session` (arrays as documented there; ``csi`` per trial)."""

    fa: np.ndarray
    fb: np.ndarray
    release: np.ndarray
    m0: np.ndarray
    mechanism: str
    csi: np.ndarray
    reset_ms: float
    max_rt_ms: float
    params: DecisionParams
    lif: LIFParams
    modulation: ModulationParams
    dt_ms: float
    record_dt_ms: float
    target: str

    @property
    def n_sess(self) -> int:
        """Number of sessions."""
        return self.fa.shape[0]

    @property
    def n_trial(self) -> int:
        """Number of trials per session."""
        return self.fa.shape[1]


def _check_features(name: str, value: Any) -> np.ndarray:
    return check_array(name, value, ndim=2, low=-100.0, high=100.0)


def _check_levels(name: str, value: Any | None, shape: tuple[int, ...]) -> np.ndarray:
    """Modulator levels in [0, 1] of the given shape; None means 0."""
    if value is None:
        return np.zeros(shape)
    arr = check_array(name, value, ndim=len(shape), low=0.0, high=1.0)
    if arr.shape != shape:
        raise ValueError(f"{name} has shape {arr.shape}, expected {shape}")
    return arr


def _check_csi(csi_ms: Any, n_sess: int, n_trial: int) -> np.ndarray:
    """The cue-stimulus interval of every trial, shape (n_trial,), whole ms, shared by the sessions."""
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
    return csi


def _check_param_type(name: str, value: Any, cls: type) -> Any:
    """`value`, or ``cls()`` (published defaults) when None; a TypeError for anything else."""
    if value is None:
        return cls()
    if not isinstance(value, cls):
        raise TypeError(f"{name} must be a {cls.__name__} or None, got {type(value).__name__}")
    return value


def _check_session(
    feature_a_pct: Any,
    feature_b_pct: Any | None,
    *,
    release: Any | None,
    m0: Any | None,
    mechanism: str,
    csi_ms: Any,
    reset_ms: float,
    max_rt_ms: float,
    params: DecisionParams | None,
    lif: LIFParams | None,
    modulation: ModulationParams | None,
    dt_ms: float,
    record_dt_ms: float,
    target: str,
) -> _Session:
    """Check the inputs of :func:`simulate_session` (names and meaning as there), before any work."""
    fa = _check_features("feature_a_pct", feature_a_pct)
    fb = np.zeros_like(fa) if feature_b_pct is None else _check_features("feature_b_pct", feature_b_pct)
    if fb.shape != fa.shape:
        raise ValueError(f"feature_b_pct has shape {fb.shape}, expected {fa.shape}")
    n_sess, n_trial = fa.shape
    u_in = _check_levels("release", release, (n_sess, n_trial, 4))
    m_init = _check_levels("m0", m0, (n_sess, 4))
    check_choice("mechanism", mechanism, MECHANISMS)
    check_choice("target", target, ("cython", "numpy"))
    csi = _check_csi(csi_ms, n_sess, n_trial)
    reset_ms = check_positive("reset_ms", reset_ms, allow_zero=True)
    max_rt_ms = check_positive("max_rt_ms", max_rt_ms)
    for name, val in (("reset_ms", reset_ms), ("max_rt_ms", max_rt_ms)):
        if abs(val - round(val)) > 1e-9:
            raise ValueError(f"{name}={val!r} must be a whole number of ms")
    dt_ms = check_positive("dt_ms", dt_ms)
    if dt_ms > _MAX_DT_MS:
        raise ValueError(f"dt_ms={dt_ms!r} is too large: expected at most {_MAX_DT_MS} ms")
    return _Session(
        fa=fa,
        fb=fb,
        release=u_in,
        m0=m_init,
        mechanism=mechanism,
        csi=csi,
        reset_ms=reset_ms,
        max_rt_ms=max_rt_ms,
        params=_check_param_type("params", params, DecisionParams),
        lif=_check_param_type("lif", lif, LIFParams),
        modulation=_check_param_type("modulation", modulation, ModulationParams),
        dt_ms=dt_ms,
        record_dt_ms=check_positive("record_dt_ms", record_dt_ms),
        target=target,
    )


@dataclass(frozen=True)
class _Timeline:
    """Trial timing on the 1 ms schedule grid (see the module docstring)."""

    trial_ms: np.ndarray  #: (n_trial,) length of each trial
    start_ms: np.ndarray  #: (n_trial,) trial starts (reset onset)
    onset_ms: np.ndarray  #: (n_trial,) stimulus onsets
    n_steps: int  #: session length (ms), one schedule row per ms
    k_of_t: np.ndarray  #: (n_steps,) trial of each row
    phase: np.ndarray  #: (n_steps,) ms since the start of that trial


def _timeline(s: _Session) -> _Timeline:
    trial_ms = np.rint(s.reset_ms + s.csi + s.max_rt_ms).astype(np.int64)
    start_ms = np.concatenate([[0], np.cumsum(trial_ms)[:-1]])
    onset_ms = start_ms + np.rint(s.reset_ms + s.csi).astype(np.int64)
    n_steps = int(trial_ms.sum())
    k_of_t = np.repeat(np.arange(s.n_trial), trial_ms)
    phase = np.arange(n_steps) - start_ms[k_of_t]
    return _Timeline(trial_ms, start_ms, onset_ms, n_steps, k_of_t, phase)


def _schedules(s: _Session, tl: _Timeline) -> dict[str, Any]:
    """TimedArrays on the 1 ms grid: release ``u_sched`` and input rate ``stim_sched`` (columns
    ``session * 4 + pool``), and ``reset_sched`` (1 during each trial's reset period, else 0)."""
    import brian2 as b2

    k_of_t, phase = tl.k_of_t, tl.phase
    stim_on = phase >= s.reset_ms + s.csi[k_of_t]
    cue_on = phase >= s.reset_ms
    # release: trial k's levels from its cue, trial k-1's before (m0 for k = 0)
    u_prev = np.concatenate([s.m0[:, None, :], s.release[:, :-1, :]], axis=1)  # (sess, trial, 4)
    u_t = np.where(cue_on[None, :, None], s.release[:, k_of_t, :], u_prev[:, k_of_t, :])
    signs = np.array([1.0, -1.0, 1.0, -1.0])
    coh = np.stack([s.fa, s.fa, s.fb, s.fb], axis=-1) * signs / 100.0  # (sess, trial, 4)
    rate_t = s.params.sens_in_hz * (1.0 + coh[:, k_of_t, :]) * stim_on[None, :, None]
    # brian2 writes a TimedArray's shape into the generated code, so every new session length would
    # recompile (tens of seconds). The schedules are padded to a power-of-two number of rows (the padding
    # is never read: the run ends at n_steps), so sessions of similar length share compiled code.
    n_steps = tl.n_steps
    n_rows = 1 << max(n_steps - 1, 1).bit_length()

    def padded(values: np.ndarray) -> np.ndarray:
        out = np.zeros((n_rows, *values.shape[1:]))
        out[:n_steps] = values
        out[n_steps:] = values[-1]
        return out

    grid = _SCHED_DT_MS * b2.ms
    return {
        "u_sched": b2.TimedArray(
            padded(u_t.transpose(1, 0, 2).reshape(n_steps, -1)), dt=grid, name="nm_u_sched"
        ),
        "stim_sched": b2.TimedArray(
            padded(rate_t.transpose(1, 0, 2).reshape(n_steps, -1)) * b2.Hz, dt=grid, name="nm_stim_sched"
        ),
        "reset_sched": b2.TimedArray(
            padded((phase < s.reset_ms).astype(float)), dt=grid, name="nm_reset_sched"
        ),
    }


def _pool_sizes(p: DecisionParams) -> dict[str, int]:
    """Cells per session: excitatory and inhibitory decision cells, each selective pool, non-selective."""
    n_e = round(p.n_total * p.frac_exc)
    n_sel = round(p.frac_selective * n_e)
    return {"e": n_e, "i": p.n_total - n_e, "sel": n_sel, "ns": n_e - 2 * n_sel, "s": p.n_sensory}


def _decision_namespaces(s: _Session, reset_sched: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """brian2 namespaces of the excitatory and the inhibitory decision cells."""
    import brian2 as b2

    from ._noise import nm_noise_function

    p, lif = s.params, s.lif
    ms, mv, ns, hz = b2.ms, b2.mV, b2.nS, b2.Hz
    scale = p.recurrent_scale
    common = {
        "e_e": 0.0 * mv,
        "e_i": -70.0 * mv,
        "tau_ampa": p.tau_ampa_ms * ms,
        "ext_rate": p.ext_rate_hz * hz,
        "mg": p.mg_mm / 1.0,
        "nm_noise": nm_noise_function(),
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
    return ns_e, ns_i


def _neuron_groups(s: _Session, schedules: dict[str, Any]) -> tuple[Any, Any, Any, Any]:
    """The NeuronGroups of all sessions: excitatory and inhibitory decision cells, sensory cells (with
    their Poisson input) and the pool nodes (gating traces and filtered rate of every pool)."""
    import brian2 as b2

    p, n_sess, n = s.params, s.n_sess, _pool_sizes(s.params)
    ms, dt = b2.ms, s.dt_ms * b2.ms
    ns_e, ns_i = _decision_namespaces(s, schedules["reset_sched"])
    groups = []
    for exc, size, reset, namespace, name in (
        (True, n["e"], "v = v_reset\nr_left = t_ref - dt\nx += 1", ns_e, "decision_exc*"),
        (False, n["i"], "v = v_reset\nr_left = t_ref - dt", ns_i, "decision_inh*"),
    ):
        groups.append(
            b2.NeuronGroup(
                n_sess * size,
                _decision_equations(exc),
                threshold="v > v_th",
                reset=reset,
                method="euler",
                namespace=namespace,
                dt=dt,
                name=name,
            )
        )
    s_eqs, s_reset, s_ns = lif_model(
        s.mechanism,
        noise=s.lif.noise_mv > 0,
        drive="synaptic",
        modulator="dynamic",
        params=s.lif,
        modulation=s.modulation,
    )
    s_ns.update(u_sched=schedules["u_sched"], stim_sched=schedules["stim_sched"], tau_in=p.tau_ampa_ms * ms)
    sensory = b2.NeuronGroup(
        n_sess * 4 * n["s"],
        s_eqs,
        threshold="v > v_th",
        reset=s_reset,
        method="euler",
        namespace=s_ns,
        dt=dt,
        name="sensory*",
    )
    sensory.run_regularly("s_in += poisson(stim_sched(t, col)*dt)", dt=dt, when="before_groups")
    nodes = b2.NeuronGroup(
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
    return groups[0], groups[1], sensory, nodes


def _connect_pools(s: _Session, groups: tuple[Any, Any, Any, Any], bseed: int) -> list[Any]:
    """Pool weights, linked read-out of the pool nodes, initial state; the Synapses onto the pool nodes.

    Every neuron projects to the node of its pool (its spikes increment the node's AMPA/GABA trace and its
    filtered rate; its NMDA gating is summed) and reads the nodes of its session through linked variables.
    """
    import brian2 as b2

    E, inh, S, P = groups
    p, lif, n_sess, n = s.params, s.lif, s.n_sess, _pool_sizes(s.params)
    sizes = np.array([n["sel"], n["sel"], n["ns"], n["i"], n["s"], n["s"], n["s"], n["s"]], dtype=float)
    P.inv_n = np.tile(1.0 / sizes, n_sess)
    # pool membership
    e_pool = np.repeat(np.array([0, 1, 2]), [n["sel"], n["sel"], n["ns"]])  # within a session
    e_sess = np.repeat(np.arange(n_sess), n["e"])
    e_pool_all = np.tile(e_pool, n_sess)
    i_sess = np.repeat(np.arange(n_sess), n["i"])
    s_sess = np.repeat(np.arange(n_sess), 4 * n["s"])
    s_pool = np.tile(np.repeat(np.arange(4), n["s"]), n_sess)
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
    S.m = s.m0[s_sess, s_pool]
    mv = b2.mV
    rng = np.random.default_rng(bseed)
    E.v = lif.e_l_mv * mv + rng.uniform(0.0, 5.0, E.N) * mv
    inh.v = lif.e_l_mv * mv + rng.uniform(0.0, 5.0, inh.N) * mv
    S.v = lif.e_l_mv * mv + rng.uniform(0.0, 5.0, S.N) * mv
    E.s_ext = p.ext_rate_hz * p.tau_ampa_ms * 1e-3
    inh.s_ext = p.ext_rate_hz * p.tau_ampa_ms * 1e-3
    E.noise_seed = (bseed + 1) % (2**31)
    inh.noise_seed = (bseed + 2) % (2**31)
    S.noise_seed = (bseed + 3) % (2**31)
    targets = (base_e + e_pool_all, base_i + 3, s_sess * _N_NODES + 4 + s_pool)
    return _pool_synapses(s, groups, targets)


def _pool_synapses(s: _Session, groups: tuple[Any, Any, Any, Any], targets: tuple[np.ndarray, ...]) -> list:
    """Synapses from every excitatory, inhibitory and sensory cell to its pool node (`targets`)."""
    import brian2 as b2

    E, inh, S, P = groups
    dt, namespace = s.dt_ms * b2.ms, {"tau_r": s.params.rate_tau_ms * b2.ms}
    rate = "\nrate_post += inv_n_post/tau_r"
    out = []
    for pre, model, on_pre, name, j in (
        (E, "s_nmda_tot_post = s_nmda_pre : 1 (summed)", "s_ampa_post += 1" + rate, "pool_exc*", targets[0]),
        (inh, "", "s_gaba_post += 1" + rate, "pool_inh*", targets[1]),
        (S, "", "s_ampa_post += 1" + rate, "pool_sens*", targets[2]),
    ):
        syn = b2.Synapses(pre, P, model, on_pre=on_pre, namespace=namespace, dt=dt, name=name)
        syn.connect(i=np.arange(pre.N), j=j)
        out.append(syn)
    return out


@dataclass(frozen=True)
class _Network:
    """A built session network and its monitors."""

    net: Any  #: brian2.Network
    rate_mon: Any  #: filtered rate of decision pools 1 and 2 of every session, every 1 ms
    mod_mon: Any  #: modulator of every sensory pool (its first cell), every ``record_dt_ms``


def _build_network(s: _Session, schedules: dict[str, Any], bseed: int) -> _Network:
    """All sessions as sub-networks of one brian2 Network (see the module docstring)."""
    import brian2 as b2

    groups = _neuron_groups(s, schedules)
    synapses = _connect_pools(s, groups, bseed)
    E, inh, S, P = groups
    rec_nodes = (np.arange(s.n_sess)[:, None] * _N_NODES + np.array([0, 1])[None, :]).ravel()
    rate_mon = b2.StateMonitor(P, "rate", record=rec_nodes, dt=1.0 * b2.ms, name="rate_mon*")
    mod_mon = b2.StateMonitor(
        S,
        "m",
        record=np.arange(s.n_sess * 4) * s.params.n_sensory,
        dt=s.record_dt_ms * b2.ms,
        name="mod_mon*",
    )
    net = b2.Network(E, inh, S, P, *synapses, rate_mon, mod_mon)
    return _Network(net, rate_mon, mod_mon)


def _run(nw: _Network, s: _Session, tl: _Timeline, *, stop_when_decided: bool, progress: bool) -> None:
    """Run all trials but the last in one go, the last in chunks (stopping early once all have decided)."""
    import brian2 as b2

    last_start = int(tl.start_ms[-1])
    onset = float(tl.onset_ms[-1] - last_start)
    total_s = round(tl.n_steps / 1000.0, 3)
    bar = tqdm(
        total=total_s,
        desc="spiking session",
        unit="s simulated",
        disable=not progress,
        bar_format="{l_bar}{bar}| {n:.1f}/{total:.1f} s simulated [{elapsed}<{remaining}]",
    )

    def run(duration_ms: float) -> None:
        """net.run, reporting simulated seconds to the progress bar (brian2's report hook)."""
        base = bar.n

        def report(elapsed: Any, completed: float, start: Any, duration: Any) -> None:
            bar.update(min(total_s, base + float(completed) * duration_ms / 1000.0) - bar.n)

        nw.net.run(
            duration_ms * b2.ms,
            namespace={},
            report=report if progress else None,
            report_period=2.0 * b2.second,
        )

    try:
        if s.n_trial > 1:
            run(last_start)
        run(onset)
        remaining = s.max_rt_ms
        while remaining > 0:
            step = min(_CHUNK_MS, remaining)
            run(step)
            remaining -= step
            if stop_when_decided and remaining > 0:
                r = np.asarray(nw.rate_mon.rate / b2.Hz)
                t_idx = round(last_start + onset)
                crossed = (r[:, t_idx:] > s.params.threshold_hz).any(axis=1).reshape(s.n_sess, 2).any(axis=1)
                if crossed.all():
                    break
    finally:
        bar.close()


def _choices(r: np.ndarray, tl: _Timeline, threshold_hz: float) -> tuple[np.ndarray, np.ndarray]:
    """Choice (1, 2; 0 = none) and RT (ms; NaN without a choice) over (session, trial).

    The pool rates `r` (session, pool, ms) are sampled every 1 ms from stimulus onset; RT is the time of the
    first sample at or above threshold (the same rule as the rate model: first step at/after onset with
    r >= threshold).
    """
    n_sess, _, n_rec = r.shape
    n_trial = tl.trial_ms.size
    choice = np.zeros((n_sess, n_trial), dtype=np.int64)
    rt = np.full((n_sess, n_trial), np.nan)
    never = np.iinfo(np.int64).max
    for k in range(n_trial):
        a = int(tl.onset_ms[k])
        b = min(int(tl.start_ms[k] + tl.trial_ms[k]), n_rec)
        above = r[:, :, a:b] >= threshold_hz  # (sess, 2, time)
        first = np.where(above.any(axis=2), above.argmax(axis=2), never)
        decided = first.min(axis=1) < never
        choice[:, k] = np.where(decided, np.where(first[:, 0] <= first[:, 1], 1, 2), 0)
        rt[:, k] = np.where(decided, first.min(axis=1).astype(float), np.nan)
    return choice, rt


def _read_out(
    s: _Session,
    tl: _Timeline,
    traces: dict[str, np.ndarray],
    attrs: dict[str, Any],
) -> xr.Dataset:
    """The dataset of :func:`simulate_session` from the recorded `traces` (``rate``: pool rates in Hz,
    (session * 2, ms); ``m``: modulator, (session * 4, record); ``t``: record times in ms)."""
    r = traces["rate"].reshape(s.n_sess, 2, -1)
    choice, rt = _choices(r, tl, s.params.threshold_hz)
    m_trace = traces["m"].reshape(s.n_sess, 4, -1)
    n_t = m_trace.shape[-1]
    step_rec = max(1, round(s.record_dt_ms))
    r_dec = r[:, :, ::step_rec][:, :, :n_t]
    if r_dec.shape[-1] < n_t:
        r_dec = np.concatenate([r_dec, np.full((*r_dec.shape[:2], n_t - r_dec.shape[-1]), np.nan)], axis=-1)
    st, tr, pop = ("session", "trial", "population")
    return xr.Dataset(
        {
            "choice": ((st, tr), choice, {"units": "1", "long_name": "choice (1, 2; 0 = no decision)"}),
            "rt": ((st, tr), rt, {"units": "ms", "long_name": "reaction time from stimulus onset"}),
            "feature_a": ((st, tr), s.fa, {"units": "%", "long_name": "signed coherence of feature a"}),
            "feature_b": ((st, tr), s.fb, {"units": "%", "long_name": "signed coherence of feature b"}),
            "release": (
                (st, tr, pop),
                s.release,
                {"units": "1", "long_name": "modulator release level u (target of m)"},
            ),
            "pool_rate": (
                (st, "pool", "time"),
                r_dec,
                {"units": "Hz", "long_name": "decision-pool rate (low-pass filtered)"},
            ),
            "modulator": ((st, pop, "time"), m_trace, {"units": "1", "long_name": "modulator level m"}),
        },
        coords={
            "session": (st, np.arange(s.n_sess), {"units": "1", "long_name": "session"}),
            "trial": (tr, np.arange(s.n_trial), {"units": "1", "long_name": "trial"}),
            pop: (pop, list(SENSORY_POOLS), {"units": "1", "long_name": "sensory population"}),
            "pool": ("pool", np.array([1, 2]), {"units": "1", "long_name": "decision pool"}),
            "time": ("time", traces["t"], {"units": "ms", "long_name": "time"}),
            "stimulus_onset_ms": (
                tr,
                tl.onset_ms.astype(float),
                {"units": "ms", "long_name": "stimulus onset"},
            ),
            "csi_ms": (tr, s.csi, {"units": "ms", "long_name": "cue-stimulus interval"}),
        },
        attrs={
            "title": "Wang (2002) decision circuit, modulated sensory pools",
            "model": "spiking",
            "mechanism": s.mechanism,
            "reset_ms": s.reset_ms,
            "max_rt_ms": s.max_rt_ms,
            "dt_ms": s.dt_ms,
            **attrs,
            "params_json": params_json(decision=s.params, lif=s.lif, modulation=s.modulation),
        },
    )


@contextmanager
def _numpy_global_state_kept() -> Iterator[None]:
    """Restore numpy's global random state on exit.

    ``brian2.seed`` also seeds numpy's global generator (and brian2's runtime draws from it): restoring it
    leaves the caller's global random state untouched (neuromod never uses it).
    """
    state = np.random.get_state()  # noqa: NPY002 (saved to be restored, never used)
    try:
        yield
    finally:
        np.random.set_state(state)  # noqa: NPY002


def simulate_session(
    feature_a_pct: Any,
    feature_b_pct: Any | None = None,
    *,
    release: Any | None = None,
    m0: Any | None = None,
    mechanism: str = "input_gain",
    csi_ms: float | Any = 200.0,
    reset_ms: float = 300.0,
    max_rt_ms: float = 1500.0,
    params: DecisionParams | None = None,
    lif: LIFParams | None = None,
    modulation: ModulationParams | None = None,
    dt_ms: float = 0.1,
    seed: SeedLike = None,
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
    release : array-like, shape (n_session, n_trial, 4), optional
        Modulator release level u in [0, 1] of each sensory pool (a+, a-, b+, b-), set by each trial's cue:
        from the cue of trial k on (until the next cue) the modulator m follows
        ``dm/dt = (u(t) - m) / tau_mod``. Default 0 (unmodulated).
    m0 : array-like, shape (n_session, 4), optional
        Modulator level m at time 0, also the release level before the first cue (default 0).
    mechanism : str
        How the modulator acts on the sensory cells (:data:`neuromod.spiking.MECHANISMS`).
    csi_ms : float or array-like, shape (n_trial,) or (n_session, n_trial)
        Cue-stimulus interval of every trial, or one for all (whole ms). Sessions run in lockstep, so a
        per-trial CSI must be the same in every session (rows of a 2-D array must be equal).
    reset_ms, max_rt_ms : float
        Reset (inter-trial) period and stimulus duration (the RT deadline); whole ms.
    params, lif, modulation : DecisionParams, LIFParams, ModulationParams, optional
        Circuit, sensory-neuron and mechanism parameters (``modulation.tau_mod_ms`` is tau_mod).
    dt_ms, record_dt_ms : float
        Time step (at most 0.5 ms); sampling interval of the returned modulator and pool-rate traces.
    seed : int, numpy.random.SeedSequence or None
        Same seed, bit-identical dataset (recorded in ``attrs``; None draws fresh entropy).
    stop_when_decided : bool
        End the last trial as soon as every session has decided (saves time; no effect on results).
    target, cache_dir : {"cython", "numpy"}, path, optional
        Code-generation target and base of the per-worker compile cache, as in
        :func:`neuromod.spiking.codegen_context` (brian2's preferences are restored afterwards).
    progress : bool
        Show a progress bar over simulated time (updated every 2 s of wall time).

    Returns
    -------
    xarray.Dataset
        ``choice`` (1 or 2; 0 when no pool reached threshold before the deadline) and ``rt`` (ms after
        stimulus onset; NaN without a choice) over (``session``, ``trial``); ``feature_a``/``feature_b``;
        ``release`` over (``session``, ``trial``, ``population``); ``modulator`` over (``session``,
        ``population``, ``time``) and ``pool_rate`` (Hz, filtered rate of decision pools 1 and 2) over
        (``session``, ``pool``, ``time``), every ``record_dt_ms``.

    Raises
    ------
    ValueError, TypeError
        An input of the wrong shape, range or type (named in the message), before anything runs.
    """
    s = _check_session(
        feature_a_pct,
        feature_b_pct,
        release=release,
        m0=m0,
        mechanism=mechanism,
        csi_ms=csi_ms,
        reset_ms=reset_ms,
        max_rt_ms=max_rt_ms,
        params=params,
        lif=lif,
        modulation=modulation,
        dt_ms=dt_ms,
        record_dt_ms=record_dt_ms,
        target=target,
    )
    bseed, seed_attrs = brian_seed(seed)
    import brian2 as b2

    with codegen_context(target, cache_dir=cache_dir) as used, _numpy_global_state_kept():
        b2.seed(bseed)
        tl = _timeline(s)
        nw = _build_network(s, _schedules(s, tl), bseed)
        _run(nw, s, tl, stop_when_decided=bool(stop_when_decided), progress=bool(progress))
        traces = {
            "rate": np.asarray(nw.rate_mon.rate / b2.Hz),
            "m": np.asarray(nw.mod_mon.m),
            "t": np.asarray(nw.mod_mon.t / b2.ms),
        }
    return _read_out(s, tl, traces, {**seed_attrs, "target": used})


def simulate_decision(
    coherence_pct: float | Sequence[float] | np.ndarray,
    *,
    n_trials: int,
    params: DecisionParams | None = None,
    max_rt_ms: float = 1500.0,
    settle_ms: float = 100.0,
    dt_ms: float = 0.1,
    seed: SeedLike = None,
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
