"""The bad-input table: every public entry point refuses bad input early, in one short line that names it.

:data:`CASES` is the table (its size: ``len(CASES)``; per area: the id prefix before the first ``-``). Each
case makes one bad call and states the exception type and a regular expression that the message must match
(the parameter, and the value or what was expected). :func:`test_bad_input` then checks, for every case:

* the exception type and the message;
* the message is short: one line (``lines`` for errors that list several problems, e.g. schema errors) of
  at most :data:`MAX_CHARS` characters, the test's temporary folder counted as ``<tmp>``;
* no work started: the call fails within :data:`MAX_SECONDS`, and the expensive steps (building a brian2
  network, running the rate kernel, preparing an experiment's model families) are replaced by sentinels that
  raise :class:`WorkStarted`, which no ``pytest.raises`` of the table catches.

Command-line cases run ``neuromod`` in process (typer's ``CliRunner``): exit code not 0, stderr one line
starting ``neuromod: error:``, and no traceback.

Cases marked ``xfail(strict=True)`` are known gaps in files owned elsewhere; each reason says what happens.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import xarray as xr
from typer.testing import CliRunner

from neuromod import measures, rate, registry, results, spiking
from neuromod.cli import app
from neuromod.config import ConfigError, read_toml
from neuromod.gating import ContextSE
from neuromod.results import ResultsError, SchemaError
from neuromod.tasks import CuedTaskSwitching

for _name in registry.names():  # import every experiment now: the calls below are timed
    registry.get(_name)

#: Longest message accepted (characters per line; the temporary folder counts as "<tmp>").
MAX_CHARS = 300
#: Every bad call fails within this time (s): checks come before any work.
MAX_SECONDS = 1.0


class WorkStarted(BaseException):
    """Raised by the sentinels that stand in for expensive steps (a BaseException: no case catches it)."""


#: The expensive steps replaced by sentinels in every case.
_SENTINELS: tuple[str, ...] = (
    "neuromod.spiking.fi._run_runtime",
    "neuromod.spiking.fi.codegen_context",
    "neuromod.spiking.fi.StandaloneFISweep._build",
    "neuromod.spiking.decision.codegen_context",
    "neuromod.spiking.decision._build_network",
    "neuromod.rate.circuit._simulate",
    "neuromod.rate.circuit._run_session_blocks",
    "neuromod.protocols.decision.prepare_families",
    "neuromod.protocols.gain_curves.prepare_families",
    "neuromod.protocols.task_switching.prepare_families",
    "neuromod.sweep.probe._log_run",
)


@dataclasses.dataclass(frozen=True)
class Case:
    """One bad call and what it must raise."""

    call: Callable[[Path], Any]  #: makes the bad call (gets a fresh folder)
    exc: type[BaseException]
    match: str  #: a regular expression (re.search) that the message must match
    setup: Callable[[Path], Any] | None = None  #: prepares files in the folder (not timed)
    lines: int = 1  #: most lines the message may have


def bad(
    case_id: str,
    call: Callable[[Path], Any],
    exc: type[BaseException],
    match: str,
    *,
    setup: Callable[[Path], Any] | None = None,
    lines: int = 1,
    gap: str | None = None,
) -> Any:
    """A row of the table; `gap` marks a known gap (strict xfail) and says what happens instead."""
    marks = () if gap is None else (pytest.mark.xfail(strict=True, reason=gap),)
    return pytest.param(Case(call, exc, match, setup, lines), id=case_id, marks=marks)


# ------------------------------------------------------------------------------------------------------
# helpers that make the bad calls
# ------------------------------------------------------------------------------------------------------
def _se(**kwargs: Any) -> ContextSE:
    return ContextSE(8, context_dim=2, **kwargs)


def _x(*shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.ones(shape, dtype=dtype)


_K = torch.zeros(3, 2)  # a valid context for a batch of 3


def _circuit(**kwargs: Any) -> Any:
    args = {"duration_ms": 100.0, "onset_ms": [[0.0]], "direct_na": [[[0.03, 0.0]]], **kwargs}
    return rate.simulate_circuit(**args)


def _fi(**kwargs: Any) -> Any:
    args = {"mechanism": "none", "levels": [0.0], "drives_na": [0.3], **kwargs}
    return spiking.fi_sweep(**args)


def _session(features: Any = ((10.0,),), **kwargs: Any) -> Any:
    return spiking.simulate_session(features, **kwargs)


def _task(**kwargs: Any) -> CuedTaskSwitching:
    return CuedTaskSwitching(**{"n_trials": 8, "seed": 1, **kwargs})


def _curve(n: int) -> xr.DataArray:
    drive = np.linspace(0.0, 1.0, n)
    return xr.DataArray(40.0 * np.maximum(drive - 0.3, 0.0), coords={"drive": drive}, dims="drive")


def _config(name: str, data: Any) -> Any:
    return registry.get(name).config_cls.from_dict(data)


def _run(name: str, config: Any, **kwargs: Any) -> Any:
    return registry.get(name).run(config, **kwargs)


def _write(name: str, content: str | bytes) -> Callable[[Path], Path]:
    def setup(tmp: Path) -> Path:
        path = tmp / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        return path

    return setup


def _result() -> xr.Dataset:
    return xr.Dataset(
        {"x": ("t", np.arange(200.0), results.var_attrs("1", "x"))},
        coords={"t": ("t", np.arange(200), results.var_attrs("ms", "time"))},
        attrs=results.provenance({"seed": 0}, title="bad-input fixture"),
    )


def _truncated_nc(tmp: Path) -> None:
    results.save(_result(), tmp / "good.nc")
    data = (tmp / "good.nc").read_bytes()
    (tmp / "trunc.nc").write_bytes(data[: len(data) // 2])


def _netcdf(name: str, attrs: dict[str, Any]) -> Callable[[Path], None]:
    def setup(tmp: Path) -> None:
        xr.Dataset({"a": ("t", [1.0], results.var_attrs("1", "a"))}, attrs=attrs).to_netcdf(tmp / name)

    return setup


def _provenance(**changes: str) -> dict[str, str]:
    return {**results.provenance({"seed": 0}, title="x"), **changes}


class CliFailed(Exception):
    """`neuromod` exited with an error; the message is its stderr."""


_RUNNER = CliRunner()


def _cli(*args: str) -> None:
    """Run ``neuromod ARGS``; raise CliFailed(stderr) for an error exit, re-raise a Python exception."""
    res = _RUNNER.invoke(app, list(args))
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise res.exception  # a traceback, not a one-line error
    assert "Traceback" not in res.output, res.output
    if res.exit_code != 0:
        assert not res.stdout, f"an error printed to stdout: {res.stdout!r}"
        raise CliFailed(res.stderr.rstrip("\n"))


_E = "^neuromod: error: "  # every command-line error starts so

# ------------------------------------------------------------------------------------------------------
# the table
# ------------------------------------------------------------------------------------------------------
GATING = [
    bad("gating-channels-zero", lambda t: ContextSE(0), ValueError, r"channels=0 is outside .*\[1, inf\]"),
    bad(
        "gating-channels-float", lambda t: ContextSE(2.5), TypeError, r"channels must be an integer, got 2\.5"
    ),
    bad("gating-channels-str", lambda t: ContextSE("8"), TypeError, r"channels must be an integer, got '8'"),
    bad("gating-context-dim-negative", lambda t: ContextSE(8, -1), ValueError, r"context_dim=-1 is outside"),
    bad(
        "gating-context-dim-float", lambda t: ContextSE(8, 2.0), TypeError, r"context_dim must be an integer"
    ),
    bad(
        "gating-rd-ratio-zero",
        lambda t: _se(rd_ratio=0),
        ValueError,
        r"rd_ratio=0 must be a finite number > 0",
    ),
    bad(
        "gating-rd-ratio-nan",
        lambda t: _se(rd_ratio=float("nan")),
        ValueError,
        r"rd_ratio=nan must be a finite number > 0",
    ),
    bad("gating-rd-channels-zero", lambda t: _se(rd_channels=0), ValueError, r"rd_channels=0 is outside"),
    bad(
        "gating-squeeze-unknown", lambda t: _se(squeeze="avg"), ValueError, r"squeeze='avg' is not one of \["
    ),
    bad(
        "gating-context-mode-typo",
        lambda t: _se(context_mode="cat"),
        ValueError,
        r"context_mode='cat' is not one of .*did you mean 'concat'",
    ),
    bad(
        "gating-gate-typo",
        lambda t: _se(gate="sigmod"),
        ValueError,
        r"gate='sigmod' .*did you mean 'sigmoid'",
    ),
    bad("gating-gate-not-callable", lambda t: _se(gate=3), TypeError, r"gate must be one of .*got 3"),
    bad(
        "gating-activation-typo", lambda t: _se(activation="rleu"), ValueError, r"activation='rleu' .*'relu'"
    ),
    bad(
        "gating-gain-max-zero",
        lambda t: _se(gain_max=0),
        ValueError,
        r"gain_max=0 must be a finite number > 0",
    ),
    bad(
        "gating-offset-not-bool", lambda t: _se(offset="yes"), TypeError, r"offset must be a bool, got 'yes'"
    ),
    bad(
        "gating-tau-without-dt", lambda t: _se(tau_ms=10.0), ValueError, r"tau_ms=10.0 and dt_ms=None: .*both"
    ),
    bad(
        "gating-tau-without-time-dim",
        lambda t: _se(tau_ms=10.0, dt_ms=1.0),
        ValueError,
        r"tau_ms=10.0 needs time_dim",
    ),
    bad("gating-channel-dim-batch", lambda t: _se(channel_dim=0), ValueError, r"channel_dim=0 is the batch"),
    bad("gating-time-dim-batch", lambda t: _se(time_dim=0), ValueError, r"time_dim=0 is the batch"),
    bad(
        "gating-squeeze-dims-float",
        lambda t: _se(squeeze_dims=(2.0,)),
        TypeError,
        r"squeeze_dims must be an int",
    ),
    bad(
        "gating-x-numpy",
        lambda t: _se()(np.ones((3, 8, 4)), _K),
        TypeError,
        r"x must be a torch\.Tensor, got nd",
    ),
    bad(
        "gating-x-int-dtype",
        lambda t: _se()(_x(3, 8, 4, dtype=torch.int64), _K),
        TypeError,
        r"x must be a floating-point tensor, got dtype torch\.int64",
    ),
    bad(
        "gating-x-dtype-not-weights",
        lambda t: _se()(_x(3, 8, 4, dtype=torch.float16), _K),
        TypeError,
        r"x has dtype torch\.float16 but .* weights have dtype torch\.float32",
    ),
    bad(
        "gating-x-1d", lambda t: _se()(_x(8), _K), ValueError, r"x has shape \(8,\), expected at least 2 dim"
    ),
    bad(
        "gating-x-wrong-channels",
        lambda t: _se()(_x(3, 7, 4), _K),
        ValueError,
        r"x has 7 channels along channel_dim=1 .*expected 8",
    ),
    bad(
        "gating-x-empty-squeeze",
        lambda t: _se()(_x(3, 8, 0), _K),
        ValueError,
        r"x has shape \(3, 8, 0\): the squeezed dim 2 is empty",
    ),
    bad(
        "gating-x-nan",
        lambda t: _se()(torch.full((3, 8, 4), float("nan")), _K),
        ValueError,
        r"x must be finite, got 24 non-finite",
    ),
    bad(
        "gating-channel-dim-out-of-range",
        lambda t: _se(channel_dim=5)(_x(3, 8, 4), _K),
        ValueError,
        r"channel_dim=5 is out of range for x with 3 dimensions",
    ),
    bad(
        "gating-context-missing",
        lambda t: _se()(_x(3, 8, 4)),
        ValueError,
        r"context is required \(context_dim=2\)",
    ),
    bad(
        "gating-context-wrong-size",
        lambda t: _se()(_x(3, 8, 4), torch.zeros(3, 3)),
        ValueError,
        r"context has shape \(3, 3\), expected \(batch, 2\)",
    ),
    bad(
        "gating-context-wrong-batch",
        lambda t: _se()(_x(3, 8, 4), torch.zeros(2, 2)),
        ValueError,
        r"context has shape \(2, 2\), expected \(3, 2\)",
    ),
    bad(
        "gating-context-nan",
        lambda t: _se()(_x(3, 8, 4), torch.full((3, 2), float("nan"))),
        ValueError,
        r"context must be finite, got 6 non-finite",
    ),
    bad(
        "gating-context-int",
        lambda t: _se()(_x(3, 8, 4), torch.zeros(3, 2, dtype=torch.int64)),
        TypeError,
        r"context must be a floating-point tensor",
    ),
    bad(
        "gating-context-list",
        lambda t: _se()(_x(3, 8, 4), [[0.0, 1.0]] * 3),
        TypeError,
        r"context must be a torch\.Tensor, got list",
    ),
    bad(
        "gating-context-to-plain-se",
        lambda t: ContextSE(8)(_x(3, 8, 4), _K),
        ValueError,
        r"context was given \(shape \(3, 2\)\) but this ContextSE has context_dim=0",
    ),
    bad(
        "gating-mask-float",
        lambda t: _se()(_x(3, 8, 4), _K, mask=torch.ones(3, 1, 4)),
        TypeError,
        r"mask must be a bool tensor, got dtype torch\.float32",
    ),
    bad(
        "gating-mask-shape",
        lambda t: _se()(_x(3, 8, 4), _K, mask=torch.ones(3, 1, 5, dtype=torch.bool)),
        ValueError,
        r"mask has shape \(3, 1, 5\), expected \(3, 1, 4\)",
    ),
    bad(
        "gating-state-without-kinetics",
        lambda t: _se()(_x(3, 8, 4), _K, state=torch.zeros(3, 8)),
        ValueError,
        r"state was given but this ContextSE has no kinetics .*expected state=None",
    ),
    bad(
        "gating-index-float",
        lambda t: ContextSE(8)(_x(5, 8), index=torch.zeros(5)),
        TypeError,
        r"index must be an integer tensor, got dtype torch\.float32",
    ),
    bad(
        "gating-index-length",
        lambda t: ContextSE(8)(_x(5, 8), index=torch.zeros(4, dtype=torch.int64)),
        ValueError,
        r"index has shape \(4,\), expected \(5,\)",
    ),
    bad(
        "gating-index-negative",
        lambda t: ContextSE(8)(_x(5, 8), index=torch.full((5,), -1)),
        ValueError,
        r"index must be >= 0, got min -1",
    ),
    bad(
        "gating-excite-shape",
        lambda t: _se().excite(_x(3, 7), _K),
        ValueError,
        r"s has shape \(3, 7\), expected \(batch, 8\)",
    ),
]

RATE = [
    bad(
        "rate-decision-coherence-over-100",
        lambda t: rate.simulate_decision(150.0, n_trials=1),
        ValueError,
        r"coherence_pct=150\.0 is outside the valid range \[-100, 100\]",
    ),
    bad(
        "rate-decision-coherence-nan",
        lambda t: rate.simulate_decision(float("nan"), n_trials=1),
        ValueError,
        r"coherence_pct must be finite, got nan",
    ),
    bad(
        "rate-decision-coherence-2d",
        lambda t: rate.simulate_decision([[0.0]], n_trials=1),
        ValueError,
        r"coherence_pct must have 0 or 1 dimension\(s\), got shape \(1, 1\)",
    ),
    bad(
        "rate-decision-coherence-str",
        lambda t: rate.simulate_decision("high", n_trials=1),
        TypeError,
        r"coherence_pct must be array-like of numbers, got 'high'",
    ),
    bad(
        "rate-decision-coherence-empty",
        lambda t: rate.simulate_decision([], n_trials=1),
        ValueError,
        r"coherence_pct must not be empty",
    ),
    bad(
        "rate-decision-n-trials-zero",
        lambda t: rate.simulate_decision(0.0, n_trials=0),
        ValueError,
        r"n_trials=0 is outside the valid range \[1, inf\]",
    ),
    bad(
        "rate-decision-n-trials-float",
        lambda t: rate.simulate_decision(0.0, n_trials=1.5),
        TypeError,
        r"n_trials must be an integer, got 1\.5",
    ),
    bad(
        "rate-decision-n-trials-bool",
        lambda t: rate.simulate_decision(0.0, n_trials=True),
        TypeError,
        r"n_trials must be an integer, got True",
    ),
    bad(
        "rate-decision-dt-zero",
        lambda t: rate.simulate_decision(0.0, n_trials=1, dt_ms=0),
        ValueError,
        r"dt_ms=0 must be a finite number > 0",
    ),
    bad(
        "rate-decision-dt-too-large",
        lambda t: rate.simulate_decision(0.0, n_trials=1, dt_ms=5.0),
        ValueError,
        r"dt_ms=5\.0 is too large .*expected dt_ms <= ",
    ),
    bad(
        "rate-decision-max-rt-off-grid",
        lambda t: rate.simulate_decision(0.0, n_trials=1, max_rt_ms=100.3),
        ValueError,
        r"max_rt_ms=100\.3 is not a positive multiple of dt_ms=0\.5",
    ),
    bad(
        "rate-decision-max-rt-negative",
        lambda t: rate.simulate_decision(0.0, n_trials=1, max_rt_ms=-1),
        ValueError,
        r"max_rt_ms=-1 must be a finite number > 0",
    ),
    bad(
        "rate-decision-seed-negative",
        lambda t: rate.simulate_decision(0.0, n_trials=1, seed=-1),
        ValueError,
        r"seed=-1 is outside the valid range \[0, inf\]",
    ),
    bad(
        "rate-decision-seed-str",
        lambda t: rate.simulate_decision(0.0, n_trials=1, seed="a"),
        TypeError,
        r"seed must be an integer, got 'a'",
    ),
    bad(
        "rate-decision-seed-float",
        lambda t: rate.simulate_decision(0.0, n_trials=1, seed=1.5),
        TypeError,
        r"seed must be an integer, got 1\.5",
    ),
    bad(
        "rate-decision-s0-above-1",
        lambda t: rate.simulate_decision(0.0, n_trials=1, s0=2.0),
        ValueError,
        r"s0=2\.0 is outside the valid range \[0, 1\]",
    ),
    bad(
        "rate-decision-noise-str",
        lambda t: rate.simulate_decision(0.0, n_trials=1, noise="no"),
        TypeError,
        r"noise must be a bool, got 'no'",
    ),
    bad(
        "rate-decision-record-str",
        lambda t: rate.simulate_decision(0.0, n_trials=1, record="yes"),
        TypeError,
        r"record must be a bool, got 'yes'",
    ),
    bad(
        "rate-decision-params-dict",
        lambda t: rate.simulate_decision(0.0, n_trials=1, params={"gamma": 1.0}),
        TypeError,
        r"params must be a WongWang2006 instance or None, got dict",
    ),
    bad(
        "rate-circuit-onset-1d",
        lambda t: _circuit(onset_ms=[0.0]),
        ValueError,
        r"onset_ms must have 2 dimension\(s\), got shape \(1,\)",
    ),
    bad(
        "rate-circuit-direct-shape",
        lambda t: _circuit(direct_na=[[[0.0, 0.0, 0.0]]]),
        ValueError,
        r"direct_na has shape \(1, 1, 3\), expected \(1, \*, 2\)",
    ),
    bad(
        "rate-circuit-duration-zero",
        lambda t: _circuit(duration_ms=0.0),
        ValueError,
        r"duration_ms=0\.0 must be a finite number > 0",
    ),
    bad(
        "rate-circuit-onset-off-grid",
        lambda t: _circuit(onset_ms=[[0.3]]),
        ValueError,
        r"onset_ms contains 0\.3 ms, which is not on the dt grid",
    ),
    bad(
        "rate-circuit-onset-after-end",
        lambda t: _circuit(onset_ms=[[200.0]]),
        ValueError,
        r"onset_ms contains 200\.0 ms, outside \[0, duration_ms=100\]",
    ),
    bad(
        "rate-circuit-onset-inf",
        lambda t: _circuit(onset_ms=[[np.inf]]),
        ValueError,
        r"onset_ms must be finite",
    ),
    bad(
        "rate-circuit-direct-inf",
        lambda t: _circuit(direct_na=[[[np.inf, 0.0]]]),
        ValueError,
        r"direct_na must be finite, got \[\[\[inf, 0\.0\]\]\]",
    ),
    bad(
        "rate-circuit-m0-nan",
        lambda t: _circuit(m0=float("nan")),
        ValueError,
        r"m0 must be finite, got nan",
    ),
    bad(
        "rate-circuit-dt-str",
        lambda t: _circuit(dt_ms="0.5"),
        TypeError,
        r"dt_ms must be a number, got '0\.5'",
    ),
    bad("rate-circuit-seed-negative", lambda t: _circuit(seed=-2), ValueError, r"seed=-2 is outside"),
    bad(
        "rate-circuit-n-threads-zero", lambda t: _circuit(n_threads=0), ValueError, r"n_threads=0 is outside"
    ),
    bad(
        "rate-circuit-drive-without-sensory",
        lambda t: _circuit(drive_na=[[[0.0] * 4]]),
        ValueError,
        r"drive_na and release need a sensory stage",
    ),
    bad(
        "rate-circuit-sensory-str",
        lambda t: _circuit(sensory="x", drive_na=[[[0.0] * 4]], release=[[[0.0] * 4]]),
        TypeError,
        r"sensory must be a SensoryStage, got str",
    ),
    bad(
        "rate-circuit-record-every-off-grid",
        lambda t: _circuit(record=True, record_every_ms=0.3),
        ValueError,
        r"record_every_ms=0\.3 is not a positive multiple of dt_ms=0\.5",
    ),
    bad(
        "rate-params-negative-tau",
        lambda t: rate.WongWang2006(tau_s_ms=-1.0),
        ValueError,
        r"tau_s_ms=-1\.0 must be a finite number > 0",
    ),
    bad(
        "rate-sensory-weights-shape",
        lambda t: rate.SensoryStage(weights=((1.0, 0.0), (0.0, 1.0))),
        ValueError,
        r"weights has shape \(2, 2\), expected \(2, 4\)",
    ),
]

SPIKING = [
    bad(
        "spiking-fi-mechanism-typo",
        lambda t: _fi(mechanism="inputgain"),
        ValueError,
        r"mechanism='inputgain' is not one of .*did you mean 'input_gain'",
    ),
    bad(
        "spiking-fi-levels-above-1",
        lambda t: _fi(levels=[0.0, 2.0]),
        ValueError,
        r"levels=\[0\.0, 2\.0\] \(e\.g\. 2\) is outside the valid range \[0, 1\]",
    ),
    bad("spiking-fi-levels-empty", lambda t: _fi(levels=[]), ValueError, r"levels must not be empty"),
    bad("spiking-fi-levels-2d", lambda t: _fi(levels=[[0.0]]), ValueError, r"levels must have 1 dimension"),
    bad(
        "spiking-fi-drives-nan",
        lambda t: _fi(drives_na=[np.nan]),
        ValueError,
        r"drives_na must be finite, got \[nan\]",
    ),
    bad("spiking-fi-drives-str", lambda t: _fi(drives_na="abc"), TypeError, r"drives_na must be array-like"),
    bad(
        "spiking-fi-drives-too-large",
        lambda t: _fi(drives_na=[1000.0]),
        ValueError,
        r"drives_na=\[1000\.0\] .*outside the valid range \[-100, 100\]",
    ),
    bad(
        "spiking-fi-duration-zero",
        lambda t: _fi(duration_ms=0),
        ValueError,
        r"duration_ms=0 must be a finite",
    ),
    bad(
        "spiking-fi-duration-negative",
        lambda t: _fi(duration_ms=-5.0),
        ValueError,
        r"duration_ms=-5\.0 must be",
    ),
    bad(
        "spiking-fi-transient-not-shorter",
        lambda t: _fi(duration_ms=100.0, transient_ms=200.0),
        ValueError,
        r"transient_ms=200\.0 must be shorter than duration_ms=100\.0",
    ),
    bad(
        "spiking-fi-dt-too-large",
        lambda t: _fi(dt_ms=1.0),
        ValueError,
        r"dt_ms=1\.0 is too large: expected at most",
    ),
    bad(
        "spiking-fi-dt-nan",
        lambda t: _fi(dt_ms=float("nan")),
        ValueError,
        r"dt_ms=nan must be a finite number",
    ),
    bad("spiking-fi-n-repeats-zero", lambda t: _fi(n_repeats=0), ValueError, r"n_repeats=0 is outside"),
    bad(
        "spiking-fi-seed-negative", lambda t: _fi(seed=-1), ValueError, r"seed=-1 is outside the valid range"
    ),
    bad("spiking-fi-seed-str", lambda t: _fi(seed="x"), TypeError, r"seed must be an integer, got 'x'"),
    bad("spiking-fi-seed-float", lambda t: _fi(seed=1.5), TypeError, r"seed must be an integer, got 1\.5"),
    bad(
        "spiking-fi-target-unknown", lambda t: _fi(target="cuda"), ValueError, r"target='cuda' is not one of"
    ),
    bad(
        "spiking-fi-noise-generator",
        lambda t: _fi(noise_generator="mt"),
        ValueError,
        r"noise_generator='mt' is not one of",
    ),
    bad("spiking-fi-noise-str", lambda t: _fi(noise="yes"), TypeError, r"noise must be a bool, got 'yes'"),
    bad(
        "spiking-fi-params-dict", lambda t: _fi(params={}), TypeError, r"params must be a LIFParams, got dict"
    ),
    bad(
        "spiking-fi-standalone-seed-negative",
        lambda t: _fi(target="cpp_standalone", seed=-1),
        ValueError,
        r"seed=-1 is outside the valid range",
    ),
    bad(
        "spiking-fi-cache-dir-int",
        lambda t: _fi(cache_dir=3),
        TypeError,
        r"cache_dir",
    ),
    bad(
        "spiking-session-features-1d",
        lambda t: spiking.simulate_session([10.0]),
        ValueError,
        r"feature_a_pct must have 2 dimension\(s\), got shape \(1,\)",
    ),
    bad(
        "spiking-session-feature-over-100",
        lambda t: _session([[200.0]]),
        ValueError,
        r"feature_a_pct=\[\[200\.0\]\] .*outside the valid range \[-100, 100\]",
    ),
    bad(
        "spiking-session-empty",
        lambda t: spiking.simulate_session(np.zeros((1, 0))),
        ValueError,
        r"feature_a_pct must not be empty, got shape \(1, 0\)",
    ),
    bad(
        "spiking-session-feature-b-shape",
        lambda t: _session([[10.0]], feature_b_pct=[[1.0, 2.0]]),
        ValueError,
        r"feature_b_pct has shape \(1, 2\), expected \(1, 1\)",
    ),
    bad(
        "spiking-session-release-shape",
        lambda t: _session(release=np.zeros((1, 1, 3))),
        ValueError,
        r"release has shape \(1, 1, 3\), expected \(1, 1, 4\)",
    ),
    bad(
        "spiking-session-release-above-1",
        lambda t: _session(release=np.full((1, 1, 4), 2.0)),
        ValueError,
        r"release=\[\[\[2\.0, 2\.0, 2\.0, 2\.0\]\]\] .*outside the valid range \[0, 1\]",
    ),
    bad(
        "spiking-session-mechanism",
        lambda t: _session(mechanism="gain"),
        ValueError,
        r"mechanism='gain' is not",
    ),
    bad(
        "spiking-session-csi-negative",
        lambda t: _session(csi_ms=-1.0),
        ValueError,
        r"csi_ms=-1\.0 is outside the valid range \[0, inf\)",
    ),
    bad(
        "spiking-session-csi-fraction",
        lambda t: _session(csi_ms=10.5),
        ValueError,
        r"csi_ms=10\.5 must be whole numbers of ms",
    ),
    bad(
        "spiking-session-csi-shape",
        lambda t: _session(csi_ms=[1.0, 2.0]),
        ValueError,
        r"csi_ms has shape \(2,\), expected \(\), \(1,\) or \(1, 1\)",
    ),
    bad(
        "spiking-session-csi-nan",
        lambda t: _session(csi_ms=float("nan")),
        ValueError,
        r"csi_ms must be finite",
    ),
    bad(
        "spiking-session-rci-str", lambda t: _session(rci_ms="long"), TypeError, r"rci_ms must be array-like"
    ),
    bad(
        "spiking-session-max-rt-zero",
        lambda t: _session(max_rt_ms=0),
        ValueError,
        r"max_rt_ms=0 must be a fin",
    ),
    bad(
        "spiking-session-max-rt-fraction",
        lambda t: _session(max_rt_ms=10.5),
        ValueError,
        r"max_rt_ms=10\.5 must be whole numbers of ms",
    ),
    bad(
        "spiking-session-dt-not-divisor",
        lambda t: _session(dt_ms=0.3),
        ValueError,
        r"dt_ms=0\.3 does not divide 1\.0 ms",
    ),
    bad(
        "spiking-session-dt-too-large", lambda t: _session(dt_ms=1.0), ValueError, r"dt_ms=1\.0 is too large"
    ),
    bad("spiking-session-seed-negative", lambda t: _session(seed=-1), ValueError, r"seed=-1 is outside"),
    bad(
        "spiking-session-seed-str",
        lambda t: _session(seed="abc"),
        TypeError,
        r"seed must be an int >= 0, a numpy\.random\.SeedSequence, None or a sequence .*got str",
    ),
    bad(
        "spiking-session-seed-list-length",
        lambda t: _session(seed=[1, 2]),
        ValueError,
        r"seed has 2 entries, expected one per session \(1\)",
    ),
    bad(
        "spiking-session-seed-list-negative",
        lambda t: _session(seed=[-1]),
        ValueError,
        r"seed\[0\]=-1 is outside",
    ),
    bad(
        "spiking-session-target-standalone",
        lambda t: _session(target="cpp_standalone"),
        ValueError,
        r"target='cpp_standalone' is not one of \['cython', 'numpy'\]",
    ),
    bad(
        "spiking-session-target-typo",
        lambda t: _session(target="cyton"),
        ValueError,
        r"target='cyton' .*did you mean 'cython'",
    ),
    bad(
        "spiking-session-record-dt-zero",
        lambda t: _session(record_dt_ms=0),
        ValueError,
        r"record_dt_ms=0 must be",
    ),
    bad(
        "spiking-session-params-str",
        lambda t: _session(params="x"),
        TypeError,
        r"params must be a DecisionParams",
    ),
    bad(
        "spiking-session-lif-int",
        lambda t: _session(lif=3),
        TypeError,
        r"lif must be a LIFParams or None, got int",
    ),
    bad(
        "spiking-session-progress-str",
        lambda t: _session(progress="yes"),
        TypeError,
        r"progress must be a bool",
    ),
    bad(
        "spiking-session-cache-dir-int",
        lambda t: _session(cache_dir=3),
        TypeError,
        r"cache_dir",
    ),
    bad(
        "spiking-decision-n-trials-zero",
        lambda t: spiking.simulate_decision(0.0, n_trials=0),
        ValueError,
        r"n_trials=0 is outside",
    ),
    bad(
        "spiking-decision-coherence-over-100",
        lambda t: spiking.simulate_decision(101.0, n_trials=1),
        ValueError,
        r"coherence_pct=101\.0 is outside the valid range \[-100, 100\]",
    ),
    bad(
        "spiking-decision-settle-fraction",
        lambda t: spiking.simulate_decision(0.0, n_trials=1, settle_ms=0.5),
        ValueError,
        r"settle_ms=0\.5 must be whole numbers of ms",
    ),
    bad(
        "spiking-decision-max-rt-str",
        lambda t: spiking.simulate_decision(0.0, n_trials=1, max_rt_ms="x"),
        TypeError,
        r"max_rt_ms must be a number, got 'x'",
    ),
]

TASKS = [
    bad(
        "tasks-csi-negative",
        lambda t: _task(csi_ms=(-50.0,)),
        ValueError,
        r"csi_ms=\[-50\.0\] \(e\.g\. -50\) is outside the valid range \[0, inf\)",
    ),
    bad("tasks-csi-empty", lambda t: _task(csi_ms=()), ValueError, r"csi_ms must not be empty"),
    bad(
        "tasks-csi-nan", lambda t: _task(csi_ms=(np.nan,)), ValueError, r"csi_ms must be finite, got \[nan\]"
    ),
    bad(
        "tasks-csi-scalar",
        lambda t: _task(csi_ms=100.0),
        ValueError,
        r"csi_ms must have 1 dimension\(s\), got",
    ),
    bad("tasks-csi-2d", lambda t: _task(csi_ms=[[100.0]]), ValueError, r"csi_ms must have 1 dimension\(s\)"),
    bad(
        "tasks-n-trials-zero", lambda t: _task(n_trials=0), ValueError, r"n_trials=0 is outside .*\[1, inf\]"
    ),
    bad("tasks-n-trials-negative", lambda t: _task(n_trials=-1), ValueError, r"n_trials=-1 is outside"),
    bad(
        "tasks-n-trials-float",
        lambda t: _task(n_trials=10.0),
        TypeError,
        r"n_trials must be an integer, got 10",
    ),
    bad(
        "tasks-n-trials-str",
        lambda t: _task(n_trials="10"),
        TypeError,
        r"n_trials must be an integer, got '10'",
    ),
    bad(
        "tasks-p-switch-above-1",
        lambda t: _task(p_switch=1.5),
        ValueError,
        r"p_switch=1\.5 is outside .*\[0, 1\]",
    ),
    bad(
        "tasks-p-switch-nan",
        lambda t: _task(p_switch=np.nan),
        ValueError,
        r"p_switch must be finite, got nan",
    ),
    bad(
        "tasks-p-switch-str",
        lambda t: _task(p_switch="half"),
        TypeError,
        r"p_switch must be numeric, got 'half'",
    ),
    bad(
        "tasks-p-congruent-negative",
        lambda t: _task(p_congruent=-0.1),
        ValueError,
        r"p_congruent=-0\.1 is outs",
    ),
    bad("tasks-seed-negative", lambda t: _task(seed=-1), ValueError, r"seed=-1 is outside the valid range"),
    bad("tasks-seed-float", lambda t: _task(seed=1.5), TypeError, r"seed must be an integer, got 1\.5"),
    bad("tasks-seed-str", lambda t: _task(seed="a"), TypeError, r"seed must be an integer, got 'a'"),
    bad(
        "tasks-coherence-zero",
        lambda t: _task(coherences_pct=(0.0,)),
        ValueError,
        r"coherences_pct=\(0\.0,\) must hold one value or more, each > 0",
    ),
    bad(
        "tasks-coherence-over-100",
        lambda t: _task(coherences_pct=(150.0,)),
        ValueError,
        r"coherences_pct=\[150\.0\] .*outside the valid range \[0, 100\]",
    ),
    bad(
        "tasks-rci-negative",
        lambda t: _task(rci_ms=-1.0),
        ValueError,
        r"rci_ms=-1\.0 must be a finite number >= 0",
    ),
    bad(
        "tasks-rci-and-csi-zero",
        lambda t: _task(rci_ms=0.0, csi_ms=(0.0,)),
        ValueError,
        r"rci_ms=0 with a CSI of 0 in csi_ms=\(0\.0,\)",
    ),
    bad(
        "tasks-max-rt-zero",
        lambda t: _task(max_rt_ms=0.0),
        ValueError,
        r"max_rt_ms=0\.0 must be a finite number",
    ),
    bad(
        "tasks-cues-per-task-3",
        lambda t: _task(cues_per_task=3),
        ValueError,
        r"cues_per_task=3 is outside .*2\]",
    ),
    bad(
        "tasks-steps-dt-zero",
        lambda t: _task().steps(0.0),
        ValueError,
        r"dt_ms=0\.0 must be a finite number > 0",
    ),
    bad(
        "tasks-steps-dt-above-deadline",
        lambda t: _task().steps(5000.0),
        ValueError,
        r"dt_ms=5000\.0 is longer than max_rt_ms=2000\.0",
    ),
    bad(
        "tasks-inputs-dt-above-deadline",
        lambda t: _task().inputs(dt_ms=1e6),
        ValueError,
        r"dt_ms=1000000\.0 is longer than max_rt_ms=2000\.0",
    ),
    bad(
        "tasks-inputs-dt-str",
        lambda t: _task().inputs(dt_ms="1"),
        TypeError,
        r"dt_ms must be a number, got '1'",
    ),
    bad(
        "tasks-timeline-wrong-length",
        lambda t: _task().timeline(np.zeros(3)),
        ValueError,
        r"rt_ms has shape \(3,\), expected \(8,\)",
    ),
    bad(
        "tasks-timeline-negative",
        lambda t: _task().timeline(np.full(8, -1.0)),
        ValueError,
        r"rt_ms holds \[-1\.0, -1\.0, -1\.0\]; expected RTs in \[0, max_rt_ms=2000\.0\] or NaN",
    ),
    bad(
        "tasks-timeline-str",
        lambda t: _task().timeline(["a"] * 8),
        TypeError,
        r"rt_ms must be array-like of numbers, got \['a', 'a'",
    ),
    bad(
        "tasks-rsi-trial-out-of-range",
        lambda t: _task().rsi_ms(20),
        ValueError,
        r"trial=20 is outside the valid range \[0, 7\]",
    ),
]

MEASURES = [
    bad(
        "measures-wilson-level",
        lambda t: measures.wilson_interval(5, 10, level=1.5),
        ValueError,
        r"level=1\.5 is outside the valid range \(0, 1\)",
    ),
    bad(
        "measures-wilson-negative-count",
        lambda t: measures.wilson_interval(-5, 10),
        ValueError,
        r"successes=-5\.0 is outside the valid range \[0, inf\)",
    ),
    bad(
        "measures-wilson-more-successes-than-trials",
        lambda t: measures.wilson_interval([5, 15], [10, 10]),
        ValueError,
        r"successes=15 exceeds n=10; expected successes <= n",
    ),
    bad(
        "measures-wilson-str",
        lambda t: measures.wilson_interval("a", 10),
        TypeError,
        r"successes must be array-like of numbers, got 'a'",
    ),
    bad(
        "measures-mean-interval-dim",
        lambda t: measures.mean_interval(_curve(6), "trial"),
        ValueError,
        r"dim='trial' is not a dimension of da; dimensions are \['drive'\]",
    ),
    bad(
        "measures-psychometric-no-choice",
        lambda t: measures.psychometric(xr.Dataset({"rt": ("trial", [1.0])})),
        ValueError,
        r"ds has no variable 'choice'",
    ),
    bad(
        "measures-psychometric-numpy",
        lambda t: measures.psychometric(np.zeros(3)),
        TypeError,
        r"ds must be an xarray Dataset, got ndarray",
    ),
    bad(
        "measures-fit-gain-curve-form",
        lambda t: measures.fit_gain_curve(_curve(6), form="linear"),
        ValueError,
        r"form='linear' is not one of \['threshold_linear'",
    ),
    bad(
        "measures-fit-gain-curve-dim",
        lambda t: measures.fit_gain_curve(_curve(6).rename(drive="x")),
        ValueError,
        r"dim='drive' is not a dimension of the data; dimensions are \['x'\]",
    ),
    bad(
        "measures-fit-gain-curve-empty",
        lambda t: measures.fit_gain_curve(_curve(0)),
        ValueError,
        r"threshold_linear has 2 parameters; it needs more than 2 values along 'drive', got 0",
    ),
    bad(
        "measures-fit-gain-curve-numpy",
        lambda t: measures.fit_gain_curve(np.arange(6.0)),
        TypeError,
        r"da must be an xarray DataArray with a 'drive' coordinate, got ndarray",
    ),
    bad(
        "measures-gain-curve-missing-param",
        lambda t: measures.gain_curve([0.0], {"gain": 1.0}),
        ValueError,
        r"params lacks \['threshold'\] of the threshold_linear form",
    ),
    bad(
        "measures-prep-regressor-tau",
        lambda t: measures.prep_regressor([0.0], -1.0),
        ValueError,
        r"tau_ms=-1\.0 must be a finite number >= 0",
    ),
    bad(
        "measures-prep-regressor-negative-csi",
        lambda t: measures.prep_regressor([-10.0], 100.0),
        ValueError,
        r"csi_ms holds -10; expected intervals >= 0",
    ),
    bad(
        "measures-trial-data-list",
        lambda t: measures.trial_data([1, 2]),
        TypeError,
        r"data must be an xarray Dataset or DataTree, got list",
    ),
    bad(
        "measures-switch-cost-empty",
        lambda t: measures.switch_cost(xr.Dataset()),
        ValueError,
        r"data lacks the variable\(s\) \['choice', 'correct', 'rt'",
    ),
    bad(
        "measures-switching-behaviour-by-str",
        lambda t: measures.switching_behaviour(xr.Dataset(), by="csi_ms"),
        TypeError,
        r"by must be a sequence of trial-variable names, got 'csi_ms'",
    ),
]

_TS, _DEC, _GC, _PROBE = "task-switching", "decision", "gain-curves", "sweep-probe"

CONFIGS = [
    bad(
        "config-toml-syntax",
        lambda t: read_toml(t / "a.toml"),
        ConfigError,
        r"<tmp>/a\.toml: invalid TOML: .*line 1",
        setup=_write("a.toml", "seed = \n"),
    ),
    bad(
        "config-toml-missing",
        lambda t: read_toml(t / "no.toml"),
        FileNotFoundError,
        r"no such config file: '.*no",
    ),
    bad(
        "config-toml-not-utf8",
        lambda t: read_toml(t / "b.toml"),
        ConfigError,
        r"b\.toml.*UTF-8",
        setup=_write("b.toml", b"\xff\xfe = 1\n"),
    ),
    bad(
        "config-from-toml-seed-negative",
        lambda t: registry.get(_DEC).config_cls.from_toml(t / "c.toml"),
        ConfigError,
        r"<tmp>/c\.toml: seed=-2 is outside the valid range \[0, inf\)",
        setup=_write("c.toml", "seed = -2\n"),
    ),
    bad(
        "config-from-toml-nan",
        lambda t: registry.get(_TS).config_cls.from_toml(t / "d.toml"),
        ConfigError,
        r"d\.toml: tau_ms=nan must be a finite number",
        setup=_write("d.toml", "tau_ms = nan\n"),
    ),
    bad(
        "config-from-toml-table-key",
        lambda t: registry.get(_TS).config_cls.from_toml(t / "g.toml"),
        ConfigError,
        r"g\.toml: unknown key 'gain\.n_drive' \(did you mean 'n_drives'",
        setup=_write("g.toml", "[gain]\nn_drive = 3\n"),
    ),
    bad(
        "config-from-toml-wrong-type",
        lambda t: registry.get(_GC).config_cls.from_toml(t / "h.toml"),
        ConfigError,
        r"h\.toml: models='rate' has the wrong type; expected a list of str",
        setup=_write("h.toml", 'models = "rate"\n'),
    ),
    bad(
        "config-toml-directory",
        lambda t: read_toml(t),
        IsADirectoryError,
        r"the config file '<tmp>' is a folder; expected a TOML file",
    ),
    bad(
        "config-override-unknown-key",
        lambda t: registry.get(_DEC).config_cls().override({"sed": 1}),
        ConfigError,
        r"unknown key 'sed' \(did you mean 'seed'",
    ),
    bad(
        "config-override-into-a-setting",
        lambda t: registry.get(_DEC).config_cls().override({"seed.x": 1}),
        ConfigError,
        r"'seed' is a single setting, not a table; cannot set 'seed\.x'",
    ),
    bad(
        "config-replace-seed-negative",
        lambda t: registry.get(_DEC).config_cls().replace(seed=-1),
        ConfigError,
        r"seed=-1 is outside the valid range",
    ),
]
for _exp in (_DEC, _GC, _TS, _PROBE):
    CONFIGS += [
        bad(
            f"config-{_exp}-unknown-key",
            lambda t, e=_exp: _config(e, {"sed": 1}),
            ConfigError,
            r"unknown key 'sed' \(did you mean 'seed'",
        ),
        bad(
            f"config-{_exp}-seed-negative",
            lambda t, e=_exp: _config(e, {"seed": -1}),
            ConfigError,
            r"seed=-1 is out",
        ),
        bad(
            f"config-{_exp}-seed-str",
            lambda t, e=_exp: _config(e, {"seed": "1"}),
            ConfigError,
            r"seed='1' has the wrong type; expected an integer",
        ),
        bad(
            f"config-{_exp}-seed-bool",
            lambda t, e=_exp: _config(e, {"seed": True}),
            ConfigError,
            r"seed=True has the wrong type; expected an integer",
        ),
        bad(
            f"config-{_exp}-not-a-table",
            lambda t, e=_exp: _config(e, [1, 2]),
            ConfigError,
            r"Config must be a table, got \[1, 2\]",
        ),
        bad(
            f"config-{_exp}-experiment-mismatch",
            lambda t, e=_exp: _config(e, {"experiment": _DEC if e != _DEC else _GC}),
            ConfigError,
            r"experiment='[a-z-]+': this is the '[a-z-]+' experiment's config",
        ),
    ]
for _exp in (_DEC, _GC, _TS):
    CONFIGS += [
        bad(
            f"config-{_exp}-unknown-model-family",
            lambda t, e=_exp: _config(e, {"models": ["rat"]}),
            ConfigError,
            r"models contains 'rat' \(did you mean 'rate'\?\); known model families",
        ),
        bad(
            f"config-{_exp}-models-str",
            lambda t, e=_exp: _config(e, {"models": "rate"}),
            ConfigError,
            r"models='rate' has the wrong type; expected a list of str",
        ),
        bad(
            f"config-{_exp}-models-empty",
            lambda t, e=_exp: _config(e, {"models": []}),
            ConfigError,
            r"models=\[\] must name one model family at least",
        ),
        bad(
            f"config-{_exp}-family-table-key",
            lambda t, e=_exp: _config(e, {"rate": {"tua_ms": 3}}),
            ConfigError,
            r"unknown key 'rate\.tua_ms'",
        ),
        bad(
            f"config-{_exp}-family-table-not-table",
            lambda t, e=_exp: _config(e, {"rate": 3}),
            ConfigError,
            r"rate=3 has the wrong type; expected a table \(RateConfig\)",
        ),
    ]
CONFIGS += [
    bad(
        "config-ts-models-twice",
        lambda t: _config(_TS, {"models": ["rate", "rate"]}),
        ConfigError,
        r"models=\['rate', 'rate'\] must name one model family at least, each once",
    ),
    bad(
        "config-ts-csi-negative",
        lambda t: _config(_TS, {"csi_ms": [-1.0, 100.0]}),
        ConfigError,
        r"csi_ms=\(-1\.0, 100\.0\) \(element -1\.0\) is outside the valid range \[0, inf\)",
    ),
    bad(
        "config-ts-csi-empty",
        lambda t: _config(_TS, {"csi_ms": []}),
        ConfigError,
        r"csi_ms=\(\) must hold at least",
    ),
    bad(
        "config-ts-csi-str",
        lambda t: _config(_TS, {"csi_ms": "100"}),
        ConfigError,
        r"csi_ms='100' has the wrong type; expected a list of float",
    ),
    bad(
        "config-ts-csi-nan",
        lambda t: _config(_TS, {"csi_ms": [float("nan")]}),
        ConfigError,
        r"csi_ms\[0\]=nan must",
    ),
    bad(
        "config-ts-csi-nested",
        lambda t: _config(_TS, {"csi_ms": [[1.0]]}),
        ConfigError,
        r"csi_ms\[0\]=\[1\.0\] has the wrong type; expected a number",
    ),
    bad(
        "config-ts-tau-inf",
        lambda t: _config(_TS, {"tau_ms": float("inf")}),
        ConfigError,
        r"tau_ms=inf must be a fi",
    ),
    bad(
        "config-ts-tau-zero",
        lambda t: _config(_TS, {"tau_ms": 0}),
        ConfigError,
        r"tau_ms=0\.0 is outside .*\(0, inf\)",
    ),
    bad(
        "config-ts-p-switch",
        lambda t: _config(_TS, {"p_switch": 2.0}),
        ConfigError,
        r"p_switch=2\.0 is outside",
    ),
    bad(
        "config-ts-n-trials-low",
        lambda t: _config(_TS, {"n_trials": 0}),
        ConfigError,
        r"n_trials=0 is outside .*\[8",
    ),
    bad(
        "config-ts-n-trials-float",
        lambda t: _config(_TS, {"n_trials": 10.0}),
        ConfigError,
        r"n_trials=10\.0 has the wrong type; expected an integer",
    ),
    bad(
        "config-ts-match-gain-int",
        lambda t: _config(_TS, {"match_gain": 1}),
        ConfigError,
        r"match_gain=1 has the wrong type; expected true or false",
    ),
    bad(
        "config-ts-release",
        lambda t: _config(_TS, {"release": "rate"}),
        ConfigError,
        r"release='rate' must be 'default' or a family that provides a release pattern",
    ),
    bad(
        "config-ts-max-trials-family",
        lambda t: _config(_TS, {"max_trials": {"spikng": 10}}),
        ConfigError,
        r"max_trials names \['spikng'\], which are not model families",
    ),
    bad(
        "config-ts-max-trials-low",
        lambda t: _config(_TS, {"max_trials": {"spiking": 1}}),
        ConfigError,
        r"max_trials\.spiking=1 is outside the valid range \[8, inf\)",
    ),
    bad(
        "config-ts-gain-table-key",
        lambda t: _config(_TS, {"gain": {"n_drive": 3}}),
        ConfigError,
        r"unknown key 'gain\.n_drive' \(did you mean 'n_drives'",
    ),
    bad(
        "config-ts-gain-n-drives",
        lambda t: _config(_TS, {"gain": {"n_drives": 3}}),
        ConfigError,
        r"gain\.n_drives=3 is outside the valid range \[5, inf\)",
    ),
    bad(
        "config-ts-rci-and-csi-zero",
        lambda t: _config(_TS, {"rci_ms": 0.0, "csi_ms": [0.0]}),
        ConfigError,
        r"rci_ms=0 with a CSI of 0",
    ),
    bad(
        "config-ts-coherence-zero",
        lambda t: _config(_TS, {"coherences_pct": [0.0]}),
        ConfigError,
        r"coherences_pct=\(0\.0,\) \(element 0\.0\) is outside the valid range \(0, 100\]",
    ),
    bad(
        "config-ts-cues-3",
        lambda t: _config(_TS, {"cues_per_task": 3}),
        ConfigError,
        r"cues_per_task=3 is outside",
    ),
    bad(
        "config-ts-max-rt-off-grid",
        lambda t: _config(_TS, {"max_rt_ms": 0.1}),
        ConfigError,
        r"max_rt_ms=0\.1 must be whole numbers of ms",
    ),
    bad(
        "config-decision-coherence",
        lambda t: _config(_DEC, {"coherences_pct": [150.0]}),
        ConfigError,
        r"coherences_pct=\(150\.0,\) \(element 150\.0\) is outside the valid range \[0, 100\]",
    ),
    bad(
        "config-decision-coherence-empty",
        lambda t: _config(_DEC, {"coherences_pct": []}),
        ConfigError,
        r"coherences_pct=\(\) must list at least one coherence",
    ),
    bad(
        "config-decision-n-trials-not-table",
        lambda t: _config(_DEC, {"n_trials": 5}),
        ConfigError,
        r"n_trials=5 has the wrong type; expected a table of int",
    ),
    bad(
        "config-decision-n-trials-zero",
        lambda t: _config(_DEC, {"n_trials": {"rate": 0}}),
        ConfigError,
        r"n_trials\.rate=0 is outside the valid range \[1, inf\)",
    ),
    bad(
        "config-decision-n-trials-unknown-family",
        lambda t: _config(_DEC, {"n_trials": {"rat": 10}}),
        ConfigError,
        r"n_trials.*'rat'",
    ),
    bad(
        "config-decision-max-rt-zero",
        lambda t: _config(_DEC, {"max_rt_ms": 0}),
        ConfigError,
        r"max_rt_ms=0\.0 is o",
    ),
    bad(
        "config-gain-curves-levels-no-reference",
        lambda t: _config(_GC, {"levels": [0.5]}),
        ConfigError,
        r"levels=\(0\.5,\) must include the reference 0\.0",
    ),
    bad(
        "config-gain-curves-levels-range",
        lambda t: _config(_GC, {"levels": [0.0, 2.0]}),
        ConfigError,
        r"levels=\(0\.0, 2\.0\) \(element 2\.0\) is outside the valid range \[0, 1\]",
    ),
    bad(
        "config-gain-curves-drive-order",
        lambda t: _config(_GC, {"drive_min": 3.0}),
        ConfigError,
        r"drive_max=2\.0 must exceed drive_min=3\.0",
    ),
    bad(
        "config-gain-curves-n-drives",
        lambda t: _config(_GC, {"n_drives": 2}),
        ConfigError,
        r"n_drives=2 is outside",
    ),
    bad(
        "config-gain-curves-variants-family",
        lambda t: _config(_GC, {"variants": {"rat": ["x"]}}),
        ConfigError,
        r"variants\.rat: unknown model family 'rat' \(did you mean 'rate'\?\)",
    ),
    bad(
        "config-gain-curves-variants-name",
        lambda t: _config(_GC, {"variants": {"rate": ["x"]}}),
        ConfigError,
        r"variants\.rate=\['x'\]: expected a non-empty list of distinct names",
    ),
    bad(
        "config-gain-curves-form",
        lambda t: _config(_GC, {"form": "linear"}),
        ConfigError,
        r"form='linear' is not one of \['threshold_linear'",
    ),
]

EXPERIMENTS = [
    bad(
        "experiment-unknown-name",
        lambda t: registry.get("decison"),
        KeyError,
        r"unknown experiment 'decison' \(did you mean 'decision'\?\)",
    ),
]
for _exp, _cls in ((_DEC, "DecisionConfig"), (_GC, "GainCurvesConfig"), (_TS, "TaskSwitchingConfig")):
    EXPERIMENTS += [
        bad(
            f"experiment-{_exp}-run-dict",
            lambda t, e=_exp: _run(e, {"seed": 1}),
            TypeError,
            rf"config must be a {_cls}, got dict",
        ),
        bad(
            f"experiment-{_exp}-run-other-config",
            lambda t, e=_exp: _run(e, registry.get(_PROBE).config_cls()),
            TypeError,
            rf"config must be a {_cls}, got ProbeConfig",
        ),
    ]
EXPERIMENTS += [
    bad(
        "experiment-sweep-probe-run-dict",
        lambda t: _run(_PROBE, {"seed": 1}),
        TypeError,
        r"config must be a ProbeConfig, got dict",
    ),
    bad(
        "experiment-task-switching-progress-str",
        lambda t: _run(_TS, _config(_TS, {"models": ["rate"]}), progress="yes"),
        TypeError,
        r"progress must be a bool, got 'yes'",
    ),
    bad(
        "experiment-decision-progress-str",
        lambda t: _run(_DEC, _config(_DEC, {"models": ["rate"]}), progress="yes"),
        TypeError,
        r"progress must be a bool, got 'yes'",
    ),
    bad(
        "experiment-gain-curves-progress-str",
        lambda t: _run(_GC, _config(_GC, {"models": ["rate"]}), progress="yes"),
        TypeError,
        r"progress must be a bool, got 'yes'",
    ),
]

RESULTS = [
    bad(
        "results-text-file",
        lambda t: results.load(t / "text.nc"),
        ResultsError,
        r"'<tmp>/text\.nc' is not a readable netcdf file \(corrupt, truncated or another format\)",
        setup=_write("text.nc", "hello\n"),
    ),
    bad(
        "results-empty-file",
        lambda t: results.load(t / "empty.nc"),
        ResultsError,
        r"'<tmp>/empty\.nc' is not a readable netcdf file",
        setup=_write("empty.nc", b""),
    ),
    bad(
        "results-truncated-nc",
        lambda t: results.load(t / "trunc.nc"),
        ResultsError,
        r"'<tmp>/trunc\.nc' is not a readable netcdf file",
        setup=_truncated_nc,
    ),
    bad(
        "results-wrong-suffix",
        lambda t: results.load(t / "good.txt"),
        ValueError,
        r"path='<tmp>/good\.txt' has suffix '\.txt'; expected one of \['\.nc', '\.zarr'\]",
    ),
    bad(
        "results-no-suffix",
        lambda t: results.load(t / "good"),
        ValueError,
        r"path='<tmp>/good' has suffix ''; expected one of",
    ),
    bad(
        "results-directory-named-nc",
        lambda t: results.load(t / "x.nc"),
        ResultsError,
        r"'<tmp>/x\.nc' is not a readable netcdf file",
        setup=lambda t: (t / "x.nc").mkdir(),
    ),
    bad(
        "results-empty-zarr-directory",
        lambda t: results.load(t / "y.zarr"),
        ResultsError,
        r"'<tmp>/y\.zarr' is not a readable zarr file",
        setup=lambda t: (t / "y.zarr").mkdir(),
    ),
    bad(
        "results-netcdf-without-attributes",
        lambda t: results.load(t / "plain.nc"),
        ResultsError,
        r"'<tmp>/plain\.nc' lacks the global attribute\(s\) \['Conventions', .*is it a neuromod result\?",
        setup=_netcdf("plain.nc", {}),
    ),
    bad(
        "results-schema-version",
        lambda t: results.load(t / "v2.nc"),
        ResultsError,
        r"'<tmp>/v2\.nc' has schema_version '2\.0'; this neuromod reads 1\.x",
        setup=_netcdf("v2.nc", _provenance(schema_version="2.0")),
    ),
    bad(
        "results-config-json-invalid",
        lambda t: results.load(t / "j.nc"),
        ResultsError,
        r"'<tmp>/j\.nc' has a config_json that is not valid JSON",
        setup=_netcdf("j.nc", _provenance(config_json="{bad")),
    ),
    bad(
        "results-config-json-not-object",
        lambda t: results.load(t / "k.nc"),
        ResultsError,
        r"'<tmp>/k\.nc' has a config_json that is a JSON list, not an object",
        setup=_netcdf("k.nc", _provenance(config_json="[1, 2]")),
    ),
    bad(
        "results-missing-file",
        lambda t: results.load(t / "missing.nc"),
        FileNotFoundError,
        r"no such file: '<tmp>/m",
    ),
    bad(
        "results-wrong-experiment",
        lambda t: results.load(t / "p.nc", experiment="decision"),
        ResultsError,
        r"is not a decision result \(it holds 'no experiment'\)",
        setup=_netcdf("p.nc", _provenance()),
    ),
    bad(
        "results-path-int",
        lambda t: results.load(3),
        TypeError,
        r"path=3 \(int\): expected a str or path-like file name",
    ),
    bad(
        "results-save-wrong-suffix",
        lambda t: results.save(_result(), t / "o.txt"),
        ValueError,
        r"path='<tmp>/o\.txt' has suffix '\.txt'",
    ),
    bad(
        "results-save-not-a-dataset",
        lambda t: results.save({"a": 1}, t / "o.nc"),
        TypeError,
        r"expected an xarray Dataset or DataTree, got dict",
    ),
    bad(
        "results-save-exists",
        lambda t: results.save(_result(), t / "p.nc"),
        FileExistsError,
        r"'<tmp>/p\.nc' exists; pass .*overwrite",
        setup=_netcdf("p.nc", _provenance()),
    ),
    bad(
        "results-save-no-folder",
        lambda t: results.save(_result(), t / "none" / "o.nc"),
        FileNotFoundError,
        r"the folder '<tmp>/none' for '<tmp>/none/o\.nc' does not exist",
    ),
    bad(
        "results-validate-problems",
        lambda t: results.validate(xr.Dataset({"a": ("t", [1.0]), "b": ("t", [2.0], {"units": None})})),
        SchemaError,
        r"^\d schema problem\(s\):\n  data variable 'a' has no units or long_name attribute\n",
        lines=6,
    ),
]

CLI = [
    bad(
        "cli-unknown-experiment",
        lambda t: _cli("run", "nosuch"),
        CliFailed,
        _E + r"unknown experiment 'nosuch'",
    ),
    bad(
        "cli-experiment-typo",
        lambda t: _cli("run", "decison"),
        CliFailed,
        _E + r"unknown experiment 'decison' \(did you mean 'decision'\?\)",
    ),
    bad(
        "cli-set-without-value",
        lambda t: _cli("run", "decision", "--set", "seed"),
        CliFailed,
        _E + r"--set 'seed': expected KEY=VALUE",
    ),
    bad(
        "cli-set-without-key",
        lambda t: _cli("run", "decision", "--set", "=3"),
        CliFailed,
        _E + r"--set '=3': exp",
    ),
    bad(
        "cli-set-unknown-key",
        lambda t: _cli("run", "decision", "--set", "sed=3"),
        CliFailed,
        _E + r"unknown key 'sed' \(did you mean 'seed'",
    ),
    bad(
        "cli-set-negative-seed",
        lambda t: _cli("run", "decision", "--set", "seed=-1"),
        CliFailed,
        _E + r"seed=-1 is outside the valid range",
    ),
    bad(
        "cli-set-wrong-type",
        lambda t: _cli("run", "decision", "--set", "seed=abc"),
        CliFailed,
        _E + r"seed='abc' has the wrong type; expected an integer",
    ),
    bad(
        "cli-set-nan",
        lambda t: _cli("run", "decision", "--set", "max_rt_ms=nan"),
        CliFailed,
        _E + r"max_rt_ms=nan must be a finite number",
    ),
    bad(
        "cli-csi-not-numbers",
        lambda t: _cli("run", "task-switching", "--csi-ms", "a,b"),
        CliFailed,
        _E + r"--csi-ms='a,b': expected a comma-separated list of floats",
    ),
    bad(
        "cli-csi-empty",
        lambda t: _cli("run", "task-switching", "--csi-ms", ""),
        CliFailed,
        _E + r"--csi-ms='': expected a comma-separated list",
    ),
    bad(
        "cli-csi-negative",
        lambda t: _cli("run", "task-switching", "--csi-ms", "-5,100"),
        CliFailed,
        _E + r"csi_ms=\(-5\.0, 100\.0\) \(element -5\.0\) is outside the valid range",
    ),
    bad(
        "cli-csi-nan",
        lambda t: _cli("run", "task-switching", "--csi-ms", "nan"),
        CliFailed,
        _E + r"csi_ms\[0\]=nan must be a finite number",
    ),
    bad(
        "cli-n-trials-zero",
        lambda t: _cli("run", "task-switching", "--n-trials", "0"),
        CliFailed,
        _E + r"n_trials=0 is outside the valid range \[8, inf\)",
    ),
    bad(
        "cli-n-trials-negative",
        lambda t: _cli("run", "task-switching", "--n-trials", "-1"),
        CliFailed,
        _E + r"n_trials=-1 is outside the valid range",
    ),
    bad(
        "cli-n-trials-not-int",
        lambda t: _cli("run", "task-switching", "--n-trials", "x"),
        CliFailed,
        _E + r"Invalid value for '--n-trials': .*integer \(see `neuromod run --help`\)",
    ),
    bad(
        "cli-n-trials-not-a-setting",
        lambda t: _cli("run", "sweep-probe", "--n-trials", "5"),
        CliFailed,
        _E + r"--n-trials: experiment 'sweep-probe' has no setting 'n_trials'",
    ),
    bad(
        "cli-unknown-option",
        lambda t: _cli("run", "decision", "--bogus"),
        CliFailed,
        _E + r"No such option: --bogus",
    ),
    bad(
        "cli-unknown-command",
        lambda t: _cli("frobnicate"),
        CliFailed,
        _E + r"No such command 'frobnicate'",
    ),
    bad(
        "cli-workers-zero",
        lambda t: _cli("run", "decision", "--workers", "0"),
        CliFailed,
        _E + r"Invalid value for '--workers': .*greater than or equal to 1",
    ),
    bad(
        "cli-out-bad-suffix",
        lambda t: _cli("run", "decision", "--out", "x.txt"),
        CliFailed,
        _E + r"path='x\.txt' has suffix '\.txt'; expected one of \['\.nc', '\.zarr'\]",
    ),
    bad(
        "cli-seed-negative",
        lambda t: _cli("run", "decision", "--seed", "-3"),
        CliFailed,
        _E + r"seed=-3 is outside the valid range",
    ),
    bad(
        "cli-models-unknown",
        lambda t: _cli("run", "decision", "--models", "rat"),
        CliFailed,
        _E + r"models contains 'rat' \(did you mean 'rate'\?\)",
    ),
    bad(
        "cli-tau-negative",
        lambda t: _cli("run", "task-switching", "--tau-ms", "-1"),
        CliFailed,
        _E + r"tau_ms=-1\.0 is outside the valid range \(0, inf\)",
    ),
    bad(
        "cli-tau-inf",
        lambda t: _cli("run", "task-switching", "--tau-ms", "inf"),
        CliFailed,
        _E + r"tau_ms=inf must be a finite number",
    ),
    bad(
        "cli-scheduler-unknown",
        lambda t: _cli("run", "decision", "--scheduler", "bogus"),
        CliFailed,
        _E + r"--scheduler 'bogus': expected 'local', 'serial', 'slurm'",
    ),
    bad(
        "cli-toml-missing",
        lambda t: _cli("run", "nofile.toml"),
        CliFailed,
        _E + r"no such config file: 'nofile\.toml'",
    ),
    bad(
        "cli-toml-bad-key",
        lambda t: _cli("run", "e.toml"),
        CliFailed,
        _E + r"e\.toml: unknown key 'sedd' \(did you mean 'seed'",
        setup=_write("e.toml", 'experiment = "decision"\nsedd = 3\n'),
    ),
    bad(
        "cli-toml-without-experiment",
        lambda t: _cli("run", "f.toml"),
        CliFailed,
        _E + r"f\.toml: missing key 'experiment' \(one of \[",
        setup=_write("f.toml", "seed = 1\n"),
    ),
    bad(
        "cli-target-neither-name-nor-toml",
        lambda t: _cli("run", "dir/thing"),
        CliFailed,
        _E + r"'dir/thing' is neither an experiment name nor a \.toml file",
    ),
    bad(
        "cli-info-missing",
        lambda t: _cli("info", "missing.nc"),
        CliFailed,
        _E + r"no such file: 'missing\.nc'",
    ),
    bad(
        "cli-info-text-file",
        lambda t: _cli("info", "text.nc"),
        CliFailed,
        _E + r"'text\.nc' is not a readable netcdf file",
        setup=_write("text.nc", "hello\n"),
    ),
    bad(
        "cli-info-wrong-suffix",
        lambda t: _cli("info", "x.txt"),
        CliFailed,
        _E + r"path='x\.txt' has suffix '\.txt'",
    ),
    bad(
        "cli-plot-missing",
        lambda t: _cli("plot", "missing.nc"),
        CliFailed,
        _E + r"no such file: 'missing\.nc'",
    ),
]

#: The table: every bad call of the suite's bad-input contract, by area (the id's prefix).
CASES: list[Any] = [*GATING, *RATE, *SPIKING, *TASKS, *MEASURES, *CONFIGS, *EXPERIMENTS, *RESULTS, *CLI]


def _area(case_id: str) -> str:
    return case_id.split("-", 1)[0]


def test_case_ids_are_unique() -> None:
    ids = [p.id for p in CASES]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    assert not duplicates, f"{len(duplicates)} duplicate case id(s): {duplicates}"


def test_table_covers_every_area() -> None:
    areas = {_area(p.id) for p in CASES}
    expected = {"gating", "rate", "spiking", "tasks", "measures", "config", "experiment", "results", "cli"}
    assert areas == expected, f"areas {sorted(areas)}, expected {sorted(expected)}"


@pytest.fixture(autouse=True)
def _sentinels(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Expensive steps raise WorkStarted; relative paths of the command line land in `tmp_path`."""
    for target in _SENTINELS:

        def sentinel(*args: Any, _target: str = target, **kwargs: Any) -> Any:
            raise WorkStarted(f"{_target} was called: work started before the input was refused")

        monkeypatch.setattr(target, sentinel)
    monkeypatch.chdir(tmp_path)


