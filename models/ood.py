"""Out-of-distribution detection for model inputs, fitted on the training window only.

Method (two checks; a row is out of distribution when either fires):
1. Per-feature robust range. On the training rows each feature gets its 1st and 99th
   percentile; the allowed range is that interval widened by `range_margin` times its
   width on both sides. A value outside it (e.g. a price feature ten times anything seen)
   flags the row on its own, whatever the other features say.
2. Mahalanobis distance on robustly standardized features: each feature is centred on
   its training median and scaled by its inter-quartile range / 1.349 (the IQR of a
   normal distribution is 1.349 σ), clipped to ±`clip_z`, and the squared Mahalanobis
   distance is taken with a Ledoit-Wolf shrunk covariance of the training rows. The
   threshold is the `quantile` (default 99%) of the training distances, so about 1% of
   training rows are flagged by construction.

Missing values are replaced by the training median: a missing feature means "no
information", not "unusual". The fitted state is plain numbers, saved as JSON next to the
model (no pickle)."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from core.errors import DataValidationError


class OutOfDistributionDetector:
    """Robust range + Mahalanobis detector. `fit` on training rows, then `flags`."""

    def __init__(
        self, *, quantile: float = 0.99, range_margin: float = 0.5, clip_z: float = 50.0
    ) -> None:
        self.quantile = quantile
        self.range_margin = range_margin
        self.clip_z = clip_z

    def fit(self, X: np.ndarray, feature_names: list[str]) -> OutOfDistributionDetector:
        from sklearn.covariance import LedoitWolf

        matrix = np.asarray(X, dtype=np.float64)
        if matrix.ndim != 2 or matrix.shape[1] != len(feature_names):
            raise DataValidationError(
                f"expected {len(feature_names)} feature columns, got shape {matrix.shape}",
                where="ood.fit",
            )
        if len(matrix) < 10:
            raise DataValidationError(
                f"need at least 10 training rows, got {len(matrix)}", where="ood.fit"
            )
        self.feature_names = list(feature_names)
        with warnings.catch_warnings():
            # all-missing columns (e.g. news without a source) are expected: they get the
            # neutral fallbacks below
            warnings.simplefilter("ignore", RuntimeWarning)
            self._fit_statistics(matrix)
        z = self._standardize(matrix)
        covariance = LedoitWolf().fit(z)
        self.precision_ = np.asarray(covariance.precision_)
        self.threshold_ = float(np.quantile(self._distance(z), self.quantile))
        return self

    def _fit_statistics(self, matrix: np.ndarray) -> None:
        median = np.nanmedian(matrix, axis=0)
        self.median_ = np.where(np.isfinite(median), median, 0.0)
        low, q25, q75, high = np.nanpercentile(matrix, [1, 25, 75, 99], axis=0)
        scale = (q75 - q25) / 1.349
        fallback = np.nanstd(matrix, axis=0)
        scale = np.where(scale > 1e-12, scale, np.where(fallback > 1e-12, fallback, 1.0))
        self.scale_ = np.where(np.isfinite(scale), scale, 1.0)
        width = np.where(np.isfinite(high - low), high - low, 0.0)
        self.low_ = np.where(np.isfinite(low), low - self.range_margin * width, -np.inf)
        self.high_ = np.where(np.isfinite(high), high + self.range_margin * width, np.inf)

    def distance(self, X: np.ndarray) -> np.ndarray:
        """Squared Mahalanobis distance of each row from the training centre."""
        return self._distance(self._standardize(np.asarray(X, dtype=np.float64)))

    def flags(self, X: np.ndarray) -> np.ndarray:
        """Boolean per row: True when out of the training distribution."""
        matrix = np.asarray(X, dtype=np.float64)
        filled = np.where(np.isnan(matrix), self.median_, matrix)
        outside = ((filled < self.low_) | (filled > self.high_)).any(axis=1)
        return np.asarray(outside | (self.distance(matrix) > self.threshold_))

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": "robust range (p1-p99 widened) + Mahalanobis (Ledoit-Wolf) on "
            "median/IQR-standardized features, threshold at a training quantile",
            "quantile": self.quantile,
            "range_margin": self.range_margin,
            "clip_z": self.clip_z,
            "feature_names": self.feature_names,
            "median": self.median_.tolist(),
            "scale": self.scale_.tolist(),
            "low": [_finite_or_none(v) for v in self.low_],
            "high": [_finite_or_none(v) for v in self.high_],
            "precision": self.precision_.tolist(),
            "threshold": self.threshold_,
        }

    @classmethod
    def from_dict(cls, payload: dict[str, Any]) -> OutOfDistributionDetector:
        detector = cls(
            quantile=float(payload["quantile"]),
            range_margin=float(payload["range_margin"]),
            clip_z=float(payload["clip_z"]),
        )
        detector.feature_names = list(payload["feature_names"])
        detector.median_ = np.asarray(payload["median"], dtype=np.float64)
        detector.scale_ = np.asarray(payload["scale"], dtype=np.float64)
        detector.low_ = np.asarray(
            [-np.inf if v is None else v for v in payload["low"]], dtype=np.float64
        )
        detector.high_ = np.asarray(
            [np.inf if v is None else v for v in payload["high"]], dtype=np.float64
        )
        detector.precision_ = np.asarray(payload["precision"], dtype=np.float64)
        detector.threshold_ = float(payload["threshold"])
        return detector

    def _standardize(self, matrix: np.ndarray) -> np.ndarray:
        filled = np.where(np.isnan(matrix), self.median_, matrix)
        z = (filled - self.median_) / self.scale_
        return np.clip(np.nan_to_num(z, nan=0.0, posinf=self.clip_z, neginf=-self.clip_z),
                       -self.clip_z, self.clip_z)

    def _distance(self, z: np.ndarray) -> np.ndarray:
        return np.einsum("ij,jk,ik->i", z, self.precision_, z)


def _finite_or_none(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None
