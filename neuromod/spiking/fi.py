"""f-I sweeps: every (level, drive, repeat) condition of one mechanism in one NeuronGroup, one run."""

from __future__ import annotations

import os
import shutil
import tempfile
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from neuromod._checks import check_array, check_bool, check_choice, check_int, check_positive
from neuromod._machine import COMPILE_FLAGS, DEFAULT_COMPILE_FLAGS
from neuromod._random import SeedLike

from ._codegen import TARGETS, CompileNotice, check_cache_dir, codegen_context
from ._noise import NOISE_GENERATORS
from ._seed import brian_seed
from .mechanisms import MECHANISMS, lif_model
from .params import LIFParams, ModulationParams, params_json

__all__ = ["MAX_DT_MS", "StandaloneFISweep", "fi_sweep"]

#: Largest accepted time step (ms); also at most t_ref / 2 and tau_m / 20.
MAX_DT_MS = 0.5

# Spike statistics accumulated at each reset (no spike monitor). An interval counts when its first spike is in
# the window, i.e. t_prev >= t_start (then so is t); so every in-window spike but the first ends one, and the
# number of intervals is n_spk - 1 (n_spk >= 1), not stored. ``in_win`` is a temporary, not a state variable:
# the reset touches as few arrays as it can, at random places when noise makes the spikes irregular.
_FI_RESET_STATS = """
in_win = int(t >= t_start)
n_spk += in_win
isi_sum += in_win*int(t_prev >= t_start)*(t - t_prev)/ms
isi_sq += in_win*int(t_prev >= t_start)*((t - t_prev)/ms)**2
t_prev = t
"""
_FI_STATS_EQS = """
n_spk : integer
isi_sum : 1
isi_sq : 1
t_prev : second
t_start : second (constant, shared)
"""


@dataclass(frozen=True)
class _Sweep:
    mechanism: str
    levels: np.ndarray
    drives: np.ndarray
    n_repeats: int
    duration_ms: float
    transient_ms: float
    noise: bool
    dt_ms: float
    params: LIFParams
    modulation: ModulationParams
    noise_generator: str


def _check_sweep(
    mechanism: str,
    levels: Any,
    drives_na: Any,
    *,
    params: LIFParams | None,
    modulation: ModulationParams | None,
    n_repeats: int,
    duration_ms: float,
    transient_ms: float,
    noise: bool,
    dt_ms: float,
    noise_generator: str,
) -> _Sweep:
    check_choice("mechanism", mechanism, MECHANISMS)
    levels = check_array("levels", levels, ndim=1, low=0.0, high=1.0)
    drives = check_array("drives_na", drives_na, ndim=1, low=-100.0, high=100.0)
    params = params if params is not None else LIFParams()
    modulation = modulation if modulation is not None else ModulationParams()
    if not isinstance(params, LIFParams):
        raise TypeError(f"params must be a LIFParams, got {type(params).__name__}")
    if not isinstance(modulation, ModulationParams):
        raise TypeError(f"modulation must be a ModulationParams, got {type(modulation).__name__}")
    n_repeats = check_int("n_repeats", n_repeats, low=1)
    duration_ms = check_positive("duration_ms", duration_ms)
    transient_ms = check_positive("transient_ms", transient_ms, allow_zero=True)
    if transient_ms >= duration_ms:
        raise ValueError(f"transient_ms={transient_ms!r} must be shorter than duration_ms={duration_ms!r}")
    dt_ms = check_positive("dt_ms", dt_ms)
    max_dt = min(MAX_DT_MS, params.t_ref_ms / 2.0, params.tau_m_ms / 20.0)
    if dt_ms > max_dt:
        raise ValueError(
            f"dt_ms={dt_ms!r} is too large: expected at most {max_dt:g} ms "
            f"(min of {MAX_DT_MS} ms, t_ref/2 and tau_m/20)"
        )
    check_bool("noise", noise)
    check_choice("noise_generator", noise_generator, NOISE_GENERATORS)
    return _Sweep(
        mechanism,
        levels,
        drives,
        n_repeats,
        duration_ms,
        transient_ms,
        bool(noise),
        dt_ms,
        params,
        modulation,
        noise_generator,
    )


