"""The sweep file: points, seeds, zipped axes, strict checking and the spec's digest."""

from __future__ import annotations

import numpy as np
import pytest

from neuromod.config import ConfigError
from neuromod.sweep import SweepSpec
from neuromod.sweep.spec import _replicate_seed

PROBE = {"experiment": "sweep-probe", "seed": 5, "axes": {"value": [1.0, 2.0, 3.0], "n": [4, 8]}, "seeds": 2}


def test_points_are_the_row_major_product_with_replicates_innermost():
    spec = SweepSpec.from_dict(PROBE)
    assert spec.dims == ("value", "n", "replicate") and spec.shape == (3, 2, 2) and spec.n_points == 12
    points = spec.points()
    assert [p.index for p in points] == list(range(12))
    assert points[5].values == {"value": 2.0, "n": 4, "replicate": 1}
    assert points[5].config.value == 2.0 and points[5].config.n == 4
    assert np.ravel_multi_index(points[7].position, spec.shape) == 7


def test_seed_depends_on_the_sweep_seed_and_replicate_only():
    points = SweepSpec.from_dict(PROBE).points()
    # common random numbers: the same replicate has the same seed at every value of the axes
    assert {p.seed for p in points if p.values["replicate"] == 0} == {_replicate_seed(5, 0)}
    assert {p.seed for p in points if p.values["replicate"] == 1} == {_replicate_seed(5, 1)}
    assert _replicate_seed(5, 0) != _replicate_seed(5, 1) != _replicate_seed(6, 1)
    assert all(p.config.seed == p.seed for p in points)
    explicit = SweepSpec.from_dict({**PROBE, "seeds": [3, 11]})
    assert explicit.dims[-1] == "seed" and [p.seed for p in explicit.points()[:2]] == [3, 11]


def test_zipped_settings_move_together_on_one_dimension():
    spec = SweepSpec.from_dict(
        {
            "experiment": "sweep-probe",
            "zip": {"pair": {"value": [1.0, 2.0], "n": [3, 5]}},
            "axes": {"duration_s": [0.0, 0.01]},
        }
    )
    assert spec.dims == ("duration_s", "pair", "replicate") and spec.shape == (2, 2, 1)
    p = spec.points()[1]
    assert (p.config.value, p.config.n, p.values["pair"]) == (2.0, 5, 1)


def test_nested_tables_are_dotted_keys():
    spec = SweepSpec.from_dict(
        {
            "experiment": "task-switching",
            "fixed": {"models": ["rate"], "release": "default", "rate": {"noise_na": 0.03}},
            "axes": {"rate": {"drive_na": [0.25, 0.3]}},
        }
    )
    assert spec.dims == ("rate.drive_na", "replicate")
    configs = [p.config for p in spec.points()]
    assert [c.family("rate").drive_na for c in configs] == [0.25, 0.3]
    assert all(c.family("rate").noise_na == 0.03 and c.models == ("rate",) for c in configs)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"axse": {}}, "unknown key 'axse' (did you mean 'base' or 'axes'?)"),
        ({"experiment": 5}, "experiment=5; expected the name of an experiment"),
        ({"axes": {"value": []}}, "value=[] must be a non-empty list"),
        ({"axes": {"value": [1.0, 1.0]}}, "repeats a value"),
        ({"axes": {"seed": [1, 2]}}, "'seed' is reserved"),
        ({"fixed": {"seed": 1}}, "'seed' cannot be set per point"),
        ({"fixed": {"value": 1.0}}, "'value' is both fixed and swept"),
        ({"seeds": 0}, "seeds=0; expected a count >= 1"),
        ({"axes": {"duration_s": [0.0, -1.0]}}, "point 2 {'duration_s': -1.0, 'replicate': 0}"),
        ({"axes": {"valeu": [1.0]}}, "unknown key 'valeu' (did you mean 'value'?)"),
        ({"zip": {"z": {"value": [1.0, 2.0], "n": [3]}}, "axes": {}}, "lists of different lengths"),
    ],
)
def test_bad_sweeps_are_refused_naming_the_key(change, message):
    with pytest.raises(ConfigError) as err:
        SweepSpec.from_dict({**PROBE, **change})
    assert message in str(err.value)


def test_base_file_relative_to_the_sweep_file(tmp_path):
    (tmp_path / "base.toml").write_text('experiment = "sweep-probe"\nn = 3\nduration_s = 0.0\n')
    (tmp_path / "s.toml").write_text(
        'experiment = "sweep-probe"\nbase = "base.toml"\n[axes]\nvalue = [1.0]\n'
    )
    assert SweepSpec.from_toml(tmp_path / "s.toml").points()[0].config.n == 3
    (tmp_path / "base.toml").write_text('experiment = "decision"\n')
    with pytest.raises(ConfigError, match="configures 'decision', not 'sweep-probe'"):
        SweepSpec.from_toml(tmp_path / "s.toml")


def test_digest_follows_what_decides_the_results(tmp_path):
    digest = SweepSpec.from_dict(PROBE).digest
    assert SweepSpec.from_dict(dict(PROBE)).digest == digest
    assert SweepSpec.from_dict({**PROBE, "seed": 6}).digest != digest
    assert SweepSpec.from_dict({**PROBE, "fixed": {"duration_s": 0.5}}).digest != digest
    assert SweepSpec.from_dict({**PROBE, "axes": {"value": [1.0, 2.0], "n": [4, 8]}}).digest != digest
    # the content of the base file counts, not its name
    (tmp_path / "a.toml").write_text("n = 3\n")
    (tmp_path / "b.toml").write_text("n = 3\n")
    from_a = SweepSpec.from_dict({**PROBE, "axes": {"value": [1.0]}, "base": "a.toml"}, root=tmp_path)
    from_b = SweepSpec.from_dict({**PROBE, "axes": {"value": [1.0]}, "base": "b.toml"}, root=tmp_path)
    assert from_a.digest == from_b.digest


def test_from_toml_overrides_merge_tables_and_replace_the_rest(tmp_path):
    (tmp_path / "s.toml").write_text(
        'experiment = "sweep-probe"\nseeds = 3\n[fixed]\nn = 3\nduration_s = 0.5\n'
        "[axes]\nvalue = [1.0, 2.0]\n"
    )
    spec = SweepSpec.from_toml(tmp_path / "s.toml", fixed={"duration_s": 0.0}, seeds=1)
    assert spec.fixed == {"n": 3, "duration_s": 0.0} and spec.shape == (2, 1)
    spec = SweepSpec.from_toml(tmp_path / "s.toml", axes={"value": [5.0]})
    assert [p.config.value for p in spec.points()] == [5.0, 5.0, 5.0]
