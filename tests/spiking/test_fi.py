"""f-I sweeps: analytic LIF rate, mechanism signatures, reproducibility, schema, input checks, brian2 set-up.

Statistical checks allow ``Z`` standard errors (one-sided false-alarm rate 0.13 % per comparison), so they
hold for (almost) every seed; noise-free comparisons allow the resolution of the measurement (one time step
per interspike interval, one spike per window: ``same_dynamics_tolerance_hz``), never rounding noise.
"""

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
Z = 3.0  # standard errors allowed by every statistical check


def test_noise_free_lif_matches_analytic_rate(lif: LIFParams, window_s: float, lif_rate_analytic) -> None:
    dt_ms = 0.1
    ds = fi_sweep("none", [0.0], DRIVES, noise=False, dt_ms=dt_ms, seed=1)
    rate = ds.rate.sel(level=0.0, repeat=0).values
    ref = lif_rate_analytic(DRIVES, lif)
    band = (ref >= 5.0) & (ref <= 150.0)
    assert band.sum() >= 8
    # resolution of the simulation: a crossing is detected up to one step late (ISI longer by < dt, rate
    # lower by < r^2 dt); forward Euler shortens the approach to threshold by a factor 1 / (1 + dt / (2 tau))
    # to first order (rate higher by r dt / (2 tau)); the count in the window is exact to one spike
    dt_s, tau_s = dt_ms * 1e-3, lif.tau_m_ms * 1e-3
    tol = ref**2 * dt_s + ref * dt_s / (2.0 * tau_s) + 1.0 / window_s
    err = np.abs(rate - ref)
    assert np.all(err[band] <= tol[band]), f"max excess {np.max(err[band] - tol[band]):.3g} Hz"


@pytest.mark.parametrize("level", [0.4, 1.0])
def test_threshold_is_a_pure_shift_along_the_drive_axis(
    level: float, window_s: float, same_dynamics_tolerance_hz
) -> None:
    """r(I; m) = r(I - dI(m); 0): the same dynamics, so equal up to the resolution of the measurement."""
    d_i = float(drive_shift_na(level))
    shifted = fi_sweep("threshold", [level], DRIVES, noise=False, seed=1).rate.values.ravel()
    ref = fi_sweep("threshold", [0.0], DRIVES - d_i, noise=False, seed=1).rate.values.ravel()
    ok = ref > 5.0
    assert ok.sum() >= 8
    tol = same_dynamics_tolerance_hz(ref, 0.1, window_s)
    assert np.all(np.abs(shifted - ref)[ok] <= tol[ok]), np.abs(shifted - ref)[ok]
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
def test_input_gain_scales_the_drive(level: float, window_s: float, same_dynamics_tolerance_hz) -> None:
    """r(I; m) = r(g(m) I; 0): the same dynamics, so equal up to the resolution of the measurement."""
    g = float(input_gain_factor(level))
    mod = fi_sweep("input_gain", [level], DRIVES, noise=False, seed=1).rate.values.ravel()
    ref = fi_sweep("input_gain", [0.0], g * DRIVES, noise=False, seed=1).rate.values.ravel()
    ok = ref > 5.0
    assert ok.sum() >= 8
    tol = same_dynamics_tolerance_hz(ref, 0.1, window_s)
    assert np.all(np.abs(mod - ref)[ok] <= tol[ok]), np.abs(mod - ref)[ok]


@pytest.mark.parametrize("level", [0.0, 0.25, 1.0])
def test_input_gain_can_fall_below_the_unmodulated_efficacy(
    level: float, window_s: float, same_dynamics_tolerance_hz
) -> None:
    """With gain_min = 0.5, g(m) = 0.5 + m: r(I; m) = r(g(m) I) of the plain LIF, below it for m < 0.5."""
    mod = ModulationParams(gain_min=0.5, gain_max=1.5)
    g = float(input_gain_factor(level, modulation=mod))
    assert g == pytest.approx(0.5 + level)
    rate = fi_sweep("input_gain", [level], DRIVES, modulation=mod, noise=False, seed=1).rate.values.ravel()
    ref = fi_sweep("none", [0.0], g * DRIVES, noise=False, seed=1).rate.values.ravel()
    ok = ref > 5.0
    assert ok.sum() >= 4
    tol = same_dynamics_tolerance_hz(ref, 0.1, window_s)
    assert np.all(np.abs(rate - ref)[ok] <= tol[ok]), np.abs(rate - ref)[ok]
    if level < 0.5:  # below the unmodulated (plain LIF) curve wherever either fires
        plain = fi_sweep("none", [0.0], DRIVES, noise=False, seed=1).rate.values.ravel()
        fires = plain > 5.0
        assert np.all(rate[fires] < plain[fires] - 1.0 / window_s)


