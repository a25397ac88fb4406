"""Calibration of the win probability against what happened: the expected calibration
error (ECE) with its reliability table on closed trades (the monitor flow), and the
compact reliability table of a report (the demo). Pure functions over arrays.

ECE uses equal-width probability bins and weighs each bin by its share of trades."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.errors import DataValidationError
from models.loading import ModelSet
from monitoring.drift import DEFAULT_BINS


@dataclass(frozen=True, slots=True)
class CalibrationResult:
    """Expected calibration error and the reliability table behind it."""

    ece: float
    trades: int
    table: pd.DataFrame  # bin_low, bin_high, trades, mean_probability, win_rate


def expected_calibration_error(
    win_probability: Sequence[float] | np.ndarray | pd.Series,
    won: Sequence[bool] | np.ndarray | pd.Series,
    *,
    bins: int = DEFAULT_BINS,
) -> CalibrationResult:
    """ECE = Σ_b (n_b/N)·|mean predicted probability_b − observed win rate_b| over
    equal-width bins of [0, 1]. Trades without a probability (rules fallback) are dropped."""
    probability = np.asarray(win_probability, dtype=float).ravel()
    outcome = np.asarray(won, dtype=float).ravel()
    if probability.size != outcome.size:
        raise DataValidationError(
            f"{probability.size} probabilities but {outcome.size} outcomes",
            where="expected_calibration_error",
        )
    keep = np.isfinite(probability) & np.isfinite(outcome)
    probability, outcome = probability[keep], outcome[keep]
    if probability.size and (probability.min() < 0 or probability.max() > 1):
        raise DataValidationError(
            f"win probabilities must lie in [0, 1] (found {probability.min():.4f}.."
            f"{probability.max():.4f})",
            where="expected_calibration_error",
        )
    if not np.isin(outcome, (0.0, 1.0)).all():
        raise DataValidationError(
            "outcomes must be 0/1 (won or not)", where="expected_calibration_error"
        )
    edges = np.linspace(0.0, 1.0, bins + 1)
    # Right-closed bins except the first, so p = 1.0 lands in the last bin and p = 0 in the first.
    index = np.clip(np.searchsorted(edges, probability, side="left") - 1, 0, bins - 1)
    rows = []
    ece = 0.0
    for b in range(bins):
        mask = index == b
        count = int(mask.sum())
        mean_probability = float(probability[mask].mean()) if count else float("nan")
        win_rate = float(outcome[mask].mean()) if count else float("nan")
        if count:
            ece += count / probability.size * abs(mean_probability - win_rate)
        rows.append(
            {
                "bin_low": float(edges[b]),
                "bin_high": float(edges[b + 1]),
                "trades": count,
                "mean_probability": mean_probability,
                "win_rate": win_rate,
            }
        )
    return CalibrationResult(
        ece=float(ece) if probability.size else float("nan"),
        trades=int(probability.size),
        table=pd.DataFrame(rows),
    )


def calibration_table(
    win_probability: Sequence[float], won: Sequence[bool], bins: int = 10
) -> dict[str, list[float]]:
    """Reliability table of the win probability on closed trades: per probability bin,
    the mean predicted probability, the observed win rate and the count."""
    prob = np.asarray(win_probability, dtype=float)
    outcome = np.asarray(won, dtype=float)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(prob, edges[1:-1]), 0, bins - 1)
    predicted: list[float] = []
    observed: list[float] = []
    counts: list[float] = []
    for index in range(bins):
        mask = which == index
        if mask.any():
            predicted.append(float(prob[mask].mean()))
            observed.append(float(outcome[mask].mean()))
            counts.append(float(mask.sum()))
    expected_error = (
        float(
            sum(c * abs(p - o) for p, o, c in zip(predicted, observed, counts, strict=True))
            / prob.size
        )
        if prob.size
        else None
    )
    return {
        "predicted": predicted,
        "observed": observed,
        "count": counts,
        "expected_calibration_error": expected_error,  # type: ignore[dict-item]
    }


def signal_diagnostics(
    model_set: ModelSet, events: pd.DataFrame, won: np.ndarray, *, seed: int, top: int = 25
) -> tuple[dict[str, float], dict[str, object]]:
    """A signal model on labelled events it never trained on: permutation importance of
    its inputs and the calibration table of its win probability (empty under 10 events)."""
    from models.importance import permutation_importance

    if len(events) < 10:
        return {}, {}
    importance = permutation_importance(model_set, events, won, seed=seed, top=top)
    table: dict[str, object] = dict(calibration_table(
        model_set.win_probability(events).tolist(), won.astype(bool).tolist(), bins=8))
    table["events"] = len(events)
    return importance, table
