"""Benchmark of neuromod.spiking: vectorised f-I sweep vs a loop of brian2 runs; standalone reruns.

Run:  .venv/bin/python benchmarks/bench_spiking.py [--quick]

A. ``fi_sweep`` of 8 levels x 50 drives x 250 repeats = 100,000 neurons, 1 s at dt = 0.1 ms (10^9
   neuron-steps), mechanism ``input_gain`` (``--mechanism``), noise on (``--no-noise``) with the default
   generator (``lowbias32``), Cython target with a warm compile cache. A0: the same with the previous
   generator (``noise_generator="splitmix64"``, the hash of the decision network), timed alongside.
B. Baseline: what a user would write, one brian2 run per (level, drive) condition (its 250 repeats
   vectorised inside, i.e. the *conservative* loop); a sample of conditions is timed and scaled to all 400.
C. The same sweep built once with ``cpp_standalone`` (OpenMP, ``--threads``, default all cores) and rerun
   with new levels/drives/seed (run_args).
A, A0, B and C are interleaved (A A0 B C A A0 B C ...) and medians reported. D: wall time of a
100-trial decision run.
Targets: A >= 20x faster than B; A >= 0.5 G neuron-steps/s; C >= 1.0 G neuron-steps/s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")

from neuromod.spiking import (
    DecisionParams,
    StandaloneFISweep,
    fi_sweep,
    simulate_decision,
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats, smaller decision run")
    ap.add_argument("--mechanism", default="input_gain")
    ap.add_argument("--no-noise", action="store_true", help="noise off (deterministic LIF)")
    ap.add_argument(
        "--threads",
        type=int,
        default=os.cpu_count() or 1,
        help="OpenMP threads of the cpp_standalone binary (C); the cython target is serial",
    )
    args = ap.parse_args()
    n_rep_timing = 3 if args.quick else 7
    n_sample = 3 if args.quick else 6
    levels = np.linspace(0.0, 1.0, 8)
    drives = np.linspace(0.2, 1.4, 50)
    n_repeats = 250
    dur = 1000.0
    steps = 100_000 * round(dur / 0.1)
    mech = args.mechanism
    noise = not args.no_noise

    print("warming up (compiles on a cold cache) ...", flush=True)
    fi_sweep(
        mech,
        levels[:1],
        drives[:1],
        n_repeats=n_repeats,
        duration_ms=10.0,
        transient_ms=1.0,
        seed=0,
        noise=noise,
    )
    for gen in ("lowbias32", "splitmix64") if noise else ("lowbias32",):
        fi_sweep(
            mech,
            levels,
            drives,
            n_repeats=n_repeats,
            duration_ms=10.0,
            transient_ms=1.0,
            seed=0,
            noise=noise,
            noise_generator=gen,
        )
    t0 = time.perf_counter()
    standalone = StandaloneFISweep(
        mech, levels, drives, n_repeats=n_repeats, duration_ms=dur, noise=noise, threads=args.threads
    )
    print(f"cpp_standalone build: {time.perf_counter() - t0:.1f} s (one-off)", flush=True)
    standalone.run(seed=0)

    rng = np.random.default_rng(0)
    t_a: list[float] = []
    t_a0: list[float] = []
    t_b: list[float] = []
    t_c: list[float] = []
    for k in range(n_rep_timing):
        t0 = time.perf_counter()
        fi_sweep(mech, levels, drives, n_repeats=n_repeats, duration_ms=dur, seed=k, noise=noise)
        t_a.append(time.perf_counter() - t0)
        if noise:
            t0 = time.perf_counter()
            fi_sweep(
                mech,
                levels,
                drives,
                n_repeats=n_repeats,
                duration_ms=dur,
                seed=k,
                noise=noise,
                noise_generator="splitmix64",
            )
            t_a0.append(time.perf_counter() - t0)
        pick = rng.choice(levels.size * drives.size, n_sample, replace=False)
        t0 = time.perf_counter()
        for c in pick:
            fi_sweep(
                mech,
                [levels[c // drives.size]],
                [drives[c % drives.size]],
                n_repeats=n_repeats,
                duration_ms=dur,
                seed=k,
                noise=noise,
            )
        t_b.append((time.perf_counter() - t0) * (levels.size * drives.size) / n_sample)
        t0 = time.perf_counter()
        standalone.run(levels=rng.uniform(0, 1, levels.size), drives_na=drives + 0.01 * k, seed=k)
        t_c.append(time.perf_counter() - t0)
        a0 = f"  A0 {t_a0[-1]:.2f} s" if noise else ""
        print(f"  rep {k}: A {t_a[-1]:.2f} s{a0}  B {t_b[-1]:.1f} s (scaled)  C {t_c[-1]:.2f} s", flush=True)
    a, b, c = (statistics.median(x) for x in (t_a, t_b, t_c))
    speedup = b / a
    gns_a = steps / a / 1e9
    gns_c = steps / c / 1e9
    print(
        f"\nf-I sweep, mechanism {mech}, 100,000 neurons x 1 s, noise {'on' if noise else 'off'}"
        f" (median of "
        f"{n_rep_timing}):"
    )
    print(f"  A vectorised fi_sweep (cython) : {a:8.2f} s   {gns_a:.3f} G neuron-steps/s")
    if noise:
        a0 = statistics.median(t_a0)
        print(
            f"  A0 same, splitmix64 noise      : {a0:8.2f} s   {steps / a0 / 1e9:.3f} G neuron-steps/s"
            f"   (A {a0 / a:.2f}x faster)"
        )
    print(f"  B loop, 1 run per condition    : {b:8.1f} s   (sample of {n_sample}, scaled to 400)")
    print(f"  C cpp_standalone rerun         : {c:8.2f} s   {gns_c:.3f} G neuron-steps/s")
    results = [
        ("A vs B speed-up >= 20x", speedup, speedup >= 20.0),
        ("A >= 0.5 G neuron-steps/s", gns_a, gns_a >= 0.5),
        ("C >= 1.0 G neuron-steps/s", gns_c, gns_c >= 1.0),
    ]
    for name, value, ok in results:
        print(f"  {name:32s} {value:8.3f}   {'PASS' if ok else 'FAIL'}")

    n_total, dt = (200, 0.2) if args.quick else (400, 0.1)
    t0 = time.perf_counter()
    simulate_decision(
        [0.0, 12.8, 25.6, 51.2], n_trials=25, params=DecisionParams(n_total=n_total), dt_ms=dt, seed=1
    )
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    ds = simulate_decision(
        [0.0, 12.8, 25.6, 51.2], n_trials=25, params=DecisionParams(n_total=n_total), dt_ms=dt, seed=2
    )
    wall = time.perf_counter() - t0
    print(
        f"\ndecision session, 100 trials (4 coherences x 25), N = {n_total}, dt = {dt} ms: "
        f"{wall:.1f} s warm ({first:.1f} s first call); P(correct) "
        f"{np.round(ds.correct.mean('trial').values, 2).tolist()}"
    )


if __name__ == "__main__":
    main()
