"""One small saved task-switching result for both analysis scripts (SE and rate: seconds, no brian2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from neuromod import results
from neuromod.protocols import run_task_switching
from neuromod.protocols.task_switching import TaskSwitchingConfig, quick


@pytest.fixture(scope="session")
def task_switching_file(tmp_path_factory) -> Path:
    config = quick(TaskSwitchingConfig(models=("se", "rate"))).replace(n_trials=48)
    tree = run_task_switching(config, progress=False)
    return results.save(tree, tmp_path_factory.mktemp("ts") / "run_a.nc")
