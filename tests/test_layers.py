"""The layer rule of docs/design.md, checked on the import statements of every module (function-level and
relative imports included):

* the model packages (``gating``, ``rate``, ``spiking``) and ``tasks`` import no protocol, no task and no
  other model package: each knows only itself and the base modules;
* ``measures`` and ``plotting`` read datasets only: they import no model package, task or protocol;
* the base modules (``config``, ``results``, ``registry``, ``_checks``, ``_random``) import none of the layers
  above them; the ``.nm`` accessor reaches ``measures`` and ``plotting`` only;
* nothing below the command line imports ``neuromod.cli``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "neuromod"
LAYERS = {
    *("gating", "rate", "spiking", "tasks", "measures", "plotting", "protocols", "accessor", "sweep", "cli")
}
#: the layers each layer may import, besides itself and the base modules
ALLOWED: dict[str, set[str]] = {
    "package": {"accessor"},  # ``import neuromod`` registers the .nm accessor
    "base": set(),
    "gating": set(),
    "rate": set(),
    "spiking": set(),
    "tasks": set(),
    "measures": set(),
    "plotting": {"measures"},
    "accessor": {"measures", "plotting"},
    "protocols": {"gating", "rate", "spiking", "tasks", "measures", "plotting"},
    "sweep": set(),  # runs experiments by name (the registry): no model, task or protocol directly
    "cli": LAYERS - {"cli"},
}


def layer(module: str) -> str:
    """The layer of a neuromod module: its first component below ``neuromod``, or ``"base"``."""
    parts = module.split(".")
    if module == "neuromod":
        return "package"
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else "base"


def imports(source: str, module: str, *, is_package: bool = False) -> set[str]:
    """The neuromod modules that `source` (the code of `module`) imports, at any depth of the code."""
    package = module if is_package else module.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*parts, node.module] if node.module else parts)
            else:
                target = node.module or ""
            if target == "neuromod":  # ``from neuromod import results``: the names are modules
                out |= {f"neuromod.{a.name}" for a in node.names}
            else:
                out.add(target)
    return {m for m in out if m.split(".")[0] == "neuromod"}


def violations(module: str, imported: set[str]) -> list[str]:
    """The imports of `module` that its layer may not make."""
    own = layer(module)
    return sorted(m for m in imported if layer(m) not in {own, "base"} and layer(m) not in ALLOWED[own])


def _module(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_follow_the_layers(path):
    module = _module(path)
    found = imports(path.read_text(), module, is_package=path.name == "__init__.py")
    assert not violations(module, found), f"{module} ({layer(module)}) imports {violations(module, found)}"


def test_the_rule_catches_function_level_and_relative_imports():
    source = (
        "def f():\n    from ..protocols import family\n    import neuromod.tasks\n    from . import _kernel\n"
    )
    found = imports(source, "neuromod.rate.circuit")
    assert violations("neuromod.rate.circuit", found) == ["neuromod.protocols", "neuromod.tasks"]
    assert violations("neuromod.plotting", {"neuromod.spiking.fi"}) == ["neuromod.spiking.fi"]
    assert violations("neuromod.protocols.sessions", {"neuromod.spiking", "neuromod.tasks"}) == []


def test_the_design_document_states_the_rule():
    text = (PACKAGE.parent / "docs" / "design.md").read_text()
    assert "tests/test_layers.py" in text and "ModelFamily" in text
    for unit in ALLOWED:
        if unit not in ("base", "package"):
            assert f"`{unit}`" in text, unit
