"""The machine a result was computed on, and the compile flags of neuromod's brian2 code.

The same seed and config give the same numbers only where the floating-point operations are the same, and
several libraries choose their code by the CPU they run on:

* brian2 compiles its generated code with ``-march=native -ffast-math`` by default: instruction selection
  (fused multiply-add, vector width) and reassociation depend on the CPU. neuromod's ``compile_flags``
  setting (:func:`brian2_compile_args`) chooses ``"portable"`` flags instead: a fixed instruction set, no
  fast-math, no contraction into fused multiply-adds; the generated code is then the same on every CPU of
  an architecture (for one compiler version), and its arithmetic is IEEE double precision, operation for
  operation as written.
* glibc's libm picks its ``exp``, ``pow``, ``sin``, ... by CPU (x86-64: an FMA variant on CPUs with FMA and
  AVX2, else FMA4, else SSE2); the variants differ in the last bit of about 0.07 % of ``exp`` values
  (measured, masking FMA and AVX2 with ``GLIBC_TUNABLES``: the spiking runs tried did not change, a curve
  fit of the measures did).
* numpy picks its SIMD code by CPU (e.g. float64 ``exp`` and ``log`` on AVX-512).
* torch dispatches its kernels by "CPU capability" (``ATEN_CPU_CAPABILITY``: default, avx2, avx512, ...), and
  MKL and oneDNN, which it calls, have their own dispatch (``MKL_CBWR``, ``ONEDNN_MAX_CPU_ISA``): each of the
  three changes the SE model's numbers (measured), and through the release pattern the SE gate sets, those
  of the other families in the task-switching experiment.
* numba compiles for the host CPU (``NUMBA_CPU_NAME``); the rate model's kernels forbid contraction, so
  their arithmetic is the same on every x86-64 CPU.

:func:`machine_info` records all of this as a flat mapping of strings, so that two results can be checked
for comparability. Nothing here imports torch, numba or brian2: their entries are read only where the
library is already imported (the run used it).
"""

from __future__ import annotations

import functools
import hashlib
import os
import platform
import re
import subprocess
import sys
from typing import Literal

from neuromod._checks import check_choice

__all__ = [
    "COMPILE_FLAGS",
    "DEFAULT_COMPILE_FLAGS",
    "CompileFlags",
    "brian2_compile_args",
    "compile_tag",
    "machine_info",
]

CompileFlags = Literal["portable", "native"]
#: the settings of ``compile_flags``
COMPILE_FLAGS: tuple[str, ...] = ("portable", "native")
#: the default of ``compile_flags``: portable, as it costs 2-10 % of the spiking network's speed
#: (``benchmarks/bench_portable.py``; see ``SpikingConfig.compile_flags``) and makes its numbers the same on
#: every x86-64 CPU with the same libm code path
DEFAULT_COMPILE_FLAGS: CompileFlags = "portable"

#: CPU features that the numerical libraries dispatch on, per architecture (``/proc/cpuinfo`` names)
_FEATURES = {
    "x86_64": ("sse4_2", "avx", "avx2", "fma", "fma4", "avx512f"),
    "aarch64": ("asimd", "sve", "sve2"),
}
#: environment variables that change the code paths of the numerical libraries
_ENV = (
    "ATEN_CPU_CAPABILITY",
    "MKL_CBWR",
    "MKL_ENABLE_INSTRUCTIONS",
    "NPY_DISABLE_CPU_FEATURES",
    "NPY_ENABLE_CPU_FEATURES",
    "NUMBA_CPU_NAME",
    "NUMBA_CPU_FEATURES",
    "ONEDNN_MAX_CPU_ISA",
    "DNNL_MAX_CPU_ISA",
    "GLIBC_TUNABLES",
    "CXX",
)
#: the instruction set of the portable flags: x86-64-v2 (SSE4.2, POPCNT: every x86-64 CPU since about 2009;
#: its SSE4.1 rounding instructions make the f-I sweep's loop as fast as native code), ARMv8-A
_PORTABLE_MARCH = {"x86_64": "-march=x86-64-v2", "amd64": "-march=x86-64-v2", "aarch64": "-march=armv8-a"}


def _arch() -> str:
    return platform.machine().lower()


