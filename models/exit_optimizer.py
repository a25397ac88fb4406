"""`exit_optimizer`: where to put the stop and the target, in ATR multiples. XGBoost
regressors (one tree ensemble per target inside one multi-output booster) learn the
optimal stop and take-profit distances derived from each trade's MFE/MAE path
(`models.labels`). Evaluated by re-simulating the out-of-time trades with the model's
exits against the fixed 2×/3× ATR exits on the same bars and costs."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from core.performance import profit_factor
from models.datasets import TrainingData
from models.labels import simulate_exits
from models.metrics import ComparisonMetric, change_pct, mean_absolute_error
from models.plots import feature_importance, predicted_vs_actual
from models.schema import EXIT_OPTIMIZER, STOP_LOSS_ATR_RANGE, TAKE_PROFIT_ATR_RANGE
from models.template import LoadedModels, TrainableModel
from models.tracker import LoggedModel, TrackedRun


class ExitOptimizerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    n_estimators: int = Field(150, ge=1)
    max_depth: int = Field(4, ge=1)
    learning_rate: float = Field(0.05, gt=0)
    subsample: float = Field(0.8, gt=0, le=1)
    colsample_bytree: float = Field(0.8, gt=0, le=1)
    min_child_weight: float = Field(10.0, ge=0)
    objective: str = "reg:absoluteerror"


class ExitOptimizerModel(TrainableModel):
    name: ClassVar[str] = EXIT_OPTIMIZER
    headline_metrics: ClassVar[tuple[str, ...]] = (
        "stop_loss_mae", "take_profit_mae", "model_profit_factor", "fixed_profit_factor",
        "profit_factor_change_pct",
    )
    comparison_metric: ClassVar[ComparisonMetric] = ComparisonMetric(
        "exit_atr_mae",
        greater_is_better=False,
        model_type="regressor",
        description="MAE of stop-loss and take-profit ATR multiples vs the optimal ones (stacked)",
    )

    def __init__(self, config: ExitOptimizerConfig | None = None) -> None:
        self.config = config or ExitOptimizerConfig()

    def rows(self, data: TrainingData) -> pd.DataFrame:
        return data.events

    def inputs(self, data: TrainingData) -> list[str]:
        return list(data.signal_features)

    def label_definition(self, data: TrainingData) -> str:
        return (
            f"{data.labels['stop_opt']}, {data.labels['target_opt']}: target = MFE over "
            f"{data.barrier.max_holding_bars} bars in ATR; stop = adverse excursion before "
            "the MFE peak + 0.25 ATR; clipped to "
            f"{STOP_LOSS_ATR_RANGE} / {TAKE_PROFIT_ATR_RANGE}"
        )

    def params(self) -> dict[str, Any]:
        return {"estimator": "XGBRegressor(multi-output)", **self.config.model_dump()}

    def fit(self, train: pd.DataFrame, inputs: list[str], seed: int) -> Any:
        import xgboost

        targets = _targets(train)
        model = xgboost.XGBRegressor(
            n_estimators=self.config.n_estimators,
            max_depth=self.config.max_depth,
            learning_rate=self.config.learning_rate,
            subsample=self.config.subsample,
            colsample_bytree=self.config.colsample_bytree,
            min_child_weight=self.config.min_child_weight,
            objective=self.config.objective,
            tree_method="hist",
            multi_strategy="one_output_per_tree",
            random_state=seed,
            n_jobs=1,
        )
        model.fit(train[inputs].astype("float64"), train[targets].to_numpy(dtype=float))
        return model

    def predict(self, fitted: Any, X: pd.DataFrame) -> np.ndarray:
        out = np.asarray(fitted.predict(X.astype("float64"))).reshape(len(X), 2)
        return np.column_stack([np.clip(out[:, 0], *STOP_LOSS_ATR_RANGE),
                                np.clip(out[:, 1], *TAKE_PROFIT_ATR_RANGE)])

    def evaluate(
        self, fitted: Any, test: pd.DataFrame, inputs: list[str], data: TrainingData
    ) -> dict[str, float]:
        targets = _targets(test)
        actual = test[targets].to_numpy(dtype=float)
        predicted = self.predict(fitted, test[inputs])
        paths = data.paths.take(test["path_row"].to_numpy())
        barrier = data.barrier
        model_trades = simulate_exits(paths, predicted[:, 0], predicted[:, 1], barrier)
        fixed_trades = simulate_exits(paths, barrier.stop_loss_atr, barrier.take_profit_atr,
                                      barrier)
        model_pf = profit_factor(model_trades.net_return)
        fixed_pf = profit_factor(fixed_trades.net_return)
        baseline = np.array([barrier.stop_loss_atr, barrier.take_profit_atr])
        return {
            "stop_loss_mae": float(np.abs(predicted[:, 0] - actual[:, 0]).mean()),
            "take_profit_mae": float(np.abs(predicted[:, 1] - actual[:, 1]).mean()),
            "fixed_stop_loss_mae": float(np.abs(baseline[0] - actual[:, 0]).mean()),
            "fixed_take_profit_mae": float(np.abs(baseline[1] - actual[:, 1]).mean()),
            "model_profit_factor": model_pf,
            "fixed_profit_factor": fixed_pf,
            "profit_factor_change_pct": change_pct(model_pf, fixed_pf),
            "model_win_rate": float((model_trades.net_return > 0).mean()),
            "fixed_win_rate": float((fixed_trades.net_return > 0).mean()),
            "model_mean_return": float(model_trades.net_return.mean()),
            "fixed_mean_return": float(fixed_trades.net_return.mean()),
            "mean_stop_loss_atr": float(predicted[:, 0].mean()),
            "mean_take_profit_atr": float(predicted[:, 1].mean()),
        }

    def figures(
        self, fitted: Any, test: pd.DataFrame, inputs: list[str], data: TrainingData
    ) -> dict[str, Any]:
        targets = _targets(test)
        actual = test[targets].to_numpy(dtype=float)
        predicted = self.predict(fitted, test[inputs])
        return {
            "feature_importance": feature_importance(inputs, fitted.feature_importances_),
            "stop_loss_predicted_vs_actual": predicted_vs_actual(
                actual[:, 0], predicted[:, 0], "Stop distance (ATR), out of time"),
            "take_profit_predicted_vs_actual": predicted_vs_actual(
                actual[:, 1], predicted[:, 1], "Take-profit distance (ATR), out of time"),
        }

    def comparison_frame(
        self, model_set: LoadedModels, data: TrainingData, out_of_time_start: pd.Timestamp
    ) -> pd.DataFrame:
        """Both distances stacked (stops, then targets), on the rows where both optimal
        distances are known."""
        window = data.events_from(out_of_time_start)
        stop = window[data.labels["stop_opt"]].astype(float)
        target = window[data.labels["target_opt"]].astype(float)
        exits = model_set.exits(window[list(data.signal_features)])
        known = stop.notna().to_numpy() & target.notna().to_numpy()
        return pd.DataFrame(
            {
                "prediction": np.concatenate(
                    [
                        exits["stop_loss_atr"].to_numpy()[known],
                        exits["take_profit_atr"].to_numpy()[known],
                    ]
                ),
                "target": np.concatenate(
                    [stop.to_numpy(dtype=float)[known], target.to_numpy(dtype=float)[known]]
                ),
            }
        )

    def comparison_score(self, predictions: pd.Series, targets: pd.Series) -> float:
        return mean_absolute_error(predictions, targets)

    def log_model(
        self, run: TrackedRun, fitted: Any, example: pd.DataFrame, inputs: list[str],
        train: pd.DataFrame,
    ) -> LoggedModel:
        import xgboost
        from mlflow.models import infer_signature

        output = pd.DataFrame(self.predict(fitted, example),
                              columns=["stop_loss_atr", "take_profit_atr"])
        return run.log_model(
            "xgboost",
            fitted,
            signature=infer_signature(example, output),
            input_example=example,
            model_format="ubj",
            pip_requirements=[f"xgboost=={xgboost.__version__}"],
        )


def _targets(frame: pd.DataFrame) -> list[str]:
    stop = next(c for c in frame.columns if c.startswith("stop_loss_atr_opt_"))
    target = next(c for c in frame.columns if c.startswith("take_profit_atr_opt_"))
    return [stop, target]
