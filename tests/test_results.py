"""Tests for neuromod.results: provenance, validation, atomic save and load."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from neuromod import results


@pytest.mark.parametrize("suffix", [".nc", ".zarr"])
@pytest.mark.parametrize("kind", ["dataset", "tree"])
def test_round_trip_is_identical(tmp_path, result_ds, result_tree, suffix, kind):
    obj = result_ds if kind == "dataset" else result_tree
    path = results.save(obj, tmp_path / f"out{suffix}")
    back = results.load(path)
    assert type(back) is type(obj)
    if kind == "dataset":
        xr.testing.assert_identical(back, obj)
    else:
        xr.testing.assert_identical(back, obj)
        assert set(back.children) == {"rate", "spiking"}


@pytest.mark.parametrize("kind", ["dataset", "tree"])
def test_zarr_text_is_portable_and_silent(tmp_path, result_ds, kind):
    """Text coordinates and variables (numpy ``<U``) are written as zarr 3's variable-length strings, without
    the UnstableSpecificationWarning of fixed-width text, and read back with the same values."""
    import warnings

    text = result_ds.assign_coords(
        model=("model", ["se", "rate"], {"units": "1", "long_name": "model"})
    ).assign(label=("model", np.array(["a", "bcd"]), {"units": "1", "long_name": "label"}))
    obj = (
        text
        if kind == "dataset"
        else xr.DataTree.from_dict({"/": text, "/child": text.drop_attrs(deep=False)})
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        back = results.load(results.save(obj, tmp_path / "t.zarr"))
    xr.testing.assert_identical(back, obj)


def test_one_node_tree_stays_a_tree(tmp_path, result_ds):
    tree = xr.DataTree(result_ds)
    back = results.load(results.save(tree, tmp_path / "t.nc"))
    assert isinstance(back, xr.DataTree)
    xr.testing.assert_identical(back, tree)


def test_save_does_not_mutate_input(tmp_path, result_ds):
    before = result_ds.copy(deep=True)
    results.save(result_ds, tmp_path / "a.nc")
    xr.testing.assert_identical(result_ds, before)
    assert result_ds.attrs == before.attrs


def test_refuses_existing_path_unless_overwrite(tmp_path, result_ds):
    path = results.save(result_ds, tmp_path / "a.nc")
    with pytest.raises(FileExistsError, match=r"a\.nc.*overwrite"):
        results.save(result_ds, path)
    changed = result_ds.assign_attrs(title="second")
    results.save(changed, path, overwrite=True)
    assert results.load(path).attrs["title"] == "second"


@pytest.mark.parametrize("suffix", [".nc", ".zarr"])
def test_failed_write_leaves_nothing_and_keeps_old_file(tmp_path, result_ds, monkeypatch, suffix):
    path = tmp_path / f"a{suffix}"
    real_write = results._write

    def half_then_fail(obj, tmp, fmt):
        real_write(obj, tmp, fmt)  # a complete temporary file exists ...
        raise OSError("disk full")  # ... and then the write fails

    # 1. nothing at the path before: nothing after, and no temporary left behind
    monkeypatch.setattr(results, "_write", half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        results.save(result_ds, path)
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []

    # 2. an earlier file is left untouched by a failed overwrite
    monkeypatch.setattr(results, "_write", real_write)
    results.save(result_ds, path)
    monkeypatch.setattr(results, "_write", half_then_fail)
    changed = result_ds.assign_attrs(title="never written")
    with pytest.raises(OSError, match="disk full"):
        results.save(changed, path, overwrite=True)
    xr.testing.assert_identical(results.load(path), result_ds)
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def test_zarr_overwrite_replaces_store(tmp_path, result_ds):
    path = results.save(result_ds, tmp_path / "a.zarr")
    changed = result_ds.assign(rate=result_ds["rate"] * 0 + 7.0)
    changed["rate"].attrs = result_ds["rate"].attrs
    results.save(changed, path, overwrite=True)
    np.testing.assert_array_equal(results.load(path)["rate"].values, 7.0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.zarr"]


def test_invalid_object_is_not_written(tmp_path, result_ds):
    bad = result_ds.copy()
    bad["rate"].attrs = {"units": "Hz"}
    with pytest.raises(results.SchemaError, match="'rate' has no long_name"):
        results.save(bad, tmp_path / "a.nc")
    assert list(tmp_path.iterdir()) == []


def test_save_requires_provenance(tmp_path, result_ds):
    with pytest.raises(results.SchemaError, match=r"lacks the global attribute\(s\).*provenance"):
        results.save(result_ds.drop_attrs(deep=False), tmp_path / "a.nc")


def test_unknown_suffix(tmp_path, result_ds):
    with pytest.raises(ValueError, match=r"suffix '\.h5'.*\['\.nc', '\.zarr'\]"):
        results.save(result_ds, tmp_path / "a.h5")


@pytest.mark.parametrize(
    ("attrs", "match"),
    [
        ({"flag": True}, "global attribute 'flag' is a bool"),
        ({"cfg": {"a": 1}}, "global attribute 'cfg' is a dict"),
        ({"none": None}, "global attribute 'none' is None"),
        ({"nested": [[1, 2], [3, 4]]}, "not a flat list"),
    ],
)
def test_validate_rejects_unsafe_attrs(result_ds, attrs, match):
    with pytest.raises(results.SchemaError, match=match):
        results.validate(result_ds.assign_attrs(attrs))


def test_validate_lists_every_problem(result_tree):
    ds = result_tree["rate"].to_dataset(inherit=False)
    ds["rate"].attrs = {}
    ds["level"].attrs = {"units": "1"}
    bad = result_tree.copy()
    bad["rate"] = xr.DataTree(ds)
    with pytest.raises(results.SchemaError) as info:
        results.validate(bad)
    lines = str(info.value).splitlines()
    assert lines[0] == "2 schema problem(s):"
    assert lines[1].strip() == "group /rate: data variable 'rate' has no units or long_name attribute"
    assert lines[2].strip() == "group /rate: coordinate 'level' has no long_name attribute"


def test_validate_accepts_valid(result_ds, result_tree):
    assert results.validate(result_ds) is result_ds
    assert results.validate(result_tree) is result_tree


def test_provenance_contents():
    attrs = results.provenance({"seed": 3, "levels": (0.0, 1.0), "path": Path("x")}, title="t")
    assert set(results.REQUIRED_ATTRS) <= set(attrs)
    assert all(isinstance(v, str) for v in attrs.values())
    assert json.loads(attrs["config_json"]) == {"levels": [0.0, 1.0], "path": "x", "seed": 3}
    assert attrs["config_json"] == json.dumps(
        json.loads(attrs["config_json"]), sort_keys=True, separators=(",", ":")
    )
    for lib in ("neuromod", "brian2", "torch", "numpy"):
        assert lib in attrs["source"]
    assert attrs["history"].startswith(attrs["created"])
    assert attrs["created"].endswith("+00:00")


def test_provenance_rejects_unserialisable_config():
    with pytest.raises(TypeError, match="cannot store object value"):
        results.provenance({"x": object()}, title="t")
    with pytest.raises(ValueError, match="title=''"):
        results.provenance({}, title="")


def test_load_rejects_text_file(tmp_path):
    path = tmp_path / "notes.nc"
    path.write_text("just some text\n")
    with pytest.raises(results.ResultsError, match=r"notes\.nc.*not a readable netcdf file"):
        results.load(path)


def test_load_rejects_truncated_file(tmp_path, result_ds):
    path = results.save(result_ds, tmp_path / "a.nc")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(results.ResultsError, match="corrupt, truncated"):
        results.load(path)


def test_load_rejects_foreign_netcdf(tmp_path):
    path = tmp_path / "foreign.nc"
    xr.Dataset({"x": ("t", [1.0, 2.0])}).to_netcdf(path, engine="netcdf4")
    with pytest.raises(results.ResultsError, match=r"lacks the global attribute.*is it a neuromod result"):
        results.load(path)


def test_load_rejects_incompatible_schema(tmp_path, result_ds):
    path = tmp_path / "future.nc"
    result_ds.assign_attrs(schema_version="2.0").to_netcdf(path, engine="netcdf4")
    with pytest.raises(results.ResultsError, match=r"schema_version '2\.0'"):
        results.load(path)


@pytest.mark.parametrize("text", ["[1, 2]", '"a string"', "3"])
def test_load_rejects_config_json_that_is_not_an_object(tmp_path, result_ds, text):
    path = tmp_path / "odd.nc"
    result_ds.assign_attrs(config_json=text).to_netcdf(path, engine="netcdf4")
    with pytest.raises(
        results.ResultsError, match=r"config_json that is a JSON (list|str|int), not an object"
    ):
        results.load(path)


def test_load_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        results.load(tmp_path / "absent.nc")


def test_save_figure_atomic(tmp_path):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    path = results.save_figure(fig, tmp_path / "f.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(FileExistsError, match="overwrite"):
        results.save_figure(fig, path)
    plt.close(fig)


def test_accessor(result_ds, result_tree):
    import neuromod  # noqa: F401

    assert result_ds.nm.config == {"levels": [0.0, 0.5, 1.0], "seed": 0}
    assert result_ds.nm.provenance["title"] == "test result"
    assert result_ds.nm.validate() is result_ds
    assert result_tree.nm.models == ["rate", "spiking"]


def test_without_timestamps_drops_only_run_stamps(result_ds, result_tree):
    later = result_ds.assign_attrs(created="2099-01-01T00:00:00+00:00", history="2099: other command")
    xr.testing.assert_identical(results.without_timestamps(later), results.without_timestamps(result_ds))
    assert "created" in later.attrs  # the input is not modified
    changed = result_ds.assign_attrs(config_json='{"seed":1}')
    with pytest.raises(AssertionError):
        xr.testing.assert_identical(
            results.without_timestamps(changed), results.without_timestamps(result_ds)
        )
    stripped = results.without_timestamps(result_tree)
    assert "history" not in stripped.attrs and "config_json" in stripped.attrs


def test_written_files_follow_the_umask(tmp_path, result_ds):
    import os

    import matplotlib.pyplot as plt

    umask = os.umask(0o022)
    try:
        nc = results.save(result_ds, tmp_path / "a.nc")
        fig = plt.figure()
        png = results.save_figure(fig, tmp_path / "a.png")
        plt.close(fig)
    finally:
        os.umask(umask)
    for path in (nc, png):
        assert path.stat().st_mode & 0o777 == 0o644, path


# --------------------------------------------------------------------------------------------------------
# issue 16: a result that loads is whole; crashes leave the result at its path and no stray files
# --------------------------------------------------------------------------------------------------------
def _damage(store: Path, how: str) -> str:
    """Damage a saved tree the ways of issue 16 item 1; returns what the refusal must name."""
    import shutil

    if how == "chunks removed":
        shutil.rmtree(store / "rate" / "rate" / "c")
        return r"the data of 'rate' in group /rate do not match their checksum"
    if how == "group removed":
        shutil.rmtree(store / "spiking")
        return r"group /spiking is missing \(4 variables\)"
    if how == "variable removed":
        shutil.rmtree(store / "rate" / "responded")
        return r"variable 'responded' of group /rate is missing"
    raise AssertionError(how)


@pytest.mark.parametrize("how", ["chunks removed", "group removed", "variable removed"])
def test_damaged_zarr_is_refused_naming_what_is_missing(tmp_path, result_tree, how):
    path = results.save(result_tree, tmp_path / "good.zarr")
    message = _damage(path, how)
    with pytest.raises(results.ResultsError, match=rf"'.*good\.zarr' is damaged or was changed.*{message}"):
        results.load(path)


def test_changed_netcdf_data_are_refused(tmp_path, result_tree):
    import netCDF4

    path = results.save(result_tree, tmp_path / "r.nc")
    with netCDF4.Dataset(path, "r+") as nc:
        nc["rate"]["rate"][0, 0] = 99.0
    with pytest.raises(results.ResultsError, match=r"the data of 'rate' in group /rate do not match"):
        results.load(path)


def test_a_result_without_checksums_is_refused_and_an_old_one_warns(tmp_path, result_ds):
    path = tmp_path / "bare.nc"
    result_ds.to_netcdf(path, engine="netcdf4")  # schema 1.1 attributes, but not written by save
    with pytest.raises(results.ResultsError, match=r"has no checksums.*not written by neuromod.s save"):
        results.load(path)
    old = tmp_path / "old.nc"
    result_ds.assign_attrs(schema_version="1.0").to_netcdf(old, engine="netcdf4")
    with pytest.warns(UserWarning, match=r"schema 1\.0.*cannot be checked"):
        back = results.load(old)
    xr.testing.assert_identical(back, result_ds.assign_attrs(schema_version="1.0"))


def test_checksums_see_values_not_dtypes_of_text_and_nan(result_ds):
    """The digest of what is written equals that of what is read: NaN payloads and text widths aside."""
    nan = np.array([1.0, np.nan])
    other_nan = nan.copy()
    other_nan.view(np.uint64)[1] |= 1  # another NaN bit pattern
    assert results._digest(nan) == results._digest(other_nan)
    assert results._digest(np.array(["a", "bcd"])) == results._digest(np.array(["a", "bcd"], dtype=object))
    assert results._digest(np.array([1.0, 2.0])) != results._digest(np.array([1.0, 2.0 + 1e-15]))
    assert results._digest(np.zeros((2, 3))) != results._digest(np.zeros((3, 2)))


def test_validate_checks_the_global_attributes(result_ds, result_tree):
    """Issue 16 item 8: validate checks what the README says it checks (save refused it already)."""
    with pytest.raises(results.SchemaError, match=r"the result lacks the global attribute\(s\)"):
        results.validate(result_ds.drop_attrs(deep=False))
    with pytest.raises(results.SchemaError, match=r"schema_version '2\.0'"):
        tree = result_tree.copy()
        tree.attrs = {**result_tree.attrs, "schema_version": "2.0"}
        results.validate(tree)
    with pytest.raises(results.SchemaError, match="config_json that is a JSON list"):
        results.validate(result_ds.assign_attrs(config_json="[1]"))
    part = result_ds.drop_attrs(deep=False)
    assert results.validate(part, provenance=False) is part  # a measure's output, before it joins a result


_KILL_SCRIPT = """
import os, signal, sys
import xarray as xr
from neuromod import _files, results

