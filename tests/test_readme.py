"""The README's Python examples run as written (keeps the README true)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import matplotlib.pyplot as plt
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_python_examples():
    assert len(BLOCKS) >= 2


@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_python_block_runs(index, tmp_path, monkeypatch, request):
    monkeypatch.chdir(tmp_path)  # examples may write files
    if "results/task-switching.nc" in BLOCKS[index]:  # the file `make demo` writes: a quick run stands in
        first, _, _ = request.getfixturevalue("task_switching_runs")
        (tmp_path / "results").mkdir()
        shutil.copy(first, tmp_path / "results" / "task-switching.nc")
    exec(compile(BLOCKS[index], f"README.md[python block {index}]", "exec"), {})
    plt.close("all")
