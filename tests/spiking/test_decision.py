"""Decision circuit: psychometric and chronometric curves, sessions (schema, seeds, m0), input checks.

The closed loop of a session (event times, stimulus, response rule, modulator kinetics, independence of the
sessions) is tested in ``test_session_loop.py``.

Statistical checks allow ``Z`` standard errors (one-sided false-alarm rate 0.13 % per comparison), so they
hold for (almost) every seed, not for a chosen one.
"""

from __future__ import annotations

import brian2
import numpy as np
import pytest
import xarray as xr

from neuromod.spiking import DecisionParams, ModulationParams, simulate_decision, simulate_session

COHERENCES = [0.0, 12.8, 25.6, 51.2]
Z = 3.0  # standard errors allowed by every statistical check


@pytest.fixture(scope="module")
def psychometric() -> xr.Dataset:
    # 100 trials per coherence, all in one run; N = 200, dt = 0.2 ms keeps it at ~30 s on one core
    return simulate_decision(COHERENCES, n_trials=100, params=DecisionParams(n_total=200), dt_ms=0.2, seed=7)


def _binomial_se_of_difference(p1: np.ndarray, p2: np.ndarray, n: int) -> np.ndarray:
    """Standard error of ``p1 - p2``, proportions of `n` trials each, under equal proportions.

    The pooled proportion ``(p1 + p2) / 2`` is used (the standard two-proportion test): unlike
    ``sqrt(p1 (1 - p1) / n + p2 (1 - p2) / n)`` it does not vanish when one estimate is 0 or 1.
    """
    pooled = (p1 + p2) / 2.0
    return np.sqrt(pooled * (1.0 - pooled) * 2.0 / n)


@pytest.mark.slow
def test_psychometric_curve(psychometric: xr.Dataset) -> None:
    """Wang (2002) Fig. 2: chance at 0 %, rising with coherence, near-perfect at 51.2 % coherence."""
    n = psychometric.sizes["trial"]
    p = psychometric.correct.mean("trial").values
    assert abs(p[0] - 0.5) <= Z * np.sqrt(0.25 / n), p  # chance, within Z binomial SEs
    # monotone: no drop larger than Z SEs of the difference of neighbouring proportions
    drop = p[:-1] - p[1:]
    assert np.all(drop <= Z * _binomial_se_of_difference(p[:-1], p[1:], n)), (p, drop)
    assert p[-1] >= 0.9 - Z * np.sqrt(0.9 * 0.1 / n), p  # not significantly below 90 % correct
    timeouts, n_all = (psychometric.choice == 0).mean().item(), psychometric.choice.size
    assert timeouts <= 0.05 + Z * np.sqrt(0.05 * 0.95 / n_all), timeouts  # few: not above 5 %


@pytest.mark.slow
def test_chronometric_curve(psychometric: xr.Dataset) -> None:
    """Wang (2002) Fig. 2: decision time falls with coherence, by a factor of at least 1.3 over the range."""
    rt = psychometric.rt
    mean = rt.mean("trial", skipna=True).values
    se = (rt.std("trial", skipna=True, ddof=1) / np.sqrt(rt.count("trial"))).values
    # no significant rise between neighbouring coherences, a significant fall over the whole range
    rise = mean[1:] - mean[:-1]
    assert np.all(rise <= Z * np.hypot(se[1:], se[:-1])), (mean, se)
    assert mean[0] - mean[-1] > Z * np.hypot(se[0], se[-1]), (mean, se)
    # slowest / fastest not significantly below 1.3
    assert mean[0] - 1.3 * mean[-1] >= -Z * np.hypot(se[0], 1.3 * se[-1]), (mean, se)
    assert psychometric.rt.attrs["units"] == "ms"


