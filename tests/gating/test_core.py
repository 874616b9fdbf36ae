"""ContextSE core: SENet equivalence, options, kinetics, masks, attention, errors, gradients."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from torch import nn

from neuromod.gating import ContextSE, Gains


def senet_reference(x: np.ndarray, w1, b1, w2, b2) -> np.ndarray:
    """Hu, Shen & Sun (2018), eq. 2-4, written out in float64 numpy.

    eq. 2: z_c = 1/(H W) sum_i sum_j u_c(i, j)
    eq. 3: s = sigma(W2 delta(W1 z))       (with the FC biases of the reference implementation)
    eq. 4: x~_c = s_c * u_c
    """
    n, c, h, w = x.shape
    z = np.zeros((n, c))
    for i in range(h):
        for j in range(w):
            z += x[:, :, i, j]
    z /= h * w
    hidden = np.maximum(z @ w1.T + b1, 0.0)
    s = 1.0 / (1.0 + np.exp(-(hidden @ w2.T + b2)))
    return s[:, :, None, None] * x


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().double().numpy()


def test_senet_equivalence(image: torch.Tensor) -> None:
    se = ContextSE(16, rd_ratio=1 / 4)
    fc1, fc2 = se.excitation.fc1, se.excitation.fc2
    expected = senet_reference(_np(image), _np(fc1.weight), _np(fc1.bias), _np(fc2.weight), _np(fc2.bias))
    got = se(image).detach().double().numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(("channels", "rd_ratio", "expected"), [(12, 0.25, 3), (64, 1 / 16, 4), (3, 0.25, 1)])
def test_no_hidden_divisor(channels: int, rd_ratio: float, expected: int) -> None:
    # timm's make_divisible(..., 8) would give 8 hidden units for 12 * 0.25
    se = ContextSE(channels, rd_ratio=rd_ratio)
    assert se.rd_channels == expected
    assert se.excitation.fc1.out_features == expected
    assert ContextSE(12, rd_channels=5).rd_channels == 5


@pytest.mark.parametrize("gate", ["sigmoid", "hardsigmoid", "softplus"])
@pytest.mark.parametrize("gain_max", [1.0, 2.5])
def test_gate_range_and_scale(image: torch.Tensor, gate: str, gain_max: float) -> None:
    se = ContextSE(16, gate=gate, gain_max=gain_max)
    with torch.no_grad():
        se.excitation.fc2.weight.mul_(50.0)  # drive the gate towards saturation
        g = se.gain(image * 10).gain
        z = se.excitation(image.mul(10).mean((2, 3)))
    ref = {
        "sigmoid": torch.sigmoid,
        "hardsigmoid": nn.functional.hardsigmoid,
        "softplus": nn.functional.softplus,
    }[gate](z) * gain_max
    torch.testing.assert_close(g, ref, rtol=1e-6, atol=1e-6)
    assert float(g.min()) >= 0.0
    if gate != "softplus":
        assert float(g.max()) <= gain_max


def test_gate_callable_and_registry_errors() -> None:
    se = ContextSE(4, gate=nn.Tanh, activation=nn.GELU)
    assert isinstance(se.gate, nn.Tanh) and isinstance(se.excitation.act, nn.GELU)
    assert "gate='Tanh'" in repr(se)
    with pytest.raises(ValueError, match=r"gate='sigmoidd' is not one of .*did you mean 'sigmoid'"):
        ContextSE(4, gate="sigmoidd")
    with pytest.raises(ValueError, match=r"squeeze='avg' is not one of"):
        ContextSE(4, squeeze="avg")
    with pytest.raises(ValueError, match=r"context_mode='mul' is not one of"):
        ContextSE(4, 2, context_mode="mul")


@pytest.mark.parametrize("squeeze", ["mean", "sum", "max"])
def test_squeeze_modes_match_reference(image: torch.Tensor, squeeze: str) -> None:
    se = ContextSE(16, squeeze=squeeze)
    flat = image.flatten(2)
    s = {"mean": flat.mean(-1), "sum": flat.sum(-1), "max": flat.max(-1).values}[squeeze]
    torch.testing.assert_close(se.gain(image).gain, torch.sigmoid(se.excitation(s)))


@pytest.mark.parametrize("squeeze", ["mean", "sum", "max", "attention"])
def test_region_mask_equals_crop(image: torch.Tensor, squeeze: str) -> None:
    """A mask selecting the left columns gives the gains of the cropped input."""
    se = ContextSE(16, squeeze=squeeze)
    mask = torch.zeros(1, 1, 6, 7, dtype=torch.bool)
    mask[..., :3] = True
    torch.testing.assert_close(
        se.gain(image, mask=mask).gain, se.gain(image[..., :3]).gain, rtol=1e-5, atol=1e-6
    )
    # foreground and background gains differ
    assert not torch.allclose(se.gain(image, mask=mask).gain, se.gain(image, mask=~mask).gain)


def test_attention_mask_sums_to_one(image: torch.Tensor) -> None:
    se = ContextSE(16, squeeze="attention")
    se(image)
    a = se.last_attention
    assert a.shape == (4, 1, 6, 7)
    torch.testing.assert_close(a.sum((2, 3)), torch.ones(4, 1), rtol=0, atol=1e-6)
    assert not a.requires_grad
    # with a region mask: zero outside, still sums to 1
    mask = torch.rand(4, 1, 6, 7, generator=torch.Generator().manual_seed(3)) > 0.5
    se(image, mask=mask)
    torch.testing.assert_close(se.last_attention.sum((2, 3)), torch.ones(4, 1), rtol=0, atol=1e-6)
    assert float(se.last_attention[~mask].abs().max()) == 0.0
    # per time step
    se_t = ContextSE(16, squeeze="attention", time_dim=3)
    se_t(image)
    torch.testing.assert_close(se_t.last_attention.sum(2), torch.ones(4, 1, 7), rtol=0, atol=1e-6)


def test_attention_reference(image: torch.Tensor) -> None:
    se = ContextSE(16, squeeze="attention")
    w, b = se.attention.weight[0], se.attention.bias
    logits = torch.einsum("nchw,c->nhw", image, w) + b
    a = torch.softmax(logits.flatten(1), dim=1).view_as(logits)
    s = torch.einsum("nhw,nchw->nc", a, image)
    torch.testing.assert_close(se.gain(image).gain, torch.sigmoid(se.excitation(s)))


@pytest.mark.parametrize("mode", ["concat", "add"])
def test_context_modes_reference(image: torch.Tensor, mode: str) -> None:
    se = ContextSE(16, 3, context_mode=mode)
    k = torch.randn(4, 3)
    s = image.mean((2, 3))
    inp = torch.cat([s, k], 1) if mode == "concat" else s + se.context_proj(k)
    torch.testing.assert_close(se.gain(image, k).gain, torch.sigmoid(se.excitation(inp)))
    assert (se.context_proj is None) == (mode == "concat")


def test_offset_is_film(image: torch.Tensor) -> None:
    se = ContextSE(16, 2, offset=True)
    k = torch.randn(4, 2)
    g0 = se.gain(image, k)
    assert isinstance(g0, Gains) and torch.count_nonzero(g0.offset) == 0  # starts as a pure gain
    with torch.no_grad():
        se.excitation.fc2.bias[16:].normal_()
    g = se.gain(image, k)
    y = se(image, k)
    torch.testing.assert_close(y, g.gain[:, :, None, None] * image + g.offset[:, :, None, None])
    assert ContextSE(16).gain(image).offset is None


def test_channels_last_layout(image: torch.Tensor) -> None:
    first = ContextSE(16)
    last = ContextSE(16, channel_dim=-1)
    last.load_state_dict(first.state_dict())
    x_last = image.permute(0, 2, 3, 1)
    torch.testing.assert_close(last.gain(x_last).gain, first.gain(image).gain)
    torch.testing.assert_close(last(x_last), first(image).permute(0, 2, 3, 1))


def _kinetic_pair(tau_ms: float, dt_ms: float) -> tuple[ContextSE, ContextSE]:
    kin = ContextSE(3, 2, time_dim=2, tau_ms=tau_ms, dt_ms=dt_ms, offset=True).double()
    inst = ContextSE(3, 2, time_dim=2, offset=True).double()
    inst.load_state_dict(kin.state_dict())
    with torch.no_grad():
        kin.excitation.fc2.weight.mul_(4.0)
        kin.excitation.fc2.bias[3:].normal_()
    inst.load_state_dict(kin.state_dict())
    return kin, inst


@pytest.mark.parametrize(("tau_ms", "dt_ms"), [(20.0, 1.0), (5.0, 0.5), (3.0, 2.0)])
def test_kinetics_step_response(tau_ms: float, dt_ms: float) -> None:
    """Context step at sample k0: g[k] = g_inf + (g_0 - g_inf) exp(-(k - k0 + 1) dt / tau)."""
    kin, inst = _kinetic_pair(tau_ms, dt_ms)
    n_t, k0 = 120, 30
    x = torch.ones(1, 3, n_t, dtype=torch.float64)
    ctx = torch.zeros(1, n_t, 2, dtype=torch.float64)
    ctx[0, :k0, 0] = 1.0
    ctx[0, k0:, 1] = 1.0
    g = kin.gain(x, ctx)
    g_star = inst.gain(x, ctx)
    g0, g_inf = g_star.gain[0, 0], g_star.gain[0, -1]
    assert float((g0 - g_inf).abs().max().detach()) > 0.05  # the step is visible
    t = (torch.arange(k0, n_t, dtype=torch.float64) - k0 + 1) * dt_ms
    decay = torch.exp(-t / tau_ms)[:, None]
    expected = g_inf + (g0 - g_inf) * decay
    torch.testing.assert_close(g.gain[0, :k0], g0.expand(k0, 3), rtol=0, atol=1e-12)
    torch.testing.assert_close(g.gain[0, k0:], expected, rtol=0, atol=1e-5)
    b0, b_inf = g_star.offset[0, 0], g_star.offset[0, -1]
    torch.testing.assert_close(g.offset[0, k0:], b_inf + (b0 - b_inf) * decay, rtol=0, atol=1e-5)


def test_kinetics_state_continues_a_session() -> None:
    kin, _ = _kinetic_pair(10.0, 1.0)
    x = torch.randn(2, 3, 50, dtype=torch.float64)
    ctx = torch.randn(2, 50, 2, dtype=torch.float64)
    full = kin.gain(x, ctx)
    first = kin.gain(x[:, :, :20], ctx[:, :20])
    state = Gains(first.gain[:, -1], first.offset[:, -1])
    second = kin.gain(x[:, :, 20:], ctx[:, 20:], state=state)
    torch.testing.assert_close(torch.cat([first.gain, second.gain], 1), full.gain)
    torch.testing.assert_close(torch.cat([first.offset, second.offset], 1), full.offset)
    # starting from a given state: the first step relaxes from it
    s0 = torch.full((2, 3), 0.9, dtype=torch.float64)
    g = kin.gain(x, ctx, state=s0).gain
    alpha = math.exp(-1.0 / 10.0)
    torch.testing.assert_close(g[:, 0], full.gain[:, 0] + alpha * (s0 - full.gain[:, 0]))


def test_causal_squeeze_per_time_step() -> None:
    """With time_dim, gains at step t depend on x and context up to t only (no future leak)."""
    se = ContextSE(4, 2, time_dim=1, channel_dim=-1, tau_ms=8.0, dt_ms=1.0)
    x = torch.randn(3, 40, 4)
    ctx = torch.randn(3, 40, 2)
    g = se.gain(x, ctx).gain
    x2, ctx2 = x.clone(), ctx.clone()
    x2[:, 25:] += 5.0
    ctx2[:, 25:] -= 3.0
    g2 = se.gain(x2, ctx2).gain
    torch.testing.assert_close(g2[:, :25], g[:, :25], rtol=0, atol=0)
    assert not torch.allclose(g2[:, 25:], g[:, 25:])
    # a static context is broadcast over time
    k = torch.randn(3, 2)
    torch.testing.assert_close(se.gain(x, k).gain, se.gain(x, k[:, None].expand(3, 40, 2)).gain)


def test_extra_repr() -> None:
    text = repr(ContextSE(32, 4, squeeze="attention", tau_ms=50.0, dt_ms=1.0, time_dim=2))
    for part in [
        "channels=32",
        "context_dim=4",
        "rd_channels=8",
        "squeeze='attention'",
        "gate='sigmoid'",
        "tau_ms=50",
        "dt_ms=1",
        "time_dim=2",
    ]:
        assert part in text


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"channels": 0}, ValueError, r"channels=0 is outside the valid range \[1, inf\]"),
        ({"channels": 4, "context_dim": -1}, ValueError, r"context_dim=-1 is outside"),
        ({"channels": 4, "rd_ratio": 0.0}, ValueError, r"rd_ratio=0.0 must be a finite number > 0"),
        ({"channels": 4, "tau_ms": 5.0, "time_dim": 2}, ValueError, r"tau_ms=5.0 and dt_ms=None"),
        ({"channels": 4, "tau_ms": 5.0, "dt_ms": 1.0}, ValueError, r"needs time_dim"),
        ({"channels": 4, "tau_ms": -1.0, "dt_ms": 1.0, "time_dim": 2}, ValueError, r"tau_ms=-1.0"),
        ({"channels": 4, "channel_dim": 0}, ValueError, r"channel_dim=0 is the batch"),
        ({"channels": 4, "gain_max": 0}, ValueError, r"gain_max=0 must be"),
        ({"channels": 4, "offset": 1}, TypeError, r"offset must be a bool"),
    ],
)
def test_constructor_errors(kwargs: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        ContextSE(**kwargs)


def test_call_errors(image: torch.Tensor) -> None:
    se0 = ContextSE(16)
    se = ContextSE(16, 3)
    k = torch.randn(4, 3)
    with pytest.raises(ValueError, match=r"x has 15 channels along channel_dim=1 .*expected 16"):
        se0(image[:, :15])
    with pytest.raises(ValueError, match=r"context was given \(shape \(4, 3\)\) .*context_dim=0"):
        se0(image, k)
    with pytest.raises(ValueError, match=r"context is required \(context_dim=3\): .*\(batch, 3\)"):
        se(image)
    with pytest.raises(ValueError, match=r"context has shape \(4, 2\), expected \(batch, 3\)"):
        se(image, k[:, :2])
    with pytest.raises(ValueError, match=r"context has shape \(3, 3\), expected \(4, 3\)"):
        se(image, k[:3])
    bad = image.clone()
    bad[1, 2, 3, 4] = float("nan")
    with pytest.raises(ValueError, match=r"x must be finite, got 1 non-finite value"):
        se0(bad)
    k_bad = k.clone()
    k_bad[0, 0] = float("inf")
    with pytest.raises(ValueError, match=r"context must be finite"):
        se(image, k_bad)
    with pytest.raises(ValueError, match=r"index has shape \(3,\), expected \(4,\)"):
        se0(image, index=torch.tensor([0, 0, 1]))
    with pytest.raises(ValueError, match=r"mask has shape \(4, 16, 6, 7\), expected \(4, 1, 6, 7\)"):
        se0(image, mask=torch.ones(4, 16, 6, 7, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"mask selects no position"):
        se0(image, mask=torch.zeros(4, 1, 6, 7, dtype=torch.bool))
    with pytest.raises(TypeError, match=r"x must be a floating-point tensor"):
        se0(image.long())
    with pytest.raises(ValueError, match=r"squeeze_dims=\(2,\) leaves dim 3"):
        ContextSE(16, squeeze_dims=(2,))(image)
    with pytest.raises(ValueError, match=r"state was given but this ContextSE has no kinetics"):
        se0.gain(image, state=torch.zeros(4, 16))


SQUEEZES = ["mean", "sum", "max", "attention"]
GATES = ["sigmoid", "hardsigmoid", "softplus"]


@pytest.mark.parametrize("kinetics", [False, True])
@pytest.mark.parametrize("offset", [False, True])
@pytest.mark.parametrize("context_mode", ["concat", "add"])
@pytest.mark.parametrize("gate", GATES)
@pytest.mark.parametrize("squeeze", SQUEEZES)
def test_gradients_flow(squeeze: str, gate: str, context_mode: str, offset: bool, kinetics: bool) -> None:
    kin = {"time_dim": 2, "tau_ms": 4.0, "dt_ms": 1.0} if kinetics else {}
    se = ContextSE(
        6,
        3,
        squeeze=squeeze,
        gate=gate,
        context_mode=context_mode,
        offset=offset,
        rd_channels=4,
        **kin,
    )
    with torch.no_grad():  # make the offset path live from the start
        se.excitation.fc2.weight.normal_(0.0, 0.5)
    x = torch.randn(2, 6, 5, 4, requires_grad=True)
    ctx = torch.randn(2, 5, 3) if kinetics else torch.randn(2, 3)
    ctx.requires_grad_(True)
    y = se(x, ctx)
    (y * torch.randn_like(y)).sum().backward()
    for t, name in [(x, "x"), (ctx, "context")]:
        assert t.grad is not None and torch.isfinite(t.grad).all(), name
        assert float(t.grad.abs().sum()) > 0.0, name
    for name, p in se.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        assert float(p.grad.abs().sum()) > 0.0, name


def test_gradient_option_grid_is_complete() -> None:
    # the parametrization above covers every option of each axis
    from neuromod.gating import CONTEXT_MODES, LAYERS, SQUEEZE_MODES

    assert set(SQUEEZES) == set(SQUEEZE_MODES)
    assert set(GATES) == set(LAYERS["gate"])
    assert set(CONTEXT_MODES) == {"concat", "add"}
    assert len(list(itertools.product(SQUEEZES, GATES, CONTEXT_MODES, [0, 1], [0, 1]))) == 96


@pytest.mark.slow
def test_context_conditioning_learns_relevant_channels() -> None:
    """Toy task: the context says which half of the channels carries the label.

    The other half carries an independent distractor label of the same strength. Both are written
    as a zero-mean spatial pattern, so the squeeze sees no label and the gates can only use the
    context; the readout is context-free, so the task is only solvable by gating. Learned gains of
    the relevant half must exceed those of the irrelevant half by >= 3x in both contexts.
    """
    gen = torch.Generator().manual_seed(5)
    c, half, n_pos = 8, 4, 6
    pattern = torch.tensor([1.0, -1.0] * (n_pos // 2))

    def batch(n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        ctx_id = torch.randint(0, 2, (n,), generator=gen)
        label = torch.randint(0, 2, (n,), generator=gen).float() * 2 - 1
        distractor = torch.randint(0, 2, (n,), generator=gen).float() * 2 - 1
        sign = torch.empty(n, c)
        first = (ctx_id == 0)[:, None]
        sign[:, :half] = torch.where(first, label[:, None], distractor[:, None])
        sign[:, half:] = torch.where(first, distractor[:, None], label[:, None])
        x = sign[:, :, None] * pattern + 0.5 * torch.randn(n, c, n_pos, generator=gen)
        return x, nn.functional.one_hot(ctx_id, 2).float(), (label > 0).float()

    se = ContextSE(c, 2, rd_ratio=1.0)
    readout = nn.Linear(c * n_pos, 1)
    opt = torch.optim.Adam([*se.parameters(), *readout.parameters()], lr=0.05)
    for _ in range(300):
        x, k, y = batch(64)
        logit = readout(se(x, k).flatten(1)).squeeze(-1)
        loss = nn.functional.binary_cross_entropy_with_logits(logit, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    x, k, y = batch(512)
    with torch.no_grad():
        g = se.gain(x, k).gain
        pred = readout(se(x, k).flatten(1)).squeeze(-1) > 0
    assert float((pred.float() == y).float().mean()) > 0.95
    for ctx_id, (rel, irr) in enumerate([(slice(0, half), slice(half, c)), (slice(half, c), slice(0, half))]):
        sel = k[:, ctx_id] == 1
        ratio = float(g[sel][:, rel].mean() / g[sel][:, irr].mean())
        assert ratio >= 3.0, f"context {ctx_id}: relevant/irrelevant gain ratio {ratio:.2f} < 3"


def test_inplace_matches_out_of_place(image: torch.Tensor) -> None:
    ref = ContextSE(16, 2, offset=True)
    inp = ContextSE(16, 2, offset=True, inplace=True)
    with torch.no_grad():
        ref.excitation.fc2.bias[16:].normal_()
    inp.load_state_dict(ref.state_dict())
    k = torch.randn(4, 2)
    expected = ref(image, k)
    # training path: x is a temporary (non-leaf); gradients equal the out-of-place ones
    w = torch.ones(1, requires_grad=True)
    h = image * w
    y = inp(h, k)
    assert y.data_ptr() == h.data_ptr() and "inplace=True" in repr(inp)
    torch.testing.assert_close(y, expected)
    y.pow(2).sum().backward()
    w_grad, fc1_grad = w.grad.clone(), inp.excitation.fc1.weight.grad.clone()
    w.grad = None
    ref(image * w, k).pow(2).sum().backward()
    torch.testing.assert_close(w_grad, w.grad)
    torch.testing.assert_close(fc1_grad, ref.excitation.fc1.weight.grad)
