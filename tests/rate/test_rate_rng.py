"""The in-kernel normal generator (xoshiro256++ streams, ziggurat) and the noise it drives.

Statistical tolerances: a fixed seed makes every check deterministic; the bounds are ``Z = 4.5`` standard
errors of the statistic at the sample size (two-sided chance of a false alarm ~7e-6 per check for a correct
generator), so a failure means a real departure, not an unlucky seed.
"""

from __future__ import annotations

import numba
import numpy as np
import pytest
from numpy.testing import assert_array_equal
from scipy import stats

from neuromod.rate import _rng, circuit, simulate_circuit, simulate_decision
from neuromod.rate.params import WongWang2006

Z = 4.5  #: standard errors allowed
N_COND, N_STEPS = 1024, 500  #: 1,024,000 normals


@pytest.fixture(scope="module")
def sample() -> np.ndarray:
    """``(N_STEPS, 2, N_COND)`` normals of the kernels' streams for one key."""
    return _rng.normals(_rng.stream_key(np.random.SeedSequence(20060125)), N_COND, N_STEPS)


def test_moments_match_the_standard_normal(sample: np.ndarray) -> None:
    x = sample.ravel()
    n = x.size
    mean, var = x.mean(), x.var()
    kurt = stats.kurtosis(x, fisher=False, bias=False)
    # standard errors for a normal sample: mean 1/sqrt(n), variance sqrt(2/n), kurtosis sqrt(24/n);
    # skewness sqrt(6/n)
    assert abs(mean) < Z / np.sqrt(n), mean
    assert abs(var - 1.0) < Z * np.sqrt(2.0 / n), var
    assert abs(stats.skew(x)) < Z * np.sqrt(6.0 / n)
    assert abs(kurt - 3.0) < Z * np.sqrt(24.0 / n), kurt


def test_distribution_matches_the_normal_tails_included(sample: np.ndarray) -> None:
    x = sample.ravel()
    assert stats.kstest(x, "norm").pvalue > 1e-4
    # 100 equiprobable bins (the two outer ones hold |x| > 2.33) and the ziggurat's tail beyond r = 3.654,
    # which is drawn by a separate method: chi-square and a Poisson count
    edges = stats.norm.ppf(np.linspace(0.0, 1.0, 101))
    counts = np.histogram(x, bins=edges)[0]
    chi2 = ((counts - x.size / 100) ** 2 / (x.size / 100)).sum()
    assert stats.chi2.sf(chi2, df=99) > 1e-4, chi2
    expected = 2 * stats.norm.sf(_rng._R) * x.size
    tail = int((np.abs(x) > _rng._R).sum())
    assert abs(tail - expected) < Z * np.sqrt(expected), (tail, expected)
    assert np.all(np.isfinite(x))


def test_normals_are_uncorrelated_across_conditions_populations_and_steps(sample: np.ndarray) -> None:
    limit = Z / np.sqrt(sample[:, 0].size)  # SE of a correlation coefficient near 0
    pairs = {
        "population 1 vs 2": (sample[:, 0], sample[:, 1]),
        "neighbouring conditions": (sample[:, 0, :-1], sample[:, 0, 1:]),
        "consecutive steps": (sample[:-1, 0], sample[1:, 0]),
    }
    for name, (a, b) in pairs.items():
        r = np.corrcoef(a.ravel(), b.ravel())[0, 1]
        assert abs(r) < limit, (name, r)


@numba.njit
def _scalar_normals(g: np.ndarray, n_steps: int) -> np.ndarray:
    out = np.empty((n_steps, 2, g.shape[1]))
    for n in range(n_steps):
        for i in range(g.shape[1]):
            out[n, 0, i], out[n, 1, i] = _rng.draw_pair(g, i)
    return out


def test_a_conditions_stream_depends_on_the_key_and_its_index_only() -> None:
    key = _rng.stream_key(np.random.SeedSequence(3))
    full = _rng.normals(key, 40, 300)
    # the scalar path of the closed-loop kernel draws the same numbers as the vectorised block path
    assert_array_equal(_scalar_normals(_rng.stream_states(key, 0, 40), 300), full)
    # conditions 13 .. 29 alone (another block, another batch) get the same numbers
    part = np.empty((300, 2, 17))
    words = np.empty((2, 17), dtype=np.uint64)
    g = _rng.stream_states(key, 13, 17)
    for n in range(300):
        _rng.draw_block(17, g, words, part[n, 0], part[n, 1])
    assert_array_equal(part, full[..., 13:30])
    assert not np.array_equal(_rng.normals(key + 1, 40, 300), full)


