"""Sphinx configuration of the neuromod documentation site (``make docs``; HTML in ``docs/_build/html``).

Pages are Markdown (MyST) and the notebooks of ``notebooks/``, executed at build time in quick mode
(``NEUROMOD_QUICK=1``) by myst-nb, so the figures on the site are always those of the code they document. The
API reference is generated from the docstrings (numpydoc) of every public name (``__all__``) of the
documented modules. The build is ``nitpicky``: every cross-reference must resolve, except third-party names
listed in ``nitpick_ignore_regex`` (no inventories are downloaded: the build works offline).

``NEUROMOD_DOCS_API_ONLY=1`` builds the API reference alone, without executing the notebooks (what the test
suite builds, with warnings as errors).
"""

from __future__ import annotations

import importlib
import inspect
import os
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

import neuromod  # noqa: E402

API_ONLY = os.environ.get("NEUROMOD_DOCS_API_ONLY") == "1"

project = "neuromod"
author = "neuromod developers"
copyright = "neuromod developers"
release = version = neuromod.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "myst_nb",
]

# --- sources ------------------------------------------------------------------------------------------------
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
exclude_patterns = ["_build", "**.ipynb_checkpoints", "README.md"]
templates_path = ["_templates"]
root_doc = "index"

# The notebooks live in notebooks/ (where `make test` runs them); copied here for the build.
NOTEBOOKS = HERE / "notebooks"
if not API_ONLY:
    NOTEBOOKS.mkdir(exist_ok=True)
    for notebook in sorted((ROOT / "notebooks").glob("*.ipynb")):
        target = NOTEBOOKS / notebook.name
        if not target.exists() or target.read_bytes() != notebook.read_bytes():
            shutil.copyfile(notebook, target)
else:
    exclude_patterns += ["notebooks/**", "index.md", "install.md", "guide/**", "gallery.md"]
    root_doc = "api/index"
    suppress_warnings = ["toc.not_included"]  # design.md, linked from the reference, is in no toctree here

# --- notebooks (myst-nb) ------------------------------------------------------------------------------------
nb_execution_mode = "off" if API_ONLY else "force"
nb_execution_timeout = 900
nb_execution_raise_on_error = True
nb_execution_show_tb = True
os.environ.setdefault("NEUROMOD_QUICK", "1")  # the notebooks' quick mode (seconds, not minutes)
myst_enable_extensions = ["dollarmath", "colon_fence"]
myst_heading_anchors = 3

