"""Candidate vs champion on the SAME out-of-time window, with MLflow's own evaluation and
validation helpers: `mlflow.models.evaluate` on static predictions (each model's
predictions on the window are computed once, by the model class) plus the model's own
comparison metric made with `mlflow.models.make_metric`, and
`mlflow.validate_evaluation_results` with a `MetricThreshold(min_relative_change=margin)`
deciding whether the candidate is better by the configured margin (default 5%).

What "better" means is each model class's `comparison_metric` (a
`models.metrics.ComparisonMetric`, with its
`comparison_frame` and `comparison_score`):

| model | metric | better |
|---|---|---|
| signal_quality | log loss of the win probability vs the realized win label | lower |
| exit_optimizer | MAE of stop-loss and take-profit ATR multiples vs the optimal ones | lower |
| regime_classifier | macro-F1 of the argmax regime vs the realized regime | higher |
| risk_predictor | mean absolute error of the expected drawdown vs the realized drawdown | lower |

Log loss (not accuracy) for the win probability because the engine sizes with the
probability itself, so calibration matters, and it is a proper scoring rule."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from core.errors import DataValidationError

if TYPE_CHECKING:
    from models.template import TrainableModel


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
        return asdict(self)


def mlflow_metric(model: TrainableModel) -> Any:
    """The model's comparison metric as an MLflow `EvaluationMetric`."""
    from mlflow.metrics import MetricValue
    from mlflow.models import make_metric

    spec = model.comparison_metric

    def eval_fn(predictions: pd.Series, targets: pd.Series) -> MetricValue:
        return MetricValue(
            aggregate_results={"score": model.comparison_score(predictions, targets)}
        )

    return make_metric(eval_fn=eval_fn, greater_is_better=spec.greater_is_better, name=spec.name)


def evaluate_and_validate(
    model: TrainableModel,
    candidate: pd.DataFrame,
    champion: pd.DataFrame | None,
    *,
    margin: float,
) -> Comparison:
    """Evaluate both `prediction`/`target` frames with `mlflow.models.evaluate`, each in a
    run nested under the active one (which must exist), then validate the candidate
    against the champion with `MetricThreshold(min_relative_change=margin)`."""
    import mlflow
    from mlflow.models import MetricThreshold
    from mlflow.models.evaluation.validation import ModelValidationFailedException

    spec = model.comparison_metric
    if candidate.empty:
        raise DataValidationError(
            "no out-of-time rows to evaluate the candidate on", where=model.name
        )

    def evaluate(frame: pd.DataFrame, arm: str) -> Any:
        # One nested run per arm, so the MLflow UI shows both evaluations side by side.
        with mlflow.start_run(run_name=f"{model.name}-{arm}", nested=True):
            mlflow.set_tags({"tradewind.model": model.name, "tradewind.arm": arm})
            return mlflow.models.evaluate(
                data=frame,
                predictions="prediction",
                targets="target",
                model_type=spec.model_type,
                extra_metrics=[mlflow_metric(model)],
                evaluator_config={"log_model_explainability": False},
            )

    def outcome(champion_score: float | None, passed: bool, reason: str) -> Comparison:
        return Comparison(
            model.name, spec.name, spec.greater_is_better, candidate_score, champion_score,
            margin, passed, reason, len(candidate),
        )

    candidate_result = evaluate(candidate, "candidate")
    candidate_score = float(candidate_result.metrics[spec.key])
    if champion is None:
        return outcome(None, True, "no champion to beat")
    champion_result = evaluate(champion, "champion")
    champion_score = float(champion_result.metrics[spec.key])
    threshold = MetricThreshold(
        min_relative_change=margin, greater_is_better=spec.greater_is_better
    )
    direction = "higher" if spec.greater_is_better else "lower"
    try:
        mlflow.validate_evaluation_results({spec.key: threshold}, candidate_result, champion_result)
    except ModelValidationFailedException:
        step = margin * abs(champion_score)
        needed = champion_score + step if spec.greater_is_better else champion_score - step
        at_most = "at least" if spec.greater_is_better else "at most"
        return outcome(
            champion_score,
            False,
            f"{spec.name} {candidate_score:.4f} vs champion {champion_score:.4f}: not "
            f"{margin:.0%} {direction} (needs {at_most} {needed:.4f})",
        )
    return outcome(
        champion_score,
        True,
        f"{spec.name} {candidate_score:.4f} vs champion {champion_score:.4f}: "
        f"at least {margin:.0%} {direction}",
    )
