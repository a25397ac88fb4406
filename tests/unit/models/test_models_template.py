"""The training template: purged, embargoed walk-forward splits; fit only ever sees rows
before its test window whose labels are known by then; every run is logged."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytest

from core.errors import DataValidationError
from models.datasets import TrainingData
from models.labels import ForwardPaths, TripleBarrier
from models.template import (
    TrainableModel,
    TrainingContext,
    WalkForwardSplit,
    train_model,
    utc_naive,
)
from models.tracker import LoggedModel, MlflowTracker, TrackedRun

HORIZON = 5


def _rows(days: int = 200, per_day: int = 3) -> pd.DataFrame:
    stamps = pd.date_range("2015-01-01", periods=days, freq="D", tz="UTC")
    timestamp = np.repeat(stamps, per_day)
    rng = np.random.default_rng(0)
    return pd.DataFrame({
        "timestamp": timestamp,
        "label_end": timestamp + pd.Timedelta(days=HORIZON),
        "x": rng.normal(size=len(timestamp)),
        "y": rng.normal(size=len(timestamp)),
    })


def test_split_is_time_ordered_purged_and_embargoed() -> None:
    rows = _rows()
    split = WalkForwardSplit(n_folds=4, out_of_time_fraction=0.2, embargo_bars=3)
    folds, oot = split.split(rows["timestamp"], rows["label_end"])
    stamps, ends = utc_naive(rows["timestamp"]), utc_naive(rows["label_end"])
    assert len(folds) == 4
    previous_test_start = None
    for fold in [*folds, oot]:
        assert not set(fold.train) & set(fold.test)
        test_start = stamps[fold.test].min()
        assert stamps[fold.train].max() < test_start
        assert ends[fold.train].max() < test_start  # purged: labels known before test
        gap_days = (test_start - stamps[fold.train].max()) / np.timedelta64(1, "D")
        assert gap_days >= HORIZON + 1  # purge (5 days) dominates the 3-bar embargo
        if fold.number and previous_test_start is not None:
            assert test_start > previous_test_start  # walks forward
        previous_test_start = test_start
    oot_start = stamps[oot.test].min()
    assert all(stamps[f.test].max() < oot_start for f in folds)  # OOT never in a fold
    assert len(np.unique(stamps[oot.test])) == 40  # the last 20% of 200 days


def test_embargo_widens_the_gap_when_labels_are_short() -> None:
    rows = _rows()
    rows["label_end"] = rows["timestamp"]  # labels known at once: only the embargo acts
    folds, _ = WalkForwardSplit(n_folds=2, embargo_bars=7).split(rows["timestamp"],
                                                                  rows["label_end"])
    stamps = utc_naive(rows["timestamp"])
    for fold in folds:
        gap = (stamps[fold.test].min() - stamps[fold.train].max()) / np.timedelta64(1, "D")
        assert gap == 8  # 7 embargoed days + the first test day


def test_split_rejects_unsorted_or_tiny_input() -> None:
    rows = _rows(days=10)
    with pytest.raises(DataValidationError, match="sorted"):
        WalkForwardSplit().split(rows["timestamp"][::-1], rows["label_end"][::-1])
    with pytest.raises(DataValidationError, match="training rows"):
        WalkForwardSplit(n_folds=4, min_train_rows=100).split(rows["timestamp"],
                                                              rows["label_end"])


def test_folds_too_small_to_fit_are_skipped() -> None:
    rows = _rows(days=60)
    folds, oot = WalkForwardSplit(n_folds=4, min_train_rows=40).split(rows["timestamp"],
                                                                      rows["label_end"])
    assert [fold.number for fold in folds] == [2, 3, 4]  # fold 1 trains on 15 rows
    assert all(len(fold.train) >= 40 for fold in [*folds, oot])


class _RecordingModel(TrainableModel):
    """A least-squares model that records what each fit call was given."""

    name: ClassVar[str] = "recording"
    headline_metrics: ClassVar[tuple[str, ...]] = ("mae",)

    def __init__(self, rows: pd.DataFrame) -> None:
        self._rows = rows
        self.fits: list[pd.DataFrame] = []
        self.tests: list[pd.DataFrame] = []

    def rows(self, data: TrainingData) -> pd.DataFrame:
        return self._rows

    def inputs(self, data: TrainingData) -> list[str]:
        return ["x"]

    def label_definition(self, data: TrainingData) -> str:
        return "y"

    def params(self) -> dict[str, Any]:
        return {"kind": "least squares"}

    def fit(self, train: pd.DataFrame, inputs: list[str], seed: int) -> Any:
        self.fits.append(train)
        return np.polyfit(train["x"], train["y"], 1)

    def evaluate(self, fitted: Any, test: pd.DataFrame, inputs: list[str],
                 data: TrainingData) -> dict[str, float]:
        self.tests.append(test)
        return {"mae": float(np.abs(np.polyval(fitted, test["x"]) - test["y"]).mean())}

    def log_model(self, run: TrackedRun, fitted: Any, example: pd.DataFrame,
                  inputs: list[str], train: pd.DataFrame) -> LoggedModel:
        run.log_dict({"coefficients": list(map(float, fitted))}, "model/coefficients.json")
        return LoggedModel(model_uri=f"runs:/{run.run_id}/model", run_id=run.run_id)

    def comparison_frame(self, model_set: Any, data: TrainingData,
                         out_of_time_start: pd.Timestamp) -> pd.DataFrame:
        raise NotImplementedError("the template never compares")

    def comparison_score(self, predictions: pd.Series, targets: pd.Series) -> float:
        raise NotImplementedError("the template never compares")


def _empty_data() -> TrainingData:
    empty = np.zeros((0, HORIZON))
    return TrainingData(
        events=pd.DataFrame(), paths=ForwardPaths(empty, empty, empty, empty, np.zeros(0),
                                                  np.zeros(0)),
        market=pd.DataFrame(), signal_features=[], market_features=[],
        barrier=TripleBarrier(), regime_horizon=20, index_symbol=None, dropped_events=0,
    )


def test_fit_never_sees_rows_after_its_window(tmp_path: Path) -> None:
    rows = _rows()
    model = _RecordingModel(rows)
    tracker = MlflowTracker(f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "artifacts")
    result = train_model(model, _empty_data(), tracker=tracker, registry=None,
                         context=TrainingContext(source="synthetic",
                                                 split=WalkForwardSplit(n_folds=3),
                                                 timeframe="1Min"))
    assert len(model.fits) == 4  # three folds + the out-of-time fit
    for train, test in zip(model.fits, model.tests, strict=True):
        assert train["timestamp"].max() < test["timestamp"].min()
        assert train["label_end"].max() < test["timestamp"].min()
    assert set(result.metrics) >= {"mae", "train_rows", "test_rows"}
    assert len(result.fold_metrics) == 3

    from mlflow import MlflowClient

    run = MlflowClient(tracking_uri=tracker.tracking_uri).get_run(result.run_id)
    assert run.data.tags["feature_list"] == "x"
    assert run.data.tags["data_window"] == "2015-01-01..2015-07-19"
    assert "oot_mae" in run.data.metrics
    assert run.data.tags["timeframe"] == "1Min"  # the bars it learned from, on the run
    assert run.data.params["timeframe"] == "1Min"
    history = MlflowClient(tracking_uri=tracker.tracking_uri).get_metric_history(
        result.run_id, "cv_mae")
    assert [m.step for m in history] == [1, 2, 3]


def test_the_timeframe_is_checked_and_stamped_on_the_logged_model() -> None:
    from models.template import StampedRun

    assert TrainingContext(source="daily").timeframe == "1Day"  # the default
    with pytest.raises(DataValidationError, match="unknown timeframe '1Sec'"):
        TrainingContext(source="x", timeframe="1Sec")

    class _Run:
        def __init__(self) -> None:
            self.run_id = "r1"
            self.kwargs: dict[str, Any] = {}

        def log_model(self, flavor: str, model: Any, **kwargs: Any) -> LoggedModel:
            self.kwargs = kwargs
            return LoggedModel(model_uri="models:/m-1", run_id=self.run_id)

    inner = _Run()
    StampedRun(inner, {"timeframe": "1Min"}).log_model(  # type: ignore[arg-type]
        "xgboost", object(), metadata={"note": "kept"}, model_format="ubj")
    assert inner.kwargs == {"metadata": {"note": "kept", "timeframe": "1Min"},
                            "model_format": "ubj"}
