"""The documentation site's API reference builds with warnings as errors, and lists every public name.

The reference is generated from the docstrings (numpydoc), with ``nitpicky`` cross-references: a broken
docstring, an unresolved reference or a public name without a page fails here. The full site (``make docs``)
also executes the notebooks; the suite runs those already (nbmake), so this builds the reference alone
(``NEUROMOD_DOCS_API_ONLY=1``), from a copy of ``docs/`` (nothing is generated in the checkout).
"""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"

#: The modules whose every public name (``__all__``) must have a page or an entry in the reference.
DOCUMENTED = (
    "neuromod",
    "neuromod.gating",
    "neuromod.rate",
    "neuromod.spiking",
    "neuromod.tasks",
    "neuromod.protocols",
    "neuromod.measures",
    "neuromod.results",
    "neuromod.sweep",
    "neuromod.config",
    "neuromod.registry",
    "neuromod.plotting",
    "neuromod.accessor",
)


@pytest.fixture(scope="module")
def api_build(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """The API reference built once (~20 s): (html folder, the sphinx-build process)."""
    work = tmp_path_factory.mktemp("docs")
    source = work / "docs"
    shutil.copytree(DOCS, source, ignore=shutil.ignore_patterns("_build", "generated", "notebooks", "*.png"))
    html = work / "html"
    env = {**os.environ, "NEUROMOD_DOCS_API_ONLY": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "sphinx", "-b", "html", "-W", "--keep-going", "-q", str(source), str(html)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    return html, proc


def test_api_reference_builds_without_warnings(api_build):
    _, proc = api_build
    assert proc.returncode == 0, f"sphinx-build failed:\n{proc.stderr[-6000:]}"
    assert "WARNING" not in proc.stderr, proc.stderr[-6000:]


def test_every_public_name_has_an_entry(api_build):
    """Each module's ``__all__`` against the objects the built reference documents (its objects.inv)."""
    from sphinx.util.inventory import InventoryFile

    html, proc = api_build
    assert proc.returncode == 0, proc.stderr[-3000:]
    inventory = InventoryFile.loads((html / "objects.inv").read_bytes(), uri="")
    documented = {name for objects in inventory.data.values() for name in objects}
    missing = []
    for module_name in DOCUMENTED:
        module = importlib.import_module(module_name)
        assert module_name in documented, f"no page for the module {module_name}"
        missing += [f"{module_name}.{n}" for n in module.__all__ if f"{module_name}.{n}" not in documented]
    assert not missing, f"{len(missing)} public name(s) without an entry: {missing}"
