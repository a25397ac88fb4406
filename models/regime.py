"""`regime_classifier`: the market regime over the next K index bars (trending, ranging,
volatile, calm) from today's market features. A small PyTorch MLP on CPU.

Everything fitted comes from the training rows: the regime thresholds
(`models.labels.RegimeThresholds`), the median fill and robust scaling (stored as buffers
inside the exported network, so serving feeds raw features), and early stopping on the
last 20% of the training window (time-ordered, purged). Seeds are fixed and training runs
single-threaded, so the same data gives the same network. Logged with `mlflow.pytorch` as
a `torch.export` archive (no pickle); the network outputs class probabilities."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
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
from models.schema import INPUTS_FILE, REGIME_CLASSIFIER, REGIME_COLUMNS
from models.template import LoadedModels, TrainableModel, utc_naive
from models.tracker import LoggedModel, TrackedRun, scratch_dir


class RegimeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    hidden: tuple[int, ...] = (64, 32)
    dropout: float = Field(0.1, ge=0, lt=1)
    learning_rate: float = Field(1e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    batch_size: int = Field(128, ge=1)
    max_epochs: int = Field(150, ge=1)
    patience: int = Field(15, ge=1)
    validation_fraction: float = Field(0.2, gt=0, lt=1)
    clip_z: float = Field(10.0, gt=0)


class RegimeNetwork(nn.Module):
    """Raw market features → regime probabilities. Missing values become the training
    median; features are centred and scaled with training statistics."""

    center: torch.Tensor
    scale: torch.Tensor

    def __init__(
        self, center: torch.Tensor, scale: torch.Tensor, hidden: tuple[int, ...],
        dropout: float, clip_z: float,
    ) -> None:
        super().__init__()
        self.register_buffer("center", center)
        self.register_buffer("scale", scale)
        self.clip_z = clip_z
        layers: list[nn.Module] = []
        width = center.shape[0]
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU(), nn.Dropout(dropout)]
            width = size
        layers.append(nn.Linear(width, len(REGIME_COLUMNS)))
        self.body = nn.Sequential(*layers)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        filled = torch.where(torch.isnan(x), self.center, x)
        z = torch.clamp((filled - self.center) / self.scale, -self.clip_z, self.clip_z)
        return self.body(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.logits(x), dim=1)


class _Fitted:
    def __init__(self, network: RegimeNetwork, thresholds: RegimeThresholds, epochs: int,
                 majority_class: int) -> None:
        self.network = network
        self.thresholds = thresholds
        self.epochs = epochs
        self.majority_class = majority_class

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
        return {"estimator": "torch MLP", **self.config.model_dump()}

    def fit(self, train: pd.DataFrame, inputs: list[str], seed: int) -> Any:
        horizon = _horizon(train)
        thresholds = RegimeThresholds(horizon).fit(train)
        classes = thresholds.classify(train)
        X = train[inputs].to_numpy(dtype=np.float32)
        stamps = utc_naive(train["timestamp"])
        distinct = np.unique(stamps)
        valid_start = distinct[int(len(distinct) * (1 - self.config.validation_fraction))]
        fit_rows = (stamps < valid_start) & (utc_naive(train["label_end"]) < valid_start)
        valid_rows = stamps >= valid_start
        if fit_rows.sum() < 10 or valid_rows.sum() < 5:
            fit_rows = valid_rows = np.ones(len(train), dtype=bool)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-missing columns → 0 / 1
            center = np.nanmedian(X[fit_rows], axis=0)
            q75, q25 = np.nanpercentile(X[fit_rows], [75, 25], axis=0)
        center = np.where(np.isfinite(center), center, 0.0)
        scale = (q75 - q25) / 1.349
        scale = np.where(np.isfinite(scale) & (scale > 1e-9), scale, 1.0)
        counts = np.bincount(classes[fit_rows], minlength=len(REGIME_COLUMNS)).astype(float)
        weights = counts.sum() / np.maximum(counts, 1.0) / len(REGIME_COLUMNS)
        with _deterministic_torch(seed):
            network = RegimeNetwork(
                torch.tensor(center, dtype=torch.float32),
                torch.tensor(scale, dtype=torch.float32),
                tuple(self.config.hidden), self.config.dropout, self.config.clip_z,
            )
            epochs = self._train(network, X, classes, fit_rows, valid_rows, weights, seed)
        network.eval()
        return _Fitted(network, thresholds, epochs, int(np.argmax(counts)))

    def _train(
        self, network: RegimeNetwork, X: np.ndarray, classes: np.ndarray,
        fit_rows: np.ndarray, valid_rows: np.ndarray, weights: np.ndarray, seed: int,
    ) -> int:
        features = torch.from_numpy(X)
        target = torch.from_numpy(classes.astype(np.int64))
        loss_fn = nn.CrossEntropyLoss(weight=torch.tensor(weights, dtype=torch.float32))
        optimizer = torch.optim.Adam(network.parameters(), lr=self.config.learning_rate,
                                     weight_decay=self.config.weight_decay)
        fit_index = np.flatnonzero(fit_rows)
        valid_x, valid_y = features[valid_rows], target[valid_rows]
        generator = np.random.default_rng(seed)
        best_loss, best_state, best_epoch, stale = float("inf"), None, 0, 0
        for epoch in range(1, self.config.max_epochs + 1):
            network.train()
            order = generator.permutation(fit_index)  # shuffles mini-batches, not time
            for start in range(0, len(order), self.config.batch_size):
                batch = torch.from_numpy(order[start : start + self.config.batch_size])
                optimizer.zero_grad()
                loss = loss_fn(network.logits(features[batch]), target[batch])
                loss.backward()
                optimizer.step()
            network.eval()
            with torch.no_grad():
                valid_loss = float(loss_fn(network.logits(valid_x), valid_y))
            if valid_loss < best_loss - 1e-5:
                best_loss, best_epoch, stale = valid_loss, epoch, 0
                best_state = {k: v.clone() for k, v in network.state_dict().items()}
            else:
                stale += 1
                if stale >= self.config.patience:
                    break
        if best_state is not None:
            network.load_state_dict(best_state)
        return best_epoch

    def evaluate(
        self, fitted: Any, test: pd.DataFrame, inputs: list[str], data: TrainingData
    ) -> dict[str, float]:
        from sklearn.metrics import accuracy_score, f1_score

        actual = fitted.thresholds.classify(test)  # thresholds from the training window
        predicted = fitted.probabilities(test[inputs]).argmax(axis=1)
        labels = list(range(len(REGIME_COLUMNS)))
        metrics = {
            "accuracy": float(accuracy_score(actual, predicted)),
            "macro_f1": float(f1_score(actual, predicted, labels=labels, average="macro",
                                       zero_division=0)),
            "majority_accuracy": float((actual == fitted.majority_class).mean()),
            "epochs": float(fitted.epochs),
        }
        for index, regime in enumerate(REGIME_COLUMNS):
            metrics[f"share_{regime}"] = float((actual == index).mean())
        return metrics

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
        return {"regime_thresholds": {**fitted.thresholds.as_dict(),
                                      "definition": fitted.thresholds.describe()}}

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
            return run.log_model(
                "pytorch",
                fitted.network,
                signature=signature,
                input_example=array,
                serialization_format="pt2",
                extra_files=[str(names)],
                pip_requirements=[f"torch=={torch.__version__.split('+')[0]}"],
            )


def _horizon(frame: pd.DataFrame) -> int:
    column = next(c for c in frame.columns if c.startswith("fwd_vol_"))
    horizon = int(column.rsplit("_", 1)[1])
    if regime_measure_names(horizon)[1] not in frame.columns:
        raise DataValidationError(f"missing fwd_trend_{horizon}", where="regime_classifier")
    return horizon
