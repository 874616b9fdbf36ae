"""The Dask worker plugin of sweep workers (imported only where Dask is installed and used)."""

from __future__ import annotations

from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

__all__ = ["SweepWorkerPlugin"]


class SweepWorkerPlugin(WorkerPlugin):
    """Configures every worker of the cluster, present and future (restarted ones included), as a one-core
    sweep worker (:func:`neuromod.sweep._worker.configure_worker`)."""

    name = "neuromod-sweep-worker"

    def setup(self, worker: Any) -> None:
        from neuromod.sweep._worker import configure_worker

        configure_worker()
