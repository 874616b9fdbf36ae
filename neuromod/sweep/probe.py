"""``sweep-probe``: a small experiment for trying a sweep set-up (and for the sweep engine's tests).

Each run sleeps ``duration_s`` (or burns the CPU that long with ``busy = true``), then returns a small
dataset derived from ``value`` and ``seed`` only. It can fail on purpose: raise for the values in
``fail_on``, kill its own process (SIGKILL: on a Dask worker, the worker dies) for the values in ``kill_on``,
or only the first time for the values in ``kill_once`` (a marker file in ``marker_dir`` remembers it).
Every execution appends a line to ``marker_dir/runs.log`` when ``marker_dir`` is set, so tests can count
how often a point really ran.

``neuromod sweep experiments/sweeps/probe.toml`` checks a cluster end to end in seconds.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import time
from pathlib import Path

import numpy as np
import xarray as xr

from neuromod import registry, results
from neuromod._memory import MemoryEstimate, check_memory
from neuromod.config import Config, ConfigError, param

__all__ = ["ProbeConfig", "estimate_memory", "run_probe"]

#: The interpreter with numpy and xarray (measured: 86 MB resident before a probe runs).
_BASELINE_BYTES = 90 * 2**20


@dataclasses.dataclass(frozen=True)
class ProbeConfig(Config):
    """Settings of the ``sweep-probe`` experiment."""

    experiment: str = "sweep-probe"
    seed: int = param(0, low=0, doc="seed of the returned noise")
    value: float = param(0.0, doc="the swept value (returned as the mean of x)")
    n: int = param(8, low=1, doc="samples returned")
    duration_s: float = param(0.0, low=0.0, doc="how long a run takes (s)")
    busy: bool = param(False, doc="burn the CPU for duration_s instead of sleeping")
    fail_on: tuple[float, ...] = param((), doc="values whose runs raise RuntimeError")
    kill_on: tuple[float, ...] = param((), doc="values whose runs kill their own process, every time")
    kill_once: tuple[float, ...] = param(
        (), doc="values whose first run kills its process (needs marker_dir)"
    )
    marker_dir: str = param("", doc="folder of the kill_once markers and of runs.log ('' = none)")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.experiment != "sweep-probe":
            raise ConfigError(
                f"experiment={self.experiment!r}: this is the 'sweep-probe' experiment's config; expected "
                "'sweep-probe'"
            )


def _log_run(config: ProbeConfig) -> None:
    if config.marker_dir:
        with open(Path(config.marker_dir) / "runs.log", "a") as fh:
            fh.write(f"{config.value!r} {config.seed} {os.getpid()}\n")


def _maybe_die(config: ProbeConfig) -> None:
    if config.value in config.fail_on:
        raise RuntimeError(f"sweep-probe: value={config.value!r} fails on purpose")
    kill = config.value in config.kill_on
    if config.value in config.kill_once:
        if not config.marker_dir:
            raise ValueError("sweep-probe: kill_once needs marker_dir")
        marker = Path(config.marker_dir) / f"killed-{config.value!r}-{config.seed}"
        try:
            marker.touch(exist_ok=False)
            kill = True
        except FileExistsError:
            pass
    if kill:
        os.kill(os.getpid(), signal.SIGKILL)


def estimate_memory(config: ProbeConfig) -> MemoryEstimate:
    """The peak memory of :func:`run_probe`: the interpreter, ``x`` and its ``sample`` coordinate (8 bytes
    per sample each) and the noise drawn before it is added (8 more), from the config alone.

    Examples
    --------
    >>> estimate_memory(ProbeConfig(n=2**27)).breakdown["samples"] == 3 * 2**30
    True
    """
    return MemoryEstimate(
        (("interpreter and libraries", _BASELINE_BYTES), ("samples", 3 * 8 * config.n)),
        advice="return fewer samples (--set n=N)",
    )


def run_probe(config: ProbeConfig, *, progress: bool = False) -> xr.Dataset:
    """Run the probe: wait, maybe fail, return ``x`` (``n`` samples of value + N(0, 1) noise of ``seed``).

    Raises
    ------
    TypeError
        `config` is not a ProbeConfig.
    neuromod.protocols.memory.MemoryLimitError
        The run's estimated memory (:func:`estimate_memory`) exceeds the limit, before any work.
    """
    if not isinstance(config, ProbeConfig):
        raise TypeError(f"config must be a ProbeConfig, got {type(config).__name__}")
    check_memory(estimate_memory(config))
    _log_run(config)
    end = time.perf_counter() + config.duration_s
    if config.busy:
        acc = 0.0
        while time.perf_counter() < end:
            acc += sum(i * i for i in range(1000))
    else:
        time.sleep(config.duration_s)
    _maybe_die(config)
    rng = np.random.default_rng(config.seed)
    x = config.value + rng.standard_normal(config.n)
    return xr.Dataset(
        {"x": ("sample", x, results.var_attrs("1", "value plus noise"))},
        coords={"sample": ("sample", np.arange(config.n), results.var_attrs("1", "sample index"))},
        attrs=results.provenance(config, title="sweep probe"),
    )


def _plot(ds: xr.Dataset):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 3))
    ds["x"].plot.line(ax=ax, marker="o")
    return fig


registry.register(
    registry.Experiment(
        name="sweep-probe",
        config_cls=ProbeConfig,
        run=run_probe,
        summarize=lambda ds: f"sweep-probe: mean x = {float(ds['x'].mean()):.3f}",
        plot=_plot,
        quick=lambda c: c.replace(duration_s=0.0),
        description="a test experiment for sweeps: waits, can fail on purpose (checks a cluster set-up)",
        memory=estimate_memory,
    ),
    replace=True,
)
