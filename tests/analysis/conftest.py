"""One small saved task-switching result for both analysis scripts (SE and rate: seconds, no brian2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from neuromod import results
from neuromod.protocols.compare import TaskSwitchingConfig, compare, quick


@pytest.fixture(scope="session")
def task_switching_file(tmp_path_factory) -> Path:
    config = quick(TaskSwitchingConfig(models=("se", "rate"))).replace(n_trials=48)
    return results.save(compare(config, progress=False), tmp_path_factory.mktemp("ts") / "run_a.nc")
