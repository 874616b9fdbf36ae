"""Counter-based noise (:mod:`neuromod.spiking._noise`): the same bits on every target, frozen values, moments
and independence.

The statistical checks use the NumPy reference (the compiled versions are checked bit for bit against it) on
a fixed seed, and allow ``Z`` standard errors, each derived from the distribution of the statistic (sample
moments of a uniform variable, correlations of independent ones, a chi-square), never tuned to the seed.
"""

from __future__ import annotations

import numpy as np
import pytest

from neuromod.spiking._noise import NOISE_GENERATORS, nm_noise, nm_noise32, noise_call
from neuromod.spiking.mechanisms import lif_model

Z = 4.0  # standard errors allowed (two-sided false-alarm rate 6e-5 per comparison)
REFERENCE = {"splitmix64": nm_noise, "lowbias32": nm_noise32}
N_NEURON, N_STEP = 2000, 500  # 10^6 samples per statistic


def _samples(generator: str, seed: int = 11, n_neuron: int = N_NEURON, n_step: int = N_STEP) -> np.ndarray:
    """Noise of the NumPy reference, shape (n_step, n_neuron), steps from 10^6 (a long run's counter)."""
    ref = REFERENCE[generator]
    return np.stack([ref(np.arange(n_neuron), 10**6 + k, seed) for k in range(n_step)])


def _compiled(generator: str, target: str, n: int, steps: int, seed: int) -> np.ndarray:
    """The noise as brian2 computes it on `target`, shape (steps, n): step k in row k."""
    import brian2 as b2

    from neuromod.spiking import codegen_context

    call, name, func = noise_call(generator)
    with codegen_context(target):
        group = b2.NeuronGroup(
            n,
            "z : 1\nnoise_seed : integer (constant, shared)",
            namespace={name: func},
            name="nm_noise_probe*",
        )
        group.noise_seed = seed
        group.run_regularly(f"z = {call}", when="groups")
        mon = b2.StateMonitor(group, "z", record=True, when="end")
        b2.Network(group, mon).run(steps * b2.defaultclock.dt, namespace={})
        return np.asarray(mon.z[:]).T.copy()


@pytest.mark.parametrize("generator", NOISE_GENERATORS)
@pytest.mark.parametrize("target", ["cython", "numpy"])
def test_compiled_noise_has_the_bits_of_the_reference(generator: str, target: str) -> None:
    n, steps, seed = 37, 5, 2**31 - 1  # the largest seed brian_seed gives
    z = _compiled(generator, target, n, steps, seed)
    ref = np.stack([REFERENCE[generator](np.arange(n), k, seed) for k in range(steps)])
    np.testing.assert_array_equal(z, ref)


@pytest.mark.slow
def test_cpp_standalone_noise_has_the_bits_of_the_reference(tmp_path) -> None:
    """The C++ implementations (both generators in one build) against the reference, bit for bit."""
    import brian2 as b2
    from brian2.devices.device import all_devices

    from neuromod.spiking import codegen_context

    n, steps, seed = 37, 5, 2**31 - 1
    all_devices["cpp_standalone"].reinit()  # a fresh project; left fresh for the next standalone build
    try:
        with codegen_context("cpp_standalone", directory=tmp_path, openmp_threads=0):
            group = b2.NeuronGroup(n, "z0 : 1\nz1 : 1\nnoise_seed : integer (constant, shared)")
            group.noise_seed = seed
            namespace, monitors = {}, []
            for k, generator in enumerate(NOISE_GENERATORS):
                call, name, func = noise_call(generator)
                namespace[name] = func
                group.run_regularly(f"z{k} = {call}", when="groups", name=f"nm_probe_{k}")
                monitors.append(b2.StateMonitor(group, f"z{k}", record=True, when="end"))
            b2.Network(group, *monitors).run(steps * b2.defaultclock.dt, namespace=namespace)
            b2.get_device().build(directory=str(tmp_path), run=True, with_output=False)
            got = [np.asarray(getattr(mon, f"z{k}")[:]).T.copy() for k, mon in enumerate(monitors)]
    finally:
        all_devices["cpp_standalone"].reinit()
    for generator, z in zip(NOISE_GENERATORS, got, strict=True):
        ref = np.stack([REFERENCE[generator](np.arange(n), k, seed) for k in range(steps)])
        np.testing.assert_array_equal(z, ref, err_msg=generator)


def test_frozen_values() -> None:
    """Changing either generator changes every seeded dataset: these values must not move."""
    i = np.array([0, 1, 99_999])
    np.testing.assert_array_equal(
        nm_noise(i, 12345, 7), [0.409290343204179, -1.324027585752905, 1.4237486864574682]
    )
    np.testing.assert_array_equal(
        nm_noise32(i, 12345, 7), [0.2079399822293753, -1.5578491889738197, 1.2561612453666127]
    )


@pytest.mark.parametrize("generator", NOISE_GENERATORS)
def test_moments_of_a_centred_unit_uniform(generator: str) -> None:
    """Mean 0, variance 1, skewness 0 and fourth moment 9/5 (uniform on [-sqrt 3, sqrt 3]), within Z SE."""
    z = _samples(generator).ravel()
    n = z.size
    assert np.all(np.abs(z) < np.sqrt(3.0))
    m4, m6, m8 = 9.0 / 5.0, 27.0 / 7.0, 9.0  # E z^4, z^6, z^8 of the uniform: 3^(k/2) / (k + 1)
    checks = [  # statistic, expected, its standard error sqrt(var(z^k) / n)
        (z.mean(), 0.0, np.sqrt(1.0 / n)),
        (np.mean(z**2), 1.0, np.sqrt((m4 - 1.0) / n)),
        (np.mean(z**3), 0.0, np.sqrt(m6 / n)),
        (np.mean(z**4), m4, np.sqrt((m8 - m4**2) / n)),
    ]
    for k, (stat, expected, se) in enumerate(checks, start=1):
        assert abs(stat - expected) < Z * se, (k, stat, expected, se)


