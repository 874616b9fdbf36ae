"""Sweeps: one experiment over axes of settings and seeds, on Dask, into one resumable zarr store.

``neuromod sweep SWEEP.toml`` (or :meth:`Sweep.from_toml(...).run(out) <Sweep.run>`) runs every point of a
:class:`SweepSpec` (an experiment, a base config, fixed settings, axes and seeds) on a local Dask cluster, a
running scheduler, SLURM, or serially in this process, and commits each point's result into one zarr store
(``neuromod.sweep._store``). The store, not the scheduler, is the record of what is done: a point is
committed by its worker as soon as it finishes, a rerun of the same command runs only what is not done, and
a changed spec is refused. :func:`open_sweep` reads a store lazily (while it runs, too) and
:func:`hypercube` puts per-point values onto the sweep's axes.
"""

from neuromod.sweep._engine import Sweep, SweepReport
from neuromod.sweep._store import STATUS, SweepStore, SweepStoreError
from neuromod.sweep._view import SweepView, hypercube, open_sweep
from neuromod.sweep.spec import Dimension, Point, SweepSpec

__all__ = [
    "STATUS",
    "Dimension",
    "Point",
    "Sweep",
    "SweepReport",
    "SweepSpec",
    "SweepStore",
    "SweepStoreError",
    "SweepView",
    "hypercube",
    "open_sweep",
]
