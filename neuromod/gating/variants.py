"""Variants of the SE literature as thin wrappers over :class:`~neuromod.gating.ContextSE`.

Each wrapper holds its gate as ``.se`` (a :class:`ContextSE`, so :class:`GateRecorder` and
:func:`se_overhead` find it) and only fixes the layout, the placement in a host block or the way the
descriptor is formed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from neuromod._checks import check_choice, check_int
from neuromod.gating._registry import LayerSpec, resolve_layer
from neuromod.gating.core import ContextSE, Gains

__all__ = [
    "GraphSE",
    "InvertedResidualSE",
    "JointSE",
    "SEResidualBlock",
    "SequenceSE",
    "SpectrogramSE",
    "VideoSE",
    "temporal_smoothness",
]


class SEResidualBlock(nn.Module):
    """ResNet basic block with the gate on the residual path (SE-ResNet).

    ``y = relu(se(bn2(conv2(relu(bn1(conv1(x)))))) + shortcut(x))``: the gate rescales the residual
    branch before the identity is added, the placement of Hu, Shen & Sun (2018),
    "Squeeze-and-Excitation Networks", CVPR, Fig. 3 (SE-ResNet module), on the basic block of
    He et al. (2016), "Deep residual learning for image recognition", CVPR.

    Parameters
    ----------
    in_channels, out_channels : int
        Channels in and out; a 1x1 conv + BN shortcut is used when they differ or ``stride != 1``.
    context_dim : int, default 0
        Context size of the gate.
    stride : int, default 1
        Stride of the first 3x3 convolution.
    **se_kwargs
        Passed to :class:`ContextSE` (e.g. ``rd_ratio=1/16`` as in the paper).

    Examples
    --------
    >>> import torch
    >>> block = SEResidualBlock(8, 16, context_dim=2, stride=2)
    >>> block(torch.randn(2, 8, 10, 10), torch.ones(2, 2)).shape
    torch.Size([2, 16, 5, 5])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        context_dim: int = 0,
        *,
        stride: int = 1,
        **se_kwargs: Any,
    ) -> None:
        super().__init__()
        in_channels = check_int("in_channels", in_channels, low=1)
        out_channels = check_int("out_channels", out_channels, low=1)
        stride = check_int("stride", stride, low=1)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.se = ContextSE(out_channels, context_dim, **se_kwargs)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.se(self.bn2(self.conv2(out)), context)
        return self.relu(out + self.shortcut(x))


