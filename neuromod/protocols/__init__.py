"""Protocols: run a model under an experimental protocol and return a neuromod result.

Protocols compose the model families (``gating``, ``rate``, ``spiking``) with the tasks; the model packages
know nothing of them. Each runnable experiment registers itself in :mod:`neuromod.registry`.

- :func:`compare`: the SE gate, the rate model and the spiking network side by side on one cued
  task-switching session, with gain curves and a summary along ``model`` (``neuromod run task-switching``).
- :func:`gain_curves`: response against drive per modulation level on every model (``neuromod run
  gain-curves``).
- :func:`task_switching`: one cued task-switching trial table on the SE, rate and spiking models.
- :func:`run_decision`: psychometric/chronometric curves of the decision circuits (``neuromod run decision``).

The functions are re-exported here, so ``neuromod.protocols.gain_curves(...)`` calls the protocol; the
modules of the same names hold their configs and helpers (``from neuromod.protocols.gain_curves import
GainCurvesConfig``). Nothing heavy (torch, brian2) is imported until a model runs.
"""

from neuromod.protocols.compare import compare
from neuromod.protocols.decision import run_decision
from neuromod.protocols.gain_curves import gain_curves
from neuromod.protocols.task_switching import task_switching

__all__ = ["compare", "gain_curves", "run_decision", "task_switching"]
