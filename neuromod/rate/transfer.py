"""Transfer functions (f-I curves), modulation modes and the modulator-level map.

Three transfer functions ``phi`` map an input current ``I`` (nA) onto a firing rate (Hz):

* :class:`ThresholdLinear` ``phi(I) = slope * max(I - theta, 0)``;
* :class:`Sigmoid` ``phi(I) = r_max / (1 + exp(-(I - I_half) / width))``;
* :class:`AbbottChance` ``H(I) = (a I - b) / (1 - exp(-d (a I - b)))``, the form used by Wong & Wang
  (2006) (Abbott & Chance 2005), evaluated with ``expm1`` and a series at the removable singularity
  ``a I = b`` (where ``H = 1/d``) so it is accurate to rounding everywhere.

Neuromodulation acts on them in one of three modes (``docs/design.md``, "The correspondence": the
modulated response ``y = g * x``):

* ``"response_gain"``: ``g * phi(I)`` (multiplicative on the output);
* ``"input_gain"``: ``phi(g * I)`` (rescales the drive axis);
* ``"threshold"``: ``phi(I - dtheta)`` (moves the curve along the drive axis; the ``offset``).

The map from a modulator level ``m`` (dimensionless, the state of :mod:`neuromod.rate.modulator`) to
the gain and shift is explicit and linear (:class:`Modulation`)::

    g(m)      = gain_at_zero + gain_per_level * m
    dtheta(m) = shift_na_per_level * m                      (nA)

so with the defaults a level of 1 doubles the gain (``g = 2``) and a level of 0 leaves the curve
unmodulated. Only the quantity the mode uses is applied (gain for the two gain modes, dtheta for
``"threshold"``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeAlias

import numpy as np
import xarray as xr

from neuromod._checks import check_array, check_choice, check_finite, check_positive

__all__ = [
    "MODES",
    "AbbottChance",
    "Modulation",
    "Sigmoid",
    "ThresholdLinear",
    "Transfer",
    "f_i_curves",
    "modulated_rate",
    "steady_state_rate",
]

Mode = Literal["response_gain", "input_gain", "threshold"]
MODES: tuple[str, ...] = ("response_gain", "input_gain", "threshold")

#: below this |d (a I - b)| the Abbott-Chance function is evaluated by its Taylor series
_AC_SERIES = 1e-5


@dataclass(frozen=True)
class ThresholdLinear:
    """Threshold-linear transfer ``phi(I) = slope * max(I - threshold, 0)``.

    Parameters
    ----------
    slope_hz_per_na
        Slope above threshold (Hz/nA).
    threshold_na
        Rheobase ``theta`` (nA).

    Examples
    --------
    >>> ThresholdLinear(slope_hz_per_na=100.0, threshold_na=0.1)(np.array([0.0, 0.3]))
    array([ 0., 20.])
    """

    slope_hz_per_na: float = 100.0
    threshold_na: float = 0.0

    code = 0  # kernel identifier, _kernel.TRANSFER_THRESHOLD_LINEAR (class attribute, not a field)

    def __post_init__(self) -> None:
        check_positive("slope_hz_per_na", self.slope_hz_per_na)
        check_finite("threshold_na", self.threshold_na)

    def kernel_params(self) -> tuple[float, float, float]:
        """Parameters in the order the compiled kernel expects."""
        return (self.slope_hz_per_na, self.threshold_na, 0.0)

    def __call__(self, current_na: np.ndarray | float) -> np.ndarray:
        """Rate (Hz) for an input current (nA)."""
        current = np.asarray(current_na, dtype=float)
        return self.slope_hz_per_na * np.maximum(current - self.threshold_na, 0.0)


@dataclass(frozen=True)
class Sigmoid:
    """Logistic transfer ``phi(I) = max_rate / (1 + exp(-(I - midpoint) / width))``.

    Parameters
    ----------
    max_rate_hz
        Saturation rate (Hz).
    midpoint_na
        Current at half-maximal rate (nA).
    width_na
        Slope scale (nA); the maximal slope is ``max_rate / (4 width)``.

    Examples
    --------
    >>> float(Sigmoid(max_rate_hz=100.0, midpoint_na=0.5)(0.5))
    50.0
    """

    max_rate_hz: float = 100.0
    midpoint_na: float = 0.5
    width_na: float = 0.1

    code = 1  # _kernel.TRANSFER_SIGMOID

    def __post_init__(self) -> None:
        check_positive("max_rate_hz", self.max_rate_hz)
        check_finite("midpoint_na", self.midpoint_na)
        check_positive("width_na", self.width_na)

    def kernel_params(self) -> tuple[float, float, float]:
        """Parameters in the order the compiled kernel expects."""
        return (self.max_rate_hz, self.midpoint_na, self.width_na)

    def __call__(self, current_na: np.ndarray | float) -> np.ndarray:
        """Rate (Hz) for an input current (nA)."""
        z = (np.asarray(current_na, dtype=float) - self.midpoint_na) / self.width_na
        with np.errstate(over="ignore"):
            return self.max_rate_hz / (2.0 + np.expm1(-z))


@dataclass(frozen=True)
class AbbottChance:
    """Abbott-Chance transfer ``H(I) = (a I - b) / (1 - exp(-d (a I - b)))``.

    Defaults are the Wong & Wang (2006) values (a = 270 Hz/nA, b = 108 Hz, d = 0.154 s). ``H`` has a
    removable singularity at ``a I = b`` with value ``1/d``; it is evaluated as
    ``y / -expm1(-d y)`` with ``y = a I - b`` and by the series ``(1 + z/2 + z^2/12) / d``
    (``z = d y``) for ``|z| < 1e-5``, so it is smooth and accurate to rounding across the singularity.

    Examples
    --------
    >>> h = AbbottChance()
    >>> float(h(108.0 / 270.0)) == 1.0 / 0.154
    True
    """

    a_hz_per_na: float = 270.0
    b_hz: float = 108.0
    d_s: float = 0.154

    code = 2  # _kernel.TRANSFER_ABBOTT_CHANCE

    def __post_init__(self) -> None:
        check_positive("a_hz_per_na", self.a_hz_per_na)
        check_finite("b_hz", self.b_hz)
        check_positive("d_s", self.d_s)

    def kernel_params(self) -> tuple[float, float, float]:
        """Parameters in the order the compiled kernel expects."""
        return (self.a_hz_per_na, self.b_hz, self.d_s)

    def __call__(self, current_na: np.ndarray | float) -> np.ndarray:
        """Rate (Hz) for an input current (nA)."""
        y = self.a_hz_per_na * np.asarray(current_na, dtype=float) - self.b_hz
        z = self.d_s * y
        small = np.abs(z) < _AC_SERIES
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            out = y / -np.expm1(-z)
        series = (1.0 + z / 2.0 + z * z / 12.0) / self.d_s
        return np.where(small, series, out)


Transfer: TypeAlias = ThresholdLinear | Sigmoid | AbbottChance


@dataclass(frozen=True)
class Modulation:
    """How a modulator level sets the gain or threshold of a transfer function.

    ``g(m) = gain_at_zero + gain_per_level * m`` (used by ``"response_gain"`` and ``"input_gain"``),
    ``dtheta(m) = shift_na_per_level * m`` in nA (used by ``"threshold"``).

    Parameters
    ----------
    mode
        ``"response_gain"`` (``g * phi(I)``), ``"input_gain"`` (``phi(g * I)``) or ``"threshold"``
        (``phi(I - dtheta)``).
    gain_at_zero
        Gain at level 0 (dimensionless).
    gain_per_level
        Gain added per unit level (dimensionless).
    shift_na_per_level
        Threshold shift per unit level (nA); negative values make the population more excitable.

    Examples
    --------
    >>> Modulation().gain(1.0)
    2.0
    >>> Modulation(mode="threshold", shift_na_per_level=-0.05).shift_na(2.0)
    -0.1
    """

    mode: Mode = "response_gain"
    gain_at_zero: float = 1.0
    gain_per_level: float = 1.0
    shift_na_per_level: float = -0.05

    def __post_init__(self) -> None:
        check_choice("mode", self.mode, MODES)
        check_finite("gain_at_zero", self.gain_at_zero)
        check_finite("gain_per_level", self.gain_per_level)
        check_finite("shift_na_per_level", self.shift_na_per_level)

    @property
    def mode_code(self) -> int:
        """Integer identifier of the mode for the compiled kernel."""
        return MODES.index(self.mode)

    def gain(self, level: np.ndarray | float) -> np.ndarray | float:
        """Gain ``g(m)`` for a modulator level (dimensionless)."""
        return self.gain_at_zero + self.gain_per_level * level

    def shift_na(self, level: np.ndarray | float) -> np.ndarray | float:
        """Threshold shift ``dtheta(m)`` (nA) for a modulator level."""
        return self.shift_na_per_level * level


def modulated_rate(
    current_na: np.ndarray | float,
    *,
    transfer: Transfer,
    mode: Mode = "response_gain",
    gain: np.ndarray | float = 1.0,
    shift_na: np.ndarray | float = 0.0,
) -> np.ndarray:
    """Apply one modulation mode with an explicit gain or shift (broadcasting).

    Parameters
    ----------
    current_na
        Input current ``I`` (nA).
    transfer
        The transfer function ``phi``.
    mode
        ``"response_gain"``: ``gain * phi(I)``; ``"input_gain"``: ``phi(gain * I)``;
        ``"threshold"``: ``phi(I - shift_na)``.
    gain
        Gain ``g`` (dimensionless) for the two gain modes.
    shift_na
        Threshold shift ``dtheta`` (nA) for ``"threshold"``.

    Returns
    -------
    numpy.ndarray
        Rates in Hz, broadcast over ``current_na``, ``gain`` and ``shift_na``.

    Raises
    ------
    ValueError
        On an unknown mode or non-finite values.

    Examples
    --------
    >>> tl = ThresholdLinear(slope_hz_per_na=10.0)
    >>> modulated_rate(np.array([1.0, 2.0]), transfer=tl, mode="response_gain", gain=2.0)
    array([20., 40.])
    """
    check_choice("mode", mode, MODES)
    check_finite("current_na", current_na)
    check_finite("gain", gain)
    check_finite("shift_na", shift_na)
    current = np.asarray(current_na, dtype=float)
    g = np.asarray(gain, dtype=float)
    shift = np.asarray(shift_na, dtype=float)
    shape = np.broadcast_shapes(current.shape, g.shape, shift.shape)
    if mode == "response_gain":
        out = g * transfer(current)
    elif mode == "input_gain":
        out = transfer(g * current)
    else:
        out = transfer(current - shift)
    return np.broadcast_to(out, shape).copy() if out.shape != shape else out


def steady_state_rate(
    drive_na: np.ndarray | float,
    level: np.ndarray | float,
    *,
    transfer: Transfer | None = None,
    modulation: Modulation | None = None,
) -> np.ndarray:
    """Analytic steady-state rate of a modulated population at constant drive and level.

    At constant release ``u`` the modulator settles at ``m = u`` and the rate at
    ``phi_mod(I; m)`` (the populations have no slower dynamics), so the f-I curve is analytic.

    Parameters
    ----------
    drive_na
        Input current(s) ``I`` (nA).
    level
        Modulator level(s) ``m`` (dimensionless); broadcast against `drive_na` (use
        ``level[:, None]`` and ``drive[None, :]`` for a grid, or :func:`f_i_curves`).
    transfer
        Transfer function; default :class:`AbbottChance` with the Wong & Wang values.
    modulation
        Mode and level map; default :class:`Modulation` (response gain, ``g = 1 + m``).

    Returns
    -------
    numpy.ndarray
        Rates (Hz) of the broadcast shape.

    Raises
    ------
    ValueError
        On non-finite input or shapes that do not broadcast.

    Examples
    --------
    >>> tl = ThresholdLinear(slope_hz_per_na=10.0)
    >>> steady_state_rate(np.array([1.0, 2.0]), np.array([[0.0], [1.0]]), transfer=tl)
    array([[10., 20.],
           [20., 40.]])
    """
    drive = check_array("drive_na", drive_na, ndim=None)
    lev = check_array("level", level, ndim=None)
    try:
        np.broadcast_shapes(drive.shape, lev.shape)
    except ValueError as err:
        raise ValueError(
            f"drive_na of shape {drive.shape} and level of shape {lev.shape} do not broadcast"
        ) from err
    transfer = AbbottChance() if transfer is None else transfer
    modulation = Modulation() if modulation is None else modulation
    return modulated_rate(
        drive,
        transfer=transfer,
        mode=modulation.mode,
        gain=modulation.gain(lev),
        shift_na=modulation.shift_na(lev),
    )


def f_i_curves(
    drive_na: np.ndarray,
    levels: np.ndarray,
    *,
    transfer: Transfer | None = None,
    modulation: Modulation | None = None,
) -> xr.DataArray:
    """Steady-state f-I curves on a (level, drive) grid as a labelled DataArray.

    Parameters
    ----------
    drive_na
        1-D input currents (nA).
    levels
        1-D modulator levels (dimensionless).
    transfer, modulation
        As in :func:`steady_state_rate`.

    Returns
    -------
    xarray.DataArray
        ``rate`` (Hz) with dims ``(level, drive)``, coordinates ``level`` and ``drive`` (nA) and
        the resolved ``gain`` and ``shift`` per level as non-index coordinates.

    Examples
    --------
    >>> da = f_i_curves(np.linspace(0, 1, 5), np.array([0.0, 1.0]))
    >>> da.dims, da.attrs["units"]
    (('level', 'drive'), 'Hz')
    """
    drive = check_array("drive_na", drive_na, ndim=1)
    lev = check_array("levels", levels, ndim=1)
    transfer = AbbottChance() if transfer is None else transfer
    modulation = Modulation() if modulation is None else modulation
    rate = steady_state_rate(drive[None, :], lev[:, None], transfer=transfer, modulation=modulation)
    return xr.DataArray(
        rate,
        dims=("level", "drive"),
        coords={
            "level": ("level", lev, {"units": "1", "long_name": "modulator level"}),
            "drive": ("drive", drive, {"units": "nA", "long_name": "input current"}),
            "gain": (
                "level",
                np.broadcast_to(np.asarray(modulation.gain(lev), dtype=float), lev.shape).copy(),
                {"units": "1", "long_name": "gain g(m)"},
            ),
            "shift": (
                "level",
                np.broadcast_to(np.asarray(modulation.shift_na(lev), dtype=float), lev.shape).copy(),
                {"units": "nA", "long_name": "threshold shift dtheta(m)"},
            ),
        },
        name="rate",
        attrs={
            "units": "Hz",
            "long_name": "steady-state firing rate",
            "transfer": type(transfer).__name__,
            "mode": modulation.mode,
        },
    )
