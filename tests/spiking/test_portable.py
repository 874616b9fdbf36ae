"""brian2's compile flags (``compile_flags``): set for a build and restored, cached apart, carried to the
worker processes, recorded, and refused when unknown.

Real builds here use the default flag set only (whose modules the other spiking tests compile): a cold
compile of the other set would take minutes; ``benchmarks/bench_portable.py`` builds both.
"""

from __future__ import annotations

import numpy as np
import pytest

from neuromod._machine import COMPILE_FLAGS, DEFAULT_COMPILE_FLAGS, brian2_compile_args
from neuromod.config import ConfigError
from neuromod.spiking import DecisionParams, codegen_context, fi_sweep, simulate_session

OTHER = next(f for f in COMPILE_FLAGS if f != DEFAULT_COMPILE_FLAGS)
_PREF_KEYS = (
    "codegen.cpp.extra_compile_args",
    "codegen.cpp.extra_compile_args_gcc",
    "codegen.cpp.extra_compile_args_msvc",
    "codegen.runtime.cython.cache_dir",
)


def _prefs() -> dict:
    import brian2

    return {key: brian2.prefs[key] for key in _PREF_KEYS}


def test_portable_flags_are_what_brian2_compiles_with_and_are_restored(tmp_path) -> None:
    import brian2
    from brian2.codegen.cpp_prefs import get_compiler_and_args

    custom = ["-O1", "-march=native"]  # a caller's own setting, to be put back
    old = brian2.prefs["codegen.cpp.extra_compile_args_gcc"]
    brian2.prefs["codegen.cpp.extra_compile_args_gcc"] = custom
    try:
        before = _prefs()
        with codegen_context("numpy", compile_flags="portable", cache_dir=tmp_path):
            _, args = get_compiler_and_args()  # what brian2 gives the compiler (flags it accepts)
            assert brian2.prefs["codegen.cpp.extra_compile_args"] is None
            assert brian2.prefs["codegen.runtime.cython.cache_dir"].startswith(str(tmp_path))
            assert "-portable" in brian2.prefs["codegen.runtime.cython.cache_dir"]
        bad = [f for f in args if f in ("-march=native", "-ffast-math")]
        assert not bad, f"portable build flags {args} hold {bad}"
        assert "-ffp-contract=off" in args
        assert _prefs() == before and brian2.prefs["codegen.cpp.extra_compile_args_gcc"] == custom
        with pytest.raises(RuntimeError, match="inside"), codegen_context("numpy", compile_flags="native"):
            assert brian2.prefs["codegen.cpp.extra_compile_args_gcc"] == list(brian2_compile_args("native"))
            raise RuntimeError("inside")
        assert _prefs() == before  # restored after an error too
    finally:
        brian2.prefs["codegen.cpp.extra_compile_args_gcc"] = old


def test_flag_sets_have_their_own_caches_on_disk_and_in_memory(tmp_path) -> None:
    from brian2.codegen.runtime.cython_rt.extension_manager import cython_extension_manager as manager

    from neuromod.spiking import default_cache_dir
    from neuromod.spiking._codegen import _MODULES

    dirs = {f: default_cache_dir(tmp_path, compile_flags=f) for f in COMPILE_FLAGS}
    assert dirs["portable"] != dirs["native"]
    assert {d.parent.parent for d in dirs.values()} == {tmp_path}
    assert dirs["portable"].name == dirs["native"].name  # the same worker
    own = manager._code_cache
    tables = {}
    for flags in COMPILE_FLAGS:
        with codegen_context("numpy", compile_flags=flags, cache_dir=tmp_path):
            tables[flags] = manager._code_cache
        assert manager._code_cache is own  # brian2's own table is back
    assert tables["portable"] is not tables["native"]
    assert all(tables[f] is _MODULES[brian2_compile_args(f)] for f in COMPILE_FLAGS)


