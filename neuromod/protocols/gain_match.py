"""Gain-matched mapping of the SE gate onto the other families' modulator release.

The same release level means a different gain in each model (rate: the input gain is ``g(m)``; spiking:
the synaptic efficacy ``gain_min + (gain_max - gain_min) m``; SE: the gate times a signal with a
baseline). Handing the SE gate's profile over as release levels would therefore compare the models at
different gains. Instead, each population's release is chosen so that the family's *measured* gain ratio
irrelevant / relevant matches the SE model's measured one:

1. the target: the SE gate's gain ratio, irrelevant / relevant, of each population (the steady-state gate
   of the population's channels with the other feature cued over that with its own feature cued,
   ``neuromod.protocols.se_profile.population_gains``);
2. the family's gain as a function of its modulator level: its f-I curves (:meth:`ModelFamily.fi_curves`)
   at ``n_levels`` levels from 0 to 1, fitted with the same settings; ``ratio(m) = gain(m) / gain(1)``;
3. the relevant feature's populations get full release (1), the irrelevant ones the level ``m_p`` with
   ``ratio(m_p)`` equal to the SE target (linear interpolation of the measured ratio, which must rise
   with ``m``); a target below ``ratio(0)`` is out of the family's range: the release is 0 and the miss is
   reported.

The run then measures each family's cue gain curves with its own release, so the match is checked, not
assumed (``gain_match_error`` in the summary).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from neuromod.protocols.families._common import RELEVANT_CONTEXT, context_population
from neuromod.protocols.family import ModelFamily
from neuromod.results import var_attrs as _attrs

__all__ = ["MATCH_MAPPING", "gain_by_level", "match_release"]

#: How the matched release is defined (stored with the result).
MATCH_MAPPING = (
    "gain-matched: release 1 on the populations of the cued feature; on the other feature's populations the "
    "level m_p at which the family's measured f-I gain ratio gain(m_p) / gain(1) equals the SE model's "
    "measured gain ratio (irrelevant / relevant) of that population (neuromod.protocols.gain_match)"
)


def gain_by_level(
    family: ModelFamily,
    *,
    drives: np.ndarray,
    levels: np.ndarray,
    n_repeats: int,
    seed: np.random.SeedSequence,
    settings: object,
) -> xr.Dataset:
    """The family's fitted f-I gain at each modulator level (its first variant condition).

    Returns
    -------
    xarray.Dataset
        ``gain`` and ``fit_ok`` over ``level`` (gain 0 where the curve is silent over the whole range, NaN
        where the fit failed), and ``ratio`` = gain / gain at the largest level.
    """
    curves = family.fi_curves(drives=drives, levels=levels, n_repeats=n_repeats, seed=seed)
    fit = settings.classify(curves).isel(condition=0)  # type: ignore[attr-defined]
    gain = fit["fit_gain"].astype(float)
    ok = fit["fit_ok"].astype(bool)
    mean = curves["response"].isel(condition=0).mean("repeat")
    silent = mean.max("drive") <= 1e-3 * float(mean.max())  # no response over the range: gain 0
    gain = xr.where(silent, 0.0, gain.where(ok))
    top = float(gain.isel(level=-1))
    out = xr.Dataset(
        {
            "gain": gain.assign_attrs(_attrs("1", "fitted f-I gain")),
            "fit_ok": ok.astype(np.int8).assign_attrs(_attrs("1", "the f-I curve was fitted (1) or not (0)")),
            "ratio": (gain / top).assign_attrs(_attrs("1", "gain / gain at full release")),
        }
    )
    for name in out.coords:  # xr.where and the fit drop the coordinates' attributes: take them from the sweep
        if name in curves.coords:
            out[name].attrs.update(curves[name].attrs)
    return out


def match_release(
    family: ModelFamily,
    target_ratio: np.ndarray,
    *,
    drives: np.ndarray,
    n_levels: int,
    n_repeats: int,
    seed: np.random.SeedSequence,
    settings: object,
) -> tuple[xr.DataArray, xr.Dataset]:
    """The release pattern that gives `family` the gain ratios `target_ratio` (one per population).

    Parameters
    ----------
    family : ModelFamily
        A prepared family that takes a release pattern and supports ``fi_curves``.
    target_ratio : array (population,)
        The SE gate's gain ratio irrelevant / relevant of each population.
    drives, n_levels, n_repeats, seed, settings
        The f-I sweep (relative drives, levels from 0 to 1, noise realisations, random stream) and the
        fit and classification settings (:class:`~neuromod.protocols.experiment.ClassifySettings`).

    Returns
    -------
    release : xarray.DataArray
        Over (``context``, ``population``).
    table : xarray.Dataset
        The measured ``gain`` and ``ratio`` by ``level``, the target and the matched level per population
        and ``in_range`` (the target lies within the family's measured range).

    Raises
    ------
    ValueError
        The measured ratio does not rise with the level (no unique match), or a target is not finite.
    """
    target = np.asarray(target_ratio, dtype=float)
    if target.shape != (len(RELEVANT_CONTEXT),) or not np.isfinite(target).all():
        raise ValueError(f"target_ratio={target_ratio!r} must hold one finite ratio per population (4)")
    levels = np.linspace(0.0, 1.0, n_levels)
    table = gain_by_level(
        family, drives=drives, levels=levels, n_repeats=n_repeats, seed=seed, settings=settings
    )
    ratio = table["ratio"].values
    good = np.isfinite(ratio)
    silent = np.flatnonzero(good & (ratio == 0))
    if silent.size:  # of the levels silent over the whole range keep the highest (the onset of the gain)
        good[: silent[-1]] = False
    lv, rv = levels[good], ratio[good]
    if lv.size < 2 or np.any(np.diff(rv) <= 0):
        raise ValueError(
            f"the {type(family).name!r} family's measured gain ratio by level {np.round(ratio, 3).tolist()} "
            "does not rise with the level: no unique gain-matched release"
        )
    matched = np.interp(target, rv, lv, left=lv[0], right=1.0)
    in_range = (target >= rv[0]) & (target <= 1.0)
    release = np.ones((2, len(RELEVANT_CONTEXT)))
    for p, own in enumerate(RELEVANT_CONTEXT):
        release[1 - own, p] = matched[p]
    da = context_population(release, "gain-matched release level").assign_attrs(mapping=MATCH_MAPPING)
    pop = ("population", ["a+", "a-", "b+", "b-"], _attrs("1", "sensory population"))
    table = table.assign(
        target_ratio=(pop[0], target, _attrs("1", "SE gate ratio irrelevant / relevant")),
        matched_level=(pop[0], matched, _attrs("1", "release level matched to the target")),
        in_range=(pop[0], in_range.astype(np.int8), _attrs("1", "target within the measured range")),
    ).assign_coords(population=pop)
    return da, table
