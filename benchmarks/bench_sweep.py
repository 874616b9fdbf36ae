"""Benchmark of the sweep engine: a sweep on a local Dask cluster against the same sweep run serially, and
the engine's overhead per point.

Run:  .venv/bin/python benchmarks/bench_sweep.py [--quick] [--repeats 3] [--trials 5000] [--probe-points 40]

A. Throughput, CPU-bound points: 8 points of the ``task-switching`` experiment on the rate model alone
   (``models = ["rate"]``, ``release = "default"``, ``n_trials = --trials``; axis ``tau_ms`` of 4 values x
   ``seeds = 2``), each repeat into a fresh store in a temporary folder:
   A1 serial: ``scheduler="serial"`` (no Dask; the points one after the other in this process);
   A2 cluster: a LocalCluster of ``--workers`` (2) processes x 1 thread, started once before the timing and
      warmed up (imports, numba), passed as ``client=``: the time is the ``run`` call, first submit to last
      commit;
   A3 cluster with start-up: ``scheduler="local", n_workers=--workers``: the cluster is started (and shut
      down) inside the ``run`` call, so its start-up and its workers' first imports are timed.
   A1 A2 A3 alternate (A1 A2 A3 A1 A2 A3 ...); medians of the wall time and the speed-ups A1 / A2 and
   A1 / A3. Target: A1 / A2 >= 1.6 (2 workers on a 2-core machine).
B. Overhead per point: ``--probe-points`` (40) no-op points (``sweep-probe``, ``duration_s = 0``):
   B1 serial, B2 on the same warm cluster as A2; wall time of the ``run`` call / points, median over the
   repeats (B1 B2 B1 B2 ...). Target: B2 <= 0.25 s per point.

C. The machine's ceiling, for scale: ``--workers`` jobs one after the other in this process (C1) and at once
   in as many plain processes (C2, a warm process pool; no Dask, no store); C1 / C2 is the most any
   scheduler could gain here (2.0 on two idle, real cores; less where the cores are shared with other work
   or are hyperthreads of one core). Two kinds of job: "loop", a pure-Python busy loop of about 1 s, and
   "experiment", the points' own ``exp.run`` (a task-switching point with ``tau_ms`` of the axis, no
   store). The loop-C1 loop-C2 exp-C1 exp-C2 run at the start of every repeat of A.

Besides the wall times, the table gives each run's compute, the sum of the points' ``wall_s`` as the store
records it (the experiment's ``run`` alone), so the engine's own share shows: serial wall - compute is what
the engine (store, commit) costs outside the experiment; compute / (workers x wall) is how busy the cluster's
workers were with the experiment itself.
"""

from __future__ import annotations

import os

# One core per process, as the cluster's workers get (neuromod._parallel.SINGLE_THREAD_ENV): the serial
# reference must not use a BLAS thread pool the workers do not have. Set before numpy is imported.
os.environ.update(
    {
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "NUMBA_NUM_THREADS": "1",
        "NEUROMOD_CORES": "1",
    }
)
# zarr warns once per fixed-length string variable written (no zarr v3 spec for that dtype yet); keep
# the table readable, here and in the workers (they inherit this environment).
_QUIET = "ignore:The data type"
os.environ["PYTHONWARNINGS"] = ",".join(p for p in (os.environ.get("PYTHONWARNINGS"), _QUIET) if p)

import argparse  # noqa: E402
import contextlib  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

warnings.filterwarnings("ignore", message="The data type")
warnings.filterwarnings("ignore", message="Port .* is already in use")  # a second cluster (A3)

TAUS_MS = [200.0, 300.0, 400.0, 600.0]


def _rate_sweep(n_trials: int, taus: list[float] = TAUS_MS, seeds: int = 2):
    from neuromod.sweep import Sweep

    return Sweep.from_dict(
        {
            "experiment": "task-switching",
            "seed": 0,
            "seeds": seeds,
            "fixed": {"models": ["rate"], "release": "default", "n_trials": n_trials},
            "axes": {"tau_ms": taus},
        }
    )


