"""Context-conditioned Squeeze-and-Excitation gates (torch only).

:class:`ContextSE` is a Squeeze-and-Excitation gate (Hu et al. 2018) whose excitation also receives
a task-context vector: its per-channel gains play the part of the gains of neural populations set by
a neuromodulatory system (see ``docs/design.md``, "The correspondence"). Variants from the SE
literature wrap the same core; :class:`GateRecorder` records gains as xarray,
:class:`GateAnomalyScorer` scores inputs by their gains, and :func:`se_overhead` counts the cost of
the gate.
"""

from neuromod.gating._registry import CONTEXT_MODES, LAYERS, SQUEEZE_MODES
from neuromod.gating.anomaly import GateAnomalyScorer, ledoit_wolf_shrinkage
from neuromod.gating.core import ContextSE, Gains
from neuromod.gating.overhead import SEOverhead, se_overhead
from neuromod.gating.recorder import GateRecorder
from neuromod.gating.task_model import SETaskModel, SETaskModelConfig, SETaskOutput, decision_loss
from neuromod.gating.variants import (
    GraphSE,
    InvertedResidualSE,
    JointSE,
    SequenceSE,
    SEResidualBlock,
    SpectrogramSE,
    VideoSE,
    temporal_smoothness,
)

__all__ = [
    "CONTEXT_MODES",
    "LAYERS",
    "SQUEEZE_MODES",
    "ContextSE",
    "Gains",
    "GateAnomalyScorer",
    "GateRecorder",
    "GraphSE",
    "InvertedResidualSE",
    "JointSE",
    "SEOverhead",
    "SEResidualBlock",
    "SETaskModel",
    "SETaskModelConfig",
    "SETaskOutput",
    "SequenceSE",
    "SpectrogramSE",
    "VideoSE",
    "decision_loss",
    "ledoit_wolf_shrinkage",
    "se_overhead",
    "temporal_smoothness",
]
