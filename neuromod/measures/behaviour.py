"""Behavioural measures: choice proportions and reaction times with confidence intervals."""

from __future__ import annotations

from collections.abc import Hashable

import numpy as np
import xarray as xr
from scipy import stats

from neuromod._checks import check_array, check_range
from neuromod.results import var_attrs as _attrs

__all__ = ["mean_interval", "psychometric", "wilson_interval"]


def wilson_interval(successes, n, *, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for a binomial proportion, vectorised.

    Parameters
    ----------
    successes, n : array-like
        Counts of successes and of trials (broadcast together); where ``n == 0`` the interval is NaN.
    level : float
        Confidence level in (0, 1).

    Returns
    -------
    (low, high) : tuple of ndarray

    Raises
    ------
    ValueError, TypeError
        Counts that are not finite numbers >= 0, more successes than trials, or a level outside (0, 1).

    Notes
    -----
    Wilson, E. B. (1927). Probable inference, the law of succession, and statistical inference.
    J. Am. Stat. Assoc. 22:209-212. It agrees with ``scipy.stats.binomtest(k, n).proportion_ci("wilson")``.

    Examples
    --------
    >>> low, high = wilson_interval(50, 100)
    >>> round(float(low), 4), round(float(high), 4)
    (0.4038, 0.5962)
    """
    check_range("level", level, 0.0, 1.0, low_inclusive=False, high_inclusive=False)
    k = check_array("successes", successes, low=0.0, nonempty=False)
    n = check_array("n", n, low=0.0, nonempty=False)
    over = k > n
    if np.any(over):
        k_bad, n_bad = (float(a[over].flat[0]) for a in np.broadcast_arrays(k, n))
        raise ValueError(f"successes={k_bad:g} exceeds n={n_bad:g}; expected successes <= n")
    z = stats.norm.ppf(0.5 + level / 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / n
        denom = 1 + z**2 / n
        centre = (p + z**2 / (2 * n)) / denom
        half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denom
    return centre - half, centre + half


def mean_interval(da: xr.DataArray, dim: Hashable, *, level: float = 0.95) -> tuple[xr.DataArray, ...]:
    """Mean over `dim` (NaN skipped) and its Student-t confidence interval.

    Returns
    -------
    (mean, low, high) : tuple of DataArray
        NaN where fewer than two values are finite.
    """
    check_range("level", level, 0.0, 1.0, low_inclusive=False, high_inclusive=False)
    if not isinstance(da, xr.DataArray):
        raise TypeError(f"da must be an xarray DataArray, got {type(da).__name__}")
    if dim not in da.dims:
        raise ValueError(f"dim={dim!r} is not a dimension of da; dimensions are {list(da.dims)}")
    n = da.count(dim)
    mean = da.mean(dim, skipna=True)
    sem = da.std(dim, ddof=1, skipna=True) / np.sqrt(n)
    t = xr.apply_ufunc(lambda k: stats.t.ppf(0.5 + level / 2, np.maximum(k - 1, 1)), n)
    half = (t * sem).where(n >= 2)
    return mean, mean - half, mean + half


def psychometric(ds: xr.Dataset, *, dim: Hashable = "trial", level: float = 0.95) -> xr.Dataset:
    """Psychometric and chronometric summary of a two-choice decision dataset.

    Parameters
    ----------
    ds : xarray.Dataset
        Per-trial ``choice`` (1, 2, or 0 for no response) and ``rt`` (ms, NaN for no response), as returned
        by :func:`neuromod.rate.simulate_decision`. Pool 1 is the one favoured by positive coherence.
    dim : str
        The trial dimension to reduce.
    level : float
        Confidence level of the intervals.

    Returns
    -------
    xarray.Dataset
        Over the remaining dimensions (e.g. ``coherence``): ``accuracy`` (fraction of responses that chose
        pool 1, i.e. the correct one for coherence > 0; chance 0.5 at 0 %) with Wilson interval
        ``accuracy_low``/``accuracy_high``; ``p_response``; ``mean_rt`` with a t interval
        ``mean_rt_low``/``mean_rt_high`` (responded trials); ``n_trials``.
    """
    if not isinstance(ds, xr.Dataset):
        raise TypeError(f"ds must be an xarray Dataset, got {type(ds).__name__}")
    for name in ("choice", "rt"):
        if name not in ds:
            raise ValueError(f"ds has no variable {name!r}; expected per-trial 'choice' and 'rt'")
    if dim not in ds.dims:
        raise ValueError(f"dim={dim!r} is not a dimension of ds; dimensions are {list(ds.dims)}")
    responded = (ds["choice"] > 0).sum(dim)
    chose1 = (ds["choice"] == 1).sum(dim)
    n_trials = ds.sizes[dim]
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy = chose1 / responded.where(responded > 0)
    low, high = wilson_interval(chose1.values, responded.values, level=level)
    rt_mean, rt_low, rt_high = mean_interval(ds["rt"], dim, level=level)
    pct = f"{100 * level:g} %"
    out = xr.Dataset(
        {
            "accuracy": accuracy.assign_attrs(_attrs("1", "accuracy (P(choice 1) among responses)")),
            "accuracy_low": (
                accuracy.dims,
                low,
                _attrs("1", f"accuracy, lower {pct} Wilson bound"),
            ),
            "accuracy_high": (
                accuracy.dims,
                high,
                _attrs("1", f"accuracy, upper {pct} Wilson bound"),
            ),
            "p_response": (responded / n_trials).assign_attrs(
                _attrs("1", "fraction of trials with a response")
            ),
            "mean_rt": rt_mean.assign_attrs(_attrs("ms", "mean reaction time")),
            "mean_rt_low": rt_low.assign_attrs(_attrs("ms", f"mean reaction time, lower {pct} bound")),
            "mean_rt_high": rt_high.assign_attrs(_attrs("ms", f"mean reaction time, upper {pct} bound")),
            "n_trials": xr.full_like(responded, n_trials).assign_attrs(_attrs("1", "number of trials")),
        }
    )
    return out
