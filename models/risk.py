"""`risk_predictor`: how far will the trade go against us? scikit-learn gradient
boosting for the expected maximum adverse excursion over the holding horizon (fraction of
the entry price), plus quantile models for its 10th and 90th percentile. Evaluated by
MAE (against the training-median baseline) and by how often the actual value falls inside
the predicted p10–p90 interval (80% is the aim)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from models.datasets import TrainingData
from models.metrics import ComparisonMetric, change_pct, mean_absolute_error
from models.plots import feature_importance, predicted_vs_actual
from models.schema import (
    DRAWDOWN_COLUMNS,
    RISK_ONNX_FILES,
    RISK_PREDICTOR,
    RISK_PREDICTOR_TRUSTED_TYPES,
)
from models.template import LoadedModels, TrainableModel
from models.tracker import LoggedModel, TrackedRun, scratch_dir


class RiskConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    n_estimators: int = Field(120, ge=1)
    max_depth: int = Field(3, ge=1)
    learning_rate: float = Field(0.05, gt=0)
    subsample: float = Field(0.8, gt=0, le=1)
    min_samples_leaf: int = Field(20, ge=1)
    lower_quantile: float = Field(0.10, gt=0, lt=0.5)
    upper_quantile: float = Field(0.90, gt=0.5, lt=1)


def ordered_drawdowns(expected: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """[expected, p10, p90] columns, with p10 ≤ expected ≤ p90 (separately fitted
    quantile models can cross) and nothing below zero."""
    expected = np.maximum(np.asarray(expected, dtype=np.float64).reshape(-1), 0.0)
    lower = np.maximum(np.minimum(np.asarray(lower, dtype=np.float64).reshape(-1), expected), 0)
    upper = np.maximum(np.asarray(upper, dtype=np.float64).reshape(-1), expected)
    return np.column_stack([expected, lower, upper])


class DrawdownQuantileModel:
    """Median imputation, then three boosted models: mean, lower and upper quantile.
    `predict_array` returns [expected, p10, p90] per row, never crossing, never < 0."""

    train_median_: float  # median of the training target: the baseline predictor

    def __init__(self, imputer: Any, expected: Any, lower: Any, upper: Any) -> None:
        self.imputer = imputer
        self.expected = expected
        self.lower = lower
        self.upper = upper

    def predict_array(self, matrix: np.ndarray) -> np.ndarray:
        filled = self.imputer.transform(np.asarray(matrix, dtype=np.float64))
        return ordered_drawdowns(self.expected.predict(filled), self.lower.predict(filled),
                                 self.upper.predict(filled))

    def predict(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        values = X.to_numpy(dtype=np.float64) if isinstance(X, pd.DataFrame) else X
        return self.predict_array(values)


class RiskModel(TrainableModel):
    name: ClassVar[str] = RISK_PREDICTOR
    headline_metrics: ClassVar[tuple[str, ...]] = (
        "mae", "baseline_mae", "interval_coverage", "filtered_drawdown_change_pct",
    )
    comparison_metric: ClassVar[ComparisonMetric] = ComparisonMetric(
        "drawdown_mae",
        greater_is_better=False,
        model_type="regressor",
        description="MAE of the expected drawdown vs the realized drawdown",
    )

    def __init__(self, config: RiskConfig | None = None) -> None:
        self.config = config or RiskConfig()

    def rows(self, data: TrainingData) -> pd.DataFrame:
        return data.events

    def inputs(self, data: TrainingData) -> list[str]:
        return list(data.signal_features)

    def label_definition(self, data: TrainingData) -> str:
        return (f"{data.labels['drawdown']}: worst move against the position within "
                f"{data.barrier.max_holding_bars} bars after entry, fraction of entry price")

    def params(self) -> dict[str, Any]:
        return {"estimator": "GradientBoostingRegressor x3 (mean, quantiles)",
                **self.config.model_dump()}

    def fit(self, train: pd.DataFrame, inputs: list[str], seed: int) -> Any:
        from sklearn.ensemble import GradientBoostingRegressor
        from sklearn.impute import SimpleImputer

        imputer = SimpleImputer(strategy="median", keep_empty_features=True)
        X = imputer.fit_transform(train[inputs].to_numpy(dtype=np.float64))
        y = train[_target(train)].to_numpy(dtype=float)

        def booster(loss: str, alpha: float = 0.9) -> Any:
            return GradientBoostingRegressor(
                loss=loss, alpha=alpha, n_estimators=self.config.n_estimators,
                max_depth=self.config.max_depth, learning_rate=self.config.learning_rate,
                subsample=self.config.subsample, min_samples_leaf=self.config.min_samples_leaf,
                random_state=seed,
            ).fit(X, y)

        model = DrawdownQuantileModel(
            imputer,
            booster("squared_error"),
            booster("quantile", self.config.lower_quantile),
            booster("quantile", self.config.upper_quantile),
        )
        model.train_median_ = float(np.median(y))  # baseline for evaluation
        return model

    def evaluate(
        self, fitted: Any, test: pd.DataFrame, inputs: list[str], data: TrainingData
    ) -> dict[str, float]:
        actual = test[_target(test)].to_numpy(dtype=float)
        predicted = fitted.predict_array(test[inputs].to_numpy(dtype=np.float64))
        expected, lower, upper = predicted[:, 0], predicted[:, 1], predicted[:, 2]
        inside = (actual >= lower) & (actual <= upper)
        # Risk filter: skip the trades predicted riskier than the median prediction.
        calm = expected <= np.median(expected)
        return {
            "mae": float(np.abs(expected - actual).mean()),
            "baseline_mae": float(np.abs(fitted.train_median_ - actual).mean()),
            "interval_coverage": float(inside.mean()),
            "interval_width": float((upper - lower).mean()),
            "mean_actual": float(actual.mean()),
            "mean_predicted": float(expected.mean()),
            "filtered_drawdown_change_pct": change_pct(float(actual[calm].mean()),
                                                       float(actual.mean())),
        }

    def figures(
        self, fitted: Any, test: pd.DataFrame, inputs: list[str], data: TrainingData
    ) -> dict[str, Any]:
        actual = test[_target(test)].to_numpy(dtype=float)
        predicted = fitted.predict_array(test[inputs].to_numpy(dtype=np.float64))
        return {
            "feature_importance": feature_importance(
                inputs, fitted.expected.feature_importances_),
            "drawdown_predicted_vs_actual": predicted_vs_actual(
                actual, predicted[:, 0], "Max adverse excursion, out of time",
                lower=predicted[:, 1], upper=predicted[:, 2]),
        }

    def comparison_frame(
        self, model_set: LoadedModels, data: TrainingData, out_of_time_start: pd.Timestamp
    ) -> pd.DataFrame:
        window = data.events_from(out_of_time_start)
        realized = window[data.labels["drawdown"]].astype(float)
        expected = model_set.drawdown(window[list(data.signal_features)])
        known = realized.notna().to_numpy()
        return pd.DataFrame(
            {
                "prediction": expected["expected_drawdown_pct"].to_numpy()[known],
                "target": realized.to_numpy(dtype=float)[known],
            }
        )

    def comparison_score(self, predictions: pd.Series, targets: pd.Series) -> float:
        return mean_absolute_error(predictions, targets)

    def log_model(
        self, run: TrackedRun, fitted: Any, example: pd.DataFrame, inputs: list[str],
        train: pd.DataFrame,
    ) -> LoggedModel:
        import sklearn
        from mlflow.models import infer_signature

        output = pd.DataFrame(fitted.predict_array(example.to_numpy(dtype=np.float64)),
                              columns=list(DRAWDOWN_COLUMNS))
        with scratch_dir() as folder:
            extra = write_onnx(fitted, len(inputs), folder)
            return run.log_model(
                "sklearn",
                fitted,
                serialization_format="skops",
                skops_trusted_types=list(RISK_PREDICTOR_TRUSTED_TYPES),
                signature=infer_signature(example, output),
                input_example=example,
                extra_files=[str(path) for path in extra],
                pip_requirements=[f"scikit-learn=={sklearn.__version__}", "skops",
                                  "onnxruntime"],
            )


def write_onnx(fitted: DrawdownQuantileModel, n_inputs: int, folder: Path) -> list[Path]:
    """ONNX twins of imputer + each boosted model (expected, p10, p90), for fast
    single-row inference; empty when conversion fails (serving then uses scikit-learn)."""
    try:
        from skl2onnx import convert_sklearn
        from skl2onnx.common.data_types import FloatTensorType
        from sklearn.pipeline import Pipeline

        paths = []
        for file, booster in zip(RISK_ONNX_FILES,
                                 (fitted.expected, fitted.lower, fitted.upper), strict=True):
            pipeline = Pipeline([("impute", fitted.imputer), ("boost", booster)])
            graph = convert_sklearn(
                pipeline, initial_types=[("features", FloatTensorType([None, n_inputs]))])
            path = folder / file
            path.write_bytes(graph.SerializeToString())
            paths.append(path)
    except Exception:  # converter gaps must not block training; loading checks parity
        return []
    return paths


def _target(frame: pd.DataFrame) -> str:
    return next(c for c in frame.columns if c.startswith("max_adverse_excursion_pct_"))
