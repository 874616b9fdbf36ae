"""Code-generation set-up for brian2: target choice, per-worker compile cache, numpy fallback.

brian2 keeps its settings in global preferences (``brian2.prefs``) and a global "active device". neuromod
never changes them for good: :func:`codegen_context` sets what one build or run needs and puts back, on exit,
every preference it changed and the device that was active. Nothing is changed at import time.

brian2 compiles every code object on first use (Cython target) and keeps the compiled modules in a cache
directory. neuromod gives each *worker process* its own cache directory (so parallel workers never contend for
the same files) that survives the process (so the cache is warm the next time the same worker starts):

* base directory: the ``cache_dir`` argument, else ``$NEUROMOD_BRIAN2_CACHE``, else
  ``$XDG_CACHE_HOME/neuromod/brian2`` (``~/.cache/neuromod/brian2``);
* per-worker subdirectory: ``<python>-<brian2 version>-<flags tag>/<worker>``, where ``<worker>`` is
  ``$NEUROMOD_WORKER`` or ``$PYTEST_XDIST_WORKER`` or the Dask worker name, else ``"main"``, and the flags
  tag (``neuromod._machine.compile_tag``) names the ``compile_flags`` setting (``"portable"`` or
  ``"native"``, ``neuromod._machine.brian2_compile_args``) and hashes its flags (for ``"native"``, the
  CPU too).

The flags are part of the directory's name because brian2's cache key is the generated code, the Python,
Cython and numpy versions and ``$CC`` / ``$CXX``, *not* the flags: modules compiled with other flags (or
native code of another CPU, in a cache shared between machines) must never be found. For the same reason
brian2's in-memory table of loaded modules (also keyed by code), which lets the second run of the same network
in a process compile nothing, is kept per flag set while a :func:`codegen_context` is open. Where no C
compiler works the numpy target is used instead, with a :class:`RuntimeWarning`.
"""

from __future__ import annotations

import gc
import logging
import os
import re
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from neuromod._checks import check_choice, check_int
from neuromod._machine import (
    COMPILE_FLAGS,
    DEFAULT_COMPILE_FLAGS,
    CompileFlags,
    brian2_compile_args,
    compile_tag,
)

__all__ = ["CompileNotice", "Target", "codegen_context", "default_cache_dir", "worker_id"]

Target = Literal["cython", "numpy", "cpp_standalone"]
TARGETS: tuple[str, ...] = ("cython", "numpy", "cpp_standalone")

#: Whether Cython compiled and ran here, per cache directory (probed once per process and directory).
_CYTHON_OK: dict[str, bool] = {}
#: brian2's table of loaded Cython modules (key: code, versions, $CC/$CXX), one per compile-flag set
_MODULES: dict[tuple[str, ...], dict[Any, Any]] = {}


def worker_id() -> str:
    """Name of this worker process, used to give it its own compile cache."""
    for var in ("NEUROMOD_WORKER", "PYTEST_XDIST_WORKER"):
        if os.environ.get(var):
            return re.sub(r"[^A-Za-z0-9_.-]", "_", os.environ[var])
    try:  # a Dask worker names itself; import lazily, dask is optional
        from distributed import get_worker  # type: ignore[import-not-found]

        return re.sub(r"[^A-Za-z0-9_.-]", "_", str(get_worker().name))
    except Exception:
        return "main"


def check_cache_dir(cache_dir: object) -> None:
    """Refuse a `cache_dir` that is neither None nor a path (before any work)."""
    if cache_dir is not None and not isinstance(cache_dir, (str, os.PathLike)):
        raise TypeError(f"cache_dir={cache_dir!r}: expected a folder (str or path-like) or None")


def default_cache_dir(
    cache_dir: str | os.PathLike[str] | None = None, *, compile_flags: CompileFlags = DEFAULT_COMPILE_FLAGS
) -> Path:
    """Per-worker brian2 compile-cache directory for a `compile_flags` setting (see the module docstring)."""
    import brian2

    check_cache_dir(cache_dir)
    check_choice("compile_flags", compile_flags, COMPILE_FLAGS)
    if cache_dir is None:
        cache_dir = os.environ.get("NEUROMOD_BRIAN2_CACHE") or None
    if cache_dir is None:
        xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        cache_dir = os.path.join(xdg, "neuromod", "brian2")
    python = f"py{sys.version_info.major}{sys.version_info.minor}"
    tag = f"{python}-brian2-{brian2.__version__}-{compile_tag(compile_flags)}"
    return Path(cache_dir) / tag / worker_id()


