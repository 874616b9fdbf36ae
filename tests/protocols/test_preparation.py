"""The preparation curve of the rate family recovers its modulator's time constant (issue 13).

In the rate family the task set is the modulator level, which relaxes to the cued release with time
constant ``tau_ms``; the switch cost at CSI ``t`` should then fall as ``A exp(-t / tau_eff) + R`` with
``tau_eff`` near ``tau_ms`` (Meiran 1996; Monsell 2003: the preparation effect). With 4,000 trials a
free-tau fit of the per-CSI RT costs must recover ``tau_eff`` within a factor of 2 of ``tau_ms`` with
``A`` above 0, and the fixed-tau and trial-level estimates of ``A`` must be resolved above 0.
"""

from __future__ import annotations

import numpy as np
import pytest

from neuromod.protocols.task_switching import TaskSwitchingConfig, run_task_switching

TAU_MS = 400.0


@pytest.fixture(scope="module")
def rate_run():
    config = TaskSwitchingConfig(models=("rate",), n_trials=4000, tau_ms=TAU_MS, seed=3)
    config = config.with_family("se", quick=True)  # the release source: its gate ratio is the target
    return run_task_switching(config)["summary"].to_dataset().sel(model="rate")


def test_free_tau_fit_recovers_the_modulator_time_constant(rate_run):
    s = rate_run
    assert int(s["rt_prep_identified"]) == 1
    tau = float(s["rt_prep_tau_eff"])
    assert TAU_MS / 2 <= tau <= 2 * TAU_MS, tau
    amp, amp_se = float(s["rt_prep_amplitude"]), float(s["rt_prep_amplitude_se"])
    assert amp - 1.96 * amp_se > 0, (amp, amp_se)


def test_fixed_tau_and_trial_level_amplitudes_are_resolved(rate_run):
    s = rate_run
    assert float(s["rt_prep_fixed_amplitude_low"]) > 0
    assert float(s["rt_amplitude_low"]) > 0
    assert float(s["rt_cost_shortest_low"]) > 0
    assert float(s["rt_cost_drop_low"]) > 0
    # the two estimates of A agree within their combined uncertainty
    a1, a2 = float(s["rt_prep_fixed_amplitude"]), float(s["rt_amplitude"])
    half = max(float(s["rt_prep_fixed_amplitude_high"]) - a1, float(s["rt_amplitude_high"]) - a2)
    assert abs(a1 - a2) < 2 * half, (a1, a2, half)


def test_gain_matched_to_the_se_gate(rate_run):
    # the rate family's measured gain ratio (its cue gain curves) within 10 % of the SE gate's
    err = rate_run["gain_match_error"].values
    assert np.isfinite(err).sum() >= 2, err
    assert np.nanmax(np.abs(err)) <= 0.10, err
