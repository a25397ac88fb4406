"""Out-of-distribution detection for model inputs: a split-conformal test with a stated
false-alarm rate, fitted on the training window only.

Method: each feature is centred on its median and scaled by its inter-quartile range /
1.349 (the IQR of a normal distribution is 1.349 σ), clipped to ±`clip_z`; the score is
the squared Mahalanobis distance with a Ledoit-Wolf shrunk covariance. Both are fitted on
the first `fit_fraction` (75%) of the window's dates. The threshold is the conformal
(1 − α) quantile of the scores of the remaining dates, rows the detector did not fit:
a new row from the same distribution is flagged with probability at most α (1% by
default), whatever the features' shapes. `calibration_rate` records the share of those
held-back rows above the threshold.

Which features: the per-symbol technicals (`OOD_FEATURES`: the technical group without
the price-unit ATR, plus beta, correlation and the sector-relative return). Market-wide,
level and calendar features move together for every symbol on a date and drift year to
year (a calm year is not a broken input); measured on the S&P set they flag a third of
the next year's ordinary bars, the technicals about 1-3%.

Missing values are replaced by the training median: a missing feature means "no
information", not "unusual". The fitted state is plain numbers, saved as JSON next to the
model (no pickle)."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from core.errors import DataValidationError

# Per-symbol features beyond the technical group that describe the symbol, not the day.
SYMBOL_MARKET_FEATURES: tuple[str, ...] = ("beta_60", "corr_60", "sector_relative_20")
EXCLUDED_TECHNICAL: frozenset[str] = frozenset({"atr_14"})  # price units
MIN_CALIBRATION_ROWS = 20


def ood_features(technical: Sequence[str], available: Sequence[str]) -> list[str]:
    """The detector's inputs among `available`: `technical` names (catalogue order) minus
    price-unit ones, then `SYMBOL_MARKET_FEATURES`."""
    present = set(available)
    chosen = [n for n in technical if n in present and n not in EXCLUDED_TECHNICAL]
    return chosen + [n for n in SYMBOL_MARKET_FEATURES if n in present]


class OutOfDistributionDetector:
    """Split-conformal Mahalanobis detector. `fit` on training rows, then `flags`."""

    def __init__(
        self, *, alpha: float = 0.01, clip_z: float = 8.0, fit_fraction: float = 0.75
    ) -> None:
        self.alpha = alpha
        self.clip_z = clip_z
        self.fit_fraction = fit_fraction

    def fit(
        self, X: np.ndarray, feature_names: list[str], dates: np.ndarray | None = None
    ) -> OutOfDistributionDetector:
        """Fit on rows of the first `fit_fraction` of the distinct `dates` (of the rows in
        order when None), calibrate the threshold on the rest."""
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
        order = np.arange(len(matrix)) if dates is None else np.asarray(dates)
        distinct = np.unique(order)
        cut = distinct[min(int(len(distinct) * self.fit_fraction), len(distinct) - 1)]
        fit_rows, calibration_rows = order < cut, order >= cut
        if fit_rows.sum() < 10 or calibration_rows.sum() < MIN_CALIBRATION_ROWS:
            # too short a window to hold rows back: calibrate in-sample (says so)
            fit_rows = calibration_rows = np.ones(len(matrix), dtype=bool)
        self.feature_names = list(feature_names)
        with warnings.catch_warnings():
            # all-missing columns (e.g. news without a source) get neutral fallbacks
            warnings.simplefilter("ignore", RuntimeWarning)
            self._fit_statistics(matrix[fit_rows])
        self.precision_ = np.asarray(
            LedoitWolf().fit(self._standardize(matrix[fit_rows])).precision_)
        scores = np.sort(self.distance(matrix[calibration_rows]))
        n = len(scores)
        rank = min(math.ceil((n + 1) * (1 - self.alpha)), n)
        self.threshold_ = float(scores[rank - 1])
        self.calibration_rows_ = int(n)
        self.held_out_calibration_ = bool(not fit_rows.all())
        self.calibration_rate_ = float((scores > self.threshold_).mean())
        return self

    def _fit_statistics(self, matrix: np.ndarray) -> None:
        median = np.nanmedian(matrix, axis=0)
        self.median_ = np.where(np.isfinite(median), median, 0.0)
        q25, q75 = np.nanpercentile(matrix, [25, 75], axis=0)
        scale = (q75 - q25) / 1.349
        fallback = np.nanstd(matrix, axis=0)
        scale = np.where(scale > 1e-12, scale, np.where(fallback > 1e-12, fallback, 1.0))
        self.scale_ = np.where(np.isfinite(scale), scale, 1.0)

    def distance(self, X: np.ndarray) -> np.ndarray:
        """Squared Mahalanobis distance of each row from the training centre."""
        z = self._standardize(np.asarray(X, dtype=np.float64))
        return np.einsum("ij,jk,ik->i", z, self.precision_, z)

    def flags(self, X: np.ndarray) -> np.ndarray:
        """Boolean per row: True when out of the training distribution."""
        return np.asarray(self.distance(X) > self.threshold_)

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": "split-conformal: median/IQR-standardized features (clipped), "
            "Ledoit-Wolf Mahalanobis fitted on the first dates of the window, threshold "
            "at the conformal (1 - alpha) quantile of the later dates' scores",
            "alpha": self.alpha,
            "clip_z": self.clip_z,
            "fit_fraction": self.fit_fraction,
            "feature_names": self.feature_names,
            "median": self.median_.tolist(),
            "scale": self.scale_.tolist(),
            "precision": self.precision_.tolist(),
            "threshold": self.threshold_,
            "calibration_rows": self.calibration_rows_,
            "held_out_calibration": self.held_out_calibration_,
            "calibration_rate": self.calibration_rate_,
        }

    @classmethod
    def from_dict(cls, payload: dict[str, Any]) -> OutOfDistributionDetector:
        if "alpha" not in payload:
            raise DataValidationError(
                "OOD artifact of an older format (no conformal alpha); retrain",
                where="ood",
            )
        detector = cls(
            alpha=float(payload["alpha"]),
            clip_z=float(payload["clip_z"]),
            fit_fraction=float(payload["fit_fraction"]),
        )
        detector.feature_names = list(payload["feature_names"])
        detector.median_ = np.asarray(payload["median"], dtype=np.float64)
        detector.scale_ = np.asarray(payload["scale"], dtype=np.float64)
        detector.precision_ = np.asarray(payload["precision"], dtype=np.float64)
        detector.threshold_ = float(payload["threshold"])
        detector.calibration_rows_ = int(payload["calibration_rows"])
        detector.held_out_calibration_ = bool(payload["held_out_calibration"])
        detector.calibration_rate_ = float(payload["calibration_rate"])
        return detector

    def _standardize(self, matrix: np.ndarray) -> np.ndarray:
        filled = np.where(np.isnan(matrix), self.median_, matrix)
        z = (filled - self.median_) / self.scale_
        return np.clip(np.nan_to_num(z, nan=0.0, posinf=self.clip_z, neginf=-self.clip_z),
                       -self.clip_z, self.clip_z)