@pytest.fixture(scope="module")
def session() -> tuple[xr.Dataset, dict]:
    kw = dict(
        release=np.array([[[1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 1.0], [1.0, 1.0, 0.0, 0.0]]] * 2),
        release_off=np.full((2, 4), 0.5),
        mechanism="input_gain",
        csi_ms=np.array([100.0, 40.0, 160.0]),
        rci_ms=200.0,
        max_rt_ms=300.0,
        params=DecisionParams(n_total=100, n_sensory=10),
        dt_ms=0.2,
        seed=11,
        record_dt_ms=5.0,
    )
    fa = np.array([[51.2, -51.2, 25.6], [0.0, 12.8, -25.6]])
    fb = np.array([[0.0, 0.0, 0.0], [-51.2, 25.6, 12.8]])
    return simulate_session(fa, fb, **kw), kw


def test_session_schema_and_choices(session) -> None:
    ds, kw = session
    assert ds.choice.dims == ("session", "trial")
    assert set(np.unique(ds.choice.values)) <= {0, 1, 2}
    decided = ds.choice.values > 0
    assert np.all(np.isfinite(ds.rt.values[decided]))
    assert np.all(np.isnan(ds.rt.values[~decided]))
    for name in list(ds.data_vars) + list(ds.coords):
        assert "units" in ds[name].attrs and "long_name" in ds[name].attrs, name
    assert list(ds.population.values) == ["a+", "a-", "b+", "b-"]
    assert ds.release.dims == ("session", "trial", "population")
    np.testing.assert_array_equal(ds.release.values, kw["release"])
    np.testing.assert_array_equal(ds.release_off.values, kw["release_off"])
    assert ds.release.attrs["long_name"] == "modulator release level u (target of m)"
    for name in ("csi_ms", "rci_ms", "stim_onset_ms", "cue_onset_ms", "response_ms"):
        assert ds[name].dims == ("session", "trial"), name
    np.testing.assert_array_equal(ds.csi_ms.values, np.broadcast_to(kw["csi_ms"], (2, 3)))
    for name in ("modulator", "input_rate", "sensory_rate"):
        assert ds[name].dims == ("session", "population", "time"), name
    assert ds.pool_rate.dims == ("session", "pool", "time")
    assert ds.attrs["seed"] == 11 and ds.attrs["max_rt_ms"] == 300.0


def test_session_same_seed_bit_identical(session) -> None:
    ds, kw = session
    again = simulate_session(ds.feature_a.values, ds.feature_b.values, **kw)
    xr.testing.assert_identical(ds, again)


def test_session_seed_sequence_is_its_int_seed(session) -> None:
    """A SeedSequence of an int gives the data of that int; the attributes record its entropy."""
    ds, kw = session
    seq = simulate_session(
        ds.feature_a.values, ds.feature_b.values, **{**kw, "seed": np.random.SeedSequence(11)}
    )
    xr.testing.assert_equal(ds, seq)
    assert seq.attrs["seed"] == -1 and seq.attrs["seed_entropy"] == "11"


def test_m0_is_the_modulator_at_time_zero(session) -> None:
    ds, kw = session
    m0 = np.array([[0.2, 0.4, 0.6, 0.8]])
    release = np.broadcast_to(m0[:, None, :], (1, 3, 4))  # u = m0 throughout, with and without a cue
    out = simulate_session(ds.feature_a.values[:1], **{**kw, "release": release, "release_off": m0, "m0": m0})
    # Euler keeps the fixed point m = u exactly (m + dt (u - m) / tau with u - m = 0)
    np.testing.assert_array_equal(out.modulator.values, np.broadcast_to(m0[..., None], out.modulator.shape))


