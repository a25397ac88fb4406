"""The one training template: split → fit → evaluate → log → register. Each model
(`signal_quality`, `exit_optimizer`, `regime`, `risk`) subclasses `TrainableModel` and
writes only what differs: which rows and columns it learns from, its estimator, its
metrics, its plots, how its estimator is serialized, and the one metric on which a
retrained candidate must beat the champion (`models.comparison`).

Splits are time-ordered walk-forward with purging and an embargo, never shuffled:
- the last `out_of_time_fraction` of the distinct timestamps is the out-of-time window.
  It is evaluated once, by the final model, and never used to choose anything;
- the rest (the development window) is cut into `n_folds + 1` consecutive blocks; fold k
  trains on blocks 0..k-1 (expanding) and tests on block k;
- purging: a training row whose label is still unknown at the test window's start
  (`label_end >= test_start`) is dropped — its label overlaps the test period;
- embargo: training rows in the last `embargo_bars` distinct timestamps before the test
  window are dropped too, so serially correlated features at the boundary do not leak.
Everything a model fits (imputers, scalers, thresholds, calibrators) is fitted inside
`fit`, which only ever receives training rows. After the folds, `select` may settle a
choice they were run to make (the signal model's estimator); after the out-of-time
evaluation, `finish` may record what that slice says about the fitted state (a skill
check) without refitting on it."""

from __future__ import annotations

import hashlib
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from core.bars import DAILY, check_timeframe
from core.errors import DataValidationError
from models.datasets import TrainingData
from models.metrics import ComparisonMetric
from models.policy import FittedPolicy
from models.registry import TIMEFRAME_KEY, ModelRegistry
from models.tracker import LoggedModel, TrackedRun, Tracker


