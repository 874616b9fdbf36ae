"""Memory estimates of runs, and the check that refuses a run that cannot fit (issue 16, item 10).

* every registered experiment has an estimate from its config alone, whose parts add up, and which grows
  linearly with the run's size (trials, samples, repeats);
* the estimate is within a factor 2 of the peak resident memory measured in a fresh process;
* ``neuromod run task-switching --n-trials 10000000`` (and the Python API) is refused at once, in one line
  that names the estimate and the limit, and writes nothing;
* ``NEUROMOD_MEMORY_LIMIT`` sets the limit, and anything that is not a size is refused, naming it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from neuromod import _memory, registry
from neuromod.cli import app
from neuromod.config import ConfigError
from neuromod.protocols import memory
from neuromod.protocols.memory import ENV_VAR, MemoryEstimate, MemoryLimitError, check_memory, parse_size

GiB = 2**30

#: (experiment, the setting that sizes it, how to set it to n, a size where the sizable parts dominate).
SIZED = [
    ("task-switching", lambda n: {"n_trials": n, "max_trials": {}}, 10**6),
    ("decision", lambda n: {"n_trials": {"rate": n, "spiking": n}}, 10**6),
    ("gain-curves", lambda n: {"n_repeats": n}, 10**6),
    ("sweep-probe", lambda n: {"n": n}, 10**8),
]


@pytest.fixture(autouse=True)
def _no_limit_from_outside(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)


def _config(name: str, changes: dict | None = None):
    exp = registry.get(name)
    return exp.config_cls().override(changes or {})


# ------------------------------------------------------------------------------------------ the estimates
@pytest.mark.parametrize("name", registry.names())
def test_every_experiment_has_an_estimate_whose_parts_add_up(name: str) -> None:
    exp = registry.get(name)
    for config in (exp.config_cls(), exp.quick(exp.config_cls())):
        est = exp.estimate_memory(config)
        assert isinstance(est, MemoryEstimate)
        assert est.total == sum(est.breakdown.values()) > 50 * 2**20  # an interpreter at least
        assert all(size >= 0 for size in est.breakdown.values())
        assert est.advice and str(est).startswith(_memory.format_size(est.total))
        assert memory.estimate(config) == est == memory.estimate(name, config)


@pytest.mark.parametrize(("name", "sized", "n"), SIZED, ids=[s[0] for s in SIZED])
def test_estimate_grows_linearly(name: str, sized, n: int) -> None:
    """est(n) = fixed + a n: the increments from n to 2n and from 2n to 4n are in ratio 2, and est(4n) is
    about 4 est(n) once the sized parts dominate. Tolerance rel=1e-3: every part is rounded up to a whole
    byte (a few bytes in all) and the spiking family's trials to whole sessions of 25 (below 1e-4 at these
    sizes); the rest is exact arithmetic."""
    e1, e2, e4 = (memory.estimate(_config(name, sized(k * n))).total for k in (1, 2, 4))
    assert (e4 - e2) / (e2 - e1) == pytest.approx(2.0, rel=1e-3)
    fixed = e1 - (e2 - e1)  # what does not grow: interpreter, libraries, fixed working memory
    assert 0 <= fixed < 0.1 * e1, f"the fixed part {fixed} is not small against {e1} at n={n}"
    assert e4 / e1 == pytest.approx(4.0, rel=0.1)


def test_task_switching_estimate_counts_what_each_family_records() -> None:
    """Sampling the gain traces 4x less often shrinks the rate family's results about 4x (its traces
    dominate them); limiting a family to fewer trials shrinks its part in proportion."""
    base = _config("task-switching", {"models": ["rate"], "release": "default", "n_trials": 10**6})
    fine, coarse = (memory.estimate(base.replace(decimate_ms=d)).breakdown["rate results"] for d in (20, 80))
    assert fine / coarse == pytest.approx(4.0, rel=0.05)
    full = memory.estimate(_config("task-switching", {"max_trials": {}, "n_trials": 10**6}))
    half = memory.estimate(_config("task-switching", {"max_trials": {"se": 5 * 10**5}, "n_trials": 10**6}))
    assert half.breakdown["se results"] / full.breakdown["se results"] == pytest.approx(0.5, rel=1e-3)


def test_se_model_sizes_are_those_of_the_trained_model() -> None:
    from neuromod.gating.task_model import SETaskModelConfig
    from neuromod.protocols.families.se import _MODEL_SIZES

    cfg = SETaskModelConfig()
    assert _MODEL_SIZES == (cfg.dt_ms, cfg.channels_per_population * cfg.populations, cfg.populations)


@pytest.mark.parametrize("n_trials", [9, 26, 27, 700, 2000, 100_001])
@pytest.mark.parametrize(("batch", "workers"), [(64, 1), (64, 2), (3, 5)])
def test_spiking_estimate_plans_the_sessions_as_the_family_does(n_trials, batch, workers) -> None:
    from neuromod.protocols.families._spiking_blocks import SessionPlan, group_bounds
    from neuromod.protocols.families.spiking import SpikingConfig
    from neuromod.tasks import CuedTaskSwitching

    cfg = SpikingConfig(batch_sessions=batch, workers=workers)
    plan = SessionPlan.of(n_trials, cfg.session_trials)
    bounds = group_bounds(plan.n_sessions, batch, workers)
    est = memory._spiking_sessions(cfg, CuedTaskSwitching(n_trials=n_trials))
    assert est == (plan.n_sessions, max(b - a for a, b in bounds), min(workers, len(bounds)))


# ------------------------------------------------------------------------------------------ against the truth
_MEASURE = """
import json, sys
from neuromod import registry
exp = registry.get(sys.argv[1])
cfg = exp.quick(exp.config_cls()).override(json.loads(sys.argv[2]))
exp.run(cfg, progress=False)
hwm = [int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmHWM:")][0]
print(json.dumps({"peak": hwm, "estimate": exp.estimate_memory(cfg).total}))
"""


def _measure(name: str, changes: dict) -> dict[str, int]:
    """Peak resident memory (VmHWM) of a fresh process that runs the quick config with `changes`, and the
    estimate."""
    out = subprocess.run(
        [sys.executable, "-c", _MEASURE, name, json.dumps(changes)],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="peak RSS is read from /proc")
def test_estimate_is_within_a_factor_2_of_the_measured_peak() -> None:
    """The rate family's task-switching session at 2000 and 30 000 trials (quick settings), in fresh
    processes. The estimate aims at the peak within a factor 2 (tolerance [0.5, 2]): both for what the run
    adds per trial, which depends only on the sizes of the arrays (the same on any 64-bit machine), and for
    the whole peak at 30 000 trials, where the trials' part is more than half of it, so that a machine whose
    interpreter and libraries take twice as much or half as much as measured here still passes."""
    changes = {"models": ["rate"], "release": "default"}
    small = _measure("task-switching", {**changes, "n_trials": 2000})
    large = _measure("task-switching", {**changes, "n_trials": 30000})
    slope = (large["estimate"] - small["estimate"]) / (large["peak"] - small["peak"])
    assert 0.5 <= slope <= 2.0, f"per trial: estimate / measured = {slope:.2f} ({small}, {large})"
    assert 0.5 <= large["estimate"] / large["peak"] <= 2.0, large


# ------------------------------------------------------------------------------------------ the refusal
def test_cli_refuses_ten_million_trials_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEUROMOD_MEMORY_LIMIT", "16GiB")  # the same limit on every machine
    config = _config("task-switching", {"n_trials": 10_000_000})
    estimate = memory.estimate(config).total
    limit, _ = memory.memory_limit()
    assert limit == 16 * 2**30 < estimate
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "ts.nc"
    start = time.perf_counter()
    result = CliRunner().invoke(
        app, ["run", "task-switching", "--n-trials", "10000000", "--out", str(out), "--no-progress"]
    )
    elapsed = time.perf_counter() - start
    assert result.exit_code == 1, result.output
    err = result.stderr.strip()
    assert "\n" not in err and "Traceback" not in err, err
    assert err.startswith(f"neuromod: error: this run needs about {_memory.format_size(estimate)} of memory")
    assert f"more than the limit of {_memory.format_size(limit)}" in err
    assert "--n-trials" in err and "decimate_ms" in err and "neuromod sweep" in err, err
    assert elapsed < 3.0, f"the refusal took {elapsed:.1f} s"
    assert sorted(p.name for p in tmp_path.iterdir()) == [], "something was written"


def test_python_api_refuses_before_any_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """``registry.get(name).run(config)`` refuses before its families are even built or prepared."""
    import neuromod.protocols.task_switching as ts

    def work_started(*args: object, **kwargs: object) -> None:
        raise AssertionError("work started")

    config = _config("task-switching", {"n_trials": 10_000_000})
    monkeypatch.setattr(ts, "prepare_families", work_started)
    monkeypatch.setattr(ts.CuedTaskSwitching, "trials", work_started)  # drawing the trial table
    monkeypatch.setenv(ENV_VAR, "1GiB")
    with pytest.raises(
        MemoryLimitError, match=r"more than the limit of 1\.0 GiB \(set by NEUROMOD_MEMORY_LIMIT\)"
    ):
        registry.get("task-switching").run(config)
    assert issubclass(MemoryLimitError, MemoryError)


@pytest.mark.parametrize(
    ("name", "changes", "says"),
    [
        ("decision", {"n_trials": {"rate": 10**9}}, "--set n_trials.FAMILY=N"),
        ("gain-curves", {"models": ["se"], "n_repeats": 10**8}, "--set n_repeats=N"),
        ("sweep-probe", {"n": 10**11}, "--set n=N"),
    ],
)
def test_every_run_refuses_what_cannot_fit(name: str, changes: dict, says: str) -> None:
    config = _config(name, changes)
    with pytest.raises(MemoryLimitError) as info:
        registry.get(name).run(config)
    text = str(info.value)
    assert "\n" not in text and says in text, text
    assert text.startswith(f"this run needs about {_memory.format_size(memory.estimate(config).total)}")


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"n_trials": -1}, r"n_trials=-1 is outside the valid range \[8, inf\)"),
        ({"n_trials": 2.5}, r"n_trials=2\.5 has the wrong type; expected an integer"),
        ({"n_trials": True}, r"n_trials=True has the wrong type; expected an integer"),
        ({"max_trials": {"rate": 0}}, r"max_trials\.rate=0 is outside the valid range \[8, inf\)"),
    ],
)
def test_sizes_are_validated(changes: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        _config("task-switching", changes)


# ------------------------------------------------------------------------------------------ the limit
@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("8GiB", 8 * GiB),
        ("8 gib", 8 * GiB),
        ("8G", 8 * GiB),
        ("1.5GB", 1_500_000_000),
        ("512MiB", 512 * 2**20),
        ("500MB", 500_000_000),
        ("2k", 2048),
        ("4096", 4096),
        (" 4096 B ", 4096),
    ],
)
def test_parse_size(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "abc", "8 GiBs", "-1GiB", "0", "0GiB", "1e9", "1.5", "8 XB", "GiB"])
def test_parse_size_refuses_what_is_not_a_size(text: str) -> None:
    with pytest.raises(ValueError, match=rf"NEUROMOD_MEMORY_LIMIT={text!r} ") as info:
        parse_size(text)
    assert "\n" not in str(info.value)


def test_env_var_sets_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    probe = _config("sweep-probe", {"n": 10**8})  # 2.3 GiB estimated; checked, never run
    est = memory.estimate(probe)
    monkeypatch.setenv(ENV_VAR, "1GiB")
    assert memory.memory_limit() == (GiB, "set by NEUROMOD_MEMORY_LIMIT")
    with pytest.raises(
        MemoryLimitError, match=r"needs about 2\.3 GiB .* limit of 1\.0 GiB \(set by NEUROMOD"
    ):
        registry.get("sweep-probe").check_memory(probe)
    monkeypatch.setenv(ENV_VAR, "3GiB")
    assert registry.get("sweep-probe").check_memory(probe) == est


def test_env_var_that_is_not_a_size_is_refused_in_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(ENV_VAR, "lots")
    with pytest.raises(
        ValueError, match=r"NEUROMOD_MEMORY_LIMIT='lots' is not a memory size; expected bytes"
    ):
        registry.get("sweep-probe").run(_config("sweep-probe"))
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["run", "sweep-probe", "--no-progress"])
    assert result.exit_code == 1
    err = result.stderr.strip()
    assert (
        err.startswith("neuromod: error: NEUROMOD_MEMORY_LIMIT='lots' is not a memory size")
        and "\n" not in err
    )
    assert list(tmp_path.iterdir()) == []


def test_default_limit_is_a_fraction_of_the_available_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_memory, "available_memory", lambda: 10 * GiB)
    monkeypatch.setattr(_memory, "_own_rss", lambda: 0)
    limit, source = memory.memory_limit()
    assert limit == int(0.8 * 10 * GiB)
    assert source == "80 % of the 10.0 GiB available; NEUROMOD_MEMORY_LIMIT sets it"


def test_available_memory_without_proc_falls_back_to_sysconf(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_memory, "_meminfo", lambda key: None)
    monkeypatch.setattr(_memory, "_cgroup_room", lambda: None)
    if not hasattr(os, "sysconf"):
        pytest.skip("no os.sysconf here")
    room = _memory.available_memory()
    assert room is None or room > 0
    monkeypatch.setattr(_memory.os, "sysconf", lambda key: (_ for _ in ()).throw(ValueError(key)))
    assert _memory.available_memory() is None
    assert memory.memory_limit() == (None, "no limit known")
    est = memory.estimate(_config("sweep-probe"))
    assert check_memory(est) is est  # nothing known: nothing refused