def test_leak_and_adaptation_change_excitability(window_s: float) -> None:
    """Less leak, more firing; adaptation, less firing: by more than one spike per window (noise-free)."""
    drives = np.array([0.8, 1.2])
    leak = fi_sweep("leak", [0.0, 1.0], drives, noise=False).rate
    assert np.all(leak.sel(level=1.0) - leak.sel(level=0.0) > 1.0 / window_s)
    adapt = fi_sweep("adaptation", [0.0, 1.0], drives, noise=False).rate
    assert np.all(adapt.sel(level=0.0) - adapt.sel(level=1.0) > 1.0 / window_s)


def test_same_seed_bit_identical_and_seed_matters(seed: int) -> None:
    kw = dict(n_repeats=4, duration_ms=400.0, transient_ms=100.0)
    a = fi_sweep("background", [0.0, 1.0], [0.4, 0.7], seed=seed, **kw)
    b = fi_sweep("background", [0.0, 1.0], [0.4, 0.7], seed=seed, **kw)
    xr.testing.assert_identical(a, b)
    c = fi_sweep("background", [0.0, 1.0], [0.4, 0.7], seed=seed + 1, **kw)
    assert not np.array_equal(a.n_spikes.values, c.n_spikes.values)
    # repeats are independent noise realisations
    assert a.n_spikes.sel(level=1.0, drive=0.7).std().item() > 0


def test_noise_generators_give_the_same_rates_within_their_standard_errors(seed: int) -> None:
    """The two generators are different numbers for one seed (recorded in attrs) but the same noise: near
    rheobase, where the rate is set by the noise, the mean rates over repeats agree within Z combined SE."""
    kw = dict(n_repeats=40, duration_ms=600.0, transient_ms=100.0, seed=seed)
    a = fi_sweep("none", [0.0], [0.45, 0.5, 0.55], **kw)
    b = fi_sweep("none", [0.0], [0.45, 0.5, 0.55], noise_generator="splitmix64", **kw)
    assert a.attrs["noise_generator"] == "lowbias32" and b.attrs["noise_generator"] == "splitmix64"
    assert not np.array_equal(a.n_spikes.values, b.n_spikes.values)
    ra, rb = a.rate.isel(level=0), b.rate.isel(level=0)
    se = np.sqrt((ra.var("repeat", ddof=1) + rb.var("repeat", ddof=1)) / kw["n_repeats"]).values
    diff = np.abs(ra.mean("repeat") - rb.mean("repeat")).values
    assert np.all(ra.mean("repeat").values > 1.0)  # noise-driven firing in every condition
    assert np.all(diff < Z * se), (diff, se)


def test_noise_statistics_free_membrane() -> None:
    """Hash noise: ISI CV near 1 (0.7-1.3) for noise-driven (sub-rheobase) firing, below 0.5 for
    suprathreshold drive, each within Z standard errors over the repeats; 0 without noise."""
    p = LIFParams(noise_mv=6.0)
    n_rep = 20
    ds = fi_sweep("none", [0.0], [0.35, 1.2], params=p, n_repeats=n_rep, seed=3)
    cv = ds.isi_cv.isel(level=0)
    mean = cv.mean("repeat").values
    se = cv.std("repeat", ddof=1).values / np.sqrt(n_rep)
    assert 0.7 - Z * se[0] < mean[0] < 1.3 + Z * se[0], (mean, se)
    assert mean[1] < 0.5 + Z * se[1], (mean, se)
    det = fi_sweep("none", [0.0], [1.2], noise=False)
    # every interval is the same number of steps, so the CV is 0 but for the rounding of the one-pass
    # variance (sum of x^2 - n mean^2, sums of n terms): |var| <= 3 n^2 eps mean^2 / (n - 1), first order
    n = det.n_spikes.item() - 1
    assert n >= 10
    assert det.isi_cv.item() <= np.sqrt(3.0 * n**2 * np.finfo(float).eps / (n - 1))


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


def test_numpy_target_matches_cython(same_dynamics_tolerance_hz) -> None:
    kw = dict(noise=False, duration_ms=300.0, transient_ms=50.0)
    a = fi_sweep("leak", [0.0, 1.0], [0.6, 1.0], target="numpy", **kw)
    b = fi_sweep("leak", [0.0, 1.0], [0.6, 1.0], target="cython", **kw)
    tol = same_dynamics_tolerance_hz(b.rate.values, 0.1, 0.25)
    assert np.all(np.abs(a.rate.values - b.rate.values) <= tol), (a.rate.values, b.rate.values)
    assert a.attrs["target"] == "numpy"


