"""Variants: residual/inverted-residual placement, graphs, sequences, video, audio, JointSE."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from neuromod.gating import (
    ContextSE,
    GraphSE,
    InvertedResidualSE,
    JointSE,
    SequenceSE,
    SEResidualBlock,
    SpectrogramSE,
    VideoSE,
    temporal_smoothness,
)


@pytest.mark.parametrize(("cin", "cout", "stride"), [(8, 8, 1), (8, 16, 2)])
def test_se_residual_block(cin: int, cout: int, stride: int) -> None:
    block = SEResidualBlock(cin, cout, context_dim=2, stride=stride).eval()
    x, k = torch.randn(2, cin, 10, 10), torch.randn(2, 2)
    # the gate sits on the residual branch: reference composition of the same layers on the same numbers,
    # in the same (no-grad) mode, so bitwise equal
    with torch.no_grad():
        y = block(x, k)
        branch = block.bn2(block.conv2(block.relu(block.bn1(block.conv1(x)))))
        g = block.se.gain(branch, k).gain
        expected = torch.relu(branch * g[:, :, None, None] + block.shortcut(x))
    assert y.shape == (2, cout, 10 // stride, 10 // stride)
    torch.testing.assert_close(y, expected, rtol=0, atol=0)
    # ... and the gate matters: without it the block computes something else
    assert float((expected - torch.relu(branch + block.shortcut(x))).abs().max().detach()) > 0.1


def test_inverted_residual_se() -> None:
    block = InvertedResidualSE(8, 8, context_dim=3, expand_ratio=3.0, kernel_size=5).eval()
    assert block.se.channels == 24 and block.se.gate_name == "hardsigmoid"
    assert block.se.rd_channels == 6 and block.use_residual
    x = torch.randn(2, 8, 9, 9)
    y = block(x, torch.randn(2, 3))
    assert y.shape == x.shape
    down = InvertedResidualSE(8, 12, stride=2)
    assert down(x).shape == (2, 12, 5, 5) and not down.use_residual
    with pytest.raises(ValueError, match=r"kernel_size=4 must be odd"):
        InvertedResidualSE(8, 8, kernel_size=4)


def _graphs(gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    index = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2, 2])
    return torch.randn(9, 6, generator=gen), index


@pytest.mark.parametrize("squeeze", ["mean", "max", "attention"])
def test_graph_duplicate_nodes_invariant(gen: torch.Generator, squeeze: str, fp: SimpleNamespace) -> None:
    se = GraphSE(6, squeeze=squeeze, rd_ratio=1.0, activation="gelu")  # gelu: never flat for all graphs
    x, index = _graphs(gen)
    x_dup, index_dup = torch.cat([x, x]), torch.cat([index, index])
    g = se.gain(x, index).gain
    g_dup = se.gain(x_dup, index_dup).gain
    assert g.shape == (3, 6)
    atol = fp.gain_atol(se.se, x_dup, (), index=index_dup)  # twice the nodes: bounds both sides
    assert float((g[0] - g[2]).abs().max().detach()) > atol  # gains differ between graphs
    torch.testing.assert_close(g_dup, g, rtol=0, atol=atol)


def test_graph_sum_squeeze_changes_with_duplicates(gen: torch.Generator, fp: SimpleNamespace) -> None:
    se = GraphSE(6, squeeze="sum", rd_ratio=1.0, activation="gelu")  # gelu: never flat for all graphs
    x, index = _graphs(gen)
    x_dup, index_dup = torch.cat([x, x]), torch.cat([index, index])
    g = se.gain(x, index).gain
    g_dup = se.gain(x_dup, index_dup).gain
    assert float((g - g_dup).abs().max().detach()) > fp.gain_atol(se.se, x_dup, (), index=index_dup)


@pytest.mark.parametrize("squeeze", ["mean", "sum", "max"])
def test_graph_squeeze_reference(gen: torch.Generator, squeeze: str, fp: SimpleNamespace) -> None:
    se = GraphSE(6, context_dim=2, squeeze=squeeze)
    x, index = _graphs(gen)
    k = torch.randn(3, 2, generator=gen)
    op = {"mean": lambda t: t.mean(0), "sum": lambda t: t.sum(0), "max": lambda t: t.amax(0)}
    s = torch.stack([op[squeeze](x[index == i]) for i in range(3)])
    expected = torch.sigmoid(se.se.excitation(torch.cat([s, k], 1)))
    atol = fp.gain_atol(se.se, x, (), index=index, context=k)
    torch.testing.assert_close(se.gain(x, index, k).gain, expected, rtol=0, atol=atol)
    y = se(x, index, k)
    x_max = float(x.abs().max())  # y = g x: the gains' bound times |x|, plus the product's rounding
    torch.testing.assert_close(y, x * expected[index], rtol=0, atol=atol * x_max + fp.eps(x.dtype) * x_max)


def test_graph_attention_sums_to_one_per_graph(gen: torch.Generator, fp: SimpleNamespace) -> None:
    se = GraphSE(6, squeeze="attention", rd_ratio=1.0)
    x, index = _graphs(gen)
    se(x, index)
    a = se.se.last_attention.squeeze(1)
    sums = torch.zeros(3).index_add_(0, index, a)
    n_max = int(torch.bincount(index).max())  # nodes of the largest graph
    torch.testing.assert_close(sums, torch.ones(3), **fp.softmax_sum_tol(a.dtype, n_max))


def test_graph_errors(gen: torch.Generator) -> None:
    se = GraphSE(6, context_dim=2)
    x, index = _graphs(gen)
    with pytest.raises(ValueError, match=r"index has shape \(8,\), expected \(9,\)"):
        se(x, index[:8], torch.zeros(3, 2))
    with pytest.raises(ValueError, match=r"context has shape \(2, 2\), expected \(3, 2\)"):
        se(x, index, torch.zeros(2, 2))


@pytest.mark.parametrize("squeeze", ["mean", "sum", "max", "attention"])
def test_sequence_padding_does_not_change_gains(
    gen: torch.Generator, squeeze: str, fp: SimpleNamespace
) -> None:
    se = SequenceSE(8, context_dim=2, squeeze=squeeze)
    lengths = [5, 3, 7]
    x = torch.randn(3, 7, 8, generator=gen)
    pad = torch.arange(7)[None, :] >= torch.tensor(lengths)[:, None]
    k = torch.randn(3, 2, generator=gen)
    g = se.gain(x, k, padding_mask=pad).gain
    if squeeze == "attention":
        a = se.se.last_attention.squeeze(-1)
        torch.testing.assert_close(a.sum(1), torch.ones(3), **fp.softmax_sum_tol(a.dtype, 7))
        assert float(a[pad].abs().max()) == 0.0
    # padded positions enter the squeeze only as exact zeros (or -inf logits): bitwise the same gains
    x_other = torch.where(pad[..., None], 100 * torch.randn(3, 7, 8, generator=gen), x)
    torch.testing.assert_close(se.gain(x_other, k, padding_mask=pad).gain, g, rtol=0, atol=0)
    # each sequence alone, unpadded (sums in another order: within the two-sided bound)
    atol = fp.gain_atol(se.se, x, (1,), channel_dim=-1, context=k)
    for b, n in enumerate(lengths):
        alone = se.gain(x[b : b + 1, :n], k[b : b + 1]).gain
        torch.testing.assert_close(alone, g[b : b + 1], rtol=0, atol=atol)
    with pytest.raises(ValueError, match=r"padding_mask has shape \(3, 6\), expected \(3, 7\)"):
        se(x, k, padding_mask=pad[:, :6])


def test_sequence_causal_gates() -> None:
    se = SequenceSE(4, causal=True, tau_ms=5.0, dt_ms=1.0)
    x = torch.randn(2, 12, 4)
    g = se.gain(x).gain
    assert g.shape == (2, 12, 4)
    x2 = x.clone()
    x2[:, 6:] = -x2[:, 6:]
    torch.testing.assert_close(se.gain(x2).gain[:, :6], g[:, :6], rtol=0, atol=0)
    assert se(x).shape == x.shape


def test_video_per_frame_gates_and_smoothness(fp: SimpleNamespace) -> None:
    x = torch.randn(2, 6, 10, 4, 4)
    # gelu: with relu and the 2 hidden units of 6 * 1/4, all can be off and the gates constant (1 seed in 25)
    fast = VideoSE(6, context_dim=2, activation="gelu")
    slow = VideoSE(6, context_dim=2, tau_ms=200.0, dt_ms=40.0, activation="gelu")
    slow.load_state_dict(fast.state_dict())
    k = torch.randn(2, 10, 2)  # context per frame
    g_fast, g_slow = fast.gain(x, k).gain, slow.gain(x, k).gain
    assert g_fast.shape == (2, 10, 6)
    # per-frame squeeze over space
    s = x.mean((3, 4)).transpose(1, 2)
    expected = torch.sigmoid(fast.se.excitation(torch.cat([s, k], -1)))
    torch.testing.assert_close(g_fast, expected, rtol=0, atol=fp.gain_atol(fast.se, x, (3, 4), context=k))
    assert fast(x, k).shape == x.shape
    # kinetics smooth the gates across frames: the penalty drops
    with torch.no_grad():
        pen_fast = temporal_smoothness(g_fast)
        pen_slow = VideoSE.temporal_smoothness(g_slow)
    assert float(pen_slow) < 0.5 * float(pen_fast)
    assert float(temporal_smoothness(torch.ones(2, 5, 3))) == 0.0
    # the penalty is differentiable and trains towards smoother gates: a small step against its
    # gradient, sized to lower it by 1 % to first order (lr |grad|^2 = 0.01 penalty), lowers it by at
    # least half that (the second-order term is lr^2 / 2 grad' H grad, small at this step)
    penalty = temporal_smoothness(fast.gain(x, k))
    penalty.backward()
    params = list(fast.parameters())
    sq_norm = sum(float(p.grad.pow(2).sum()) for p in params)
    assert sq_norm > 0.0
    lr = 0.01 * float(penalty.detach()) / sq_norm
    with torch.no_grad():
        for p in params:
            p -= lr * p.grad
        after = temporal_smoothness(fast.gain(x, k))
    assert float(after) < (1 - 0.005) * float(penalty.detach())
    with pytest.raises(ValueError, match=r"expected at least 2 steps along time_dim=1"):
        temporal_smoothness(torch.ones(2, 1, 3))


@pytest.mark.parametrize("per_frame", [False, True])
def test_spectrogram(per_frame: bool, fp: SimpleNamespace) -> None:
    se = SpectrogramSE(5, per_frame=per_frame)
    x = torch.randn(3, 5, 16, 11)  # (batch, channels, frequency, time)
    g = se.gain(x).gain
    if per_frame:
        s = x.mean(2).transpose(1, 2)
        assert g.shape == (3, 11, 5)
    else:
        s = x.mean((2, 3))
        assert g.shape == (3, 5)
    atol = fp.gain_atol(se.se, x, (2,) if per_frame else (2, 3))
    torch.testing.assert_close(g, torch.sigmoid(se.se.excitation(s)), rtol=0, atol=atol)
    assert se(x).shape == x.shape


def test_joint_se_cross_modal_effect(fp: SimpleNamespace) -> None:
    # gelu: with relu, the 2 hidden units of (6 + 4) * 1/4 can both be off and the gates constant
    mm = JointSE([6, 4], context_dim=2, gain_max=2.0, activation="gelu")
    video, audio = torch.randn(2, 6, 3, 5, 5), torch.randn(2, 4, 20)
    k = torch.randn(2, 2)
    g_video, g_audio = mm.gain([video, audio], k)
    assert g_video.gain.shape == (2, 6) and g_audio.gain.shape == (2, 4)
    # MMTM eq. 1-4 reference: shared excitation over the concatenated descriptors
    s = torch.cat([video.mean((2, 3, 4)), audio.mean(2), k], 1)
    e = 2.0 * torch.sigmoid(mm.se.excitation(s))
    # the joint descriptor's bound: each modality's squeeze, concatenated, through the shared excitation
    parts = [fp.squeeze(video, "mean", (2, 3, 4)), fp.squeeze(audio + 1.5, "mean", (2,))]
    s_mag, s_err = (torch.cat(t, -1) for t in zip(*parts, strict=True))
    atol = 2 * float(fp.excitation(mm.se, s_mag, s_err, k)[1].max())  # audio + 1.5 bounds audio too
    torch.testing.assert_close(torch.cat([g_video.gain, g_audio.gain], 1), e, rtol=0, atol=atol)
    # change only the audio: the video gates change
    g_video2, _ = mm.gain([video, audio + 1.5], k)
    assert float((g_video2.gain - g_video.gain).abs().max().detach()) > atol
    y_video, y_audio = mm([video, audio], k)
    # the same gains times the same numbers: bitwise equal
    torch.testing.assert_close(y_video, video * g_video.gain[:, :, None, None, None], rtol=0, atol=0)
    assert y_audio.shape == audio.shape
    with pytest.raises(ValueError, match=r"xs\[1\] has shape \(2, 3, 20\), expected \(batch, 4"):
        mm([video, audio[:, :3]], k)
    with pytest.raises(ValueError, match=r"got 1 modalities, expected 2"):
        mm([video], k)


def test_wrappers_hold_a_context_se() -> None:
    for module in [
        SEResidualBlock(4, 4),
        InvertedResidualSE(4, 4),
        GraphSE(4),
        SequenceSE(4),
        VideoSE(4),
        SpectrogramSE(4),
        JointSE([4, 2]),
    ]:
        assert isinstance(module.se, ContextSE)
