"""The ``input_gain`` mechanism's concave f-I curves, fitted with the form the data choose.

Synaptic efficacy g(m) scales the drive, ``r(I; m) = r(g(m) I; 0)`` (``test_fi.py`` checks this exactly), so
the true gain ratio of level m is g(m): 1.5 and 2.0 at m = 0.5 and 1. Over the drives of the gain-curves
experiment the LIF curves at those levels reach 150-300 Hz and bend towards 1 / t_ref (concave), so a
straight (threshold-linear or softplus) fit of the whole range reports ratios of about 1.2. With
``form="auto"`` (:func:`neuromod.measures.fit_and_classify`) the saturating form is chosen and the ratios
come back to g(m), up to the form's residual mismatch with the LIF knee, which stays inside the
classifier's own gain resolution (``gain_tolerance`` = 10 %).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from neuromod.measures import AIC_MARGIN, fit_and_classify
from neuromod.spiking import fi_sweep, input_gain_factor

Z = 3.0  # standard errors allowed by every statistical check
GAIN_TOLERANCE = 0.1  # fit_and_classify's default: smallest relative gain change it resolves
REL_DRIVES = np.linspace(0.5, 2.0, 16)  # the gain-curves experiment; relative drive 1 = 0.52 nA
REFERENCE_NA = 2000.0 * 0.13 * 2e-3


def test_auto_form_recovers_the_input_gain_of_concave_lif_curves(seed: int) -> None:
    levels = [0.0, 0.5, 1.0]
    n_rep = 16
    sweep = fi_sweep("input_gain", levels, REFERENCE_NA * REL_DRIVES, n_repeats=n_rep, seed=seed)
    response = sweep.rate.transpose("level", "drive", "repeat").values[None]
    ds = xr.Dataset(
        {"response": (("condition", "level", "drive", "repeat"), response, {"units": "Hz"})},
        coords={
            "condition": ["input_gain"],
            "level": levels,
            "drive": REL_DRIVES,
            "repeat": np.arange(n_rep),
        },
    )
    auto = fit_and_classify(ds, form="auto")
    assert auto["fit_form"].sel(condition="input_gain").values.tolist() == ["saturating"] * 3
    assert auto["aic_saturating"].item() < auto["aic_softplus"].item() - AIC_MARGIN
    g = input_gain_factor(np.array(levels))
    ratio = auto["gain_ratio"].sel(condition="input_gain").values
    se = auto["gain_ratio_se"].sel(condition="input_gain").values
    assert np.all(np.abs(ratio - g) <= GAIN_TOLERANCE * g + Z * se), (ratio, se)
    assert np.all(auto["modulation_class"].sel(condition="input_gain", level=[0.5, 1.0]).values == "mixed")
    # what the straight fit made of the same curves: the gain ratio far below g(m)
    straight = fit_and_classify(ds, form="threshold_linear")["gain_ratio"].sel(condition="input_gain")
    assert float(straight.sel(level=1.0)) < g[-1] - GAIN_TOLERANCE * g[-1] - Z * se[-1]