def _condition_arrays(sw: _Sweep) -> tuple[np.ndarray, np.ndarray]:
    """Per-neuron level and drive; neuron index = (level * n_drive + drive) * n_repeat + repeat."""
    shape = (sw.levels.size, sw.drives.size, sw.n_repeats)
    m = np.broadcast_to(sw.levels[:, None, None], shape).ravel().copy()
    i_na = np.broadcast_to(sw.drives[None, :, None], shape).ravel().copy()
    return m, i_na


def _build_group(sw: _Sweep) -> Any:
    """The NeuronGroup of a sweep (one neuron per condition), with its statistics variables reset."""
    import brian2 as b2

    eqs, reset, namespace = lif_model(
        sw.mechanism,
        noise=sw.noise,
        drive="constant",
        modulator="constant",
        params=sw.params,
        modulation=sw.modulation,
        noise_generator=sw.noise_generator,
    )
    n = sw.levels.size * sw.drives.size * sw.n_repeats
    group = b2.NeuronGroup(
        n,
        eqs + _FI_STATS_EQS,
        threshold="v > v_th",
        reset=reset + _FI_RESET_STATS,
        method="euler",
        namespace=namespace,
        dt=sw.dt_ms * b2.ms,
        name="fi_population*",
    )
    group.v = sw.params.e_l_mv * b2.mV
    group.t_prev = -1.0 * b2.second
    group.t_start = sw.transient_ms * b2.ms
    return group


def _read_stats(group: Any) -> dict[str, np.ndarray]:
    """The spike statistics accumulated by the reset code, as plain arrays (one value per neuron)."""
    stats = {name: np.asarray(getattr(group, name)[:]) for name in ("n_spk", "isi_sum", "isi_sq")}
    stats["n_isi"] = np.maximum(stats["n_spk"] - 1, 0)
    return stats


def _to_dataset(
    sw: _Sweep,
    stats: dict[str, np.ndarray],
    *,
    seed_attrs: dict[str, int | str],
    target: str,
    compile_flags: str,
) -> xr.Dataset:
    """Rates, ISI CVs and spike counts over (level, drive, repeat) from the accumulated statistics."""
    n_spk, n_isi, isi_sum, isi_sq = (stats[k] for k in ("n_spk", "n_isi", "isi_sum", "isi_sq"))
    shape = (sw.levels.size, sw.drives.size, sw.n_repeats)
    window_s = (sw.duration_ms - sw.transient_ms) / 1e3
    rate = n_spk.reshape(shape) / window_s
    n_isi = n_isi.reshape(shape).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = isi_sum.reshape(shape) / n_isi
        var = (isi_sq.reshape(shape) - n_isi * mean**2) / (n_isi - 1.0)
        cv = np.sqrt(np.maximum(var, 0.0)) / mean
    cv = np.where(n_isi >= 3, cv, np.nan)
    dims = ("level", "drive", "repeat")
    ds = xr.Dataset(
        {
            "rate": (dims, rate, {"units": "Hz", "long_name": "firing rate"}),
            "isi_cv": (
                dims,
                cv,
                {"units": "1", "long_name": "coefficient of variation of interspike intervals"},
            ),
            "n_spikes": (
                dims,
                n_spk.reshape(shape).astype(np.int64),
                {"units": "1", "long_name": "spikes in the measurement window"},
            ),
        },
        coords={
            "level": ("level", sw.levels.copy(), {"units": "1", "long_name": "modulator level m"}),
            "drive": ("drive", sw.drives.copy(), {"units": "nA", "long_name": "injected current"}),
            "repeat": ("repeat", np.arange(sw.n_repeats), {"units": "1", "long_name": "repeat"}),
            "mechanism": ((), sw.mechanism, {"units": "1", "long_name": "modulation mechanism"}),
        },
        attrs={
            "title": f"f-I sweep, mechanism {sw.mechanism}",
            "model": "spiking",
            "duration_ms": sw.duration_ms,
            "transient_ms": sw.transient_ms,
            "dt_ms": sw.dt_ms,
            "noise": int(sw.noise),
            "noise_generator": sw.noise_generator,
            **seed_attrs,
            "target": target,
            "compile_flags": compile_flags,
            "params_json": params_json(lif=sw.params, modulation=sw.modulation),
        },
    )
    return ds


