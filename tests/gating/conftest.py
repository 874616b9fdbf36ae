"""Fixtures for the gating tests: fixed seeds, small inputs, and rounding-error bounds for tolerances.

Tolerances
----------
Every float comparison in tests/gating uses a tolerance derived from the computation, not tuned to one
machine. The rule (Higham 2002, "Accuracy and Stability of Numerical Algorithms", 2nd ed., sec. 3.1 and
eq. 3.5): a sum (or dot product) of ``n`` terms computed in floating point, in ANY order (serial,
pairwise, blocked, SIMD or fused multiply-add), is off by at most ``gamma_n * sum(|terms|)`` with
``gamma_n = n u / (1 - n u) < n eps`` for ``n u < 1/2`` (``u = eps / 2`` the unit roundoff). Errors of
successive stages add, each carried through the later stages by their Lipschitz constants. So::

    |computed - exact| <= eps * n_terms * scale

with ``n_terms`` the terms accumulated along the longest chain of sums (one per elementwise operation, 4
per transcendental function: exp/log/sigmoid are accurate to a few ulp in glibc, SLEEF and MKL), and
``scale`` a bound on ``sum(|terms|)`` (the magnitude before any cancellation). When both sides of a
comparison are rounded the bound is doubled (``sides=2``). These are worst-case bounds: real errors are
typically ``sqrt(n)`` times smaller, so no machine exceeds them, while a wrong formula (errors of order
``scale``) still fails by many orders of magnitude.

:func:`rounding_tol` turns ``n_terms`` and ``scale`` into ``assert_close`` arguments; :func:`gain_atol`
carries the bound through a :class:`~neuromod.gating.ContextSE` squeeze and excitation (a running error
bound on ``|W| |s| + |b|``, layer by layer). Tests reach them through the :func:`fp` fixture.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import Tensor

from neuromod.gating import ContextSE

#: Lipschitz constants of the registered gates (sup of |sigma'|): sigmoid 1/4, hardsigmoid 1/6, softplus 1.
GATE_LIPSCHITZ = {"sigmoid": 0.25, "hardsigmoid": 1.0 / 6.0, "softplus": 1.0}

#: Lipschitz constants of the supported excitation activations (sup |gelu'| = 1.129 at x = sqrt(2)).
ACTIVATION_LIPSCHITZ = {torch.nn.ReLU: 1.0, torch.nn.GELU: 1.13}

#: Terms charged for one transcendental function (exp, log, sigmoid, softplus): a few ulp.
TRANSCENDENTAL = 4


def eps(dtype: torch.dtype) -> float:
    """Machine epsilon of a floating dtype (2 u)."""
    return float(torch.finfo(dtype).eps)


def rounding_tol(dtype: torch.dtype, n_terms: float, scale: float, *, sides: int = 1) -> dict[str, float]:
    """``assert_close`` tolerances ``rtol=0, atol = sides * n_terms * eps(dtype) * scale`` (module doc)."""
    return {"rtol": 0.0, "atol": sides * float(n_terms) * eps(dtype) * float(scale)}


def squeeze_bound(
    x: Tensor,
    mode: str,
    dims: Sequence[int],
    *,
    channel_dim: int = 1,
    mask: Tensor | None = None,
    index: Tensor | None = None,
    weight: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Magnitude and rounding-error bound of a ContextSE squeeze, channels last.

    The magnitude is ``sum|x|`` over the pooled positions for ``"sum"`` and ``max|x|`` for the others
    (a mean or a softmax-weighted mean is a convex combination, bounded by the largest term). With ``N``
    pooled positions (per graph with `index`): the mean and the sum accumulate N terms (plus the
    division); max is exact; attention adds the logits' error (a dot product over the C channels with
    `weight`), which the softmax turns into a relative error of at most twice the largest logit error,
    plus the log-sum-exp over N terms and the weighted sum over N terms.
    """
    dims = tuple(d % x.ndim for d in dims)
    channel_dim %= x.ndim
    ax = x.detach().abs().double()
    keep = torch.ones_like(ax, dtype=torch.bool) if mask is None else mask.expand_as(ax)
    if mode == "sum":
        mag = torch.where(keep, ax, 0.0).sum(dims) if dims else ax
    else:
        mag = torch.where(keep, ax, 0.0).amax(dims) if dims else ax
    n = keep.select(channel_dim, 0).sum(tuple(d - (d > channel_dim) for d in dims)) if dims else None
    n = torch.ones(()) if n is None else n
    if index is not None:
        groups = int(index.max()) + 1
        n = torch.zeros(groups, *n.shape[1:], dtype=n.dtype).index_add_(0, index, n.expand(len(index)))
        if mode == "sum":
            mag = torch.zeros(groups, *mag.shape[1:], dtype=mag.dtype).index_add_(0, index, mag)
        else:
            init = torch.zeros(groups, *mag.shape[1:], dtype=mag.dtype)
            mag = init.scatter_reduce(0, index.view(-1, *[1] * (mag.ndim - 1)).expand_as(mag), mag, "amax")
    n_max = float(n.max())
    e = eps(x.dtype)
    if mode in ("mean", "sum"):
        err = (n_max + 1) * e * mag
    elif mode == "max":
        err = torch.zeros_like(mag)
    else:  # attention
        if weight is None:
            raise ValueError("attention needs the scorer's weight")
        logit_mag = torch.tensordot(ax.movedim(channel_dim, -1), weight.detach().abs().double(), dims=1)
        logit_err = x.shape[channel_dim] * e * float(logit_mag.max())
        # log-sum-exp (N terms, exp, log), l - lse, exp: relative error of each weight; then the sum
        err = ((2 * n_max + 3 * TRANSCENDENTAL + 2) * e + 2 * logit_err) * mag
    kept = [d for d in range(x.ndim) if d not in dims]
    to_last = kept.index(channel_dim)
    return mag.movedim(to_last, -1), err.movedim(to_last, -1)


