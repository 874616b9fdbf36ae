"""ContextSE: a Squeeze-and-Excitation gate whose excitation also receives a task context.

The SE block (Hu, Shen & Sun 2018, "Squeeze-and-Excitation Networks", CVPR, eq. 2-4) read as
context-dependent gain control: the squeeze summarises ongoing activity, the excitation plays the
neuromodulatory system, and the gate is the gain of each population (channel). See "The
correspondence" table in ``docs/design.md``.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple

import torch
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from neuromod._checks import check_bool, check_choice, check_int, check_positive
from neuromod.gating._registry import (
    CONTEXT_MODES,
    SQUEEZE_MODES,
    LayerSpec,
    layer_name,
    resolve_layer,
)

__all__ = ["ContextSE", "Gains"]

SqueezeMode = Literal["mean", "sum", "max", "attention"]
ContextMode = Literal["concat", "add"]
GateName = Literal["sigmoid", "hardsigmoid", "softplus"]
GainHook = Callable[[nn.Module, "Gains"], None]


class Gains(NamedTuple):
    """What :meth:`ContextSE.gain` returns.

    Attributes
    ----------
    gain : Tensor
        The gates ``g`` (the gain of each channel), channels last: shape ``(batch, channels)``, or
        ``(batch, time, channels)`` when the module has a ``time_dim``, or ``(graphs, channels)``
        when a node-to-graph ``index`` is given.
    offset : Tensor or None
        The additive term ``b`` (same shape as `gain`) when the module has ``offset=True``, else
        None.
    """

    gain: Tensor
    offset: Tensor | None = None


@dataclass(frozen=True)
class _Layout:
    """Dimensions of one input, normalised to non-negative indices."""

    ndim: int
    channel_dim: int
    time_dim: int | None
    squeeze_dims: tuple[int, ...]
    kept: tuple[int, ...]  # dims left after the squeeze, in x's order (always starts with 0)


def _shape(t: Tensor | None) -> str:
    return "None" if t is None else str(tuple(t.shape))


def _sum(t: Tensor, dims: tuple[int, ...]) -> Tensor:
    # torch treats an empty dim list as "reduce everything": guard it
    return t.sum(dims) if dims else t


def _amax(t: Tensor, dims: tuple[int, ...]) -> Tensor:
    return t.amax(dims) if dims else t


def _check_tensor(name: str, value: object, *, floating: bool = True) -> Tensor:
    if not isinstance(value, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if floating and not value.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {value.dtype}")
    return value


def _check_finite_tensor(name: str, value: Tensor, what: str = "") -> None:
    if not torch.isfinite(value).all():
        bad = int((~torch.isfinite(value)).sum())
        raise ValueError(
            f"{name} must be finite, got {bad} non-finite value(s){what} in a tensor of shape "
            f"{tuple(value.shape)}"
        )


class ContextSE(nn.Module):
    r"""Squeeze-and-Excitation gate conditioned on a task context: the gain of each channel.

    For an input ``x`` with ``channels`` channels and a context ``k`` (Hu et al. 2018, eq. 2-4, with
    the context added to the excitation's input)::

        s   = squeeze(x)                              # eq. 2, z in the paper   -> `squeeze`
        e   = W2 delta(W1 [s, k])  or  W2 delta(W1 (s + P k))                   -> `excitation`
        g   = gain_max * sigma(e[:C])                 # eq. 3, s in the paper   -> `gain`
        b   = e[C:]                  (offset=True)                              -> `offset`
        y   = g * x (+ b)                             # eq. 4, x~ in the paper

    and, with ``tau_ms`` and ``dt_ms``, the gates relax towards their instantaneous value along
    ``time_dim`` as ``dg/dt = (g*(t) - g) / tau`` (the neuromodulator's release/uptake).

    Argument to symbol (Hu et al. 2018) and to "The correspondence" table of ``docs/design.md``:

    ============================  ==========================  =================================
    argument                      SENet symbol                correspondence (name in code)
    ============================  ==========================  =================================
    ``channels``                  C                           neural populations (``channel``)
    ``squeeze``                   F_sq, eq. 2 (mean)          summary of activity (``squeeze``)
    ``context_dim``               (new)                       rule / task signal (``context``)
    ``rd_ratio``/``rd_channels``  1/r, C/r (hidden units)     neuromodulatory system
    Linear -> ReLU -> Linear      W1, delta, W2 (eq. 3)       release pattern (``excitation``)
    ``gate``, ``gain_max``        sigma (eq. 3)               gain of population c (``gain``)
    ``offset``                    (FiLM-like, new)            additive modulation (``offset``)
    ``tau_ms``, ``dt_ms``         (new)                       release/uptake time (``tau_ms``)
    ============================  ==========================  =================================

    With ``context_dim=0``, ``squeeze="mean"``, ``gate="sigmoid"``, ``gain_max=1``, no offset and no
    kinetics the module computes exactly the SENet equations.

    Parameters
    ----------
    channels : int
        Number of channels C of the input (>= 1).
    context_dim : int, default 0
        Size K of the task-context vector; 0 for a plain (context-free) SE gate.
    rd_ratio : float, default 0.25
        Reduction ratio 1/r: the excitation has ``round(channels * rd_ratio)`` hidden units (at
        least 1). There is no hidden divisor that silently overrides the ratio (unlike timm's
        default of 8).
    rd_channels : int, optional
        Explicit number of hidden units; overrides `rd_ratio`.
    squeeze : {"mean", "sum", "max", "attention"}, default "mean"
        Pooling over the squeezed positions. ``"attention"`` learns a softmax mask over the
        positions (one logit per position from a linear map of the channels, without a bias: the
        softmax is invariant to a shift common to all logits, so a bias could not change the output);
        the last mask is kept in ``last_attention`` for inspection.
    context_mode : {"concat", "add"}, default "concat"
        How the context joins the descriptor: concatenated to the excitation's input, or mapped by a
        learned projection ``P`` (``context_proj``) to C values added to the descriptor.
    gate : {"sigmoid", "hardsigmoid", "softplus"} or Callable[..., nn.Module], default "sigmoid"
        The gating nonlinearity sigma; its output is multiplied by `gain_max`, so ``sigmoid`` gives
        gains in ``(0, gain_max)``, ``hardsigmoid`` in ``[0, gain_max]`` and ``softplus`` in
        ``(0, inf)``.
    gain_max : float, default 1.0
        Scale of the gate (> 0). Use 2 for gains that can amplify as well as attenuate.
    offset : bool, default False
        Also produce an additive term ``b`` per channel (FiLM-like, Perez et al. 2018), so that gain
        (multiplicative) and offset (additive) modulation can be learned and told apart. Its weights
        start at zero, so the module starts as a pure gain.
    tau_ms, dt_ms : float, optional
        Gate kinetics along `time_dim` (both or neither, > 0): exact discretisation of
        ``dg/dt = (g*(t) - g)/tau`` for ``g*`` held constant over each step,
        ``g[t] = g*[t] + (g[t-1] - g*[t]) * exp(-dt/tau)``, starting from ``g[0] = g*[0]`` or from a
        given ``state`` (the gain just before the first step). The offset follows the same kinetics.
    activation : str or Callable[..., nn.Module], default "relu"
        The excitation's hidden nonlinearity delta.
    inplace : bool, default False
        :meth:`forward` rescales `x` in place (like ``nn.ReLU(inplace=True)``), which saves the
        allocation of a new output the size of `x`. Use it only where `x` is a temporary (e.g. a
        convolution's output); autograd stays correct (it keeps what it needs, or raises).
    channel_dim : int, default 1
        Dimension of `x` that holds the channels (``-1`` for channels last); never 0 (the batch).
    squeeze_dims : sequence of int, optional
        Dimensions pooled by the squeeze. Default: every dimension except batch (0), `channel_dim`
        and `time_dim`. Batch, channel, time and squeeze dimensions must together cover every
        dimension.
    time_dim : int, optional
        Dimension of `x` holding time. Gates are then computed per time step from a squeeze over the
        other dimensions only (a causal squeeze), the context may vary in time (``(batch, time,
        K)``), and with `tau_ms` the gates follow first-order kinetics.

    Attributes
    ----------
    excitation : nn.Sequential
        ``fc1`` (W1) -> ``act`` (delta) -> ``fc2`` (W2; 2C outputs with `offset`).
    gate : nn.Module
        The gating nonlinearity.
    context_proj : nn.Linear or None
        P, for ``context_mode="add"`` with ``context_dim > 0``.
    attention : nn.Linear or None
        The attention squeeze's position scorer (C -> 1, ``bias=False``). State dicts saved before the
        bias was removed still load: their ``attention.bias`` entry is dropped (it could not change
        the output, see `squeeze`).
    last_attention : Tensor or None
        The last attention mask (detached), shaped like `x` with a channel dimension of size 1; it
        sums to 1 over the squeezed positions.

    Raises
    ------
    ValueError
        On invalid options, naming the argument, the value and what was expected.

    Examples
    --------
    >>> import torch
    >>> se = ContextSE(16, context_dim=2)
    >>> x, k = torch.randn(4, 16, 8, 8), torch.eye(2)[[0, 1, 0, 1]]
    >>> se.gain(x, k).gain.shape
    torch.Size([4, 16])
    >>> se(x, k).shape
    torch.Size([4, 16, 8, 8])
    """

    def __init__(
        self,
        channels: int,
        context_dim: int = 0,
        *,
        rd_ratio: float = 0.25,
        rd_channels: int | None = None,
        squeeze: SqueezeMode = "mean",
        context_mode: ContextMode = "concat",
        gate: GateName | Callable[..., nn.Module] = "sigmoid",
        gain_max: float = 1.0,
        offset: bool = False,
        tau_ms: float | None = None,
        dt_ms: float | None = None,
        activation: LayerSpec = "relu",
        inplace: bool = False,
        channel_dim: int = 1,
        squeeze_dims: Sequence[int] | None = None,
        time_dim: int | None = None,
    ) -> None:
        super().__init__()
        channels = check_int("channels", channels, low=1)
        context_dim = check_int("context_dim", context_dim, low=0)
        rd_ratio = check_positive("rd_ratio", rd_ratio)
        if rd_channels is not None:
            rd_channels = check_int("rd_channels", rd_channels, low=1)
        check_choice("squeeze", squeeze, SQUEEZE_MODES)
        check_choice("context_mode", context_mode, CONTEXT_MODES)
        gate_factory = resolve_layer("gate", gate)
        act_factory = resolve_layer("activation", activation)
        gain_max = check_positive("gain_max", gain_max)
        check_bool("offset", offset)
        check_bool("inplace", inplace)
        if (tau_ms is None) != (dt_ms is None):
            raise ValueError(f"tau_ms={tau_ms!r} and dt_ms={dt_ms!r}: gate kinetics need both (or neither)")
        if tau_ms is not None:
            tau_ms = check_positive("tau_ms", tau_ms)
            dt_ms = check_positive("dt_ms", dt_ms)
            if time_dim is None:
                raise ValueError(
                    f"tau_ms={tau_ms!r} needs time_dim (the dimension of x along which the gates "
                    "relax), got time_dim=None"
                )
        channel_dim = check_int("channel_dim", channel_dim)
        if channel_dim == 0:
            raise ValueError("channel_dim=0 is the batch dimension; expected 1, -1 or another dim")
        if time_dim is not None:
            time_dim = check_int("time_dim", time_dim)
            if time_dim == 0:
                raise ValueError("time_dim=0 is the batch dimension; expected another dim")
        if squeeze_dims is not None:
            if isinstance(squeeze_dims, int):
                squeeze_dims = (squeeze_dims,)
            squeeze_dims = tuple(check_int("squeeze_dims", d) for d in squeeze_dims)

        self.channels = channels
        self.context_dim = context_dim
        self.rd_ratio = rd_ratio
        self.rd_channels = rd_channels or max(1, round(channels * rd_ratio))
        self.squeeze = squeeze
        self.context_mode = context_mode
        self.gate_name = layer_name(gate)
        self.gain_max = gain_max
        self.offset = offset
        self.inplace = inplace
        self.tau_ms = tau_ms
        self.dt_ms = dt_ms
        self.channel_dim = channel_dim
        self.squeeze_dims = squeeze_dims
        self.time_dim = time_dim
        self._alpha = math.exp(-dt_ms / tau_ms) if tau_ms is not None else None

        n_in = channels + (context_dim if context_mode == "concat" else 0)
        n_out = 2 * channels if offset else channels
        self.excitation = nn.Sequential(
            OrderedDict(
                fc1=nn.Linear(n_in, self.rd_channels),
                act=act_factory(),
                fc2=nn.Linear(self.rd_channels, n_out),
            )
        )
        self.gate = gate_factory()
        self.context_proj = (
            nn.Linear(context_dim, channels) if context_mode == "add" and context_dim else None
        )
        # no bias: softmax(l + b) = softmax(l), so a bias would be a parameter with zero gradient
        self.attention = nn.Linear(channels, 1, bias=False) if squeeze == "attention" else None
        if offset:
            with torch.no_grad():
                self.excitation.fc2.weight[channels:].zero_()
                self.excitation.fc2.bias[channels:].zero_()
        self.last_attention: Tensor | None = None
        self._gain_hooks: OrderedDict[int, GainHook] = OrderedDict()

    # ------------------------------------------------------------------ public API
    def gain(
        self,
        x: Tensor,
        context: Tensor | None = None,
        *,
        mask: Tensor | None = None,
        index: Tensor | None = None,
        state: Tensor | Gains | None = None,
    ) -> Gains:
        """Compute the gates (and offsets) for `x` without applying them.

        Parameters
        ----------
        x : Tensor
            Input with `channels` channels along `channel_dim` and the batch along dim 0 (the nodes,
            when `index` is given).
        context : Tensor, optional
            Task context, ``(batch, context_dim)``; with a `time_dim` also ``(batch, time,
            context_dim)``; with `index`, ``(graphs, context_dim)``. Required iff ``context_dim >
            0``.
        mask : Tensor of bool, optional
            Region mask restricting the squeeze (foreground vs background probing, padding): same
            number of dimensions as `x`, each of `x`'s length or 1, and 1 along `channel_dim`.
            True marks positions that enter the squeeze.
        index : Tensor of int, optional
            Node-to-graph index for graph inputs ``x`` of shape ``(nodes, channels, ...)``: node
            ``n`` belongs to graph ``index[n]``; the squeeze then pools over the nodes of each graph
            (scatter mean/sum/max/attention) and one gate vector is produced per graph.
        state : Tensor or Gains, optional
            With kinetics: the gains just before the first time step, ``(batch, channels)`` (a
            :class:`Gains` also sets the offset's state). Default: start at the steady state
            ``g*(0)``.

        Returns
        -------
        Gains
            ``Gains(gain, offset)``; channels last, see :class:`Gains` for the shapes. `offset` is
            None unless the module was built with ``offset=True``.

        Raises
        ------
        ValueError
            Wrong channel count, wrong context size, a context given to a gate with
            ``context_dim=0`` (or missing when required), mismatched `index` length, a bad `mask`,
            or non-finite values in the squeezed input or the context.
        """
        gains, _ = self._gains(x, context, mask=mask, index=index, state=state)
        return gains

    def forward(
        self,
        x: Tensor,
        context: Tensor | None = None,
        *,
        mask: Tensor | None = None,
        index: Tensor | None = None,
        state: Tensor | Gains | None = None,
    ) -> Tensor:
        """Apply the gates: ``y = g * x`` (``+ b`` with `offset`). Arguments as in :meth:`gain`.

        One read of `x` for the squeeze and one broadcast multiply (no copies); with ``inplace=True``
        the result is written into `x`.
        """
        gains, layout = self._gains(x, context, mask=mask, index=index, state=state)
        g = self._expand(gains.gain, layout, x, index)
        y = x.mul_(g) if self.inplace else x * g
        if gains.offset is not None:
            y = y.add_(self._expand(gains.offset, layout, x, index))
        return y

    def excite(
        self,
        s: Tensor,
        context: Tensor | None = None,
        *,
        state: Tensor | Gains | None = None,
    ) -> Gains:
        """Excitation, gate and kinetics from a squeeze descriptor `s` (channels last).

        Parameters
        ----------
        s : Tensor
            Descriptor ``(batch, channels)`` or, with kinetics/time, ``(batch, time, channels)``.
        context, state
            As in :meth:`gain`.

        Returns
        -------
        Gains
        """
        _check_tensor("s", s)
        self._check_dtype("s", s)
        if s.ndim not in (2, 3) or s.shape[-1] != self.channels:
            raise ValueError(
                f"s has shape {tuple(s.shape)}, expected (batch, {self.channels}) or "
                f"(batch, time, {self.channels})"
            )
        context = self._check_context(context, s)
        if context is not None:
            if context.ndim < s.ndim:  # static context, time-varying descriptor
                context = context.unsqueeze(1).expand(-1, s.shape[1], -1)
            if self.context_mode == "concat":
                s = torch.cat([s, context.to(s.dtype)], dim=-1)
            else:
                s = s + self.context_proj(context.to(s.dtype))
        e = self.excitation(s)
        z = e[..., : self.channels] if self.offset else e
        g = self.gate(z)
        if self.gain_max != 1.0:
            g = g * self.gain_max
        b = e[..., self.channels :] if self.offset else None
        if self._alpha is not None and g.ndim == 3:
            g_state, b_state = self._split_state(state, g)
            g = self._relax(g, g_state)
            if b is not None:
                b = self._relax(b, b_state)
        elif state is not None:
            raise ValueError(
                "state was given but this ContextSE has no kinetics along time "
                f"(tau_ms={self.tau_ms!r}, time_dim={self.time_dim!r}); expected state=None"
            )
        gains = Gains(g, b)
        for hook in tuple(self._gain_hooks.values()):
            hook(self, gains)
        return gains

    def register_gain_hook(self, hook: GainHook) -> RemovableHandle:
        """Call ``hook(module, gains)`` every time this module computes gains.

        Used by :class:`~neuromod.gating.GateRecorder`; works for :meth:`forward`, :meth:`gain` and
        :meth:`excite` alike. Returns a handle whose ``remove()`` unregisters the hook.
        """
        handle = RemovableHandle(self._gain_hooks)
        self._gain_hooks[handle.id] = hook
        return handle

    def extra_repr(self) -> str:
        parts = [
            f"channels={self.channels}",
            f"context_dim={self.context_dim}",
            f"rd_channels={self.rd_channels}",
            f"squeeze={self.squeeze!r}",
            f"context_mode={self.context_mode!r}",
            f"gate={self.gate_name!r}",
            f"gain_max={self.gain_max:g}",
            f"offset={self.offset}",
        ]
        if self.inplace:
            parts.append("inplace=True")
        if self.tau_ms is not None:
            parts += [f"tau_ms={self.tau_ms:g}", f"dt_ms={self.dt_ms:g}"]
        parts.append(f"channel_dim={self.channel_dim}")
        if self.squeeze_dims is not None:
            parts.append(f"squeeze_dims={self.squeeze_dims}")
        if self.time_dim is not None:
            parts.append(f"time_dim={self.time_dim}")
        return ", ".join(parts)

    # ------------------------------------------------------------------ internals
    def _load_from_state_dict(
        self,
        state_dict: dict[str, Tensor],
        prefix: str,
        local_metadata: dict[str, object],
        strict: bool,
        missing_keys: list[str],
        unexpected_keys: list[str],
        error_msgs: list[str],
    ) -> None:
        # Earlier versions gave the attention scorer a bias. It is added to every logit of a softmax
        # over positions, so it never changed the output: drop it, and old state dicts load (strictly)
        # into the bias-free scorer with unchanged outputs.
        legacy = prefix + "attention.bias"
        if self.attention is not None and self.attention.bias is None and legacy in state_dict:
            del state_dict[legacy]
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )

    def _gains(
        self,
        x: Tensor,
        context: Tensor | None,
        *,
        mask: Tensor | None,
        index: Tensor | None,
        state: Tensor | Gains | None,
    ) -> tuple[Gains, _Layout]:
        layout = self._layout(x, graph=index is not None)
        if mask is not None:
            mask = self._check_mask(mask, x, layout)
        if index is not None:
            index = self._check_index(index, x)
        if context is None and self.context_dim > 0:
            # fail before the squeeze does any work
            self._check_context(None, x)
        s = self._squeeze(x, layout, mask, index)
        _check_finite_tensor("x", s, " in the squeezed positions")
        # descriptor to channels last: (batch, [time,] channels)
        s = s.movedim(layout.kept.index(layout.channel_dim), -1)
        return self.excite(s, context, state=state), layout

    def _layout(self, x: Tensor, *, graph: bool) -> _Layout:
        _check_tensor("x", x)
        self._check_dtype("x", x)
        nd = x.ndim
        if nd < 2:
            raise ValueError(
                f"x has shape {tuple(x.shape)}, expected at least 2 dimensions (batch, channels, ...)"
            )

        def norm(name: str, d: int) -> int:
            if not -nd <= d < nd:
                raise ValueError(
                    f"{name}={d} is out of range for x with {nd} dimensions, shape {tuple(x.shape)}"
                )
            return d % nd

        cd = norm("channel_dim", self.channel_dim)
        if cd == 0:
            raise ValueError(f"channel_dim={self.channel_dim} points at the batch dimension of x")
        if x.shape[cd] != self.channels:
            raise ValueError(
                f"x has {x.shape[cd]} channels along channel_dim={self.channel_dim} "
                f"(shape {tuple(x.shape)}), expected {self.channels}"
            )
        td = None if self.time_dim is None else norm("time_dim", self.time_dim)
        if td is not None and (td in (0, cd)):
            raise ValueError(
                f"time_dim={self.time_dim} coincides with the batch or channel dimension of x "
                f"(shape {tuple(x.shape)})"
            )
        if graph and td is not None:
            raise ValueError("index (graph inputs) cannot be combined with time_dim")
        fixed = {0, cd} | ({td} if td is not None else set())
        if self.squeeze_dims is None:
            sq = tuple(d for d in range(nd) if d not in fixed)
        else:
            sq = tuple(sorted({norm("squeeze_dims", d) for d in self.squeeze_dims}))
            clash = sorted(set(sq) & fixed)
            if clash:
                raise ValueError(
                    f"squeeze_dims={self.squeeze_dims} includes dim {clash[0]}, which is the "
                    f"batch, channel or time dimension of x (shape {tuple(x.shape)})"
                )
            missing = [d for d in range(nd) if d not in fixed and d not in sq]
            if missing:
                raise ValueError(
                    f"squeeze_dims={self.squeeze_dims} leaves dim {missing[0]} of x (shape "
                    f"{tuple(x.shape)}) neither squeezed nor batch/channel/time; expected every "
                    "other dimension to be squeezed"
                )
        empty = [d for d in sq if x.shape[d] == 0]
        if empty:
            raise ValueError(
                f"x has shape {tuple(x.shape)}: the squeezed dim {empty[0]} is empty; expected at least one "
                "position to squeeze"
            )
        kept = tuple(sorted(fixed))
        return _Layout(nd, cd, td, sq, kept)

    def _check_dtype(self, name: str, t: Tensor) -> None:
        """`t` must have the dtype of the excitation's weights (autocast casts both itself)."""
        w = self.excitation.fc1.weight
        if t.dtype != w.dtype and not torch.is_autocast_enabled(t.device.type):
            raise TypeError(
                f"{name} has dtype {t.dtype} but this ContextSE's weights have dtype {w.dtype}; expected "
                f"the same dtype (convert {name}, or the module with .to({t.dtype}))"
            )

    def _check_mask(self, mask: Tensor, x: Tensor, layout: _Layout) -> Tensor:
        _check_tensor("mask", mask, floating=False)
        if mask.dtype != torch.bool:
            raise TypeError(f"mask must be a bool tensor, got dtype {mask.dtype}")
        expected = tuple(1 if d == layout.channel_dim else n for d, n in enumerate(x.shape))
        ok = mask.ndim == x.ndim and all(m in (1, n) for m, n in zip(mask.shape, expected, strict=True))
        if not ok or mask.shape[layout.channel_dim] != 1:
            raise ValueError(
                f"mask has shape {tuple(mask.shape)}, expected {expected} (or 1 along any dim) "
                f"for x of shape {tuple(x.shape)}"
            )
        return mask.expand(expected)  # a view; counts then see every position

    def _check_index(self, index: Tensor, x: Tensor) -> Tensor:
        _check_tensor("index", index, floating=False)
        if index.dtype not in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8):
            raise TypeError(f"index must be an integer tensor, got dtype {index.dtype}")
        if index.ndim != 1 or index.shape[0] != x.shape[0]:
            raise ValueError(
                f"index has shape {tuple(index.shape)}, expected ({x.shape[0]},): one graph id per "
                f"node of x (shape {tuple(x.shape)})"
            )
        if index.numel() == 0:
            raise ValueError("index is empty, expected at least one node")
        if int(index.min()) < 0:
            raise ValueError(f"index must be >= 0, got min {int(index.min())}")
        return index.long()

    def _check_context(self, context: Tensor | None, s: Tensor) -> Tensor | None:
        k = self.context_dim
        if k == 0:
            if context is not None:
                raise ValueError(
                    f"context was given (shape {_shape(context)}) but this ContextSE has "
                    "context_dim=0; expected context=None, or build it with context_dim=K"
                )
            return None
        time = self.time_dim is not None
        expected = f"(batch, {k})" + (f" or (batch, time, {k})" if time else "")
        if context is None:
            raise ValueError(f"context is required (context_dim={k}): expected shape {expected}")
        _check_tensor("context", context)
        ok_ndim = context.ndim == 2 or (time and context.ndim == 3 and s.ndim == 3)
        if not ok_ndim or context.shape[-1] != k:
            raise ValueError(f"context has shape {tuple(context.shape)}, expected {expected}")
        if context.shape[0] != s.shape[0] or (context.ndim == 3 and context.shape[1] != s.shape[1]):
            lead = tuple(s.shape[: context.ndim - 1])
            raise ValueError(
                f"context has shape {tuple(context.shape)}, expected {(*lead, k)} to match the "
                "batch (graphs with index) and time of x"
            )
        _check_finite_tensor("context", context)
        return context

    def _squeeze(self, x: Tensor, lay: _Layout, mask: Tensor | None, index: Tensor | None) -> Tensor:
        """Squeeze descriptor with the kept dims of x in x's order (channels where x has them)."""
        dims = lay.squeeze_dims
        mode = self.squeeze
        if mode == "attention":
            return self._attention_squeeze(x, lay, mask, index)
        if mask is None and index is None:  # the fast path (SENet)
            if not dims:
                return x
            if mode == "mean":
                return x.mean(dims)
            return x.sum(dims) if mode == "sum" else x.amax(dims)
        count = None
        if mask is not None:
            count = _sum(mask, dims).to(x.dtype)  # positions per (batch/node, 1, [time])
        if mode == "max":
            t = x if mask is None else x.masked_fill(~mask, -math.inf)
            out = _amax(t, dims)
            if index is not None:
                n_graphs = int(index.max()) + 1
                init = out.new_full((n_graphs, *out.shape[1:]), -math.inf)
                out = init.scatter_reduce(0, _expand_index(index, out), out, "amax")
                if count is not None:
                    count = _group_sum(count, index, n_graphs)
            if count is not None:
                _check_count(count)
            return out
        t = x if mask is None else torch.where(mask, x, 0.0)
        total = _sum(t, dims)
        if index is not None:
            n_graphs = int(index.max()) + 1
            total = _group_sum(total, index, n_graphs)
            if count is None:
                n_pos = math.prod(x.shape[d] for d in dims)
                count = torch.bincount(index, minlength=n_graphs).to(x.dtype) * n_pos
                count = count.view(-1, *([1] * (total.ndim - 1)))
            else:
                count = _group_sum(count, index, n_graphs)
        if count is not None:
            _check_count(count)
        if mode == "sum":
            return total
        return total / count

    def _attention_squeeze(
        self, x: Tensor, lay: _Layout, mask: Tensor | None, index: Tensor | None
    ) -> Tensor:
        dims = lay.squeeze_dims
        cd = lay.channel_dim
        w = self.attention.weight[0].to(x.dtype)
        logits = torch.matmul(x.movedim(cd, -1), w).unsqueeze(cd)
        if mask is not None:
            _check_count(_sum(mask, dims) if index is None else None)
            logits = logits.masked_fill(~mask, -math.inf)
        if index is None:
            if dims:
                a = torch.exp(logits - torch.logsumexp(logits, dims, keepdim=True))
            else:
                a = torch.ones_like(logits)
            s = _sum(a * x, dims)
        else:  # segment softmax over (nodes of a graph) x (squeezed positions)
            n_graphs = int(index.max()) + 1
            node_max = _amax(logits, dims)  # (nodes, 1)
            init = node_max.new_full((n_graphs, *node_max.shape[1:]), -math.inf)
            gmax = init.scatter_reduce(0, _expand_index(index, node_max), node_max, "amax")
            if not torch.isfinite(gmax).all():
                raise ValueError("mask selects no position for some graph (or a graph has no node)")
            shift = gmax.index_select(0, index).view(-1, *([1] * (x.ndim - 1)))
            e = torch.exp(logits - shift)
            z = _group_sum(_sum(e, dims), index, n_graphs)  # (graphs, 1)
            s = _group_sum(_sum(e * x, dims), index, n_graphs) / z
            a = e / z.index_select(0, index).view(-1, *([1] * (x.ndim - 1)))
        self.last_attention = a.detach()
        return s

    def _expand(self, g: Tensor, lay: _Layout, x: Tensor, index: Tensor | None) -> Tensor:
        """Gains (channels last) -> a view that broadcasts against x."""
        if index is not None:
            g = g.index_select(0, index.long())
        g = g.movedim(-1, lay.kept.index(lay.channel_dim))
        shape = [1] * lay.ndim
        for pos, d in enumerate(lay.kept):
            shape[d] = g.shape[pos]
        return g.reshape(shape)

    def _split_state(self, state: Tensor | Gains | None, g: Tensor) -> tuple[Tensor | None, Tensor | None]:
        if state is None:
            return None, None
        g_state, b_state = (state.gain, state.offset) if isinstance(state, Gains) else (state, None)
        expected = (g.shape[0], g.shape[2])
        for name, t in (("state", g_state), ("state.offset", b_state)):
            if t is None:
                continue
            _check_tensor(name, t)
            if tuple(t.shape) != expected:
                raise ValueError(f"{name} has shape {tuple(t.shape)}, expected {expected}")
            _check_finite_tensor(name, t)
        return g_state, b_state

    def _relax(self, target: Tensor, state: Tensor | None) -> Tensor:
        """Exact first-order relaxation of ``target`` (batch, time, C) along time."""
        alpha = self._alpha
        prev = target[:, 0] if state is None else torch.lerp(target[:, 0], state.to(target), alpha)
        out = [prev]
        for t in range(1, target.shape[1]):
            prev = torch.lerp(target[:, t], prev, alpha)  # g*[t] + alpha (g[t-1] - g*[t])
            out.append(prev)
        return torch.stack(out, dim=1)


def _expand_index(index: Tensor, like: Tensor) -> Tensor:
    return index.view(-1, *([1] * (like.ndim - 1))).expand_as(like)


def _group_sum(t: Tensor, index: Tensor, n_groups: int) -> Tensor:
    return t.new_zeros((n_groups, *t.shape[1:])).index_add_(0, index, t)


def _check_count(count: Tensor | None) -> None:
    if count is not None and bool((count == 0).any()):
        raise ValueError(
            "mask selects no position for some sample (or a graph in index has no node); "
            "expected at least one True per squeezed region"
        )
