"""Benchmark: what brian2's portable compile flags cost against its native ones, interleaved A/B.

``compile_flags="portable"`` (``-O3 -ffp-contract=off -march=x86-64``: the same code, hence the same numbers,
on every x86-64 CPU) against ``"native"`` (brian2's default, ``-O3 -ffast-math -march=native``), on the two
workloads that dominate a spiking run:

A. Spiking task switching, the experiment's calibrated settings (``TaskSwitchingConfig``'s
   ``family_defaults``, as in ``bench_task_switching.py`` A1: sessions of ``session_trials``,
   ``batch_sessions`` per network, one worker process per core), ``--trials`` trials per run, release
   ``[[1, 1, 0.2, 0.2], [0.2, 0.2, 1, 1]]``, tau 400 ms: trials per wall-second.
B. f-I sweep (:func:`neuromod.spiking.fi_sweep`, ``input_gain``, noise on, 8 levels x 50 drives x
   ``--fi-repeats`` repeats, 1 s at 0.1 ms) in this process: neuron-steps per wall-second.

Each part runs portable and native alternately (P N P N ...), ``--repeats`` pairs, after a warm-up that
compiles both flag sets (not timed; a cold cache takes minutes per flag set and per worker); it reports
the medians, the per-pair ratios and their median (portable / native: below 1 is slower), per wall-second
and per CPU-second (this process and its finished worker processes: on a shared machine the wall time
also counts the other users' work, the CPU time much less so). The compile cache is the usual one
(``$NEUROMOD_BRIAN2_CACHE`` or the user cache), one directory per flag set.

Run:  .venv/bin/python benchmarks/bench_portable.py [--quick] [--trials 400] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np

from neuromod.protocols import create_family
from neuromod.protocols.task_switching import TaskSwitchingConfig
from neuromod.spiking import fi_sweep

RELEASE = np.array([[1.0, 1.0, 0.2, 0.2], [0.2, 0.2, 1.0, 1.0]])
FLAGS = ("portable", "native")


def _clocks() -> tuple[float, float]:
    """Wall time and the CPU time of this process and its finished (waited-for) children, s."""
    child = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.perf_counter(), time.process_time() + child.ru_utime + child.ru_stime


def _per_s(amount: float, start: tuple[float, float]) -> tuple[float, float]:
    """`amount` per wall-second and per CPU-second since `start` (:func:`_clocks`)."""
    wall, cpu = (b - a for a, b in zip(start, _clocks(), strict=True))
    return amount / wall, amount / cpu


def _trials_per_s(flags: str, n: int, seed: int, **override) -> tuple[float, float]:
    """Trials per wall- and CPU-second of the spiking family (calibrated defaults) on an `n`-trial table."""
    cfg = TaskSwitchingConfig(models=("spiking",))
    family = create_family("spiking", cfg.family("spiking").replace(compile_flags=flags, **override))
    task = cfg.task(seed=seed, n_trials=n)
    start = _clocks()
    family.run_trials(
        task, release=RELEASE, tau_ms=400.0, decimate_ms=10.0, seed=np.random.SeedSequence(seed)
    )
    return _per_s(n, start)


def _neuron_steps_per_s(
    flags: str, n_repeats: int, seed: int, duration_ms: float = 1000.0
) -> tuple[float, float]:
    """Neuron-steps per wall- and CPU-second of an input_gain f-I sweep with noise (dt 0.1 ms)."""
    levels, drives = np.linspace(0.0, 1.0, 8), np.linspace(0.2, 1.4, 50)
    start = _clocks()
    fi_sweep(
        "input_gain",
        levels,
        drives,
        n_repeats=n_repeats,
        duration_ms=duration_ms,
        transient_ms=min(200.0, duration_ms / 5),
        seed=seed,
        compile_flags=flags,
    )
    return _per_s(levels.size * drives.size * n_repeats * round(duration_ms / 0.1), start)


def _report(name: str, unit: str, rates: dict[str, list[tuple[float, float]]]) -> None:
    print(f"\n{name}, median of {len(rates['portable'])} pairs:")
    for k, clock in enumerate(("wall", "CPU")):
        runs = {f: [r[k] for r in rates[f]] for f in FLAGS}
        ratios = [p / q for p, q in zip(runs["portable"], runs["native"], strict=True)]
        for f in FLAGS:
            listed = ", ".join(f"{x:.4g}" for x in runs[f])
            print(f"  {f:9s}: {statistics.median(runs[f]):10.4g} {unit} per {clock}-s   (runs: {listed})")
        pairs = ", ".join(f"{r:.3f}" for r in ratios)
        ratio = statistics.median(ratios)
        print(f"  portable / native ({clock}): {ratio:.3f} (pairs: {pairs}); cost {100 * (1 - ratio):+.1f} %")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="100 trials, 5 f-I repeats, 2 pairs")
    ap.add_argument("--trials", type=int, default=400)
    ap.add_argument("--fi-repeats", type=int, default=25)
    ap.add_argument("--repeats", type=int, default=5, help="pairs (portable, native) per part")
    ap.add_argument("--skip-task", action="store_true", help="leave out part A")
    ap.add_argument("--skip-fi", action="store_true", help="leave out part B")
    args = ap.parse_args()
    n, fi_reps, pairs = (100, 5, 2) if args.quick else (args.trials, args.fi_repeats, args.repeats)

    print("warming up: compiling both flag sets (this process and every worker's) ...", flush=True)
    for flags in FLAGS:
        t0 = time.perf_counter()
        if not args.skip_fi:
            _neuron_steps_per_s(flags, 1, 0, duration_ms=10.0)
        if not args.skip_task:
            _trials_per_s(flags, 4, 0, session_trials=4, batch_sessions=1)  # in this process
            _trials_per_s(flags, 8 * 2 + 1, 0, session_trials=2)  # several sessions: the workers too
        print(f"  {flags}: {time.perf_counter() - t0:.0f} s", flush=True)

    if not args.skip_task:
        rates: dict[str, list[tuple[float, float]]] = {f: [] for f in FLAGS}
        for k in range(pairs):
            for flags in FLAGS:
                rates[flags].append(_trials_per_s(flags, n, 10 + k))
            shown = "  ".join(f"{f} {rates[f][-1][0]:.2f} ({rates[f][-1][1]:.2f} per CPU-s)" for f in FLAGS)
            print(f"  A pair {k}, trials/s: {shown}", flush=True)
        _report(f"A. spiking task switching, {n} trials", "trials/s", rates)

    if not args.skip_fi:
        rates = {f: [] for f in FLAGS}
        for k in range(pairs):
            for flags in FLAGS:
                rates[flags].append(_neuron_steps_per_s(flags, fi_reps, 10 + k))
        _report(f"B. f-I sweep, {8 * 50 * fi_reps} neurons x 10,000 steps", "neuron-steps/s", rates)


if __name__ == "__main__":
    main()
