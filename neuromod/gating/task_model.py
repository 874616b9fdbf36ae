"""SETaskModel: sensory channels -> ContextSE gate -> readout -> leaky competing accumulators.

The SE task model of cued task switching (issue 7), in pure torch: it knows nothing of tasks or
protocols and takes tensors. Per time step (step ``dt_ms``)::

    x_c(t)  = baseline_c + tuning_c * stimulus_{p(c)}(t) (+ input noise)   sensory channels
    g(t)    = ContextSE(x(t), cue(t))   causal squeeze, gate kinetics tau   -> `gain`
    rho(t)  = rho_max sigmoid(W (g(t) * x(t)) + w0)                          accumulator inputs
    tau_a dX_i = (rho_i - k X_i - beta X_j) dt + sigma sqrt(tau_a dt) xi    leaky competing accumulators
    X_i     = max(X_i, 0)

Each of the ``populations`` sensory populations (a+, a-, b+, b- in the task) expands into
``channels_per_population`` heterogeneous channels with fixed random positive tuning gains and baselines
(buffers, drawn from ``numpy.random.default_rng(seed)``); channel ``c`` belongs to population
``c // channels_per_population``. The ContextSE squeeze is causal (each step's gate sees only that step's
channels), its context is the cue, and its gates relax with time constant ``tau_ms`` (the
neuromodulator's release/uptake), so the gate state carries over from trial to trial.

The decision stage is the leaky competing accumulator (LCA) of Usher & McClelland (2001), integrated with
Euler(-Maruyama) steps of ``dt_ms``. The accumulators are 0 outside the stimulus and restart from 0 at each
stimulus onset (each contiguous run of ``stim_on``): every trial's response window is integrated on its
own, batched over sessions and trials. The readout for evaluation (:meth:`SETaskModel.decide`) is the first
crossing of ``threshold`` after stimulus onset; training uses the differentiable
:func:`decision_loss` on the accumulator difference.

References
----------
Hu, J., Shen, L. & Sun, G. (2018). Squeeze-and-Excitation Networks. CVPR.
Usher, M. & McClelland, J. L. (2001). The time course of perceptual choice: the leaky, competing
accumulator model. Psychol. Rev. 108:550-592.
"""

from __future__ import annotations

import dataclasses
import math
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from neuromod._checks import check_positive
from neuromod.config import Config, param
from neuromod.gating.core import ContextSE

__all__ = ["SETaskModel", "SETaskModelConfig", "SETaskOutput", "decision_loss"]


@dataclasses.dataclass(frozen=True)
class SETaskModelConfig(Config):
    """Parameters of :class:`SETaskModel` (frozen, checked; build from TOML with ``from_dict``).

    Decision-stage defaults follow Usher & McClelland (2001, Psychol. Rev. 108:550): leak ``k`` and
    lateral inhibition ``beta`` equal (their "balanced" regime, in which the accumulator difference
    integrates the input difference like a drift-diffusion process, Bogacz et al. 2006, Psychol. Rev.
    113:700), time constant 100 ms. The gate follows the SE block of Hu et al. (2018) with a sigmoid gate
    scaled to (0, ``gain_max``) and first-order kinetics ``tau_ms``.
    """

    channels_per_population: int = param(8, low=1, doc="SE channels per sensory population")
    populations: int = param(4, low=1, doc="sensory populations (a+, a-, b+, b- in the task)")
    contexts: int = param(2, low=1, doc="size of the context (cue) vector")
    tau_ms: float = param(200.0, low=0.0, low_inclusive=False, doc="gate kinetics time constant (ms)")
    dt_ms: float = param(10.0, low=0.0, low_inclusive=False, doc="time step (ms)")
    rd_ratio: float = param(0.5, low=0.0, low_inclusive=False, doc="SE reduction ratio (hidden/channels)")
    gain_max: float = param(2.0, low=0.0, low_inclusive=False, doc="gate range (0, gain_max) (1)")
    tuning_range: tuple[float, ...] = param(
        (0.5, 1.5), low=0.0, doc="[low, high] of the channels' random tuning gains (1)"
    )
    baseline_range: tuple[float, ...] = param(
        (0.1, 0.5), low=0.0, doc="[low, high] of the channels' random baseline activity (1)"
    )
    input_noise_sd: float = param(0.5, low=0.0, doc="sd of the sensory channels' noise per step (1)")
    lca_tau_ms: float = param(100.0, low=0.0, low_inclusive=False, doc="accumulator time constant (ms)")
    leak: float = param(0.2, low=0.0, doc="accumulator leak k (1)")
    inhibition: float = param(0.2, low=0.0, doc="lateral inhibition beta (1)")
    max_input: float = param(
        0.5, low=0.0, low_inclusive=False, doc="upper bound rho_max of the accumulator inputs (1)"
    )
    threshold: float = param(1.0, low=0.0, low_inclusive=False, doc="decision threshold (1)")
    noise_sd: float = param(0.1, low=0.0, doc="accumulator noise sigma per sqrt(lca_tau) (1)")
    seed: int = param(0, low=0, doc="seed of the channels' tuning and of the weight initialisation")

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("tuning_range", "baseline_range"):
            lo_hi = getattr(self, name)
            if len(lo_hi) != 2 or lo_hi[0] > lo_hi[1]:
                raise ValueError(f"{name}={lo_hi!r} must be [low, high] with low <= high")

    @property
    def channels(self) -> int:
        """Number of SE channels (``populations * channels_per_population``)."""
        return self.populations * self.channels_per_population


