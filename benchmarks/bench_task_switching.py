"""Benchmark of the task-switching sessions: trials per wall-second per model; batched spiking sessions
against one session; the compile cache's reuse.

Run:  .venv/bin/python benchmarks/bench_task_switching.py [--quick] [--trials 2000] [--repeats 3]

A. Spiking family, the task-switching experiment's calibrated settings (``TaskSwitchingConfig``'s
   ``family_defaults``: N = 400, dt 0.2 ms, 1080 Hz), its task (12.8 % coherence, CSIs 50-1200 ms, RCI
   100 ms), release ``[[1, 1, 0.2, 0.2], [0.2, 0.2, 1, 1]]``, tau 400 ms, warm compile cache:
   A1 batched: ``--trials`` trials (default 2,000) with the family's defaults (sessions of
      ``session_trials``, ``batch_sessions`` side by side in one network);
   A2 baseline, what the default run did before: one closed-loop session of ``--baseline-trials`` trials
      (default 100; one session's cost per trial does not depend on its length, so a shorter run measures
      the same rate in less time); with ``--baseline-tree DIR``, the family of the package checked out in
      DIR (``git worktree add DIR <commit>``: the code before this work), timed in a subprocess.
   A1 and A2 alternate (A1 A2 A1 A2 ...); medians of trials per wall-second and their ratio. Target: A1 >= 10x
   A2 (the issue's figure: 1.7 trials/s for the default session before).
B. Compile-cache reuse: a fresh cache directory; a first run in a subprocess (cold: compiles), then a second
   run in another subprocess with another seed, tau and release (warm): the number of compiled modules in
   the cache before and after each, and the wall time of each. Target: the second run adds no module.
C. The SE and rate families on the same table (``--trials`` trials), trials per wall-second, for scale.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np

from neuromod.protocols import create_family
from neuromod.protocols.task_switching import TaskSwitchingConfig

RELEASE = np.array([[1.0, 1.0, 0.2, 0.2], [0.2, 0.2, 1.0, 1.0]])


def _family(name: str, **override):
    cfg = TaskSwitchingConfig(models=(name,))
    return create_family(name, cfg.family(name).replace(**override))


def _task(n: int, seed: int):
    return TaskSwitchingConfig().task(seed=seed, n_trials=n)


def _rate(name: str, n: int, seed: int, **override) -> tuple[float, float]:
    """Trials per wall-second of family `name` on an `n`-trial table, and its accuracy (a sanity check)."""
    family = _family(name, **override)
    family.prepare(seed=np.random.SeedSequence(seed))
    task = _task(n, seed)
    t0 = time.perf_counter()
    ds = family.run_trials(
        task, release=RELEASE, tau_ms=400.0, decimate_ms=10.0, seed=np.random.SeedSequence(seed)
    )
    wall = time.perf_counter() - t0
    acc = float(np.mean(ds["choice"].values == task.trials()["correct_choice"].values))
    return n / wall, acc


_CHILD = """
import json, os, sys, time
import numpy as np
sys.path.insert(0, {root!r})
from benchmarks.bench_task_switching import _family, _task
seed, tau, rel = {seed}, {tau}, np.array({release})
family = _family("spiking")
task = _task({n}, seed)
t0 = time.perf_counter()
family.run_trials(task, release=rel, tau_ms=tau, decimate_ms=10.0, seed=np.random.SeedSequence(seed))
print(json.dumps({{"wall": time.perf_counter() - t0}}))
"""


_BASELINE = """
import json, sys, time
import numpy as np
sys.path.insert(0, {tree!r})
from neuromod.protocols import create_family
from neuromod.protocols.task_switching import TaskSwitchingConfig
cfg = TaskSwitchingConfig(models=("spiking",))
family = create_family("spiking", cfg.family("spiking"))
task = cfg.task(seed={seed}, n_trials={n})
t0 = time.perf_counter()
family.run_trials(task, release=np.array({release}), tau_ms=400.0, decimate_ms=10.0,
                  seed=np.random.SeedSequence({seed}))
