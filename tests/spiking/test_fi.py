"""f-I sweeps: analytic LIF rate, mechanism signatures, reproducibility, schema, input checks."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from neuromod.spiking import (
    MECHANISMS,
    LIFParams,
    ModulationParams,
    drive_shift_na,
    fi_sweep,
    input_gain_factor,
)

DRIVES = np.linspace(0.45, 1.6, 24)


def test_noise_free_lif_matches_analytic_rate(lif: LIFParams, window_s: float, lif_rate_analytic) -> None:
    ds = fi_sweep("none", [0.0], DRIVES, noise=False, dt_ms=0.1, seed=1)
    rate = ds.rate.sel(level=0.0, repeat=0).values
    ref = lif_rate_analytic(DRIVES, lif)
    band = (ref >= 5.0) & (ref <= 150.0)
    assert band.sum() >= 8
    tol = np.maximum(0.02 * ref, 1.0 / window_s)
    err = np.abs(rate - ref)
    assert np.all(err[band] <= tol[band]), f"max excess {np.max(err[band] - tol[band]):.3g} Hz"


@pytest.mark.parametrize("level", [0.4, 1.0])
def test_threshold_is_a_pure_shift_along_the_drive_axis(level: float) -> None:
    d_i = float(drive_shift_na(level))
    shifted = fi_sweep("threshold", [level], DRIVES, noise=False, seed=1).rate.values.ravel()
    ref = fi_sweep("threshold", [0.0], DRIVES - d_i, noise=False, seed=1).rate.values.ravel()
    ok = ref > 5.0
    assert ok.sum() >= 8
    np.testing.assert_allclose(shifted[ok], ref[ok], rtol=0.02)
    # and it is a real shift: the curve moved right by dI
    assert np.all(shifted[ok] < fi_sweep("none", [0.0], DRIVES[ok], noise=False).rate.values.ravel())


def test_raising_vth_alone_would_not_be_a_pure_shift(lif: LIFParams, lif_rate_analytic) -> None:
    """Why the mechanism shifts V_th and V_reset together: the analytic LIF with V_th + 5 mV only."""
    raised = LIFParams(v_th_mv=lif.v_th_mv + 5.0)
    drives = np.linspace(0.8, 1.6, 9)
    r_raised = lif_rate_analytic(drives, raised)
    r_shift = lif_rate_analytic(drives - 25e-3 * 5.0, lif)
    assert np.max(np.abs(r_raised / r_shift - 1.0)) > 0.05


@pytest.mark.parametrize("level", [0.5, 1.0])
def test_input_gain_scales_the_drive(level: float) -> None:
    g = float(input_gain_factor(level))
    mod = fi_sweep("input_gain", [level], DRIVES, noise=False, seed=1).rate.values.ravel()
    ref = fi_sweep("input_gain", [0.0], g * DRIVES, noise=False, seed=1).rate.values.ravel()
    ok = ref > 5.0
    assert ok.sum() >= 8
    np.testing.assert_allclose(mod[ok], ref[ok], rtol=0.03)


def _slope_hz_per_na(drives: np.ndarray, rate: np.ndarray) -> float:
    """Least-squares slope of the f-I curve over its 5-150 Hz part."""
    ok = (rate > 5.0) & (rate < 150.0)
    assert ok.sum() >= 4, rate
    return float(np.polyfit(drives[ok], rate[ok], 1)[0])


@pytest.mark.slow
def test_background_is_divisive(seed: int) -> None:
    drives = np.linspace(0.2, 1.4, 25)
    ds = fi_sweep("background", [0.0, 1.0], drives, n_repeats=20, seed=seed)
    mean = ds.rate.mean("repeat")
    s0 = _slope_hz_per_na(drives, mean.sel(level=0.0).values)
    s1 = _slope_hz_per_na(drives, mean.sel(level=1.0).values)
    assert s1 <= 0.8 * s0, f"slope ratio {s1 / s0:.3f} (need <= 0.8)"
    # noise-driven firing below rheobase (0.5 nA): the curve is smoothed, not just shifted right
    assert mean.sel(level=1.0, drive=0.4).item() > mean.sel(level=0.0, drive=0.4).item()


def test_leak_and_adaptation_change_excitability(seed: int) -> None:
    drives = np.array([0.8, 1.2])
    leak = fi_sweep("leak", [0.0, 1.0], drives, noise=False, seed=seed).rate
    assert np.all(leak.sel(level=1.0) > leak.sel(level=0.0))  # less leak, more firing
    adapt = fi_sweep("adaptation", [0.0, 1.0], drives, noise=False, seed=seed).rate
    assert np.all(adapt.sel(level=1.0) < 0.8 * adapt.sel(level=0.0))


def test_same_seed_bit_identical_and_seed_matters(seed: int) -> None:
    kw = dict(n_repeats=4, duration_ms=400.0, transient_ms=100.0)
    a = fi_sweep("background", [0.0, 1.0], [0.4, 0.7], seed=seed, **kw)
    b = fi_sweep("background", [0.0, 1.0], [0.4, 0.7], seed=seed, **kw)
    xr.testing.assert_identical(a, b)
    c = fi_sweep("background", [0.0, 1.0], [0.4, 0.7], seed=seed + 1, **kw)
    assert not np.array_equal(a.n_spikes.values, c.n_spikes.values)
    # repeats are independent noise realisations
    assert a.n_spikes.sel(level=1.0, drive=0.7).std().item() > 0


def test_noise_statistics_free_membrane() -> None:
    """Hash noise: ISI CV near 1 for noise-driven (sub-rheobase) firing, near 0 without noise."""
    p = LIFParams(noise_mv=6.0)
    ds = fi_sweep("none", [0.0], [0.35, 1.2], params=p, n_repeats=20, seed=3)
    cv_low = ds.isi_cv.sel(drive=0.35).mean().item()
    cv_high = ds.isi_cv.sel(drive=1.2).mean().item()
    assert 0.7 < cv_low < 1.3 and cv_high < 0.5
    det = fi_sweep("none", [0.0], [1.2], noise=False)
    assert det.isi_cv.item() < 1e-6


def test_dataset_schema_units_and_netcdf(tmp_path) -> None:
    ds = fi_sweep(
        "threshold", [0.0, 1.0], [0.6, 0.9], n_repeats=2, duration_ms=300.0, transient_ms=50.0, seed=0
    )
    assert ds.rate.dims == ("level", "drive", "repeat")
    for name in list(ds.data_vars) + list(ds.coords):
        assert "units" in ds[name].attrs and "long_name" in ds[name].attrs, name
    for name in ds.data_vars:
        assert ds[name].dtype.kind in "fi", name  # plain numbers, no brian2 Quantity
    assert ds.rate.attrs["units"] == "Hz" and ds.drive.attrs["units"] == "nA"
    assert '"threshold_shift_mv"' in ds.attrs["params_json"]
    ds.to_netcdf(tmp_path / "fi.nc", engine="netcdf4")
    xr.testing.assert_identical(xr.load_dataset(tmp_path / "fi.nc"), ds)


def test_numpy_target_matches_cython() -> None:
    kw = dict(noise=False, duration_ms=300.0, transient_ms=50.0)
    a = fi_sweep("leak", [0.0, 1.0], [0.6, 1.0], target="numpy", **kw)
    b = fi_sweep("leak", [0.0, 1.0], [0.6, 1.0], target="cython", **kw)
    np.testing.assert_array_equal(a.n_spikes.values, b.n_spikes.values)
    assert a.attrs["target"] == "numpy"


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        (dict(mechanism="gian"), ValueError, r"mechanism='gian' is not one of"),
        (dict(levels=[0.0, 1.5]), ValueError, r"levels=.*outside the valid range \[0, 1\]"),
        (dict(levels=[-0.1]), ValueError, r"levels=.*outside the valid range"),
        (dict(dt_ms=1.0), ValueError, r"dt_ms=1.0 is too large"),
        (dict(transient_ms=1000.0), ValueError, r"transient_ms=1000.0 must be shorter"),
        (dict(n_repeats=0), ValueError, r"n_repeats=0 is outside"),
        (dict(drives_na=[[0.1]]), ValueError, r"drives_na must have 1 dimension"),
        (dict(target="gpu"), ValueError, r"target='gpu' is not one of"),
        (dict(params="lif"), TypeError, r"params must be a LIFParams"),
    ],
)
def test_bad_input_is_rejected_first(kwargs: dict, exc: type, match: str) -> None:
    args = dict(mechanism="input_gain", levels=[0.0, 1.0], drives_na=[0.5])
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        fi_sweep(args.pop("mechanism"), args.pop("levels"), args.pop("drives_na"), **args)


def test_parameter_dataclasses_validate() -> None:
    with pytest.raises(ValueError, match=r"v_reset_mv=-45.0 must be below v_th_mv=-50.0"):
        LIFParams(v_reset_mv=-45.0)
    with pytest.raises(ValueError, match=r"gain_max=0.0 must be a finite number > 0"):
        ModulationParams(gain_max=0.0)
    assert set(MECHANISMS) == {"none", "input_gain", "leak", "threshold", "background", "adaptation"}


@pytest.mark.slow
def test_cpp_standalone_rerun_with_new_parameters_matches_cython() -> None:
    """Build once, rerun with new levels and drives through run_args: same spikes as Cython."""
    from neuromod.spiking import StandaloneFISweep

    kw = dict(noise=False, duration_ms=300.0, transient_ms=50.0)
    sweep = StandaloneFISweep("input_gain", [0.0, 1.0], [0.6, 1.0], **kw)
    first = sweep.run(seed=1)
    ref1 = fi_sweep("input_gain", [0.0, 1.0], [0.6, 1.0], seed=1, **kw)
    np.testing.assert_array_equal(first.n_spikes.values, ref1.n_spikes.values)
    second = sweep.run(levels=[0.25, 0.5], drives_na=[0.7, 0.9], seed=2)
    ref2 = fi_sweep("input_gain", [0.25, 0.5], [0.7, 0.9], seed=2, **kw)
    np.testing.assert_array_equal(second.n_spikes.values, ref2.n_spikes.values)
    assert second.attrs["target"] == "cpp_standalone"
    with pytest.raises(ValueError, match=r"levels has shape \(3,\), expected \(2,\)"):
        sweep.run(levels=[0.0, 0.5, 1.0])


def test_falls_back_to_numpy_with_a_warning_without_compiler(monkeypatch) -> None:
    import brian2

    from neuromod.spiking import _codegen

    def broken(*args, **kwargs):
        raise OSError("no C compiler")

    monkeypatch.setitem(_codegen._STATE, "cython_ok", None)
    monkeypatch.setattr(brian2.Network, "run", broken)
    with pytest.warns(RuntimeWarning, match="falling back to the .*numpy target"):
        assert _codegen.configure_codegen("cython") == "numpy"
    monkeypatch.undo()
    _codegen._STATE["cython_ok"] = None
    assert _codegen.configure_codegen("cython") == "cython"


def test_cache_dir_per_worker(monkeypatch, tmp_path) -> None:
    from neuromod.spiking import default_cache_dir

    monkeypatch.setenv("NEUROMOD_BRIAN2_CACHE", str(tmp_path))
    monkeypatch.setenv("NEUROMOD_WORKER", "w3")
    path = default_cache_dir()
    assert path.parent.parent == tmp_path and path.name == "w3"
    assert default_cache_dir(tmp_path / "other").name == "w3"


def test_configure_codegen_frees_names_held_by_reference_cycles() -> None:
    # a group kept alive only by a reference cycle still owns its name: without a collection the next
    # "nm_probe*" would be "nm_probe_1", whose generated code (and compile-cache key) differs
    import gc

    import brian2 as b2

    from neuromod.spiking import _codegen

    class Holder:
        pass

    gc.disable()  # only configure_codegen's own collection may free the cycle
    try:
        holder = Holder()
        holder.self = holder
        holder.group = b2.NeuronGroup(1, "v : 1", name="nm_probe*")
        assert holder.group.name == "nm_probe"
        del holder
        _codegen.configure_codegen("numpy")
        assert b2.NeuronGroup(1, "v : 1", name="nm_probe*").name == "nm_probe"
    finally:
        gc.enable()
