"""Cost of the SE part of a block, counted by ``torch.utils.flop_counter``."""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from neuromod._checks import check_int
from neuromod.gating.core import ContextSE
from neuromod.gating.variants import JointSE

__all__ = ["SEOverhead", "se_overhead"]


@dataclass(frozen=True)
class SEOverhead:
    """Parameters and FLOPs of the SE part(s) of a block.

    Attributes
    ----------
    se_params, block_params : int
        Parameters of the SE modules and of the whole block (SE included).
    param_ratio : float
        ``se_params / (block_params - se_params)``: extra parameters relative to the host without SE
        (how Hu et al. 2018, Table 2, report the cost); ``inf`` if the block is only SE.
    se_flops, block_flops : int
        FLOPs counted by :class:`torch.utils.flop_counter.FlopCounterMode` (matrix products and
        convolutions; elementwise ops such as the pooling and the rescaling are not counted by it).
    flop_ratio : float
        ``se_flops / (block_flops - se_flops)``.
    """

    se_params: int
    block_params: int
    param_ratio: float
    se_flops: int
    block_flops: int
    flop_ratio: float


def _ratio(part: int, total: int) -> float:
    host = total - part
    return part / host if host else math.inf


def se_overhead(block: nn.Module, input_shape: Sequence[int], *, context: Tensor | None = None) -> SEOverhead:
    """Extra parameters and FLOPs of the SE part of `block` relative to its host.

    The SE part is every outermost :class:`ContextSE` or :class:`JointSE` inside `block`. FLOPs come
    from one forward pass of a copy of `block` in eval mode (the block itself is not touched) on a
    zero input of `input_shape`, under :class:`torch.utils.flop_counter.FlopCounterMode`.

    Parameters
    ----------
    block : nn.Module
        The host block, called as ``block(x)`` or ``block(x, context)``.
    input_shape : sequence of int
        Shape of ``x``, batch included.
    context : Tensor, optional
        Context passed to the block when its gates have ``context_dim > 0``.

    Returns
    -------
    SEOverhead

    Raises
    ------
    ValueError
        If `block` has no SE module or `input_shape` is invalid.

    Examples
    --------
    >>> from neuromod.gating import SEResidualBlock
    >>> cost = se_overhead(SEResidualBlock(64, 64, rd_ratio=1 / 16), (1, 64, 56, 56))
    >>> 0 < cost.param_ratio < 0.02 and 0 < cost.flop_ratio < 0.001
    True
    """
    if not isinstance(block, nn.Module):
        raise TypeError(f"block must be a torch.nn.Module, got {type(block).__name__}")
    shape = tuple(check_int("input_shape", n, low=1) for n in input_shape)
    if not shape:
        raise ValueError("input_shape=() is empty, expected (batch, channels, ...)")
    se_names = []
    for name, m in block.named_modules():
        if isinstance(m, ContextSE | JointSE) and not any(
            name == p or name.startswith(p + ".") if p else True for p in se_names
        ):
            se_names.append(name)
    if not se_names:
        raise ValueError(f"block ({type(block).__name__}) contains no ContextSE or JointSE")
    modules = dict(block.named_modules())
    se_params = sum(p.numel() for n in se_names for p in modules[n].parameters())
    block_params = sum(p.numel() for p in block.parameters())

    probe = copy.deepcopy(block).eval()
    param = next(probe.parameters(), None)
    x = torch.zeros(shape, dtype=param.dtype if param is not None else torch.float32)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        probe(x) if context is None else probe(x, context)
    counts = counter.get_flop_counts()
    root = type(probe).__name__
    block_flops = int(counter.get_total_flops())
    se_flops = 0
    for name in se_names:
        key = f"{root}.{name}" if name else root
        se_flops += int(sum(counts.get(key, {}).values()))
    return SEOverhead(
        se_params=se_params,
        block_params=block_params,
        param_ratio=_ratio(se_params, block_params),
        se_flops=se_flops,
        block_flops=block_flops,
        flop_ratio=_ratio(se_flops, block_flops),
    )
