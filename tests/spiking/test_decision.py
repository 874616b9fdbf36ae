"""Decision circuit: psychometric and chronometric curves, sessions, modulator kinetics, input checks."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from neuromod.spiking import DecisionParams, simulate_decision, simulate_session

COHERENCES = [0.0, 12.8, 25.6, 51.2]


@pytest.fixture(scope="module")
def psychometric() -> xr.Dataset:
    # 100 trials per coherence, all in one run; N = 200, dt = 0.2 ms keeps it at ~30 s on one core
    return simulate_decision(COHERENCES, n_trials=100, params=DecisionParams(n_total=200), dt_ms=0.2, seed=7)


@pytest.mark.slow
def test_psychometric_curve(psychometric: xr.Dataset) -> None:
    """Wang (2002) Fig. 2: chance at 0 %, near-perfect at 51.2 % coherence."""
    p_correct = psychometric.correct.mean("trial").values
    assert 0.35 <= p_correct[0] <= 0.65, p_correct  # 0.5 +- 3 binomial SDs for 100 trials
    assert np.all(np.diff(p_correct) >= -0.02), p_correct
    assert p_correct[-1] >= 0.9, p_correct
    assert (psychometric.choice == 0).mean().item() < 0.05  # few timeouts


@pytest.mark.slow
def test_chronometric_curve(psychometric: xr.Dataset) -> None:
    """Wang (2002) Fig. 2: decision time falls with coherence."""
    rt = psychometric.rt.mean("trial", skipna=True).values
    assert np.all(np.diff(rt) < 0), rt
    assert rt[0] > 1.3 * rt[-1], rt
    assert psychometric.rt.attrs["units"] == "ms"


@pytest.fixture(scope="module")
def session() -> tuple[xr.Dataset, dict]:
    kw = dict(
        modulation=np.array([[[1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 1.0], [1.0, 1.0, 0.0, 0.0]]] * 2),
        mechanism="input_gain",
        csi_ms=np.array([100.0, 40.0, 160.0]),
        reset_ms=200.0,
        max_rt_ms=300.0,
        params=DecisionParams(n_total=100, n_sensory=10),
        dt_ms=0.2,
        seed=11,
        stop_when_decided=False,
        record_dt_ms=5.0,
    )
    fa = np.array([[51.2, -51.2, 25.6], [0.0, 12.8, -25.6]])
    fb = np.array([[0.0, 0.0, 0.0], [-51.2, 25.6, 12.8]])
    return simulate_session(fa, fb, **kw), kw


def test_modulator_follows_first_order_kinetics_across_trials(session) -> None:
    """m(t) is the exact solution of dm/dt = (u(t) - m)/tau for the piecewise-constant cue schedule,
    carried over from trial to trial (the modulator is never reset)."""
    ds, kw = session
    tau = 100.0  # ModulationParams().tau_mod_ms
    trial_ms = kw["reset_ms"] + kw["csi_ms"] + kw["max_rt_ms"]  # per trial (the CSI varies)
    start = np.concatenate([[0.0], np.cumsum(trial_ms)[:-1]])
    np.testing.assert_array_equal(ds.stimulus_onset_ms.values, start + kw["reset_ms"] + kw["csi_ms"])
    np.testing.assert_array_equal(ds.csi_ms.values, kw["csi_ms"])
    t = ds.time.values
    u = kw["modulation"]  # (session, trial, pool)
    dt_grid = 0.01
    fine = np.arange(0.0, t[-1] + dt_grid, dt_grid)
    k = np.clip(np.searchsorted(start, fine, side="right") - 1, 0, u.shape[1] - 1)
    cue = (fine - start[k]) >= kw["reset_ms"]
    prev = np.concatenate([np.zeros((2, 1, 4)), u[:, :-1]], axis=1)
    target = np.where(cue[None, :, None], u[:, k], prev[:, k])  # (session, time, pool)
    m = np.zeros((2, 4))
    ref = np.empty((2, 4, fine.size))
    decay = np.exp(-dt_grid / tau)
    for n in range(fine.size):  # exact update for a constant target over one grid step
        ref[:, :, n] = m
        m = target[:, n] + (m - target[:, n]) * decay
    idx = np.round(t / dt_grid).astype(int)
    np.testing.assert_allclose(ds.modulator.values, ref[:, :, idx], atol=5e-3)
    # carried over: at the second cue the modulator of a+ is still well above 0
    t_cue2 = start[1] + kw["reset_ms"]
    assert ds.modulator.sel(population="a+").sel(time=t_cue2, method="nearest").min() > 0.5


def test_session_schema_and_choices(session) -> None:
    ds, _ = session
    assert ds.choice.dims == ("session", "trial")
    assert set(np.unique(ds.choice.values)) <= {0, 1, 2}
    decided = ds.choice.values > 0
    assert np.all(np.isfinite(ds.rt.values[decided]))
    assert np.all(np.isnan(ds.rt.values[~decided]))
    for name in list(ds.data_vars) + list(ds.coords):
        assert "units" in ds[name].attrs and "long_name" in ds[name].attrs, name
    assert list(ds.population.values) == ["a+", "a-", "b+", "b-"]


def test_session_same_seed_bit_identical(session) -> None:
    ds, kw = session
    again = simulate_session(ds.feature_a.values, ds.feature_b.values, **kw)
    xr.testing.assert_identical(ds, again)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(modulation=np.zeros((1, 2, 3))), r"modulation has shape \(1, 2, 3\), expected"),
        (dict(modulation=np.full((1, 2, 4), 2.0)), r"modulation=.*outside the valid range"),
        (dict(mechanism="gain"), r"mechanism='gain' is not one of"),
        (dict(dt_ms=1.0), r"dt_ms=1.0 is too large"),
        (dict(csi_ms=0.5), r"csi_ms=0.5 must be whole numbers of ms"),
        (dict(csi_ms=[100.0, 200.0, 300.0]), r"csi_ms has shape \(3,\), expected \(2,\)"),
    ],
)
def test_session_bad_input(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        simulate_session(np.zeros((1, 2)), **kwargs)


def test_session_csi_must_be_shared_by_sessions() -> None:
    with pytest.raises(ValueError, match=r"csi_ms must be the same in every session"):
        simulate_session(np.zeros((2, 2)), csi_ms=[[100.0, 200.0], [100.0, 300.0]])


def test_decision_bad_input() -> None:
    with pytest.raises(ValueError, match=r"coherence_pct=.*outside the valid range"):
        simulate_decision(150.0, n_trials=2)
    with pytest.raises(ValueError, match=r"n_trials=0 is outside"):
        simulate_decision(0.0, n_trials=0)
    with pytest.raises(ValueError, match=r"n_total=10 must be an integer >= 50"):
        DecisionParams(n_total=10)


def test_session_leaves_global_numpy_state_untouched(session) -> None:
    ds, kw = session
    np.random.seed(123)  # noqa: NPY002 (the global state is what this test checks)
    expected = np.random.random(3)  # noqa: NPY002
    np.random.seed(123)  # noqa: NPY002
    simulate_session(
        ds.feature_a.values[:1], ds.feature_b.values[:1], **{**kw, "modulation": kw["modulation"][:1]}
    )
    np.testing.assert_array_equal(np.random.random(3), expected)  # noqa: NPY002
