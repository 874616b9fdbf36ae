"""Benchmark of the batched Wong-Wang simulator (neuromod.rate), interleaved A/B in one process.

1. Batched simulator vs a loop of per-condition ``solve_ivp`` calls (what a user would otherwise
   write: default RK45, trajectory on the 0.5 ms grid), 1,000 conditions (coherences), 2 s,
   noise off (``solve_ivp`` has no SDE). The loop is slow, so each repeat times a random sample of
   conditions and scales to 1,000 (stated in the output). Target: >= 50x.
2. Condition-steps per second at 10,000 conditions (coherences), float64, 2 s at dt = 0.5 ms,
   through the public :func:`neuromod.rate.simulate_decision` (1 thread), noise off and on. Noise on
   draws two normals per condition-step inside the compiled kernel (xoshiro256++ streams, ziggurat:
   :mod:`neuromod.rate._rng`); side by side, the earlier path (numpy ``Generator.standard_normal``
   outside the kernel, reachable through the private switch ``circuit._NUMPY_NOISE``), naive NumPy
   (fresh temporaries each step) and ``simulate_circuit`` on ``n_threads`` = number of CPUs (reported
   only). Targets (public function, 1 thread): >= 0.3 G condition-steps/s noise off, >= 0.06 G noise on.
3. One closed-loop task-switching session (:func:`neuromod.rate.simulate_task_session`), 4,000 trials of
   ``CuedTaskSwitching`` (RCI 300 ms, CSIs 50-1200 ms, mean 460) on the rate family's default sensory
   stage, dt = 0.5 ms, noise on, 1 thread: trials and steps per wall second (CPU time too, since a
   shared machine inflates wall time), and the time projected for the reference workload of 4,000
   trials of 1,360 ms (RCI 300 + CSI 460 + RT 600). Target: that workload in <= 5 s.

Run: ``.venv/bin/python benchmarks/bench_rate.py`` (``--quick`` for a short smoke run).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from functools import partial

import numpy as np
from scipy.integrate import solve_ivp

from neuromod.rate import (
    Modulation,
    SensoryStage,
    ThresholdLinear,
    WongWang2006,
    circuit,
    simulate_circuit,
    simulate_decision,
    simulate_task_session,
    wong_wang_rhs,
)
from neuromod.tasks.switching import CuedTaskSwitching

P = WongWang2006()
DT = 0.5


def direct_inputs(coherence: np.ndarray) -> np.ndarray:
    base = P.j_ext_na_per_hz * P.mu0_hz
    return np.stack([base * (1 + coherence / 100), base * (1 - coherence / 100)], 1)[:, None, :]


def batched(coherence: np.ndarray, duration: float, noise: bool, threads: int = 1) -> None:
    simulate_circuit(
        duration_ms=duration,
        onset_ms=np.zeros((coherence.size, 1)),
        direct_na=direct_inputs(coherence),
        dt_ms=DT,
        noise=noise,
        seed=0,
        n_threads=threads,
    )


def public(coherence: np.ndarray, duration: float, noise: bool, numpy_noise: bool = False) -> None:
    """The public :func:`simulate_decision`, one trial per coherence (`numpy_noise`: the earlier noise)."""
    circuit._NUMPY_NOISE = numpy_noise
    try:
        simulate_decision(coherence, n_trials=1, max_rt_ms=duration, dt_ms=DT, noise=noise, seed=0)
    finally:
        circuit._NUMPY_NOISE = False


def solve_ivp_loop(coherence: np.ndarray, duration: float) -> None:
    t_eval = np.arange(0.0, duration, DT)
    for c in coherence:
        i1, i2 = P.stimulus_na(float(c))
        sol = solve_ivp(wong_wang_rhs, (0.0, duration), [0.1, 0.1], args=(P, i1, i2), t_eval=t_eval)
        assert sol.success


def naive_numpy(coherence: np.ndarray, duration: float, noise: bool) -> None:
    """Straightforward NumPy: whole-array expressions, fresh temporaries every step."""
    rng = np.random.default_rng(0)
    n = coherence.size
    inp = direct_inputs(coherence)[:, 0, :]
    s1 = np.full(n, 0.1)
    s2 = np.full(n, 0.1)
    x1 = np.zeros(n)
    x2 = np.zeros(n)
    rt = np.full(n, -1.0)
    k = DT / P.tau_ampa_ms
    for step in range(round(duration / DT)):
        y1 = P.a_hz_per_na * (P.j11_na * s1 - P.j12_na * s2 + P.i0_na + inp[:, 0] + x1) - P.b_hz
        y2 = P.a_hz_per_na * (P.j11_na * s2 - P.j12_na * s1 + P.i0_na + inp[:, 1] + x2) - P.b_hz
        h1 = y1 / (1 - np.exp(-P.d_s * y1))
        h2 = y2 / (1 - np.exp(-P.d_s * y2))
        rt[((h1 >= P.threshold_hz) | (h2 >= P.threshold_hz)) & (rt < 0)] = step * DT
        s1 = s1 + DT * (-s1 / P.tau_s_ms + (1 - s1) * P.gamma / 1000 * h1)
        s2 = s2 + DT * (-s2 / P.tau_s_ms + (1 - s2) * P.gamma / 1000 * h2)
        if noise:
            x1 = x1 - k * x1 + P.sigma_noise_na * np.sqrt(k) * rng.standard_normal(n)
            x2 = x2 - k * x2 + P.sigma_noise_na * np.sqrt(k) * rng.standard_normal(n)


def session_inputs(n_trials: int) -> dict:
    """One session of the default task on the rate family's default stage (input gain g = m, 0.45 nA)."""
    task = CuedTaskSwitching(n_trials=n_trials, seed=0)
    table, steps = task.trials(), task.steps(DT)
    fa, fb = table["feature_a"].values / 100, table["feature_b"].values / 100
    stage = SensoryStage(
        transfer=ThresholdLinear(slope_hz_per_na=100.0, threshold_na=0.15),
        modulation=Modulation(mode="input_gain", gain_at_zero=0.0, gain_per_level=1.0),
        tau_ms=100.0,
    )
    return {
        "rci_steps": steps["rci"][None],
        "csi_steps": steps["csi"][None],
        "context": table["context"].values[None],
        "drive_na": (np.stack([1 + fa, 1 - fa, 1 + fb, 1 - fb], 1) * 0.45)[None],
        "max_rt_steps": steps["max_rt"],
        "release": np.array([[1.0, 1.0, 0.1, 0.1], [0.1, 0.1, 1.0, 1.0]]),
        "sensory": stage,
        "dt_ms": DT,
        "seed": 0,
    }