def _probe_sweep(n_points: int):
    from neuromod.sweep import Sweep

    if n_points % 2:
        raise SystemExit(f"--probe-points {n_points}: expected an even number (2 seeds per value)")
    values = [float(v) for v in range(n_points // 2)]
    return Sweep.from_dict(
        {"experiment": "sweep-probe", "seeds": 2, "fixed": {"duration_s": 0.0}, "axes": {"value": values}}
    )


def _timed(sweep, **how) -> tuple[float, float]:
    """(wall s of the run call, sum of the points' wall_s): one run into a fresh store, then removed."""
    import zarr

    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        out = Path(tmp) / "sweep.zarr"
        t0 = time.perf_counter()
        report = sweep.run(out, progress=False, **how)
        wall = time.perf_counter() - t0
        if not report.complete:
            raise RuntimeError(f"benchmark sweep did not complete: {report}")
        compute = float(np.sum(zarr.open_array(out, path="wall_s", mode="r")[:]))
    return wall, compute


def _spin(n: int) -> float:
    """A pure-Python CPU-bound job of `n` iterations; returns its wall time."""
    t0 = time.perf_counter()
    acc = 0
    for i in range(n):
        acc += i * i
    return time.perf_counter() - t0


def _experiment(n_trials: int, tau_ms: float) -> float:
    """One point's experiment alone (no store, no Dask); returns its wall time."""
    from neuromod import registry

    exp = registry.get("task-switching")
    config = exp.config_cls.from_dict(
        {"models": ["rate"], "release": "default", "n_trials": n_trials, "tau_ms": tau_ms}
    )
    t0 = time.perf_counter()
    exp.run(config, progress=False)
    return time.perf_counter() - t0


def _ceiling(pool, fn, jobs: list[tuple]) -> tuple[float, float]:
    """(wall of the `jobs` of `fn` one after the other here, wall of them all at once in `pool`)."""
    t0 = time.perf_counter()
    for job in jobs:
        fn(*job)
    serial = time.perf_counter() - t0
    t0 = time.perf_counter()
    list(pool.map(fn, *zip(*jobs, strict=True)))
    return serial, time.perf_counter() - t0


def _med(xs: list[float]) -> float:
    return statistics.median(xs)


def _row(label: str, walls: list[float], computes: list[float], per: float = 1.0, unit: str = "s") -> None:
    w, c = _med(walls), _med(computes)
    spread = ", ".join(f"{x / per:.3f}" for x in walls)
    print(f"  {label:34s} {w / per:8.3f} {unit:9s} compute {c / per:7.3f}   (runs: {spread})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1000 trials, 16 probe points, 1 repeat")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--trials", type=int, default=5000, help="n_trials of a task-switching point")
    ap.add_argument("--probe-points", type=int, default=40)
    ap.add_argument("--workers", type=int, default=2, help="workers of the local cluster (1 thread each)")
    ap.add_argument("--skip-startup", action="store_true", help="leave out A3 (a cluster started per run)")
    args = ap.parse_args()
    trials, n_probe, reps = (1000, 16, 1) if args.quick else (args.trials, args.probe_points, args.repeats)
    nw = args.workers

    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from neuromod.sweep._cluster import connect

    rate = _rate_sweep(trials)
    probe = _probe_sweep(n_probe)
    n_rate = rate.spec.n_points

    load0 = os.getloadavg()[0]
    with contextlib.ExitStack() as stack:
        print(f"starting a LocalCluster of {nw} workers x 1 thread; warming up it and this process ...")
        t0 = time.perf_counter()
        client = stack.enter_context(connect("local", n_workers=nw))
        client.wait_for_workers(nw)
        startup = time.perf_counter() - t0
        # imports, numba compilation (or its cache), the store code paths: here and on every worker
        warm = _rate_sweep(200, taus=[float(100 + 50 * k) for k in range(2 * nw)], seeds=1)
        _timed(warm, scheduler="serial")
        _timed(probe, scheduler="serial")
        _timed(warm, client=client)
        _timed(probe, client=client)
        pool = stack.enter_context(ProcessPoolExecutor(nw, mp_context=multiprocessing.get_context("spawn")))
        t0 = time.perf_counter()
        _spin(10**6)
        spin_n = max(10**6, int(10**6 / (time.perf_counter() - t0)))  # about 1 s a job
        list(pool.map(_experiment, [200] * nw, TAUS_MS[:nw]))  # imports and numba in the pool's processes
        loop_jobs = [(spin_n,)] * nw
        exp_jobs = [(trials, tau) for tau in (TAUS_MS * nw)[:nw]]
        print(f"  cluster up in {startup:.2f} s; warm-up done\n", flush=True)

        a1, a2, a3, c_loop, c_exp = [], [], [], [], []
        print(f"A. {n_rate} task-switching points (rate, {trials} trials), {reps} repeats:", flush=True)
        for k in range(reps):
            c_loop.append(_ceiling(pool, _spin, loop_jobs))
            c_exp.append(_ceiling(pool, _experiment, exp_jobs))
            a1.append(_timed(rate, scheduler="serial"))
            a2.append(_timed(rate, client=client))
            if not args.skip_startup:
                a3.append(_timed(rate, scheduler="local", n_workers=nw))
            runs = {"A1": a1[-1], "A2": a2[-1], **({"A3": a3[-1]} if a3 else {})}
            shown = "  ".join(f"{name} {w:6.2f} s" for name, (w, _) in runs.items())
            ceilings = (
                f"loop {c_loop[-1][0] / c_loop[-1][1]:.2f}x, experiment {c_exp[-1][0] / c_exp[-1][1]:.2f}x"
            )
            print(f"  rep {k}: {shown}   (C1 / C2: {ceilings})", flush=True)

        b1, b2 = [], []
        print(f"\nB. {n_probe} no-op sweep-probe points, {reps} repeats:", flush=True)
        for k in range(reps):
            b1.append(_timed(probe, scheduler="serial"))
            b2.append(_timed(probe, client=client))
            print(
                f"  rep {k}: B1 {b1[-1][0] / n_probe:.3f} s/point  B2 {b2[-1][0] / n_probe:.3f} s/point",
                flush=True,
            )

    load1 = os.getloadavg()[0]
    print(
        f"\n{os.cpu_count()} cores; load average (1 min) {load0:.1f} at the start, {load1:.1f} at the end "
        "(other work on the machine takes cores from the parallel runs first)"
    )

    def walls(xs):
        return [w for w, _ in xs]

    def computes(xs):
        return [c for _, c in xs]

    print(f"\nA. throughput: {n_rate} points of task-switching (rate, {trials} trials), median of {reps}")
    print(f"  {'':34s} {'wall':>8s} {'':9s} {'compute':>15s}")
    _row("A1 serial", walls(a1), computes(a1))
    _row(f"A2 cluster {nw}x1, warm (client=)", walls(a2), computes(a2))
    if a3:
        _row(f"A3 cluster {nw}x1, started in run", walls(a3), computes(a3))
    per_point = _med(computes(a1)) / n_rate
    print(f"  one point's compute (serial)       {per_point:8.3f} s")
    outside = (_med(walls(a1)) - _med(computes(a1))) / n_rate
    print(f"  serial cost outside exp.run        {outside:8.3f} s/point")
    busy = [c / (nw * w) for w, c in a2]
    print(f"  A2 workers busy with compute       {_med(busy):8.0%}")
    s2 = [x / y for x, y in zip(walls(a1), walls(a2), strict=True)]
    pairs = ", ".join(f"{r:.2f}" for r in s2)
    print(f"  speed-up A1 / A2 (start-up excl.)  {_med(s2):8.2f}x   (per pair: {pairs})")
    ceil = {}
    for name, runs in (("loop", c_loop), ("experiment", c_exp)):
        ceil[name] = [x / y for x, y in runs]
        pairs = ", ".join(f"{r:.2f}" for r in ceil[name])
        print(f"  C. ceiling C1 / C2, {name:14s} {_med(ceil[name]):8.2f}x   (per repeat: {pairs})")
    eff = [x / y for x, y in zip(s2, ceil["experiment"], strict=True)]
    print(f"  A1 / A2 as a share of exp. ceiling {_med(eff):8.0%}")
    verdict = "PASS" if _med(s2) >= 1.6 else "FAIL"
    limit = _med(ceil["experiment"])
    print(f"  target A1 / A2 >= 1.6x             {verdict:>8s}   (this machine's ceiling: {limit:.2f}x)")
    if a3:
        s3 = [x / y for x, y in zip(walls(a1), walls(a3), strict=True)]
        pairs = ", ".join(f"{r:.2f}" for r in s3)
        print(f"  speed-up A1 / A3 (start-up incl.)  {_med(s3):8.2f}x   (per pair: {pairs})")

    print(f"\nB. overhead per point: {n_probe} no-op sweep-probe points, median of {reps} (per point)")
    _row("B1 serial", walls(b1), computes(b1), per=n_probe, unit="s/point")
    _row(f"B2 cluster {nw}x1, warm (client=)", walls(b2), computes(b2), per=n_probe, unit="s/point")
    r = [y / x for x, y in zip(walls(b1), walls(b2), strict=True)]
    print(f"  ratio B2 / B1                      {_med(r):8.2f}x")
    ok = _med(walls(b2)) / n_probe <= 0.25
    print(f"  target B2 <= 0.25 s/point          {'PASS' if ok else 'FAIL'}")


if __name__ == "__main__":  # a LocalCluster's spawned workers import this module again
    main()
