"""GateRecorder (xarray output), GateAnomalyScorer (AUROC, distances) and se_overhead."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from scipy.spatial.distance import mahalanobis
from scipy.stats import mannwhitneyu
from torch import nn

from neuromod.gating import (
    ContextSE,
    GateAnomalyScorer,
    GateRecorder,
    JointSE,
    SEResidualBlock,
    ledoit_wolf_shrinkage,
    se_overhead,
)

F64 = torch.float64


class TwoGates(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.se1 = ContextSE(8, 2)
        self.temporal = ContextSE(8, 2, time_dim=2, squeeze_dims=(3,), tau_ms=10.0, dt_ms=2.0, offset=True)

    def forward(self, x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        h = self.se1(self.conv(x), k)
        return self.temporal(h, k)


def test_recorder_dataarrays() -> None:
    model = TwoGates()
    x, k = torch.randn(3, 3, 5, 4), torch.randn(3, 2)
    with GateRecorder(model) as rec:
        model(x, k)
        model(x[:2], k[:2])
    model(x, k)  # outside: not recorded
    assert rec.names == ["se1", "temporal"]
    gains = rec.gains()
    da = gains["se1"]
    assert da.dims == ("sample", "channel") and da.shape == (5, 8)
    assert da.attrs["units"] == "1" and "gain" in da.attrs["long_name"]
    for coord in da.coords.values():
        assert "units" in coord.attrs and "long_name" in coord.attrs
    np.testing.assert_array_equal(da["call"].values, [0, 0, 0, 1, 1])
    # recomputed the same way (same layers, same inputs, same grad mode): bitwise what was recorded
    expected = model.se1.gain(model.conv(x), k).gain.detach()
    torch.testing.assert_close(torch.from_numpy(da.values[:3]), expected, rtol=0, atol=0)
    dt = gains["temporal"]
    assert dt.dims == ("sample", "time", "channel") and dt.shape == (5, 5, 8)
    assert dt["time"].attrs["units"] == "ms"
    np.testing.assert_array_equal(dt["time"].values, [0.0, 2.0, 4.0, 6.0, 8.0])  # k * 2.0 is exact
    offsets = rec.offsets()
    assert list(offsets) == ["temporal"] and offsets["temporal"].attrs["units"] == "1"
    # netCDF-safe attrs
    for value in list(da.attrs.values()) + list(dt.attrs.values()):
        assert isinstance(value, str | int | float) and not isinstance(value, bool)
    # hooks removed on exit
    assert not model.se1._gain_hooks and not model.temporal._gain_hooks


def test_recorder_sees_gain_calls_and_joint_se() -> None:
    mm = JointSE([4, 2])
    with GateRecorder(mm) as rec:
        mm.gain([torch.randn(2, 4, 3), torch.randn(2, 2, 5)])
    assert rec.gains()["se"].shape == (2, 6)
    with pytest.raises(ValueError, match=r"contains no ContextSE"):
        GateRecorder(nn.Linear(2, 2))


def test_recorder_step_dim_without_dt() -> None:
    se = ContextSE(3, time_dim=2)
    with GateRecorder(se) as rec:
        se(torch.randn(2, 3, 4))
    da = rec.gains()["root"]
    assert da.dims == ("sample", "step", "channel") and da["step"].attrs["units"] == "1"


def _auroc(normal: np.ndarray, anomalous: np.ndarray) -> float:
    """AUROC = Mann-Whitney U / (n1 n2) (Hanley & McNeil 1982)."""
    u = mannwhitneyu(anomalous, normal, alternative="two-sided").statistic
    return float(u) / (len(normal) * len(anomalous))


def test_anomaly_scorer_auroc() -> None:
    """Normal inputs ~ N(0, 1); anomalies have 3 of 12 channels shifted by +0.6.

    The squeeze (a mean over 64 positions) has sd 1/8 per channel, so the anomaly moves it by
    0.6 sqrt(3) / (1/8) ~ 8 sd. The gate maps the descriptor to the gains through a Jacobian J; with as
    many hidden units as channels and a smooth activation (gelu: no unit is off for every input) J is
    invertible for generic weights, so after whitening (Mahalanobis) the gains' shift is the same ~8 sd
    whatever the weights: d^2 is noncentral chi^2(12, 69) against chi^2(12), whose AUROC exceeds 0.99
    (0.9 asserted). The Euclidean distance does not whiten, so its separation depends on J's
    conditioning (0.82 to 1.0 over 40 seeds): it is asserted to beat chance by 4 sd of the AUROC under
    no effect, sqrt((n1 + n2 + 1) / (12 n1 n2)) (Hanley & McNeil 1982). With relu and 6 hidden units (as
    before) a third of the seeds gave gates blind to the shifted channels.
    """
    gen = torch.Generator().manual_seed(1)
    se = ContextSE(12, rd_ratio=1.0, activation="gelu").eval()
    n_fit, n_test = 300, 200

    def inputs(n: int, shift: float) -> torch.Tensor:
        x = torch.randn(n, 12, 8, 8, generator=gen)
        x[:, :3] += shift
        return x

    with GateRecorder(se) as rec, torch.no_grad():
        se(inputs(n_fit, 0.0))
    train = rec.gains()["root"]
    scorer = GateAnomalyScorer().fit(train)
    assert 0.0 <= scorer.shrinkage_ <= 1.0
    with torch.no_grad():
        normal = se.gain(inputs(n_test, 0.0))
        shifted = se.gain(inputs(n_test, 0.6))
    chance_sd = math.sqrt((2 * n_test + 1) / (12 * n_test * n_test))
    for metric, threshold in [("mahalanobis", 0.9), ("euclidean", 0.5 + 4 * chance_sd)]:
        auc = _auroc(scorer.score(normal, metric), scorer.score(shifted, metric))
        assert auc > threshold, f"{metric}: AUROC {auc:.3f} <= {threshold:.3f}"


def test_anomaly_distances_reference(rng: np.random.Generator, fp: SimpleNamespace) -> None:
    n, p = 50, 4
    x = rng.normal(size=(n, p)) @ rng.normal(size=(p, p))
    scorer = GateAnomalyScorer(shrinkage=0.2).fit(x)
    emp = np.cov(x, rowvar=False, bias=True)
    cov = 0.8 * emp + 0.2 * np.trace(emp) / p * np.eye(p)
    # covariance: sums of n products of centred values (centring: n terms), the trace p more, then the
    # shrinkage (4 roundings); magnitude |xc|'|xc| / n; both sides rounded
    xc = x - x.mean(0)
    scale = float(np.max(np.abs(xc).T @ np.abs(xc) / n))
    torch.testing.assert_close(scorer.covariance_, cov, **fp.tol(F64, 2 * n + p + 4, scale, sides=2))
    new = rng.normal(size=(5, p))
    vi = np.linalg.inv(cov)
    expected = np.array([mahalanobis(v, x.mean(0), vi) for v in new])
    # Mahalanobis: both inverses (pinv, inv) are backward stable, so each is off by at most about
    # p kappa(C) eps |C^-1| (Higham 2002, ch. 14); the quadratic form d' C^-1 d then by |d|^2 that
    # much, plus 2p eps |d|' |C^-1| |d| for its own sums; sqrt(q) moves by dq / (2 sqrt(q)); two sides
    d = new - x.mean(0)
    inv_norm = float(np.linalg.norm(vi, 2))
    dq = (p * np.linalg.cond(cov) + 2 * p) * fp.eps(F64) * np.sum(d**2, axis=1) * inv_norm
    torch.testing.assert_close(scorer.score(new), expected, rtol=0, atol=float(np.max(dq / expected)))
    # Euclidean: the mean (n terms), p differences and squares, a sum of p, a sqrt; both sides
    euclid = np.linalg.norm(d, axis=1)
    torch.testing.assert_close(
        scorer.score(new, "euclidean"), euclid, **fp.tol(F64, n + 2 * p + 2, float(euclid.max()), sides=2)
    )


def test_ledoit_wolf_reference(rng: np.random.Generator, fp: SimpleNamespace) -> None:
    """Against the estimator written from Ledoit & Wolf (2004), Lemma 3.2-3.4, term by term."""
    e = fp.eps(F64)
    for n, p, corr in [(20, 10, 0.0), (500, 5, 0.9), (40, 30, 0.5)]:
        base = rng.normal(size=(n, p))
        x = base + corr * base[:, :1] * 3
        xc = x - x.mean(0)
        s = xc.T @ xc / n
        m = np.trace(s) / p  # <S, I>
        d2 = np.linalg.norm(s - m * np.eye(p), "fro") ** 2 / p
        b2_bar = sum(np.linalg.norm(np.outer(r, r) - s, "fro") ** 2 / p for r in xc) / n**2
        expected = min(b2_bar, d2) / d2
        # The package computes b2 as (sum_k |x_k|^4 - n |S|_F^2) / (n^2 p), a difference of two sums of
        # n + p^2 terms each: its error is (n + p^2 + 4) eps times the SUM of the two (cancellation).
        # The reference sums n positive norms of p^2 terms, d2 sums p^2 squares (both sides, relative
        # (n + p^2 + p + 4) eps); the ratio b2 / d2 inherits all of them.
        big = (np.sum(np.sum(xc**2, axis=1) ** 2) + n * np.sum(s**2)) / (n**2 * p)
        rel = 3 * (n + p * p + p + 4) * e
        atol = ((n + p * p + 4) * e * big + rel * b2_bar) / d2 + rel * expected
        torch.testing.assert_close(ledoit_wolf_shrinkage(x), expected, rtol=0, atol=atol)
    # isotropic, few samples: strong shrinkage; strongly correlated, many samples: weak
    assert ledoit_wolf_shrinkage(rng.normal(size=(10, 40))) > 0.5
    assert ledoit_wolf_shrinkage(rng.normal(size=(2000, 3)) @ np.diag([1.0, 5.0, 25.0])) < 0.05


def test_anomaly_errors() -> None:
    with pytest.raises(ValueError, match=r"shrinkage=1.5 is outside the valid range \[0, 1\]"):
        GateAnomalyScorer(shrinkage=1.5)
    with pytest.raises(ValueError, match=r"not fitted"):
        GateAnomalyScorer().score(np.zeros((2, 3)))
    scorer = GateAnomalyScorer().fit(np.random.default_rng(0).normal(size=(10, 3)))
    with pytest.raises(ValueError, match=r"gains has 4 features per sample, expected 3"):
        scorer.score(np.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"metric='cosine' is not one of"):
        scorer.score(np.zeros((2, 3)), "cosine")
    with pytest.raises(ValueError, match=r"gains has 1 sample\(s\), expected at least 2"):
        GateAnomalyScorer().fit(np.zeros((1, 3)))


def test_se_overhead_counts() -> None:
    c, rd, b, hw = 32, 2, 2, 8
    block = SEResidualBlock(c, c, rd_ratio=1 / 16)
    block.train()
    before = block.bn1.running_mean.clone()
    cost = se_overhead(block, (b, c, hw, hw))
    # by hand: W1 (rd x c) + b1 + W2 (c x rd) + b2; FLOPs 2 * b * (c*rd + rd*c) for the two FCs
    se_params = c * rd + rd + rd * c + c
    host_params = 2 * (9 * c * c) + 4 * c
    conv_flops = 2 * (2 * b * hw * hw * c * c * 9)
    assert cost.se_params == se_params and cost.block_params == se_params + host_params
    assert cost.se_flops == 2 * b * (c * rd + rd * c)
    assert cost.block_flops == conv_flops + cost.se_flops
    # integer counts, one correctly rounded division each: exactly equal
    assert cost.param_ratio == se_params / host_params
    assert cost.flop_ratio == cost.se_flops / conv_flops
    # the block itself is untouched
    assert block.training and torch.equal(block.bn1.running_mean, before)
    with_ctx = se_overhead(SEResidualBlock(c, c, 4), (b, c, hw, hw), context=torch.zeros(b, 4))
    assert with_ctx.se_params > cost.se_params
    with pytest.raises(ValueError, match=r"contains no ContextSE"):
        se_overhead(nn.Conv2d(3, 3, 1), (1, 3, 4, 4))
    with pytest.raises(ValueError, match=r"input_shape=0 is outside"):
        se_overhead(block, (0, c, 4, 4))
