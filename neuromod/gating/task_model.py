"""SETaskModel: sensory channels -> ContextSE gate (pooled squeeze) -> fixed readout -> accumulators.

The SE task model of cued task switching, in pure torch: it knows nothing of tasks or protocols and takes
tensors. Per time step (step ``dt_ms``)::

    x_c(t)  = baseline_c + tuning_c * stimulus_{p(c)}(t) (+ input noise)        sensory channels
    s_p(t)  = s_p(t - dt) + (1 - a_s) (mean_{c in p} x_c(t) - s_p(t - dt))      squeeze, a_s = exp(-dt/tau_s)
    g*(t)   = g_min + (g_max - g_min) sigmoid(W2 relu(W1 [s_{p(c)}(t)]_c, k(t)))   excitation (ContextSE)
    g(t)    = g*(t) + a (g(t - dt) - g*(t)),  a = exp(-dt/tau)                   gate kinetics -> `gain`
    rho_1   = w (y_{a+} + y_{b+}),  rho_2 = w (y_{a-} + y_{b-}),  y_p = mean_{c in p} g_c x_c   readout
    tau_a dX_i = (rho_i - k X_i - beta X_j) dt + sigma sqrt(tau_a dt) xi,  X_i = max(X_i, 0)    accumulators

The squeeze summarises ongoing activity as in the SE block (Hu et al. 2018, eq. 2): it pools each sensory
population's channels and a recent time window (an exponential window of time constant
``squeeze_tau_ms``), and every channel's descriptor entry is its population's summary. The excitation also
receives the context ``k(t)`` (the cue: one-hot while a cue is on, uniform when none is). The gates relax
with time constant ``tau_ms`` (the neuromodulator's release/uptake), so the gate state carries over from
trial to trial. The readout is fixed and wired like the rate and spiking circuits (a+ and b+ drive
accumulator 1, a- and b- accumulator 2, weight ``readout_gain``), so the SE model differs from them only in
its gain control: the excitation is the only thing trained.

Sessions run in closed loop, trial by trial (:meth:`SETaskModel.forward`): trial ``k`` is ``rci`` steps
without cue or stimulus, ``csi`` steps with the cue, then the stimulus until the first threshold crossing
(the response) or ``max_rt`` steps; the accumulators start from 0 at stimulus onset, and the squeeze and
gate states at the response carry over to the next trial.

The decision stage is the leaky competing accumulator (LCA) of Usher & McClelland (2001), integrated with
Euler(-Maruyama) steps of ``dt_ms``.

References
----------
Hu, J., Shen, L. & Sun, G. (2018). Squeeze-and-Excitation Networks. CVPR.
Usher, M. & McClelland, J. L. (2001). The time course of perceptual choice: the leaky, competing
accumulator model. Psychol. Rev. 108:550-592.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Literal, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from neuromod._checks import check_int, check_positive
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
    scaled to (``gain_min``, ``gain_max``) and first-order kinetics ``tau_ms``: like the biological
    mechanisms (e.g. the spiking ``input_gain`` efficacy, :class:`neuromod.spiking.ModulationParams`), the
    gate scales a population's gain within a bounded range and cannot silence it. ``readout_gain`` and
    ``noise_sd`` are
    the values calibrated for the task-switching experiment (repeat-trial accuracy 0.90-0.97, mean
    correct RT 450-750 ms at 12.8 % coherence; ``neuromod.protocols.calibration``).
    """

    channels_per_population: int = param(8, low=1, doc="SE channels per sensory population")
    populations: int = param(4, low=1, doc="sensory populations (a+, a-, b+, b-)")
    contexts: int = param(2, low=1, doc="size of the context (cue) vector")
    tau_ms: float = param(400.0, low=0.0, low_inclusive=False, doc="gate kinetics time constant (ms)")
    squeeze_tau_ms: float = param(
        50.0, low=0.0, low_inclusive=False, doc="time window of the squeeze (exponential, ms)"
    )
    squeeze_by: Literal["population", "feature"] = param(
        "feature", doc="what the squeeze pools: each population's channels, or each feature's (pairs)"
    )
    dt_ms: float = param(10.0, low=0.0, low_inclusive=False, doc="time step (ms)")
    rd_ratio: float = param(0.5, low=0.0, low_inclusive=False, doc="SE reduction ratio (hidden/channels)")
    gain_max: float = param(2.0, low=0.0, low_inclusive=False, doc="upper end of the gate range (1)")
    gain_min: float = param(
        0.5, low=0.0, doc="lower end of the gate range (1): the gate spans (gain_min, gain_max)"
    )
    tuning_range: tuple[float, ...] = param(
        (0.5, 1.5), low=0.0, doc="[low, high] of the channels' random tuning gains (1)"
    )
    baseline_range: tuple[float, ...] = param(
        (0.1, 0.5), low=0.0, doc="[low, high] of the channels' random baseline activity (1)"
    )
    input_noise_sd: float = param(0.5, low=0.0, doc="sd of the sensory channels' noise per step (1)")
    readout_gain: float = param(
        0.2, low=0.0, low_inclusive=False, doc="weight w of the fixed readout to the accumulators (1)"
    )
    lca_tau_ms: float = param(100.0, low=0.0, low_inclusive=False, doc="accumulator time constant (ms)")
    leak: float = param(0.2, low=0.0, doc="accumulator leak k (1)")
    inhibition: float = param(0.2, low=0.0, doc="lateral inhibition beta (1)")
    threshold: float = param(1.5, low=0.0, low_inclusive=False, doc="decision threshold (1)")
    noise_sd: float = param(0.085, low=0.0, doc="accumulator noise sigma per sqrt(lca_tau) (1)")
    seed: int = param(0, low=0, doc="seed of the channels' tuning and of the weight initialisation")

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("tuning_range", "baseline_range"):
            lo_hi = getattr(self, name)
            if len(lo_hi) != 2 or lo_hi[0] > lo_hi[1]:
                raise ValueError(f"{name}={lo_hi!r} must be [low, high] with low <= high")
        if self.squeeze_by == "feature" and self.populations % 2:
            raise ValueError(
                f"squeeze_by='feature' pools populations in pairs; populations={self.populations} is odd"
            )
        if self.gain_min >= self.gain_max:
            raise ValueError(f"gain_min={self.gain_min!r} must be below gain_max={self.gain_max!r}")

    @property
    def channels(self) -> int:
        """Number of SE channels (``populations * channels_per_population``)."""
        return self.populations * self.channels_per_population


