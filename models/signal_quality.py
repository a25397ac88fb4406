"""`signal_quality`: will this signal's trade win, net of costs? One pooled classifier over
every strategy (the strategy as one-hot inputs), calibrated into a win probability, with
the decision policy (`models.policy`) and the out-of-distribution detector fitted on the
same training rows.

- Estimator: XGBoost (depth 2, 400 trees, learning rate 0.03, subsample 0.8, column
  sample 0.5, min child weight 20, L2 5) or a random forest (depth 6, leaves ≥ 50, median
  imputation in front); with `estimator: auto` the template's walk-forward folds choose,
  by mean fold ROC AUC (`select`).
- Sample weights: each trade's average uniqueness (`models.labels.uniqueness`).
- Calibration: Platt scaling (a logistic map of the score's logit) fitted on out-of-fold
  scores over half-year blocks of the training window: block k is scored by the estimator
  fitted on the earlier blocks, purged (labels known before the block) and embargoed.
  The estimator is then refitted on the whole window and the same map applied to its
  scores, so probabilities are continuous (not the steps of an isotonic fit) and the
  ranking keeps the full model's resolution. Too short a window for any out-of-fold block
  falls back to an in-sample Platt map (recorded as `calibration: in-sample`).
- The out-of-fold probabilities place the policy's thresholds and size normalisation;
  `finish` runs the policy's skill check on the template's out-of-time slice.

Logged as an XGBoost booster (served with `inplace_predict`) or a scikit-learn pipeline
with skops (served through its ONNX twin), plus `calibration.json` (estimator kind and
Platt map), `policy.json` and `ood_detector.json`."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from core.performance import profit_factor
from features.catalogue import feature_names
from models.datasets import TrainingData
from models.metrics import ComparisonMetric
from models.ood import OutOfDistributionDetector, ood_features
from models.plots import feature_importance, roc_and_calibration
from models.policy import FittedPolicy, PolicyConfig, fit_policy, replay_policy, skill_check
from models.schema import (
    CALIBRATION_FILE,
    ONNX_FILE,
    OOD_FILE,
    POLICY_FILE,
    SIGNAL_QUALITY,
    SIGNAL_QUALITY_TRUSTED_TYPES,
)
from models.template import LoadedModels, TrainableModel, utc_naive
from models.tracker import LoggedModel, TrackedRun, scratch_dir

Estimator = Literal["xgboost", "random_forest"]
PF_CAP = 100.0
ESTIMATORS: tuple[Estimator, ...] = ("xgboost", "random_forest")


class SignalQualityConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    estimator: Literal["auto", "xgboost", "random_forest"] = "auto"
    xgb_n_estimators: int = Field(400, ge=1)
    xgb_max_depth: int = Field(2, ge=1)
    xgb_learning_rate: float = Field(0.03, gt=0)
    xgb_subsample: float = Field(0.8, gt=0, le=1)
    xgb_colsample_bytree: float = Field(0.5, gt=0, le=1)
    xgb_min_child_weight: float = Field(20.0, ge=0)
    xgb_reg_lambda: float = Field(5.0, ge=0)
    rf_n_estimators: int = Field(300, ge=1)
    rf_max_depth: int = Field(6, ge=1)
    rf_min_samples_leaf: int = Field(50, ge=1)
    rf_max_features: float = Field(0.3, gt=0, le=1)
    calibration_block_months: int = Field(6, ge=1, le=12)
    embargo_bars: int = Field(5, ge=0)
    min_block_fit_rows: int = Field(300, ge=10)
    min_block_rows: int = Field(50, ge=10)
    n_jobs: int = Field(2, ge=1)
    policy: PolicyConfig = PolicyConfig()


class SignalQualityModel(TrainableModel):
    name: ClassVar[str] = SIGNAL_QUALITY
    headline_metrics: ClassVar[tuple[str, ...]] = (
        "roc_auc", "brier", "log_loss", "policy_coverage", "policy_pf_ratio",
        "policy_sharpe", "ungated_sharpe", "policy_active", "coverage_at_gate",
    )
    comparison_metric: ClassVar[ComparisonMetric] = ComparisonMetric(
        "policy_profit_factor",
        greater_is_better=True,
        model_type="regressor",
        description="profit factor of the decision policy's sized trades on the out-of-time "
        "signal events (each model set with its own policy; pass-through without one)",
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
        settings = self.config.model_dump(exclude={"policy"})
        return {**settings, **{f"policy_{k}": v for k, v in
                               self.config.policy.model_dump().items()}}

    # -- fit --------------------------------------------------------------------------
    def fit(self, train: pd.DataFrame, inputs: list[str], seed: int) -> Any:
        chosen = self.config.estimator
        kinds: tuple[Estimator, ...] = ESTIMATORS if chosen == "auto" else (chosen,)
        fitted = {kind: self._fit_one(kind, train, inputs, seed) for kind in kinds}
        return _Candidates(fitted) if len(fitted) > 1 else fitted[kinds[0]]

    def _fit_one(
        self, kind: Estimator, train: pd.DataFrame, inputs: list[str], seed: int
    ) -> _Fitted:
        labels = _labels(train)
        X = train[inputs].to_numpy(dtype=np.float64)
        y = train[labels["won"]].to_numpy(dtype=int)
        weights = train[labels["weight"]].to_numpy(dtype=float)
        rows, scores = self._out_of_fold(kind, train, X, y, weights, seed)
        estimator = self._estimator(kind, seed).fit(X, y, weights)
        calibration = "out-of-fold"
        if len(rows) < self.config.min_block_rows or len(np.unique(y[rows])) < 2:
            rows, scores, calibration = np.arange(len(X)), estimator.score(X), "in-sample"
        platt = Platt.fit(scores, y[rows])
        calibrated = platt.apply(scores)
        strategies = train["strategy"].astype(str).to_numpy()
        policy = fit_policy(
            self.config.policy,
            strategy=strategies,
            net_return=train[labels["net_return"]].to_numpy(dtype=float),
            drawdown_pct=train[labels["drawdown"]].to_numpy(dtype=float),
            calibrated_strategy=strategies[rows],
            calibrated_probability=calibrated,
            calibrated_timestamp=train["timestamp"].iloc[rows],
            calibration=calibration,
        )
        detector_inputs = ood_features(feature_names("technical"), inputs)
        ood = OutOfDistributionDetector(alpha=self.config.policy.ood_alpha).fit(
            train[detector_inputs].to_numpy(dtype=np.float64), detector_inputs,
            utc_naive(train["timestamp"]),
        )
        return _Fitted(kind, estimator, platt, ood, policy, inputs)

    def _out_of_fold(
        self, kind: Estimator, train: pd.DataFrame, X: np.ndarray, y: np.ndarray,
        weights: np.ndarray, seed: int,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Rows scored out of fold (half-year blocks after the first) and their scores."""
        stamps = utc_naive(train["timestamp"])
        ends = utc_naive(train["label_end"])
        months = pd.DatetimeIndex(stamps)
        block = (months.year * 12 + months.month - 1) // self.config.calibration_block_months
        block = np.asarray(block)
        distinct = np.unique(stamps)
        rows, scores = [], []
        for number in np.unique(block)[1:]:
            scored = block == number
            start = stamps[scored].min()
            at = int(np.searchsorted(distinct, start))
            cut = distinct[max(at - self.config.embargo_bars, 0)]
            fit_rows = (block < number) & (ends < cut) & (stamps < cut)
            if (fit_rows.sum() < self.config.min_block_fit_rows
                    or scored.sum() < self.config.min_block_rows
                    or len(np.unique(y[fit_rows])) < 2):
                continue
            estimator = self._estimator(kind, seed).fit(X[fit_rows], y[fit_rows],
                                                        weights[fit_rows])
            rows.append(np.flatnonzero(scored))
            scores.append(estimator.score(X[scored]))
        if not rows:
            return np.empty(0, dtype=int), np.empty(0)
        return np.concatenate(rows), np.concatenate(scores)

    def _estimator(self, kind: Estimator, seed: int) -> _Estimator:
        c = self.config
        if kind == "xgboost":
            return _XGBoost({
                "n_estimators": c.xgb_n_estimators, "max_depth": c.xgb_max_depth,
                "learning_rate": c.xgb_learning_rate, "subsample": c.xgb_subsample,
                "colsample_bytree": c.xgb_colsample_bytree,
                "min_child_weight": c.xgb_min_child_weight, "reg_lambda": c.xgb_reg_lambda,
                "n_jobs": c.n_jobs, "random_state": seed, "verbosity": 0,
            })
        return _Forest({
            "n_estimators": c.rf_n_estimators, "max_depth": c.rf_max_depth,
            "min_samples_leaf": c.rf_min_samples_leaf, "max_features": c.rf_max_features,
            "n_jobs": c.n_jobs, "random_state": seed,
        })

    def select(
        self, fold_metrics: list[dict[str, float]]
    ) -> tuple[TrainableModel, dict[str, Any]]:
        if self.config.estimator != "auto":
            return self, {"estimator": self.config.estimator}
        means = {}
        for kind in ESTIMATORS:
            values = [m[f"roc_auc_{kind}"] for m in fold_metrics
                      if np.isfinite(m.get(f"roc_auc_{kind}", np.nan))]
            means[kind] = float(np.mean(values)) if values else float("-inf")
        # ties (or no usable fold) keep the first: XGBoost
        chosen: Estimator = max(ESTIMATORS, key=means.__getitem__)
        final = SignalQualityModel(self.config.model_copy(update={"estimator": chosen}))
        return final, {"estimator": chosen,
                       **{f"mean_fold_auc_{k}": round(v, 6) for k, v in means.items()}}

    # -- evaluate ------------------------------------------------------------------------
    def evaluate(
        self, fitted: Any, test: pd.DataFrame, inputs: list[str], data: TrainingData
    ) -> dict[str, float]:
        if isinstance(fitted, _Candidates):
            metrics: dict[str, float] = {}
            for kind, one in fitted.fitted.items():
                found = self._evaluate_one(one, test, inputs)
                metrics[f"roc_auc_{kind}"] = found["roc_auc"]
                if not metrics.get("roc_auc"):
                    metrics.update(found)  # the first kind's full metrics
            return metrics
        return self._evaluate_one(fitted, test, inputs)

    def _evaluate_one(
        self, fitted: _Fitted, test: pd.DataFrame, inputs: list[str]
    ) -> dict[str, float]:
        from sklearn.metrics import brier_score_loss, roc_auc_score
        from sklearn.metrics import log_loss as sk_log_loss

        labels = _labels(test)
        won = test[labels["won"]].to_numpy(dtype=int)
        net = test[labels["net_return"]].to_numpy(dtype=float)
        probability = fitted.win_probability(test[inputs])
        two_classes = len(np.unique(won)) == 2
        gated = probability >= self.config.policy.win_probability_gate
        events = _policy_events(fitted, test, probability)
        decisions = replay_policy(replace(fitted.policy, skill=None), events)
        entered = np.array([d.enter for d in decisions])
        skill = skill_check(fitted.policy, events)
        metrics = {
            "roc_auc": float(roc_auc_score(won, probability)) if two_classes else np.nan,
            "brier": float(brier_score_loss(won, probability)),
            "log_loss": float(sk_log_loss(won, np.clip(probability, 1e-6, 1 - 1e-6),
                                          labels=[0, 1])),
            "base_rate": float(won.mean()),
            "mean_probability": float(probability.mean()),
            "distinct_probabilities": float(len(np.unique(np.round(probability, 6)))),
            "coverage_at_gate": float(gated.mean()),
            "policy_coverage": float(entered.mean()),
            "policy_win_rate": float((net[entered] > 0).mean()) if entered.any() else np.nan,
            "ungated_win_rate": float((net > 0).mean()),
            "policy_profit_factor": skill.policy.profit_factor,
            "ungated_profit_factor": profit_factor(net),
            "policy_pf_ratio": skill.pf_ratio,
            "policy_sharpe": skill.policy.sharpe,
            "ungated_sharpe": skill.ungated.sharpe,
            "policy_max_drawdown": skill.policy.max_drawdown,
            "ungated_max_drawdown": skill.ungated.max_drawdown,
            "policy_active": float(
                skill.pf_ratio > self.config.policy.min_skill_pf_ratio),
            "ood_rate": float(np.mean(events["out_of_distribution"])),
            "ood_calibration_rate": fitted.ood.calibration_rate_,
        }
        for name, payoff in fitted.policy.payoffs.items():
            metrics[f"threshold_{name}"] = payoff.threshold
            metrics[f"in_window_coverage_{name}"] = payoff.coverage
        return metrics

    def finish(
        self, fitted: Any, test: pd.DataFrame, inputs: list[str], data: TrainingData
    ) -> Any:
        probability = fitted.win_probability(test[inputs])
        skill = skill_check(fitted.policy, _policy_events(fitted, test, probability))
        exits = (data.barrier.stop_loss_atr, data.barrier.take_profit_atr)
        return replace(fitted, policy=replace(fitted.policy.with_skill(skill), exits=exits))

    def figures(
        self, fitted: Any, test: pd.DataFrame, inputs: list[str], data: TrainingData
    ) -> dict[str, Any]:
        won = test[data.labels["won"]].to_numpy(dtype=int)
        return {
            "feature_importance": feature_importance(inputs, fitted.estimator.importances()),
            "roc_calibration": roc_and_calibration(won, fitted.win_probability(test[inputs])),
        }

    def artifacts(self, fitted: Any) -> dict[str, Any]:
        return {"ood_detector": fitted.ood.to_dict(), "policy": fitted.policy.to_dict(),
                "calibration": fitted.calibration_dict()}

    def comparison_frame(
        self, model_set: LoadedModels, data: TrainingData, out_of_time_start: pd.Timestamp
    ) -> pd.DataFrame:
        """`prediction` = the size the model set's policy gives each out-of-time signal
        (0 when it skips; the ungated size without a fitted policy), `target` = the
        signal's labelled net return: their product is the policy's P&L."""
        window = data.events_from(out_of_time_start)
        inputs = window[list(data.signal_features)]
        probability = model_set.win_probability(inputs)
        policy = model_set.policy
        if policy is None:
            sizes = np.full(len(window), self.config.policy.base_size_fraction)
        else:
            events = pd.DataFrame({
                "timestamp": window["timestamp"].to_numpy(),
                "strategy": window["strategy"].astype(str).to_numpy(),
                "win_probability": probability,
                "out_of_distribution": model_set.out_of_distribution(inputs),
            })
            sizes = np.array([d.size_fraction for d in replay_policy(policy, events)])
        return pd.DataFrame({
            "prediction": sizes,
            "target": window[data.labels["net_return"]].to_numpy(dtype=float),
        })

    def comparison_score(self, predictions: pd.Series, targets: pd.Series) -> float:
        """Profit factor of size × return; 0 without trades, at most `PF_CAP` (a handful
        of winners and no loser must not beat every real result)."""
        pnl = predictions.to_numpy(dtype=float) * targets.to_numpy(dtype=float)
        factor = profit_factor(pnl[pnl != 0])
        return 0.0 if np.isnan(factor) else float(min(factor, PF_CAP))

    # -- logging -------------------------------------------------------------------------
    def log_model(
        self, run: TrackedRun, fitted: Any, example: pd.DataFrame, inputs: list[str],
        train: pd.DataFrame,
    ) -> LoggedModel:
        from mlflow.models import infer_signature

        signature = infer_signature(example, fitted.win_probability(example))
        with scratch_dir() as folder:
            extra: list[Path] = []
            for name, payload in ((OOD_FILE, fitted.ood.to_dict()),
                                  (POLICY_FILE, fitted.policy.to_dict()),
                                  (CALIBRATION_FILE, fitted.calibration_dict())):
                path = folder / name
                path.write_text(json.dumps(payload))
                extra.append(path)
            return fitted.estimator.log(run, folder, extra, signature, example, len(inputs))


