"""Protocols: run model families under experimental protocols and return neuromod results.

Every protocol runs the registered model families through one interface,
:class:`~neuromod.protocols.family.ModelFamily` (built-in: ``se``, ``rate``, ``spiking``; see
``neuromod.protocols.families``); none of them knows a family by name, so a family registered with
:func:`~neuromod.protocols.family.register_family` runs through every experiment. The model packages
(``gating``, ``rate``, ``spiking``) know nothing of protocols. Each runnable experiment registers itself in
:mod:`neuromod.registry`.

- :func:`run_task_switching`: the families side by side on one cued task-switching session, with gain
  curves and a summary along ``model`` (``neuromod run task-switching``);
- :func:`run_sessions`: one task-switching trial table on several families (the building block);
- :func:`run_gain_curves`: response against drive per modulation level on every family (``neuromod run
  gain-curves``);
- :func:`run_decision`: psychometric/chronometric curves of the decision stages (``neuromod run decision``).

Nothing heavy (torch, brian2) is imported until a family runs.
"""

from neuromod.protocols.decision import run_decision
from neuromod.protocols.experiment import ExperimentConfig
from neuromod.protocols.family import (
    FamilyBase,
    ModelFamily,
    create_family,
    family_names,
    get_family,
    register_family,
    unregister_family,
)
from neuromod.protocols.gain_curves import run_gain_curves
from neuromod.protocols.sessions import run_sessions
from neuromod.protocols.task_switching import run_task_switching

__all__ = [
    "ExperimentConfig",
    "FamilyBase",
    "ModelFamily",
    "create_family",
    "family_names",
    "get_family",
    "register_family",
    "run_decision",
    "run_gain_curves",
    "run_sessions",
    "run_task_switching",
    "unregister_family",
]