def fi_sweep(
    mechanism: str,
    levels: Sequence[float] | np.ndarray,
    drives_na: Sequence[float] | np.ndarray,
    *,
    params: LIFParams | None = None,
    modulation: ModulationParams | None = None,
    n_repeats: int = 1,
    duration_ms: float = 1000.0,
    transient_ms: float = 200.0,
    noise: bool = True,
    dt_ms: float = 0.1,
    noise_generator: str = "lowbias32",
    seed: SeedLike = None,
    target: str = "cython",
    compile_flags: str = DEFAULT_COMPILE_FLAGS,
    cache_dir: str | os.PathLike[str] | None = None,
) -> xr.Dataset:
    """Firing rate against injected current at several modulator levels, in one brian2 run.

    Every (level, drive, repeat) condition is one neuron of a single NeuronGroup; the level (the modulator
    m, held constant) and the drive are per-neuron parameters. Spikes after ``transient_ms`` are counted and
    their interspike intervals accumulated in the reset code, so no spike monitor is needed.

    Parameters
    ----------
    mechanism : {"none", "input_gain", "leak", "threshold", "background", "adaptation"}
        How m acts (see ``neuromod.spiking.mechanisms``); ``"none"`` is the plain LIF.
    levels : array-like, shape (n_level,)
        Modulator levels m in [0, 1]; 0 is unmodulated.
    drives_na : array-like, shape (n_drive,)
        Injected current (nA).
    params, modulation : LIFParams, ModulationParams, optional
        Neuron and mechanism parameters (published defaults).
    n_repeats : int
        Independent noise realisations per condition.
    duration_ms, transient_ms : float
        Simulated time and the initial part excluded from the measurement.
    noise : bool
        White-noise current (``params.noise_mv``) and, for ``background``, its extra noise.
    dt_ms : float
        Time step; at most ``min(0.5, t_ref / 2, tau_m / 20)`` ms.
    noise_generator : {"lowbias32", "splitmix64"}
        Counter-based noise (``neuromod.spiking._noise``, recorded in ``attrs``): ``"lowbias32"``
        (default) vectorises and is several times cheaper; ``"splitmix64"`` (the stateless hash used before)
        reproduces, bit for bit, the datasets made with it.
    seed : int, numpy.random.SeedSequence or None
        Seed; the same seed gives a bit-identical dataset (recorded in ``attrs``, see
        ``neuromod.spiking._seed.brian_seed``; None draws fresh entropy).
    target : {"cython", "numpy", "cpp_standalone"}
        brian2 code generation. ``"cython"`` falls back to ``"numpy"`` (with a warning) without a compiler;
        ``"cpp_standalone"`` builds a binary (use :class:`StandaloneFISweep` to rerun it). Selected with
        :func:`neuromod.spiking.codegen_context`: brian2's preferences are restored afterwards.
    compile_flags : {"portable", "native"}
        Compiler flags of the generated code (recorded in ``attrs``; see
        :func:`neuromod.spiking.codegen_context`): ``"portable"`` gives the same numbers on every CPU of an
        architecture, ``"native"`` tunes the code to this CPU. No effect with the numpy target.
    cache_dir : path, optional
        Base of the per-worker compile cache (default ``$NEUROMOD_BRIAN2_CACHE`` or the user cache).

    Returns
    -------
    xarray.Dataset
        ``rate`` (Hz), ``isi_cv`` (1; NaN with fewer than 3 intervals) and ``n_spikes`` over
        (``level``, ``drive``, ``repeat``); scalar coordinate ``mechanism``; parameters in
        ``attrs["params_json"]``, the target and compile flags used in ``attrs``.

    Raises
    ------
    ValueError
        Unknown mechanism or `compile_flags`, levels outside [0, 1], dt too large, transient not shorter
        than duration, ...

    Examples
    --------
    >>> ds = fi_sweep("none", [0.0], [0.3, 0.6], noise=False, duration_ms=300.0, target="numpy")
    >>> ds.rate.dims
    ('level', 'drive', 'repeat')
    """
    sw = _check_sweep(
        mechanism,
        levels,
        drives_na,
        params=params,
        modulation=modulation,
        n_repeats=n_repeats,
        duration_ms=duration_ms,
        transient_ms=transient_ms,
        noise=noise,
        dt_ms=dt_ms,
        noise_generator=noise_generator,
    )
    check_choice("target", target, TARGETS)
    check_choice("compile_flags", compile_flags, COMPILE_FLAGS)
    check_cache_dir(cache_dir)
    bseed, seed_attrs = brian_seed(seed)
    if target == "cpp_standalone":
        sweep = StandaloneFISweep(
            mechanism,
            sw.levels,
            sw.drives,
            params=sw.params,
            modulation=sw.modulation,
            n_repeats=sw.n_repeats,
            duration_ms=sw.duration_ms,
            transient_ms=sw.transient_ms,
            noise=sw.noise,
            dt_ms=sw.dt_ms,
            noise_generator=sw.noise_generator,
            compile_flags=compile_flags,
        )
        return sweep.run(seed=seed)
    with codegen_context(target, compile_flags=compile_flags, cache_dir=cache_dir) as used:
        stats = _run_runtime(sw, bseed)
    return _to_dataset(sw, stats, seed_attrs=seed_attrs, target=used, compile_flags=compile_flags)


