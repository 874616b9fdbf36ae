"""Code-generation set-up for brian2: target choice, per-worker compile cache, numpy fallback.

brian2 compiles every code object on first use (Cython target) and keeps the compiled modules in a cache
directory. neuromod gives each *worker process* its own cache directory (so parallel workers never contend for
the same files) that survives the process (so the cache is warm the next time the same worker starts):

* base directory: the ``cache_dir`` argument, else ``$NEUROMOD_BRIAN2_CACHE``, else
  ``$XDG_CACHE_HOME/neuromod/brian2`` (``~/.cache/neuromod/brian2``);
* per-worker subdirectory: ``<python>-<brian2 version>/<worker>``, where ``<worker>`` is
  ``$NEUROMOD_WORKER`` or ``$PYTEST_XDIST_WORKER`` or the Dask worker name, else ``"main"``.

Where no C compiler works the numpy target is used instead, with a :class:`RuntimeWarning`.
"""

from __future__ import annotations

import gc
import os
import re
import sys
import warnings
from pathlib import Path
from typing import Literal

from neuromod._checks import check_choice

__all__ = ["Target", "configure_codegen", "default_cache_dir", "worker_id"]

Target = Literal["cython", "numpy", "cpp_standalone"]
TARGETS: tuple[str, ...] = ("cython", "numpy", "cpp_standalone")

_STATE: dict[str, object] = {"cython_ok": None, "cache_dir": None}


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


def default_cache_dir(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Per-worker brian2 compile-cache directory (see the module docstring for the rules)."""
    import brian2

    if cache_dir is None:
        cache_dir = os.environ.get("NEUROMOD_BRIAN2_CACHE") or None
    if cache_dir is None:
        xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        cache_dir = os.path.join(xdg, "neuromod", "brian2")
    tag = f"py{sys.version_info.major}{sys.version_info.minor}-brian2-{brian2.__version__}"
    return Path(cache_dir) / tag / worker_id()


def _cython_works() -> bool:
    """Compile and run a one-neuron network once per process to see whether Cython works here."""
    if _STATE["cython_ok"] is None:
        import brian2 as b2

        try:
            group = b2.NeuronGroup(1, "dv/dt = -v/(10*ms) : 1", method="exact")
            net = b2.Network(group)
            net.run(0.2 * b2.ms, namespace={})
            _STATE["cython_ok"] = True
        except Exception as err:
            warnings.warn(
                f"brian2 could not compile Cython code ({type(err).__name__}: {err}); "
                "falling back to the (slower) numpy target",
                RuntimeWarning,
                stacklevel=3,
            )
            _STATE["cython_ok"] = False
    return bool(_STATE["cython_ok"])


def configure_codegen(target: Target = "cython", *, cache_dir: str | os.PathLike[str] | None = None) -> str:
    """Select the brian2 runtime code-generation target and the per-worker compile cache.

    Parameters
    ----------
    target : {"cython", "numpy", "cpp_standalone"}
        Requested target. ``"cpp_standalone"`` is handled by the callers that support it (f-I sweeps); here it
        only sets up the cache and the runtime target used for anything else.
    cache_dir : path, optional
        Base directory of the compile cache (default: ``$NEUROMOD_BRIAN2_CACHE`` or the user cache directory).

    Returns
    -------
    str
        The runtime target actually in use: ``"cython"`` or ``"numpy"`` (after a fallback).

    Examples
    --------
    >>> configure_codegen("numpy")
    'numpy'
    """
    check_choice("target", target, TARGETS)
    import brian2 as b2

    # brian2 objects of an earlier run that only reference cycles keep alive still hold their names, so a
    # new group named "decision_exc*" would become "decision_exc_1": the name is part of the generated code,
    # hence of the compile-cache key, and the whole network would compile again (about a minute). Collecting
    # them first lets every run in a process reuse the same names and the cached modules.
    gc.collect()

    path = default_cache_dir(cache_dir)
    if _STATE["cache_dir"] != str(path):
        path.mkdir(parents=True, exist_ok=True)
        b2.prefs.codegen.runtime.cython.cache_dir = str(path)
        b2.prefs.codegen.runtime.cython.multiprocess_safe = True
        _STATE["cache_dir"] = str(path)
        _STATE["cython_ok"] = None
    if target == "numpy":
        b2.prefs.codegen.target = "numpy"
        return "numpy"
    b2.prefs.codegen.target = "cython"
    if _cython_works():
        return "cython"
    b2.prefs.codegen.target = "numpy"
    return "numpy"