def test_seed_sequence_and_int_seed() -> None:
    """An int seed and the SeedSequence of that int give the same data; the attributes record the seed."""
    kw = dict(n_repeats=3, duration_ms=200.0, transient_ms=50.0)
    a = fi_sweep("background", [0.0, 1.0], [0.4, 0.7], seed=5, **kw)
    b = fi_sweep("background", [0.0, 1.0], [0.4, 0.7], seed=np.random.SeedSequence(5), **kw)
    xr.testing.assert_equal(a, b)
    assert a.attrs["seed"] == 5 and "seed_entropy" not in a.attrs
    assert b.attrs["seed"] == -1 and b.attrs["seed_entropy"] == "5" and b.attrs["seed_spawn_key"] == ""
    fresh = fi_sweep("background", [0.0], [0.4], **kw)  # None: fresh entropy, recorded
    assert int(fresh.attrs["seed_entropy"]) > 0


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
        (dict(noise_generator="xi"), ValueError, r"noise_generator='xi' is not one of"),
        (dict(params="lif"), TypeError, r"params must be a LIFParams"),
        (dict(seed=-3), ValueError, r"seed=-3 is outside"),
        (dict(seed="1"), TypeError, r"seed must be an integer"),
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
    with pytest.raises(ValueError, match=r"gain_min=-0.5 must be a finite number >= 0"):
        ModulationParams(gain_min=-0.5)
    with pytest.raises(ValueError, match=r"gain_min=2.5 must not exceed gain_max=2.0"):
        ModulationParams(gain_min=2.5)
    with pytest.raises(ValueError, match=r"bg_balance_mv=-75.0 must lie between e_i_mv=-70.0 and e_e_mv=0.0"):
        ModulationParams(bg_balance_mv=-75.0)
    assert set(MECHANISMS) == {"none", "input_gain", "leak", "threshold", "background", "adaptation"}


@pytest.mark.slow
def test_cpp_standalone_rerun_with_new_parameters_matches_cython(same_dynamics_tolerance_hz) -> None:
    """Build once, rerun with new levels and drives through run_args: the spikes of Cython (the same
    dynamics, compiled differently); brian2's preferences and device are restored after build and run."""
    from neuromod.spiking import StandaloneFISweep

    before = _brian2_state()
    kw = dict(noise=False, duration_ms=300.0, transient_ms=50.0)
    sweep = StandaloneFISweep("input_gain", [0.0, 1.0], [0.6, 1.0], threads=1, **kw)
    assert _brian2_state() == before
    first = sweep.run(seed=1)
    assert _brian2_state() == before
    ref1 = fi_sweep("input_gain", [0.0, 1.0], [0.6, 1.0], seed=1, **kw)
    tol = same_dynamics_tolerance_hz(ref1.rate.values, 0.1, 0.25)
    assert np.all(np.abs(first.rate.values - ref1.rate.values) <= tol)
    second = sweep.run(levels=[0.25, 0.5], drives_na=[0.7, 0.9], seed=2)
    ref2 = fi_sweep("input_gain", [0.25, 0.5], [0.7, 0.9], seed=2, **kw)
    tol = same_dynamics_tolerance_hz(ref2.rate.values, 0.1, 0.25)
    assert np.all(np.abs(second.rate.values - ref2.rate.values) <= tol)
    assert not np.array_equal(second.rate.values, first.rate.values)  # the new values took effect
    assert second.attrs["target"] == "cpp_standalone"
    with pytest.raises(ValueError, match=r"levels has shape \(3,\), expected \(2,\)"):
        sweep.run(levels=[0.0, 0.5, 1.0])


_PREF_KEYS = (
    "codegen.target",
    "codegen.runtime.cython.cache_dir",
    "codegen.runtime.cython.multiprocess_safe",
    "devices.cpp_standalone.openmp_threads",
)


def _brian2_state() -> tuple[dict, object]:
    """The brian2 preferences neuromod may change, and the active device."""
    import brian2
    from brian2.devices.device import get_device

    return {key: brian2.prefs[key] for key in _PREF_KEYS}, get_device()


def test_codegen_context_restores_preferences_and_device(tmp_path) -> None:
    import brian2

    from neuromod.spiking import codegen_context

    before = _brian2_state()
    with codegen_context("numpy", cache_dir=tmp_path) as used:
        assert used == "numpy" and brian2.prefs["codegen.target"] == "numpy"
        assert brian2.prefs["codegen.runtime.cython.cache_dir"].startswith(str(tmp_path))
    assert _brian2_state() == before
    with pytest.raises(RuntimeError, match="inside"), codegen_context("numpy"):
        raise RuntimeError("inside")  # restored after an error too
    assert _brian2_state() == before
    with codegen_context("cpp_standalone", directory=tmp_path / "project", openmp_threads=2) as used:
        assert used == "cpp_standalone" and brian2.get_device().__class__.__name__ == "CPPStandaloneDevice"
        assert brian2.prefs["devices.cpp_standalone.openmp_threads"] == 2
    assert _brian2_state() == before
    with pytest.raises(ValueError, match=r"openmp_threads=2 apply to target='cpp_standalone' only"):
        with codegen_context("cython", openmp_threads=2):
            pass
    with pytest.raises(ValueError, match=r"target='gpu' is not one of"):
        with codegen_context("gpu"):  # type: ignore[arg-type]
            pass


