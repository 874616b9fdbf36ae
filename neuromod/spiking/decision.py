"""Wang (2002) decision circuit with modulated sensory pools; trials as closed-loop continuous sessions.

Many independent sessions run side by side as separate sub-networks of the same NeuronGroups (one brian2 run
for all of them). Recurrent connections of the Wang circuit are all-to-all within and between pools, with a
weight that depends only on the pre- and postsynaptic *pool*; AMPA and GABA are linear and NMDA saturates
per presynaptic neuron but sums linearly on the postsynaptic side. So every synaptic input is a weighted sum
of pool-level gating variables: each neuron projects to one "pool node" (AMPA/GABA traces incremented by its
spikes, NMDA gating summed), and each neuron reads the pool nodes of its session through linked variables.
This is exact for all-to-all connectivity and costs O(N) per step instead of O(N^2).

Closed loop. Trial k of a session (times in ms, on the 1 ms grid of the controller)::

    response k-1 | rci_ms[k]: no cue, no stimulus | csi_ms[k]: cue k | stimulus k ... response k (or deadline)
                 ^ decision pools inhibited (reset)  ^ release u -> release[k]  ^ sensory input on

A controller (a brian2 ``NetworkOperation`` every 1 ms, before any group is updated) runs a state machine
per session (phase RCI / CSI / STIM, trial index, end of the phase) and sets variables of the session's pool
nodes, which the cells read through linked variables: the release level ``u`` of each sensory pool
(``release[k]`` while cue k is on, ``release_off`` during the RCI), the Poisson input rate of each sensory
pool (during the stimulus only) and the reset conductance of the excitatory decision cells (during the
RCI). It detects the response online: the first 1 ms sample after stimulus onset (``1 <= rt <= max_rt_ms``)
at which the low-pass filtered rate of a decision pool is at or above ``threshold_hz`` (pool 1 wins a tie);
then the stimulus and the cue go off and the next trial's RCI begins at once. A stimulus without a crossing
is switched off at the deadline, ``max_rt_ms`` after its onset (choice 0, RT NaN). Each session thus has
its own time axis (all start at 0; they end at their own last response), and the run stops when every
session has finished its trials. Nothing about a trial table, seed or release is written into generated
code (they are values of variables), so the compiled code is reused across runs (and numbers of sessions).

Independence of the sessions. A session's cells read only their own session's pool nodes, and the
controller's state is per session; every random number is keyed by the session's own seed and the cell's
index *within its session* (``neuromod.spiking._keyed``: one SplitMix64 stream per cell and purpose, for
the background noise, the sensory cells' white noise and their Poisson counts, drawn by inversion of one
uniform, so a session that draws no input shifts no stream); the initial membrane potentials come from a
generator seeded by the session's seed. So what a session does depends on its inputs and its seed only:
not on the other sessions, nor on its position in the network. A batch of sessions gives, bit for bit, what
the sessions give one by one with their seeds (tested), which is what lets the task-switching experiment
cut a long trial table into many short sessions advancing in lockstep in one network: brian2's cost per
time step for each code object is then paid once for all of them.

Background Poisson input of the decision cells (2.4 kHz on AMPA synapses) is simulated in the diffusion
approximation (same mean and variance; noise from ``neuromod.spiking._keyed``); the sensory pools receive
genuine Poisson spike counts.

Compiling. brian2 compiles the network's code objects the first time (about 2-3 minutes on one core with a
cold cache; :func:`~neuromod.spiking.codegen_context` keeps the modules per worker); nothing about a trial
table, seed, release pattern, tau or the number of sessions is in the generated code, so later runs compile
nothing. When building a run takes more than a few seconds, a message says that brian2 is compiling
(:class:`~neuromod.spiking._codegen.CompileNotice`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr
from tqdm.auto import tqdm

from neuromod._checks import check_array, check_bool, check_choice, check_int, check_positive
from neuromod._machine import COMPILE_FLAGS, DEFAULT_COMPILE_FLAGS
from neuromod._random import SeedLike, seed_sequence

from ._codegen import CompileNotice, check_cache_dir, codegen_context
from ._keyed import knoise_function, kpoisson_function, neuron_keys, session_keys
from ._seed import brian_seed
from .mechanisms import MECHANISMS, lif_model
from .params import DecisionParams, LIFParams, ModulationParams, params_json

__all__ = ["SENSORY_POOLS", "simulate_decision", "simulate_session"]

#: Sensory pools, in the order of the ``population`` dimension and of ``release[..., k]``.
SENSORY_POOLS: tuple[str, ...] = ("a+", "a-", "b+", "b-")
_N_NODES = 8  # per session: E1, E2, NS, I, a+, a-, b+, b-
_SENS_NODES = np.arange(4, 8)  # the nodes of the sensory pools within a session
_TICK_MS = 1.0  # the controller's grid
_FIRST_COMPILE = "about 2-3 min on one core"  # measured 150 s, cold (benchmarks/bench_task_switching.py B)
_MAX_DT_MS = 0.5
_MAX_EVENTS_PER_STEP = 50.0  # mean Poisson count per step that the inversion sampler accepts
_U_TOKEN = "u_sched(t, col)"  # how lif_model's dynamic modulator reads its release level
_NOISE_TOKEN = "nm_noise(i, t_in_timesteps, noise_seed)"  # how lif_model draws its white noise
_SEED_LINE = "noise_seed : integer (constant, shared)"  # and declares the seed of it


def _decision_equations(exc: bool) -> str:
    """Equations of the excitatory (`exc`) or inhibitory decision cells. A cell reads its pool's summed
    recurrent inputs from its pool node (``ampa_in``, ``nmda_in``: the AMPA traces and NMDA gatings of the
    three excitatory pools weighted for the cell's pool; ``sens_in``: the sensory AMPA traces feeding it),
    the inhibitory trace and the reset switch, all through linked variables."""
    nmda = " + g_nmda*(v - e_e)/(1 + mg*exp(-0.062*v/mV)/3.57)*nmda_in"
    sens = " + g_sens*sens_in" if exc else ""
    reset = " + g_reset*reset_on" if exc else ""
    eqs = f"""
dv/dt = int(r_left < 0.5*dt)*(g_l*(e_l - v) - i_syn)/c_m : volt
dr_left/dt = -1 : second
i_syn = (v - e_e)*(g_ext*s_ext + g_ampa*ampa_in{sens}){nmda} \
        + (g_gaba*sg{reset})*(v - e_i) : amp
ds_ext/dt = -s_ext/tau_ampa + ext_rate + sqrt(ext_rate/dt)*nm_knoise(nk_hi, nk_lo, t_in_timesteps) : 1
nk_hi : integer (constant)
nk_lo : integer (constant)
ampa_in : 1 (linked)
nmda_in : 1 (linked)
sg : 1 (linked)
"""
    if exc:
        eqs += """
sens_in : 1 (linked)
reset_on : 1 (linked)
ds_nmda/dt = -s_nmda/tau_nmda_d + alpha_nmda*x*(1 - s_nmda) : 1
dx/dt = -x/tau_nmda_r : 1
"""
    return eqs


# -- inputs --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Session:
    """Checked inputs of :func:`simulate_session` (arrays as documented there; intervals in whole ms over
    (session, trial))."""

    fa: np.ndarray
    fb: np.ndarray
    release: np.ndarray
    release_off: np.ndarray
    m0: np.ndarray
    mechanism: str
    csi: np.ndarray
    rci: np.ndarray
    max_rt: int
    params: DecisionParams
    lif: LIFParams
    modulation: ModulationParams
    dt_ms: float
    record_dt_ms: float
    target: str
    compile_flags: str
    seeds: tuple[np.random.SeedSequence, ...]  #: one per session
    seed_attrs: dict[str, Any]  #: what records them in the dataset

    @property
    def n_sess(self) -> int:
        """Number of sessions."""
        return self.fa.shape[0]

    @property
    def n_trial(self) -> int:
        """Number of trials per session."""
        return self.fa.shape[1]

    @property
    def longest_ms(self) -> int:
        """Length of the longest possible session (every trial to its deadline), ms."""
        return int((self.rci + self.csi).sum(axis=1).max()) + self.n_trial * self.max_rt


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


def _whole_ms(name: str, values: np.ndarray, shown: Any) -> np.ndarray:
    if np.any(np.abs(values - np.rint(values)) > 1e-9):
        raise ValueError(f"{name}={shown!r} must be whole numbers of ms (the controller's 1 ms grid)")
    return np.rint(values).astype(np.int64)


def _check_interval(name: str, value: Any, n_sess: int, n_trial: int) -> np.ndarray:
    """An interval of every trial, whole ms >= 0: a scalar, one per trial (shared by the sessions) or one
    per (session, trial); returned over (session, trial)."""
    arr = check_array(name, value, ndim=(0, 1, 2), low=0.0)
    expected = f"(), ({n_trial},) or ({n_sess}, {n_trial})"
    if (arr.ndim == 1 and arr.shape != (n_trial,)) or (arr.ndim == 2 and arr.shape != (n_sess, n_trial)):
        raise ValueError(f"{name} has shape {arr.shape}, expected {expected}")
    return _whole_ms(name, np.broadcast_to(arr, (n_sess, n_trial)), value)


def _check_param_type(name: str, value: Any, cls: type) -> Any:
    """`value`, or ``cls()`` (published defaults) when None; a TypeError for anything else."""
    if value is None:
        return cls()
    if not isinstance(value, cls):
        raise TypeError(f"{name} must be a {cls.__name__} or None, got {type(value).__name__}")
    return value


def _check_dt(dt_ms: Any, params: DecisionParams) -> float:
    dt_ms = check_positive("dt_ms", dt_ms)
    if dt_ms > _MAX_DT_MS:
        raise ValueError(f"dt_ms={dt_ms!r} is too large: expected at most {_MAX_DT_MS} ms")
    per_tick = _TICK_MS / dt_ms
    if abs(per_tick - round(per_tick)) > 1e-9:
        raise ValueError(
            f"dt_ms={dt_ms!r} does not divide {_TICK_MS} ms: expected 1 ms / n (0.5, 0.25, 0.2, 0.1, ...), "
            "so that the controller's 1 ms grid falls on time steps"
        )
    lam = 2.0 * params.sens_in_hz * dt_ms * 1e-3  # at 100 % coherence
    if lam > _MAX_EVENTS_PER_STEP:
        raise ValueError(
            f"sens_in_hz={params.sens_in_hz!r} with dt_ms={dt_ms!r} gives up to {lam:.3g} input events per "
            f"step; expected at most {_MAX_EVENTS_PER_STEP} (lower dt_ms)"
        )
    return dt_ms


def _session_seeds(seed: Any, n_sess: int) -> tuple[tuple[np.random.SeedSequence, ...], dict[str, Any]]:
    """The seed of every session and the attributes that record them.

    One seed (int, SeedSequence or None) is short for the sequence ``seed_sequence(seed).spawn(n_sess)``:
    session k gets child k. A sequence of seeds: one per session, used as given (a batch of sessions equals
    the sessions run one by one with their seeds).
    """
    if seed is None:
        seed = np.random.SeedSequence()
    if isinstance(seed, (int, np.integer, np.random.SeedSequence)):
        _, attrs = brian_seed(seed)
        return tuple(seed_sequence(seed).spawn(n_sess)), attrs
    if isinstance(seed, (str, bytes)) or not isinstance(seed, (Sequence, np.ndarray)):
        raise TypeError(
            "seed must be an int >= 0, a numpy.random.SeedSequence, None or a sequence of them (one per "
            f"session), got {type(seed).__name__}"
        )
    if len(seed) != n_sess:
        raise ValueError(f"seed has {len(seed)} entries, expected one per session ({n_sess})")
    parents = [seed_sequence(x, f"seed[{k}]") for k, x in enumerate(seed)]
    text = "; ".join(f"{q.entropy}/{' '.join(str(k) for k in q.spawn_key)}" for q in parents)
    return tuple(parents), {"seed": -1, "session_seeds": text}


def _check_session(
    feature_a_pct: Any,
    feature_b_pct: Any | None,
    *,
    release: Any | None,
    release_off: Any | None,
    m0: Any | None,
    mechanism: str,
    csi_ms: Any,
    rci_ms: Any,
    max_rt_ms: float,
    params: DecisionParams | None,
    lif: LIFParams | None,
    modulation: ModulationParams | None,
    dt_ms: float,
    record_dt_ms: float,
    target: str,
    compile_flags: str,
    seed: Any,
) -> _Session:
    """Check the inputs of :func:`simulate_session` (names and meaning as there), before any work."""
    fa = _check_features("feature_a_pct", feature_a_pct)
    fb = np.zeros_like(fa) if feature_b_pct is None else _check_features("feature_b_pct", feature_b_pct)
    if fb.shape != fa.shape:
        raise ValueError(f"feature_b_pct has shape {fb.shape}, expected {fa.shape}")
    n_sess, n_trial = fa.shape
    u_in = _check_levels("release", release, (n_sess, n_trial, 4))
    u_off = _check_levels("release_off", release_off, (n_sess, 4))
    m_init = u_off.copy() if m0 is None else _check_levels("m0", m0, (n_sess, 4))
    check_choice("mechanism", mechanism, MECHANISMS)
    check_choice("target", target, ("cython", "numpy"))
    check_choice("compile_flags", compile_flags, COMPILE_FLAGS)
    csi = _check_interval("csi_ms", csi_ms, n_sess, n_trial)
    rci = _check_interval("rci_ms", rci_ms, n_sess, n_trial)
    max_rt = check_positive("max_rt_ms", max_rt_ms)
    max_rt = int(_whole_ms("max_rt_ms", np.asarray(max_rt), max_rt_ms))
    p = _check_param_type("params", params, DecisionParams)
    seeds, seed_attrs = _session_seeds(seed, n_sess)
    return _Session(
        fa=fa,
        fb=fb,
        release=u_in,
        release_off=u_off,
        m0=m_init,
        mechanism=mechanism,
        csi=csi,
        rci=rci,
        max_rt=max_rt,
        params=p,
        lif=_check_param_type("lif", lif, LIFParams),
        modulation=_check_param_type("modulation", modulation, ModulationParams),
        dt_ms=_check_dt(dt_ms, p),
        record_dt_ms=check_positive("record_dt_ms", record_dt_ms),
        target=target,
        compile_flags=compile_flags,
        seeds=seeds,
        seed_attrs=seed_attrs,
    )


# -- the network ---------------------------------------------------------------------------------------------
def _pool_sizes(p: DecisionParams) -> dict[str, int]:
    """Cells per session: excitatory and inhibitory decision cells, each selective pool, non-selective."""
    n_e = round(p.n_total * p.frac_exc)
    n_sel = round(p.frac_selective * n_e)
    return {"e": n_e, "i": p.n_total - n_e, "sel": n_sel, "ns": n_e - 2 * n_sel, "s": p.n_sensory}


def _decision_namespaces(s: _Session) -> tuple[dict[str, Any], dict[str, Any]]:
    """brian2 namespaces of the excitatory and the inhibitory decision cells."""
    import brian2 as b2

    p, lif = s.params, s.lif
    ms, mv, ns, hz = b2.ms, b2.mV, b2.nS, b2.Hz
    scale = p.recurrent_scale
    common = {
        "e_e": 0.0 * mv,
        "e_i": -70.0 * mv,
        "tau_ampa": p.tau_ampa_ms * ms,
        "ext_rate": p.ext_rate_hz * hz,
        "mg": p.mg_mm / 1.0,
        "nm_knoise": knoise_function(),
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


def _sensory_model(s: _Session) -> tuple[str, str, dict[str, Any]]:
    """The sensory cells' model of :func:`~neuromod.spiking.lif_model` (dynamic modulator, synaptic drive),
    with the release level read from the session's pool node (``u_rel``, linked) instead of a schedule,
    and the input rate and Poisson seed that the input code reads."""
    eqs, reset, namespace = lif_model(
        s.mechanism,
        noise=s.lif.noise_mv > 0,
        drive="synaptic",
        modulator="dynamic",
        params=s.lif,
        modulation=s.modulation,
    )
    if _U_TOKEN not in eqs:
        raise RuntimeError(
            f"lif_model(modulator='dynamic') no longer reads its release level as {_U_TOKEN!r}; "
            "neuromod.spiking.decision must follow its interface"
        )
    noise_on = s.lif.noise_mv > 0
    if noise_on and _NOISE_TOKEN not in eqs:
        raise RuntimeError(
            f"lif_model(noise=True) no longer draws its noise as {_NOISE_TOKEN!r}; "
            "neuromod.spiking.decision must follow its interface"
        )
    # the session's keyed noise instead of the network-wide hash (see neuromod.spiking._keyed)
    eqs = eqs.replace(_U_TOKEN, "u_rel").replace(_NOISE_TOKEN, "nm_knoise(nk_hi, nk_lo, t_in_timesteps)")
    eqs = eqs.replace(_SEED_LINE, "") + (
        "\nu_rel : 1 (linked)\nrate_in : Hz (linked)\nnk_hi : integer (constant)\nnk_lo : integer (constant)"
        "\npk_hi : integer (constant)\npk_lo : integer (constant)"
    )
    namespace.pop("nm_noise", None)
    namespace["nm_knoise"] = knoise_function()
    namespace["nm_kpoisson"] = kpoisson_function()
    return eqs, reset, namespace


def _neuron_groups(s: _Session) -> tuple[Any, Any, Any, Any]:
    """The NeuronGroups of all sessions: excitatory and inhibitory decision cells, sensory cells (with
    their Poisson input) and the pool nodes (gating traces, filtered rate and the controller's variables of
    every pool)."""
    import brian2 as b2

    p, n_sess, n = s.params, s.n_sess, _pool_sizes(s.params)
    ms, dt = b2.ms, s.dt_ms * b2.ms
    ns_e, ns_i = _decision_namespaces(s)
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
    s_eqs, s_reset, s_ns = _sensory_model(s)
    s_ns["tau_in"] = p.tau_ampa_ms * ms
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
    sensory.run_regularly(
        "s_in += nm_kpoisson(rate_in*dt, pk_hi, pk_lo, t_in_timesteps)", dt=dt, when="before_groups"
    )
    nodes = b2.NeuronGroup(
        n_sess * _N_NODES,
        """
            ds_ampa/dt = -s_ampa/tau_ampa : 1
            ds_gaba/dt = -s_gaba/tau_gaba : 1
            s_nmda_tot : 1
            drate/dt = -rate/tau_r : Hz
            inv_n : 1 (constant)
            u_rel : 1
            rate_in : Hz
            reset_on : 1
            ampa_in : 1
            nmda_in : 1
            sens_in : 1
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


def _connect_pools(s: _Session, groups: tuple[Any, Any, Any, Any]) -> list[Any]:
    """Pool weights, linked read-out of the pool nodes, initial state; the Synapses onto the pool nodes.

    Every neuron projects to the node of its pool (its spikes increment the node's AMPA/GABA trace and its
    filtered rate; its NMDA gating is summed) and reads the nodes of its session through linked variables.
    """
    import brian2 as b2

    E, inh, S, P = groups
    p, n_sess, n = s.params, s.n_sess, _pool_sizes(s.params)
    sizes = np.array([n["sel"], n["sel"], n["ns"], n["i"], n["s"], n["s"], n["s"], n["s"]], dtype=float)
    P.inv_n = np.tile(1.0 / sizes, n_sess)
    # pool membership
    e_pool = np.repeat(np.array([0, 1, 2]), [n["sel"], n["sel"], n["ns"]])  # within a session
    e_sess = np.repeat(np.arange(n_sess), n["e"])
    e_pool_all = np.tile(e_pool, n_sess)
    i_sess = np.repeat(np.arange(n_sess), n["i"])
    s_sess = np.repeat(np.arange(n_sess), 4 * n["s"])
    s_pool = np.tile(np.repeat(np.arange(4), n["s"]), n_sess)
    base_e, base_i = e_sess * _N_NODES, i_sess * _N_NODES
    for grp, base, own in ((E, base_e, base_e + e_pool_all), (inh, base_i, base_i + 3)):
        grp.ampa_in = b2.linked_var(P, "ampa_in", index=own)
        grp.nmda_in = b2.linked_var(P, "nmda_in", index=own)
        grp.sg = b2.linked_var(P, "s_gaba", index=base + 3)
    E.sens_in = b2.linked_var(P, "sens_in", index=base_e + e_pool_all)
    # the controller's variables: reset on node 0 of the session, release and input rate on the sensory nodes
    E.reset_on = b2.linked_var(P, "reset_on", index=base_e)
    s_node = s_sess * _N_NODES + 4 + s_pool
    S.u_rel = b2.linked_var(P, "u_rel", index=s_node)
    S.rate_in = b2.linked_var(P, "rate_in", index=s_node)
    S.col = s_sess * 4 + s_pool
    S.w_in = p.sens_w_na * b2.nA
    S.m = s.m0[s_sess, s_pool]
    _initial_state(s, groups)
    targets = (base_e + e_pool_all, base_i + 3, s_node)
    return _pool_synapses(s, groups, targets) + _input_sums(s, P)


def _initial_state(s: _Session, groups: tuple[Any, Any, Any, Any]) -> None:
    """Initial potentials and gating, and the keys of every cell's random streams, from each session's own
    seed (``neuromod.spiking._keyed``): nothing of a session's start or noise depends on the others."""
    import brian2 as b2

    E, inh, S, _ = groups
    p, lif, n = s.params, s.lif, _pool_sizes(s.params)
    keys = session_keys(s.seeds)
    sizes = {"e": n["e"], "i": n["i"], "s": 4 * n["s"]}
    v0 = {name: [] for name in sizes}
    for k in range(s.n_sess):
        rng = np.random.default_rng(keys["potentials"][k])
        for name, size in sizes.items():
            v0[name].append(rng.uniform(0.0, 5.0, size))
    for grp, name in ((E, "e"), (inh, "i"), (S, "s")):
        grp.v = (lif.e_l_mv + np.concatenate(v0[name])) * b2.mV
    E.s_ext = inh.s_ext = p.ext_rate_hz * p.tau_ampa_ms * 1e-3
    E.nk_hi, E.nk_lo = neuron_keys(keys["exc_noise"], n["e"])
    inh.nk_hi, inh.nk_lo = neuron_keys(keys["inh_noise"], n["i"])
    S.nk_hi, S.nk_lo = neuron_keys(keys["sensory_noise"], 4 * n["s"])
    S.pk_hi, S.pk_lo = neuron_keys(keys["sensory_poisson"], 4 * n["s"])


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


def _input_sums(s: _Session, P: Any) -> list[Any]:
    """Synapses between the pool nodes of each session that sum, every step, the recurrent input of each
    decision pool: ``ampa_in`` and ``nmda_in`` of node E1, E2, NS or I are the AMPA traces and NMDA gatings
    of E1, E2 and NS weighted by ``w+`` / ``w-`` (Wang 2002; 1 for NS and I), and ``sens_in`` of E1 (E2)
    the AMPA traces of a+ and b+ (a- and b-). Once per pool instead of once per cell: the same sums, in the
    same order, as each cell would form. brian2 updates summed variables just before their target's state
    update, ties by name: "pool_exc_summed..." (NMDA gatings) before "pool_mix_summed..." (which reads them).
    """
    import brian2 as b2

    p, n_sess = s.params, s.n_sess
    wp, wm = p.w_plus, p.w_minus
    w_table = np.array([[wp, wm, wm], [wm, wp, wm], [1.0, 1.0, 1.0], [1.0, 1.0, 1.0]])  # (post pool, pre)
    post, pre = np.repeat(np.arange(4), 3), np.tile(np.arange(3), 4)  # for each post, pre E1, E2, NS
    base = np.repeat(np.arange(n_sess) * _N_NODES, post.size)
    mix = b2.Synapses(
        P,
        P,
        """
        w_mix : 1 (constant)
        ampa_in_post = w_mix*s_ampa_pre : 1 (summed)
        nmda_in_post = w_mix*s_nmda_tot_pre : 1 (summed)
        """,
        dt=s.dt_ms * b2.ms,
        name="pool_mix*",
    )
    mix.connect(i=base + np.tile(pre, n_sess), j=base + np.tile(post, n_sess))
    mix.w_mix = np.tile(w_table[post, pre], n_sess)
    sens = b2.Synapses(
        P, P, "sens_in_post = s_ampa_pre : 1 (summed)", dt=s.dt_ms * b2.ms, name="pool_sensmix*"
    )
    s_pre, s_post = np.array([4, 6, 5, 7]), np.array([0, 0, 1, 1])  # a+, b+ -> E1; a-, b- -> E2
    base = np.repeat(np.arange(n_sess) * _N_NODES, 4)
    sens.connect(i=base + np.tile(s_pre, n_sess), j=base + np.tile(s_post, n_sess))
    return [mix, sens]


# -- the closed loop -----------------------------------------------------------------------------------------
_RCI, _CSI, _STIM, _DONE = 0, 1, 2, 3


class _Controller:
    """The per-session state machine of the closed loop (see the module docstring), called every 1 ms.

    It writes the pool nodes' ``u_rel`` (release level), ``rate_in`` (Poisson input rate, Hz) and
    ``reset_on`` in place (the arrays the compiled code reads), and records per trial the cue onset, the
    stimulus onset, the response (end of the stimulus), choice and RT. Times are ticks = ms since 0.
    """

    def __init__(self, s: _Session, nodes: Any) -> None:
        n_sess, n_trial = s.n_sess, s.n_trial
        self.s = s
        self.threshold_hz = s.params.threshold_hz
        # the state arrays of the pool nodes themselves (brian2's runtime device hands out the array the
        # compiled code reads; writing into it in place is seen by the next step)
        self.rate = nodes.variables["rate"].get_value()
        self.u_rel = nodes.variables["u_rel"].get_value()
        self.rate_in = nodes.variables["rate_in"].get_value()
        self.reset_on = nodes.variables["reset_on"].get_value()
        sess = np.arange(n_sess)
        self.dec_nodes = (sess[:, None] * _N_NODES + np.array([0, 1])[None, :]).ravel()
        self.sens_nodes = sess[:, None] * _N_NODES + _SENS_NODES[None, :]  # (session, pool)
        self.reset_nodes = sess * _N_NODES
        coh = np.stack([s.fa, -s.fa, s.fb, -s.fb], axis=-1) / 100.0  # (session, trial, pool)
        self.stim_hz = s.params.sens_in_hz * (1.0 + coh)
        self.phase = np.full(n_sess, _RCI, dtype=np.int8)
        self.k = np.zeros(n_sess, dtype=np.int64)
        self.end = s.rci[:, 0].copy()  # tick at which the current RCI or CSI ends
        self.onset = np.zeros(n_sess, dtype=np.int64)
        self.choice = np.zeros((n_sess, n_trial), dtype=np.int8)
        self.rt = np.full((n_sess, n_trial), np.nan)
        self.cue_ms = np.full((n_sess, n_trial), -1, dtype=np.int64)
        self.stim_ms = np.full((n_sess, n_trial), -1, dtype=np.int64)
        self.response_ms = np.full((n_sess, n_trial), -1, dtype=np.int64)
        self.tick = 0
        self.net: Any = None  # the Network to stop once every session is done
        self._apply(sess)
        self.stim_nodes = self.dec_nodes[:0]  # the decision-pool nodes of the sessions in the stimulus phase
        self.next_event = self._next_event()

    def _apply(self, idx: np.ndarray) -> None:
        """Set the node variables of sessions `idx` for their current phase."""
        s, ph = self.s, self.phase[idx]
        k = np.minimum(self.k[idx], s.n_trial - 1)
        cued = ((ph == _CSI) | (ph == _STIM))[:, None]
        self.u_rel[self.sens_nodes[idx]] = np.where(cued, s.release[idx, k], s.release_off[idx])
        self.rate_in[self.sens_nodes[idx]] = np.where((ph == _STIM)[:, None], self.stim_hz[idx, k], 0.0)
        self.reset_on[self.reset_nodes[idx]] = ((ph == _RCI) | (ph == _DONE)).astype(float)

    def _next_event(self) -> int:
        """The first tick at which some session changes phase without a response (an RCI or CSI ends,
        a deadline)."""
        ends = np.where(self.phase == _STIM, self.onset + self.s.max_rt, self.end)
        ends = ends[self.phase != _DONE]
        return int(ends.min()) if ends.size else np.iinfo(np.int64).max

    def __call__(self) -> None:
        n, s = self.tick, self.s
        self.tick += 1
        # fast path (most ticks): no phase ends now and no decision pool at threshold
        if n < self.next_event and not (self.rate[self.stim_nodes] >= self.threshold_hz).any():
            return
        phase = self.phase
        changed = np.zeros(phase.size, dtype=bool)
        stim = phase == _STIM
        if stim.any():
            up = self.rate[self.dec_nodes].reshape(-1, 2) >= self.threshold_hz
            j = n - self.onset
            resp = stim & (j >= 1) & up.any(axis=1)
            ended = resp | (stim & (j >= s.max_rt))
            if ended.any():
                idx = np.flatnonzero(ended)
                k, r = self.k[idx], resp[idx]
                self.choice[idx, k] = np.where(r, np.where(up[idx, 0], 1, 2), 0)
                self.rt[idx, k] = np.where(r, j[idx], np.nan)
                self.response_ms[idx, k] = n
                self.k[idx] += 1
                last = self.k[idx] >= s.n_trial
                phase[idx[last]] = _DONE
                nxt = idx[~last]
                phase[nxt] = _RCI
                self.end[nxt] = n + s.rci[nxt, self.k[nxt]]
                changed[idx] = True
        cue = (phase == _RCI) & (self.end <= n)
        if cue.any():
            idx = np.flatnonzero(cue)
            phase[idx] = _CSI
            self.cue_ms[idx, self.k[idx]] = n
            self.end[idx] = n + s.csi[idx, self.k[idx]]
            changed[idx] = True
        go = (phase == _CSI) & (self.end <= n)
        if go.any():
            idx = np.flatnonzero(go)
            phase[idx] = _STIM
            self.onset[idx] = n
            self.stim_ms[idx, self.k[idx]] = n
            changed[idx] = True
        if changed.any():
            self._apply(np.flatnonzero(changed))
            self.stim_nodes = self.dec_nodes.reshape(-1, 2)[phase == _STIM].ravel()
            self.next_event = self._next_event()
            if self.net is not None and np.all(phase == _DONE):
                self.net.stop()


@dataclass(frozen=True)
class _Network:
    """A built session network, its controller and its monitors."""

    net: Any  #: brian2.Network
    controller: _Controller
    mod_mon: Any  #: modulator of every sensory pool (its first cell), every ``record_dt_ms``
    node_mon: Any  #: rate and input rate of the pool nodes E1, E2, a+, a-, b+, b-, every ``record_dt_ms``


def _build_network(s: _Session) -> _Network:
    """All sessions as sub-networks of one brian2 Network, with the controller (see the module docstring)."""
    import brian2 as b2

    groups = _neuron_groups(s)
    synapses = _connect_pools(s, groups)
    E, inh, S, P = groups
    ctrl = _Controller(s, P)
    # before every group and monitor of the tick (order -1 in the 'start' slot)
    op = b2.NetworkOperation(ctrl, dt=_TICK_MS * b2.ms, when="start", order=-1, name="controller*")
    rec = np.arange(s.n_sess)[:, None] * _N_NODES + np.array([0, 1, 4, 5, 6, 7])[None, :]
    node_mon = b2.StateMonitor(
        P, ["rate", "rate_in"], record=rec.ravel(), dt=s.record_dt_ms * b2.ms, name="node_mon*"
    )
    mod_mon = b2.StateMonitor(
        S,
        "m",
        record=np.arange(s.n_sess * 4) * s.params.n_sensory,
        dt=s.record_dt_ms * b2.ms,
        name="mod_mon*",
    )
    net = b2.Network(E, inh, S, P, *synapses, op, node_mon, mod_mon)
    ctrl.net = net
    return _Network(net, ctrl, mod_mon, node_mon)


def _run(nw: _Network, s: _Session, *, progress: bool) -> None:
    """Run until every session has done its trials (the controller stops the network), at most the
    longest possible session (every trial to its deadline) plus the tick that detects the last deadline."""
    import brian2 as b2

    longest_ms = s.longest_ms + _TICK_MS
    total_s = round(longest_ms / 1000.0, 3)
    bar = tqdm(
        total=total_s,
        desc="spiking session",
        unit="s simulated",
        disable=not progress,
        bar_format="{l_bar}{bar}| {n:.1f}/{total:.1f} s simulated (at most) [{elapsed}]",
    )

    notice = CompileNotice(
        "the session network",
        first_time=_FIRST_COMPILE,
        cache=b2.prefs["codegen.runtime.cython.cache_dir"],
        echo=progress,
    )

    def report(elapsed: Any, completed: float, start: Any, duration: Any) -> None:
        notice.done()  # the first call comes once the network is built (compiled), before the first step
        bar.update(min(total_s, float(completed) * total_s) - bar.n)

    try:
        nw.net.run(longest_ms * b2.ms, namespace={}, report=report, report_period=2.0 * b2.second)
        if not np.all(nw.controller.phase == _DONE):  # pragma: no cover (the bound holds by construction)
            raise RuntimeError("the session run ended before every session had finished its trials")
    finally:
        notice.done()
        bar.close()


def _read_out(
    s: _Session, ctrl: _Controller, traces: dict[str, np.ndarray], attrs: dict[str, Any]
) -> xr.Dataset:
    """The dataset of :func:`simulate_session` from the controller's records and the recorded `traces`
    (``m``: modulator, (session * 4, record); ``rate``, ``rate_in``: (session * 6, record), nodes E1, E2,
    a+, a-, b+, b-; ``t``: record times in ms). Samples after a session's end are NaN."""
    t = traces["t"]
    end = ctrl.response_ms[:, -1].astype(float)
    after = t[None, None, :] > end[:, None, None]  # (session, 1, time)
    rate = np.where(after, np.nan, traces["rate"].reshape(s.n_sess, 6, -1))
    rate_in = np.where(after, np.nan, traces["rate_in"].reshape(s.n_sess, 6, -1)[:, 2:])
    m = np.where(after, np.nan, traces["m"].reshape(s.n_sess, 4, -1))
    st, tr, pop = ("session", "trial", "population")

    def var(dims: tuple[str, ...], values: Any, units: str, long_name: str) -> tuple:
        return (dims, values, {"units": units, "long_name": long_name})

    return xr.Dataset(
        {
            "choice": var((st, tr), ctrl.choice.astype(np.int64), "1", "choice (1, 2; 0 = no decision)"),
            "rt": var((st, tr), ctrl.rt, "ms", "reaction time from stimulus onset"),
            "cue_onset_ms": var((st, tr), ctrl.cue_ms.astype(float), "ms", "cue onset"),
            "stim_onset_ms": var((st, tr), ctrl.stim_ms.astype(float), "ms", "stimulus onset"),
            "response_ms": var(
                (st, tr),
                ctrl.response_ms.astype(float),
                "ms",
                "response or deadline (end of stimulus and cue)",
            ),
            "feature_a": var((st, tr), s.fa, "%", "signed coherence of feature a"),
            "feature_b": var((st, tr), s.fb, "%", "signed coherence of feature b"),
            "csi_ms": var((st, tr), s.csi.astype(float), "ms", "cue-stimulus interval"),
            "rci_ms": var((st, tr), s.rci.astype(float), "ms", "response-cue interval before the cue"),
            "release": var((st, tr, pop), s.release, "1", "modulator release level u (target of m)"),
            "release_off": var((st, pop), s.release_off, "1", "release level u without a cue (RCI)"),
            "modulator": var((st, pop, "time"), m, "1", "modulator level m"),
            "input_rate": var((st, pop, "time"), rate_in, "Hz", "Poisson input rate of the sensory pool"),
            "sensory_rate": var(
                (st, pop, "time"), rate[:, 2:], "Hz", "sensory-pool rate (low-pass filtered)"
            ),
            "pool_rate": var(
                (st, "pool", "time"), rate[:, :2], "Hz", "decision-pool rate (low-pass filtered)"
            ),
        },
        coords={
            st: (st, np.arange(s.n_sess), {"units": "1", "long_name": "session"}),
            tr: (tr, np.arange(s.n_trial), {"units": "1", "long_name": "trial"}),
            pop: (pop, list(SENSORY_POOLS), {"units": "1", "long_name": "sensory population"}),
            "pool": ("pool", np.array([1, 2]), {"units": "1", "long_name": "decision pool"}),
            "time": ("time", t, {"units": "ms", "long_name": "time in the session"}),
        },
        attrs={
            "title": "Wang (2002) decision circuit, modulated sensory pools, closed-loop sessions",
            "model": "spiking",
            "mechanism": s.mechanism,
            "max_rt_ms": float(s.max_rt),
            "dt_ms": s.dt_ms,
            "record_dt_ms": s.record_dt_ms,
            **attrs,
            "params_json": params_json(decision=s.params, lif=s.lif, modulation=s.modulation),
        },
    )


def simulate_session(
    feature_a_pct: Any,
    feature_b_pct: Any | None = None,
    *,
    release: Any | None = None,
    release_off: Any | None = None,
    m0: Any | None = None,
    mechanism: str = "input_gain",
    csi_ms: float | Any = 200.0,
    rci_ms: float | Any = 300.0,
    max_rt_ms: float = 1500.0,
    params: DecisionParams | None = None,
    lif: LIFParams | None = None,
    modulation: ModulationParams | None = None,
    dt_ms: float = 0.1,
    seed: SeedLike | Sequence[SeedLike] = None,
    record_dt_ms: float = 10.0,
    target: str = "cython",
    compile_flags: str = DEFAULT_COMPILE_FLAGS,
    cache_dir: str | os.PathLike[str] | None = None,
    progress: bool = False,
) -> xr.Dataset:
    """Run closed-loop sessions of trials on the decision circuit; the modulator carries over between trials.

    Every session runs its trials one after the other (see the module docstring): response-cue interval
    (no cue, no stimulus, decision pools reset), cue (release level ``release[k]``) for the cue-stimulus
    interval, then the stimulus until the response (the first threshold crossing of a decision pool's rate)
    or the deadline; the next RCI starts at the response. The sessions of one call run side by side in one
    network and do not influence each other.

    Parameters
    ----------
    feature_a_pct, feature_b_pct : array-like, shape (n_session, n_trial)
        Signed coherence (%) of features a and b per trial. Pool ``a+`` receives input rate
        ``sens_in_hz (1 + c_a/100)``, ``a-`` ``sens_in_hz (1 - c_a/100)`` (likewise b) during the stimulus,
        none otherwise; a+ and b+ feed decision pool 1, a- and b- pool 2. ``feature_b_pct=None`` means 0.
    release : array-like, shape (n_session, n_trial, 4), optional
        Modulator release level u in [0, 1] of each sensory pool (a+, a-, b+, b-) while trial k's cue is on
        (from the cue to the response); the modulator m follows ``dm/dt = (u(t) - m) / tau_mod``.
        Default 0 (unmodulated).
    release_off : array-like, shape (n_session, 4), optional
        Release level during the response-cue intervals, when no cue is on (default 0).
    m0 : array-like, shape (n_session, 4), optional
        Modulator level m at time 0 (default `release_off`: the session starts at the RCI's equilibrium).
    mechanism : str
        How the modulator acts on the sensory cells (:data:`neuromod.spiking.MECHANISMS`).
    csi_ms, rci_ms : float or array-like, shape (n_trial,) or (n_session, n_trial)
        Cue-stimulus and response-cue interval of every trial (the RCI precedes trial k's cue; the first
        trial's counts from time 0), or one value for all; whole ms >= 0. With an RCI of 0 the decision
        pools are not reset before that trial.
    max_rt_ms : float
        Deadline (whole ms): the stimulus of a trial without response lasts exactly this long.
    params, lif, modulation : DecisionParams, LIFParams, ModulationParams, optional
        Circuit, sensory-neuron and mechanism parameters (``modulation.tau_mod_ms`` is tau_mod;
        ``params.threshold_hz`` the response threshold).
    dt_ms : float
        Time step: at most 0.5 ms and a divisor of 1 ms (the controller's grid).
    record_dt_ms : float
        Sampling interval of the returned traces.
    seed : int, numpy.random.SeedSequence, None, or a sequence of them (one per session)
        Same seed, bit-identical dataset (recorded in ``attrs``; None draws fresh entropy). A sequence gives
        every session its own seed, and a batch of sessions then equals, bit for bit, the sessions run one
        by one with their seeds; one seed is short for ``SeedSequence(seed).spawn(n_session)``
        (every random number of a session is keyed by its seed and its cells' indices within the session:
        ``neuromod.spiking._keyed``).
    target, compile_flags, cache_dir : {"cython", "numpy"}, {"portable", "native"}, path, optional
        Code-generation target, compiler flags (``"portable"``: the same numbers on every CPU of an
        architecture; ``"native"``: code tuned to this CPU) and base of the per-worker compile cache, as in
        :func:`neuromod.spiking.codegen_context` (brian2's preferences are restored afterwards; target and
        flags recorded in ``attrs``).
    progress : bool
        Show a progress bar over simulated time (updated every 2 s of wall time).

    Returns
    -------
    xarray.Dataset
        Over (``session``, ``trial``): ``choice`` (1 or 2; 0 when no pool reached threshold before the
        deadline), ``rt`` (ms after stimulus onset, in (0, max_rt_ms]; NaN without a choice),
        ``cue_onset_ms``, ``stim_onset_ms`` and ``response_ms`` (the end of stimulus and cue: the response,
        or the deadline), all on the session's own time axis, and the inputs ``feature_a``, ``feature_b``,
        ``csi_ms``, ``rci_ms``, ``release`` (with ``population``); ``release_off``. Traces every
        ``record_dt_ms`` over ``time`` (from 0; NaN after the session's last response): ``modulator``,
        ``input_rate`` (Poisson input rate, Hz) and ``sensory_rate`` (filtered rate, Hz) over (``session``,
        ``population``, ``time``), ``pool_rate`` (filtered rate of decision pools 1 and 2, Hz) over
        (``session``, ``pool``, ``time``).

    Raises
    ------
    ValueError, TypeError
        An input of the wrong shape, range or type (named in the message), before anything runs.
    """
    s = _check_session(
        feature_a_pct,
        feature_b_pct,
        release=release,
        release_off=release_off,
        m0=m0,
        mechanism=mechanism,
        csi_ms=csi_ms,
        rci_ms=rci_ms,
        max_rt_ms=max_rt_ms,
        params=params,
        lif=lif,
        modulation=modulation,
        dt_ms=dt_ms,
        record_dt_ms=record_dt_ms,
        target=target,
        compile_flags=compile_flags,
        seed=seed,
    )
    check_cache_dir(cache_dir)
    check_bool("progress", progress)
    import brian2 as b2

    with codegen_context(target, compile_flags=s.compile_flags, cache_dir=cache_dir) as used:
        nw = _build_network(s)
        _run(nw, s, progress=bool(progress))
        traces = {
            "m": np.asarray(nw.mod_mon.m),
            "rate": np.asarray(nw.node_mon.rate / b2.Hz),
            "rate_in": np.asarray(nw.node_mon.rate_in / b2.Hz),
            "t": np.round(np.asarray(nw.mod_mon.t / b2.ms), 6),  # multiples of record_dt_ms
        }
    return _read_out(
        s, nw.controller, traces, {**s.seed_attrs, "target": used, "compile_flags": s.compile_flags}
    )


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
    compile_flags: str = DEFAULT_COMPILE_FLAGS,
    cache_dir: str | os.PathLike[str] | None = None,
) -> xr.Dataset:
    """The plain random-dot task: ``n_trials`` independent trials per coherence (feature a only).

    Every trial is its own one-trial session (sub-network) starting from rest, with ``settle_ms`` of reset
    (its response-cue interval) before the stimulus; all trials of all coherences run in parallel in one
    brian2 run, which ends when every trial has responded or reached the deadline. Pool 1 is correct for
    coherence >= 0 (at 0 % either choice is a guess, scored against pool 1).

    Parameters
    ----------
    coherence_pct : float or array-like of float
        Coherence(s) in % (signed; negative favours pool 2).
    n_trials : int
        Trials per coherence.
    params, max_rt_ms, dt_ms, seed, target, compile_flags, cache_dir
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
    max_rt_ms = check_positive("max_rt_ms", max_rt_ms)
    settle_ms = float(
        _whole_ms("settle_ms", np.asarray(check_positive("settle_ms", settle_ms, allow_zero=True)), settle_ms)
    )
    coh = check_array("coherence_pct", coherence_pct, ndim=(0, 1), low=-100.0, high=100.0)
    scalar = coh.ndim == 0
    coh = np.atleast_1d(coh)
    fa = np.repeat(coh, n_trials)[:, None]
    ds = simulate_session(
        fa,
        None,
        mechanism="none",
        csi_ms=0.0,
        rci_ms=settle_ms,
        max_rt_ms=max_rt_ms,
        params=params,
        dt_ms=dt_ms,
        seed=seed,
        record_dt_ms=max_rt_ms + settle_ms,
        target=target,
        compile_flags=compile_flags,
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
        attrs={k: v for k, v in ds.attrs.items() if k not in ("title", "record_dt_ms")}
        | {"title": "Wang (2002) decision circuit, plain task"},
    )
    return out.isel(coherence=0) if scalar else out
