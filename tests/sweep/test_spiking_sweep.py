"""A second sweep over the same spiking network compiles nothing new (brian2's compile cache, counted)."""

from __future__ import annotations

import pytest

from neuromod.sweep import Sweep, open_sweep


def _sweep(seed: int, levels: list[list[float]]) -> Sweep:
    """Spiking gain curves, modulation level x replicate: the same network at every point."""
    return Sweep.from_dict(
        {
            "experiment": "gain-curves",
            "seed": seed,
            "seeds": 2,
            "fixed": {
                "models": ["spiking"],
                "variants": {"spiking": ["input_gain"]},
                "n_drives": 5,
                "n_repeats": 2,
                "form": "threshold_linear",
                "spiking": {"fi_duration_ms": 150.0, "fi_transient_ms": 50.0},
            },
            "axes": {"levels": levels},
        }
    )


def _cache_files() -> set[str]:
    from neuromod.spiking._codegen import default_cache_dir

    root = default_cache_dir()
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()} if root.is_dir() else set()


@pytest.mark.slow
def test_second_spiking_sweep_compiles_nothing(tmp_path):
    first = _sweep(0, [[0.0, 1.0]]).run(tmp_path / "a.zarr", scheduler="serial", progress=False)
    assert first.complete
    before = _cache_files()
    assert before  # the first sweep compiled (or found) its code here
    # another seed, other levels: other numbers, the same generated code
    second = _sweep(7, [[0.0, 0.5], [0.0, 0.25]]).run(tmp_path / "b.zarr", scheduler="serial", progress=False)
    assert second.complete and len(second.submitted) == 4
    assert _cache_files() == before
    a, b = open_sweep(tmp_path / "a.zarr"), open_sweep(tmp_path / "b.zarr")
    assert a.index["seed"].values.tolist() != b.index["seed"].values.tolist()
