"""Rate models: modulated transfer functions, modulator kinetics, the Wong-Wang decision circuit.

Public API
----------
Transfer functions and modulation (``neuromod.rate.transfer``)
    :class:`ThresholdLinear`, :class:`Sigmoid`, :class:`AbbottChance`, :class:`Modulation`,
    :func:`modulated_rate`, :func:`steady_state_rate`, :func:`f_i_curves`.
Modulator kinetics (``neuromod.rate.modulator``)
    :func:`modulator_step`, :func:`modulator_decay`, :func:`simulate_modulator`.
Decision circuit (``neuromod.rate.circuit``, ``neuromod.rate.params``)
    :class:`WongWang2006`, :class:`SensoryStage`, :func:`simulate_circuit`,
    :func:`simulate_decision` (stable entry point), :func:`simulate_task_session` (closed-loop
    sessions of cued trials: each trial ends at the model's response), :func:`wong_wang_rhs`
    (reference ODE).
"""

from neuromod.rate.circuit import (
    MAX_DT_FRACTION,
    SensoryStage,
    simulate_circuit,
    simulate_decision,
    simulate_task_session,
)
from neuromod.rate.modulator import modulator_decay, modulator_step, simulate_modulator
from neuromod.rate.params import WongWang2006
from neuromod.rate.reference import wong_wang_rhs
from neuromod.rate.transfer import (
    MODES,
    AbbottChance,
    Modulation,
    Sigmoid,
    ThresholdLinear,
    Transfer,
    f_i_curves,
    modulated_rate,
    steady_state_rate,
)

__all__ = [
    "MAX_DT_FRACTION",
    "MODES",
    "AbbottChance",
    "Modulation",
    "SensoryStage",
    "Sigmoid",
    "ThresholdLinear",
    "Transfer",
    "WongWang2006",
    "f_i_curves",
    "modulated_rate",
    "modulator_decay",
    "modulator_step",
    "simulate_circuit",
    "simulate_decision",
    "simulate_modulator",
    "simulate_task_session",
    "steady_state_rate",
    "wong_wang_rhs",
]
