"""neuromod: context-dependent gain control at three levels of description.

A Squeeze-and-Excitation gate whose excitation also receives a task-context vector (``neuromod.gating``),
a rate model with neuromodulator kinetics (``neuromod.rate``) and a brian2 spiking network
(``neuromod.spiking``) run the same tasks and protocols, and their results share one xarray schema
(``neuromod.results``).

Importing ``neuromod`` is cheap: it registers the ``.nm`` accessor on xarray objects and imports nothing
heavy; torch and brian2 are imported by the subpackages that need them.
"""

from neuromod import accessor as _accessor  # noqa: F401  (registers ds.nm / dt.nm)
from neuromod._version import __version__

__all__ = ["__version__"]