class SETaskOutput(NamedTuple):
    """What :meth:`SETaskModel.forward` returns (batch ``B``, trials ``N``, window ``L = max_rt``).

    Attributes
    ----------
    windows : Tensor
        ``(B, N, L, 2)`` the accumulators of each trial's response window (step ``l`` is ``(l + 1) dt``
        after stimulus onset), computed as if the stimulus stayed on to the deadline (the model is causal,
        so nothing up to the response depends on what follows it); 0 beyond the last step simulated.
    choice : Tensor
        ``(B, N)`` int64: 1 or 2 for the accumulator that crossed first, 0 for none by the deadline.
    response : Tensor
        ``(B, N)`` int64 window step of the response (``L - 1`` without one): the trial ends after it.
    onset : Tensor
        ``(B, N)`` int64 time index of each stimulus onset on the session's (closed-loop) time axis.
    gain : Tensor or None
        ``(B, T, C)`` the gates on the session's time axis (``record=True``; batch elements whose session
        is shorter than ``T`` are padded with their last value).
    state : tuple of Tensor
        ``(gate (B, C), squeeze (B, P))`` after the last trial's response (pass as ``state=`` to continue).
    """

    windows: Tensor
    choice: Tensor
    response: Tensor
    onset: Tensor
    gain: Tensor | None
    state: tuple[Tensor, Tensor]

    @property
    def rt_steps(self) -> Tensor:
        """``(B, N)`` reaction time in steps (``response + 1``; -1 without a response)."""
        return torch.where(self.choice > 0, self.response + 1, -1)


