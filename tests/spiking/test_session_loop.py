"""Closed-loop sessions of the decision circuit: event times, stimulus and cue, the response rule, the
modulator, independence of the sessions in one network, seeds; the spiking family's ``run_trials``.

Every check here is exact (to rounding) or has a bound derived below: the controller acts on a 1 ms grid
and the traces are sampled every 1 ms, on the same ticks and after the controller, so a recorded trace holds
the very values the controller read or wrote.
"""

from __future__ import annotations

import brian2
import numpy as np
import pytest
import xarray as xr

from neuromod.protocols import create_family
from neuromod.spiking import DecisionParams, ModulationParams, simulate_session
from neuromod.spiking._keyed import knoise_function, kpoisson_function, neuron_keys, nm_knoise, nm_kpoisson
from neuromod.tasks import CuedTaskSwitching

SMALL = DecisionParams(n_total=100, n_sensory=10)
MAX_RT = 600.0
DT = 0.2
EPS = np.finfo(float).eps
#: per session and trial; CSIs of 0 included (the stimulus comes with the cue)
RCI = np.array([[120.0, 60.0, 150.0, 90.0], [80.0, 140.0, 50.0, 110.0]])
CSI = np.array([[100.0, 0.0, 40.0, 160.0], [60.0, 120.0, 0.0, 30.0]])
FA = np.array([[100.0, -100.0, 51.2, -51.2], [-100.0, 100.0, 0.0, 51.2]])
FB = np.array([[0.0, 51.2, -51.2, 0.0], [25.6, -25.6, 100.0, 0.0]])
ON, OFF_A = np.array([1.0, 1.0, 0.0, 0.0]), np.array([0.0, 0.0, 1.0, 1.0])
RELEASE = np.array([[ON, OFF_A, ON, OFF_A], [OFF_A, ON, OFF_A, ON]])
RELEASE_OFF = np.array([[0.5, 0.5, 0.5, 0.5], [0.2, 0.4, 0.6, 0.8]])
KW = dict(mechanism="input_gain", max_rt_ms=MAX_RT, params=SMALL, dt_ms=DT, record_dt_ms=1.0, seed=5)


def _run(fa=FA, fb=FB, release=RELEASE, release_off=RELEASE_OFF, rci=RCI, csi=CSI, **kw) -> xr.Dataset:
    return simulate_session(
        fa, fb, release=release, release_off=release_off, rci_ms=rci, csi_ms=csi, **{**KW, **kw}
    )


@pytest.fixture(scope="module")
def loop() -> xr.Dataset:
    return _run()


@pytest.fixture(scope="module")
def silent() -> xr.Dataset:
    """No response is possible: the filtered rate of a pool stays below 1 / t_ref = 500 Hz (a cell fires
    at most once per refractory period), far below this threshold."""
    return simulate_session(
        [[51.2, -51.2, 0.0]],
        release=np.ones((1, 3, 4)),
        rci_ms=[20.0, 30.0, 40.0],
        csi_ms=[10.0, 0.0, 25.0],
        max_rt_ms=50.0,
        params=DecisionParams(n_total=100, n_sensory=10, threshold_hz=1e4),
        dt_ms=DT,
        record_dt_ms=1.0,
        seed=2,
    )