def _run_runtime(sw: _Sweep, bseed: int) -> dict[str, np.ndarray]:
    """Build and run the sweep on brian2's runtime device (target already selected); the statistics."""
    import brian2 as b2

    group = _build_group(sw)
    m, i_na = _condition_arrays(sw)
    group.m = m
    group.i_drive = i_na * b2.nA
    group.noise_seed = bseed
    net = b2.Network(group)
    # says so (logger "neuromod.spiking") if building takes long: brian2 compiling on a cold cache
    notice = CompileNotice(
        "an f-I sweep",
        first_time="about 20 s",
        cache=b2.prefs["codegen.runtime.cython.cache_dir"],
        echo=False,
    )
    try:
        net.run(
            sw.duration_ms * b2.ms,
            namespace={},
            report=lambda *args: notice.done(),
            report_period=3600.0 * b2.second,
        )
    finally:
        notice.done()
    return _read_stats(group)


class StandaloneFISweep:
    """An f-I sweep compiled once with brian2's ``cpp_standalone`` device, rerun with new parameters.

    The sizes (number of levels, drives, repeats), the mechanism, the durations and ``dt`` are fixed at
    build time; :meth:`run` sets new levels, drives and seed through ``device.run(run_args=...)`` without
    recompiling. brian2 has one standalone device per process: building a second sweep invalidates the
    first (its :meth:`run` then raises ``RuntimeError``). Build and runs go through
    :func:`neuromod.spiking.codegen_context`: brian2's preferences and device are restored after each.

    Parameters
    ----------
    mechanism, levels, drives_na, params, modulation, n_repeats, duration_ms, transient_ms, noise, dt_ms
        As in :func:`fi_sweep`.
    noise_generator : {"lowbias32", "splitmix64"}
        As in :func:`fi_sweep`.
    compile_flags : {"portable", "native"}
        Compiler flags of the binary, as in :func:`fi_sweep`.
    directory : path, optional
        Project directory of the C++ code and binary (default: a temporary one, removed with this object).
    threads : int
        OpenMP threads of the binary; 0 leaves brian2's ``devices.cpp_standalone.openmp_threads`` as it is
        (default 0: no OpenMP).

    Examples
    --------
    Compiles C++ (seconds), so not run as a doctest::

        sweep = StandaloneFISweep("input_gain", [0.0, 1.0], [0.3, 0.6], noise=False)
        ds = sweep.run(levels=[0.0, 0.5], seed=1)
    """

    _generation = 0

    def __init__(
        self,
        mechanism: str,
        levels: Sequence[float] | np.ndarray,
        drives_na: Sequence[float] | np.ndarray,
        *,
        params: LIFParams | None = None,
        modulation: ModulationParams | None = None,
        n_repeats: int = 1,
        duration_ms: float = 1000.0,
        transient_ms: float = 200.0,
        noise: bool = True,
        dt_ms: float = 0.1,
        noise_generator: str = "lowbias32",
        compile_flags: str = DEFAULT_COMPILE_FLAGS,
        directory: str | os.PathLike[str] | None = None,
        threads: int = 0,
    ) -> None:
        self._sweep = _check_sweep(
            mechanism,
            levels,
            drives_na,
            params=params,
            modulation=modulation,
            n_repeats=n_repeats,
            duration_ms=duration_ms,
            transient_ms=transient_ms,
            noise=noise,
            dt_ms=dt_ms,
            noise_generator=noise_generator,
        )
        threads = check_int("threads", threads, low=0)
        self.compile_flags = check_choice("compile_flags", compile_flags, COMPILE_FLAGS)
        if directory is None:  # a temporary project directory, removed with this object
            directory = tempfile.mkdtemp(prefix="neuromod_standalone_")
            weakref.finalize(self, shutil.rmtree, directory, ignore_errors=True)
        self.directory = str(directory)
        self._threads = threads or None  # 0: leave brian2's preference (default: no OpenMP)
        StandaloneFISweep._generation += 1
        self._gen = StandaloneFISweep._generation
        self._group, self._device = self._build()

    def _build(self) -> tuple[Any, Any]:
        """Generate and compile the project; the NeuronGroup and the device it belongs to."""
        import brian2 as b2
        from brian2.devices.device import all_devices

        if StandaloneFISweep._generation > 1:  # a sweep was built before in this process
            all_devices["cpp_standalone"].reinit()
        with codegen_context(
            "cpp_standalone",
            compile_flags=self.compile_flags,
            directory=self.directory,
            openmp_threads=self._threads,
        ):
            device = b2.get_device()
            group = _build_group(self._sweep)
            net = b2.Network(group)
            net.run(self._sweep.duration_ms * b2.ms, namespace={})
            device.build(run=False, directory=self.directory)
        return group, device

    def run(
        self,
        *,
        levels: Sequence[float] | np.ndarray | None = None,
        drives_na: Sequence[float] | np.ndarray | None = None,
        seed: SeedLike = None,
    ) -> xr.Dataset:
        """Run the built binary with new levels and/or drives (same sizes) and a new seed.

        `seed` is an int, a ``numpy.random.SeedSequence`` or None, as in :func:`fi_sweep`; brian2's
        preferences and device are as at build time during the run and restored afterwards.
        """
        if self._gen != StandaloneFISweep._generation:
            raise RuntimeError("this StandaloneFISweep was invalidated by building a newer one")
        sw = self._sweep
        if levels is not None:
            new = check_array("levels", levels, ndim=1, low=0.0, high=1.0)
            if new.shape != sw.levels.shape:
                raise ValueError(f"levels has shape {new.shape}, expected {sw.levels.shape}")
            sw = _Sweep(**{**sw.__dict__, "levels": new})
        if drives_na is not None:
            new = check_array("drives_na", drives_na, ndim=1, low=-100.0, high=100.0)
            if new.shape != sw.drives.shape:
                raise ValueError(f"drives_na has shape {new.shape}, expected {sw.drives.shape}")
            sw = _Sweep(**{**sw.__dict__, "drives": new})
        bseed, seed_attrs = brian_seed(seed)
        m, i_na = _condition_arrays(sw)
        import brian2 as b2

        g = self._group
        with codegen_context(
            "cpp_standalone",
            compile_flags=self.compile_flags,
            directory=self.directory,
            openmp_threads=self._threads,
        ):
            self._device.run(
                directory=self.directory,
                with_output=False,
                run_args={g.m: m, g.i_drive: i_na * b2.nA, g.noise_seed: bseed},
            )
        self._sweep = sw
        return _to_dataset(
            sw,
            _read_stats(g),
            seed_attrs=seed_attrs,
            target="cpp_standalone",
            compile_flags=self.compile_flags,
        )
