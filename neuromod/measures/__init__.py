"""Measures computed from neuromod results: behaviour (accuracy, RT, with intervals), fits, comparisons.

Measures read datasets only; they know nothing of the models that produced them.
"""

from neuromod.measures.behaviour import mean_interval, psychometric, wilson_interval
from neuromod.measures.comparison import agreement
from neuromod.measures.gain import (
    FORMS,
    classify_modulation,
    fit_and_classify,
    fit_gain_curve,
    gain_curve,
    regress_modulation,
)
from neuromod.measures.switching import (
    congruency_effect,
    fit_preparation,
    switch_cost,
    switching_behaviour,
    trial_data,
)

__all__ = [
    "FORMS",
    "agreement",
    "classify_modulation",
    "congruency_effect",
    "fit_and_classify",
    "fit_gain_curve",
    "fit_preparation",
    "gain_curve",
    "mean_interval",
    "psychometric",
    "regress_modulation",
    "switch_cost",
    "switching_behaviour",
    "trial_data",
    "wilson_interval",
]