def _expected_times(ds: xr.Dataset, s: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cue onset, stimulus onset and end of the stimulus (ms) of session `s` from its intervals and its
    reaction times alone: cue k = end k-1 + RCI k (end -1 = 0), stimulus = cue + CSI, end = stimulus + RT
    (or + max_rt without a response)."""
    rt = ds.rt.values[s]
    held = np.where(np.isnan(rt), ds.attrs["max_rt_ms"], rt)
    end = np.cumsum(ds.rci_ms.values[s] + ds.csi_ms.values[s] + held)
    stim = end - held
    return stim - ds.csi_ms.values[s], stim, end


def _on_ms(ds: xr.Dataset, s: int) -> tuple[np.ndarray, np.ndarray]:
    """Sample times (ms, integers) of session `s` up to its end, and the trial whose stimulus is on at
    each (-1: none), from the expected times."""
    _, stim, end = _expected_times(ds, s)
    t = ds.time.values[ds.time.values <= end[-1]]
    trial = np.full(t.size, -1)
    for k in range(stim.size):
        trial[(t >= stim[k]) & (t < end[k])] = k
    return t, trial


def test_loop_has_responses_and_deadlines(loop: xr.Dataset) -> None:
    """The fixture exercises both ends of a trial (else the tests below would check less than they say)."""
    assert (loop.choice.values > 0).sum() >= 2
    assert np.all(np.isnan(loop.rt.values) == (loop.choice.values == 0))
    ok = np.isfinite(loop.rt.values)
    assert np.all((loop.rt.values[ok] >= 1.0) & (loop.rt.values[ok] <= MAX_RT))
    assert np.all(loop.rt.values[ok] == np.rint(loop.rt.values[ok]))  # the 1 ms grid


def test_event_times_follow_the_intervals_on_each_session_axis(loop: xr.Dataset) -> None:
    for s in range(loop.sizes["session"]):
        cue, stim, end = _expected_times(loop, s)
        np.testing.assert_array_equal(loop.cue_onset_ms.values[s], cue)
        np.testing.assert_array_equal(loop.stim_onset_ms.values[s], stim)
        np.testing.assert_array_equal(loop.response_ms.values[s], end)
    # the sessions' axes differ (their responses differ), each trace ends with its session
    ends = loop.response_ms.values[:, -1]
    assert ends[0] != ends[1]
    for s in range(2):
        defined = np.isfinite(loop.modulator.values[s, 0])
        np.testing.assert_array_equal(loop.time.values[defined], np.arange(ends[s] + 1))


def test_stimulus_is_on_from_onset_to_response_only(loop: xr.Dataset) -> None:
    """The input rate of each sensory pool is ``sens_in_hz (1 +/- c / 100)`` from stimulus onset up to the
    response (or deadline), 0 before the onset and from the response on (rounding of one product)."""
    signs = np.array([1.0, -1.0, 1.0, -1.0])
    for s in range(2):
        t, trial = _on_ms(loop, s)
        coh = np.stack([FA[s], FA[s], FB[s], FB[s]], axis=1) * signs / 100.0  # (trial, pool)
        expected = np.where(trial[:, None] >= 0, SMALL.sens_in_hz * (1.0 + coh[trial]), 0.0)
        got = loop.input_rate.values[s][:, : t.size].T
        np.testing.assert_allclose(got, expected, rtol=4 * EPS, atol=0.0)


def test_sensory_cells_are_silent_after_the_response(loop: xr.Dataset) -> None:
    """From 30 ms after a stimulus ends to the next onset, no sensory cell fires: each pool's filtered rate
    only decays, by exp(-1 ms / tau_r) per sample (a spike would add 1 / (n tau_r) = 5 Hz). 30 ms after its
    input stops a cell's mean potential is within E_L + 20 mV exp(-1.5) (reset to rest, tau_m = 20 ms),
    about 8 noise SDs (2 mV) below threshold."""
    decay = np.exp(-1.0 / SMALL.rate_tau_ms)
    checked = 0
    for s in range(2):
        _, stim, end = _expected_times(loop, s)
        for k in range(stim.size - 1):
            t = loop.time.values
            window = (t >= end[k] + 30.0) & (t < stim[k + 1])
            r = loop.sensory_rate.values[s][:, window]
            if r.shape[1] < 2:
                continue
            checked += 1
            excess = r[:, 1:] - r[:, :-1] * decay
            assert np.all(excess <= 1e-9 * SMALL.sens_in_hz), (s, k, excess.max())
        # while the stimulus was on, the pools did fire (the check above can fail)
        on = (loop.input_rate.values[s, 0] > 0) & np.isfinite(loop.input_rate.values[s, 0])
        assert np.nanmax(loop.sensory_rate.values[s][:, on]) > 20.0
    assert checked >= 4


def test_response_is_the_first_threshold_crossing_after_onset(loop: xr.Dataset) -> None:
    """RT = the first 1 ms sample after stimulus onset at which a pool's filtered rate is >= threshold;
    pool 1 wins a tie; without a crossing up to the deadline the trial ends there with choice 0."""
    th = SMALL.threshold_hz
    for s in range(2):
        _, stim, end = _expected_times(loop, s)
        r = loop.pool_rate.values[s]
        for k in range(stim.size):
            before = r[:, int(stim[k]) + 1 : int(end[k])]
            assert np.all(before < th), (s, k)
            at = r[:, int(end[k])]
            choice = loop.choice.values[s, k]
            if choice == 0:
                assert np.all(at < th) and end[k] - stim[k] == MAX_RT
            else:
                assert at[choice - 1] >= th and (choice == 1 or at[0] < th)


def test_modulator_follows_the_cues_in_closed_loop(loop: xr.Dataset) -> None:
    """m(t) is the forward-Euler solution of dm/dt = (u(t) - m) / tau for u = release[k] from cue k to
    response k and release_off otherwise (from m0 = release_off), with the cue times rebuilt from the
    intervals and the RTs. Rounding: each step adds a few ulps, earlier errors shrink by 1 - dt / tau, so the
    difference stays below 4 eps tau / dt (levels <= 1)."""
    tau = ModulationParams().tau_mod_ms
    per_ms = round(1.0 / DT)
    for s in range(2):
        cue, _, end = _expected_times(loop, s)
        n_ms = int(end[-1]) + 1
        u = np.broadcast_to(RELEASE_OFF[s], (n_ms, 4)).copy()
        for k in range(cue.size):
            u[int(cue[k]) : int(end[k])] = RELEASE[s, k]
        m = RELEASE_OFF[s].copy()
        ref = np.empty((n_ms, 4))
        for step in range(n_ms * per_ms - per_ms + 1):
            if step % per_ms == 0:
                ref[step // per_ms] = m
            m = m + DT * (u[step // per_ms] - m) / tau
        got = loop.modulator.values[s][:, :n_ms].T
        np.testing.assert_allclose(got, ref, rtol=0.0, atol=4 * EPS * tau / DT)
        # it moved: towards each cue's levels and back to release_off in the RCIs
        assert np.ptp(got[:, 0]) > 0.3


def test_trial_without_response_lasts_max_rt(silent: xr.Dataset) -> None:
    assert np.all(silent.choice.values == 0) and np.all(np.isnan(silent.rt.values))
    np.testing.assert_array_equal(silent.response_ms.values - silent.stim_onset_ms.values, 50.0)
    np.testing.assert_array_equal(silent.stim_onset_ms.values[0], [30.0, 110.0, 225.0])
    np.testing.assert_array_equal(silent.response_ms.values[0], [80.0, 160.0, 275.0])
    on = silent.input_rate.values[0, 0] > 0
    t = silent.time.values[on]
    for start in (30.0, 110.0, 225.0):
        np.testing.assert_array_equal(t[(t >= start) & (t < start + 50.0)], np.arange(start, start + 50.0))
    assert on.sum() == 150  # and nowhere else
    assert silent.time.values[-1] == 275.0  # the run ends with the last deadline


def test_first_sample_after_onset_and_ties() -> None:
    """With threshold 0 every sample is a crossing for both pools: the response comes at the first sample
    after onset (RT = 1 ms, the onset sample itself does not count) and pool 1 wins the tie."""
    ds = simulate_session(
        [[51.2, -51.2, 0.0]],
        rci_ms=[20.0, 30.0, 40.0],
        csi_ms=[10.0, 0.0, 25.0],
        max_rt_ms=50.0,
        params=DecisionParams(n_total=100, n_sensory=10, threshold_hz=0.0),
        dt_ms=DT,
        record_dt_ms=1.0,
        seed=2,
    )
    np.testing.assert_array_equal(ds.rt.values, 1.0)
    np.testing.assert_array_equal(ds.choice.values, 1)
    np.testing.assert_array_equal(ds.stim_onset_ms.values[0], [30.0, 61.0, 127.0])
    np.testing.assert_array_equal(ds.response_ms.values[0], [31.0, 62.0, 128.0])


def test_same_seed_identical_other_seed_differs(loop: xr.Dataset) -> None:
    xr.testing.assert_identical(loop, _run())
    other = _run(seed=6)
    assert not np.array_equal(other.pool_rate.values, loop.pool_rate.values, equal_nan=True)


def _session(ds: xr.Dataset, s: int) -> xr.Dataset:
    """Session `s` of `ds` on its own time axis (up to its last response), without the session index."""
    end = float(ds.response_ms.values[s, -1])
    return ds.isel(session=s, drop=True).sel(time=slice(0.0, end)).drop_attrs()


def test_sessions_do_not_influence_each_other(loop: xr.Dataset) -> None:
    """Session 0 alone = session 0 beside session 1; session 1 is unchanged when session 0's inputs (features,
    release, intervals) change, although the run's length and session 0's responses change."""
    alone = _run(FA[:1], FB[:1], RELEASE[:1], RELEASE_OFF[:1], RCI[:1], CSI[:1])
    xr.testing.assert_identical(_session(alone, 0), _session(loop, 0))
    fa, rel, rci = FA.copy(), RELEASE.copy(), RCI.copy()
    fa[0], rel[0], rci[0] = -FA[0], RELEASE[1], RCI[0] + 37.0
    changed = _run(fa=fa, release=rel, rci=rci)
    assert not np.array_equal(changed.response_ms.values[0], loop.response_ms.values[0])
    xr.testing.assert_identical(_session(changed, 1), _session(loop, 1))


def test_batch_equals_sessions_one_by_one(loop: xr.Dataset) -> None:
    """A batch with one seed per session gives each session exactly what it gives alone with its seed, at
    any position in the batch: session 1 of `loop` (seed 5's child 1) run alone first, then placed first in
    a batch in front of session 0."""
    seeds = np.random.SeedSequence(5).spawn(2)
    alone = _run(FA[1:], FB[1:], RELEASE[1:], RELEASE_OFF[1:], RCI[1:], CSI[1:], seed=[seeds[1]])
    swapped = _run(
        FA[::-1], FB[::-1], RELEASE[::-1], RELEASE_OFF[::-1], RCI[::-1], CSI[::-1], seed=seeds[::-1]
    )
    xr.testing.assert_identical(_session(alone, 0), _session(loop, 1))
    xr.testing.assert_identical(_session(swapped, 0), _session(loop, 1))
    xr.testing.assert_identical(_session(swapped, 1), _session(loop, 0))
    assert swapped.attrs["session_seeds"].count("/") == 2


@pytest.mark.parametrize(
    ("seed", "exc", "match"),
    [
        ([1], ValueError, r"seed has 1 entries, expected one per session \(2\)"),
        ("7", TypeError, "seed must be an int >= 0"),
        ([1, -2], ValueError, r"seed\[1\]"),
    ],
)
def test_session_seeds_checked(seed: object, exc: type, match: str) -> None:
    with pytest.raises(exc, match=match):
        _run(seed=seed)


def _keys(n: int, purpose: int = 3) -> tuple[np.ndarray, np.ndarray]:
    return neuron_keys(np.array([np.uint64(0x1234_5678_9ABC_DEF0 + purpose)]), n)


@pytest.mark.parametrize("lam", [0.0, 0.2, 0.8, 3.0])
def test_keyed_poisson_counts(lam: float) -> None:
    """Mean and variance of the keyed Poisson counts within Z = 4 standard errors of lam (SE of the mean
    sqrt(lam / n); of the sample variance sqrt((lam + 2 lam^2) / n) for a Poisson variable)."""
    n = 200_000
    hi, lo = _keys(n)
    k = nm_kpoisson(np.full(n, lam), hi, lo, 17)
    assert np.all(k == np.rint(k)) and k.min() >= 0
    if lam == 0.0:
        assert k.max() == 0
        return
    assert abs(k.mean() - lam) <= 4.0 * np.sqrt(lam / n)
    assert abs(k.var(ddof=1) - lam) <= 4.0 * np.sqrt((lam + 2 * lam**2) / n)


def test_keyed_noise_moments_and_independence() -> None:
    """Mean 0 and variance 1 (a uniform on [-sqrt 3, sqrt 3): SE of the variance sqrt(0.8 / n)), and no
    correlation between neighbouring neurons nor between consecutive steps of a neuron (SE 1 / sqrt(n));
    all within Z = 4."""
    n_cell, n_step = 2_000, 100
    hi, lo = _keys(n_cell, purpose=0)
    z = nm_knoise(hi[:, None], lo[:, None], np.arange(n_step)[None, :])
    n = z.size
    assert abs(z.mean()) <= 4.0 / np.sqrt(n)
    assert abs(z.var() - 1.0) <= 4.0 * np.sqrt(0.8 / n)
    across = np.mean(z[1:] * z[:-1])
    along = np.mean(z[:, 1:] * z[:, :-1])
    assert abs(across) <= 4.0 / np.sqrt(z[1:].size) and abs(along) <= 4.0 / np.sqrt(z[:, 1:].size)


def test_compiled_keyed_streams_match_numpy() -> None:
    """The Cython implementations draw the same numbers as the NumPy ones (same keys, same hash)."""
    from neuromod.spiking import codegen_context

    lam = np.linspace(0.0, 4.0, 50)
    hi, lo = _keys(lam.size)
    with codegen_context("cython") as used:
        group = brian2.NeuronGroup(
            lam.size,
            "total : 1\nnoise : 1\nlam : 1 (constant)\nhi : integer (constant)\nlo : integer (constant)",
            namespace={"nm_kpoisson": kpoisson_function(), "nm_knoise": knoise_function()},
            dt=0.1 * brian2.ms,
        )
        group.run_regularly(
            "total += nm_kpoisson(lam, hi, lo, t_in_timesteps)\nnoise += nm_knoise(hi, lo, t_in_timesteps)",
            dt=0.1 * brian2.ms,
        )
        group.lam, group.hi, group.lo = lam, hi, lo
        brian2.Network(group).run(2.0 * brian2.ms, namespace={})
        total, noise = np.asarray(group.total), np.asarray(group.noise)
    steps = np.arange(20)[None, :]
    expected = nm_kpoisson(lam[:, None], hi[:, None], lo[:, None], steps).sum(axis=1)
    assert used == "cython"
    np.testing.assert_array_equal(total, expected)
    # summed in another order than numpy's pairwise sum: 20 terms of magnitude <= sqrt(3)
    np.testing.assert_allclose(
        noise, nm_knoise(hi[:, None], lo[:, None], steps).sum(axis=1), rtol=0, atol=20 * 2 * 1.8 * EPS
    )


# -- the spiking family's session ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def family_session() -> tuple[xr.Dataset, CuedTaskSwitching]:
    from neuromod.protocols.families.spiking import SpikingConfig

    family = create_family("spiking", SpikingConfig(dt_ms=0.2))
    task = CuedTaskSwitching(
        n_trials=4, coherences_pct=(51.2,), csi_ms=(0.0, 50.0), rci_ms=100.0, max_rt_ms=300.0, seed=1
    )
    release = np.array([[1.0, 1.0, 0.2, 0.2], [0.2, 0.2, 1.0, 1.0]])
    ds = family.run_trials(
        task, release=release, tau_ms=100.0, decimate_ms=5.0, seed=np.random.SeedSequence(4)
    )
    return ds, task


def test_run_trials_closed_loop_layout(family_session) -> None:
    ds, task = family_session
    assert ds["choice"].dims == ("trial",) and ds.sizes["trial"] == 4
    np.testing.assert_array_equal(np.isnan(ds["rt"].values), ds["choice"].values == 0)
    # the task's own timeline for the model's RTs is the model's: onsets and the end of the time axis
    times = task.timeline(ds["rt"].values)
    np.testing.assert_array_equal(ds["stim_onset_ms"].values, times["stim_onset_ms"].values)
    assert ds["stim_onset_ms"].attrs["units"] == "ms"
    end = float(times["response_ms"].values[-1])
    np.testing.assert_array_equal(ds["time"].values, np.arange(0.0, end + 1e-9, 5.0))
    assert ds["gain"].dims == ("time", "population") and np.all(np.isfinite(ds["gain"].values))
    # the modulator starts at the no-cue level (the mean of the two contexts' release) and follows the cues
    np.testing.assert_allclose(ds["modulator"].values[0], 0.6, rtol=0.0, atol=4 * EPS)
    assert ds.attrs["decimate_ms"] == 5.0 and ds.attrs["mechanism"] == "input_gain"


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"rci_ms": 100.5}, r"rci_ms=100.5 must be whole numbers of ms"),
        ({"csi_ms": (0.5,)}, r"csi_ms=\(0.5,\) must be whole numbers of ms"),
        ({"max_rt_ms": 300.5}, r"max_rt_ms=300.5 must be whole numbers of ms"),
    ],
)
def test_run_trials_refuses_times_off_the_grid(change: dict, match: str) -> None:
    family = create_family("spiking")
    task = CuedTaskSwitching(
        **{"n_trials": 2, "csi_ms": (50.0,), "rci_ms": 100.0, "max_rt_ms": 300.0, **change}
    )
    with pytest.raises(ValueError, match=match):
        family.run_trials(
            task, release=np.ones((2, 4)), tau_ms=100.0, decimate_ms=5.0, seed=np.random.SeedSequence(0)
        )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"release": np.ones((4, 2))}, r"release has shape \(4, 2\), expected \(2, 4\)"),
        ({"release": np.full((2, 4), 1.5)}, r"release=.*outside the valid range"),
        ({"tau_ms": -1.0}, r"tau_ms=-1.0 must be"),
        ({"decimate_ms": 0.0}, r"decimate_ms=0.0 must be"),
    ],
)
def test_run_trials_bad_input(kwargs: dict, match: str) -> None:
    family = create_family("spiking")
    task = CuedTaskSwitching(n_trials=2, csi_ms=(50.0,), rci_ms=100.0, max_rt_ms=300.0)
    args = {"release": np.ones((2, 4)), "tau_ms": 100.0, "decimate_ms": 5.0, **kwargs}
    with pytest.raises(ValueError, match=match):
        family.run_trials(task, seed=np.random.SeedSequence(0), **args)
