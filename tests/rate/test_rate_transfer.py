"""Transfer functions and modulation modes (analytic references)."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
from numpy.testing import assert_allclose

from neuromod.rate import (
    MODES,
    AbbottChance,
    Modulation,
    Sigmoid,
    ThresholdLinear,
    _kernel,
    f_i_curves,
    modulated_rate,
    steady_state_rate,
)
from neuromod.rate._kernel import abbott_chance_array, expm1_array

TRANSFERS = [
    ThresholdLinear(slope_hz_per_na=100.0, threshold_na=0.2),
    Sigmoid(max_rate_hz=80.0, midpoint_na=0.4, width_na=0.05),
    AbbottChance(),
]
DRIVE = np.linspace(-0.2, 1.0, 241)


def _ac_reference(current: float) -> float:
    """H(I) in 50-digit arithmetic (the limit 1/d at the singularity); mpmath's precision is restored."""
    with mpmath.workdps(50):
        y = mpmath.mpf(270) * mpmath.mpf(current) - 108
        if y == 0:
            return float(1 / mpmath.mpf("0.154"))
        return float(y / (1 - mpmath.exp(-mpmath.mpf("0.154") * y)))


@pytest.mark.parametrize("offset", [0.0, 1e-14, -1e-14, 1e-9, -3e-8, 1e-6, -1e-4, 1e-2, 0.5, -0.5])
def test_abbott_chance_across_singularity(offset: float) -> None:
    """Accurate to ~1e-14 relative at and around a I = b (removable singularity, H = 1/d)."""
    current = 108.0 / 270.0 + offset
    assert float(AbbottChance()(current)) == pytest.approx(_ac_reference(current), rel=1e-13)


def test_kernel_abbott_chance_across_singularity() -> None:
    """The compiled H (used in the time loop) against the 50-digit reference, y = 0 included."""
    offsets = np.array([0.0, 1e-14, -1e-14, 1e-9, -3e-8, 1e-6, -1e-4, 1e-2, 0.5, -0.5, 3.0])
    currents = 108.0 / 270.0 + offsets
    got = abbott_chance_array(270.0 * currents - 108.0, 0.154)
    ref = np.array([_ac_reference(c) for c in currents])
    assert_allclose(got, ref, rtol=1e-13, atol=0)


def test_abbott_chance_limits() -> None:
    h = AbbottChance()
    assert float(h(108.0 / 270.0)) == 1.0 / 0.154
    assert float(h(-10.0)) == pytest.approx(0.0, abs=1e-150)
    assert float(h(10.0)) == pytest.approx(270.0 * 10.0 - 108.0, rel=1e-15)


def test_kernel_expm1_matches_numpy(rng: np.random.Generator) -> None:
    x = np.concatenate(
        [
            rng.uniform(-700, 700, 20000),
            rng.uniform(-1e-3, 1e-3, 20000),
            np.geomspace(1e-300, 1.0, 500),
            -np.geomspace(1e-300, 1.0, 500),
            [0.0],
        ]
    )
    ref = np.expm1(x)
    got = expm1_array(x)
    nz = ref != 0
    assert_allclose(got[nz], ref[nz], rtol=5e-16, atol=0)
    assert got[~nz].tolist() == [0.0]


@pytest.mark.parametrize("transfer", TRANSFERS, ids=lambda t: type(t).__name__)
def test_response_gain_two_doubles_rate(transfer) -> None:
    base = steady_state_rate(DRIVE, 0.0, transfer=transfer)
    doubled = steady_state_rate(DRIVE, 1.0, transfer=transfer)  # g(1) = 1 + 1 = 2
    assert_allclose(doubled, 2.0 * base, rtol=1e-15, atol=0)


