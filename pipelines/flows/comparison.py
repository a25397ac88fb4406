"""Candidate vs champion on the SAME out-of-time window, with MLflow's own evaluation and
validation helpers: `mlflow.models.evaluate` on static predictions (each model's
predictions on the window are computed once, here) plus one custom metric per model made
with `mlflow.models.make_metric`, and `mlflow.validate_evaluation_results` with a
`MetricThreshold(min_relative_change=margin)` deciding whether the candidate is better
by the configured margin (default 5%).

The metric per model (what "better" means; documented in the README too):

| model | metric | better |
|---|---|---|
| signal_quality | log loss of the win probability vs the realized win label | lower |
| exit_optimizer | MAE of stop-loss and take-profit ATR multiples vs the optimal ones | lower |
| regime_classifier | macro-F1 of the argmax regime vs the realized regime | higher |
| risk_predictor | mean absolute error of the expected drawdown vs the realized drawdown | lower |

Log loss (not accuracy) for the win probability because the engine sizes with the
probability itself, so calibration matters, and it is a proper scoring rule."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from core.errors import DataValidationError

LOG_LOSS_EPS = 1e-6


@dataclass(frozen=True, slots=True)
class ComparisonMetric:
    """The one figure a model's candidate must improve on the champion's."""

    model: str
    name: str
    greater_is_better: bool
    model_type: str  # mlflow.models.evaluate's model_type for the built-in metrics
    description: str

    @property
    def key(self) -> str:
        """The metric's key in an MLflow EvaluationResult."""
        return f"{self.name}/score"


COMPARISON_METRICS: dict[str, ComparisonMetric] = {
    "signal_quality": ComparisonMetric(
        "signal_quality",
        "win_log_loss",
        False,
        "regressor",
        "log loss of the win probability on out-of-time signal events",
    ),
    "exit_optimizer": ComparisonMetric(
        "exit_optimizer",
        "exit_atr_mae",
        False,
        "regressor",
        "MAE of stop-loss and take-profit ATR multiples vs the optimal ones (stacked)",
    ),
    "regime_classifier": ComparisonMetric(
        "regime_classifier",
        "regime_macro_f1",
        True,
        "classifier",
        "macro-F1 of the predicted regime vs the realized regime",
    ),
    "risk_predictor": ComparisonMetric(
        "risk_predictor",
        "drawdown_mae",
        False,
        "regressor",
        "MAE of the expected drawdown vs the realized drawdown",
    ),
}


def _score_log_loss(predictions: pd.Series, targets: pd.Series) -> float:
    p = np.clip(predictions.to_numpy(dtype=float), LOG_LOSS_EPS, 1 - LOG_LOSS_EPS)
    y = targets.to_numpy(dtype=float)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def _score_mae(predictions: pd.Series, targets: pd.Series) -> float:
    return float(np.mean(np.abs(predictions.to_numpy(dtype=float) - targets.to_numpy(dtype=float))))


def _score_macro_f1(predictions: pd.Series, targets: pd.Series) -> float:
    from sklearn.metrics import f1_score

    labels = sorted(set(targets.tolist()) | set(predictions.tolist()))
    return float(f1_score(targets, predictions, labels=labels, average="macro", zero_division=0))


_SCORERS: dict[str, Callable[[pd.Series, pd.Series], float]] = {
    "signal_quality": _score_log_loss,
    "exit_optimizer": _score_mae,
    "regime_classifier": _score_macro_f1,
    "risk_predictor": _score_mae,
}


def score(model: str, frame: pd.DataFrame) -> float:
    """The comparison metric of one model on a `prediction`/`target` frame (no MLflow)."""
    return _SCORERS[model](frame["prediction"], frame["target"])


def mlflow_metric(model: str) -> Any:
    """The model's comparison metric as an MLflow `EvaluationMetric`."""
    from mlflow.metrics import MetricValue
    from mlflow.models import make_metric

    spec = COMPARISON_METRICS[model]
    scorer = _SCORERS[model]

    def eval_fn(predictions: pd.Series, targets: pd.Series) -> MetricValue:
        return MetricValue(aggregate_results={"score": scorer(predictions, targets)})

    return make_metric(eval_fn=eval_fn, greater_is_better=spec.greater_is_better, name=spec.name)


