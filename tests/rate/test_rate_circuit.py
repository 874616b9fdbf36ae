"""The batched Wong-Wang decision circuit against independent references.

References: scipy's ``solve_ivp`` on the published equations (Wong & Wang 2006, eqs. in the
WongWang2006 docstring), binomial statistics for the psychometric function, the analytic modulator
solution, and the analytic steady-state f-I curves.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr
from numpy.testing import assert_allclose
from scipy.integrate import solve_ivp
from scipy.stats import binom

from neuromod.rate import (
    AbbottChance,
    Modulation,
    SensoryStage,
    Sigmoid,
    ThresholdLinear,
    WongWang2006,
    simulate_circuit,
    simulate_decision,
    simulate_modulator,
    steady_state_rate,
)

#: coherences of the psychometric/chronometric test (Wong & Wang 2006, Fig. 5; Roitman & Shadlen 2002)
COHERENCES = (0.0, 3.2, 6.4, 12.8, 25.6, 51.2)


@pytest.fixture(scope="module")
def psychometric_ds() -> xr.Dataset:
    """Noisy runs at the six standard coherences, 500 trials each (computed once per module)."""
    return simulate_decision(np.array(COHERENCES), n_trials=500, seed=12345)


def _published_rhs(t: float, s: np.ndarray, p: WongWang2006, c: float) -> np.ndarray:
    """The two-variable model written out from the paper (time in ms, rates in Hz)."""
    i_stim = p.j_ext_na_per_hz * p.mu0_hz * np.array([1 + c / 100, 1 - c / 100])
    x = p.j11_na * s - p.j12_na * s[::-1] + p.i0_na + i_stim
    y = p.a_hz_per_na * x - p.b_hz
    h = y / (1.0 - np.exp(-p.d_s * y))
    return -s / p.tau_s_ms + (1.0 - s) * p.gamma * h / 1000.0


@pytest.mark.parametrize("coherence", [0.0, 6.4, 25.6, -51.2])
def test_deterministic_matches_solve_ivp(params: WongWang2006, coherence: float) -> None:
    ds = simulate_decision(coherence, n_trials=1, dt_ms=0.1, max_rt_ms=1500.0, noise=False, record=True)
    t = ds.time.values
    ref = solve_ivp(
        _published_rhs,
        (0.0, t[-1]),
        [0.1, 0.1],
        args=(params, coherence),
        method="DOP853",
        t_eval=t,
        rtol=1e-10,
        atol=1e-12,
    )
    assert ref.success
    assert_allclose(ds.s1.isel(trial=0).values, ref.y[0], rtol=1e-3, atol=0)
    assert_allclose(ds.s2.isel(trial=0).values, ref.y[1], rtol=1e-3, atol=0)


def test_psychometric_and_chronometric(psychometric_ds: xr.Dataset) -> None:
    ds = psychometric_ds
    n = ds.sizes["trial"]
    assert n >= 500 and tuple(ds.coherence.values) == COHERENCES
    choice = ds.choice
    assert int((choice == 0).sum()) == 0  # every trial decides within 2 s
    # 0 %: P(choice 1) inside the 99 % binomial interval around 0.5
    k = int((choice.sel(coherence=0.0) == 1).sum())
    lo, hi = binom.interval(0.99, n, 0.5)
    assert lo <= k <= hi, f"{k} choices 1 of {n} at 0 % outside [{lo}, {hi}]"
    # accuracy rises monotonically to >= 0.95 at 51.2 %
    accuracy = (choice == 1).mean("trial").values[1:]
    assert np.all(np.diff(accuracy) >= 0), accuracy
    assert accuracy[-1] >= 0.95, accuracy
    # mean decision time falls with coherence: no step up beyond chance (one-sided 0.5 %: 2.576 standard
    # errors of the difference), and a fall at every step from 3.2 % on (0 -> 3.2 % is ~10 ms, ~1.5 SE at
    # 500 trials, so only its sign in expectation is the model's, not in every sample)
    mean_rt = ds.rt.mean("trial").values
    se = ds.rt.std("trial", ddof=1).values / np.sqrt(n)
    step = np.diff(mean_rt)
    assert np.all(step < 2.576 * np.hypot(se[1:], se[:-1])), (mean_rt, se)
    assert np.all(step[1:] < 0), mean_rt


def test_rt_is_first_threshold_crossing(params: WongWang2006) -> None:
    ds = simulate_decision(np.array([-12.8, 6.4, 25.6]), n_trials=8, seed=3, record=True, max_rt_ms=1500.0)
    rate = np.maximum(ds.r1, ds.r2).values
    above = rate >= params.threshold_hz
    first = np.where(above.any(-1), above.argmax(-1), -1)
    expected_rt = np.where(first >= 0, first * 0.5, np.nan)
    assert_allclose(ds.rt.values, expected_rt, rtol=0, atol=0)
    r1_first = np.take_along_axis(ds.r1.values, np.maximum(first, 0)[..., None], -1)[..., 0]
    r2_first = np.take_along_axis(ds.r2.values, np.maximum(first, 0)[..., None], -1)[..., 0]
    expected_choice = np.where(first < 0, 0, np.where(r1_first >= r2_first, 1, 2))
    assert np.array_equal(ds.choice.values, expected_choice)


def test_no_crossing_is_no_response() -> None:
    ds = simulate_decision(0.0, n_trials=3, noise=False)  # symmetric: never breaks symmetry
    assert ds.choice.values.tolist() == [0, 0, 0]
    assert np.all(np.isnan(ds.rt.values))
    short = simulate_decision(51.2, n_trials=50, max_rt_ms=50.0, seed=1)
    assert np.all(short.choice.values == 0) and np.all(np.isnan(short.rt.values))


def test_seed_reproducible_and_thread_independent() -> None:
    a = simulate_decision(np.array([3.2, 12.8]), n_trials=300, seed=7, max_rt_ms=500.0)
    b = simulate_decision(np.array([3.2, 12.8]), n_trials=300, seed=7, max_rt_ms=500.0)
    c = simulate_decision(np.array([3.2, 12.8]), n_trials=300, seed=8, max_rt_ms=500.0)
    xr.testing.assert_identical(a, b)
    assert not np.array_equal(a.rt.values, c.rt.values, equal_nan=True)
    base = 5.2e-4 * 30.0
    kw = {
        "duration_ms": 500.0,
        "onset_ms": np.zeros((1100, 1)),
        "seed": 5,
        "direct_na": np.full((1100, 1, 2), base),
    }
    one = simulate_circuit(n_threads=1, **kw)
    two = simulate_circuit(n_threads=2, **kw)
    assert np.array_equal(one.rt.values, two.rt.values, equal_nan=True)
    assert np.array_equal(one.choice.values, two.choice.values)


def test_sessions_with_resets_repeat_single_trials() -> None:
    """Deterministic session: trials with resets reproduce the isolated single-trial RTs."""
    single = simulate_decision(np.array([51.2, -25.6, 12.8]), n_trials=1, noise=False, max_rt_ms=1000.0)
    p = WongWang2006()
    cohs = [51.2, -25.6, 12.8]
    direct = np.array([[p.stimulus_na(c) for c in cohs]])
    onset = np.array([[0.0, 1000.0, 2000.0]])
    ds = simulate_circuit(
        duration_ms=3000.0, onset_ms=onset, input_ms=onset, direct_na=direct, reset_ms=onset, noise=False
    )
    assert_allclose(ds.rt.values[0], single.rt.values[:, 0], rtol=0, atol=1e-9)
    assert ds.choice.values[0].tolist() == [1, 2, 1]
    # without resets the second trial starts from the first trial's attractor: slower/other choice
    no_reset = simulate_circuit(
        duration_ms=3000.0, onset_ms=onset, input_ms=onset, direct_na=direct, noise=False
    )
    assert no_reset.rt.values[0, 0] == ds.rt.values[0, 0]
    assert not np.allclose(no_reset.rt.values[0, 1:], ds.rt.values[0, 1:], equal_nan=True)


def test_timeout_window() -> None:
    base = 5.2e-4 * 30.0
    direct = np.array([[[base * 1.512, base * 0.488]]])
    free = simulate_circuit(duration_ms=1000.0, onset_ms=[[0.0]], direct_na=direct, noise=False)
    rt = float(free.rt[0, 0])
    late = simulate_circuit(
        duration_ms=1000.0, onset_ms=[[0.0]], timeout_ms=[[rt]], direct_na=direct, noise=False
    )
    ok = simulate_circuit(
        duration_ms=1000.0, onset_ms=[[0.0]], timeout_ms=[[rt + 0.5]], direct_na=direct, noise=False
    )
    assert int(late.choice[0, 0]) == 0 and np.isnan(float(late.rt[0, 0]))
    assert int(ok.choice[0, 0]) == 1 and float(ok.rt[0, 0]) == rt


TRANSFERS = [
    ThresholdLinear(slope_hz_per_na=100.0, threshold_na=0.05),
    Sigmoid(max_rate_hz=60.0, midpoint_na=0.3, width_na=0.1),
    AbbottChance(),
]


@pytest.mark.parametrize("transfer", TRANSFERS, ids=lambda t: type(t).__name__)
@pytest.mark.parametrize("mode", ["response_gain", "input_gain", "threshold"])
def test_sensory_stage_matches_steady_state(transfer, mode: str) -> None:
    """Instantaneous modulators: the circuit equals one driven directly by the analytic rates."""
    stage = SensoryStage(transfer=transfer, modulation=Modulation(mode=mode), tau_ms=0.0)
    drive = np.array([[[0.45, 0.25, 0.35, 0.40]], [[0.30, 0.50, 0.60, 0.20]]])
    release = np.array([[[1.0, 1.0, 0.0, 0.0]], [[0.0, 0.5, 2.0, 0.0]]])
    rates = steady_state_rate(drive, release, transfer=transfer, modulation=stage.modulation)
    w = np.asarray(stage.weights)
    direct = 5.2e-4 * np.einsum("ip,bkp->bki", w, rates)
    kw = {"duration_ms": 300.0, "onset_ms": np.zeros((2, 1)), "noise": False, "record": True}
    got = simulate_circuit(
        drive_na=drive, release=release, sensory=stage, direct_na=np.zeros((2, 1, 2)), **kw
    )
    ref = simulate_circuit(direct_na=direct, **kw)
    for name in ("s1", "s2", "r1", "r2"):
        assert_allclose(got[name].values, ref[name].values, rtol=1e-12, atol=1e-12)


def test_modulator_runs_on_across_resets() -> None:
    stage = SensoryStage(tau_ms=(50.0, 100.0, 200.0, 0.0))
    dt = 0.5
    input_ms = np.array([[0.0, 300.0, 700.0]])
    release = np.array([[[1.0, 0.0, 0.5, 1.0], [0.0, 1.0, 0.5, 0.0], [0.5, 0.5, 2.0, 1.0]]])
    ds = simulate_circuit(
        duration_ms=1000.0,
        onset_ms=[[0.0, 500.0]],
        reset_ms=[[500.0]],
        input_ms=input_ms,
        direct_na=np.zeros((1, 3, 2)),
        drive_na=np.full((1, 3, 4), 0.2),
        release=release,
        sensory=stage,
        seed=0,
        m0=0.25,
        record=True,
    )
    steps = np.arange(2000) * dt
    u = release[0][np.searchsorted(input_ms[0], steps, side="right") - 1].T  # (4, n_steps)
    expected = simulate_modulator(u, dt_ms=dt, tau_ms=np.array(stage.tau_ms), m0=0.25)[:, :-1]
    expected[3] = u[3]  # tau = 0: the level equals the release at once (no one-step lag)
    assert_allclose(ds.modulator.isel(session=0).values, expected, rtol=1e-13, atol=1e-15)
    assert ds.modulator.dims == ("population", "session", "time")
    assert_allclose(ds.gain.values, 1.0 + ds.modulator.values, rtol=1e-15)  # default g = 1 + m
    assert ds.population.values.tolist() == ["a+", "a-", "b+", "b-"]


def test_schema_units_and_provenance(tmp_path) -> None:
    ds = simulate_decision(np.array([0.0, 12.8]), n_trials=4, seed=1, record=True, max_rt_ms=100.0)
    assert ds.choice.dims == ("coherence", "trial") and ds.s1.dims == ("coherence", "trial", "time")
    assert ds.choice.dtype == np.int8
    for name in list(ds.data_vars) + list(ds.coords):
        assert {"units", "long_name"} <= set(ds[name].attrs), name
    assert ds.rt.attrs["units"] == "ms" and ds.time.attrs["units"] == "ms"
    assert WongWang2006(**json.loads(ds.attrs["params_json"])) == WongWang2006()
    for value in ds.attrs.values():
        assert isinstance(value, (str, int, float)) and not isinstance(value, bool)
    ds.to_netcdf(tmp_path / "ww.nc", engine="netcdf4")
    scalar = simulate_decision(12.8, n_trials=2, seed=1, max_rt_ms=100.0)
    assert scalar.choice.dims == ("trial",) and float(scalar.coherence) == 12.8
    assert ds.attrs["max_rt_ms"] == 100.0 and "duration_ms" not in ds.attrs


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"dt_ms": -0.5}, ValueError, r"dt_ms=-0\.5 must be a finite number > 0"),
        ({"dt_ms": 1.5}, ValueError, r"dt_ms=1\.5 is too large .* tau_ampa_ms=2\.0"),
        ({"params": WongWang2006(tau_ampa_ms=0.5)}, ValueError, r"dt_ms <= 0\.5 \* tau_ampa_ms"),
        ({"coherence_pct": np.nan}, ValueError, r"coherence_pct must be finite"),
        ({"coherence_pct": 150.0}, ValueError, r"coherence_pct=.* outside the valid range"),
        ({"coherence_pct": np.zeros((2, 2))}, ValueError, r"coherence_pct must have 0 or 1 dim"),
        ({"n_trials": 0}, ValueError, r"n_trials=0 is outside the valid range \[1, inf\]"),
        ({"n_trials": 2.5}, TypeError, r"n_trials must be an integer"),
        ({"max_rt_ms": 100.25}, ValueError, r"max_rt_ms=100\.25 is not a positive multiple"),
        ({"max_rt_ms": -1.0}, ValueError, r"max_rt_ms=-1\.0 must be a finite number > 0"),
        ({"duration_ms": 100.0}, TypeError, r"unexpected keyword argument 'duration_ms'"),
        ({"s0": 1.5}, ValueError, r"s0=1\.5 is outside the valid range \[0, 1\]"),
        ({"params": "ww"}, TypeError, r"params must be a WongWang2006 instance"),
    ],
)
def test_decision_errors(kwargs: dict, error: type, match: str) -> None:
    args = {"coherence_pct": 0.0, "n_trials": 2, **kwargs}
    with pytest.raises(error, match=match):
        simulate_decision(**args)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"duration_ms": 100.25}, r"duration_ms=100\.25 is not a positive multiple of dt_ms=0\.5"),
        ({"duration_ms": 0.0}, r"duration_ms=0\.0 must be a finite number > 0"),
        ({"direct_na": np.zeros((3, 1, 2))}, r"direct_na has shape \(3, 1, 2\), expected \(2, \*, 2\)"),
        ({"onset_ms": [[0.0, 10.0], [0.0, 0.0]]}, r"onset_ms must increase strictly along each session"),
        ({"reset_ms": [[10.0, 5.0], [0.0, np.nan]]}, r"reset_ms must increase strictly along each session"),
        ({"timeout_ms": [[0.0], [50.0]]}, r"timeout_ms must be later than onset_ms for every trial"),
        ({"m0": [0.0, 1.0]}, r"m0 has 2 values, expected 1 or 0"),
        ({"onset_ms": [[0.0], [0.3]]}, r"onset_ms contains 0\.3 ms, which is not on the dt grid"),
        ({"onset_ms": [[0.0], [np.inf]]}, r"onset_ms must be finite"),
        (
            {"onset_ms": [[0.0, 50.0], [0.0, 20.0]], "timeout_ms": [[60.0, 90.0], [10.0, 30.0]]},
            r"timeout_ms must not be later than the next trial's onset_ms",
        ),
        ({"onset_ms": [[0.0], [200.0]]}, r"onset_ms contains 200\.0 ms, outside \[0, "),
        ({"drive_na": np.zeros((2, 1, 4))}, r"drive_na and release need a sensory stage"),
        ({"input_ms": [[5.0], [0.0]]}, r"input_ms must start at 0 ms"),
        ({"direct_na": np.full((2, 1, 2), np.nan)}, r"direct_na must be finite"),
        ({"record": True, "record_every_ms": 0.7}, r"record_every_ms=0\.7 is not a positive"),
        (
            {"sensory": SensoryStage(), "drive_na": np.zeros((2, 1, 3)), "release": np.zeros((2, 1, 4))},
            r"drive_na has shape \(2, 1, 3\), expected \(2, 1, 4\)",
        ),
    ],
)
def test_circuit_errors(kwargs: dict, match: str) -> None:
    args = {"duration_ms": 100.0, "onset_ms": [[0.0], [0.0]], "direct_na": np.zeros((2, 1, 2)), **kwargs}
    with pytest.raises(ValueError, match=match):
        simulate_circuit(**args)


def test_sensory_stage_errors() -> None:
    with pytest.raises(ValueError, match=r"weights has shape \(2, 3\), expected \(2, 4\)"):
        SensoryStage(weights=((1, 0, 1), (0, 1, 0)))
    with pytest.raises(ValueError, match=r"tau_ms=.* outside the valid range"):
        SensoryStage(tau_ms=-5.0)


def test_circuit_type_errors() -> None:
    kw = {"duration_ms": 100.0, "onset_ms": [[0.0]], "direct_na": np.zeros((1, 1, 2))}
    with pytest.raises(TypeError, match=r"sensory must be a SensoryStage, got dict"):
        simulate_circuit(sensory={}, drive_na=np.zeros((1, 1, 4)), release=np.zeros((1, 1, 4)), **kw)
    with pytest.raises(TypeError, match=r"noise must be a bool, got 1"):
        simulate_circuit(noise=1, **kw)
    with pytest.raises(TypeError, match=r"n_threads must be an integer"):
        simulate_circuit(n_threads=1.5, **kw)


def test_recording_interval_subsamples_every_step() -> None:
    """``record_every_ms`` keeps every k-th step of the every-step recording (sensory stage included)."""
    stage = SensoryStage(tau_ms=(20.0, 0.0, 50.0, 100.0), modulation=Modulation(mode="threshold"))
    kw = {
        "duration_ms": 300.0,
        "onset_ms": [[0.0, 150.0]],
        "input_ms": [[0.0, 150.0]],
        "reset_ms": [[150.0]],
        "direct_na": np.full((1, 2, 2), 0.01),
        "drive_na": np.full((1, 2, 4), 0.3),
        "release": [[[1.0, 0.0, 0.5, 2.0], [0.0, 1.0, 1.0, 0.0]]],
        "sensory": stage,
        "seed": 4,
        "record": True,
    }
    every = simulate_circuit(**kw)
    sparse = simulate_circuit(record_every_ms=1.5, **kw)
    assert sparse.sizes["time"] == 200 and every.sizes["time"] == 600
    xr.testing.assert_identical(sparse.time, every.time[::3])
    for name in ("s1", "s2", "r1", "r2", "modulator", "shift"):
        assert np.array_equal(sparse[name].values, every[name].isel(time=slice(None, None, 3)).values), name
    xr.testing.assert_identical(sparse.rt, every.rt)


def test_a_seed_sequence_passed_twice_gives_the_same_run():
    """The simulator spawns its block streams from a copy: the caller's SeedSequence is not advanced."""
    seed = np.random.SeedSequence(7)
    a = simulate_decision([0.0, 12.8], n_trials=30, seed=seed, max_rt_ms=500.0)
    b = simulate_decision([0.0, 12.8], n_trials=30, seed=seed, max_rt_ms=500.0)
    xr.testing.assert_identical(a, b)
    assert seed.n_children_spawned == 0