def excitation_bound(
    se: ContextSE, s_mag: Tensor, s_err: Tensor, context: Tensor | None = None
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Magnitudes and error bounds of ``gain`` and of the excitation ``e`` (gate input and offset).

    Returns ``(g_mag, g_err, e_mag, e_err)``; with ``offset=True`` the offset is ``e[..., C:]``.

    Running bound through ``fc1 -> act -> fc2 -> gate -> * gain_max``: a linear layer with n inputs
    gives ``err_out = (n + 1) eps (|W| mag_in + |b|) + |W| err_in`` and ``mag_out = |W| mag_in + |b|``;
    relu is exact and 1-Lipschitz, gelu (|gelu(x)| <= |x|) is 1.13-Lipschitz and rounds like a
    transcendental function; the gate multiplies the error by its Lipschitz constant and adds its own
    rounding. Kinetics are not included (callers add the relaxation).
    """
    act = type(se.excitation.act)
    if act not in ACTIVATION_LIPSCHITZ:
        raise ValueError(f"excitation_bound supports {sorted(a.__name__ for a in ACTIVATION_LIPSCHITZ)}")
    e = eps(se.excitation.fc1.weight.dtype)
    mag, err = s_mag.double(), s_err.double()

    def linear(layer: torch.nn.Linear, mag: Tensor, err: Tensor) -> tuple[Tensor, Tensor]:
        w = layer.weight.detach().abs().double()
        b = 0.0 if layer.bias is None else layer.bias.detach().abs().double()
        out = mag @ w.T + b
        return out, (layer.in_features + 1) * e * out + err @ w.T

    if context is not None:
        k = context.detach().abs().double()
        if k.ndim < mag.ndim:
            k = k.unsqueeze(1).expand(*mag.shape[:-1], k.shape[-1])
        if se.context_mode == "concat":
            mag, err = torch.cat([mag, k], -1), torch.cat([err, torch.zeros_like(k)], -1)
        else:
            p_mag, p_err = linear(se.context_proj, k, torch.zeros_like(k))
            mag, err = mag + p_mag, err + p_err + e * (mag + p_mag)
    mag, err = linear(se.excitation.fc1, mag, err)
    err = ACTIVATION_LIPSCHITZ[act] * err + (0.0 if act is torch.nn.ReLU else TRANSCENDENTAL * e * mag)
    e_mag, e_err = linear(se.excitation.fc2, mag, err)
    z_mag, z_err = e_mag[..., : se.channels], e_err[..., : se.channels]
    # the gate's own rounding is relative to its output: at most 1 (sigmoid, hardsigmoid), |z| + log 2
    g_mag = 1.0 + z_mag if se.gate_name == "softplus" else torch.ones_like(z_mag)
    g_err = GATE_LIPSCHITZ[se.gate_name] * z_err + TRANSCENDENTAL * e * g_mag
    return se.gain_max * g_mag, se.gain_max * (g_err + e * g_mag), e_mag, e_err


def gain_atol(
    se: ContextSE,
    x: Tensor,
    dims: Sequence[int],
    *,
    context: Tensor | None = None,
    channel_dim: int = 1,
    mask: Tensor | None = None,
    index: Tensor | None = None,
    sides: int = 2,
) -> float:
    """Absolute tolerance for gains of `se` on `x` computed two ways, each rounded (``sides=2``)."""
    weight = se.attention.weight[0] if se.attention is not None else None
    s_mag, s_err = squeeze_bound(
        x, se.squeeze, dims, channel_dim=channel_dim, mask=mask, index=index, weight=weight
    )
    _, g_err, _, _ = excitation_bound(se, s_mag, s_err, context)
    return sides * float(g_err.max())


def softmax_sum_tol(dtype: torch.dtype, n: int) -> dict[str, float]:
    """Tolerance of ``sum(softmax(l))`` over n positions against 1.

    Each weight ``exp(l - logsumexp(l))`` has a relative error of at most ``(n + 3 T + 1) eps`` (the
    log-sum-exp sums n terms after n exps and takes a log, then a subtraction and an exp; T =
    :data:`TRANSCENDENTAL`); the weights sum to 1, and summing them adds ``n eps``. A segment softmax
    (``exp(l - max) / sum``) rounds less.
    """
    return rounding_tol(dtype, 2 * n + 3 * TRANSCENDENTAL + 1, 1.0)


def resolved(grad: Tensor, value: Tensor, loss_terms: Tensor, n_terms: int | None = None) -> bool:
    """Whether a gradient is resolved: larger than the rounding noise of a mathematically zero gradient.

    ``|grad| * |value|`` (units of the loss) is what a relative change of the tensor does to the loss. A
    gradient that is exactly 0 in exact arithmetic (a parameter that cannot influence the output, such as
    a bias under a softmax) comes out of backpropagation as rounding noise of at most
    ``n eps sum|terms|``, with ``sum|terms|`` the loss's magnitude before cancellation (`loss_terms`, the
    summands of the loss) and ``n`` the terms accumulated along the longest chain (default: every summand
    of the loss, ``loss_terms.numel()``); ``sqrt(value.numel())`` covers the norm over the tensor's
    elements. In test_gradients_flow (float64) genuine gradients exceed this floor by more than 10^7
    (300 seeds), while the former attention bias (0 in exact arithmetic) stayed below 10^-5 of it.
    """
    n = loss_terms.numel() if n_terms is None else n_terms
    floor = n * eps(loss_terms.dtype) * float(loss_terms.detach().abs().sum()) * value.numel() ** 0.5
    return float(grad.norm() * value.detach().norm()) > floor


@pytest.fixture(autouse=True)
def _torch_seed_and_threads() -> Iterator[None]:
    """Every test starts from the same torch seed (module initialisation draws from it).

    The CPU generator is forked, so the seed does not leak into later tests; the tensors here are tiny:
    one intra-op thread avoids thread-pool overhead on shared cores (restored afterwards).
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.random.default_generator.manual_seed(20180601)
            yield
    finally:
        torch.set_num_threads(threads)


@pytest.fixture
def fp() -> SimpleNamespace:
    """The rounding-error helpers of this module: ``eps``, ``tol`` (:func:`rounding_tol`), ``squeeze``,
    ``excitation``, ``gain_atol``, ``softmax_sum_tol``, ``resolved`` and ``TRANSCENDENTAL``."""
    return SimpleNamespace(
        eps=eps,
        tol=rounding_tol,
        squeeze=squeeze_bound,
        excitation=excitation_bound,
        gain_atol=gain_atol,
        softmax_sum_tol=softmax_sum_tol,
        resolved=resolved,
        TRANSCENDENTAL=TRANSCENDENTAL,
    )


@pytest.fixture
def gen() -> torch.Generator:
    """A seeded torch generator for test inputs."""
    return torch.Generator().manual_seed(7)


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded numpy generator."""
    return np.random.default_rng(11)


@pytest.fixture
def image(gen: torch.Generator) -> torch.Tensor:
    """(batch=4, channels=16, 6, 7) float32 feature map."""
    return torch.randn(4, 16, 6, 7, generator=gen)
