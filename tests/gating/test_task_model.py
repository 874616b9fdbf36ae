"""Tests of SETaskModel: gate kinetics, LCA against the discrete analytic solution, readout, errors.

References used as independent checks:
* ContextSE's own step-by-step kinetics loop (``ContextSE.gain`` with ``tau_ms``) for the chunked solver;
* the Euler-discretised leaky competing accumulator (Usher & McClelland 2001, Psychol. Rev. 108:550) in
  closed form for the balanced case ``k = beta`` (sum and difference decouple while both are positive):
  ``S_n = (rho_1 + rho_2) / (k + beta) * (1 - (1 - a (k + beta))^n)``, ``D_n = n a (rho_1 - rho_2)``,
  ``a = dt / tau``; and a plain numpy loop for the general case.
"""

from __future__ import annotations

import copy
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import Tensor

from neuromod.config import ConfigError
from neuromod.gating import ContextSE, SETaskModel, SETaskModelConfig, decision_loss
from neuromod.gating.task_model import _CHUNK, _relax_chunked, _windows

F32, F64 = torch.float32, torch.float64


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


# ------------------------------------------------------------------------------------ gate kinetics
def _alpha(model: SETaskModel) -> float:
    return math.exp(-model.config.dt_ms / model.config.tau_ms)


def _loop_terms(alpha: float) -> float:
    """Rounding of ContextSE's kinetics loop in units of eps * max|g| (4 roundings a step, decaying)."""
    return 4.0 / (1.0 - alpha)


def _chunk_terms(alpha: float, t: int) -> float:
    """Rounding of the chunked solver in units of eps * max|g|.

    Per chunk of K steps: a product with K terms whose weights (1 - alpha) alpha^d sum to <= 1, the weights'
    own rounding (``alpha ** d`` in the target's dtype: alpha rounds once, the power and the product a few
    times), the decay term and the sum: K + 8; the error carried into the next chunk shrinks by alpha^K.
    """
    k = min(_CHUNK, t)
    return (k + 8) / (1.0 - alpha**k)


def _target_err(model: SETaskModel, x: Tensor, cue: Tensor, fp: SimpleNamespace) -> float:
    """Bound on the rounding of the instantaneous gates g* (x enters the excitation unsqueezed: exact)."""
    x_mag = x.detach().abs()
    return float(fp.excitation(model.se, x_mag, torch.zeros_like(x_mag), cue)[1].max())


@pytest.mark.parametrize("t", [1, 63, 64, 150])
@pytest.mark.parametrize("with_state", [False, True])
def test_chunked_gate_equals_contextse_loop(
    small: SETaskModel, gen: torch.Generator, t: int, with_state: bool, fp: SimpleNamespace
) -> None:
    x = small.sensory(1 + torch.randn(3, t, 4, generator=gen), generator=gen)
    cue = torch.eye(2)[torch.randint(0, 2, (3, t), generator=gen)]
    state = 2 * torch.rand(3, small.channels, generator=gen) if with_state else None
    ours = small.gate(x, cue, state=state)
    ref = small.se.gain(x, cue, state=state).gain  # ContextSE's step-by-step loop
    # the targets come from excitations of another shape (other GEMM kernels: two sides of the bound),
    # then each solver rounds on values below max(gain_max, state) = 2
    alpha = _alpha(small)
    tol = fp.tol(F32, _loop_terms(alpha) + _chunk_terms(alpha, t), 2.0)
    tol["atol"] += 2 * _target_err(small, x, cue, fp)
    torch.testing.assert_close(ours, ref, **tol)


def test_relax_chunked_matches_closed_form(fp: SimpleNamespace) -> None:
    t = 300
    alpha = math.exp(-10.0 / 200.0)
    target = torch.zeros(1, t, 1, dtype=torch.float64)
    g0 = torch.ones(1, 1, dtype=torch.float64)
    g = _relax_chunked(target, g0, alpha)[0, :, 0]
    n = torch.arange(1, t + 1, dtype=torch.float64)
    # relative errors (float64): alpha = fl(exp(-0.05)) is off by 1 + T eps (T for exp), so alpha^n by
    # n (T + 1) eps; each chunk's alpha^(i+1) (a power, T) times the carried value: T + 1 per chunk; the
    # reference's exponent n * 10 / 200 rounds once (relative error n / 20 eps after exp) and exp adds T
    chunks = math.ceil(t / _CHUNK)
    terms = (t + chunks) * (fp.TRANSCENDENTAL + 1) + t / 20 + fp.TRANSCENDENTAL
    torch.testing.assert_close(g, torch.exp(-n * 10.0 / 200.0), rtol=terms * fp.eps(F64), atol=0)


