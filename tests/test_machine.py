"""neuromod._machine: the machine record of a result and the brian2 compile flags of each setting."""

from __future__ import annotations

import json
import platform
import subprocess
import sys

import pytest

from neuromod import _machine
from neuromod._machine import COMPILE_FLAGS, DEFAULT_COMPILE_FLAGS, brian2_compile_args, machine_info

KEYS = {
    "architecture",
    "cpu_model",
    "cpu_features",
    "os",
    "libc",
    "libm_variant",
    "numpy_simd",
    "torch_cpu_capability",
    "numba_cpu",
    "brian2_compiler",
    "numerics_env",
}
X86_64 = platform.machine().lower() in ("x86_64", "amd64")
LINUX_GLIBC = sys.platform == "linux" and platform.libc_ver()[0] == "glibc"


def test_machine_info_is_a_deterministic_flat_record_of_strings() -> None:
    info = machine_info()
    assert set(info) == KEYS
    empty = [k for k, v in info.items() if not (isinstance(v, str) and v.strip())]
    assert not empty, f"empty or non-string values: {empty}"
    assert machine_info() == info  # nothing that changes from call to call (times, process ids)
    assert json.loads(json.dumps(info)) == info  # as the ``machine`` attribute stores it
    assert info["architecture"] == platform.machine()


@pytest.mark.skipif(not (X86_64 and LINUX_GLIBC), reason="reads /proc/cpuinfo of an x86-64 Linux")
def test_machine_info_reads_the_cpu_on_x86_64_linux() -> None:
    info = machine_info()
    names = [kv.split("=")[0] for kv in info["cpu_features"].split()]
    assert names == ["sse4_2", "avx", "avx2", "fma", "fma4", "avx512f"]
    assert all(kv.split("=")[1] in ("0", "1") for kv in info["cpu_features"].split())
    assert info["cpu_model"] not in ("", "unknown")
    assert info["libc"].startswith("glibc ")
    assert info["libm_variant"] in ("fma", "fma4", "sse2")


@pytest.mark.skipif(not (X86_64 and LINUX_GLIBC), reason="glibc's x86-64 libm dispatch")
@pytest.mark.parametrize(
    ("flags", "variant"),
    [
        ("sse4_2 avx avx2 fma", "fma"),
        ("sse4_2 avx fma", "sse2"),
        ("sse4_2 avx fma4", "fma4"),
        ("sse2", "sse2"),
    ],
)
def test_libm_variant_follows_glibcs_rule(monkeypatch, flags: str, variant: str) -> None:
    monkeypatch.setattr(_machine, "_cpuinfo", lambda: {"model name": "test cpu", "flags": flags})
    assert _machine._libm_variant() == variant


def test_libraries_are_read_only_where_imported() -> None:
    code = (
        "import json, sys; from neuromod._machine import machine_info; i = machine_info(); "
        "print(json.dumps([i['torch_cpu_capability'], i['brian2_compiler'], "
        "[m for m in ('torch', 'brian2', 'numba') if m in sys.modules]]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    torch_cap, compiler, imported = json.loads(out.stdout.strip().splitlines()[-1])
    assert (torch_cap, compiler, imported) == ("torch not imported", "brian2 not imported", [])
    torch = pytest.importorskip("torch")
    assert machine_info()["torch_cpu_capability"] == torch.backends.cpu.get_cpu_capability()


def test_numerics_environment_is_recorded(monkeypatch) -> None:
    monkeypatch.delenv("MKL_CBWR", raising=False)
    monkeypatch.delenv("ATEN_CPU_CAPABILITY", raising=False)
    before = machine_info()["numerics_env"]
    assert "MKL_CBWR" not in before
    monkeypatch.setenv("MKL_CBWR", "AVX2")
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "default")
    env = machine_info()["numerics_env"].split()
    assert "MKL_CBWR=AVX2" in env and "ATEN_CPU_CAPABILITY=default" in env


def test_portable_flags_are_baseline_without_fast_math_or_contraction() -> None:
    portable = brian2_compile_args("portable")
    assert "-ffp-contract=off" in portable
    forbidden = [
        f for f in portable if f in ("-ffast-math", "-march=native", "-mcpu=native", "-mtune=native")
    ]
    assert not forbidden, f"portable flags {portable} hold {forbidden}"
    if X86_64:
        assert "-march=x86-64-v2" in portable
    assert portable == brian2_compile_args("portable")


def test_native_flags_are_brian2s_default() -> None:
    from brian2.codegen.cpp_prefs import default_buildopts

    assert brian2_compile_args("native") == tuple(default_buildopts)
    assert DEFAULT_COMPILE_FLAGS in COMPILE_FLAGS


def test_unknown_compile_flags_are_refused() -> None:
    with pytest.raises(ValueError, match=r"compile_flags='fast' is not one of \['portable', 'native'\]"):
        brian2_compile_args("fast")


def test_compile_tags_name_the_setting_and_hash_its_flags(monkeypatch) -> None:
    tags = {f: _machine.compile_tag(f) for f in COMPILE_FLAGS}
    assert all(tags[f].startswith(f + "-") for f in COMPILE_FLAGS)
    assert len(set(tags.values())) == len(COMPILE_FLAGS)
    assert _machine.compile_tag("portable") == tags["portable"]
    # native code of another CPU goes elsewhere; portable code is the same on every CPU
    monkeypatch.setattr(_machine, "_cpuinfo", lambda: {"model name": "another cpu", "flags": "sse4_2"})
    assert _machine.compile_tag("native") != tags["native"]
    assert _machine.compile_tag("portable") == tags["portable"]
    monkeypatch.setattr(_machine, "brian2_compile_args", lambda flags: ("-O2",))
    assert _machine.compile_tag("portable") != tags["portable"]  # another flag list, another tag
