"""Tests of SETaskModel: gate kinetics, LCA against the discrete analytic solution, readout, errors.

References used as independent checks:
* ContextSE's own step-by-step kinetics loop (``ContextSE.gain`` with ``tau_ms``) for the chunked solver;
* the Euler-discretised leaky competing accumulator (Usher & McClelland 2001, Psychol. Rev. 108:550) in
  closed form for the balanced case ``k = beta`` (sum and difference decouple while both are positive):
  ``S_n = (rho_1 + rho_2) / (k + beta) * (1 - (1 - a (k + beta))^n)``, ``D_n = n a (rho_1 - rho_2)``,
  ``a = dt / tau``; and a plain numpy loop for the general case.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from neuromod.config import ConfigError
from neuromod.gating import ContextSE, SETaskModel, SETaskModelConfig, decision_loss
from neuromod.gating.task_model import _relax_chunked, _windows


@pytest.fixture
def small() -> SETaskModel:
    return SETaskModel(SETaskModelConfig(channels_per_population=3, seed=4))


def _session(gen: torch.Generator, b: int = 2, t: int = 150) -> tuple[torch.Tensor, ...]:
    stim = 1 + 0.3 * torch.randn(b, t, 4, generator=gen)
    cue = torch.zeros(b, t, 2)
    cue[:, : t // 2, 0] = 1
    cue[:, t // 2 :, 1] = 1
    on = torch.zeros(b, t, dtype=torch.bool)
    on[:, 20:60] = True
    on[:, 100:140] = True
    stim = stim * on.unsqueeze(-1)
    return stim, cue, on


# ------------------------------------------------------------------------------------ config
def test_config_defaults_and_channels() -> None:
    cfg = SETaskModelConfig()
    assert cfg.channels == 32
    assert cfg.leak == cfg.inhibition == 0.2  # Usher & McClelland's balanced regime
    assert SETaskModelConfig.from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize(
    ("data", "error", "match"),
    [
        ({"tau_msec": 100.0}, ConfigError, r"unknown key 'tau_msec' \(did you mean 'tau_ms'"),
        ({"tau_ms": 0.0}, ConfigError, r"tau_ms=0.0 is outside the valid range \(0, inf\)"),
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


def test_construction_is_seeded_and_leaves_global_rng_alone() -> None:
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


# ------------------------------------------------------------------------------------ gate kinetics
@pytest.mark.parametrize("t", [1, 63, 64, 150])
@pytest.mark.parametrize("with_state", [False, True])
def test_chunked_gate_equals_contextse_loop(
    small: SETaskModel, gen: torch.Generator, t: int, with_state: bool
) -> None:
    x = small.sensory(1 + torch.randn(3, t, 4, generator=gen), generator=gen)
    cue = torch.eye(2)[torch.randint(0, 2, (3, t), generator=gen)]
    state = 2 * torch.rand(3, small.channels, generator=gen) if with_state else None
    ours = small.gate(x, cue, state=state)
    ref = small.se.gain(x, cue, state=state).gain  # ContextSE's step-by-step loop
    torch.testing.assert_close(ours, ref, rtol=0, atol=2e-6)


def test_relax_chunked_matches_closed_form() -> None:
    alpha = math.exp(-10.0 / 200.0)
    target = torch.zeros(1, 300, 1, dtype=torch.float64)
    g0 = torch.ones(1, 1, dtype=torch.float64)
    g = _relax_chunked(target, g0, alpha)[0, :, 0]
    n = torch.arange(1, 301, dtype=torch.float64)
    torch.testing.assert_close(g, torch.exp(-n * 10.0 / 200.0), rtol=1e-12, atol=0)


def test_gate_gradients_match_loop(small: SETaskModel, gen: torch.Generator) -> None:
    x = small.sensory(torch.ones(2, 90, 4), generator=gen)
    cue = torch.eye(2)[torch.randint(0, 2, (2, 90), generator=gen)]
    small.gate(x, cue).pow(2).sum().backward()
    ours = [p.grad.clone() for p in small.se.parameters()]
    small.zero_grad()
    small.se.gain(x, cue).gain.pow(2).sum().backward()
    for a, b in zip(ours, (p.grad for p in small.se.parameters()), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------------------------------ LCA
def test_windows_padding() -> None:
    on = torch.zeros(2, 12, dtype=torch.bool)
    on[0, 2:5] = True
    on[0, 8:12] = True
    on[1, 0:3] = True
    onset, length = _windows(on)
    assert onset.tolist() == [[2, 8], [0, 12]]
    assert length.tolist() == [[3, 4], [3, 0]]


def test_lca_balanced_matches_discrete_closed_form(small: SETaskModel) -> None:
    cfg = small.config
    rho1, rho2 = 0.35, 0.30
    drive = torch.tensor([rho1, rho2], dtype=torch.float64).expand(1, 40, 2).clone()
    on = torch.ones(1, 40, dtype=torch.bool)
    windows, onset, length = small.double().accumulate(drive, on, noise=False)
    a, k = cfg.dt_ms / cfg.lca_tau_ms, cfg.leak
    n = np.arange(1, 41)
    s = (rho1 + rho2) / (2 * k) * (1 - (1 - 2 * a * k) ** n)
    d = n * a * (rho1 - rho2)
    assert onset.tolist() == [[0]] and length.tolist() == [[40]]
    np.testing.assert_allclose(windows[0, 0, :, 0].numpy(), (s + d) / 2, rtol=1e-12)
    np.testing.assert_allclose(windows[0, 0, :, 1].numpy(), (s - d) / 2, rtol=1e-12)


def _lca_numpy(drive: np.ndarray, a: float, k: float, beta: float) -> np.ndarray:
    x = np.zeros(2)
    out = []
    for rho in drive:
        x = np.maximum(0.0, x + a * (rho - k * x - beta * x[::-1]))
        out.append(x.copy())
    return np.array(out)


@pytest.mark.parametrize(("leak", "inhibition"), [(0.1, 0.5), (0.4, 0.0)])
def test_lca_general_matches_numpy_and_resets_per_window(leak: float, inhibition: float) -> None:
    model = SETaskModel(SETaskModelConfig(leak=leak, inhibition=inhibition)).double()
    rng = np.random.default_rng(5)
    drive = rng.uniform(0, 0.5, size=(1, 60, 2))
    on = torch.zeros(1, 60, dtype=torch.bool)
    on[0, 5:25] = True
    on[0, 30:60] = True
    windows, _, _ = model.accumulate(torch.from_numpy(drive), on, noise=False)
    a = model.config.dt_ms / model.config.lca_tau_ms
    np.testing.assert_allclose(windows[0, 0, :20].numpy(), _lca_numpy(drive[0, 5:25], a, leak, inhibition))
    np.testing.assert_allclose(windows[0, 1].numpy(), _lca_numpy(drive[0, 30:60], a, leak, inhibition))
    assert float(windows[0, 0, 20:].abs().max()) == 0.0  # past the window's end


def test_forward_shapes_and_accumulators_zero_outside_stimulus(
    small: SETaskModel, gen: torch.Generator
) -> None:
    stim, cue, on = _session(gen)
    out = small(stim, cue, on, generator=gen)
    assert out.accumulators.shape == (2, 150, 2)
    assert out.gain.shape == (2, 150, small.channels)
    assert out.windows.shape == (2, 2, 40, 2)
    assert out.onset.tolist() == [[20, 100]] * 2
    assert float(out.accumulators.detach()[~on].abs().max()) == 0.0
    torch.testing.assert_close(out.accumulators[:, 100:140], out.windows[:, 1])
    torch.testing.assert_close(out.state, out.gain[:, -1])
    g = out.gain
    assert bool((g > 0).all() and (g < small.config.gain_max).all())


def test_state_continues_a_session(small: SETaskModel, gen: torch.Generator) -> None:
    stim, cue, on = _session(gen)
    whole = small(stim, cue, on, noise=False)
    first = small(stim[:, :80], cue[:, :80], on[:, :80], noise=False)
    second = small(stim[:, 80:], cue[:, 80:], on[:, 80:], noise=False, state=first.state)
    torch.testing.assert_close(torch.cat([first.gain, second.gain], 1), whole.gain, rtol=1e-5, atol=1e-6)


def test_noise_is_seeded(small: SETaskModel, gen: torch.Generator) -> None:
    stim, cue, on = _session(gen)
    a = small(stim, cue, on, generator=torch.Generator().manual_seed(1))
    b = small(stim, cue, on, generator=torch.Generator().manual_seed(1))
    c = small(stim, cue, on, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(a.windows, b.windows, rtol=0, atol=0)
    assert not torch.equal(a.windows, c.windows)


# ------------------------------------------------------------------------------------ readout and loss
def test_decide_first_crossing(small: SETaskModel, gen: torch.Generator) -> None:
    out = small(*_session(gen), noise=False)
    w = torch.zeros(1, 3, 5, 2)
    w[0, 0, 2:, 0] = 1.2  # accumulator 1 crosses at step 2
    w[0, 1, 1:, 1] = 1.0  # accumulator 2 reaches threshold exactly at step 1
    w[0, 1, 3:, 0] = 2.0
    w[0, 2] = 0.5  # never
    choice, rt = small.decide(out._replace(windows=w))
    assert choice.tolist() == [[1, 2, 0]]
    np.testing.assert_array_equal(rt.numpy()[0, :2], [30.0, 20.0])
    assert math.isnan(float(rt[0, 2]))


def test_decision_loss_rewards_the_correct_accumulator(small: SETaskModel, gen: torch.Generator) -> None:
    out = small(*_session(gen), noise=False)
    w = torch.zeros(2, 2, 40, 2)
    w[..., 0] = 1.5
    good = decision_loss(
        out._replace(windows=w), torch.ones(2, 2, dtype=torch.long), dt_ms=10.0, threshold=1.0
    )
    bad = decision_loss(out._replace(windows=w), torch.full((2, 2), 2), dt_ms=10.0, threshold=1.0)
    # correct: BCE(6) ~ 0.0025, no shortfall; wrong: BCE(-6) ~ 6.0025 + 0.5 * 1^2
    assert float(good) == pytest.approx(math.log1p(math.exp(-6.0)), rel=1e-5)
    assert float(bad) == pytest.approx(math.log1p(math.exp(6.0)) + 0.5, rel=1e-5)


def test_loss_gradient_reaches_every_parameter(small: SETaskModel, gen: torch.Generator) -> None:
    with torch.no_grad():  # the readout starts at zero (undecided): give the gates a path to the loss
        small.readout.weight.normal_(0.0, 0.3, generator=gen)
    out = small(*_session(gen), generator=gen)
    decision_loss(out, torch.tensor([[1, 2], [2, 1]]), dt_ms=10.0, threshold=1.0).backward()
    for name, p in small.named_parameters():
        assert p.grad is not None and float(p.grad.abs().sum()) > 0, name


# ------------------------------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    ("which", "value", "error", "match"),
    [
        (
            "stimulus",
            torch.ones(2, 150, 3),
            ValueError,
            r"stimulus has shape \(2, 150, 3\), expected \(\*, \*, 4\)",
        ),
        ("cue", torch.ones(2, 149, 2), ValueError, r"cue has shape \(2, 149, 2\), expected \(2, 150, 2\)"),
        ("stim_on", torch.ones(2, 150), TypeError, "stim_on must be a bool tensor, got dtype torch.float32"),
        ("stim_on", np.ones((2, 150), bool), TypeError, "stim_on must be a torch.Tensor, got ndarray"),
        ("stimulus", torch.full((2, 150, 4), math.nan), ValueError, "stimulus must be finite"),
        ("state", torch.ones(2, 5), ValueError, r"state has shape \(2, 5\), expected \(2, 12\)"),
    ],
)
def test_forward_errors(
    small: SETaskModel, gen: torch.Generator, which: str, value: object, error: type, match: str
) -> None:
    stim, cue, on = _session(gen)
    kwargs = {"stimulus": stim, "cue": cue, "stim_on": on, which: value}
    state = kwargs.pop("state", None)
    with pytest.raises(error, match=match):
        small(kwargs["stimulus"], kwargs["cue"], kwargs["stim_on"], state=state)


def test_decision_loss_target_shape(small: SETaskModel, gen: torch.Generator) -> None:
    out = small(*_session(gen), noise=False)
    with pytest.raises(ValueError, match=r"target has shape \(2, 3\), expected \(2, 2\)"):
        decision_loss(out, torch.ones(2, 3, dtype=torch.long), dt_ms=10.0)


def test_model_config_type() -> None:
    with pytest.raises(TypeError, match="config must be an SETaskModelConfig, got dict"):
        SETaskModel({"tau_ms": 100.0})


def test_contextse_is_the_gate(small: SETaskModel) -> None:
    assert isinstance(small.se, ContextSE)
    assert small.se.tau_ms == small.config.tau_ms and small.se.time_dim == 1 and small.se.gain_max == 2.0