def _loop_gradients(
    model64: SETaskModel, x: Tensor, cue: Tensor
) -> tuple[dict[str, Tensor], dict[str, Tensor], float]:
    """Gradients of ``sum(g^2)`` by ContextSE's loop (float64) and the magnitudes ``sum|terms|`` of each.

    ``dL/dz`` (z the excitation's output) is a sum of positive terms (the gains and the relaxation weights
    are positive), so it is its own magnitude; the magnitude of ``dL/dh`` is ``|W2|' dL/dz`` on active
    units; a weight's gradient sums ``|dL/d(out)| |in|`` over batch and time, the inputs bounded by the
    running magnitudes ``|W| |in| + |b|``. Also returns max ``|W2| h + |b2|``, a bound on |z|.
    """
    se = model64.se
    fc1, fc2 = se.excitation.fc1, se.excitation.fc2
    seen: dict[torch.nn.Module, tuple[Tensor, Tensor]] = {}

    def keep(module: torch.nn.Module, args: tuple[Tensor, ...], out: Tensor) -> None:
        out.retain_grad()
        seen[module] = (args[0], out)

    handles = [fc1.register_forward_hook(keep), fc2.register_forward_hook(keep)]
    try:
        model64.zero_grad()
        se.gain(x.double(), cue.double()).gain.pow(2).sum().backward()
    finally:
        for handle in handles:
            handle.remove()
    grads = {name: p.grad.clone() for name, p in se.named_parameters()}
    (inp, pre), (_, z) = seen[fc1], seen[fc2]
    w1, b1, w2, b2 = (p.detach().abs() for p in (fc1.weight, fc1.bias, fc2.weight, fc2.bias))
    on = (pre > 0).double()
    dz = z.grad.abs()
    inp_mag = inp.detach().abs()
    h_mag = on * (inp_mag @ w1.T + b1)
    dpre = on * (dz @ w2)

    def flat(t: Tensor) -> Tensor:
        return t.reshape(-1, t.shape[-1])

    mags = {
        "excitation.fc1.weight": flat(dpre).T @ flat(inp_mag),
        "excitation.fc1.bias": flat(dpre).sum(0),
        "excitation.fc2.weight": flat(dz).T @ flat(h_mag),
        "excitation.fc2.bias": flat(dz).sum(0),
    }
    return grads, mags, float((h_mag @ w2.T + b2).max())