def test_build_compiles_with_the_setting_and_second_run_compiles_nothing(monkeypatch) -> None:
    """The flags reach brian2's compiler calls; the same network again loads every module from memory."""
    from brian2.codegen.runtime.cython_rt.extension_manager import cython_extension_manager as manager

    from neuromod.spiking._codegen import _MODULES

    seen: list[tuple[str, ...]] = []
    create = manager.create_extension

    def spy(code, **kwargs):
        seen.append(tuple(kwargs.get("extra_compile_args") or ()))
        return create(code, **kwargs)

    monkeypatch.setattr(manager, "create_extension", spy)
    kw = dict(n_repeats=3, duration_ms=200.0, transient_ms=50.0)  # as in test_fi's compile-reuse test
    first = fi_sweep("background", [0.0, 1.0], [0.4, 0.7], seed=0, **kw)
    if first.attrs["target"] != "cython":
        pytest.skip("no C compiler: the numpy target compiles nothing")
    assert first.attrs["compile_flags"] == DEFAULT_COMPILE_FLAGS
    assert seen and all(set(args) <= set(brian2_compile_args(DEFAULT_COMPILE_FLAGS)) for args in seen)
    table = _MODULES[brian2_compile_args(DEFAULT_COMPILE_FLAGS)]
    n_modules = len(table)
    fi_sweep("background", [0.0, 1.0], [0.4, 0.7], seed=1, **kw)
    assert len(table) == n_modules


def _tiny_job(flags: str, seed: int) -> dict:
    """A one-trial session of the smallest circuit on the numpy target (nothing to compile)."""
    return {
        "feature_a_pct": np.array([[25.6]]),
        "feature_b_pct": np.array([[0.0]]),
        "release": np.ones((1, 1, 4)),
        "release_off": np.zeros((1, 4)),
        "mechanism": "input_gain",
        "csi_ms": 0.0,
        "rci_ms": 10.0,
        "max_rt_ms": 30.0,
        "params": DecisionParams(n_total=50),
        "dt_ms": 0.5,
        "seed": [np.random.SeedSequence(seed)],
        "record_dt_ms": 10.0,
        "target": "numpy",
        "compile_flags": flags,
    }


def test_setting_travels_to_worker_processes() -> None:
    """Two jobs in two ``python -m`` workers: each records the setting it was given (through the job's
    JSON), the non-default one included."""
    from neuromod.protocols.families._spiking_blocks import run_groups

    jobs = [_tiny_job(OTHER, 1), _tiny_job(OTHER, 2)]
    outs = run_groups(jobs, workers=2, progress=False, sizes=[1, 1])
    assert [o.attrs["compile_flags"] for o in outs] == [OTHER, OTHER]
    assert [o.attrs["target"] for o in outs] == ["numpy", "numpy"]


def test_family_passes_its_setting_and_records_the_flags() -> None:
    from neuromod.protocols import create_family
    from neuromod.protocols.families.spiking import SpikingConfig
    from neuromod.tasks.switching import CuedTaskSwitching

    family = create_family("spiking", SpikingConfig(compile_flags=OTHER))
    job = family._session_job(
        CuedTaskSwitching(seed=0, n_trials=2).trials(),
        np.array([[0, 1]]),
        [np.random.SeedSequence(0)],
        release=np.ones((2, 4)),
        modulation=family.config.modulation(),
        max_rt_ms=100.0,
        decimate_ms=10.0,
    )
    assert job["compile_flags"] == OTHER
    assert family.provenance() == {
        "brian2_compile_flags": OTHER,
        "brian2_compile_args": " ".join(brian2_compile_args(OTHER)),
    }
    assert SpikingConfig().compile_flags == DEFAULT_COMPILE_FLAGS


def test_unknown_compile_flags_are_refused_before_any_work(tmp_path) -> None:
    from neuromod.protocols.families.spiking import SpikingConfig
    from neuromod.spiking import StandaloneFISweep, simulate_decision

    match = r"compile_flags='fast' is not one of \['portable', 'native'\]"
    with pytest.raises(ValueError, match=match):
        fi_sweep("none", [0.0], [0.5], compile_flags="fast")
    with pytest.raises(ValueError, match=match):
        simulate_session(np.zeros((1, 1)), compile_flags="fast")
    with pytest.raises(ValueError, match=match):
        simulate_decision(0.0, n_trials=1, compile_flags="fast")
    with pytest.raises(ValueError, match=match):
        StandaloneFISweep("none", [0.0], [0.5], compile_flags="fast", directory=tmp_path)
    assert not any(tmp_path.iterdir())  # refused before the build
    with pytest.raises(ValueError, match=match), codegen_context("numpy", compile_flags="fast"):  # type: ignore
        pass
    with pytest.raises(ConfigError, match=match):
        SpikingConfig(compile_flags="fast")  # type: ignore[arg-type]
