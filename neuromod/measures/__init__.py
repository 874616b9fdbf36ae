"""Measures computed from neuromod results: behaviour (accuracy, RT, with intervals), fits, comparisons.

Measures read datasets only; they know nothing of the models that produced them.
"""

from neuromod.measures.behaviour import mean_interval, psychometric, wilson_interval
from neuromod.measures.comparison import agreement, equivalence_test, interval_overlap
from neuromod.measures.gain import (
    AIC_MARGIN,
    AUTO_CANDIDATES,
    FORMS,
    classify_modulation,
    fit_and_classify,
    fit_gain_curve,
    gain_curve,
    regress_modulation,
)
from neuromod.measures.regression import (
    model_contrast,
    resolution,
    switch_cost_split,
    switch_regression,
)
from neuromod.measures.switching import (
    congruency_effect,
    error_rt,
    fit_preparation,
    fit_preparation_fixed,
    prep_regressor,
    switch_cost,
    switching_behaviour,
    trial_data,
)

__all__ = [
    "AIC_MARGIN",
    "AUTO_CANDIDATES",
    "FORMS",
    "agreement",
    "classify_modulation",
    "congruency_effect",
    "equivalence_test",
    "error_rt",
    "fit_and_classify",
    "fit_gain_curve",
    "fit_preparation",
    "fit_preparation_fixed",
    "gain_curve",
    "interval_overlap",
    "mean_interval",
    "model_contrast",
    "prep_regressor",
    "psychometric",
    "regress_modulation",
    "resolution",
    "switch_cost",
    "switch_cost_split",
    "switch_regression",
    "switching_behaviour",
    "trial_data",
    "wilson_interval",
]
