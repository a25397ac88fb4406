"""Drift statistics for the monitor flow: the population stability index (PSI) and the
two-sample Kolmogorov–Smirnov test per feature against the training window, and drift of
the model's win probability. Pure functions over arrays and frames: no I/O.

Conventions, stated once:
- PSI bins are the deciles of the *reference* (training) sample, with open outer edges,
  so live values outside the training range still land in a bin. Empty bins are floored
  at `PSI_FLOOR` so the log stays finite. Bands follow the credit-risk usage:
  PSI < 0.10 stable, 0.10–0.25 moderate shift, ≥ 0.25 major shift.
- KS uses the exact two-sample statistic (largest gap between the empirical CDFs) and
  Smirnov's asymptotic p-value (Kolmogorov distribution at the effective size m·n/(m+n)).
  With thousands of rows KS flags shifts too small to matter, so it only raises a feature
  to "moderate" and never to "major" on its own.
- Testing ~70 features at once, some KS p-values fall below any threshold by chance. The
  table carries each feature's Benjamini–Hochberg adjusted p-value (`ks_qvalue`, the
  false discovery rate at which it would count as drifting); alerts use it
  (`monitoring.policy`), never the raw p-value."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import pandas as pd
from scipy import stats

from core.errors import DataValidationError
from monitoring.samples import finite_values

PSI_FLOOR = 1e-4
PSI_MODERATE = 0.10
PSI_MAJOR = 0.25
DEFAULT_BINS = 10
DEFAULT_KS_ALPHA = 0.01
MIN_SAMPLES = 30


class DriftStatus(StrEnum):
    STABLE = "stable"
    MODERATE = "moderate"
    MAJOR = "major"
    INSUFFICIENT = "insufficient_data"


@dataclass(frozen=True, slots=True)
class KsResult:
    statistic: float
    pvalue: float


@dataclass(frozen=True, slots=True)
class DriftResult:
    """Drift of one series (a feature, or the predictions) against its reference."""

    name: str
    psi: float
    ks_statistic: float
    ks_pvalue: float
    reference_n: int
    current_n: int
    status: DriftStatus

    def summary(self) -> dict[str, float | int | str]:
        """The figures a report shows for a prediction series."""
        return {
            "psi": self.psi,
            "ks": self.ks_statistic,
            "pvalue": self.ks_pvalue,
            "status": self.status.value,
            "current_n": self.current_n,
        }


def psi(
    reference: Sequence[float] | np.ndarray | pd.Series,
    current: Sequence[float] | np.ndarray | pd.Series,
    *,
    bins: int = DEFAULT_BINS,
    where: str = "psi",
) -> float:
    """Population stability index of `current` against `reference`:
    Σ (aᵢ − eᵢ)·ln(aᵢ/eᵢ) over the reference's quantile bins. NaN/inf values are dropped."""
    if bins < 2:
        raise DataValidationError(f"PSI needs at least 2 bins, got {bins}", where=where)
    expected_values = finite_values(reference)
    actual_values = finite_values(current)
    if expected_values.size == 0 or actual_values.size == 0:
        raise DataValidationError(
            f"PSI needs finite values on both sides (reference {expected_values.size}, "
            f"current {actual_values.size})",
            where=where,
        )
    quantiles = np.quantile(expected_values, np.linspace(0, 1, bins + 1)[1:-1])
    # Ties collapse quantile edges (e.g. a binary feature): keep each edge once.
    edges = np.unique(quantiles)
    expected_share = _bin_shares(expected_values, edges)
    actual_share = _bin_shares(actual_values, edges)
    return float(np.sum((actual_share - expected_share) * np.log(actual_share / expected_share)))


def _bin_shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    # side="left": bin i holds edges[i-1] < x <= edges[i]; the outer bins are open.
    index = np.searchsorted(edges, values, side="left")
    counts = np.bincount(index, minlength=edges.size + 1).astype(float)
    return np.maximum(counts / values.size, PSI_FLOOR)


def ks_two_sample(
    reference: Sequence[float] | np.ndarray | pd.Series,
    current: Sequence[float] | np.ndarray | pd.Series,
    *,
    where: str = "ks",
) -> KsResult:
    """Two-sample Kolmogorov–Smirnov statistic D = sup |F_ref − F_cur| and its asymptotic
    two-sided p-value (the same figures as `scipy.stats.ks_2samp(..., method="asymp")`)."""
    first = np.sort(finite_values(reference))
    second = np.sort(finite_values(current))
    if first.size == 0 or second.size == 0:
        raise DataValidationError(
            f"KS needs finite values on both sides (reference {first.size}, current {second.size})",
            where=where,
        )
    pooled = np.concatenate([first, second])
    cdf_first = np.searchsorted(first, pooled, side="right") / first.size
    cdf_second = np.searchsorted(second, pooled, side="right") / second.size
    statistic = float(np.max(np.abs(cdf_first - cdf_second)))
    # Smirnov's approximation: the one-sample Kolmogorov distribution at the effective size.
    effective_n = first.size * second.size / (first.size + second.size)
    pvalue = float(np.clip(stats.kstwo.sf(statistic, np.round(effective_n)), 0.0, 1.0))
    return KsResult(statistic=statistic, pvalue=pvalue)


def classify(psi_value: float, ks: KsResult, *, ks_alpha: float = DEFAULT_KS_ALPHA) -> DriftStatus:
    """The stated banding: PSI decides major/moderate; KS alone can only say moderate."""
    if psi_value >= PSI_MAJOR:
        return DriftStatus.MAJOR
    if psi_value >= PSI_MODERATE or ks.pvalue < ks_alpha:
        return DriftStatus.MODERATE
    return DriftStatus.STABLE