class WalkForwardSplit(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    n_folds: int = Field(4, ge=1)
    out_of_time_fraction: float = Field(0.2, gt=0, lt=1)
    embargo_bars: int = Field(5, ge=0)
    min_train_rows: int = Field(30, ge=1)

    def split(
        self, timestamps: pd.Series, label_end: pd.Series
    ) -> tuple[list[Fold], Fold]:
        """(development folds, out-of-time fold) as positional row indices."""
        stamps = utc_naive(timestamps)
        ends = utc_naive(label_end)
        if len(stamps) == 0:
            raise DataValidationError("no rows to split", where="walk-forward split")
        if (np.diff(stamps.astype("int64")) < 0).any():
            raise DataValidationError("rows must be sorted by time", where="walk-forward split")
        distinct = np.unique(stamps)
        oot_at = int(len(distinct) * (1 - self.out_of_time_fraction))
        if oot_at < self.n_folds + 1 or oot_at >= len(distinct):
            raise DataValidationError(
                f"{len(distinct)} distinct timestamps are too few for {self.n_folds} folds "
                "and an out-of-time window",
                where="walk-forward split",
            )
        blocks = np.array_split(np.arange(oot_at), self.n_folds + 1)
        folds = []
        for number, block in enumerate(blocks[1:], start=1):
            test_start, test_stop = distinct[block[0]], distinct[block[-1]]
            test = np.flatnonzero((stamps >= test_start) & (stamps <= test_stop))
            train = self._train_before(stamps, ends, distinct, block[0])
            folds.append(Fold(number, train, test))
        oot_test = np.flatnonzero(stamps >= distinct[oot_at])
        oot = Fold(0, self._train_before(stamps, ends, distinct, oot_at), oot_test)
        if len(oot.train) < self.min_train_rows:
            raise DataValidationError(
                f"the out-of-time fit has {len(oot.train)} training rows after purging "
                f"(need ≥ {self.min_train_rows})",
                where="walk-forward split",
            )
        # Early folds of a short history can be too small to fit: they are skipped (the
        # fold numbers logged say which ran), as long as one development fold remains.
        usable = [f for f in folds if len(f.train) >= self.min_train_rows and len(f.test)]
        if not usable:
            raise DataValidationError(
                f"no development fold has {self.min_train_rows} training rows after purging "
                f"({len(stamps)} rows over {len(distinct)} timestamps)",
                where="walk-forward split",
            )
        return usable, oot

    def _train_before(
        self, stamps: np.ndarray, ends: np.ndarray, distinct: np.ndarray, test_pos: int
    ) -> np.ndarray:
        test_start = distinct[test_pos]
        embargo_start = distinct[max(test_pos - self.embargo_bars, 0)]
        cutoff = min(embargo_start, test_start)
        known = ends < test_start  # purging: label fully known before the test window
        return np.flatnonzero((stamps < cutoff) & known)


def utc_naive(values: pd.Series) -> np.ndarray:
    """UTC timestamps as a datetime64[ns] array (comparable, sortable, fast)."""
    stamps = pd.to_datetime(pd.Series(values), utc=True)
    return stamps.dt.tz_localize(None).to_numpy(dtype="datetime64[ns]")


@dataclass(frozen=True)
class Fold:
    number: int  # 1..n for development folds, 0 for out-of-time
    train: np.ndarray
    test: np.ndarray


@dataclass(frozen=True)
class TrainingContext:
    """Provenance the template records with every run."""

    source: str
    code_version: str = "unknown"
    seed: int = 42
    split: WalkForwardSplit = field(default_factory=WalkForwardSplit)
    # The bars the model learns from (`core.bars.TIMEFRAMES`): recorded on the run, the
    # registered version and the logged model, so the service serves it only to engines
    # trading the same bars.
    timeframe: str = DAILY

    def __post_init__(self) -> None:
        check_timeframe(self.timeframe)


@dataclass(frozen=True)
class TrainingResult:
    name: str
    version: str
    run_id: str
    metrics: dict[str, float]  # out-of-time
    fold_metrics: list[dict[str, float]]
    aliases: dict[str, str]
    seconds: float
    window: tuple[str, str]


class LoadedModels(Protocol):
    """The predictions a comparison asks of loaded models (`models.loading.ModelSet`)."""

    policy: FittedPolicy | None

    def win_probability(self, X: pd.DataFrame) -> np.ndarray: ...

    def out_of_distribution(self, X: pd.DataFrame) -> np.ndarray: ...

    def exits(self, X: pd.DataFrame) -> pd.DataFrame: ...

    def regime_probabilities(self, X: pd.DataFrame) -> pd.DataFrame: ...

    def drawdown(self, X: pd.DataFrame) -> pd.DataFrame: ...


class TrainableModel(ABC):
    """What one model contributes to the template. `__init__` stores parameters only."""

    name: ClassVar[str]
    headline_metrics: ClassVar[tuple[str, ...]]
    comparison_metric: ClassVar[ComparisonMetric]

    @abstractmethod
    def rows(self, data: TrainingData) -> pd.DataFrame:
        """The rows it learns from, with `timestamp` and `label_end`."""

    @abstractmethod
    def inputs(self, data: TrainingData) -> list[str]:
        """Ordered input columns."""

    @abstractmethod
    def label_definition(self, data: TrainingData) -> str: ...

    @abstractmethod
    def params(self) -> dict[str, Any]: ...

    @abstractmethod
    def fit(self, train: pd.DataFrame, inputs: list[str], seed: int) -> Any:
        """Fit on training rows only; return the fitted estimator."""

    @abstractmethod
    def evaluate(
        self, fitted: Any, test: pd.DataFrame, inputs: list[str], data: TrainingData
    ) -> dict[str, float]: ...

    def figures(
        self, fitted: Any, test: pd.DataFrame, inputs: list[str], data: TrainingData
    ) -> dict[str, Any]:
        return {}

    def artifacts(self, fitted: Any) -> dict[str, Any]:
        """JSON artifacts describing the fitted state (thresholds, …)."""
        return {}

    def select(
        self, fold_metrics: list[dict[str, float]]
    ) -> tuple[TrainableModel, dict[str, Any]]:
        """What the development folds decide before the final fit (e.g. which estimator):
        the model to fit out of time (a new object, or this one) and the choice as
        parameters to log. Called once, after the folds."""
        return self, {}

    def finish(
        self, fitted: Any, test: pd.DataFrame, inputs: list[str], data: TrainingData
    ) -> Any:
        """The fitted state to log, given the out-of-time rows it never fitted on (e.g.
        a skill check that switches part of it off). Never refits on them."""
        return fitted

    @abstractmethod
    def log_model(
        self, run: TrackedRun, fitted: Any, example: pd.DataFrame, inputs: list[str],
        train: pd.DataFrame,
    ) -> LoggedModel: ...

    @abstractmethod
    def comparison_frame(
        self, model_set: LoadedModels, data: TrainingData, out_of_time_start: pd.Timestamp
    ) -> pd.DataFrame:
        """The loaded model's predictions on the rows from `out_of_time_start` on, next to
        what happened: a `prediction`/`target` frame scored by `comparison_score`."""

    @abstractmethod
    def comparison_score(self, predictions: pd.Series, targets: pd.Series) -> float:
        """`comparison_metric` of predictions against targets."""


class StampedRun:
    """A `TrackedRun` whose logged model carries `metadata` in its MLmodel file (the
    timeframe), whatever flavor the model logs itself with: what `models.loading` reads
    back without asking the registry."""

    def __init__(self, run: TrackedRun, metadata: dict[str, str]) -> None:
        self._run = run
        self.run_id = run.run_id
        self.metadata = metadata

    def log_params(self, params: Mapping[str, Any]) -> None:
        self._run.log_params(params)

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        self._run.log_metrics(metrics, step)

    def set_tags(self, tags: Mapping[str, str]) -> None:
        self._run.set_tags(tags)

    def log_figure(self, figure: Any, artifact_file: str) -> None:
        self._run.log_figure(figure, artifact_file)

    def log_dict(self, payload: Mapping[str, Any], artifact_file: str) -> None:
        self._run.log_dict(payload, artifact_file)

    def log_file(self, path: Path, artifact_dir: str | None = None) -> None:
        self._run.log_file(path, artifact_dir)

    def log_model(self, flavor: str, model: Any, **kwargs: Any) -> LoggedModel:
        metadata = {**(kwargs.pop("metadata", None) or {}), **self.metadata}
        return self._run.log_model(flavor, model, metadata=metadata, **kwargs)


def feature_hash(names: list[str]) -> str:
    return hashlib.sha256(",".join(names).encode()).hexdigest()[:12]


def input_example(train: pd.DataFrame, inputs: list[str], rows: int = 5) -> pd.DataFrame:
    """A few training rows with missing values filled by the training median (JSON-safe)."""
    sample = train[inputs].tail(rows).astype("float64")
    medians = train[inputs].median(numeric_only=True)
    return sample.fillna(medians).fillna(0.0).reset_index(drop=True)


def train_model(
    model: TrainableModel,
    data: TrainingData,
    *,
    tracker: Tracker,
    registry: ModelRegistry | None,
    context: TrainingContext,
    progress: Callable[[str], None] | None = None,
) -> TrainingResult:
    """Split → fit per fold → evaluate → final fit → out-of-time evaluation → log → register."""
    started = time.perf_counter()
    say = progress or (lambda _message: None)
    rows = model.rows(data).sort_values("timestamp", kind="stable").reset_index(drop=True)
    inputs = model.inputs(data)
    folds, oot = context.split.split(rows["timestamp"], rows["label_end"])
    window = (str(rows["timestamp"].min().date()), str(rows["timestamp"].max().date()))
    oot_start = rows["timestamp"].iloc[oot.test].min()
    tags = {
        "model": model.name,
        "data_source": context.source,
        "data_window": f"{window[0]}..{window[1]}",
        "out_of_time_start": str(oot_start.date()),
        "feature_list": ",".join(inputs),
        "feature_hash": feature_hash(inputs),
        "label_definition": model.label_definition(data),
        "code_version": context.code_version,
        "rows": str(len(rows)),
        TIMEFRAME_KEY: context.timeframe,
    }
    with tracker.run(model.name, f"{model.name}-{window[1]}", tags) as run:
        run.log_params({
            **model.params(),
            "seed": context.seed,
            "n_folds": context.split.n_folds,
            "out_of_time_fraction": context.split.out_of_time_fraction,
            "embargo_bars": context.split.embargo_bars,
            "n_features": len(inputs),
            TIMEFRAME_KEY: context.timeframe,
        })
        fold_metrics = []
        for fold in folds:
            say(f"{model.name}: fold {fold.number}/{context.split.n_folds}")
            fitted = model.fit(rows.iloc[fold.train], inputs, context.seed)
            metrics = model.evaluate(fitted, rows.iloc[fold.test], inputs, data)
            fold_metrics.append(metrics)
            run.log_metrics({f"cv_{k}": v for k, v in metrics.items()}, step=fold.number)
        for key in fold_metrics[0]:
            values = [m[key] for m in fold_metrics if key in m and np.isfinite(m[key])]
            if values:
                run.log_metrics({f"cv_mean_{key}": float(np.mean(values))})
        final, chosen = model.select(fold_metrics)
        if chosen:
            run.log_params({f"selected_{k}": v for k, v in chosen.items()})
        say(f"{model.name}: out-of-time fit")
        train = rows.iloc[oot.train]
        test = rows.iloc[oot.test]
        fitted = final.fit(train, inputs, context.seed)
        metrics = final.evaluate(fitted, test, inputs, data)
        fitted = final.finish(fitted, test, inputs, data)
        metrics["train_rows"] = float(len(train))
        metrics["test_rows"] = float(len(test))
        run.log_metrics({f"oot_{k}": v for k, v in metrics.items()})
        for artifact, figure in final.figures(fitted, test, inputs, data).items():
            run.log_figure(figure, f"plots/{artifact}.png")
        run.log_dict({"features": inputs, "hash": feature_hash(inputs)}, "features.json")
        for artifact, payload in final.artifacts(fitted).items():
            run.log_dict(payload, f"{artifact}.json")
        stamped = StampedRun(run, {TIMEFRAME_KEY: context.timeframe})
        logged = final.log_model(stamped, fitted, input_example(train, inputs), inputs, train)
        run_id = run.run_id
    version, aliases = "", {}
    if registry is not None:
        card = model_card(model, data, context, metrics, tags)
        version = registry.register(
            model.name, logged.model_uri, run_id=run_id, model_card=card,
            tags={"data_window": tags["data_window"], "feature_hash": tags["feature_hash"],
                  "data_source": context.source, "code_version": context.code_version,
                  TIMEFRAME_KEY: context.timeframe},
        )
        aliases = registry.aliases(model.name)
    return TrainingResult(
        name=model.name,
        version=version,
        run_id=run_id,
        metrics=metrics,
        fold_metrics=fold_metrics,
        aliases=aliases,
        seconds=time.perf_counter() - started,
        window=window,
    )


def model_card(
    model: TrainableModel,
    data: TrainingData,
    context: TrainingContext,
    metrics: dict[str, float],
    tags: dict[str, str],
) -> str:
    """The registered version's description: what it is, on what data, how good."""
    lines = [
        f"# {model.name}",
        f"Data: {context.source} ({context.timeframe} bars), window {tags['data_window']}, "
        "out of time from "
        f"{tags['out_of_time_start']} ({int(metrics['test_rows'])} rows, trained on "
        f"{int(metrics['train_rows'])}).",
        f"Label: {tags['label_definition']}",
        f"Features: {len(tags['feature_list'].split(','))} (hash {tags['feature_hash']}).",
        f"Code: {context.code_version}; seed {context.seed}.",
        "Out-of-time metrics: "
        + ", ".join(f"{k}={metrics[k]:.4f}" for k in model.headline_metrics if k in metrics),
    ]
    return "\n\n".join(lines)