def brian2_compile_args(compile_flags: str) -> tuple[str, ...]:
    """The compiler flags (GCC, clang) of neuromod's brian2 code for a ``compile_flags`` setting.

    * ``"native"``: brian2's own default for this architecture (x86-64, ARM: ``-w -O3 -ffast-math
      -fno-finite-math-only -march=native -std=c++11``): the code is tuned to, and its results depend on,
      the CPU it is compiled on.
    * ``"portable"``: ``-w -O3 -ffp-contract=off -march=x86-64-v2 -mtune=generic -std=c++11`` on x86-64
      (``-march=armv8-a`` on 64-bit ARM, no ``-march`` elsewhere): no fast-math (no reassociation, IEEE
      semantics), no fused multiply-adds, a fixed instruction set (x86-64-v2: every x86-64 CPU since about
      2009); the same code on every such CPU, for one compiler version. Without fast-math and contraction
      the instruction set does not change the results: the f-I sweep gives bit-identical rates compiled
      for x86-64, x86-64-v2, x86-64-v3 or this CPU (measured).

    brian2 drops a flag its compiler does not accept (``has_flag``; GCC < 11 lacks ``x86-64-v2`` and
    compiles for its default, the x86-64 baseline). The measured cost of ``"portable"``
    (``benchmarks/bench_portable.py``) is stated in the docstring of ``SpikingConfig.compile_flags``.

    Parameters
    ----------
    compile_flags : {"portable", "native"}
        The setting.

    Returns
    -------
    tuple of str
        The flags, in the order given to the compiler.

    Raises
    ------
    ValueError
        An unknown setting.

    Examples
    --------
    >>> "-ffast-math" in brian2_compile_args("portable")
    False
    """
    check_choice("compile_flags", compile_flags, COMPILE_FLAGS)
    if compile_flags == "native":
        from brian2.codegen.cpp_prefs import default_buildopts  # brian2's own rule per architecture

        return tuple(default_buildopts)
    march = _PORTABLE_MARCH.get(_arch())
    tune = ("-mtune=generic",) if march == "-march=x86-64-v2" else ()
    return ("-w", "-O3", "-ffp-contract=off", *((march,) if march else ()), *tune, "-std=c++11")


def compile_tag(compile_flags: str) -> str:
    """A name for the modules compiled with a ``compile_flags`` setting here: the setting and a hash of its
    flags (for ``"native"`` also of the architecture, CPU model and features, as ``-march=native`` means
    another instruction set on another CPU), e.g. ``portable-1f0c9a2b``.

    Compiled modules are cached under it (``neuromod.spiking.default_cache_dir``): brian2's own cache key
    does not hold the flags, so modules of another flag list, or of native code of another CPU in a cache
    directory shared between machines, are never loaded.

    Examples
    --------
    >>> compile_tag("portable").startswith("portable-")
    True
    """
    parts = list(brian2_compile_args(compile_flags))
    if compile_flags == "native":
        parts += [platform.machine(), _cpu_model(), _cpu_features()]
    digest = hashlib.sha1("\0".join(parts).encode()).hexdigest()[:8]
    return f"{compile_flags}-{digest}"


@functools.cache
def _cpuinfo() -> dict[str, str]:
    """``model name`` (or ``Model`` / ``CPU part``) and the flags line of ``/proc/cpuinfo``'s first CPU."""
    out: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if not line.strip():
                    if out:
                        break  # the first processor's block is enough
                    continue
                key, _, value = line.partition(":")
                out.setdefault(key.strip().lower(), value.strip())
    except OSError:
        pass
    return out


def _cpu_model() -> str:
    info = _cpuinfo()
    for key in ("model name", "model", "cpu model", "hardware"):
        if info.get(key):
            return info[key]
    return platform.processor() or "unknown"


def _cpu_features() -> str:
    """``name=1`` / ``name=0`` for every feature of :data:`_FEATURES` (``unknown`` without cpuinfo)."""
    arch = "x86_64" if _arch() in ("x86_64", "amd64") else _arch()
    names = _FEATURES.get(arch)
    info = _cpuinfo()
    flags = info.get("flags") or info.get("features")
    if names is None or flags is None:
        return "unknown"
    have = set(flags.split())
    return " ".join(f"{n}={int(n in have)}" for n in names)


def _libm_variant() -> str:
    """glibc's x86-64 choice of ``exp``, ``pow``, ``sin``, ... (its ifunc rule: FMA and AVX2 usable ->
    ``fma``; else FMA4 -> ``fma4``; else ``sse2``); ``n/a`` elsewhere. ``GLIBC_TUNABLES`` can mask
    features (recorded separately)."""
    if _arch() not in ("x86_64", "amd64") or platform.libc_ver()[0] != "glibc":
        return "n/a"
    features = _cpu_features()
    if features == "unknown":
        return "unknown"
    have = {kv.split("=")[0] for kv in features.split() if kv.endswith("=1")}
    if {"fma", "avx2"} <= have:
        return "fma"
    return "fma4" if "fma4" in have else "sse2"


def _numpy_simd() -> str:
    """The SIMD extensions numpy uses here: its baseline and the dispatch targets this CPU has."""
    try:
        import numpy as np

        core = getattr(np, "_core", None) or np.core  # numpy 2 / numpy 1
        umath = core._multiarray_umath
        found = umath.__cpu_features__
        dispatch = [f for f in umath.__cpu_dispatch__ if found.get(f)]
        return f"baseline {' '.join(umath.__cpu_baseline__)}; dispatch {' '.join(dispatch) or 'none'}"
    except Exception:  # a private numpy interface: record what is known rather than fail a result
        return "unknown"


