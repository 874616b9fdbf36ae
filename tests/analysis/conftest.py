"""One small saved task-switching result for both analysis scripts (SE and rate: seconds, no brian2).

The rate model is limited to the table's first trials (``max_trials``), as the spiking network is in the
full run, so the scripts are checked on a model padded to the table with ``ran``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from neuromod import results
from neuromod.config import FrozenMap
from neuromod.protocols import run_task_switching
from neuromod.protocols.task_switching import TaskSwitchingConfig, quick

#: trials in the table, and those the rate model runs
N_TRIALS, N_RATE = 48, 32


@pytest.fixture(scope="session")
def task_switching_file(tmp_path_factory) -> Path:
    config = quick(TaskSwitchingConfig(models=("se", "rate"))).replace(
        n_trials=N_TRIALS, max_trials=FrozenMap({"rate": N_RATE})
    )
    tree = run_task_switching(config, progress=False)
    return results.save(tree, tmp_path_factory.mktemp("ts") / "run_a.nc")