def _message(err: BaseException, tmp: Path) -> str:
    text = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
    return str(text).replace(str(tmp), "<tmp>")


#: Valid calls that would start work: each must reach a sentinel (so the sentinels guard what they should).
_VALID_CALLS = {
    "fi_sweep": lambda: spiking.fi_sweep("none", [0.0], [0.3]),
    "fi_sweep-standalone": lambda: spiking.fi_sweep("none", [0.0], [0.3], target="cpp_standalone"),
    "simulate_session": lambda: spiking.simulate_session([[10.0]]),
    "rate.simulate_decision": lambda: rate.simulate_decision(0.0, n_trials=1),
    "rate.simulate_circuit": lambda: _circuit(),
    "decision-run": lambda: _run(_DEC, _config(_DEC, {"models": ["rate"]})),
    "gain-curves-run": lambda: _run(_GC, _config(_GC, {"models": ["rate"]})),
    "task-switching-run": lambda: _run(_TS, _config(_TS, {"models": ["rate"]})),
    "sweep-probe-run": lambda: _run(_PROBE, _config(_PROBE, {})),
}


@pytest.mark.parametrize("name", list(_VALID_CALLS))
def test_sentinels_stop_valid_calls(name: str) -> None:
    with pytest.raises(WorkStarted):
        _VALID_CALLS[name]()


@pytest.mark.parametrize("case", CASES)
def test_bad_input(case: Case, tmp_path: Path) -> None:
    if case.setup is not None:
        case.setup(tmp_path)
    start = time.perf_counter()
    with pytest.raises(case.exc) as info:
        case.call(tmp_path)
    elapsed = time.perf_counter() - start
    message = _message(info.value, tmp_path)
    assert re.search(case.match, message), f"message {message!r} does not match {case.match!r}"
    lines = message.splitlines()
    assert 1 <= len(lines) <= case.lines, f"{len(lines)} lines, expected at most {case.lines}: {message!r}"
    too_long = [line for line in lines if len(line) > MAX_CHARS]
    assert not too_long, f"a line of {len(too_long[0])} characters (at most {MAX_CHARS}): {too_long[0]!r}"
    assert elapsed < MAX_SECONDS, f"refused after {elapsed:.2f} s (at most {MAX_SECONDS} s): work started"