# --- API reference ------------------------------------------------------------------------------------------
#: The documented modules: each gets a page listing its public names (``__all__``), each name a page.
API_MODULES = (
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
#: Modules of the protocols layer with settings and tools of their own (the experiments' and families'
#: config classes, the family interface, the memory estimate): their names not already documented above.
API_SUBMODULES = (
    "neuromod.protocols.task_switching",
    "neuromod.protocols.gain_curves",
    "neuromod.protocols.decision",
    "neuromod.protocols.experiment",
    "neuromod.protocols.family",
    "neuromod.protocols.memory",
    "neuromod.protocols.families.se",
    "neuromod.protocols.families.rate",
    "neuromod.protocols.families.spiking",
)


def _kind(obj: object) -> str:
    if isinstance(obj, type):
        return "Exceptions" if issubclass(obj, BaseException) else "Classes"
    if inspect.isroutine(obj):
        return "Functions"
    return "Constants and types"


#: id of every documented class and function -> the name it is documented under (filled by the pages below)
DOCUMENTED: dict[int, str] = {}


def write_module_pages(folder: Path) -> None:
    """One page per documented module (``api/modules/NAME.rst``): its docstring, then its public names
    grouped by kind in autosummary tables, from which autosummary makes a page per name. Written from
    ``__all__`` itself, so a public name cannot be left out (constants and type aliases re-exported by a
    package included, which autosummary's own module listing misses). A class or function documented
    under an earlier module is linked there rather than documented twice."""
    folder.mkdir(parents=True, exist_ok=True)
    seen = DOCUMENTED
    for name in (*API_MODULES, *API_SUBMODULES):
        module = importlib.import_module(name)
        groups: dict[str, list[str]] = {}
        elsewhere = []
        for member in module.__all__:
            obj = getattr(module, member)
            kind = _kind(obj)
            if kind != "Constants and types" and id(obj) in seen:
                elsewhere.append(f":py:obj:`{member} <{seen[id(obj)]}>`")
                continue
            if kind != "Constants and types":
                seen[id(obj)] = f"{name}.{member}"
            groups.setdefault(kind, []).append(member)
        lines = [name, "=" * len(name), "", f".. automodule:: {name}", "   :no-members:", ""]
        for kind in ("Classes", "Functions", "Exceptions", "Constants and types"):
            if groups.get(kind):
                lines += [f".. rubric:: {kind}", "", ".. autosummary::", "   :toctree: ../generated", ""]
                lines += [f"   {member}" for member in groups[kind]] + [""]
        if elsewhere:
            lines += [".. rubric:: Also here", "", ", ".join(elsewhere), ""]
        text = "\n".join(lines)
        page = folder / f"{name}.rst"
        if not page.exists() or page.read_text() != text:
            page.write_text(text)


write_module_pages(HERE / "api" / "modules")
autosummary_generate = True
autosummary_ignore_module_all = False  # a module's public names are its __all__
autosummary_imported_members = True
autodoc_default_options = {"members": True, "inherited-members": False, "show-inheritance": True}
autodoc_typehints = "none"  # the numpydoc Parameters sections say the types
autoclass_content = "class"
autodoc_inherit_docstrings = False  # e.g. torch's Module.forward text on every gate's forward
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

# --- cross-references ---------------------------------------------------------------------------------------
nitpicky = True
#: third-party and standard-library names (no inventories are fetched) and the shorthand of docstrings
nitpick_ignore_regex = [
    (
        r"py:.*",
        r"(xarray|xr|numpy|np|torch|nn|scipy|matplotlib|pandas|dask|distributed|brian2|zarr|typer)\..*",
    ),
    (r"py:.*", r"(pathlib|os|typing|collections|enum|dataclasses|abc|concurrent|logging|json)\..*"),
    (r"py:mod", r"tomllib|json|pickle|logging|concurrent\.futures|multiprocessing"),
    (r"py:class", r"neuromod\.(.*\.)?_\w+"),  # a private base class shown by show-inheritance
]

# --- HTML ---------------------------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"neuromod {release}"
html_static_path: list[str] = []
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "footer_start": ["copyright"],
}
html_show_sourcelink = False


# --- references to a documented object by another of its names ---------------------------------------------
def _lookup(dotted: str) -> object | None:
    """The object a dotted name (``module.attr.attr``) names, importing the longest module prefix."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj: object = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for attr in parts[cut:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return None
        return obj
    return None


def _documented_name(target: str, module: str | None, klass: str | None, page: str) -> str | None:
    """The documented name of what `target` names, seen from `module` (and `klass`) or from the module that
    defines the object of the `page`: an object is documented once (``neuromod.protocols.run_decision``)
    but its docstrings may name things by its defining module (``estimate_memory`` in
    ``neuromod.protocols.decision``); a method by its class's documented name."""
    target = target.lstrip("~.")
    scopes = [f"{module}.{klass}." if module and klass else None, f"{module}." if module else None]
    documented = _lookup(page.rpartition("/")[2]) if page.startswith("api/generated/") else None
    home = getattr(documented, "__module__", None)
    if isinstance(home, str):
        scopes.append(f"{home}.")
        if isinstance(documented, type):
            scopes.append(f"{home}.{documented.__qualname__}.")
    scopes.append("")
    for scope in filter(lambda x: x is not None, scopes):
        owner, _, attr = (scope + target).rpartition(".")
        obj = _lookup(scope + target)
        if obj is None:
            continue
        if id(obj) in DOCUMENTED:
            return DOCUMENTED[id(obj)]
        parent = _lookup(owner) if owner else None
        if isinstance(parent, type) and id(parent) in DOCUMENTED:
            return f"{DOCUMENTED[id(parent)]}.{attr}"
    return None


def _resolve_other_name(app, env, node, contnode):  # noqa: ANN001, ANN202 - Sphinx's event signature
    if node.get("refdomain") != "py":
        return None
    name = _documented_name(node["reftarget"], node.get("py:module"), node.get("py:class"), node["refdoc"])
    if name is None or name == node["reftarget"]:
        return None
    domain = env.get_domain("py")
    return domain.resolve_xref(env, node["refdoc"], app.builder, "obj", name, node, contnode)


def setup(app):  # noqa: ANN001, ANN201 - Sphinx's extension hook
    app.connect("missing-reference", _resolve_other_name)