def series_drift(
    name: str,
    reference: Sequence[float] | np.ndarray | pd.Series,
    current: Sequence[float] | np.ndarray | pd.Series,
    *,
    bins: int = DEFAULT_BINS,
    ks_alpha: float = DEFAULT_KS_ALPHA,
    min_samples: int = MIN_SAMPLES,
) -> DriftResult:
    """PSI, KS and the status for one series; too few finite values → `insufficient_data`."""
    expected_values = finite_values(reference)
    actual_values = finite_values(current)
    if expected_values.size < min_samples or actual_values.size < min_samples:
        return DriftResult(
            name,
            float("nan"),
            float("nan"),
            float("nan"),
            int(expected_values.size),
            int(actual_values.size),
            DriftStatus.INSUFFICIENT,
        )
    psi_value = psi(expected_values, actual_values, bins=bins, where=name)
    ks = ks_two_sample(expected_values, actual_values, where=name)
    return DriftResult(
        name=name,
        psi=psi_value,
        ks_statistic=ks.statistic,
        ks_pvalue=ks.pvalue,
        reference_n=int(expected_values.size),
        current_n=int(actual_values.size),
        status=classify(psi_value, ks, ks_alpha=ks_alpha),
    )


def feature_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    features: Sequence[str],
    *,
    bins: int = DEFAULT_BINS,
    ks_alpha: float = DEFAULT_KS_ALPHA,
    min_samples: int = MIN_SAMPLES,
) -> pd.DataFrame:
    """One row per feature: feature, psi, ks_statistic, ks_pvalue, reference_n, current_n,
    status; sorted with the largest PSI first. A feature missing from either frame is an
    error naming it (a silently skipped feature would look stable)."""
    if not features:
        raise DataValidationError("no features to compare", where="feature_drift")
    for label, frame in (("reference", reference), ("current", current)):
        missing = [name for name in features if name not in frame.columns]
        if missing:
            raise DataValidationError(
                f"{label} frame lacks feature column(s) {missing}", where="feature_drift"
            )
    rows = []
    for name in features:
        result = series_drift(
            name,
            pd.to_numeric(reference[name], errors="coerce"),
            pd.to_numeric(current[name], errors="coerce"),
            bins=bins,
            ks_alpha=ks_alpha,
            min_samples=min_samples,
        )
        rows.append(
            {
                "feature": result.name,
                "psi": result.psi,
                "ks_statistic": result.ks_statistic,
                "ks_pvalue": result.ks_pvalue,
                "reference_n": result.reference_n,
                "current_n": result.current_n,
                "status": result.status.value,
            }
        )
    table = pd.DataFrame(rows)
    table["ks_qvalue"] = benjamini_hochberg(table["ks_pvalue"].to_numpy(dtype=float))
    return table.sort_values("psi", ascending=False, na_position="last").reset_index(drop=True)


def benjamini_hochberg(pvalues: Sequence[float] | np.ndarray) -> np.ndarray:
    """Benjamini–Hochberg adjusted p-values (q-values), in the input's order: the
    smallest false discovery rate at which each test would be declared significant. NaN
    p-values (features not tested) stay NaN and do not count as tests."""
    values = np.asarray(pvalues, dtype=float)
    adjusted = np.full(values.shape, np.nan)
    tested = np.flatnonzero(np.isfinite(values))
    if tested.size == 0:
        return adjusted
    order = tested[np.argsort(values[tested], kind="stable")]
    ranks = np.arange(1, order.size + 1)
    scaled = values[order] * order.size / ranks
    # The running minimum from the largest p down keeps the q-values monotone.
    adjusted[order] = np.minimum(1.0, np.minimum.accumulate(scaled[::-1])[::-1])
    return adjusted


def prediction_drift(
    reference_probabilities: Sequence[float] | np.ndarray | pd.Series,
    current_probabilities: Sequence[float] | np.ndarray | pd.Series,
    *,
    ks_alpha: float = DEFAULT_KS_ALPHA,
    min_samples: int = MIN_SAMPLES,
) -> DriftResult:
    """Drift of the served win probability against the model's predictions on its own
    training window."""
    for label, values in (
        ("reference", reference_probabilities),
        ("current", current_probabilities),
    ):
        array = finite_values(values)
        if array.size and (array.min() < 0 or array.max() > 1):
            raise DataValidationError(
                f"{label} win probabilities must lie in [0, 1] "
                f"(found {array.min():.4f}..{array.max():.4f})",
                where="prediction_drift",
            )
    return series_drift(
        "win_probability",
        reference_probabilities,
        current_probabilities,
        ks_alpha=ks_alpha,
        min_samples=min_samples,
    )


def split_windows(
    features: pd.DataFrame,
    reference: tuple[pd.Timestamp, pd.Timestamp],
    current_days: int,
    as_of: pd.Timestamp | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, tuple[pd.Timestamp, pd.Timestamp]]:
    """(reference rows, current rows, current window) of a feature frame: the reference is
    [start, end) of the training window, the current window the `current_days` up to
    `as_of` (the newest row when None), open at its start."""
    end = as_of if as_of is not None else features["timestamp"].max()
    start = end - pd.Timedelta(days=current_days)
    stamps = features["timestamp"]
    current = features[(stamps > start) & (stamps <= end)]
    reference_rows = features[(stamps >= reference[0]) & (stamps < reference[1])]
    return reference_rows.reset_index(drop=True), current.reset_index(drop=True), (start, end)