class SETaskOutput(NamedTuple):
    """What :meth:`SETaskModel.forward` returns (batch ``B``, time ``T``, trials ``N``, window ``L``).

    Attributes
    ----------
    accumulators : Tensor
        ``(B, T, 2)`` accumulator activities on the session's time axis (0 outside the stimulus); the value
        at step ``t`` is the state after that step's update.
    gain : Tensor
        ``(B, T, C)`` the gates (gain of each channel).
    drive : Tensor
        ``(B, T, 2)`` accumulator inputs ``rho``.
    windows : Tensor
        ``(B, N, L, 2)`` the accumulators of each trial's response window (step ``l`` is ``(l + 1) dt``
        after stimulus onset); 0 past the window's end and for padding trials.
    onset : Tensor
        ``(B, N)`` time index of each stimulus onset; ``T`` for padding (sessions with fewer trials).
    length : Tensor
        ``(B, N)`` steps in each response window; 0 for padding.
    state : Tensor
        ``(B, C)`` the gates after the last step (pass as ``state=`` to continue the session).
    """

    accumulators: Tensor
    gain: Tensor
    drive: Tensor
    windows: Tensor
    onset: Tensor
    length: Tensor
    state: Tensor


def _check_float_tensor(name: str, value: object, shape: tuple[int | None, ...]) -> Tensor:
    if not isinstance(value, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    ok = value.ndim == len(shape) and all(
        e is None or e == s for e, s in zip(shape, value.shape, strict=True)
    )
    if not ok:
        exp = "(" + ", ".join("*" if e is None else str(e) for e in shape) + ")"
        raise ValueError(f"{name} has shape {tuple(value.shape)}, expected {exp}")
    if value.dtype != torch.bool and not torch.isfinite(value).all():
        raise ValueError(
            f"{name} must be finite, got {int((~torch.isfinite(value)).sum())} non-finite value(s)"
        )
    return value


class SETaskModel(nn.Module):
    """The SE model of cued task switching: channels -> ContextSE -> readout -> LCA decision stage.

    See the module docstring for the equations. Names follow "The correspondence" table of
    ``docs/design.md``: the gates are the channels' ``gain``, the cue is the ``context``, ``tau_ms`` the
    gate kinetics.

    Parameters
    ----------
    config : SETaskModelConfig, optional
        Model parameters (defaults if omitted). Construction is deterministic given ``config.seed`` and
        leaves the global torch random state untouched.

    Attributes
    ----------
    tuning, baseline : Tensor
        ``(C,)`` buffers: each channel's fixed tuning gain and baseline activity.
    channel_population : Tensor
        ``(C,)`` buffer: the sensory population of each channel.
    se : ContextSE
        The gate (``channel_dim=-1``, ``time_dim=1``, sigmoid scaled to ``(0, gain_max)``).
    readout : nn.Linear
        ``C -> 2``: gated channels to accumulator inputs (through ``max_input * sigmoid``).

    Examples
    --------
    >>> import torch
    >>> model = SETaskModel(SETaskModelConfig(channels_per_population=2))
    >>> stim = torch.ones(1, 50, 4); cue = torch.zeros(1, 50, 2); cue[..., 0] = 1
    >>> on = torch.zeros(1, 50, dtype=torch.bool); on[:, 20:] = True
    >>> out = model(stim, cue, on, noise=False)
    >>> out.accumulators.shape, out.gain.shape, out.windows.shape
    (torch.Size([1, 50, 2]), torch.Size([1, 50, 8]), torch.Size([1, 1, 30, 2]))
    """

    def __init__(self, config: SETaskModelConfig | None = None) -> None:
        super().__init__()
        if config is None:
            config = SETaskModelConfig()
        if not isinstance(config, SETaskModelConfig):
            raise TypeError(f"config must be an SETaskModelConfig, got {type(config).__name__}")
        self.config = config
        c = config.channels
        rng = np.random.default_rng(config.seed)
        tuning = rng.uniform(*config.tuning_range, size=c)
        baseline = rng.uniform(*config.baseline_range, size=c)
        self.register_buffer("tuning", torch.as_tensor(tuning, dtype=torch.float32))
        self.register_buffer("baseline", torch.as_tensor(baseline, dtype=torch.float32))
        pop = torch.arange(c) // config.channels_per_population
        self.register_buffer("channel_population", pop)
        # Seed only the CPU generator, inside a fork that restores it: torch.manual_seed would also
        # (re)seed every accelerator's generator (CUDA, MPS, XPU), which fork_rng(devices=[]) does not
        # restore. The weights are drawn on the CPU, so they are the same either way.
        with torch.random.fork_rng(devices=[]):
            torch.random.default_generator.manual_seed(config.seed)
            self.se = ContextSE(
                c,
                config.contexts,
                rd_ratio=config.rd_ratio,
                gain_max=config.gain_max,
                tau_ms=config.tau_ms,
                dt_ms=config.dt_ms,
                channel_dim=-1,
                time_dim=1,
            )
            self.readout = nn.Linear(c, 2)
            # start undecided: equal, moderate inputs (0.4 max_input) whatever the stimulus
            nn.init.zeros_(self.readout.weight)
            nn.init.constant_(self.readout.bias, math.log(0.4 / 0.6))
        self._alpha = config.dt_ms / config.lca_tau_ms
        if self._alpha > 1:
            raise ValueError(
                f"dt_ms={config.dt_ms} is longer than lca_tau_ms={config.lca_tau_ms}: Euler integration of "
                "the accumulators needs dt_ms <= lca_tau_ms"
            )

    @property
    def channels(self) -> int:
        """Number of SE channels C."""
        return self.config.channels

    def extra_repr(self) -> str:
        cfg = self.config
        return (
            f"populations={cfg.populations}, channels_per_population={cfg.channels_per_population}, "
            f"tau_ms={cfg.tau_ms:g}, dt_ms={cfg.dt_ms:g}, threshold={cfg.threshold:g}"
        )

    # ------------------------------------------------------------------ stages
    def sensory(
        self, stimulus: Tensor, *, noise: bool = True, generator: torch.Generator | None = None
    ) -> Tensor:
        """Channel activity ``baseline + tuning * stimulus[population]`` (+ noise), ``(..., C)``.

        Parameters
        ----------
        stimulus : Tensor
            ``(..., populations)`` relative input of each sensory population.
        noise : bool, default True
            Add independent Gaussian noise of sd ``input_noise_sd`` to every channel and step.
        generator : torch.Generator, optional
            Source of the noise.
        """
        x = self.baseline + self.tuning * stimulus.index_select(-1, self.channel_population)
        if noise and self.config.input_noise_sd > 0:
            eps = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
            x = x + self.config.input_noise_sd * eps
        return x

    def forward(
        self,
        stimulus: Tensor,
        cue: Tensor,
        stim_on: Tensor,
        *,
        state: Tensor | None = None,
        noise: bool = True,
        generator: torch.Generator | None = None,
    ) -> SETaskOutput:
        """Run sessions: gates over time, and the accumulators of every response window.

        Parameters
        ----------
        stimulus : Tensor
            ``(B, T, populations)`` relative sensory input (0 outside the stimulus).
        cue : Tensor
            ``(B, T, contexts)`` the context (one-hot cue) at each step.
        stim_on : Tensor of bool
            ``(B, T)``: True during the stimulus (response window); each contiguous run is one trial,
            whose accumulators start from 0.
        state : Tensor, optional
            ``(B, C)`` gates just before the first step (to continue a session); default: the steady
            state of the first step.
        noise : bool, default True
            Sensory and accumulator noise on (off: a deterministic run).
        generator : torch.Generator, optional
            Source of all noise (seed it for reproducible runs).

        Returns
        -------
        SETaskOutput

        Raises
        ------
        TypeError, ValueError
            Wrong types, shapes (naming the expected shape) or non-finite inputs.
        """
        cfg = self.config
        stimulus = _check_float_tensor("stimulus", stimulus, (None, None, cfg.populations))
        b, t = stimulus.shape[:2]
        cue = _check_float_tensor("cue", cue, (b, t, cfg.contexts))
        stim_on = _check_float_tensor("stim_on", stim_on, (b, t))
        if stim_on.dtype != torch.bool:
            raise TypeError(f"stim_on must be a bool tensor, got dtype {stim_on.dtype}")
        if state is not None:
            state = _check_float_tensor("state", state, (b, cfg.channels))
        if t == 0:
            raise ValueError(f"stimulus has shape {tuple(stimulus.shape)}: expected at least one time step")
        dtype = self.tuning.dtype
        x = self.sensory(stimulus.to(dtype), noise=noise, generator=generator)
        g = self.gate(x, cue.to(dtype), state=state)
        drive = cfg.max_input * torch.sigmoid(self.readout(g * x))
        windows, onset, length = self.accumulate(drive, stim_on, noise=noise, generator=generator)
        acc = _scatter_windows(windows, onset, length, t)
        return SETaskOutput(acc, g, drive, windows, onset, length, g[:, -1])

    def gate(self, x: Tensor, cue: Tensor, *, state: Tensor | None = None) -> Tensor:
        """Gates ``(B, T, C)`` of channel activity `x` ``(B, T, C)`` under context `cue` ``(B, T, K)``.

        The same numbers as ``self.se.gain(x, cue, state=state).gain`` (ContextSE's exact first-order
        kinetics, ``g[t] = g*[t] + alpha (g[t-1] - g*[t])`` with ``alpha = exp(-dt/tau)`` and ``g[-1] =
        state`` or ``g*[0]``), computed faster for long sessions: the instantaneous gates ``g*`` come from
        ``self.se.excite`` in one batch and the linear recursion is solved in chunks of
        ``_CHUNK`` steps by a matrix product, so autograd sees ``T / _CHUNK`` steps instead of ``T``.
        """
        b, t, c = x.shape
        target = self.se.excite(x.reshape(b * t, c), cue.reshape(b * t, -1)).gain.reshape(b, t, c)
        return _relax_chunked(target, state, float(self.se._alpha))

    def accumulate(
        self,
        drive: Tensor,
        stim_on: Tensor,
        *,
        noise: bool = True,
        generator: torch.Generator | None = None,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """The leaky competing accumulators of every response window (Usher & McClelland 2001, eq. 4).

        Euler(-Maruyama) steps of ``dt_ms`` of ``tau dX_i = (rho_i - k X_i - beta X_j) dt + sigma
        sqrt(tau dt) xi_i`` with ``X_i >= 0`` enforced after each step, ``X = 0`` before each window's first
        step; all windows are integrated at once.

        Parameters
        ----------
        drive : Tensor
            ``(B, T, 2)`` the inputs ``rho``.
        stim_on : Tensor of bool
            ``(B, T)``: each contiguous run of True is one response window.
        noise : bool, default True
            Add the accumulator noise (``noise_sd``).
        generator : torch.Generator, optional
            Source of the noise.

        Returns
        -------
        windows, onset, length : Tensor
            As in :class:`SETaskOutput`.
        """
        cfg = self.config
        b, t, _ = drive.shape
        onset, length = _windows(stim_on)
        n = onset.shape[1]
        steps = int(length.max()) if length.numel() else 0
        if n == 0 or steps == 0:
            return drive.new_zeros((b, n, steps, 2)), onset, length
        offs = torch.arange(steps, device=drive.device)
        idx = (onset.unsqueeze(-1) + offs).clamp(max=t - 1)  # (B, N, L)
        valid = offs < length.unsqueeze(-1)
        rho = drive.gather(1, idx.reshape(b, n * steps, 1).expand(-1, -1, 2)).reshape(b, n, steps, 2)
        a = self._alpha
        # per step: X <- relu(X + a (rho - k X - beta X_other) + sigma sqrt(a) xi)
        inp = a * rho
        if noise and cfg.noise_sd > 0:
            xi = torch.randn(inp.shape, generator=generator, dtype=inp.dtype, device=inp.device)
            inp = inp + (cfg.noise_sd * math.sqrt(a)) * xi
        keep, cross = 1.0 - a * cfg.leak, a * cfg.inhibition
        x = drive.new_zeros((b, n, 2))
        out = []
        for step in range(steps):
            x = torch.relu(keep * x - cross * x.flip(-1) + inp[:, :, step])
            out.append(x)
        return torch.stack(out, dim=2) * valid.unsqueeze(-1), onset, length

    # ------------------------------------------------------------------ evaluation readout
    @torch.no_grad()
    def decide(self, output: SETaskOutput) -> tuple[Tensor, Tensor]:
        """Threshold readout: choice and reaction time of every trial (not differentiable).

        The response is the first step at which an accumulator reaches ``threshold`` (the larger one if
        both do at once); RT is ``(l + 1) * dt_ms`` for the crossing at window step ``l``.

        Returns
        -------
        choice : Tensor
            ``(B, N)`` int64: 1 or 2 for the accumulator that crossed, 0 if none within the window
            (and for padding trials).
        rt_ms : Tensor
            ``(B, N)`` reaction time from stimulus onset (ms), NaN without a response.
        """
        w = output.windows
        if w.shape[2] == 0:
            shape = w.shape[:2]
            return torch.zeros(shape, dtype=torch.long), torch.full(shape, math.nan)
        crossed = (w >= self.config.threshold).any(-1)  # (B, N, L)
        any_cross = crossed.any(-1)
        first = crossed.to(torch.int8).argmax(-1)  # first True
        at = w.gather(2, first[..., None, None].expand(-1, -1, 1, 2)).squeeze(2)
        choice = torch.where(any_cross, 1 + (at[..., 1] > at[..., 0]).long(), 0)
        rt = torch.where(any_cross, (first + 1).to(torch.float64) * self.config.dt_ms, math.nan)
        return choice, rt


def decision_loss(
    output: SETaskOutput,
    target: Tensor,
    *,
    dt_ms: float,
    late_ms: float = 300.0,
    scale: float = 0.25,
    threshold: float | None = None,
    threshold_weight: float = 0.5,
) -> Tensor:
    """Differentiable training loss on the response windows of :class:`SETaskOutput`.

    Binary cross-entropy of ``sigmoid((X_1 - X_2) / scale)`` against the correct choice, averaged over the
    window steps from `late_ms` after stimulus onset to the window's end; with a `threshold`, plus
    ``threshold_weight`` times the mean squared shortfall ``relu(threshold - X_correct)^2`` over the same
    steps (so that the correct accumulator crosses the threshold used by :meth:`SETaskModel.decide`).

    Parameters
    ----------
    output : SETaskOutput
        From :meth:`SETaskModel.forward`.
    target : Tensor
        ``(B, N)`` correct choice of each trial (1 or 2); entries of padding trials are ignored.
    dt_ms : float
        The model's time step (ms).
    late_ms, scale, threshold, threshold_weight : float
        Start of the scored window (ms from onset), temperature of the difference, decision threshold
        (None: no threshold term) and that term's weight.

    Returns
    -------
    Tensor
        The scalar loss.
    """
    dt_ms = check_positive("dt_ms", dt_ms)
    scale = check_positive("scale", scale)
    w = output.windows
    if not isinstance(target, Tensor) or tuple(target.shape) != tuple(w.shape[:2]):
        shape = tuple(target.shape) if isinstance(target, Tensor) else type(target).__name__
        raise ValueError(f"target has shape {shape}, expected {tuple(w.shape[:2])} (sessions, trials)")
    steps = w.shape[2]
    offs = torch.arange(steps, device=w.device)
    mask = (offs < output.length.unsqueeze(-1)) & ((offs + 1) * dt_ms >= late_ms)
    mask = mask & ((target == 1) | (target == 2)).unsqueeze(-1)
    n = mask.sum().clamp(min=1)
    y = (target == 1).to(w.dtype).unsqueeze(-1).expand_as(mask)
    logits = (w[..., 0] - w[..., 1]) / scale
    loss = (F.binary_cross_entropy_with_logits(logits, y, reduction="none") * mask).sum() / n
    if threshold is not None and threshold_weight > 0:
        correct = torch.where(y > 0, w[..., 0], w[..., 1])
        short = torch.relu(threshold - correct).pow(2)
        loss = loss + threshold_weight * (short * mask).sum() / n
    return loss


_CHUNK = 64


def _relax_chunked(target: Tensor, state: Tensor | None, alpha: float, chunk: int = _CHUNK) -> Tensor:
    """Exact solution of ``g[t] = alpha g[t-1] + (1 - alpha) target[t]`` along dim 1, ``g[-1] = state``.

    Within a chunk of K steps, ``g[i] = sum_j<=i (1 - alpha) alpha^(i-j) target[j] + alpha^(i+1) g_prev``,
    a (K x K) lower-triangular matrix product; the chunks are chained through their last value.
    """
    b, t, c = target.shape
    k = min(chunk, t)
    m = -(-t // k)
    pad = m * k - t
    tgt = F.pad(target, (0, 0, 0, pad)) if pad else target
    tgt = tgt.reshape(b, m, k, c)
    i = torch.arange(k, dtype=target.dtype, device=target.device)
    diff = i[:, None] - i[None, :]
    weights = torch.where(diff >= 0, (1 - alpha) * alpha ** diff.clamp(min=0), 0.0)  # (K, K)
    decay = (alpha ** (i + 1)).view(k, 1)  # (K, 1)
    within = torch.matmul(weights, tgt)  # (B, M, K, C)
    prev = target[:, 0] if state is None else state.to(target)
    chunks = []
    for j in range(m):
        g = within[:, j] + decay * prev.unsqueeze(1)
        chunks.append(g)
        prev = g[:, -1]
    return torch.cat(chunks, dim=1)[:, :t]


def _windows(stim_on: Tensor) -> tuple[Tensor, Tensor]:
    """Onset index and length of each contiguous run of True per row, padded with (T, 0)."""
    b, t = stim_on.shape
    prev = F.pad(stim_on[:, :-1], (1, 0), value=False)
    nxt = F.pad(stim_on[:, 1:], (0, 1), value=False)
    start = stim_on & ~prev
    end = stim_on & ~nxt
    n = int(start.sum(1).max()) if b else 0
    pos = torch.arange(t, device=stim_on.device).expand(b, t)
    big = torch.full_like(pos, t)
    onset = torch.where(start, pos, big).sort(1).values[:, :n]
    last = torch.where(end, pos, big).sort(1).values[:, :n]
    length = torch.where(onset < t, last - onset + 1, 0)
    return onset, length


def _scatter_windows(windows: Tensor, onset: Tensor, length: Tensor, t: int) -> Tensor:
    """Put the (already masked) window accumulators back on the session's time axis."""
    b, n, steps, _ = windows.shape
    acc = windows.new_zeros((b, t, 2))
    if n == 0 or steps == 0:
        return acc
    idx = (onset.unsqueeze(-1) + torch.arange(steps, device=windows.device)).clamp(max=t - 1)
    return acc.scatter_add(
        1, idx.reshape(b, n * steps, 1).expand(-1, -1, 2), windows.reshape(b, n * steps, 2)
    )
