"""Measures computed from neuromod results: behaviour (accuracy, RT, with intervals), fits, comparisons.

Measures read datasets only; they know nothing of the models that produced them.
"""

from neuromod.measures.behaviour import mean_interval, psychometric, wilson_interval

__all__ = ["mean_interval", "psychometric", "wilson_interval"]