class InvertedResidualSE(nn.Module):
    """Inverted-residual (MobileNetV3) block with the gate on the expanded depthwise features.

    1x1 expand -> BN -> act -> kxk depthwise -> BN -> act -> **SE** -> 1x1 project -> BN (+ x when
    the shapes allow), following Howard et al. (2019), "Searching for MobileNetV3", ICCV, Fig. 4 (SE
    with reduction 1/4 and a hard-sigmoid gate after the depthwise convolution), on the inverted
    residual of Sandler et al. (2018), "MobileNetV2", CVPR.

    Parameters
    ----------
    in_channels, out_channels : int
        Channels in and out.
    context_dim : int, default 0
        Context size of the gate.
    expand_ratio : float, default 4.0
        Expanded channels = ``round(in_channels * expand_ratio)``.
    kernel_size : int, default 3
        Depthwise kernel size (odd).
    stride : int, default 1
        Depthwise stride; the residual connection is used when ``stride == 1`` and channels match.
    activation : str or Callable[..., nn.Module], default "hardswish"
        Nonlinearity of the expand and depthwise stages.
    **se_kwargs
        Passed to :class:`ContextSE`; defaults ``rd_ratio=0.25``, ``gate="hardsigmoid"``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        context_dim: int = 0,
        *,
        expand_ratio: float = 4.0,
        kernel_size: int = 3,
        stride: int = 1,
        activation: LayerSpec = "hardswish",
        **se_kwargs: Any,
    ) -> None:
        super().__init__()
        in_channels = check_int("in_channels", in_channels, low=1)
        out_channels = check_int("out_channels", out_channels, low=1)
        kernel_size = check_int("kernel_size", kernel_size, low=1)
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size={kernel_size} must be odd")
        stride = check_int("stride", stride, low=1)
        if not expand_ratio > 0:
            raise ValueError(f"expand_ratio={expand_ratio!r} must be > 0")
        act = resolve_layer("activation", activation)
        hidden = max(1, round(in_channels * expand_ratio))
        self.expand = nn.Sequential(
            nn.Conv2d(in_channels, hidden, 1, bias=False), nn.BatchNorm2d(hidden), act()
        )
        self.depthwise = nn.Sequential(
            nn.Conv2d(hidden, hidden, kernel_size, stride, kernel_size // 2, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden),
            act(),
        )
        se_kwargs = {"rd_ratio": 0.25, "gate": "hardsigmoid", **se_kwargs}
        self.se = ContextSE(hidden, context_dim, **se_kwargs)
        self.project = nn.Sequential(
            nn.Conv2d(hidden, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels)
        )
        self.use_residual = stride == 1 and in_channels == out_channels

    def forward(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        out = self.project(self.se(self.depthwise(self.expand(x)), context))
        return out + x if self.use_residual else out


class GraphSE(nn.Module):
    """Gate for graph node features pooled per graph through a node-to-graph index.

    Node features ``x`` (nodes, channels) from a batch of graphs; ``index[n]`` is the graph of node
    ``n``. The squeeze pools the nodes of each graph (``index_add``/``scatter_reduce``), one gate
    vector per graph is computed and broadcast back to its nodes. ``squeeze="mean"`` is invariant to
    duplicating every node; ``"sum"`` counts nodes (the mean vs sum readouts compared by Xu, Hu,
    Leskovec & Jegelka 2019, "How powerful are graph neural networks?", ICLR, sec. 5). This is the
    SE block of Hu et al. (2018) with a graph readout (Gilmer et al. 2017, "Neural message passing
    for quantum chemistry", ICML) as its squeeze.

    Parameters
    ----------
    channels, context_dim
        As in :class:`ContextSE`; the context is per graph, ``(graphs, context_dim)``.
    squeeze : {"mean", "sum", "max", "attention"}, default "mean"
    **se_kwargs
        Passed to :class:`ContextSE`.
    """

    def __init__(
        self, channels: int, context_dim: int = 0, *, squeeze: str = "mean", **se_kwargs: Any
    ) -> None:
        super().__init__()
        self.se = ContextSE(channels, context_dim, squeeze=squeeze, channel_dim=1, **se_kwargs)

    def gain(
        self, x: Tensor, index: Tensor, context: Tensor | None = None, *, mask: Tensor | None = None
    ) -> Gains:
        """Gains per graph, ``(graphs, channels)``; `mask` (nodes, 1) selects nodes."""
        return self.se.gain(x, context, mask=mask, index=index)

    def forward(
        self, x: Tensor, index: Tensor, context: Tensor | None = None, *, mask: Tensor | None = None
    ) -> Tensor:
        return self.se(x, context, mask=mask, index=index)


class SequenceSE(nn.Module):
    """Gate for token sequences, channels last, with a padding mask.

    ``x`` is (batch, length, channels) as in transformer and RNN stacks; padded tokens are excluded
    from the squeeze, so they cannot change the gains. SE over a whole sequence follows the global
    context blocks of Han et al. (2020), "ContextNet: Improving convolutional neural networks for
    automatic speech recognition with global context", Interspeech.

    Parameters
    ----------
    channels, context_dim
        As in :class:`ContextSE`.
    causal : bool, default False
        If True, a gate per token from that token's features only (``time_dim=1``), so the gate at
        step t never sees the future, so right padding only affects its own (unused) gates; with
        ``tau_ms``/``dt_ms`` the gates follow first-order kinetics.
    **se_kwargs
        Passed to :class:`ContextSE`.
    """

    def __init__(
        self, channels: int, context_dim: int = 0, *, causal: bool = False, **se_kwargs: Any
    ) -> None:
        super().__init__()
        self.causal = bool(causal)
        extra = {"time_dim": 1, "squeeze_dims": ()} if causal else {}
        self.se = ContextSE(channels, context_dim, channel_dim=-1, **extra, **se_kwargs)

    def _mask(self, x: Tensor, padding_mask: Tensor | None) -> Tensor | None:
        if padding_mask is None:
            return None
        if not isinstance(padding_mask, Tensor) or padding_mask.dtype != torch.bool:
            raise TypeError("padding_mask must be a bool tensor (True marks padding)")
        if x.ndim != 3 or tuple(padding_mask.shape) != tuple(x.shape[:2]):
            raise ValueError(
                f"padding_mask has shape {tuple(padding_mask.shape)}, expected "
                f"{tuple(x.shape[:2])} (batch, length) for x of shape {tuple(x.shape)}"
            )
        return (~padding_mask).unsqueeze(-1)

    def gain(
        self,
        x: Tensor,
        context: Tensor | None = None,
        *,
        padding_mask: Tensor | None = None,
        state: Tensor | Gains | None = None,
    ) -> Gains:
        """Gains ``(batch, channels)`` (``(batch, length, channels)`` if causal).

        `padding_mask` is (batch, length) bool, True at padding (the ``key_padding_mask`` convention
        of ``torch.nn.MultiheadAttention``).
        """
        mask = self._mask(x, padding_mask)  # validated in both modes
        if self.causal:  # each token's gate sees only that token: padding cannot leak
            mask = None
        return self.se.gain(x, context, mask=mask, state=state)

    def forward(
        self,
        x: Tensor,
        context: Tensor | None = None,
        *,
        padding_mask: Tensor | None = None,
        state: Tensor | Gains | None = None,
    ) -> Tensor:
        mask = self._mask(x, padding_mask)
        if self.causal:
            mask = None
        return self.se(x, context, mask=mask, state=state)


class VideoSE(nn.Module):
    """Per-frame gates for video, with kinetics across frames and a smoothness penalty.

    ``x`` is (batch, channels, time, height, width); each frame is squeezed over space, so the gates
    are (batch, time, channels), and with ``tau_ms``/``dt_ms`` they relax across frames (``dt_ms``
    is the frame interval). Frame-wise SE with temporal smoothing follows the temporal excitation
    modules of video networks, e.g. Li et al. (2020), "TEA: Temporal Excitation and Aggregation for
    Action Recognition", CVPR; :meth:`temporal_smoothness` is a penalty on frame-to-frame gate
    changes to add to the loss.

    Parameters
    ----------
    channels, context_dim
        As in :class:`ContextSE`; the context may be (batch, K) or per frame (batch, time, K).
    **se_kwargs
        Passed to :class:`ContextSE` (``tau_ms``, ``dt_ms``, ``squeeze``, ``gate``, ...).
    """

    def __init__(self, channels: int, context_dim: int = 0, **se_kwargs: Any) -> None:
        super().__init__()
        self.se = ContextSE(
            channels, context_dim, channel_dim=1, time_dim=2, squeeze_dims=(3, 4), **se_kwargs
        )

    def gain(self, x: Tensor, context: Tensor | None = None, *, state: Tensor | Gains | None = None) -> Gains:
        """Per-frame gains ``(batch, time, channels)``."""
        return self.se.gain(x, context, state=state)

    def forward(
        self, x: Tensor, context: Tensor | None = None, *, state: Tensor | Gains | None = None
    ) -> Tensor:
        return self.se(x, context, state=state)

    @staticmethod
    def temporal_smoothness(gains: Tensor | Gains) -> Tensor:
        """Mean squared frame-to-frame change of the gains; see :func:`temporal_smoothness`."""
        return temporal_smoothness(gains)


def temporal_smoothness(gains: Tensor | Gains, *, time_dim: int = 1) -> Tensor:
    """Penalty on gate changes between consecutive steps: ``mean((g[t+1] - g[t])**2)``.

    Parameters
    ----------
    gains : Tensor or Gains
        Gains with a time axis, e.g. (batch, time, channels) from :meth:`VideoSE.gain`.
    time_dim : int, default 1
        The time axis of `gains`.

    Returns
    -------
    Tensor
        A differentiable scalar, 0 for constant gains.

    Raises
    ------
    ValueError
        If `gains` has fewer than 2 steps along `time_dim`.

    Examples
    --------
    >>> import torch
    >>> float(temporal_smoothness(torch.tensor([[[0.0], [1.0], [3.0]]])))
    2.5
    """
    g = gains.gain if isinstance(gains, Gains) else gains
    if not isinstance(g, Tensor):
        raise TypeError(f"gains must be a Tensor or Gains, got {type(g).__name__}")
    if not -g.ndim <= time_dim < g.ndim or g.shape[time_dim] < 2:
        raise ValueError(
            f"gains has shape {tuple(g.shape)}, expected at least 2 steps along time_dim={time_dim}"
        )
    return torch.diff(g, dim=time_dim).pow(2).mean()


class SpectrogramSE(nn.Module):
    """Gate for spectrogram features, squeezing over frequency and time.

    ``x`` is (batch, channels, frequency, time). By default one gate vector per clip from a squeeze
    over frequency and time (as in SE residual networks for audio, e.g. Naranjo-Alcazar et al. 2019,
    "Acoustic scene classification with squeeze-excitation residual networks"); with
    ``per_frame=True`` the squeeze runs
    over frequency only and each frame gets its own gate (streaming / causal), optionally with
    kinetics (``tau_ms``, ``dt_ms`` = hop length in ms).

    Parameters
    ----------
    channels, context_dim
        As in :class:`ContextSE`.
    per_frame : bool, default False
        Gate per time frame instead of per clip.
    **se_kwargs
        Passed to :class:`ContextSE`.
    """

    def __init__(
        self, channels: int, context_dim: int = 0, *, per_frame: bool = False, **se_kwargs: Any
    ) -> None:
        super().__init__()
        self.per_frame = bool(per_frame)
        layout = {"time_dim": 3, "squeeze_dims": (2,)} if per_frame else {"squeeze_dims": (2, 3)}
        self.se = ContextSE(channels, context_dim, channel_dim=1, **layout, **se_kwargs)

    def gain(self, x: Tensor, context: Tensor | None = None, *, state: Tensor | Gains | None = None) -> Gains:
        """Gains ``(batch, channels)``, or ``(batch, time, channels)`` with ``per_frame``."""
        return self.se.gain(x, context, state=state)

    def forward(
        self, x: Tensor, context: Tensor | None = None, *, state: Tensor | Gains | None = None
    ) -> Tensor:
        return self.se(x, context, state=state)


class JointSE(nn.Module):
    """Multimodal gate: squeeze each modality, concatenate, one shared excitation, split the gates.

    The Multimodal Transfer Module (MMTM) of Joze, Shaban, Iuzzolino & Koishida (2020), "MMTM:
    Multimodal Transfer Module for CNN Fusion", CVPR, eq. 1-4: ``S_m = squeeze(x_m)``,
    ``Z = W [S_1, ..., S_M] (+ context)``, ``E_m = W_m Z``, ``x~_m = gain_max * sigma(E_m) * x_m``
    (MMTM uses ``2 * sigmoid``, i.e. ``gain_max=2``). The joint excitation is one :class:`ContextSE`
    (``.se``) over the concatenated descriptor, so each modality's gates depend on every modality.

    Parameters
    ----------
    channels : sequence of int
        Channels of each modality (at least 2 modalities).
    context_dim : int, default 0
        Context size.
    squeeze : {"mean", "sum", "max"}, default "mean"
        Pooling of each modality over all its dimensions other than batch (0) and channel (1).
    **se_kwargs
        Passed to the joint :class:`ContextSE` (``rd_ratio`` applies to the summed channels, as the
        MMTM joint dimension ``(C_1 + C_2) / 4``).

    Examples
    --------
    >>> import torch
    >>> mm = JointSE([8, 4], gain_max=2.0)
    >>> video, audio = torch.randn(2, 8, 3, 5, 5), torch.randn(2, 4, 20)
    >>> [g.gain.shape for g in mm.gain([video, audio])]
    [torch.Size([2, 8]), torch.Size([2, 4])]
    """

    def __init__(
        self,
        channels: Sequence[int],
        context_dim: int = 0,
        *,
        squeeze: str = "mean",
        **se_kwargs: Any,
    ) -> None:
        super().__init__()
        if isinstance(channels, int) or len(channels) < 2:
            raise ValueError(f"channels={channels!r}, expected a sequence of >= 2 channel counts")
        self.modality_channels = tuple(check_int("channels", c, low=1) for c in channels)
        check_choice("squeeze", squeeze, ("mean", "sum", "max"))
        self.squeeze = squeeze
        self.se = ContextSE(sum(self.modality_channels), context_dim, squeeze=squeeze, **se_kwargs)

    def _descriptor(self, xs: Sequence[Tensor]) -> Tensor:
        if len(xs) != len(self.modality_channels):
            raise ValueError(
                f"got {len(xs)} modalities, expected {len(self.modality_channels)} "
                f"(channels={self.modality_channels})"
            )
        parts = []
        for m, (x, c) in enumerate(zip(xs, self.modality_channels, strict=True)):
            if not isinstance(x, Tensor) or x.ndim < 2 or x.shape[1] != c:
                shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
                raise ValueError(f"xs[{m}] has shape {shape}, expected (batch, {c}, ...)")
            if x.shape[0] != xs[0].shape[0]:
                raise ValueError(f"xs[{m}] has batch {x.shape[0]}, expected {xs[0].shape[0]} (as xs[0])")
            dims = tuple(range(2, x.ndim))
            if not dims:
                parts.append(x)
            elif self.squeeze == "mean":
                parts.append(x.mean(dims))
            else:
                parts.append(x.sum(dims) if self.squeeze == "sum" else x.amax(dims))
        s = torch.cat(parts, dim=1)
        if not torch.isfinite(s).all():
            raise ValueError("xs must be finite, got non-finite values in the squeezed inputs")
        return s

    def gain(self, xs: Sequence[Tensor], context: Tensor | None = None) -> list[Gains]:
        """Gains per modality, each ``(batch, channels_m)``."""
        joint = self.se.excite(self._descriptor(xs), context)
        splits = list(self.modality_channels)
        gains = torch.split(joint.gain, splits, dim=1)
        if joint.offset is None:
            return [Gains(g) for g in gains]
        offsets = torch.split(joint.offset, splits, dim=1)
        return [Gains(g, b) for g, b in zip(gains, offsets, strict=True)]

    def forward(self, xs: Sequence[Tensor], context: Tensor | None = None) -> list[Tensor]:
        out = []
        for x, g in zip(xs, self.gain(xs, context), strict=True):
            shape = (x.shape[0], x.shape[1]) + (1,) * (x.ndim - 2)
            y = x * g.gain.reshape(shape)
            if g.offset is not None:
                y = y.add_(g.offset.reshape(shape))
            out.append(y)
        return out