def test_gate_gradients_match_loop(small: SETaskModel, gen: torch.Generator, fp: SimpleNamespace) -> None:
    """The chunked solver's gradients, in float32 and float64, against ContextSE's loop in float64.

    Tolerance (float32; float64 with its own eps): every gradient element is a sum of terms whose
    magnitudes ``sum|terms|`` (M, from :func:`_loop_gradients`) are computed exactly; by the rule of
    tests/gating/conftest.py its rounding is at most ``eps * n * max(M)`` over the tensor, with n the terms
    accumulated along the longest chain:

    * forward: fc1 (C + K + 1 terms), fc2 (rd + 1), the sigmoid (T) and gain_max (1); these relative errors
      reach the gradient through sigma'(z), whose relative change is at most |dz|, so they count
      max(1, max|z|) times;
    * the chunked relaxation forward and its adjoint (a transposed product of the same size): twice
      :func:`_chunk_terms`;
    * backward: 2 g (1), gain_max and sigma' = s (1 - s) (3), ``W2' dL/dz`` (C terms), and the sum over
      batch and time (B T terms) that makes each parameter's gradient.

    For B = 2, T = 90 (two chunks), C = 12 this is about 500 eps * max(M), some 50 times the largest error
    seen (about 9 eps * max(M), fc2.bias); an algebra slip (a power of alpha, a chunk boundary) moves the
    gradients by a fraction (1 - alpha) ~ 5 % of M instead.
    """
    b, t = 2, 90
    x = small.sensory(torch.ones(b, t, 4), generator=gen)
    cue = torch.eye(2)[torch.randint(0, 2, (b, t), generator=gen)]
    model64 = copy.deepcopy(small).double()
    ref, mags, z_max = _loop_gradients(model64, x, cue)
    fc1, fc2 = small.se.excitation.fc1, small.se.excitation.fc2
    n_forward = (fc1.in_features + 1) + (fc2.in_features + 1) + fp.TRANSCENDENTAL + 1
    n_backward = 1 + 3 + fc2.out_features + b * t
    n_terms = n_forward * max(1.0, z_max) + 2 * _chunk_terms(_alpha(small), t) + n_backward
    for model, dtype in [(small, F32), (model64, F64)]:
        model.zero_grad()
        model.gate(x.to(dtype), cue.to(dtype)).pow(2).sum().backward()
        for name, param in model.se.named_parameters():
            scale = float(mags[name].max())
            # float64 against float64: both sides rounded
            sides = 2 if dtype == F64 else 1
            tol = fp.tol(dtype, n_terms, scale, sides=sides)
            torch.testing.assert_close(
                param.grad.double(), ref[name], **tol, msg=lambda m, n=name: f"{n}: {m}"
            )


# ------------------------------------------------------------------------------------ LCA
def test_windows_padding() -> None:
    on = torch.zeros(2, 12, dtype=torch.bool)
    on[0, 2:5] = True
    on[0, 8:12] = True
    on[1, 0:3] = True
    onset, length = _windows(on)
    assert onset.tolist() == [[2, 8], [0, 12]]
    assert length.tolist() == [[3, 4], [3, 0]]


def test_lca_balanced_matches_discrete_closed_form(small: SETaskModel, fp: SimpleNamespace) -> None:
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
    # float64, in eps * max(S): each Euler step rounds 5 times (two products, a difference, the input
    # a rho and its sum) and the difference mode (eigenvalue keep + cross = 1 when k = beta) carries
    # every error on undamped: 5 n. The closed form: the base 1 - 2ak rounds 3 times, so its n-th power
    # 3 n (+ T for the power), and about 10 more roundings around it.
    n_steps = 40
    tol = fp.tol(F64, 5 * n_steps + 3 * n_steps + fp.TRANSCENDENTAL + 10, float(np.max(s)))
    torch.testing.assert_close(windows[0, 0, :, 0], torch.from_numpy((s + d) / 2), **tol)
    torch.testing.assert_close(windows[0, 0, :, 1], torch.from_numpy((s - d) / 2), **tol)


def _lca_numpy(drive: np.ndarray, a: float, k: float, beta: float) -> np.ndarray:
    x = np.zeros(2)
    out = []
    for rho in drive:
        x = np.maximum(0.0, x + a * (rho - k * x - beta * x[::-1]))
        out.append(x.copy())
    return np.array(out)


@pytest.mark.parametrize(("leak", "inhibition"), [(0.1, 0.5), (0.4, 0.0)])
def test_lca_general_matches_numpy_and_resets_per_window(
    leak: float, inhibition: float, fp: SimpleNamespace
) -> None:
    model = SETaskModel(SETaskModelConfig(leak=leak, inhibition=inhibition)).double()
    rng = np.random.default_rng(5)
    drive = rng.uniform(0, 0.5, size=(1, 60, 2))
    on = torch.zeros(1, 60, dtype=torch.bool)
    on[0, 5:25] = True
    on[0, 30:60] = True
    windows, _, _ = model.accumulate(torch.from_numpy(drive), on, noise=False)
    a = model.config.dt_ms / model.config.lca_tau_ms
    # float64, two sides: a step rounds 5 (torch) and 6 (numpy) times on summands below
    # (1 + a (k + beta)) max|X| + a max|rho|; the step's matrix has eigenvalues 1 - a (k +- beta) in
    # [0, 1], and relu is 1-Lipschitz, so n steps add the errors up without growth
    for got, rho in [(windows[0, 0, :20], drive[0, 5:25]), (windows[0, 1], drive[0, 30:60])]:
        expected = _lca_numpy(rho, a, leak, inhibition)
        scale = (1 + a * (leak + inhibition)) * np.abs(expected).max() + a * np.abs(rho).max()
        tol = fp.tol(F64, (5 + 6) * len(rho), scale)
        torch.testing.assert_close(got, torch.from_numpy(expected), **tol)
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
    # each step receives one window value (plus exact zeros from masked steps): bitwise equal
    torch.testing.assert_close(out.accumulators[:, 100:140], out.windows[:, 1], rtol=0, atol=0)
    torch.testing.assert_close(out.state, out.gain[:, -1], rtol=0, atol=0)
    g = out.gain
    assert bool((g > 0).all() and (g < small.config.gain_max).all())