def test_stream_states_are_distinct_and_nonzero() -> None:
    g = _rng.stream_states(0, 0, 4096)
    assert np.all(g.any(axis=0))
    assert np.unique(g, axis=1).shape[1] == 4096
    assert_array_equal(_rng.stream_states(0, 100, 5, width=8)[:, :5], g[:, 100:105])


def test_same_seed_same_result_whatever_threads_and_blocks(monkeypatch) -> None:
    kw = {"n_trials": 700, "seed": 11, "max_rt_ms": 400.0}
    a = simulate_decision(np.array([0.0, 6.4]), **kw)
    b = simulate_decision(np.array([0.0, 6.4]), **kw)
    assert_array_equal(a.rt.values, b.rt.values)
    run = {
        "duration_ms": 400.0,
        "onset_ms": np.zeros((1100, 1)),
        "direct_na": np.full((1100, 1, 2), 5.2e-4 * 30.0),
        "seed": 4,
    }
    one = simulate_circuit(n_threads=1, **run)
    two = simulate_circuit(n_threads=2, **run)
    monkeypatch.setattr(circuit, "_BLOCK", 96)
    small_blocks = simulate_circuit(n_threads=2, **run)
    first = simulate_circuit(**{**run, "onset_ms": run["onset_ms"][:30], "direct_na": run["direct_na"][:30]})
    for other in (two, small_blocks):
        assert_array_equal(one.rt.values, other.rt.values)
        assert_array_equal(one.choice.values, other.choice.values)
    assert_array_equal(first.rt.values, one.rt.values[:30])  # session k's noise: the seed and k only
    assert np.isfinite(one.rt.values).sum() > 100  # the runs respond (the comparison is not vacuous)


def test_numpy_noise_switch_is_thread_independent_and_another_stream(monkeypatch) -> None:
    run = {
        "duration_ms": 300.0,
        "onset_ms": np.zeros((600, 1)),
        "direct_na": np.full((600, 1, 2), 5.2e-4 * 30.0),
        "seed": 4,
    }
    kernel = simulate_circuit(**run)
    monkeypatch.setattr(circuit, "_NUMPY_NOISE", True)
    one = simulate_circuit(n_threads=1, **run)
    two = simulate_circuit(n_threads=2, **run)
    assert_array_equal(one.rt.values, two.rt.values)
    assert not np.array_equal(one.rt.values, kernel.rt.values, equal_nan=True)


def _final_noise_current(dt_ms: float, n: int, seed: int) -> np.ndarray:
    """The OU currents ``X_1, X_2`` of `n` sessions after 100 tau_AMPA (no input: X does not depend on S)."""
    inp = circuit._check_inputs(
        duration_ms=200.0,
        onset_ms=np.zeros((n, 1)),
        direct_na=np.zeros((n, 1, 2)),
        input_ms=None,
        timeout_ms=None,
        reset_ms=None,
        drive_na=None,
        release=None,
        sensory=None,
        params=None,
        dt_ms=dt_ms,
        noise=True,
        s0=0.1,
        m0=0.0,
        record=False,
        record_every_ms=None,
        n_threads=1,
    )
    seq = np.random.SeedSequence(seed)
    buf = circuit._prepare_buffers(inp, _rng.stream_key(seq))
    circuit._run_blocks(inp, buf, seq)
    return buf.x.transpose(1, 0, 2).reshape(2, -1)[:, :n]


@pytest.mark.parametrize("dt_ms", [0.5, 1.0])
def test_ou_current_has_the_stationary_variance_of_its_update(dt_ms: float) -> None:
    """``X <- (1 - k) X + sigma sqrt(k) xi`` (k = dt / tau_AMPA) is stationary at ``sigma^2 / (2 - k)``
    (circuit.MAX_DT_FRACTION); the continuous process's ``sigma^2 / 2`` is 14 % (k = 1/4) or 33 % (k = 1/2)
    below, far outside the tolerance."""
    p = WongWang2006()
    n = 5120
    x = _final_noise_current(dt_ms, n, seed=8)
    k = dt_ms / p.tau_ampa_ms
    want = p.sigma_noise_na**2 / (2.0 - k)
    got = x.var(axis=1)  # per population, n independent sessions each
    assert np.all(np.abs(got / want - 1.0) < Z * np.sqrt(2.0 / (n - 1))), (got, want)
    assert abs(x.mean()) < Z * np.sqrt(want / x.size)