def _cython_works(cache_dir: str) -> bool:
    """Compile and run a one-neuron network (once per process and cache) to see whether Cython works.

    Call with the Cython target and the cache directory already set.
    """
    if cache_dir not in _CYTHON_OK:
        import brian2 as b2

        try:
            group = b2.NeuronGroup(1, "dv/dt = -v/(10*ms) : 1", method="exact")
            net = b2.Network(group)
            net.run(0.2 * b2.ms, namespace={})
            _CYTHON_OK[cache_dir] = True
        except Exception as err:
            warnings.warn(
                f"brian2 could not compile Cython code ({type(err).__name__}: {err}); "
                "falling back to the (slower) numpy target",
                RuntimeWarning,
                stacklevel=4,
            )
            _CYTHON_OK[cache_dir] = False
    return _CYTHON_OK[cache_dir]


class _Prefs:
    """Sets brian2 preferences and remembers the first previous value of each, to restore them."""

    def __init__(self) -> None:
        import brian2 as b2

        self._prefs = b2.prefs
        self._saved: dict[str, Any] = {}

    def default(self, key: str) -> Any:
        """brian2's default value of a preference."""
        category, name = key.rsplit(".", 1)
        return self._prefs.pref_register[category][0][name].default

    def set(self, key: str, value: Any) -> None:
        if key not in self._saved:
            self._saved[key] = self._prefs[key]
        self._prefs[key] = value

    def restore(self) -> None:
        for key, value in reversed(self._saved.items()):
            self._prefs[key] = value
        self._saved.clear()


def _set_compile_flags(prefs: _Prefs, compile_flags: str) -> tuple[str, ...]:
    """Set the compiler flags of `compile_flags` (GCC / clang; MSVC: brian2's default, without its
    ``/arch:`` flag for ``"portable"``); the GCC flags."""
    args = brian2_compile_args(compile_flags)
    msvc = list(prefs.default("codegen.cpp.extra_compile_args_msvc"))
    if compile_flags == "portable":
        msvc = [flag for flag in msvc if not flag.lower().startswith("/arch:")]
    prefs.set("codegen.cpp.extra_compile_args", None)  # None: the per-compiler lists below apply
    prefs.set("codegen.cpp.extra_compile_args_gcc", list(args))
    prefs.set("codegen.cpp.extra_compile_args_msvc", msvc)
    return args


@contextmanager
def _loaded_modules(args: tuple[str, ...]) -> Iterator[None]:
    """brian2's in-memory table of loaded Cython modules, the one of the flag set `args` for the block."""
    from brian2.codegen.runtime.cython_rt.extension_manager import cython_extension_manager as manager

    before = manager._code_cache
    manager._code_cache = _MODULES.setdefault(args, {})
    try:
        yield
    finally:
        manager._code_cache = before


def _runtime_target(
    prefs: _Prefs, target: str, cache_dir: str | os.PathLike[str] | None, compile_flags: str
) -> str:
    """Select a runtime target (cython, else numpy) and the per-worker cache; returns the target in use."""
    path = default_cache_dir(cache_dir, compile_flags=compile_flags)
    path.mkdir(parents=True, exist_ok=True)
    prefs.set("codegen.runtime.cython.cache_dir", str(path))
    prefs.set("codegen.runtime.cython.multiprocess_safe", True)
    if target == "numpy":
        prefs.set("codegen.target", "numpy")
        return "numpy"
    prefs.set("codegen.target", "cython")
    if _cython_works(str(path)):
        return "cython"
    prefs.set("codegen.target", "numpy")
    return "numpy"