path, when = sys.argv[1], sys.argv[2]
ds = xr.open_dataset(sys.argv[3]).load()  # the fixture's dataset, written by the test
ds.attrs["title"] = "second"
if when == "mid-swap":  # killed between moving the old store aside and renaming the new one in
    real = os.replace
    def replace(src, dst):
        if str(dst) == path and not os.path.exists(path):  # the old store has been moved aside
            os.kill(os.getpid(), signal.SIGKILL)
        return real(src, dst)
    os.replace = replace
elif when == "mid-write":  # killed with a complete temporary file and a figure rendered
    real_write = results._write
    def write(obj, tmp, fmt):
        real_write(obj, tmp, fmt)
        os.kill(os.getpid(), signal.SIGKILL)
    results._write = write
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
results.save(ds, path, overwrite=True, figure=plt.figure() if when == "mid-write" else None)
"""


def _killed_save(tmp_path, result_ds, path, when) -> None:
    import signal
    import subprocess
    import sys

    source = tmp_path / "source.nc"
    result_ds.to_netcdf(source)
    proc = subprocess.run(
        [sys.executable, "-c", _KILL_SCRIPT, str(path), when, str(source)], capture_output=True, text=True
    )
    source.unlink()
    assert proc.returncode == -signal.SIGKILL, proc.stderr


def test_zarr_overwrite_killed_mid_swap_is_recovered(tmp_path, result_ds):
    """Issue 16 item 3: SIGKILL between the two renames of a store's overwrite leaves nothing at the path;
    the next load (or write) puts the old store back."""
    path = results.save(result_ds, tmp_path / "a.zarr")
    _killed_save(tmp_path, result_ds, path, "mid-swap")
    assert not path.exists()  # the window the issue describes ...
    leftovers = sorted(p.name for p in tmp_path.iterdir())
    assert any(name.startswith(".a.zarr~neuromod-") and name.endswith(".old") for name in leftovers)
    xr.testing.assert_identical(results.load(path), result_ds)  # ... closed by the next load
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.zarr"]  # the new store's temporary too


def test_a_killed_write_leaves_temporaries_the_next_write_removes(tmp_path, result_ds):
    """Issue 16 item 5: temporaries are recognisably ours; stale ones (this machine, process gone) of the
    same output are removed by its next write; anything else is left alone."""
    from neuromod import _files

    path = tmp_path / "x.nc"
    _killed_save(tmp_path, result_ds, path, "mid-write")
    stale = sorted(p.name for p in tmp_path.iterdir())
    assert len(stale) == 2 and all(n.startswith((".x.nc~neuromod-", ".x.png~neuromod-")) for n in stale)
    assert all(n.endswith(".tmp") for n in stale)
    live = _files.temporary_name(path)  # this process's: not stale
    other_host = tmp_path / ".x.nc~neuromod-1-00000000-0badf00d.tmp"
    users = tmp_path / ".x.nc.backup"
    for keep in (live, other_host, users):
        keep.write_text("keep")
    import matplotlib.pyplot as plt

    fig = plt.figure()
    results.save(result_ds, path, figure=fig)  # as `neuromod run` writes its two files
    plt.close(fig)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [live.name, other_host.name, users.name, "x.nc", "x.png"]
    )


def test_provenance_records_the_machine():
    """Issue 16 (reproducibility): what the numbers depend on besides seed, config and versions."""
    import platform

    machine = json.loads(results.provenance({}, title="x")["machine"])
    assert machine["architecture"] == (platform.machine() or "unknown")
    assert {"cpu_model", "cpu_features", "libc", "libm_variant", "numpy_simd", "cxx", "numerics_env"} <= set(
        machine
    )
    assert results.provenance({}, title="x")["machine"] == results.provenance({}, title="y")["machine"]


def test_load_from_a_folder_that_refuses_changes_ignores_stale_temporaries(tmp_path, result_ds, monkeypatch):
    """A stale temporary that cannot be removed (a read-only folder) does not stop a load."""
    import subprocess
    import sys

    from neuromod import _files

    path = results.save(result_ds, tmp_path / "a.nc")
    code = "import os; print(os.getpid())"
    dead = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    stale = tmp_path / f".a.nc~neuromod-{int(dead.stdout)}-{_files._host()}-0badf00d.tmp"
    stale.write_text("x")  # made on this machine by a process that is gone: stale
    assert [entry for entry, _ in _files._leftovers(path)] == [stale]

    def refuse(entry):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(_files, "remove", refuse)
    xr.testing.assert_identical(results.load(path), result_ds)
    assert stale.exists()
