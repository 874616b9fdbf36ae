"""Measures computed from neuromod results: behaviour (accuracy, RT, with intervals), fits, comparisons.

Measures read datasets only; they know nothing of the models that produced them.
"""

from neuromod.measures.behaviour import mean_interval, psychometric, wilson_interval
from neuromod.measures.gain import FORMS, classify_modulation, fit_gain_curve, gain_curve, regress_modulation

__all__ = [
    "FORMS",
    "classify_modulation",
    "fit_gain_curve",
    "gain_curve",
    "mean_interval",
    "psychometric",
    "regress_modulation",
    "wilson_interval",
]