print(json.dumps({{"rate": {n} / (time.perf_counter() - t0)}}))
"""


def _rate_at(tree: str, n: int, seed: int) -> float:
    """Trials per wall-second of the spiking family of the package checked out at `tree` (its default:
    before this work, one closed-loop session), timed inside a subprocess (start-up excluded)."""
    code = _BASELINE.format(tree=tree, seed=seed, n=n, release=RELEASE.tolist())
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["rate"]


def _modules(cache: Path) -> int:
    return sum(1 for _ in cache.rglob("*.so"))


def _cache_reuse(n: int) -> list[tuple[str, int, int, float]]:
    """(run, modules before, modules after, wall s) of a cold and a warm run in fresh subprocesses."""
    root = str(Path(__file__).resolve().parents[1])
    rows = []
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NEUROMOD_BRIAN2_CACHE": cache, "NEUROMOD_WORKER": "bench"}
        for label, seed, tau, rel in (
            ("cold: seed 1, tau 400, release A", 1, 400.0, RELEASE.tolist()),
            ("warm: seed 2, tau 150, release B", 2, 150.0, RELEASE[::-1].tolist()),
        ):
            before = _modules(Path(cache))
            code = _CHILD.format(root=root, seed=seed, tau=tau, release=rel, n=n)
            out = subprocess.run(
                [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
            )
            wall = json.loads(out.stdout.strip().splitlines()[-1])["wall"]
            rows.append((label, before, _modules(Path(cache)), wall))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="200 trials, 1 repeat, baseline 20 trials")
    ap.add_argument("--trials", type=int, default=2000)
    ap.add_argument("--baseline-trials", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--skip-cache", action="store_true", help="leave out part B (two fresh compiles)")
    ap.add_argument(
        "--baseline-tree",
        help="A2 from the package checked out here (e.g. a git worktree of the commit before the batched "
        "sessions), run in a subprocess, instead of one session of this package",
    )
    args = ap.parse_args()
    n, n_base, reps = (200, 20, 1) if args.quick else (args.trials, args.baseline_trials, args.repeats)

    print("warming up the compile caches (this process and every worker's) ...", flush=True)
    per = _family("spiking").config.session_trials
    _rate("spiking", 4, 0, session_trials=per, batch_sessions=1)  # in this process
    _rate("spiking", 8 * 2 + 1, 0, session_trials=2)  # several sessions: the worker processes too
    if args.baseline_tree:
        _rate_at(args.baseline_tree, 2, 0)  # its own compile, before any timing
    a1, a2, acc = [], [], []
    for k in range(reps):
        r1, c1 = _rate("spiking", n, 10 + k)
        if args.baseline_tree:
            r2 = _rate_at(args.baseline_tree, n_base, 20 + k)
        else:
            r2, _ = _rate("spiking", n_base, 20 + k, session_trials=n_base, batch_sessions=1)
        a1.append(r1)
        a2.append(r2)
        acc.append(c1)
        print(
            f"  rep {k}: A1 batched {r1:6.2f} trials/s (acc {c1:.2f})  A2 one session {r2:5.2f} trials/s",
            flush=True,
        )
    m1, m2 = statistics.median(a1), statistics.median(a2)
    ratios = [x / y for x, y in zip(a1, a2, strict=True)]
    cfg = _family("spiking").config
    print(
        f"\nA. spiking task switching, {n} trials (sessions of {cfg.session_trials}, {cfg.batch_sessions} "
        f"per network) vs one session of {n_base} trials, median of {reps}:"
    )
    print(f"  A1 batched      : {m1:7.2f} trials/s")
    print(f"  A2 one session  : {m2:7.2f} trials/s")
    pairs = ", ".join(f"{r:.1f}" for r in ratios)
    print(f"  ratio A1 / A2   : {statistics.median(ratios):7.1f}x (per pair: {pairs})")
    print(f"  target >= 10x   : {'PASS' if statistics.median(ratios) >= 10.0 else 'FAIL'}")

    if not args.skip_cache:
        print("\nB. compile cache (fresh directory; each run in a new process):", flush=True)
        rows = _cache_reuse(8 if args.quick else 20)
        for label, before, after, wall in rows:
            print(f"  {label:36s} modules {before:3d} -> {after:3d}   {wall:6.1f} s")
        added = rows[1][2] - rows[1][1]
        print(f"  second run compiles nothing: {'PASS' if added == 0 else 'FAIL'} ({added} modules added)")

    print(f"\nC. other families, {n} trials (median of {reps}):")
    for name in ("se", "rate"):
        rates = [_rate(name, n, 30 + k)[0] for k in range(reps)]
        print(f"  {name:8s}: {statistics.median(rates):9.1f} trials/s")


if __name__ == "__main__":
    main()
