"""Anomaly scoring from recorded gates: distance of new gains from the gains of normal inputs."""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
import xarray as xr

from neuromod._checks import check_array, check_choice, check_range
from neuromod.gating.core import Gains

__all__ = ["GateAnomalyScorer", "ledoit_wolf_shrinkage"]

GainsLike = np.ndarray | torch.Tensor | xr.DataArray | Gains


def _as_matrix(name: str, gains: GainsLike) -> np.ndarray:
    """(samples, features): the first dim is samples, every other dim is flattened."""
    if isinstance(gains, Gains):
        gains = gains.gain
    if isinstance(gains, torch.Tensor):
        gains = gains.detach().cpu().double().numpy()
    elif isinstance(gains, xr.DataArray):
        gains = gains.values
    arr = check_array(name, gains, finite=True)
    if arr.ndim < 2:
        raise ValueError(f"{name} has shape {arr.shape}, expected (samples, channels, ...)")
    return arr.reshape(arr.shape[0], -1)


def ledoit_wolf_shrinkage(x: np.ndarray) -> float:
    """Ledoit-Wolf optimal shrinkage intensity towards a scaled identity.

    Ledoit & Wolf (2004), "A well-conditioned estimator for large-dimensional covariance matrices",
    J. Multivariate Anal. 88:365-411, Lemma 3.2-3.4: with ``S`` the (1/n) sample covariance,
    ``mu = tr(S)/p``, ``d2 = ||S - mu I||_F^2 / p`` and
    ``b2 = min(d2, (1/n^2) sum_k ||x_k x_k^T - S||_F^2 / p)``, the shrinkage is ``b2 / d2``.

    Parameters
    ----------
    x : ndarray, shape (samples, features)
        Data (centred inside).

    Returns
    -------
    float
        Shrinkage in [0, 1]; the estimate is ``(1 - a) S + a mu I``.
    """
    x = np.asarray(x, dtype=float)
    n, p = x.shape
    xc = x - x.mean(axis=0)
    s = xc.T @ xc / n
    mu = np.trace(s) / p
    d2 = np.sum((s - mu * np.eye(p)) ** 2) / p
    if d2 == 0.0:
        return 0.0
    # sum_k ||x_k x_k^T - S||_F^2 = sum_k ||x_k||^4 - n ||S||_F^2
    b2_bar = (np.sum(np.sum(xc**2, axis=1) ** 2) - n * np.sum(s**2)) / (n**2 * p)
    return float(min(b2_bar, d2) / d2)


class GateAnomalyScorer:
    """Score inputs by how far their gains lie from the gains of normal inputs.

    Fit the mean ``m`` and a shrunk covariance ``C = (1 - a) S + a (tr(S)/p) I`` of gains recorded
    from normal inputs (e.g. with :class:`GateRecorder`); score new gains ``g`` by the Mahalanobis
    distance ``sqrt((g - m)^T C^-1 (g - m))`` or the Euclidean distance ``||g - m||``.

    Parameters
    ----------
    shrinkage : float in [0, 1] or "ledoit-wolf", default "ledoit-wolf"
        Fixed shrinkage intensity ``a``, or the Ledoit-Wolf (2004) estimate
        (:func:`ledoit_wolf_shrinkage`).

    Attributes
    ----------
    mean_, covariance_, precision_ : ndarray
        Fitted mean (p,), shrunk covariance and its inverse (p, p); p = flattened gain size.
    shrinkage_ : float
        The shrinkage used.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> scorer = GateAnomalyScorer().fit(rng.normal(0.5, 0.05, (200, 8)))
    >>> bool(scorer.score(np.full((1, 8), 0.9))[0] > scorer.score(np.full((1, 8), 0.5))[0])
    True
    """

    def __init__(self, *, shrinkage: float | Literal["ledoit-wolf"] = "ledoit-wolf") -> None:
        if isinstance(shrinkage, str):
            check_choice("shrinkage", shrinkage, ("ledoit-wolf",))
        else:
            check_range("shrinkage", shrinkage, 0.0, 1.0)
        self.shrinkage = shrinkage

    def fit(self, gains: GainsLike) -> GateAnomalyScorer:
        """Fit on gains of normal inputs, shape (samples, ...) with >= 2 samples; returns self."""
        x = _as_matrix("gains", gains)
        if x.shape[0] < 2:
            raise ValueError(f"gains has {x.shape[0]} sample(s), expected at least 2 to fit")
        n, p = x.shape
        self.mean_ = x.mean(axis=0)
        xc = x - self.mean_
        s = xc.T @ xc / n
        a = ledoit_wolf_shrinkage(x) if self.shrinkage == "ledoit-wolf" else float(self.shrinkage)
        mu = np.trace(s) / p
        if mu == 0.0:
            mu = 1.0  # constant gains: fall back to a unit-scale identity
            a = 1.0
        self.shrinkage_ = a
        self.covariance_ = (1.0 - a) * s + a * mu * np.eye(p)
        self.precision_ = np.linalg.pinv(self.covariance_, hermitian=True)
        return self

    def score(
        self, gains: GainsLike, metric: Literal["mahalanobis", "euclidean"] = "mahalanobis"
    ) -> np.ndarray:
        """Distance of each sample's gains from the normal mean.

        Parameters
        ----------
        gains : array-like, Tensor, DataArray or Gains
            Shape (samples, ...) with the same flattened size as the fitted gains.
        metric : {"mahalanobis", "euclidean"}

        Returns
        -------
        ndarray, shape (samples,)
            Larger = more anomalous.

        Raises
        ------
        ValueError
            If called before :meth:`fit`, or on a size mismatch.
        """
        check_choice("metric", metric, ("mahalanobis", "euclidean"))
        if not hasattr(self, "mean_"):
            raise ValueError("GateAnomalyScorer is not fitted; call fit(normal_gains) first")
        x = _as_matrix("gains", gains)
        if x.shape[1] != self.mean_.shape[0]:
            raise ValueError(
                f"gains has {x.shape[1]} features per sample, expected {self.mean_.shape[0]} (as in fit)"
            )
        d = x - self.mean_
        if metric == "euclidean":
            return np.sqrt(np.einsum("ij,ij->i", d, d))
        return np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", d, self.precision_, d), 0.0))