def test_entry_points_restore_preferences_and_keep_the_callers() -> None:
    import brian2

    before = _brian2_state()
    fi_sweep("none", [0.0], [0.5], duration_ms=50.0, transient_ms=10.0, seed=0)
    assert _brian2_state() == before
    old = brian2.prefs["codegen.target"]
    brian2.prefs["codegen.target"] = "numpy"  # the caller's own choice
    try:
        ds = fi_sweep("none", [0.0], [0.5], duration_ms=50.0, transient_ms=10.0, seed=0)
        assert brian2.prefs["codegen.target"] == "numpy"
    finally:
        brian2.prefs["codegen.target"] = old
    assert ds.attrs["target"] in ("cython", "numpy")  # neuromod's own default, cython where it compiles


def test_second_run_reuses_compiled_code() -> None:
    """The same network run again in this process compiles nothing (brian2 keeps compiled modules by code;
    the names of the groups, part of the code, stay the same)."""
    from neuromod._machine import DEFAULT_COMPILE_FLAGS, brian2_compile_args
    from neuromod.spiking import _codegen

    kw = dict(n_repeats=3, duration_ms=200.0, transient_ms=50.0)  # as in test_seed_sequence_and_int_seed
    first = fi_sweep("background", [0.0, 1.0], [0.4, 0.7], seed=0, **kw)
    if first.attrs["target"] != "cython":
        pytest.skip("no C compiler: the numpy target compiles nothing")
    loaded = _codegen._MODULES[brian2_compile_args(DEFAULT_COMPILE_FLAGS)]  # the flag set's module table
    n_modules = len(loaded)
    assert n_modules > 0
    fi_sweep("background", [0.0, 1.0], [0.4, 0.7], seed=1, **kw)
    assert len(loaded) == n_modules


def test_falls_back_to_numpy_with_a_warning_without_compiler(monkeypatch, tmp_path) -> None:
    import brian2

    from neuromod.spiking import _codegen, codegen_context

    def broken(*args, **kwargs):
        raise OSError("no C compiler")

    monkeypatch.setattr(_codegen, "_CYTHON_OK", {})
    monkeypatch.setattr(brian2.Network, "run", broken)
    with pytest.warns(RuntimeWarning, match="falling back to the .*numpy target"):
        with codegen_context("cython", cache_dir=tmp_path) as used:
            assert used == "numpy" and brian2.prefs["codegen.target"] == "numpy"
    monkeypatch.undo()
    monkeypatch.setattr(_codegen, "_CYTHON_OK", {})
    with codegen_context("cython") as used:
        assert used == "cython"


def test_cache_dir_per_worker(monkeypatch, tmp_path) -> None:
    from neuromod.spiking import default_cache_dir

    monkeypatch.setenv("NEUROMOD_BRIAN2_CACHE", str(tmp_path))
    monkeypatch.setenv("NEUROMOD_WORKER", "w3")
    path = default_cache_dir()
    assert path.parent.parent == tmp_path and path.name == "w3"
    assert default_cache_dir(tmp_path / "other").name == "w3"


def test_codegen_context_frees_names_held_by_reference_cycles() -> None:
    # a group kept alive only by a reference cycle still owns its name: without a collection the next
    # "nm_probe*" would be "nm_probe_1", whose generated code (and compile-cache key) differs
    import gc

    import brian2 as b2

    from neuromod.spiking import codegen_context

    class Holder:
        pass

    gc.disable()  # only codegen_context's own collection may free the cycle
    try:
        holder = Holder()
        holder.self = holder
        holder.group = b2.NeuronGroup(1, "v : 1", name="nm_probe*")
        assert holder.group.name == "nm_probe"
        del holder
        with codegen_context("numpy"):
            assert b2.NeuronGroup(1, "v : 1", name="nm_probe*").name == "nm_probe"
    finally:
        gc.enable()


def test_import_changes_nothing() -> None:
    """Importing neuromod.spiking changes no brian2 preference and not the device (fresh interpreter)."""
    import subprocess
    import sys

    code = (
        "import brian2\n"
        "from brian2.devices.device import get_device\n"
        "before = (brian2.prefs.as_file, get_device())\n"
        "import neuromod.spiking\n"
        "assert (brian2.prefs.as_file, get_device()) == before\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
