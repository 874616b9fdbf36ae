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
