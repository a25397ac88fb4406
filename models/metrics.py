"""Scores shared by the models' out-of-time comparison and the live A/B figures, each
written once: log loss of a win probability, mean absolute error, macro-F1; and
`ComparisonMetric`, the one figure a retrained candidate must improve on the champion's."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

LOG_LOSS_EPS = 1e-6


@dataclass(frozen=True, slots=True)
class ComparisonMetric:
    """The one figure a model's candidate must improve on the champion's."""

    name: str
    greater_is_better: bool
    model_type: str  # mlflow.models.evaluate's model_type for the built-in metrics
    description: str

    @property
    def key(self) -> str:
        """The metric's key in an MLflow EvaluationResult."""
        return f"{self.name}/score"


def log_loss(win_probability: npt.ArrayLike, won: npt.ArrayLike) -> float:
    """Mean negative log-likelihood of 0/1 outcomes under the given win probabilities,
    with the probabilities clipped to [ε, 1 − ε] so a confident miss stays finite."""
    probability = np.clip(np.asarray(win_probability, dtype=float), LOG_LOSS_EPS, 1 - LOG_LOSS_EPS)
    outcome = np.asarray(won, dtype=float)
    return float(-np.mean(outcome * np.log(probability) + (1 - outcome) * np.log(1 - probability)))


def mean_absolute_error(predicted: npt.ArrayLike, actual: npt.ArrayLike) -> float:
    return float(
        np.mean(np.abs(np.asarray(predicted, dtype=float) - np.asarray(actual, dtype=float)))
    )


def macro_f1(predicted: npt.ArrayLike, actual: npt.ArrayLike) -> float:
    """Macro-F1 over every class present in either array (an absent class scores 0)."""
    from sklearn.metrics import f1_score

    predicted_list = np.asarray(predicted).tolist()
    actual_list = np.asarray(actual).tolist()
    labels = sorted(set(actual_list) | set(predicted_list))
    return float(
        f1_score(actual_list, predicted_list, labels=labels, average="macro", zero_division=0)
    )


def change_pct(after: float, before: float) -> float:
    """Relative change in percent; NaN when either side is missing or the base is 0."""
    if not (np.isfinite(after) and np.isfinite(before)) or before == 0:
        return float("nan")
    return (after / before - 1.0) * 100.0
