"""Record the gains of every ContextSE in a model as xarray DataArrays."""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType

import numpy as np
import torch
import xarray as xr
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from neuromod.gating.core import ContextSE, Gains

__all__ = ["GateRecorder"]


class GateRecorder:
    """Context manager that records the gains of every :class:`ContextSE` in a model.

    While active, every gain computation of every ContextSE inside `model` (through ``forward``,
    ``gain`` or a wrapper such as :class:`JointSE`) is stored, detached and on the CPU. Calls are
    concatenated along ``sample``.

    Parameters
    ----------
    model : nn.Module
        A model containing at least one :class:`ContextSE` (the model itself may be one).

    Raises
    ------
    ValueError
        If `model` contains no ContextSE.

    Examples
    --------
    >>> import torch
    >>> se = ContextSE(4, context_dim=2)
    >>> with GateRecorder(se) as rec:
    ...     _ = se(torch.randn(3, 4, 5, 5), torch.ones(3, 2))
    >>> da = rec.gains()["root"]
    >>> da.dims, da.attrs["units"]
    (('sample', 'channel'), '1')
    """

    def __init__(self, model: nn.Module) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        self.modules: dict[str, ContextSE] = {
            (name or "root"): m for name, m in model.named_modules() if isinstance(m, ContextSE)
        }
        if not self.modules:
            raise ValueError(f"model ({type(model).__name__}) contains no ContextSE; expected at least one")
        self._handles: list[RemovableHandle] = []
        self._records: dict[str, list[tuple[Tensor, Tensor | None]]] = {name: [] for name in self.modules}

    @property
    def names(self) -> list[str]:
        """Names of the recorded modules (as in ``model.named_modules()``; the model is "root")."""
        return list(self.modules)

    def __enter__(self) -> GateRecorder:
        for name, module in self.modules.items():
            self._handles.append(module.register_gain_hook(self._hook(name)))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def _hook(self, name: str) -> Callable[[nn.Module, Gains], None]:
        def record(module: nn.Module, gains: Gains) -> None:
            off = None if gains.offset is None else gains.offset.detach().cpu()
            self._records[name].append((gains.gain.detach().cpu(), off))

        return record

    def clear(self) -> None:
        """Forget everything recorded so far."""
        for rec in self._records.values():
            rec.clear()

    def gains(self) -> dict[str, xr.DataArray]:
        """Recorded gains, one DataArray per module name.

        Returns
        -------
        dict of str to xarray.DataArray
            Dims ``("sample", "channel")`` or, for gates with a time dimension,
            ``("sample", "time", "channel")`` (time in ms, when the module has ``dt_ms``) or
            ``("sample", "step", "channel")``. Coordinates ``sample``, ``call`` (forward call
            number, along ``sample``), ``channel`` and time carry ``units`` and ``long_name``; the
            data has ``units="1"``. Modules that were never called are left out.

        Raises
        ------
        ValueError
            If calls of one module produced gains of different shapes (other than the batch).
        """
        return self._collect(0, "gain", "gain of channel")

    def offsets(self) -> dict[str, xr.DataArray]:
        """Recorded offsets (modules built with ``offset=True``), laid out as :meth:`gains`."""
        return self._collect(1, "offset", "additive offset of channel")

    def _collect(self, which: int, var: str, long_name: str) -> dict[str, xr.DataArray]:
        out: dict[str, xr.DataArray] = {}
        for name, recs in self._records.items():
            parts = [r[which] for r in recs if r[which] is not None]
            if not parts:
                continue
            shapes = {tuple(p.shape[1:]) for p in parts}
            if len(shapes) > 1:
                raise ValueError(
                    f"module {name!r} produced gains of shapes {sorted(shapes)} (after the batch); "
                    "expected one shape to concatenate; call clear() between different inputs"
                )
            data = (
                torch.cat(parts)
                .to(torch.float64 if parts[0].dtype == torch.float64 else torch.float32)
                .numpy()
            )
            call = np.concatenate([np.full(p.shape[0], i, dtype=np.int64) for i, p in enumerate(parts)])
            module = self.modules[name]
            coords: dict[str, tuple] = {
                "sample": (
                    "sample",
                    np.arange(data.shape[0]),
                    {"units": "1", "long_name": "sample index (batch entry or graph)"},
                ),
                "call": ("sample", call, {"units": "1", "long_name": "recorded call number"}),
                "channel": (
                    "channel",
                    np.arange(data.shape[-1]),
                    {"units": "1", "long_name": "channel index"},
                ),
            }
            dims: tuple[str, ...] = ("sample", "channel")
            if data.ndim == 3:
                steps = np.arange(data.shape[1])
                if module.dt_ms is not None:
                    tdim = "time"
                    coords[tdim] = (
                        tdim,
                        steps * module.dt_ms,
                        {"units": "ms", "long_name": "time"},
                    )
                else:
                    tdim = "step"
                    coords[tdim] = (tdim, steps, {"units": "1", "long_name": "time step index"})
                dims = ("sample", tdim, "channel")
            out[name] = xr.DataArray(
                data,
                dims=dims,
                coords=coords,
                name=var,
                attrs={
                    "units": "1",
                    "long_name": f"{long_name} (ContextSE {name!r})",
                    "module": name,
                    "gate": module.gate_name,
                    "gain_max": module.gain_max,
                    "context_dim": module.context_dim,
                },
            )
        return out
