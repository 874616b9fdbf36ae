"""Tests of SETaskModel: pooled squeeze, gate kinetics, fixed readout, accumulators, closed-loop sessions.

References used as independent checks:
* hand-written step-by-step recursions (float64) of the squeeze's exponential window and of the gate's
  first-order kinetics, ``y[t] = a y[t-1] + (1 - a) u[t]``, against the chunked matrix solver;
* the Euler-discretised leaky competing accumulator (Usher & McClelland 2001, Psychol. Rev. 108:550) in
  closed form for the balanced case ``k = beta`` (sum and difference decouple while both are positive):
  ``S_n = (rho_1 + rho_2) / (k + beta) * (1 - (1 - a (k + beta))^n)``, ``D_n = n a (rho_1 - rho_2)``,
  ``a = dt / tau``; a plain numpy loop for the general case; a direct torch loop with the floor for the
  no-grad accumulator loop, and the same loop without the floor for the training surrogate;
* the open-loop run of the stages on the session that the model's own responses imply (rebuilt here
  step by step) for the closed-loop :meth:`SETaskModel.forward`.

Tolerances follow tests/gating/conftest.py (rounding bounds derived from the computation).
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import Tensor

from neuromod.config import ConfigError
from neuromod.gating import ContextSE, SETaskModel, SETaskModelConfig, SETaskOutput, decision_loss
from neuromod.gating.task_model import _CHUNK, _lca_no_grad, _linear_recursion, _relax_chunked

F32, F64 = torch.float32, torch.float64


@pytest.fixture
def small() -> SETaskModel:
    return SETaskModel(SETaskModelConfig(channels_per_population=3, seed=4))


@pytest.fixture
def small64() -> SETaskModel:
    # float64, with 1 / channels_per_population and readout_gain exact in float32: the model stores its
    # constant buffers (pooling weights, readout weights) in float32, and .double() keeps their rounding
    return SETaskModel(
        SETaskModelConfig(channels_per_population=4, readout_gain=0.25, threshold=1.0, seed=4)
    ).double()


def _trials(gen: torch.Generator, b: int = 3, n: int = 5, *, dtype: torch.dtype = F64) -> dict[str, Tensor]:
    """Random per-trial inputs of forward: stimuli near 1, one-hot contexts, short RCIs and CSIs."""
    return {
        "stimulus": (1 + 0.25 * (2 * torch.rand(b, n, 4, generator=gen) - 1)).to(dtype),
        "context": torch.eye(2, dtype=dtype)[torch.randint(0, 2, (b, n), generator=gen)],
        "rci": torch.randint(0, 6, (b, n), generator=gen),
        "csi": torch.randint(0, 8, (b, n), generator=gen),
    }


def _run(model: SETaskModel, inp: dict[str, Tensor], max_rt: int = 60, **kwargs: object) -> SETaskOutput:
    with torch.no_grad():
        return model(inp["stimulus"], inp["context"], rci=inp["rci"], csi=inp["csi"], max_rt=max_rt, **kwargs)


def _chunk_terms(alpha: float, t: int) -> float:
    """Rounding of the chunked solver in units of eps * max|value|.

    Per chunk of K steps: a product with K terms whose weights (1 - alpha) alpha^d sum to <= 1, the weights'
    own rounding (computed in float64, then stored), the decay term and the sum: K + 8; the error carried
    into the next chunk shrinks by alpha^K.
    """
    k = min(_CHUNK, t)
    return (k + 8) / (1.0 - alpha**k)


def _loop_terms(alpha: float) -> float:
    """Rounding of a step-by-step first-order loop, in eps * max|value| (3 roundings a step, decaying)."""
    return 3.0 / (1.0 - alpha)


def _gate_atol(model: SETaskModel, x: Tensor, context: Tensor, fp: SimpleNamespace, t: int) -> float:
    """Bound on |gate computed two ways| (both sides rounded): the squeeze's window error carried through
    the excitation (conftest's running bound), plus the two gate relaxations."""
    cfg = model.config
    dtype = x.dtype
    a_s = math.exp(-cfg.dt_ms / cfg.squeeze_tau_ms)
    a_g = math.exp(-cfg.dt_ms / cfg.tau_ms)
    s_mag = x.detach().abs().amax(dim=tuple(range(x.ndim - 1))).expand(1, -1).double()
    # the population mean (cpp terms), then the window: each side within these many eps of max|x|
    s_terms = cfg.channels + 4 + _chunk_terms(a_s, t) + _loop_terms(a_s)
    s_err = s_terms * fp.eps(dtype) * s_mag
    g_err = float(fp.excitation(model.se, s_mag, s_err, context.abs().amax((0, 1))[None])[1].max())
    relax = fp.tol(dtype, _chunk_terms(a_g, t) + _loop_terms(a_g), cfg.gain_max)["atol"]
    return 2 * g_err + relax


# ------------------------------------------------------------------------------------ config
def test_config_defaults_and_channels() -> None:
    cfg = SETaskModelConfig()
    assert cfg.channels == 32
    assert cfg.leak == cfg.inhibition == 0.2  # Usher & McClelland's balanced regime
    assert (cfg.tau_ms, cfg.squeeze_tau_ms, cfg.readout_gain) == (400.0, 50.0, 0.2)
    assert SETaskModelConfig.from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize(
    ("data", "error", "match"),
    [
        ({"tau_msec": 100.0}, ConfigError, r"unknown key 'tau_msec' \(did you mean 'tau_ms'"),
        ({"tau_ms": 0.0}, ConfigError, r"tau_ms=0.0 is outside the valid range \(0, inf\)"),
        ({"squeeze_tau_ms": 0.0}, ConfigError, r"squeeze_tau_ms=0.0 is outside the valid range \(0, inf\)"),
        ({"readout_gain": 0.0}, ConfigError, r"readout_gain=0.0 is outside the valid range \(0, inf\)"),
        ({"channels_per_population": 2.5}, ConfigError, "channels_per_population=2.5 has the wrong type"),
        ({"tuning_range": [1.5, 0.5]}, ValueError, r"tuning_range=\(1.5, 0.5\) must be \[low, high\]"),
        ({"noise_sd": -0.1}, ConfigError, "noise_sd=-0.1 is outside the valid range"),
    ],
)
def test_config_errors(data: dict, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        SETaskModelConfig.from_dict(data)


def test_dt_longer_than_lca_tau_is_refused() -> None:
    with pytest.raises(ValueError, match=r"dt_ms=50.0 is longer than lca_tau_ms=20.0"):
        SETaskModel(SETaskModelConfig(dt_ms=50.0, lca_tau_ms=20.0))


def test_model_config_type() -> None:
    with pytest.raises(TypeError, match="config must be an SETaskModelConfig, got dict"):
        SETaskModel({"tau_ms": 100.0})


def test_construction_is_seeded_and_leaves_global_rng_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    # torch.manual_seed would also seed every accelerator's generator, which fork_rng(devices=[]) does not
    # restore (on a CPU-only machine CUDA queues the seed for its lazy initialisation)
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("SETaskModel seeded an accelerator's global generator")

    for module, name in [
        (torch.cuda, "manual_seed_all"),
        (torch.mps, "manual_seed"),
        (torch.xpu, "manual_seed_all"),
    ]:
        monkeypatch.setattr(module, name, refuse)
    state = torch.random.get_rng_state()
    a, b = SETaskModel(SETaskModelConfig(seed=3)), SETaskModel(SETaskModelConfig(seed=3))
    assert torch.equal(torch.random.get_rng_state(), state)
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert ka == kb
        torch.testing.assert_close(va, vb, rtol=0, atol=0)
    c = SETaskModel(SETaskModelConfig(seed=4))
    assert not torch.equal(a.tuning, c.tuning)
    lo, hi = SETaskModelConfig().tuning_range
    assert bool((a.tuning >= lo).all() and (a.tuning <= hi).all())
    assert a.channel_population.tolist() == [p for p in range(4) for _ in range(8)]


def test_only_the_excitation_is_trainable(small: SETaskModel) -> None:
    names = [name for name, _ in small.named_parameters()]
    assert names and all(name.startswith("se.excitation.") for name in names)
    assert isinstance(small.se, ContextSE)
    # the gate's kinetics live in the model (tau_ms), not in ContextSE; the gate's range is (0, gain_max)
    assert small.se.tau_ms is None and small.se.gain_max == small.config.gain_max
    assert "readout_weight" in dict(small.named_buffers())


# ------------------------------------------------------------------------------------ stages
def test_sensory_channels(small64: SETaskModel, gen: torch.Generator) -> None:
    stim = torch.rand(2, 7, 4, generator=gen, dtype=F64)
    x = small64.sensory(stim, noise=False)
    pop = small64.channel_population
    expected = small64.baseline + small64.tuning * stim[..., pop]
    torch.testing.assert_close(x, expected, rtol=0, atol=0)
    # noise: the same draws from the same seed, sd input_noise_sd
    noisy = small64.sensory(stim, generator=torch.Generator().manual_seed(3))
    eps = torch.randn(x.shape, generator=torch.Generator().manual_seed(3), dtype=F64)
    torch.testing.assert_close(noisy, x + small64.config.input_noise_sd * eps, rtol=0, atol=1e-15)


def _pooled(model: SETaskModel, x: Tensor) -> Tensor:
    """The squeeze's summary for each population, by hand: the mean over the population's channels
    (``squeeze_by="population"``) or over its feature's, populations 2k and 2k + 1 (``"feature"``)."""
    cfg = model.config
    m = x.reshape(*x.shape[:-1], cfg.populations, cfg.channels_per_population).mean(-1)
    if cfg.squeeze_by == "population":
        return m
    pairs = m.reshape(*m.shape[:-1], cfg.populations // 2, 2).mean(-1, keepdim=True)
    return pairs.expand(*pairs.shape[:-1], 2).reshape(m.shape)


def _model64(squeeze_by: str) -> SETaskModel:
    return SETaskModel(
        SETaskModelConfig(channels_per_population=4, readout_gain=0.25, squeeze_by=squeeze_by, seed=4)
    ).double()


@pytest.mark.parametrize("squeeze_by", ["population", "feature"])
def test_squeeze_pools_populations_or_features(
    squeeze_by: str, gen: torch.Generator, fp: SimpleNamespace
) -> None:
    model = _model64(squeeze_by)
    x = torch.randn(2, 5, model.channels, generator=gen, dtype=F64)
    # a product over the C channels (most weights 0) against two means: both rounded
    tol = fp.tol(F64, model.channels + 4, float(x.abs().max()), sides=2)
    torch.testing.assert_close(model.squeeze(x), _pooled(model, x), **tol)


def test_config_refuses_feature_pooling_of_odd_populations() -> None:
    with pytest.raises(
        ValueError, match="squeeze_by='feature' pools populations in pairs; populations=3 is odd"
    ):
        SETaskModelConfig(populations=3)
    assert SETaskModelConfig(populations=3, squeeze_by="population").channels == 24


@pytest.mark.parametrize("squeeze_by", ["population", "feature"])
def test_gates_depend_on_activity_only_through_the_pooled_means(
    squeeze_by: str, gen: torch.Generator
) -> None:
    # moving activity between channels of one pool leaves every gate unchanged, while a change of a
    # pool's mean changes them
    model = _model64(squeeze_by)
    x = model.sensory(1 + torch.rand(6, 4, generator=gen, dtype=F64), noise=False)
    cfg = model.config
    cpp, pools = cfg.channels_per_population, cfg.populations
    if squeeze_by == "feature":
        cpp, pools = 2 * cpp, pools // 2
    z = torch.randn(6, pools, cpp, generator=gen, dtype=F64)
    z = (z - z.mean(-1, keepdim=True)).reshape(6, -1)  # zero mean within each pool
    ctx = torch.eye(2, dtype=F64)[[0, 1, 0, 1, 0, 1]]
    with torch.no_grad():
        g = model.steady_gate(x, ctx)
        torch.testing.assert_close(model.steady_gate(x + z, ctx), g, rtol=0, atol=1e-13)
        bump = torch.zeros_like(x)
        bump[:, :cpp] = 0.3  # the first pool up
        assert float((model.steady_gate(x + bump, ctx) - g).abs().max()) > 1e-4
        # every channel's descriptor entry is its population's summary; ContextSE's gate in (0, gain_max)
        # is mapped onto (gain_min, gain_max)
        s = model.squeeze(x)
        lo, hi = cfg.gain_min, cfg.gain_max
        ref = lo + (1 - lo / hi) * model.se.excite(s[:, model.channel_population], ctx).gain
        torch.testing.assert_close(model.excite(s, ctx), ref, rtol=0, atol=0)
    assert bool((g > lo).all() and (g < hi).all())


@pytest.mark.parametrize("t", [1, 37, 600])  # 600 > one chunk of 512 steps
@pytest.mark.parametrize("with_state", [False, True])
@pytest.mark.parametrize("squeeze_by", ["population", "feature"])
def test_squeeze_window_and_gate_kinetics_match_hand_recursion(
    squeeze_by: str, gen: torch.Generator, fp: SimpleNamespace, t: int, with_state: bool
) -> None:
    """``s[t] = a_s s[t-1] + (1 - a_s) pooled mean x[t]`` and ``g[t] = a g[t-1] + (1 - a) g*(s[t], k[t])``."""
    model = _model64(squeeze_by)
    cfg = model.config
    x = model.sensory(1 + 0.3 * torch.randn(2, t, 4, generator=gen, dtype=F64), generator=gen)
    ctx = torch.eye(2, dtype=F64)[torch.randint(0, 2, (2, t), generator=gen)]
    ctx[:, : t // 3] = 0.5  # and a stretch without a cue
    state = None
    if with_state:
        state = (
            2 * torch.rand(2, model.channels, generator=gen, dtype=F64),
            torch.rand(2, 4, generator=gen, dtype=F64),
        )
    g, s = model.gate(x, ctx, state=state)
    a_s, a_g = math.exp(-cfg.dt_ms / cfg.squeeze_tau_ms), math.exp(-cfg.dt_ms / cfg.tau_ms)
    pooled = _pooled(model, x)
    s_prev = pooled[:, 0] if state is None else state[1]
    s_ref = []
    for step in range(t):
        s_prev = a_s * s_prev + (1 - a_s) * pooled[:, step]
        s_ref.append(s_prev)
    s_ref = torch.stack(s_ref, 1)
    s_tol = fp.tol(F64, model.channels + 4 + _chunk_terms(a_s, t) + _loop_terms(a_s), x.abs().max())
    torch.testing.assert_close(s, s_ref, **s_tol)
    target = model.excite(s_ref, ctx)
    g_prev = target[:, 0] if state is None else state[0]
    g_ref = []
    for step in range(t):
        g_prev = a_g * g_prev + (1 - a_g) * target[:, step]
        g_ref.append(g_prev)
    torch.testing.assert_close(g, torch.stack(g_ref, 1), rtol=0, atol=_gate_atol(model, x, ctx, fp, t))


def test_gate_relaxes_exactly_to_a_new_steady_state(small64: SETaskModel, fp: SimpleNamespace) -> None:
    # constant activity and cue: the squeeze is at its value, so g[n] - g* = (g[-1] - g*) a^(n + 1)
    model, cfg = small64, small64.config
    t = 700
    x = model.sensory(torch.ones(1, t, 4, dtype=F64), noise=False)
    ctx = torch.tensor([1.0, 0.0], dtype=F64).expand(1, t, 2)
    g0 = torch.full((1, model.channels), 1.7, dtype=F64)
    g, _ = model.gate(x, ctx, state=(g0, model.squeeze(x[:, 0])))
    g_star = model.steady_gate(x[:, 0], ctx[:, 0])
    n = torch.arange(t, dtype=F64)[:, None]
    expected = g_star + (g0 - g_star) * torch.exp(-(n + 1) * cfg.dt_ms / cfg.tau_ms)
    # exp of a rounded exponent against products of rounded powers: (T + 2) eps relative per step
    terms = t * (fp.TRANSCENDENTAL + 2) + _chunk_terms(math.exp(-cfg.dt_ms / cfg.tau_ms), t)
    torch.testing.assert_close(g[0], expected, **fp.tol(F64, terms, cfg.gain_max, sides=2))


def test_relax_chunked_matches_closed_form(fp: SimpleNamespace) -> None:
    t = 1100  # three chunks
    alpha = math.exp(-10.0 / 200.0)
    g = _relax_chunked(torch.zeros(1, t, 1, dtype=F64), torch.ones(1, 1, dtype=F64), alpha)[0, :, 0]
    n = torch.arange(1, t + 1, dtype=F64)
    # float64 relative errors: alpha^n by n (T + 1) eps; each chunk's decay T + 1; the reference's exponent
    # rounds once (n / 20 eps after exp) and exp adds T
    chunks = math.ceil(t / _CHUNK)
    terms = (t + chunks) * (fp.TRANSCENDENTAL + 1) + t / 20 + fp.TRANSCENDENTAL
    torch.testing.assert_close(g, torch.exp(-n * 10.0 / 200.0), rtol=terms * fp.eps(F64), atol=0)


def test_gate_gradients_match_hand_recursion(small: SETaskModel, gen: torch.Generator) -> None:
    """The chunked solver's adjoint against autograd through the step-by-step recursion (both float64).

    Both compute the same sums in another order: a few hundred eps relative on gradients whose terms are
    positive-dominated; an algebra slip (a power of alpha, a chunk boundary) moves them by (1 - alpha) ~ 2 %.
    """
    model = small.double()
    cfg = model.config
    b, t = 2, 90
    x = model.sensory(torch.ones(b, t, 4, dtype=F64), generator=gen)
    ctx = torch.eye(2, dtype=F64)[torch.randint(0, 2, (b, t), generator=gen)]
    model.zero_grad()
    model.gate(x, ctx)[0].pow(2).sum().backward()
    ours = {name: p.grad.clone() for name, p in model.named_parameters()}
    a_s, a_g = math.exp(-cfg.dt_ms / cfg.squeeze_tau_ms), math.exp(-cfg.dt_ms / cfg.tau_ms)
    model.zero_grad()
    pooled = model.squeeze(x)
    s_prev, s = pooled[:, 0], []
    for step in range(t):
        s_prev = a_s * s_prev + (1 - a_s) * pooled[:, step]
        s.append(s_prev)
    target = model.excite(torch.stack(s, 1), ctx)
    g_prev, loss = target[:, 0], 0.0
    for step in range(t):
        g_prev = a_g * g_prev + (1 - a_g) * target[:, step]
        loss = loss + g_prev.pow(2).sum()
    loss.backward()
    for name, p in model.named_parameters():
        torch.testing.assert_close(ours[name], p.grad, rtol=1e-11, atol=1e-11 * float(p.grad.abs().max()))


def test_initial_state_is_a_fixed_point(small64: SETaskModel, fp: SimpleNamespace) -> None:
    # no stimulus, no cue: channels at baseline, uniform context; the state does not move
    model = small64
    gate0, s0 = model.initial_state(2)
    torch.testing.assert_close(s0, model.squeeze(model.baseline.expand(2, -1)), rtol=0, atol=0)
    uniform = torch.full((2, 2), 0.5, dtype=F64)
    torch.testing.assert_close(gate0, model.excite(s0, uniform), rtol=0, atol=0)
    t = 50
    x = model.baseline.expand(2, t, -1)
    g, s = model.gate(x, uniform[:, None].expand(2, t, 2), state=(gate0, s0))
    torch.testing.assert_close(g, gate0[:, None].expand_as(g), **fp.tol(F64, 600, model.config.gain_max))
    torch.testing.assert_close(s, s0[:, None].expand_as(s), **fp.tol(F64, 600, float(x.max())))


# ------------------------------------------------------------------------------------ readout
def test_readout_wiring(small64: SETaskModel, gen: torch.Generator) -> None:
    model, cfg = small64, small64.config
    w = cfg.readout_gain
    expected_w = w * torch.tensor([[1.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, 1.0]], dtype=F64)
    torch.testing.assert_close(model.readout_weight, expected_w, rtol=0, atol=0)
    cpp = cfg.channels_per_population
    # a+ only drives accumulator 1, a- only 2, b+ only 1, b- only 2, each with weight w on its mean
    for p, (one, two) in enumerate([(1, 0), (0, 1), (1, 0), (0, 1)]):
        y = torch.zeros(1, model.channels, dtype=F64)
        y[0, p * cpp : (p + 1) * cpp] = torch.rand(cpp, generator=gen, dtype=F64)
        rho = model.readout(y)[0]
        mean = float(y.sum()) / cpp
        torch.testing.assert_close(
            rho, torch.tensor([one * w * mean, two * w * mean], dtype=F64), rtol=1e-15, atol=0
        )
    # in general: rho_1 = w (mean a+ + mean b+), rho_2 = w (mean a- + mean b-)
    y = torch.rand(3, 4, model.channels, generator=gen, dtype=F64)
    m = y.reshape(3, 4, 4, cpp).mean(-1)
    ref = torch.stack([w * (m[..., 0] + m[..., 2]), w * (m[..., 1] + m[..., 3])], -1)
    torch.testing.assert_close(model.readout(y), ref, rtol=0, atol=(cpp + 4) * 2.3e-16 * float(ref.max()))


def test_readout_is_fixed_by_readout_gain() -> None:
    a = SETaskModel(SETaskModelConfig(readout_gain=0.2, seed=1))
    b = SETaskModel(SETaskModelConfig(readout_gain=0.5, seed=1))
    torch.testing.assert_close(b.readout_weight, a.readout_weight * 2.5, rtol=1e-6, atol=0)
    assert not any(p is a.readout_weight for p in a.parameters())


# ------------------------------------------------------------------------------------ accumulators
def _lca_numpy(drive: np.ndarray, a: float, k: float, beta: float, floor: bool = True) -> np.ndarray:
    x = np.zeros(2)
    out = []
    for rho in drive:
        x = x + a * (rho - k * x - beta * x[::-1])
        if floor:
            x = np.maximum(0.0, x)
        out.append(x.copy())
    return np.array(out)


def _lca_torch(inp: Tensor, keep: float, cross: float, threshold: float) -> tuple[Tensor, Tensor, Tensor]:
    """The accumulator loop written directly in torch, whole window, floor after each step."""
    b, steps, _ = inp.shape
    x = inp.new_zeros(b, 2)
    out = []
    for step in range(steps):
        x1 = keep * x[:, 0] - cross * x[:, 1] + inp[:, step, 0]
        x2 = keep * x[:, 1] - cross * x[:, 0] + inp[:, step, 1]
        x = torch.stack([x1, x2], -1).clamp(min=0.0)
        out.append(x)
    win = torch.stack(out, 1)
    hit = (win >= threshold).any(-1)
    crossed = hit.any(-1)
    response = torch.where(crossed, hit.to(torch.int8).argmax(-1), steps - 1)
    at = win[torch.arange(b), response]
    choice = torch.where(crossed, 1 + (at[:, 1] > at[:, 0]).long(), 0)
    return win, choice, response


@pytest.mark.parametrize("stop", [False, True])
def test_lca_no_grad_equals_a_torch_loop(gen: torch.Generator, stop: bool) -> None:
    # drives that cross early, late, on both accumulators, and never; the floor binds on some steps
    b, steps = 6, 80
    inp = 0.03 * torch.randn(b, steps, 2, generator=gen, dtype=F64)
    inp[0] += 0.05  # both rise
    inp[1, :, 1] += 0.06  # accumulator 2 wins
    inp[2, :, 0] -= 0.05  # accumulator 1 pinned at the floor
    inp[3] *= 0.1  # never crosses
    keep, cross, threshold = 0.97, 0.03, 1.0
    win, choice, response = _lca_no_grad(inp, keep, cross, threshold, stop)
    ref_win, ref_choice, ref_resp = _lca_torch(inp, keep, cross, threshold)
    assert choice.tolist() == ref_choice.tolist() and response.tolist() == ref_resp.tolist()
    assert set(choice.tolist()) == {0, 1, 2}
    assert bool((ref_win[2, :, 0] == 0).any())  # the floor did bind
    upto = torch.arange(steps)[None] <= response[:, None]
    # the same operations in the same order on float64: bitwise equal
    torch.testing.assert_close(win[upto], ref_win[upto], rtol=0, atol=0)
    if stop:  # nothing simulated after the response
        assert float(win[~upto].abs().max()) == 0.0
    else:
        torch.testing.assert_close(win, ref_win, rtol=0, atol=0)
    assert win.dtype == inp.dtype and choice.dtype == response.dtype == torch.int64


def test_lca_balanced_matches_discrete_closed_form(small64: SETaskModel, fp: SimpleNamespace) -> None:
    cfg = small64.config
    rho1, rho2 = 0.50, 0.30
    drive = torch.tensor([rho1, rho2], dtype=F64).expand(1, 40, 2).clone()
    windows, choice, response = small64.accumulate(drive, noise=False, stop=False)
    a, k = cfg.dt_ms / cfg.lca_tau_ms, cfg.leak
    n = np.arange(1, 41)
    s = (rho1 + rho2) / (2 * k) * (1 - (1 - 2 * a * k) ** n)
    d = n * a * (rho1 - rho2)
    # float64, in eps * max(S): each Euler step rounds 5 times and the difference mode (eigenvalue 1 when
    # k = beta) carries every error on undamped: 5 n; the closed form's power 3 n + T, and 10 more
    tol = fp.tol(F64, 5 * 40 + 3 * 40 + fp.TRANSCENDENTAL + 10, float(np.max(s)))
    torch.testing.assert_close(windows[0, :, 0], torch.from_numpy((s + d) / 2), **tol)
    torch.testing.assert_close(windows[0, :, 1], torch.from_numpy((s - d) / 2), **tol)
    # the first crossing of the threshold (1) by accumulator 1
    first = int(np.argmax((s + d) / 2 >= cfg.threshold))
    assert choice.tolist() == [1] and response.tolist() == [first]


@pytest.mark.parametrize(("leak", "inhibition"), [(0.1, 0.5), (0.4, 0.0)])
def test_lca_general_matches_numpy(leak: float, inhibition: float, fp: SimpleNamespace) -> None:
    model = SETaskModel(SETaskModelConfig(leak=leak, inhibition=inhibition, threshold=50.0)).double()
    rng = np.random.default_rng(5)
    drive = rng.uniform(0, 0.5, size=(2, 60, 2))
    drive[1, :, 1] = 0.0  # accumulator 2 inhibited to the floor
    windows, choice, response = model.accumulate(torch.from_numpy(drive), noise=False)
    a = model.config.dt_ms / model.config.lca_tau_ms
    assert choice.tolist() == [0, 0] and response.tolist() == [59, 59]  # no crossing: window's last step
    for i in range(2):
        expected = _lca_numpy(drive[i], a, leak, inhibition)
        scale = (1 + a * (leak + inhibition)) * np.abs(expected).max() + a * np.abs(drive[i]).max()
        tol = fp.tol(F64, (5 + 6) * 60, scale, sides=2)
        torch.testing.assert_close(windows[i], torch.from_numpy(expected), **tol)
    assert float(windows[1, :, 1].abs().max()) == 0.0  # no input and the floor: accumulator 2 stays at 0


def test_linear_surrogate_equals_the_floor_free_recursion(fp: SimpleNamespace) -> None:
    """With autograd the accumulators drop the floor: exactly the linear Euler recursion (float64)."""
    model = SETaskModel(SETaskModelConfig(leak=0.1, inhibition=0.5, threshold=1.0)).double()
    cfg = model.config
    rng = np.random.default_rng(8)
    drive = rng.uniform(0, 0.5, size=(3, 70, 2))
    drive[1, :, 1] = 0.0  # here the floor-free accumulator 2 goes negative
    drive[2] *= 0.2
    rho = torch.from_numpy(drive).requires_grad_(True)
    windows, choice, response = model.accumulate(rho, noise=False)
    assert windows.requires_grad
    a = cfg.dt_ms / cfg.lca_tau_ms
    for i in range(3):
        expected = _lca_numpy(drive[i], a, cfg.leak, cfg.inhibition, floor=False)
        # sum and difference modes: a 70-term product each, then (S +- D) / 2; the modes' eigenvalues are
        # below 1 in modulus, so the magnitudes of the summands are bounded by the window's scale
        scale = max(np.abs(expected).max(), a * np.abs(drive[i]).max() * 70)
        tol = fp.tol(F64, 2 * 70 + 10, scale, sides=2)
        torch.testing.assert_close(windows[i].detach(), torch.from_numpy(expected), **tol)
    assert float(windows[1, :, 1].detach().min()) < -0.1  # no floor
    # choice and response: the first crossing of the surrogate's own windows
    w = windows.detach()
    for i in range(3):
        hit = (w[i] >= cfg.threshold).any(-1)
        if hit.any():
            step = int(hit.to(torch.int8).argmax())
            assert response[i] == step and choice[i] == 1 + int(w[i, step, 1] > w[i, step, 0])
        else:
            assert choice[i] == 0 and response[i] == 69
    # and it is differentiable: d X_1[last] / d rho_1[last] = a
    windows[0, -1, 0].backward()
    assert abs(float(rho.grad[0, -1, 0]) - a) < 1e-15


def test_linear_recursion_float64_precision() -> None:
    # the surrogate's power matrix is built in the input's dtype (float64 runs stay float64-accurate)
    u = torch.zeros(1, 300, dtype=F64)
    u[0, 0] = 1.0
    lam = 0.97
    y = _linear_recursion(u, lam)[0]
    ref = torch.tensor([lam**n for n in range(300)], dtype=F64)
    torch.testing.assert_close(y, ref, rtol=2e-15 * 300, atol=0)


def test_training_path_matches_the_floored_loop_when_the_floor_does_not_bind(
    small64: SETaskModel, gen: torch.Generator, fp: SimpleNamespace
) -> None:
    inp = _trials(gen)
    evaluation = _run(small64, inp, noise=False)
    upto = torch.arange(60)[None, None] <= evaluation.response[..., None]
    assert bool((evaluation.windows[upto] > 0).all())  # precondition: the floor never binds
    training = small64(
        inp["stimulus"], inp["context"], rci=inp["rci"], csi=inp["csi"], max_rt=60, noise=False
    )
    assert training.windows.requires_grad
    torch.testing.assert_close(training.choice, evaluation.choice, rtol=0, atol=0)
    torch.testing.assert_close(training.response, evaluation.response, rtol=0, atol=0)
    diff = (training.windows.detach() - evaluation.windows).abs()[upto]
    assert float(diff.max()) < fp.tol(F64, 4 * 60, 2.0)["atol"]


# ------------------------------------------------------------------------------------ closed loop
def test_forward_shapes_and_session_time_axis(small64: SETaskModel, gen: torch.Generator) -> None:
    inp = _trials(gen)
    out = _run(small64, inp, max_rt=60, noise=False, record=True)
    b, n = 3, 5
    assert out.windows.shape == (b, n, 60, 2)
    assert out.choice.shape == out.response.shape == out.onset.shape == (b, n)
    assert out.choice.dtype == out.response.dtype == out.onset.dtype == torch.int64
    assert bool((out.choice > 0).all())  # every trial responded here, before the deadline
    assert bool((out.response < 59).all())
    # onset of trial k = previous response + 1 step + rci + csi
    pre = inp["rci"] + inp["csi"]
    torch.testing.assert_close(out.onset[:, 0], pre[:, 0], rtol=0, atol=0)
    torch.testing.assert_close(
        out.onset[:, 1:], out.onset[:, :-1] + out.response[:, :-1] + 1 + pre[:, 1:], rtol=0, atol=0
    )
    torch.testing.assert_close(out.rt_steps, out.response + 1, rtol=0, atol=0)
    # the recorded gates cover each session to its last response, padded with the last value
    ends = out.onset[:, -1] + out.response[:, -1]
    assert out.gain.shape == (b, int(ends.max()) + 1, small64.channels)
    for i in range(b):
        e = int(ends[i])
        torch.testing.assert_close(out.state[0][i], out.gain[i, e], rtol=0, atol=0)
        torch.testing.assert_close(out.gain[i, e:], out.gain[i, e].expand_as(out.gain[i, e:]), rtol=0, atol=0)
    assert out.state[1].shape == (b, 4)
    g, cfg = out.gain, small64.config
    assert bool((g > cfg.gain_min).all() and (g < cfg.gain_max).all())
    # the windows end at the response (nothing simulated after every session responded)
    after = torch.arange(60)[None, None] > out.response[..., None]
    assert float(out.windows[after].abs().max()) == 0.0
    assert _run(small64, inp, noise=False).gain is None


def test_closed_loop_equals_the_open_loop_run_of_its_own_session(
    small64: SETaskModel, gen: torch.Generator, fp: SimpleNamespace
) -> None:
    """Rebuild, step by step, the session that the responses imply (no cue and a uniform context during
    the RCI, the cue during the CSI and the stimulus, the stimulus from onset to the response); the stages
    run open loop on it give the recorded gates, the windows, choices and responses."""
    model = small64
    inp = _trials(gen)
    out = _run(model, inp, max_rt=60, noise=False, record=True)
    a = model.config.dt_ms / model.config.lca_tau_ms
    for i in range(3):
        stim, ctx = [], []
        for k in range(5):
            rci, csi, resp = int(inp["rci"][i, k]), int(inp["csi"][i, k]), int(out.response[i, k])
            stim += [torch.zeros(4, dtype=F64)] * (rci + csi) + [inp["stimulus"][i, k]] * (resp + 1)
            ctx += [torch.full((2,), 0.5, dtype=F64)] * rci + [inp["context"][i, k]] * (csi + resp + 1)
        stim, ctx = torch.stack(stim)[None], torch.stack(ctx)[None]
        t = stim.shape[1]
        x = model.sensory(stim, noise=False)
        with torch.no_grad():
            g, _ = model.gate(x, ctx, state=model.initial_state(1))
        atol = _gate_atol(model, x, ctx, fp, t)
        torch.testing.assert_close(out.gain[i, :t], g[0], rtol=0, atol=atol)
        rho = model.readout(g * x)[0]
        for k in range(5):
            on, resp = int(out.onset[i, k]), int(out.response[i, k])
            # the stimulus is on at the onset step and not the step before
            assert bool(stim[0, on].any()) and not bool(stim[0, on - 1].any()) if on > 0 else True
            win, choice, response = model.accumulate(rho[None, on : on + resp + 1], noise=False)
            assert int(choice[0]) == int(out.choice[i, k]) and int(response[0]) == resp
            # rho is within w * 2 * atol * max|x| of the closed loop's; the LCA adds up at most resp + 1
            # steps of a * (rho error) (the difference mode does not decay), plus its own rounding
            scale = float(x.abs().max())
            w_tol = (resp + 1) * a * model.config.readout_gain * 2 * (atol * scale + 1e-14) + 1e-13
            torch.testing.assert_close(out.windows[i, k, : resp + 1], win[0], rtol=0, atol=w_tol)


def test_running_trials_one_by_one_with_state_equals_running_them_together(
    small64: SETaskModel, gen: torch.Generator
) -> None:
    inp = _trials(gen)
    whole = _run(small64, inp, noise=False, record=True)
    state, parts = None, []
    for k in range(5):
        one = {key: v[:, k : k + 1] for key, v in inp.items()}
        part = _run(small64, one, noise=False, record=True, state=state)
        state = part.state
        parts.append(part)
    for name in ("windows", "choice", "response"):
        got = torch.cat([getattr(p, name) for p in parts], 1)
        torch.testing.assert_close(got, getattr(whole, name), rtol=0, atol=0, msg=name)
    # onsets restart at 0 in each part: add the lengths of the earlier parts
    shift = torch.zeros(3, dtype=torch.long)
    for k, part in enumerate(parts):
        torch.testing.assert_close(part.onset[:, 0] + shift, whole.onset[:, k], rtol=0, atol=0)
        shift = shift + part.onset[:, 0] + part.response[:, 0] + 1
    for mine, ref in zip(state, whole.state, strict=True):
        torch.testing.assert_close(mine, ref, rtol=0, atol=0)
    # the gate state at the response carries over: not a reset to the steady state
    fresh = _run(small64, {key: v[:, 1:2] for key, v in inp.items()}, noise=False)
    assert not torch.equal(fresh.windows, parts[1].windows)


def test_no_response_runs_to_the_deadline(gen: torch.Generator) -> None:
    model = SETaskModel(SETaskModelConfig(channels_per_population=2, threshold=100.0, seed=1)).double()
    inp = _trials(gen, b=2, n=3)
    out = _run(model, inp, max_rt=25, noise=False, record=True)
    assert out.choice.tolist() == [[0, 0, 0]] * 2
    assert out.response.tolist() == [[24, 24, 24]] * 2
    assert out.rt_steps.tolist() == [[-1, -1, -1]] * 2
    pre = inp["rci"] + inp["csi"]
    torch.testing.assert_close(out.onset[:, 1:], out.onset[:, :-1] + 25 + pre[:, 1:], rtol=0, atol=0)
    choice, rt = model.decide(out)
    assert bool(torch.isnan(rt).all()) and choice.tolist() == out.choice.tolist()


def test_decide_reaction_times(small64: SETaskModel) -> None:
    out = SETaskOutput(
        windows=torch.zeros(1, 3, 5, 2),
        choice=torch.tensor([[1, 2, 0]]),
        response=torch.tensor([[2, 0, 4]]),
        onset=torch.zeros(1, 3, dtype=torch.long),
        gain=None,
        state=(torch.zeros(1, 12), torch.zeros(1, 4)),
    )
    choice, rt = small64.decide(out)
    assert choice.tolist() == [[1, 2, 0]]
    dt = small64.config.dt_ms
    np.testing.assert_array_equal(rt.numpy()[0, :2], [3 * dt, 1 * dt])  # step l ends (l + 1) dt in
    assert math.isnan(float(rt[0, 2])) and rt.dtype == F64


def test_noise_is_seeded(small: SETaskModel, gen: torch.Generator) -> None:
    inp = _trials(gen, dtype=F32)
    a = _run(small, inp, generator=torch.Generator().manual_seed(1), record=True)
    b = _run(small, inp, generator=torch.Generator().manual_seed(1), record=True)
    c = _run(small, inp, generator=torch.Generator().manual_seed(2), record=True)
    for name in ("windows", "choice", "response", "onset", "gain"):
        torch.testing.assert_close(getattr(a, name), getattr(b, name), rtol=0, atol=0, msg=name)
    assert not torch.equal(a.windows, c.windows)
    # noise-free runs do not touch the generator
    gen1 = torch.Generator().manual_seed(5)
    state = gen1.get_state()
    _run(small, inp, noise=False, generator=gen1)
    assert torch.equal(gen1.get_state(), state)


# ------------------------------------------------------------------------------------ loss
def _output(windows: Tensor, response: Tensor) -> SETaskOutput:
    b, n = response.shape
    return SETaskOutput(
        windows=windows,
        choice=torch.ones(b, n, dtype=torch.long),
        response=response,
        onset=torch.zeros(b, n, dtype=torch.long),
        gain=None,
        state=(torch.zeros(b, 1), torch.zeros(b, 1)),
    )


def _loss_by_hand(
    w: np.ndarray, target: int, response: int, *, scale=0.05, threshold=1.0, tw=0.5, ww=1.0, margin=0.1
) -> float:
    """decision_loss of one trial, from its documented terms."""
    x1, x2 = w[: response + 1, 0], w[: response + 1, 1]
    z = (x1 - x2) / scale
    y = 1.0 if target == 1 else 0.0
    bce = np.logaddexp(0.0, z) - y * z  # -y log sig(z) - (1 - y) log(1 - sig(z))
    wrong = x2 if target == 1 else x1
    correct = w[response, 0] if target == 1 else w[response, 1]
    early = np.maximum(wrong - (threshold - margin), 0.0) ** 2
    return float(np.mean(bce + ww * early) + tw * max(threshold - correct, 0.0) ** 2)


def test_decision_loss_matches_its_terms() -> None:
    rng = np.random.default_rng(3)
    w = rng.uniform(0, 1.2, size=(1, 1, 20, 2))
    for target, response in [(1, 19), (2, 7), (1, 0)]:
        out = _output(torch.from_numpy(w), torch.tensor([[response]]))
        got = float(decision_loss(out, torch.tensor([[target]])))
        assert got == pytest.approx(_loss_by_hand(w[0, 0], target, response), rel=1e-12)


def test_decision_loss_penalises_a_wrong_early_crossing_more_than_a_late_correct_one() -> None:
    steps = 60
    n = torch.arange(1, steps + 1, dtype=F64)
    early_wrong = torch.zeros(1, 1, steps, 2, dtype=F64)
    early_wrong[0, 0, :, 1] = (n / 8).clamp(max=1.5)  # accumulator 2 (wrong) crosses at step 7
    early_wrong[0, 0, :, 0] = n / 40
    late_correct = torch.zeros(1, 1, steps, 2, dtype=F64)
    late_correct[0, 0, :, 0] = n / 50  # accumulator 1 (correct) crosses at step 49
    late_correct[0, 0, :, 1] = n / 60
    target = torch.tensor([[1]])
    bad = decision_loss(_output(early_wrong, torch.tensor([[7]])), target)
    good = decision_loss(_output(late_correct, torch.tensor([[49]])), target)
    assert float(bad) > float(good) + 1.0
    # the wrong-accumulator term alone: two windows with the same difference X1 - X2 (same cross-entropy)
    # and the correct accumulator at the threshold at the response; only the wrong accumulator's height
    # differs, and the loss grows by wrong_weight times the mean of relu(X_wrong - 0.9)^2
    low = torch.zeros(1, 1, 10, 2, dtype=F64)
    low[0, 0, :, 0] = torch.linspace(0.1, 1.0, 10, dtype=F64)
    low[0, 0, :, 1] = low[0, 0, :, 0] - 0.2
    high = low + 0.3  # the wrong accumulator reaches 1.1 - 0.2 + ... above 0.9 on the last steps
    resp = torch.tensor([[9]])
    base, raised = (decision_loss(_output(w, resp), target, wrong_weight=2.0) for w in (low, high))
    excess = (
        torch.relu(high[0, 0, :, 1] - 0.9).pow(2).mean() - torch.relu(low[0, 0, :, 1] - 0.9).pow(2).mean()
    )
    assert float(excess) > 0
    # (the correct one is above the threshold in `high`: no shortfall; in `low` it is at 1.0: none either)
    assert float(raised - base) == pytest.approx(2.0 * float(excess), rel=1e-12)


def test_decision_loss_leaves_out_other_targets_and_checks_shape() -> None:
    rng = np.random.default_rng(4)
    w = torch.from_numpy(rng.uniform(0, 1.2, size=(1, 2, 12, 2)))
    out = _output(w, torch.tensor([[11, 5]]))
    both = decision_loss(out, torch.tensor([[1, 0]]))
    first = decision_loss(_output(w[:, :1], torch.tensor([[11]])), torch.tensor([[1]]))
    assert float(both) == pytest.approx(float(first), rel=1e-12)
    with pytest.raises(ValueError, match=r"target has shape \(1, 3\), expected \(1, 2\)"):
        decision_loss(out, torch.ones(1, 3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"scale=0\.0 must be a finite number > 0"):
        decision_loss(out, torch.ones(1, 2, dtype=torch.long), scale=0.0)


def test_loss_gradient_reaches_every_parameter(
    small: SETaskModel, gen: torch.Generator, fp: SimpleNamespace
) -> None:
    """Every parameter gets a gradient above the rounding noise of a zero one (float64, conftest)."""
    model = small.double().train()
    inp = _trials(gen, b=2, n=3)
    out = model(inp["stimulus"], inp["context"], rci=inp["rci"], csi=inp["csi"], max_rt=60, generator=gen)
    loss = decision_loss(out, torch.tensor([[1, 2, 1], [2, 1, 2]]), threshold=model.config.threshold)
    loss.backward()
    n_terms = out.windows.numel() * (model.channels + 60)
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert fp.resolved(p.grad, p, loss.reshape(1), n_terms), name


# ------------------------------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    ("which", "value", "error", "match"),
    [
        (
            "stimulus",
            torch.ones(3, 5, 3),
            ValueError,
            r"stimulus has shape \(3, 5, 3\), expected \(\*, \*, 4\)",
        ),
        ("context", torch.ones(3, 4, 2), ValueError, r"context has shape \(3, 4, 2\), expected \(3, 5, 2\)"),
        ("stimulus", np.ones((3, 5, 4)), TypeError, "stimulus must be a torch.Tensor, got ndarray"),
        ("stimulus", torch.full((3, 5, 4), math.nan), ValueError, "stimulus must be finite"),
        ("rci", torch.ones(3, 4, dtype=torch.long), ValueError, r"rci has shape \(3, 4\), expected \(3, 5\)"),
        (
            "rci",
            torch.ones(3, 5),
            ValueError,
            "rci must be a tensor of integer steps >= 0, got dtype torch.float32",
        ),
        ("csi", torch.full((3, 5), -1), ValueError, "csi must be a tensor of integer steps >= 0"),
        ("max_rt", 0, ValueError, r"max_rt=0 is outside the valid range \[1, inf\]"),
    ],
)
def test_forward_errors(
    small: SETaskModel, gen: torch.Generator, which: str, value: object, error: type, match: str
) -> None:
    inp = {**_trials(gen, dtype=F32), "max_rt": 20}
    inp[which] = value
    with pytest.raises(error, match=match):
        small(inp["stimulus"], inp["context"], rci=inp["rci"], csi=inp["csi"], max_rt=inp["max_rt"])


def test_forward_needs_a_trial(small: SETaskModel) -> None:
    empty = torch.zeros(1, 0, 4)
    with pytest.raises(ValueError, match=r"stimulus has shape \(1, 0, 4\): expected at least one trial"):
        small(
            empty,
            torch.zeros(1, 0, 2),
            rci=torch.zeros(1, 0, dtype=torch.long),
            csi=torch.zeros(1, 0, dtype=torch.long),
            max_rt=5,
        )
