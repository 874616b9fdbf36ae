"""The README's Python examples run as written (keeps the README true)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import matplotlib.pyplot as plt
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_names_only_what_exists():
    """Every experiment, file and make target the README tells a newcomer to use exists."""
    from neuromod import registry

    text = README.read_text()
    root = README.parent
    assert BLOCKS, "the README has no python examples"
    runs = re.findall(r"neuromod run ([\w./-]+)", text)
    assert runs
    for target in runs:
        assert target in registry.names() or (root / target).is_file(), target
    paths = re.findall(
        r"\b((?:analysis|notebooks|experiments|docs|benchmarks)/[\w.-]+\.(?:py|ipynb|toml|png|md))", text
    )
    assert paths
    for path in paths:
        assert (root / path).is_file(), path
    makefile = (root / "Makefile").read_text()
    for target in re.findall(r"\bmake (\w+)", text):
        assert re.search(rf"^{target}:", makefile, flags=re.M), f"make {target}"


@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_python_block_runs(index, tmp_path, monkeypatch, request):
    monkeypatch.chdir(tmp_path)  # examples may write files
    if "experiments/" in BLOCKS[index]:  # examples may read the repository's experiment files
        shutil.copytree(README.parent / "experiments", tmp_path / "experiments")
    if "results/task-switching.nc" in BLOCKS[index]:  # the file `make demo` writes: a quick run stands in
        first, _ = request.getfixturevalue("task_switching_run")
        (tmp_path / "results").mkdir()
        shutil.copy(first, tmp_path / "results" / "task-switching.nc")
    exec(compile(BLOCKS[index], f"README.md[python block {index}]", "exec"), {})
    plt.close("all")