@functools.cache
def _compiler_version(cxx: str) -> str:
    """The first line of ``<cxx> --version`` (the C++ compiler brian2 uses)."""
    try:
        proc = subprocess.run([*cxx.split(), "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as err:
        return f"unavailable ({type(err).__name__})"
    lines = proc.stdout.strip().splitlines()
    return lines[0] if proc.returncode == 0 and lines else f"unavailable (exit {proc.returncode})"


def _brian2_compiler() -> str:
    if "brian2" not in sys.modules:
        return "brian2 not imported"
    import sysconfig

    cxx = os.environ.get("CXX") or sysconfig.get_config_var("CXX") or "c++"
    cxx = re.sub(r"\s-.*$", "", cxx.strip())  # "g++ -pthread" -> "g++"
    return _compiler_version(cxx)


def _torch_capability() -> str:
    torch = sys.modules.get("torch")
    if torch is None:
        return "torch not imported"
    try:
        return str(torch.backends.cpu.get_cpu_capability())
    except Exception as err:  # older torch
        return f"unknown ({type(err).__name__})"


def _numba_cpu() -> str:
    if "numba" not in sys.modules:
        return "numba not imported"
    try:
        from llvmlite import binding
        from numba.core import config

        return str(config.CPU_NAME or binding.get_host_cpu_name())
    except Exception as err:
        return f"unknown ({type(err).__name__})"


@functools.cache
def _static() -> dict[str, str]:
    libc = " ".join(x for x in platform.libc_ver() if x) or "unknown"
    return {
        "architecture": platform.machine() or "unknown",
        "cpu_model": _cpu_model(),
        "cpu_features": _cpu_features(),
        "os": platform.platform(),
        "libc": libc,
        "libm_variant": _libm_variant(),
        "numpy_simd": _numpy_simd(),
    }


def machine_info() -> dict[str, str]:
    """What a result's numbers depend on besides the seed, the config and the library versions.

    A flat mapping of strings, the same for every call on one machine and environment (no times, no
    process ids); the parts that need a subprocess or ``/proc`` are read once per process. neuromod stores
    it as JSON in the ``machine`` attribute of every result.

    Returns
    -------
    dict of str to str
        ``architecture`` (``platform.machine()``); ``cpu_model`` (``/proc/cpuinfo``'s model name, else
        ``platform.processor()``); ``cpu_features`` (``name=1`` / ``name=0`` for the features the
        libraries dispatch on: x86-64 ``sse4_2 avx avx2 fma fma4 avx512f``, ARM ``asimd sve sve2``);
        ``os`` (``platform.platform()``); ``libc`` (``platform.libc_ver()``); ``libm_variant`` (glibc's
        x86-64 libm code path: ``fma``, ``fma4`` or ``sse2``; ``n/a`` elsewhere); ``numpy_simd`` (numpy's
        baseline and the dispatch targets found); ``torch_cpu_capability``
        (``torch.backends.cpu.get_cpu_capability()``, or ``torch not imported``); ``numba_cpu`` (the CPU
        numba compiles for, or ``numba not imported``); ``brian2_compiler`` (``$CXX --version``'s first line
        where brian2 is imported, else ``brian2 not imported``); ``numerics_env`` (those of
        ``ATEN_CPU_CAPABILITY MKL_CBWR MKL_ENABLE_INSTRUCTIONS NPY_DISABLE_CPU_FEATURES
        NPY_ENABLE_CPU_FEATURES NUMBA_CPU_NAME NUMBA_CPU_FEATURES ONEDNN_MAX_CPU_ISA DNNL_MAX_CPU_ISA
        GLIBC_TUNABLES CXX`` that are set, as ``NAME=value``; ``none``).

    Examples
    --------
    >>> info = machine_info()
    >>> info == machine_info() and all(isinstance(v, str) and v for v in info.values())
    True
    """
    env = " ".join(f"{k}={os.environ[k]}" for k in _ENV if os.environ.get(k))
    return {
        **_static(),
        "torch_cpu_capability": _torch_capability(),
        "numba_cpu": _numba_cpu(),
        "brian2_compiler": _brian2_compiler(),
        "numerics_env": env or "none",
    }


def host_info() -> dict[str, str]:
    """The part of :func:`machine_info` that does not depend on which libraries this process has imported
    (so every process of a run records the same): the static description of the machine, the C++ compiler
    and the numerics environment variables. neuromod stores it as JSON in the ``machine`` attribute of every
    result; the SE family's group adds torch's CPU capability, the spiking group brian2's compile flags."""
    import sysconfig

    cxx = os.environ.get("CXX") or sysconfig.get_config_var("CXX") or "c++"
    env = " ".join(f"{k}={os.environ[k]}" for k in _ENV if os.environ.get(k))
    return {
        **_static(),
        "cxx": _compiler_version(re.sub(r"\s-.*$", "", cxx.strip())),
        "numerics_env": env or "none",
    }
