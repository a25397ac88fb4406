"""`regime_classifier`: the market regime over the next K index bars (trending, ranging,
volatile, calm) from today's index state. A PyTorch softmax regression (a linear layer;
`hidden` adds a tiny MLP) on the 16 causal index features of
`models.datasets.REGIME_FEATURES`, trained on the index's whole history up to the
training end (SPX from 1999 when the source has it).

Everything fitted comes from the training rows: the regime thresholds
(`models.labels.RegimeThresholds`: q70 / q60 / q30), the median fill and robust scaling
(stored as buffers inside the exported network, so serving feeds raw features) and the
weights: full-batch L-BFGS on the mean cross-entropy plus an L2 penalty on the weights (a
convex problem for the linear model: the same data give the same network). Seeds are
fixed and training runs single-threaded.

Skill, judged once on the out-of-time rows (`finish`): macro-F1 against the macro-F1 of
always answering the training window's majority class. The artifact `regime_skill.json`
records both, the class balance in and out of the window, and `skilled` (F1 above the
baseline); the decision policy reads the model's regime only when it is skilled and the
rule-based regime (`core.regimes`) otherwise. Logged with `mlflow.pytorch` as a
`torch.export` archive (no pickle); the network outputs class probabilities."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from core.errors import DataValidationError
from models.datasets import TrainingData
from models.labels import RegimeThresholds, regime_measure_names
from models.metrics import ComparisonMetric, macro_f1
from models.plots import confusion
from models.schema import INPUTS_FILE, REGIME_CLASSIFIER, REGIME_COLUMNS, REGIME_SKILL_FILE
from models.template import LoadedModels, TrainableModel
from models.tracker import LoggedModel, TrackedRun, scratch_dir


class RegimeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    hidden: tuple[int, ...] = ()  # () = softmax regression
    l2: float = Field(3e-4, ge=0)  # on the mean loss; ~ scikit-learn C = 0.5 at 3,000 rows
    max_iterations: int = Field(500, ge=1)
    clip_z: float = Field(10.0, gt=0)


class RegimeNetwork(nn.Module):
    """Raw market features → regime probabilities. Missing values become the training
    median; features are centred and scaled with training statistics."""

    center: torch.Tensor
    scale: torch.Tensor

    def __init__(
        self, center: torch.Tensor, scale: torch.Tensor, hidden: tuple[int, ...],
        clip_z: float,
    ) -> None:
        super().__init__()
        self.register_buffer("center", center)
        self.register_buffer("scale", scale)
        self.clip_z = clip_z
        layers: list[nn.Module] = []
        width = center.shape[0]
        for size in hidden:
            layers += [nn.Linear(width, size), nn.Tanh()]
            width = size
        layers.append(nn.Linear(width, len(REGIME_COLUMNS)))
        self.body = nn.Sequential(*layers)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        filled = torch.where(torch.isnan(x), self.center, x)
        z = torch.clamp((filled - self.center) / self.scale, -self.clip_z, self.clip_z)
        return self.body(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.logits(x), dim=1)


@dataclass(frozen=True)
class RegimeSkill:
    """Out-of-time macro-F1 against the majority-class baseline."""

    macro_f1: float
    majority_macro_f1: float
    balance_in_window: dict[str, float]
    balance_out_of_time: dict[str, float]
    rows: int

    @property
    def skilled(self) -> bool:
        return bool(self.macro_f1 > self.majority_macro_f1)

    def as_dict(self) -> dict[str, Any]:
        return {
            "macro_f1": self.macro_f1,
            "majority_macro_f1": self.majority_macro_f1,
            "skilled": self.skilled,
            "balance_in_window": self.balance_in_window,
            "balance_out_of_time": self.balance_out_of_time,
            "rows": self.rows,
        }


@dataclass(frozen=True)
class _Fitted:
    network: RegimeNetwork
    thresholds: RegimeThresholds
    majority_class: int
    balance: dict[str, float]
    skill: RegimeSkill | None = None

    def probabilities(self, X: pd.DataFrame) -> np.ndarray:
        self.network.eval()
        with torch.no_grad():
            tensor = torch.from_numpy(X.to_numpy(dtype=np.float32))
            return self.network(tensor).numpy()


@contextlib.contextmanager
def _deterministic_torch(seed: int) -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one thread: identical float summation order every run
    torch.manual_seed(seed)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def class_balance(classes: np.ndarray) -> dict[str, float]:
    """Share of each regime among labelled rows (-1 = unlabelled, ignored)."""
    known = classes[classes >= 0]
    counts = np.bincount(known, minlength=len(REGIME_COLUMNS)) / max(len(known), 1)
    return {name: float(share) for name, share in zip(REGIME_COLUMNS, counts, strict=True)}


class RegimeModel(TrainableModel):
    name: ClassVar[str] = REGIME_CLASSIFIER
    headline_metrics: ClassVar[tuple[str, ...]] = ("accuracy", "macro_f1", "majority_accuracy")
    comparison_metric: ClassVar[ComparisonMetric] = ComparisonMetric(
        "regime_macro_f1",
        greater_is_better=True,
        model_type="classifier",
        description="macro-F1 of the predicted regime vs the realized regime",
    )

    def __init__(self, config: RegimeConfig | None = None) -> None:
        self.config = config or RegimeConfig()

    def rows(self, data: TrainingData) -> pd.DataFrame:
        if data.market.empty:
            raise DataValidationError(
                "no market rows: regime labels need an index series (SPX, SPY or COMP) and "
                "mkt_ features",
                where="regime_classifier",
            )
        return data.market

    def inputs(self, data: TrainingData) -> list[str]:
        return list(data.market_features)

    def label_definition(self, data: TrainingData) -> str:
        return f"{data.index_symbol} " + RegimeThresholds(data.regime_horizon).describe()

    def params(self) -> dict[str, Any]:
        return {"estimator": "torch softmax regression" if not self.config.hidden
                else "torch MLP", **self.config.model_dump()}

    def fit(self, train: pd.DataFrame, inputs: list[str], seed: int) -> Any:
        horizon = _horizon(train)
        thresholds = RegimeThresholds(horizon).fit(train)
        classes = thresholds.classify(train)
        known = classes >= 0
        balance = class_balance(classes)
        missing = [name for name, share in balance.items() if share == 0]
        if missing:
            raise DataValidationError(
                f"regime classes {missing} never occur in the training window",
                where=self.name,
            )
        X = train[inputs].to_numpy(dtype=np.float32)[known]
        y = classes[known]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-missing columns → 0 / 1
            center = np.nanmedian(X, axis=0)
            q75, q25 = np.nanpercentile(X, [75, 25], axis=0)
        center = np.where(np.isfinite(center), center, 0.0)
        scale = (q75 - q25) / 1.349
        scale = np.where(np.isfinite(scale) & (scale > 1e-9), scale, 1.0)
        with _deterministic_torch(seed):
            network = RegimeNetwork(
                torch.tensor(center, dtype=torch.float32),
                torch.tensor(scale, dtype=torch.float32),
                tuple(self.config.hidden), self.config.clip_z,
            )
            self._train(network, X, y)
        network.eval()
        counts = np.bincount(y, minlength=len(REGIME_COLUMNS))
        return _Fitted(network, thresholds, int(np.argmax(counts)), balance)

    def _train(self, network: RegimeNetwork, X: np.ndarray, classes: np.ndarray) -> None:
        features = torch.from_numpy(X)
        target = torch.from_numpy(classes.astype(np.int64))
        weights = [p for name, p in network.named_parameters() if name.endswith("weight")]
        optimizer = torch.optim.LBFGS(
            network.parameters(), lr=1.0, max_iter=self.config.max_iterations,
            tolerance_grad=1e-7, tolerance_change=1e-10, line_search_fn="strong_wolfe",
        )
        loss_fn = nn.CrossEntropyLoss()

        def closure() -> torch.Tensor:
            optimizer.zero_grad()
            loss = loss_fn(network.logits(features), target)
            loss = loss + self.config.l2 * sum((w**2).sum() for w in weights)
            loss.backward()
            return loss

        network.train()
        optimizer.step(closure)

    def evaluate(
        self, fitted: Any, test: pd.DataFrame, inputs: list[str], data: TrainingData
    ) -> dict[str, float]:
        from sklearn.metrics import accuracy_score

        skill = _skill(fitted, test, inputs)
        actual = fitted.thresholds.classify(test)  # thresholds from the training window
        known = actual >= 0
        predicted = fitted.probabilities(test[inputs]).argmax(axis=1)
        metrics = {
            "accuracy": float(accuracy_score(actual[known], predicted[known])),
            "macro_f1": skill.macro_f1,
            "majority_macro_f1": skill.majority_macro_f1,
            "majority_accuracy": float((actual[known] == fitted.majority_class).mean()),
            "skilled": float(skill.skilled),
        }
        for regime in REGIME_COLUMNS:
            metrics[f"share_{regime}"] = skill.balance_out_of_time[regime]
            metrics[f"train_share_{regime}"] = fitted.balance[regime]
        return metrics

    def finish(
        self, fitted: Any, test: pd.DataFrame, inputs: list[str], data: TrainingData
    ) -> Any:
        return replace(fitted, skill=_skill(fitted, test, inputs))

    def figures(
        self, fitted: Any, test: pd.DataFrame, inputs: list[str], data: TrainingData
    ) -> dict[str, Any]:
        from sklearn.metrics import confusion_matrix

        actual = fitted.thresholds.classify(test)
        predicted = fitted.probabilities(test[inputs]).argmax(axis=1)
        matrix = confusion_matrix(actual, predicted, labels=list(range(len(REGIME_COLUMNS))))
        return {"confusion_matrix": confusion(matrix, REGIME_COLUMNS,
                                              "Regime confusion (out of time)")}

    def artifacts(self, fitted: Any) -> dict[str, Any]:
        found = {"regime_thresholds": {**fitted.thresholds.as_dict(),
                                       "definition": fitted.thresholds.describe(),
                                       "balance_in_window": fitted.balance}}
        if fitted.skill is not None:
            found["regime_skill"] = fitted.skill.as_dict()
        return found

    def comparison_frame(
        self, model_set: LoadedModels, data: TrainingData, out_of_time_start: pd.Timestamp
    ) -> pd.DataFrame:
        """Regime codes (argmax vs realized) on the market dates of the window; the realized
        regimes use thresholds fitted on the dates before it only."""
        rows = data.market.sort_values("timestamp").reset_index(drop=True)
        before = rows[rows["timestamp"] < out_of_time_start]
        window = rows[rows["timestamp"] >= out_of_time_start].reset_index(drop=True)
        codes = RegimeThresholds(data.regime_horizon).fit(before).classify(window)
        realized = pd.Series([REGIME_COLUMNS[c] if c >= 0 else None for c in codes])
        # Only the numeric model inputs: the loaders convert the whole frame to floats.
        probabilities = model_set.regime_probabilities(window[list(data.market_features)])
        known = realized.notna().to_numpy()
        names = list(probabilities.columns)
        target = realized[known].map({name: index for index, name in enumerate(names)})
        if target.isna().any():
            raise DataValidationError(
                f"unknown regime labels {sorted(set(realized[known]) - set(names))}",
                where=self.name,
            )
        predicted = probabilities.to_numpy().argmax(axis=1)[known]
        return pd.DataFrame(
            {"prediction": predicted.astype(int), "target": target.astype(int).to_numpy()}
        )

    def comparison_score(self, predictions: pd.Series, targets: pd.Series) -> float:
        return macro_f1(predictions, targets)

    def log_model(
        self, run: TrackedRun, fitted: Any, example: pd.DataFrame, inputs: list[str],
        train: pd.DataFrame,
    ) -> LoggedModel:
        import json

        from mlflow.models import infer_signature

        array = example.to_numpy(dtype=np.float32)
        # pt2 archives need a tensor signature, which has no column names: the ordered
        # input columns travel next to the model instead.
        signature = infer_signature(array, fitted.probabilities(example))
        run.log_params({f"threshold_{k}": v for k, v in fitted.thresholds.as_dict().items()})
        with scratch_dir() as folder:
            names = folder / INPUTS_FILE
            names.write_text(json.dumps(inputs))
            extra = [str(names)]
            if fitted.skill is not None:
                skill = folder / REGIME_SKILL_FILE
                skill.write_text(json.dumps(fitted.skill.as_dict()))
                extra.append(str(skill))
            return run.log_model(
                "pytorch",
                fitted.network,
                signature=signature,
                input_example=array,
                serialization_format="pt2",
                extra_files=extra,
                pip_requirements=[f"torch=={torch.__version__.split('+')[0]}"],
            )


def _skill(fitted: _Fitted, test: pd.DataFrame, inputs: list[str]) -> RegimeSkill:
    actual = fitted.thresholds.classify(test)
    known = actual >= 0
    predicted = fitted.probabilities(test[inputs]).argmax(axis=1)[known]
    actual = actual[known]
    majority = np.full(len(actual), fitted.majority_class)
    return RegimeSkill(
        macro_f1=macro_f1(pd.Series(predicted), pd.Series(actual)),
        majority_macro_f1=macro_f1(pd.Series(majority), pd.Series(actual)),
        balance_in_window=dict(fitted.balance),
        balance_out_of_time=class_balance(actual),
        rows=len(actual),
    )


def _horizon(frame: pd.DataFrame) -> int:
    column = next(c for c in frame.columns if c.startswith("fwd_vol_"))
    horizon = int(column.rsplit("_", 1)[1])
    if regime_measure_names(horizon)[1] not in frame.columns:
        raise DataValidationError(f"missing fwd_trend_{horizon}", where="regime_classifier")
    return horizon
