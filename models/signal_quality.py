"""`signal_quality`: will this signal's trade win, net of costs? A random forest
(median imputation in front) whose scores are calibrated into a win probability.

Calibration is time-ordered too: the forest learns on the earlier 75% of the training
window and the calibrator (isotonic with ≥ 500 rows, else sigmoid) on the later 25%,
with rows whose labels overlap the calibration slice purged from the forest's part.

Logged with skops (exact trusted types in `models.schema`), plus an ONNX twin of the
imputer + forest for fast single-row inference and the out-of-distribution detector
fitted on the same training rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from models.datasets import TrainingData
from models.metrics import ComparisonMetric, log_loss
from models.ood import OutOfDistributionDetector
from models.plots import feature_importance, roc_and_calibration
from models.schema import ONNX_FILE, OOD_FILE, SIGNAL_QUALITY, SIGNAL_QUALITY_TRUSTED_TYPES
from models.template import LoadedModels, TrainableModel, utc_naive
from models.tracker import LoggedModel, TrackedRun, scratch_dir


class SignalQualityConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    n_estimators: int = Field(120, ge=1)
    max_depth: int = Field(8, ge=1)
    min_samples_leaf: int = Field(20, ge=1)
    max_features: str = "sqrt"
    calibration_fraction: float = Field(0.25, gt=0, lt=1)
    gate: float = Field(0.65, ge=0, le=1)


def profit_factor(returns: np.ndarray) -> float:
    """Gross gains / gross losses (NaN with no trades, inf with no losses)."""
    if len(returns) == 0:
        return float("nan")
    gains = float(returns[returns > 0].sum())
    losses = float(-returns[returns < 0].sum())
    return gains / losses if losses > 0 else float("inf")


def change_pct(after: float, before: float) -> float:
    if not (np.isfinite(after) and np.isfinite(before)) or before == 0:
        return float("nan")
    return (after / before - 1.0) * 100.0


class SignalQualityModel(TrainableModel):
    name: ClassVar[str] = SIGNAL_QUALITY
    headline_metrics: ClassVar[tuple[str, ...]] = (
        "roc_auc", "accuracy", "brier", "log_loss", "precision_at_gate", "coverage_at_gate",
        "win_rate_change_pts", "profit_factor_change_pct",
    )
    comparison_metric: ClassVar[ComparisonMetric] = ComparisonMetric(
        "win_log_loss",
        greater_is_better=False,
        model_type="regressor",
        description="log loss of the win probability on out-of-time signal events",
    )

    def __init__(self, config: SignalQualityConfig | None = None) -> None:
        self.config = config or SignalQualityConfig()

    def rows(self, data: TrainingData) -> pd.DataFrame:
        return data.events

    def inputs(self, data: TrainingData) -> list[str]:
        return list(data.signal_features)

    def label_definition(self, data: TrainingData) -> str:
        return f"{data.labels['won']}: {data.barrier.describe()}"

    def params(self) -> dict[str, Any]:
        return {"estimator": "RandomForestClassifier+CalibratedClassifierCV",
                **self.config.model_dump()}

    def fit(self, train: pd.DataFrame, inputs: list[str], seed: int) -> Any:
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.ensemble import RandomForestClassifier
        from sklearn.frozen import FrozenEstimator
        from sklearn.impute import SimpleImputer
        from sklearn.pipeline import Pipeline

        target = _target(train)
        stamps = utc_naive(train["timestamp"])
        distinct = np.unique(stamps)
        calib_start = distinct[int(len(distinct) * (1 - self.config.calibration_fraction))]
        ends = utc_naive(train["label_end"])
        forest_rows = (stamps < calib_start) & (ends < calib_start)
        calib_rows = stamps >= calib_start
        if len(np.unique(train[target].to_numpy()[calib_rows])) < 2 or forest_rows.sum() < 10:
            forest_rows = np.ones(len(train), dtype=bool)  # too little data to hold out
            calib_rows = forest_rows
        forest = Pipeline([
            ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
            ("forest", RandomForestClassifier(
                n_estimators=self.config.n_estimators,
                max_depth=self.config.max_depth,
                min_samples_leaf=self.config.min_samples_leaf,
                max_features=self.config.max_features,
                random_state=seed,
                n_jobs=1,
            )),
        ])
        X = train[inputs].astype("float64")
        y = train[target].to_numpy(dtype=int)
        forest.fit(X[forest_rows], y[forest_rows])
        method = "isotonic" if calib_rows.sum() >= 500 else "sigmoid"
        calibrated = CalibratedClassifierCV(FrozenEstimator(forest), method=method)
        calibrated.fit(X[calib_rows], y[calib_rows])
        ood = OutOfDistributionDetector().fit(X.to_numpy(), inputs)
        fitted = _Fitted(calibrated, forest, ood)
        # A ranking gate fitted on the training window: the probability above which the
        # best fifth of the calibration slice's signals fell (reported next to the 0.65
        # gate, which a weak model may never reach).
        fitted.top_fifth_threshold = float(
            np.quantile(fitted.win_probability(X[calib_rows]), 0.8))
        return fitted

    def evaluate(
        self, fitted: Any, test: pd.DataFrame, inputs: list[str], data: TrainingData
    ) -> dict[str, float]:
        from sklearn.metrics import accuracy_score, brier_score_loss, log_loss, roc_auc_score

        won = test[data.labels["won"]].to_numpy(dtype=int)
        net = test[data.labels["net_return"]].to_numpy(dtype=float)
        drawdown = test[data.labels["drawdown"]].to_numpy(dtype=float)
        probability = fitted.win_probability(test[inputs])
        gated = probability >= self.config.gate
        two_classes = len(np.unique(won)) == 2
        ungated_pf = profit_factor(net)
        gated_pf = profit_factor(net[gated])
        ungated_win = float(won.mean())
        gated_win = float(won[gated].mean()) if gated.any() else float("nan")
        return {
            "roc_auc": float(roc_auc_score(won, probability)) if two_classes else float("nan"),
            "accuracy": float(accuracy_score(won, probability >= 0.5)),
            "majority_accuracy": max(ungated_win, 1 - ungated_win),
            "brier": float(brier_score_loss(won, probability)),
            "log_loss": float(log_loss(won, np.clip(probability, 1e-6, 1 - 1e-6),
                                       labels=[0, 1])),
            "coverage_at_gate": float(gated.mean()),
            "precision_at_gate": gated_win,
            "ungated_win_rate": ungated_win,
            "gated_win_rate": gated_win,
            "win_rate_change_pts": (gated_win - ungated_win) * 100.0,
            "ungated_profit_factor": ungated_pf,
            "gated_profit_factor": gated_pf,
            "profit_factor_change_pct": change_pct(gated_pf, ungated_pf),
            "ungated_mean_drawdown": float(drawdown.mean()),
            "gated_mean_drawdown": float(drawdown[gated].mean()) if gated.any() else float("nan"),
            "drawdown_change_pct": change_pct(
                float(drawdown[gated].mean()) if gated.any() else float("nan"),
                float(drawdown.mean()),
            ),
            "mean_probability": float(probability.mean()),
            **self._gate_metrics("top_fifth", probability >= fitted.top_fifth_threshold,
                                 won, net, drawdown),
        }

    @staticmethod
    def _gate_metrics(
        prefix: str, gated: np.ndarray, won: np.ndarray, net: np.ndarray, drawdown: np.ndarray
    ) -> dict[str, float]:
        if not gated.any():
            return {f"{prefix}_coverage": 0.0}
        return {
            f"{prefix}_coverage": float(gated.mean()),
            f"{prefix}_win_rate_change_pts": (float(won[gated].mean()) - float(won.mean()))
            * 100.0,
            f"{prefix}_profit_factor_change_pct": change_pct(profit_factor(net[gated]),
                                                             profit_factor(net)),
            f"{prefix}_drawdown_change_pct": change_pct(float(drawdown[gated].mean()),
                                                        float(drawdown.mean())),
        }

    def figures(
        self, fitted: Any, test: pd.DataFrame, inputs: list[str], data: TrainingData
    ) -> dict[str, Any]:
        forest = fitted.forest.named_steps["forest"]
        won = test[data.labels["won"]].to_numpy(dtype=int)
        return {
            "feature_importance": feature_importance(inputs, forest.feature_importances_),
            "roc_calibration": roc_and_calibration(won, fitted.win_probability(test[inputs])),
        }

    def artifacts(self, fitted: Any) -> dict[str, Any]:
        return {"ood_detector": fitted.ood.to_dict()}

    def comparison_frame(
        self, model_set: LoadedModels, data: TrainingData, out_of_time_start: pd.Timestamp
    ) -> pd.DataFrame:
        window = data.events_from(out_of_time_start)
        return pd.DataFrame(
            {
                "prediction": model_set.win_probability(window[list(data.signal_features)]),
                "target": window[data.labels["won"]].astype(float).to_numpy(),
            }
        )

    def comparison_score(self, predictions: pd.Series, targets: pd.Series) -> float:
        return log_loss(predictions.to_numpy(dtype=float), targets.to_numpy(dtype=float))

    def log_model(
        self, run: TrackedRun, fitted: Any, example: pd.DataFrame, inputs: list[str],
        train: pd.DataFrame,
    ) -> LoggedModel:
        import json

        import sklearn
        from mlflow.models import infer_signature

        signature = infer_signature(example, fitted.win_probability(example))
        with scratch_dir() as folder:
            extra = [_write_onnx(fitted.forest, len(inputs), folder / ONNX_FILE)]
            ood_path = folder / OOD_FILE
            ood_path.write_text(json.dumps(fitted.ood.to_dict()))
            extra.append(ood_path)
            return run.log_model(
                "sklearn",
                fitted.calibrated,
                serialization_format="skops",
                skops_trusted_types=list(SIGNAL_QUALITY_TRUSTED_TYPES),
                signature=signature,
                input_example=example,
                extra_files=[str(path) for path in extra if path is not None],
                pip_requirements=[f"scikit-learn=={sklearn.__version__}", "skops",
                                  "onnxruntime"],
            )


class _Fitted:
    """The calibrated classifier with the parts the template and logging need."""

    def __init__(self, calibrated: Any, forest: Any, ood: OutOfDistributionDetector) -> None:
        self.calibrated = calibrated
        self.forest = forest
        self.ood = ood
        self.top_fifth_threshold = 1.0

    def win_probability(self, X: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.calibrated.predict_proba(X.astype("float64"))[:, 1])


def _target(train: pd.DataFrame) -> str:
    return next(c for c in train.columns if c.startswith("won_"))


def _write_onnx(forest: Any, n_inputs: int, path: Path) -> Path | None:
    """ONNX twin of imputer + forest (uncalibrated scores); None when conversion fails —
    serving then uses scikit-learn, which is slower but equal."""
    try:
        from skl2onnx import convert_sklearn
        from skl2onnx.common.data_types import FloatTensorType
        from sklearn.ensemble import RandomForestClassifier

        onnx_model = convert_sklearn(
            forest,
            initial_types=[("features", FloatTensorType([None, n_inputs]))],
            options={RandomForestClassifier: {"zipmap": False}},
        )
    except Exception:  # converter gaps must not block training; loading checks parity
        return None
    path.write_bytes(onnx_model.SerializeToString())
    return path