@contextmanager
def codegen_context(
    target: Target = "cython",
    *,
    compile_flags: CompileFlags = DEFAULT_COMPILE_FLAGS,
    cache_dir: str | os.PathLike[str] | None = None,
    directory: str | os.PathLike[str] | None = None,
    openmp_threads: int | None = None,
) -> Iterator[str]:
    """Select the brian2 code-generation target (and device) for a block; restore everything on exit.

    On entry: collects garbage (see below); sets the compiler flags of `compile_flags`
    (``codegen.cpp.extra_compile_args_gcc`` and ``..._msvc``; ``codegen.cpp.extra_compile_args`` to None so
    that they apply); for ``"cython"`` / ``"numpy"`` activates brian2's runtime device, sets
    ``codegen.target`` and the per-worker compile cache of the flag set (``codegen.runtime.cython.cache_dir``,
    ``codegen.runtime.cython.multiprocess_safe``) and brian2's in-memory table of loaded modules of the flag
    set, and falls back to numpy (with a :class:`RuntimeWarning`) where Cython cannot compile; for
    ``"cpp_standalone"`` activates that device (project `directory`, no build on run) and sets
    ``devices.cpp_standalone.openmp_threads``. On exit, also after an error, every preference changed is set
    back to its previous value, brian2's own module table and the previously active device are reactivated.
    Not thread-safe: brian2's preferences and device are process-wide.

    Garbage is collected first because brian2 objects of an earlier run that only reference cycles keep
    alive still hold their names: a new group named ``"decision_exc*"`` would become ``"decision_exc_1"``,
    and as the name is part of the generated code, hence of the compile-cache key, the whole network would
    compile again (about a minute). Collecting them lets every run in a process reuse the cached modules.

    Parameters
    ----------
    target : {"cython", "numpy", "cpp_standalone"}
        Requested target.
    compile_flags : {"portable", "native"}
        Compiler flags of the generated code (``neuromod._machine.brian2_compile_args``): ``"portable"``
        gives the same code, hence the same numbers, on every CPU of an architecture; ``"native"`` (brian2's
        default) tunes the code to this CPU. Modules compiled with either are cached apart.
    cache_dir : path, optional
        Base directory of the compile cache (default: ``$NEUROMOD_BRIAN2_CACHE`` or the user cache directory);
        runtime targets only.
    directory : path, optional
        Project directory of the ``cpp_standalone`` device (brian2's default when None).
    openmp_threads : int, optional
        OpenMP threads of a ``cpp_standalone`` build (0: no OpenMP); None leaves the preference as it is.

    Yields
    ------
    str
        The target actually in use: ``"cython"``, ``"numpy"`` (requested, or after a fallback) or
        ``"cpp_standalone"``.

    Raises
    ------
    ValueError
        Unknown target or `compile_flags`, negative `openmp_threads`, or `directory` / `openmp_threads` with a
        runtime target.

    Examples
    --------
    >>> import brian2
    >>> before = brian2.prefs.codegen.target
    >>> with codegen_context("numpy") as used:
    ...     print(used, brian2.prefs.codegen.target)
    numpy numpy
    >>> brian2.prefs.codegen.target == before
    True
    >>> with codegen_context("numpy", compile_flags="portable"):
    ...     print(brian2.prefs["codegen.cpp.extra_compile_args_gcc"][:3])
    ['-w', '-O3', '-ffp-contract=off']
    """
    check_choice("target", target, TARGETS)
    check_choice("compile_flags", compile_flags, COMPILE_FLAGS)
    if openmp_threads is not None:
        openmp_threads = check_int("openmp_threads", openmp_threads, low=0)
    if target != "cpp_standalone" and (directory is not None or openmp_threads is not None):
        raise ValueError(
            f"directory={directory!r} and openmp_threads={openmp_threads!r} apply to target='cpp_standalone' "
            f"only, got target={target!r}"
        )
    from brian2.devices.device import get_device, reset_device, runtime_device, set_device

    gc.collect()
    prefs = _Prefs()
    switched = False
    try:
        args = _set_compile_flags(prefs, compile_flags)
        if target == "cpp_standalone":
            if openmp_threads is not None:
                prefs.set("devices.cpp_standalone.openmp_threads", openmp_threads)
            options = {} if directory is None else {"directory": str(directory)}
            set_device("cpp_standalone", build_on_run=False, **options)
            switched = True
            yield "cpp_standalone"
        else:
            if get_device() is not runtime_device:
                set_device(runtime_device)
                switched = True
            with _loaded_modules(args):
                yield _runtime_target(prefs, target, cache_dir, compile_flags)
    finally:
        if switched:
            reset_device()  # back to the device active before set_device, with its build options
        prefs.restore()


_LOG = logging.getLogger("neuromod.spiking")


class CompileNotice:
    """Says that brian2 is compiling when building a network takes longer than `after_s` seconds.

    brian2 generates and compiles a network's code when its run starts; with a cold compile cache that
    takes minutes, which a progress bar at 0 % does not explain. Start the notice before ``Network.run``
    and call :meth:`done` from the run's first ``report`` callback (brian2 calls it once the network is
    built, before the first step): if the build is still going after `after_s`, a line says what is being
    compiled, how long that takes the first time and where the result is cached; :meth:`done` then says how
    long it took. Messages go to the ``neuromod.spiking`` logger (INFO) and, with ``echo``, to stderr
    where that logger would not show them (the command line shows them through the logger).
    """

    def __init__(
        self, what: str, *, first_time: str, cache: str | os.PathLike[str], echo: bool, after_s: float = 3.0
    ):
        import threading
        import time

        self._clock = time.perf_counter
        self._t0 = self._clock()
        self._what, self._first_time, self._cache, self._echo = what, first_time, str(cache), echo
        self.shown = False
        self._timer = threading.Timer(after_s, self._announce)
        self._timer.daemon = True
        self._timer.start()

    def _say(self, message: str) -> None:
        _LOG.info(message)
        if self._echo and not (_LOG.isEnabledFor(logging.INFO) and _LOG.hasHandlers()):  # else said once
            from tqdm.auto import tqdm

            tqdm.write(message, file=sys.stderr)

    def _announce(self) -> None:
        self.shown = True
        self._say(
            f"neuromod: brian2 is compiling {self._what} (Cython; {self._first_time} the first time, then "
            f"cached in {self._cache}) ..."
        )

    def done(self) -> None:
        """The build is over: stop the timer; report the time it took if the notice was shown."""
        if self._timer is None:
            return
        self._timer.cancel()
        self._timer.join()
        self._timer = None
        if self.shown:
            self._say(f"neuromod: compiled in {self._clock() - self._t0:.0f} s")