def timed(fn, *args) -> float:
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0


def timed_cpu(fn) -> tuple[float, float]:
    """Wall and CPU (process) seconds of one call; on a shared machine CPU time shows what the run got."""
    w0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w0, time.process_time() - c0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="short smoke run (few repeats)")
    args = ap.parse_args()
    repeats = 3 if args.quick else 7
    duration = 500.0 if args.quick else 2000.0
    sample = 5 if args.quick else 25
    n_cond_1, n_cond_2 = 1000, 10000
    rng = np.random.default_rng(0)
    coh1 = np.linspace(-51.2, 51.2, n_cond_1)
    coh2 = np.linspace(-51.2, 51.2, n_cond_2)
    n_steps = round(duration / DT)
    ok = True

    batched(coh1[:8], 10.0, True)  # compile / load the numba cache outside the timings
    batched(coh1[:8], 10.0, False)
    print(
        f"neuromod.rate benchmark: Wong-Wang 2006, {duration:g} ms at dt = {DT} ms "
        f"({n_steps} steps), {repeats} interleaved repeats"
    )

    # ---- 1. batched vs solve_ivp loop at 1,000 conditions
    t_a, t_b = [], []
    for _ in range(repeats):
        t_a.append(timed(batched, coh1, duration, False))
        pick = rng.choice(n_cond_1, size=sample, replace=False)
        t_b.append(timed(solve_ivp_loop, coh1[pick], duration) * n_cond_1 / sample)
    med_a, med_b = statistics.median(t_a), statistics.median(t_b)
    ratio = med_b / med_a
    ok &= ratio >= 50
    print(f"\n[1] {n_cond_1} conditions, noise off, 1 thread")
    print(f"  batched simulator           median {med_a * 1e3:9.1f} ms")
    print(
        f"  solve_ivp loop (RK45)       median {med_b * 1e3:9.1f} ms  (timed on {sample} random "
        f"conditions per repeat, scaled x{n_cond_1 // sample})"
    )
    print(f"  speed-up {ratio:8.1f}x   target >= 50x   {'PASS' if ratio >= 50 else 'FAIL'}")

    # ---- 2. condition-steps/s at 10,000 conditions, through the public simulate_decision
    work = n_cond_2 * n_steps
    threads = os.cpu_count() or 1
    for noise, target in ((False, 0.3), (True, 0.06)):
        cands = {"simulate_decision (1 thread)": partial(public, coh2, duration, noise)}
        if noise:
            cands["  earlier path: numpy Generator noise"] = partial(public, coh2, duration, noise, True)
        cands[f"simulate_circuit, {threads} threads"] = partial(batched, coh2, duration, noise, threads)
        cands["naive NumPy"] = partial(naive_numpy, coh2, duration, noise)
        walls, cpus = ({name: [] for name in cands} for _ in range(2))
        for _ in range(repeats):  # interleaved: A B C A B C ...
            for name, fn in cands.items():
                wall, cpu = timed_cpu(fn)
                walls[name].append(wall)
                cpus[name].append(cpu)
        rate = {name: work / statistics.median(t) / 1e9 for name, t in walls.items()}
        g_pub, g_naive = rate["simulate_decision (1 thread)"], rate["naive NumPy"]
        print(f"\n[2] {n_cond_2} conditions, float64, noise {'on' if noise else 'off'}, median of {repeats}")
        print(f"  {'':<40} G cond-steps/s: wall (per CPU second)   public call / this (wall)")
        for name, g in rate.items():
            g_cpu = work / statistics.median(cpus[name]) / 1e9
            print(f"  {name:<40} {g:6.3f} ({g_cpu:6.3f})   {g_pub / g:5.2f}x")
        ok &= g_pub >= target
        print(f"  target simulate_decision (1 thread) >= {target} G: {'PASS' if g_pub >= target else 'FAIL'}")
        if not noise:
            print(
                f"  load check: naive NumPy runs at {g_naive:.3f} G here vs ~0.15 G on the idle reference "
                f"machine (x{0.15 / g_naive:.1f}); scaled, simulate_decision ~ {g_pub * 0.15 / g_naive:.2f} G"
            )
    # ---- 3. closed-loop session
    n_trials = 500 if args.quick else 4000
    kw = session_inputs(n_trials)
    simulate_task_session(**{**kw, "max_rt_steps": 10})  # compile / load the cache
    walls, cpus = [], []
    for _ in range(min(repeats, 3)):
        w0, c0 = time.perf_counter(), time.process_time()
        ds = simulate_task_session(**kw)
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    wall, cpu = statistics.median(walls), statistics.median(cpus)
    steps = float(ds["duration_ms"][0]) / DT
    ref_steps = 4000 * 1360.0 / DT
    projected = ref_steps * wall / steps
    ok &= projected <= 5.0
    print(f"\n[3] closed-loop session: {n_trials} trials, noise on, 1 thread")
    print(
        f"  mean RT {np.nanmean(ds['rt'].values):.0f} ms, session {steps * DT / 1000:.0f} s of model "
        f"time = {steps / 1e6:.2f} M steps"
    )
    print(
        f"  wall {wall:.2f} s (CPU {cpu:.2f} s): {n_trials / wall:,.0f} trials/s, "
        f"{steps / wall / 1e6:.2f} M steps/s"
    )
    print(
        f"  reference workload (4000 x 1360 ms = {ref_steps / 1e6:.2f} M steps): {projected:.2f} s wall, "
        f"{ref_steps * cpu / steps:.2f} s CPU   target <= 5 s   {'PASS' if projected <= 5.0 else 'FAIL'}"
    )
    print(f"\noverall: {'PASS' if ok else 'FAIL'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