# ================================================================== fitted state
@dataclass(frozen=True)
class Platt:
    """p = 1 / (1 + exp(-(slope · logit(score) + intercept)))."""

    slope: float
    intercept: float

    @classmethod
    def fit(cls, scores: np.ndarray, won: np.ndarray) -> Platt:
        from sklearn.linear_model import LogisticRegression

        if len(np.unique(won)) < 2:
            return cls(0.0, float(np.log(max(won.mean(), 1e-3) / max(1 - won.mean(), 1e-3))))
        model = LogisticRegression(C=1e6, max_iter=1000).fit(logit(scores)[:, None], won)
        return cls(float(model.coef_[0, 0]), float(model.intercept_[0]))

    def apply(self, scores: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-(self.slope * logit(scores) + self.intercept)))


def logit(scores: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(scores, dtype=float), 1e-4, 1 - 1e-4)
    return np.log(p / (1 - p))


class _Estimator:
    kind: ClassVar[Estimator]

    def fit(self, X: np.ndarray, y: np.ndarray, weights: np.ndarray) -> _Estimator:
        raise NotImplementedError

    def score(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def importances(self) -> np.ndarray:
        raise NotImplementedError

    def log(self, run: TrackedRun, folder: Path, extra: list[Path], signature: Any,
            example: pd.DataFrame, n_inputs: int) -> LoggedModel:
        raise NotImplementedError


class _XGBoost(_Estimator):
    kind: ClassVar[Estimator] = "xgboost"

    def __init__(self, params: dict[str, Any]) -> None:
        self.params = params

    def fit(self, X: np.ndarray, y: np.ndarray, weights: np.ndarray) -> _XGBoost:
        import xgboost

        self.model = xgboost.XGBClassifier(**self.params).fit(X, y, sample_weight=weights)
        self.booster = self.model.get_booster()
        self.booster.set_param({"nthread": 1})  # single rows: threads cost more than they give
        return self

    def score(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(self.booster.inplace_predict(np.asarray(X, dtype=np.float64)))

    def importances(self) -> np.ndarray:
        return np.asarray(self.model.feature_importances_)

    def log(self, run: TrackedRun, folder: Path, extra: list[Path], signature: Any,
            example: pd.DataFrame, n_inputs: int) -> LoggedModel:
        import xgboost

        return run.log_model(
            "xgboost",
            self.model,
            signature=signature,
            input_example=example,
            model_format="ubj",
            extra_files=[str(path) for path in extra],
            pip_requirements=[f"xgboost=={xgboost.__version__}"],
        )


class _Forest(_Estimator):
    kind: ClassVar[Estimator] = "random_forest"

    def __init__(self, params: dict[str, Any]) -> None:
        self.params = params

    def fit(self, X: np.ndarray, y: np.ndarray, weights: np.ndarray) -> _Forest:
        from sklearn.ensemble import RandomForestClassifier
        from sklearn.impute import SimpleImputer
        from sklearn.pipeline import Pipeline

        self.pipeline = Pipeline([
            ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
            ("forest", RandomForestClassifier(**self.params)),
        ])
        self.pipeline.fit(X, y, forest__sample_weight=weights)
        self.pipeline.named_steps["forest"].n_jobs = 1  # fitted: one row at a time now
        return self

    def score(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(self.pipeline.predict_proba(np.asarray(X, dtype=np.float64))[:, 1])

    def importances(self) -> np.ndarray:
        return np.asarray(self.pipeline.named_steps["forest"].feature_importances_)

    def log(self, run: TrackedRun, folder: Path, extra: list[Path], signature: Any,
            example: pd.DataFrame, n_inputs: int) -> LoggedModel:
        import sklearn

        onnx = _write_onnx(self.pipeline, n_inputs, folder / ONNX_FILE)
        return run.log_model(
            "sklearn",
            self.pipeline,
            serialization_format="skops",
            skops_trusted_types=list(SIGNAL_QUALITY_TRUSTED_TYPES),
            signature=signature,
            input_example=example,
            extra_files=[str(p) for p in (*extra, onnx) if p is not None],
            pip_requirements=[f"scikit-learn=={sklearn.__version__}", "skops", "onnxruntime"],
        )


@dataclass(frozen=True)
class _Fitted:
    """One estimator, its calibration, the policy and the OOD detector fitted with it."""

    kind: Estimator
    estimator: _Estimator
    platt: Platt
    ood: OutOfDistributionDetector
    policy: FittedPolicy
    inputs: list[str]

    def win_probability(self, X: pd.DataFrame) -> np.ndarray:
        return self.platt.apply(self.estimator.score(X.to_numpy(dtype=np.float64)))

    def out_of_distribution(self, X: pd.DataFrame) -> np.ndarray:
        return self.ood.flags(X[self.ood.feature_names].to_numpy(dtype=np.float64))

    def calibration_dict(self) -> dict[str, Any]:
        return {"estimator": self.kind, "method": "platt", "slope": self.platt.slope,
                "intercept": self.platt.intercept, "fitted_on": self.policy.calibration}


@dataclass(frozen=True)
class _Candidates:
    """Every estimator of `auto`, fitted on one fold (the folds choose between them)."""

    fitted: dict[Estimator, _Fitted]


def _policy_events(fitted: _Fitted, test: pd.DataFrame, probability: np.ndarray
                   ) -> pd.DataFrame:
    labels = _labels(test)
    return pd.DataFrame({
        "timestamp": test["timestamp"].to_numpy(),
        "exit_time": test[labels["exit_time"]].to_numpy(),
        "strategy": test["strategy"].astype(str).to_numpy(),
        "win_probability": probability,
        "net_return": test[labels["net_return"]].to_numpy(dtype=float),
        "out_of_distribution": fitted.out_of_distribution(test),
    })


def _labels(frame: pd.DataFrame) -> dict[str, str]:
    from models.labels import trade_label_names

    won = next(c for c in frame.columns if c.startswith("won_"))
    return trade_label_names(int(won.rsplit("_", 1)[1]))


def _write_onnx(pipeline: Any, n_inputs: int, path: Path) -> Path | None:
    """ONNX twin of imputer + forest (uncalibrated scores); None when conversion fails —
    serving then uses scikit-learn, which is slower but equal."""
    try:
        from skl2onnx import convert_sklearn
        from skl2onnx.common.data_types import FloatTensorType
        from sklearn.ensemble import RandomForestClassifier

        onnx_model = convert_sklearn(
            pipeline,
            initial_types=[("features", FloatTensorType([None, n_inputs]))],
            options={RandomForestClassifier: {"zipmap": False}},
        )
    except Exception:  # converter gaps must not block training; loading checks parity
        return None
    path.write_bytes(onnx_model.SerializeToString())
    return path