def _corr_ok(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Sample mean of a*b (both mean 0, variance 1, independent: mean 0, SE 1/sqrt(n)) and its bound."""
    return float(np.mean(a * b)), Z / np.sqrt(a.size)


@pytest.mark.parametrize("generator", NOISE_GENERATORS)
def test_independent_across_steps_neurons_and_seeds(generator: str) -> None:
    """Correlations at lag 1 and 2 in time, between neighbouring neurons (index +-1, i ^ 1, i + 2^16),
    between consecutive seeds and between neuron i at step t and neuron i + 1 at step t + 1: all 0 within
    Z SE (each product has variance 1 when the two are independent)."""
    z = _samples(generator)
    pairs = {
        "lag 1": (z[1:], z[:-1]),
        "lag 2": (z[2:], z[:-2]),
        "neighbour": (z[:, 1:], z[:, :-1]),
        "i ^ 1": (z[:, 0::2], z[:, 1::2]),
        "diagonal": (z[1:, 1:], z[:-1, :-1]),
        "seed + 1": (z, _samples(generator, seed=12)),
    }
    far = _samples(generator, n_neuron=2**16 + N_NEURON, n_step=50)
    pairs["i + 2^16"] = (far[:, 2**16 :], far[:, :N_NEURON])
    for name, (a, b) in pairs.items():
        r, bound = _corr_ok(a, b)
        assert abs(r) < bound, (name, r, bound)


@pytest.mark.parametrize("generator", NOISE_GENERATORS)
def test_consecutive_pairs_fill_the_square_uniformly(generator: str) -> None:
    """(z_t, z_t+1) of one neuron, and (z_i, z_i+1) of neighbours at one step, on a 16 x 16 grid: the
    chi-square (255 degrees of freedom, mean 255, SD sqrt(510)) within Z SD of its mean; catches
    non-linear dependence that a correlation misses."""
    z = _samples(generator)
    bins = np.linspace(-np.sqrt(3.0), np.sqrt(3.0), 17)
    for a, b in ((z[1:], z[:-1]), (z[:, 1:], z[:, :-1])):
        counts, _, _ = np.histogram2d(a.ravel(), b.ravel(), bins=[bins, bins])
        expected = a.size / 256.0
        chi2 = float(np.sum((counts - expected) ** 2 / expected))
        assert abs(chi2 - 255.0) < Z * np.sqrt(2.0 * 255.0), chi2


def test_lowbias32_bits_are_balanced_and_a_bijection_per_step() -> None:
    """Each of the 32 bits of the hash is 1 with probability 1/2 (SE 1/(2 sqrt n)); within one step the
    neurons get distinct values (the hash is a bijection of i for a fixed key)."""
    z = _samples("lowbias32")
    x = (z / (np.sqrt(12.0) / 2**32) - 0.5).round().astype(np.int64).astype(np.int32).view(np.uint32)
    bits = (x.ravel()[:, None] >> np.arange(32, dtype=np.uint32)) & 1
    se = 0.5 / np.sqrt(x.size)
    assert np.all(np.abs(bits.mean(axis=0) - 0.5) < Z * se), bits.mean(axis=0)
    assert all(np.unique(row).size == row.size for row in x)


def test_lif_model_keeps_the_splitmix64_call_by_default() -> None:
    """The decision network rewrites the default noise call: lif_model must keep it literally."""
    eqs, _, namespace = lif_model("none", noise=True, drive="synaptic", modulator="dynamic")
    assert "nm_noise" in namespace
    assert "nm_noise(i, t_in_timesteps, noise_seed)" in eqs
    assert "noise_seed : integer (constant, shared)" in eqs.splitlines()
    eqs32, _, namespace32 = lif_model("none", noise=True, noise_generator="lowbias32")
    assert "nm_noise32(i, t_in_timesteps, noise_seed)" in eqs32 and "nm_noise32" in namespace32
    with pytest.raises(ValueError, match=r"noise_generator='xi' is not one of"):
        lif_model("none", noise=True, noise_generator="xi")


def test_lowbias32_steps_whose_low_keys_differ_little_are_independent() -> None:
    """With the low key half alone, step t' would repeat step t at neurons i ^ d whenever the two low halves
    differ by d (a 2^-15 chance per pair of steps for 2^17 neurons); the high half, xored in between the two
    rounds, removes that: corr(z(i, t), z(i ^ d, t')) is 0 within Z SE for such pairs."""
    from neuromod.spiking._noise import _mix

    seed, n = 3, 2**17
    steps = np.arange(100_000, dtype=np.uint64)
    with np.errstate(over="ignore"):
        low = (_mix(steps + (np.uint64(seed) << np.uint64(40))) & np.uint64(0xFFFFFFFF)).astype(np.int64)
    order = np.argsort(low >> 17, kind="stable")
    close = np.nonzero(np.diff(low[order] >> 17) == 0)[0][:10]
    assert close.size == 10
    for j in close:
        t, t2 = int(order[j]), int(order[j + 1])
        i = np.arange(n)
        i = i[(i ^ (low[t] ^ low[t2])) < n]
        r, bound = _corr_ok(nm_noise32(i, t, seed), nm_noise32(i ^ (low[t] ^ low[t2]), t2, seed))
        assert abs(r) < bound, (t, t2, r, bound)