def _check_float_tensor(name: str, value: object, shape: tuple[int | None, ...]) -> Tensor:
    if not isinstance(value, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    ok = value.ndim == len(shape) and all(
        e is None or e == s for e, s in zip(shape, value.shape, strict=True)
    )
    if not ok:
        exp = "(" + ", ".join("*" if e is None else str(e) for e in shape) + ")"
        raise ValueError(f"{name} has shape {tuple(value.shape)}, expected {exp}")
    if value.is_floating_point() and not torch.isfinite(value).all():
        raise ValueError(
            f"{name} must be finite, got {int((~torch.isfinite(value)).sum())} non-finite value(s)"
        )
    return value


class SETaskModel(nn.Module):
    """The SE model of cued task switching: channels -> ContextSE -> fixed readout -> LCA decision stage.

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
    readout_weight : Tensor
        ``(2, P)`` buffer: the fixed wiring of populations to accumulators (1 for a+, b+ -> 1 and a-, b- ->
        2 with four populations), times ``readout_gain``.
    se : ContextSE
        The gate's excitation (``channel_dim=-1``; the kinetics are applied by :meth:`gate`).

    Examples
    --------
    >>> import torch
    >>> model = SETaskModel(SETaskModelConfig(channels_per_population=2))
    >>> stim = torch.full((1, 3, 4), 1.0); ctx = torch.eye(2)[[0, 1, 0]][None]
    >>> steps = torch.full((1, 3), 5)
    >>> out = model(stim, ctx, rci=steps, csi=steps, max_rt=40, noise=False, record=True)
    >>> out.windows.shape, out.choice.shape, out.gain.shape[-1]
    (torch.Size([1, 3, 40, 2]), torch.Size([1, 3]), 8)
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
        # population -> accumulator wiring: even populations (a+, b+) -> 1, odd (a-, b-) -> 2
        wiring = torch.zeros(2, config.populations)
        wiring[0, 0::2] = 1.0
        wiring[1, 1::2] = 1.0
        self.register_buffer("readout_weight", wiring * config.readout_gain)
        pool = torch.zeros(c, config.populations)
        pool[torch.arange(c), pop] = 1.0 / config.channels_per_population
        self.register_buffer("pool", pool)
        # the squeeze's pooling: each population's channels, or each feature's (populations 2k and 2k + 1),
        # the summary given to every population of the pool
        group = pop if config.squeeze_by == "population" else pop // 2
        same = (group[:, None] == group[None, :]).float()
        self.register_buffer("squeeze_pool", same / same.sum(0, keepdim=True) @ pool)
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
                activation="gelu",
                channel_dim=-1,
            )
        self._alpha = config.dt_ms / config.lca_tau_ms
        if self._alpha > 1:
            raise ValueError(
                f"dt_ms={config.dt_ms} is longer than lca_tau_ms={config.lca_tau_ms}: Euler integration of "
                "the accumulators needs dt_ms <= lca_tau_ms"
            )
        self._gate_alpha = math.exp(-config.dt_ms / config.tau_ms)
        self._squeeze_alpha = math.exp(-config.dt_ms / config.squeeze_tau_ms)

    @property
    def channels(self) -> int:
        """Number of SE channels C."""
        return self.config.channels

    def extra_repr(self) -> str:
        cfg = self.config
        return (
            f"populations={cfg.populations}, channels_per_population={cfg.channels_per_population}, "
            f"tau_ms={cfg.tau_ms:g}, squeeze_tau_ms={cfg.squeeze_tau_ms:g}, dt_ms={cfg.dt_ms:g}, "
            f"threshold={cfg.threshold:g}"
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

    def squeeze(self, x: Tensor) -> Tensor:
        """The pooled channel activity given to each population, ``(..., C) -> (..., P)`` (before the time
        window): the mean over the population's channels, or over its feature's (``squeeze_by``)."""
        return x @ self.squeeze_pool

    def excite(self, s: Tensor, context: Tensor) -> Tensor:
        """Instantaneous gates ``g*`` ``(..., C)`` from population summaries `s` ``(..., P)`` and context."""
        lead = s.shape[:-1]
        desc = s.index_select(-1, self.channel_population)
        g = self.se.excite(
            desc.reshape(-1, self.channels), context.reshape(-1, context.shape[-1]).to(s.dtype)
        )
        g = g.gain.reshape(*lead, self.channels)
        lo, hi = self.config.gain_min, self.config.gain_max
        return g if lo == 0 else lo + (1.0 - lo / hi) * g  # (0, hi) -> (lo, hi)

    def steady_gate(self, x: Tensor, context: Tensor) -> Tensor:
        """Steady-state gates ``(..., C)`` for channel activity `x` held constant under `context`."""
        return self.excite(self.squeeze(x), context)

    def initial_state(self, batch: int, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Steady ``(gate (B, C), squeeze (B, P))`` with no stimulus under `context` ``(B, K)`` (default
        uniform: no task cued), without noise."""
        cfg = self.config
        dtype = self.tuning.dtype
        s0 = self.squeeze(self.sensory(torch.zeros(batch, cfg.populations, dtype=dtype), noise=False))
        if context is None:
            context = torch.full((batch, cfg.contexts), 1.0 / cfg.contexts, dtype=dtype)
        return self.excite(s0, context.to(dtype)), s0

    def readout(self, y: Tensor) -> Tensor:
        """Accumulator inputs ``rho`` ``(..., 2)`` from gated channel activity `y` ``(..., C)``."""
        return (y @ self.pool) @ self.readout_weight.T

    def gate(
        self, x: Tensor, context: Tensor, *, state: tuple[Tensor, Tensor] | None = None
    ) -> tuple[Tensor, Tensor]:
        """Gates and squeeze ``(B, T, C)``, ``(B, T, P)`` of activity `x` ``(B, T, C)`` under `context`.

        ``state`` is ``(gate (B, C), squeeze (B, P))`` just before the first step; default: the steady
        state of the first step. Both recursions are exact first-order updates solved in chunks
        (``_relax_chunked``).
        """
        s_in = self.squeeze(x)
        s = _relax_chunked(s_in, None if state is None else state[1], self._squeeze_alpha)
        target = self.excite(s, context)
        g = _relax_chunked(target, None if state is None else state[0], self._gate_alpha)
        return g, s

    def accumulate(
        self,
        rho: Tensor,
        *,
        noise: bool = True,
        generator: torch.Generator | None = None,
        stop: bool = True,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """The leaky competing accumulators of one response window per batch element.

        Euler(-Maruyama) steps of ``tau dX_i = (rho_i - k X_i - beta X_j) dt + sigma sqrt(tau dt) xi_i``
        with ``X_i >= 0`` enforced after each step and ``X = 0`` before the first step.

        Parameters
        ----------
        rho : Tensor
            ``(B, L, 2)`` the inputs over the window.
        noise : bool
            Add the accumulator noise (``noise_sd``).
        generator : torch.Generator, optional
            Source of the noise.
        stop : bool
            Stop once every batch element has crossed the threshold (the rest of the window is 0).

        Returns
        -------
        windows : Tensor
            ``(B, L, 2)``.
        choice, response : Tensor
            ``(B,)``: 1 or 2 (0 = none) and the window step of the first crossing (``L - 1`` if none).
        """
        cfg = self.config
        b, steps, _ = rho.shape
        a = self._alpha
        keep, cross = 1.0 - a * cfg.leak, a * cfg.inhibition
        inp = a * rho
        if noise and cfg.noise_sd > 0:
            xi = torch.randn(inp.shape, generator=generator, dtype=inp.dtype, device=inp.device)
            inp = inp + (cfg.noise_sd * math.sqrt(a)) * xi
        if not (torch.is_grad_enabled() and inp.requires_grad):
            return _lca_no_grad(inp, keep, cross, cfg.threshold, stop)
        # Training: the floor X >= 0 dropped, the accumulators are linear, and their sum and difference
        # modes are first-order recursions (Bogacz et al. 2006, eq. 14), solved by one matrix product each.
        # Before a crossing the floor binds only while an accumulator is near 0 and the other inhibits it
        # more than its input drives it (beta X_j > rho_i), which the regime here rarely reaches.
        total = _linear_recursion(inp.sum(-1), keep - cross)
        diff = _linear_recursion(inp[..., 0] - inp[..., 1], keep + cross)
        win = torch.stack([(total + diff) / 2, (total - diff) / 2], dim=-1)
        with torch.no_grad():
            hit = (win >= cfg.threshold).any(-1)
            crossed = hit.any(-1)
            response = torch.where(crossed, hit.to(torch.int8).argmax(-1), steps - 1)
            at = win[torch.arange(b, device=win.device), response]
            choice = torch.where(crossed, 1 + (at[:, 1] > at[:, 0]).long(), 0)
        return win, choice, response

    def forward(
        self,
        stimulus: Tensor,
        context: Tensor,
        *,
        rci: Tensor,
        csi: Tensor,
        max_rt: int,
        state: tuple[Tensor, Tensor] | None = None,
        noise: bool = True,
        generator: torch.Generator | None = None,
        record: bool = False,
        stop: bool = True,
    ) -> SETaskOutput:
        """Run sessions of trials in closed loop (the stimulus ends at the response).

        Parameters
        ----------
        stimulus : Tensor
            ``(B, N, populations)`` relative sensory input of each trial's stimulus.
        context : Tensor
            ``(B, N, contexts)`` the context vector while each trial's cue is on (during the RCI the
            context is uniform, ``1 / contexts`` each: no task is cued).
        rci, csi : Tensor of int
            ``(B, N)`` steps of the response-cue and cue-stimulus intervals of each trial.
        max_rt : int
            Steps of the response window (the deadline).
        state : tuple of Tensor, optional
            ``(gate (B, C), squeeze (B, P))`` before the first trial (to continue a session); default the
            steady state of the first step (no cue, no stimulus).
        noise : bool, default True
            Sensory and accumulator noise on (off: a deterministic run).
        generator : torch.Generator, optional
            Source of all noise (seed it for reproducible runs).
        record : bool
            Also return the gates on the session's time axis (``gain``).
        stop : bool
            End each trial's accumulation once every session has responded (True; training may keep the
            whole window with False).

        Returns
        -------
        SETaskOutput

        Raises
        ------
        TypeError, ValueError
            Wrong types, shapes (naming the expected shape) or values.
        """
        cfg = self.config
        stimulus = _check_float_tensor("stimulus", stimulus, (None, None, cfg.populations))
        b, n = stimulus.shape[:2]
        context = _check_float_tensor("context", context, (b, n, cfg.contexts))
        rci = _check_float_tensor("rci", rci, (b, n))
        csi = _check_float_tensor("csi", csi, (b, n))
        for name, t in (("rci", rci), ("csi", csi)):
            if t.is_floating_point() or t.dtype == torch.bool or bool((t < 0).any()):
                raise ValueError(f"{name} must be a tensor of integer steps >= 0, got dtype {t.dtype}")
        max_rt = check_int("max_rt", max_rt, low=1)
        if n == 0:
            raise ValueError(f"stimulus has shape {tuple(stimulus.shape)}: expected at least one trial")
        dtype = self.tuning.dtype
        stimulus, context = stimulus.to(dtype), context.to(dtype)
        dev = stimulus.device
        uniform = torch.full((cfg.contexts,), 1.0 / cfg.contexts, dtype=dtype, device=dev)
        if state is None:
            state = self.initial_state(b)
        rows = torch.arange(b, device=dev)
        windows, choices, responses, onsets, traces = [], [], [], [], []
        t_now = torch.zeros(b, dtype=torch.long, device=dev)
        for k in range(n):
            pre = rci[:, k] + csi[:, k]
            length = int(pre.max()) + max_rt
            pos = torch.arange(length, device=dev)
            cue_on = pos[None] >= rci[:, k, None]
            stim_on = (pos[None] >= pre[:, None]) & (pos[None] < (pre + max_rt)[:, None])
            ctx = torch.where(cue_on[..., None], context[:, k, None, :], uniform)
            stim = stim_on[..., None].to(dtype) * stimulus[:, k, None, :]
            x = self.sensory(stim, noise=noise, generator=generator)
            g, s = self.gate(x, ctx, state=state)
            rho = self.readout(g * x)
            idx = (pre[:, None] + torch.arange(max_rt, device=dev)[None]).clamp(max=length - 1)
            rho_w = rho.gather(1, idx[..., None].expand(-1, -1, 2))
            win, choice, resp = self.accumulate(rho_w, noise=noise, generator=generator, stop=stop)
            end = pre + resp  # the response step on the segment's axis
            state = (g[rows, end], s[rows, end])
            windows.append(win)
            choices.append(choice)
            responses.append(resp)
            onsets.append(t_now + pre)
            if record:
                traces.append((g.detach(), end + 1))
            t_now = t_now + end + 1
        gain = _concat_segments(traces) if record else None
        return SETaskOutput(
            torch.stack(windows, dim=1),
            torch.stack(choices, dim=1),
            torch.stack(responses, dim=1),
            torch.stack(onsets, dim=1),
            gain,
            state,
        )

    # ------------------------------------------------------------------ evaluation readout
    @torch.no_grad()
    def decide(self, output: SETaskOutput) -> tuple[Tensor, Tensor]:
        """Choice and reaction time (ms from stimulus onset; NaN without a response) of every trial."""
        choice = output.choice
        rt = torch.where(choice > 0, (output.response + 1).to(torch.float64) * self.config.dt_ms, math.nan)
        return choice, rt


def _concat_segments(traces: list[tuple[Tensor, Tensor]]) -> Tensor:
    """Each batch element's gate segments cut at their responses and laid end to end, ``(B, T, C)``."""
    b = traces[0][0].shape[0]
    lengths = torch.stack([n for _, n in traces], dim=1)  # (B, N)
    total = lengths.sum(1)
    t = int(total.max())
    c = traces[0][0].shape[-1]
    out = traces[0][0].new_zeros((b, t, c))
    for i in range(b):
        parts = [g[i, : int(n[i])] for g, n in traces]
        seq = torch.cat(parts, dim=0)
        out[i, : seq.shape[0]] = seq
        if seq.shape[0] < t:
            out[i, seq.shape[0] :] = seq[-1]
    return out


def decision_loss(
    output: SETaskOutput,
    target: Tensor,
    *,
    scale: float = 0.05,
    threshold: float = 1.0,
    threshold_weight: float = 0.5,
    wrong_weight: float = 1.0,
    margin: float = 0.1,
) -> Tensor:
    """Differentiable training loss over the whole response window of :class:`SETaskOutput`.

    Over the window steps from stimulus onset to the response (the deadline without one), the mean of
    (i) the binary cross-entropy of ``sigmoid((X_1 - X_2) / scale)`` against the correct choice, (ii)
    ``wrong_weight`` times ``relu(X_wrong - (threshold - margin))^2``, which penalises the wrong
    accumulator approaching or crossing the threshold at any time, early crossings included; plus (iii)
    ``threshold_weight`` times ``relu(threshold - X_correct)^2`` at the trial's last step, so that the
    correct accumulator reaches the threshold.

    Parameters
    ----------
    output : SETaskOutput
        From :meth:`SETaskModel.forward`.
    target : Tensor
        ``(B, N)`` correct choice of each trial (1 or 2); other values mark trials left out.
    scale, threshold, threshold_weight, wrong_weight, margin : float
        Temperature of the difference, decision threshold, and the weights and margin of the terms.

    Returns
    -------
    Tensor
        The scalar loss.
    """
    scale = check_positive("scale", scale)
    w = output.windows
    if not isinstance(target, Tensor) or tuple(target.shape) != tuple(w.shape[:2]):
        shape = tuple(target.shape) if isinstance(target, Tensor) else type(target).__name__
        raise ValueError(f"target has shape {shape}, expected {tuple(w.shape[:2])} (sessions, trials)")
    steps = w.shape[2]
    offs = torch.arange(steps, device=w.device)
    valid = (target == 1) | (target == 2)
    mask = (offs <= output.response.unsqueeze(-1)) & valid.unsqueeze(-1)
    n = mask.sum().clamp(min=1)
    y = (target == 1).to(w.dtype).unsqueeze(-1).expand_as(mask)
    logits = (w[..., 0] - w[..., 1]) / scale
    bce = F.binary_cross_entropy_with_logits(logits, y, reduction="none")
    correct = torch.where(y > 0, w[..., 0], w[..., 1])
    wrong = torch.where(y > 0, w[..., 1], w[..., 0])
    early = torch.relu(wrong - (threshold - margin)).pow(2)
    loss = ((bce + wrong_weight * early) * mask).sum() / n
    last = correct.gather(2, output.response.unsqueeze(-1)).squeeze(-1)
    short = torch.relu(threshold - last).pow(2)
    loss = loss + threshold_weight * (short * valid).sum() / valid.sum().clamp(min=1)
    return loss


def _lca_no_grad(
    inp: Tensor, keep: float, cross: float, threshold: float, stop: bool
) -> tuple[Tensor, Tensor, Tensor]:
    """The accumulator loop without autograd: each batch element in plain floats, up to its crossing (when
    `stop`), which costs a fraction of a torch operation per step."""
    b, steps, _ = inp.shape
    u = inp.detach().to(torch.float64).cpu().numpy()
    win = np.zeros((b, steps, 2))
    choice = np.zeros(b, dtype=np.int64)
    response = np.full(b, steps - 1, dtype=np.int64)
    for i in range(b):
        x1 = x2 = 0.0
        ui = u[i].tolist()
        wi = win[i]
        for step in range(steps):
            u1, u2 = ui[step]
            x1, x2 = keep * x1 - cross * x2 + u1, keep * x2 - cross * x1 + u2
            x1 = x1 if x1 > 0.0 else 0.0
            x2 = x2 if x2 > 0.0 else 0.0
            wi[step, 0], wi[step, 1] = x1, x2
            if choice[i] == 0 and (x1 >= threshold or x2 >= threshold):
                choice[i] = 2 if x2 > x1 else 1
                response[i] = step
                if stop:
                    break
    dev = inp.device
    return (
        torch.as_tensor(win, dtype=inp.dtype, device=dev),
        torch.as_tensor(choice, device=dev),
        torch.as_tensor(response, device=dev),
    )


@functools.lru_cache(maxsize=16)
def _power_matrix(n: int, lam: float, dtype: torch.dtype = torch.float32) -> Tensor:
    """(n, n) lower-triangular ``lam^(i-j)`` (computed in float64, stored in `dtype`)."""
    i = torch.arange(n, dtype=torch.float64)
    diff = i[:, None] - i[None, :]
    return torch.where(diff >= 0, lam ** diff.clamp(min=0), 0.0).to(dtype)


def _linear_recursion(u: Tensor, lam: float) -> Tensor:
    """``y[t] = lam y[t-1] + u[t]`` along dim 1 from ``y[-1] = 0``, ``(B, L) -> (B, L)``."""
    return u @ _power_matrix(u.shape[1], float(lam), u.dtype).to(u.device).T


_CHUNK = 512


@functools.lru_cache(maxsize=64)
def _relax_weights(k: int, alpha: float, dtype: torch.dtype = torch.float32) -> tuple[Tensor, Tensor]:
    """(K, K) lower-triangular weights ``(1 - alpha) alpha^(i-j)`` and (K, 1) decays ``alpha^(i+1)``
    (computed in float64, stored in `dtype`)."""
    i = torch.arange(k, dtype=torch.float64)
    diff = i[:, None] - i[None, :]
    weights = torch.where(diff >= 0, (1 - alpha) * alpha ** diff.clamp(min=0), 0.0)
    return weights.to(dtype), (alpha ** (i + 1)).view(k, 1).to(dtype)


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
    weights, decay = (w.to(target.device) for w in _relax_weights(k, float(alpha), target.dtype))
    within = torch.matmul(weights, tgt)  # (B, M, K, C)
    prev = target[:, 0] if state is None else state.to(target)
    chunks = []
    for j in range(m):
        g = within[:, j] + decay * prev.unsqueeze(1)
        chunks.append(g)
        prev = g[:, -1]
    return torch.cat(chunks, dim=1)[:, :t]