def prediction_frame(
    model: str, model_set: Any, X: pd.DataFrame, labels: pd.DataFrame
) -> pd.DataFrame:
    """One model's predictions on the window next to the realized targets, in the
    `prediction`/`target` shape `mlflow.models.evaluate` takes.

    `labels` columns used: `win` (signal_quality), `stop_loss_atr` and `take_profit_atr`
    (exit_optimizer), `regime` (regime_classifier), `drawdown_pct` (risk_predictor)."""
    if len(X) != len(labels):
        raise DataValidationError(
            f"{len(X)} feature rows for {len(labels)} label rows", where=model
        )
    if model == "signal_quality":
        return pd.DataFrame(
            {
                "prediction": model_set.win_probability(X),
                "target": labels["win"].astype(float).to_numpy(),
            }
        )
    if model == "exit_optimizer":
        exits = model_set.exits(X)
        mask = (
            labels["stop_loss_atr"].notna().to_numpy()
            & labels["take_profit_atr"].notna().to_numpy()
        )
        prediction = np.concatenate(
            [exits["stop_loss_atr"].to_numpy()[mask], exits["take_profit_atr"].to_numpy()[mask]]
        )
        target = np.concatenate(
            [
                labels["stop_loss_atr"].to_numpy(dtype=float)[mask],
                labels["take_profit_atr"].to_numpy(dtype=float)[mask],
            ]
        )
        return pd.DataFrame({"prediction": prediction, "target": target})
    if model == "regime_classifier":
        probabilities = model_set.regime_probabilities(X)
        mask = labels["regime"].notna().to_numpy()
        names = list(probabilities.columns)
        code = {name: index for index, name in enumerate(names)}
        predicted = probabilities.to_numpy().argmax(axis=1)[mask]
        target = labels["regime"][mask].map(code)
        if target.isna().any():
            raise DataValidationError(
                f"unknown regime labels {sorted(set(labels['regime'][mask]) - set(names))}",
                where=model,
            )
        return pd.DataFrame(
            {"prediction": predicted.astype(int), "target": target.astype(int).to_numpy()}
        )
    if model == "risk_predictor":
        drawdown = model_set.drawdown(X)
        mask = labels["drawdown_pct"].notna().to_numpy()
        return pd.DataFrame(
            {
                "prediction": drawdown["expected_drawdown_pct"].to_numpy()[mask],
                "target": labels["drawdown_pct"].to_numpy(dtype=float)[mask],
            }
        )
    raise DataValidationError(f"unknown model '{model}'", where="comparison")


@dataclass(frozen=True, slots=True)
class Comparison:
    """Outcome of one model's candidate-vs-champion check."""

    model: str
    metric: str
    greater_is_better: bool
    candidate: float
    champion: float | None
    margin: float
    passed: bool
    reason: str
    rows: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "metric": self.metric,
            "greater_is_better": self.greater_is_better,
            "candidate": self.candidate,
            "champion": self.champion,
            "margin": self.margin,
            "passed": self.passed,
            "reason": self.reason,
            "rows": self.rows,
        }


def evaluate_and_validate(
    model: str,
    candidate: pd.DataFrame,
    champion: pd.DataFrame | None,
    *,
    margin: float,
) -> Comparison:
    """Evaluate both prediction frames with `mlflow.models.evaluate`, each in a run nested
    under the active one (which must exist), then validate the candidate
    against the champion with `MetricThreshold(min_relative_change=margin)`."""
    import mlflow
    from mlflow.models import MetricThreshold
    from mlflow.models.evaluation.validation import ModelValidationFailedException

    spec = COMPARISON_METRICS[model]
    if candidate.empty:
        raise DataValidationError("no out-of-time rows to evaluate the candidate on", where=model)

    def evaluate(frame: pd.DataFrame, arm: str) -> Any:
        # One nested run per arm, so the MLflow UI shows both evaluations side by side.
        with mlflow.start_run(run_name=f"{model}-{arm}", nested=True):
            mlflow.set_tags({"tradewind.model": model, "tradewind.arm": arm})
            return mlflow.models.evaluate(
                data=frame,
                predictions="prediction",
                targets="target",
                model_type=spec.model_type,
                extra_metrics=[mlflow_metric(model)],
                evaluator_config={"log_model_explainability": False},
            )

    candidate_result = evaluate(candidate, "candidate")
    candidate_score = float(candidate_result.metrics[spec.key])
    if champion is None:
        return Comparison(
            model,
            spec.name,
            spec.greater_is_better,
            candidate_score,
            None,
            margin,
            True,
            "no champion to beat",
            len(candidate),
        )
    champion_result = evaluate(champion, "champion")
    champion_score = float(champion_result.metrics[spec.key])
    threshold = MetricThreshold(
        min_relative_change=margin, greater_is_better=spec.greater_is_better
    )
    direction = "higher" if spec.greater_is_better else "lower"
    try:
        mlflow.validate_evaluation_results({spec.key: threshold}, candidate_result, champion_result)
    except ModelValidationFailedException as exc:
        reason = (
            f"{spec.name} {candidate_score:.4f} vs champion {champion_score:.4f}: not "
            f"{margin:.0%} {direction} ({str(exc).strip().splitlines()[0]})"
        )
        return Comparison(
            model,
            spec.name,
            spec.greater_is_better,
            candidate_score,
            champion_score,
            margin,
            False,
            reason,
            len(candidate),
        )
    reason = (
        f"{spec.name} {candidate_score:.4f} vs champion {champion_score:.4f}: "
        f"at least {margin:.0%} {direction}"
    )
    return Comparison(
        model,
        spec.name,
        spec.greater_is_better,
        candidate_score,
        champion_score,
        margin,
        True,
        reason,
        len(candidate),
    )