def test_m0_defaults_to_release_off(session) -> None:
    ds, kw = session
    off = np.array([[0.1, 0.3, 0.5, 0.7]])
    out = simulate_session(
        ds.feature_a.values[:1], **{**kw, "release": kw["release"][:1], "release_off": off}
    )
    np.testing.assert_array_equal(out.modulator.values[:, :, 0], off)


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        (dict(release=np.zeros((1, 2, 3))), ValueError, r"release has shape \(1, 2, 3\), expected"),
        (dict(release=np.full((1, 2, 4), 2.0)), ValueError, r"release=.*outside the valid range"),
        (dict(m0=np.zeros((1, 3))), ValueError, r"m0 has shape \(1, 3\), expected \(1, 4\)"),
        (dict(m0=np.full((1, 4), -0.5)), ValueError, r"m0=.*outside the valid range"),
        (dict(mechanism="gain"), ValueError, r"mechanism='gain' is not one of"),
        (
            dict(release_off=np.zeros((1, 3))),
            ValueError,
            r"release_off has shape \(1, 3\), expected \(1, 4\)",
        ),
        (dict(release_off=np.full((1, 4), 1.5)), ValueError, r"release_off=.*outside the valid range"),
        (dict(dt_ms=1.0), ValueError, r"dt_ms=1.0 is too large"),
        (dict(dt_ms=0.3), ValueError, r"dt_ms=0.3 does not divide 1.0 ms"),
        (
            dict(params=DecisionParams(sens_in_hz=1e5), dt_ms=0.5),
            ValueError,
            r"sens_in_hz=100000.0 with dt_ms=0.5 gives up to 100 input events per step",
        ),
        (dict(csi_ms=0.5), ValueError, r"csi_ms=0.5 must be whole numbers of ms"),
        (dict(csi_ms=[100.0, 200.0, 300.0]), ValueError, r"csi_ms has shape \(3,\), expected"),
        (dict(csi_ms=np.zeros((2, 2))), ValueError, r"csi_ms has shape \(2, 2\), expected .*\(1, 2\)"),
        (dict(rci_ms=-1.0), ValueError, r"rci_ms=.*outside the valid range"),
        (dict(rci_ms=[0.5, 1.0]), ValueError, r"rci_ms=\[0.5, 1.0\] must be whole numbers of ms"),
        (dict(rci_ms=np.zeros((1, 3))), ValueError, r"rci_ms has shape \(1, 3\), expected"),
        (dict(max_rt_ms=100.5), ValueError, r"max_rt_ms=100.5 must be whole numbers of ms"),
        (dict(max_rt_ms=0.0), ValueError, r"max_rt_ms=0.0 must be"),
        (dict(record_dt_ms=0.0), ValueError, r"record_dt_ms=0.0 must be"),
        (dict(target="cpp_standalone"), ValueError, r"target='cpp_standalone' is not one of"),
        (dict(modulation=DecisionParams()), TypeError, r"modulation must be a ModulationParams"),
        (dict(params=ModulationParams()), TypeError, r"params must be a DecisionParams"),
        (dict(seed=-1), ValueError, r"seed=-1 is outside"),
        (
            dict(seed=1.5),
            TypeError,
            r"seed must be an int >= 0, a numpy.random.SeedSequence, None or a sequence",
        ),
    ],
)
def test_session_bad_input(kwargs: dict, exc: type, match: str) -> None:
    with pytest.raises(exc, match=match):
        simulate_session(np.zeros((1, 2)), **kwargs)


def test_decision_bad_input() -> None:
    with pytest.raises(ValueError, match=r"coherence_pct=.*outside the valid range"):
        simulate_decision(150.0, n_trials=2)
    with pytest.raises(ValueError, match=r"n_trials=0 is outside"):
        simulate_decision(0.0, n_trials=0)
    with pytest.raises(ValueError, match=r"settle_ms=50.5 must be whole numbers of ms"):
        simulate_decision(0.0, n_trials=2, settle_ms=50.5)
    with pytest.raises(ValueError, match=r"n_total=10 must be an integer >= 50"):
        DecisionParams(n_total=10)


def test_session_leaves_global_state_untouched(session) -> None:
    """Neither numpy's global random state nor brian2's preferences or device change."""
    from brian2.devices.device import get_device

    ds, kw = session
    prefs = {key: brian2.prefs[key] for key in ("codegen.target", "codegen.runtime.cython.cache_dir")}
    device = get_device()
    np.random.seed(123)  # noqa: NPY002 (the global state is what this test checks)
    expected = np.random.random(3)  # noqa: NPY002
    np.random.seed(123)  # noqa: NPY002
    one = {**kw, "release": kw["release"][:1], "release_off": kw["release_off"][:1]}
    simulate_session(ds.feature_a.values[:1], ds.feature_b.values[:1], **one)
    np.testing.assert_array_equal(np.random.random(3), expected)  # noqa: NPY002
    assert {key: brian2.prefs[key] for key in prefs} == prefs
    assert get_device() is device