def test_state_continues_a_session(small: SETaskModel, gen: torch.Generator, fp: SimpleNamespace) -> None:
    stim, cue, on = _session(gen)
    whole = small(stim, cue, on, noise=False)
    first = small(stim[:, :80], cue[:, :80], on[:, :80], noise=False)
    second = small(stim[:, 80:], cue[:, 80:], on[:, 80:], noise=False, state=first.state)
    # other chunk boundaries and GEMM shapes: both sides within the solver's and the targets' bounds
    x = small.sensory(stim, noise=False)
    alpha = _alpha(small)
    tol = fp.tol(F32, _chunk_terms(alpha, 150), small.config.gain_max, sides=2)
    tol["atol"] += 2 * _target_err(small, x, cue, fp)
    torch.testing.assert_close(torch.cat([first.gain, second.gain], 1), whole.gain, **tol)


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


def test_decision_loss_rewards_the_correct_accumulator(
    small: SETaskModel, gen: torch.Generator, fp: SimpleNamespace
) -> None:
    out = small(*_session(gen), noise=False)
    w = torch.zeros(2, 2, 40, 2)
    w[..., 0] = 1.5
    good = decision_loss(
        out._replace(windows=w), torch.ones(2, 2, dtype=torch.long), dt_ms=10.0, threshold=1.0
    )
    bad = decision_loss(out._replace(windows=w), torch.full((2, 2), 2), dt_ms=10.0, threshold=1.0)
    # correct: BCE(6) ~ 0.0025, no shortfall; wrong: BCE(-6) ~ 6.0025 + 0.5 * 1^2
    expected_good, expected_bad = math.log1p(math.exp(-6.0)), math.log1p(math.exp(6.0)) + 0.5
    # float32: the logit 1.5 / 0.25 = 6 is exact; torch's BCE takes log(1 + exp(-6)), whose argument
    # rounds to within eps/2 of 1.0025 (an absolute error eps/2 after the log: 1 eps with margin) plus 2 T
    # relative (exp, log); the mean over the n scored steps adds n relative
    n = 2 * 2 * sum((step + 1) * 10.0 >= 300.0 for step in range(40))  # sessions x trials x late steps
    for got, expected in [(good, expected_good), (bad, expected_bad)]:
        atol = fp.eps(F32) * (1 + (n + 2 * fp.TRANSCENDENTAL) * expected)
        torch.testing.assert_close(float(got), expected, rtol=0, atol=atol)


def test_loss_gradient_reaches_every_parameter(
    small: SETaskModel, gen: torch.Generator, fp: SimpleNamespace
) -> None:
    """Every parameter gets a gradient above the rounding noise of a zero one (float64, conftest)."""
    model = small.double()
    with torch.no_grad():  # the readout starts at zero (undecided): give the gates a path to the loss
        model.readout.weight.normal_(0.0, 0.3, generator=gen)
    out = model(*_session(gen), generator=gen)
    loss = decision_loss(out, torch.tensor([[1, 2], [2, 1]]), dt_ms=10.0, threshold=1.0)
    loss.backward()
    # the loss is a mean of non-negative terms: its magnitude is its value; every chain of sums runs over
    # fewer terms than the gates, drives and windows hold together
    n_terms = out.gain.numel() + out.drive.numel() + out.windows.numel()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert fp.resolved(p.grad, p, loss.reshape(1), n_terms), name


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
