"""Spiking models on brian2: LIF populations with neuromodulation mechanisms, f-I sweeps, decision circuit.

See ``neuromod.spiking.mechanisms`` for the equation of every mechanism and the map m -> effect.

Entry points
------------
- :class:`LIFParams`, :class:`ModulationParams`, :class:`DecisionParams`: parameters (published defaults).
- :func:`fi_sweep`: f-I curves of one mechanism, every (level, drive, repeat) in one NeuronGroup, one run;
  :class:`StandaloneFISweep`: the same compiled once with ``cpp_standalone`` and rerun with new values.
- :func:`simulate_session`: the Wang (2002) circuit with modulated sensory pools a+, a-, b+, b-, trials as
  closed-loop continuous sessions (response-cue interval, cue, stimulus until the network's response or the
  deadline; signed coherences per trial, modulator release level per trial and pool from the cue; many
  independent sessions side by side in one network; choice, RT, event times, modulator and rate traces);
  :func:`simulate_decision`: the plain task.
- :func:`codegen_context`: a context manager selecting the brian2 target (cython / numpy fallback, or the
  ``cpp_standalone`` device) and the per-worker compile cache for a block, restoring brian2's preferences and
  device on exit (every entry point above uses it; nothing is changed at import time).

All outputs are xarray objects of plain floats (units in ``attrs["units"]``), never brian2 quantities.
"""

from ._codegen import codegen_context, default_cache_dir, worker_id
from .decision import SENSORY_POOLS, simulate_decision, simulate_session
from .fi import MAX_DT_MS, StandaloneFISweep, fi_sweep
from .mechanisms import MECHANISMS, Mechanism, drive_shift_na, input_gain_factor, lif_model
from .params import DecisionParams, LIFParams, ModulationParams

__all__ = [
    "MAX_DT_MS",
    "MECHANISMS",
    "SENSORY_POOLS",
    "DecisionParams",
    "LIFParams",
    "Mechanism",
    "ModulationParams",
    "StandaloneFISweep",
    "codegen_context",
    "default_cache_dir",
    "drive_shift_na",
    "fi_sweep",
    "input_gain_factor",
    "lif_model",
    "simulate_decision",
    "simulate_session",
    "worker_id",
]