@pytest.mark.parametrize("transfer", TRANSFERS, ids=lambda t: type(t).__name__)
@pytest.mark.parametrize("dtheta", [-0.1, 0.05, 0.25])
def test_threshold_shift_moves_curve_by_dtheta(transfer, dtheta: float) -> None:
    mod = Modulation(mode="threshold", shift_na_per_level=dtheta)
    shifted = steady_state_rate(DRIVE + dtheta, 1.0, transfer=transfer, modulation=mod)
    assert_allclose(shifted, transfer(DRIVE), rtol=1e-12, atol=1e-12)
    # the half-maximum current of the sigmoid moves by exactly dtheta
    if isinstance(transfer, Sigmoid):
        half = steady_state_rate(transfer.midpoint_na + dtheta, 1.0, transfer=transfer, modulation=mod)
        assert float(half) == pytest.approx(transfer.max_rate_hz / 2, rel=1e-15)


@pytest.mark.parametrize("transfer", TRANSFERS, ids=lambda t: type(t).__name__)
@pytest.mark.parametrize("gain", [0.5, 2.0, 3.0])
def test_input_gain_rescales_drive_axis(transfer, gain: float) -> None:
    mod = Modulation(mode="input_gain", gain_at_zero=gain, gain_per_level=0.0)
    got = steady_state_rate(DRIVE / gain, 0.0, transfer=transfer, modulation=mod)
    assert_allclose(got, transfer(DRIVE), rtol=1e-13, atol=1e-12)


def test_threshold_linear_analytic() -> None:
    tl = ThresholdLinear(slope_hz_per_na=50.0, threshold_na=0.1)
    assert_allclose(tl(np.array([0.0, 0.1, 0.3])), [0.0, 0.0, 10.0], rtol=1e-15)
    assert float(Sigmoid(max_rate_hz=10.0, midpoint_na=0.0, width_na=1.0)(np.log(3.0))) == (
        pytest.approx(7.5, rel=1e-15)
    )


def test_steady_state_broadcasts_drive_and_level() -> None:
    tl = ThresholdLinear(slope_hz_per_na=10.0)
    levels = np.array([0.0, 0.5, 2.0])
    grid = steady_state_rate(DRIVE[None, :], levels[:, None], transfer=tl)
    assert grid.shape == (3, DRIVE.size)
    assert_allclose(grid, (1.0 + levels[:, None]) * tl(DRIVE)[None, :], rtol=1e-15)


def test_f_i_curves_labelled() -> None:
    da = f_i_curves(DRIVE, np.array([0.0, 1.0]), modulation=Modulation(mode="threshold"))
    assert da.dims == ("level", "drive")
    for name in ("level", "drive", "gain", "shift"):
        assert {"units", "long_name"} <= set(da[name].attrs)
    assert da.attrs["units"] == "Hz"
    assert_allclose(da["shift"].values, [0.0, -0.05])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"mode": "gain"}, r"mode='gain' is not one of \['response_gain'"),
        ({"current_na": np.array([np.nan])}, r"current_na must be finite"),
        ({"gain": np.inf}, r"gain must be finite"),
    ],
)
def test_modulated_rate_errors(kwargs: dict, match: str) -> None:
    args = {"current_na": 0.5, "transfer": AbbottChance(), **kwargs}
    with pytest.raises(ValueError, match=match):
        modulated_rate(**args)


def test_transfer_parameter_errors() -> None:
    with pytest.raises(ValueError, match=r"width_na=0\.0 must be a finite number > 0"):
        Sigmoid(width_na=0.0)
    with pytest.raises(ValueError, match=r"do not broadcast"):
        steady_state_rate(np.zeros(3), np.zeros(2))


def test_kernel_codes_match_the_classes() -> None:
    """The compiled kernel dispatches on the same integer codes the transfer and mode classes give."""
    assert ThresholdLinear.code == _kernel.TRANSFER_THRESHOLD_LINEAR
    assert Sigmoid.code == _kernel.TRANSFER_SIGMOID
    assert AbbottChance.code == _kernel.TRANSFER_ABBOTT_CHANCE
    codes = [Modulation(mode=m).mode_code for m in MODES]
    assert codes == [_kernel.MODE_RESPONSE_GAIN, _kernel.MODE_INPUT_GAIN, _kernel.MODE_THRESHOLD]
