"""The four models trained on small REAL data (the embedded sample bars: AAPL, MSFT, IBM
with the S&P 500 index), logged to a real MLflow SQLite store, registered, and loaded
back for inference the way serving does."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.settings import Settings
from models.datasets import TrainingData
from models.exit_optimizer import ExitOptimizerConfig, ExitOptimizerModel
from models.regime import RegimeConfig, RegimeModel
from models.registry import MODEL_NAMES, ModelRegistry
from models.risk import RiskConfig, RiskModel
from models.signal_quality import SignalQualityConfig, SignalQualityModel
from models.template import (
    TrainableModel,
    TrainingContext,
    TrainingResult,
    WalkForwardSplit,
    train_model,
)
from models.tracker import MlflowTracker

pytestmark = pytest.mark.integration

SPLIT = WalkForwardSplit(n_folds=2, out_of_time_fraction=0.2)


def _small_models() -> list[TrainableModel]:
    return [
        SignalQualityModel(SignalQualityConfig(xgb_n_estimators=60, rf_n_estimators=40)),
        ExitOptimizerModel(ExitOptimizerConfig(n_estimators=30)),
        RegimeModel(RegimeConfig()),
        RiskModel(RiskConfig(n_estimators=30)),
    ]


@pytest.fixture(scope="module")
def sample_data() -> TrainingData:
    from pipelines.training import build_dataset
    from trading.adapters.sample.data import SampleMarketData

    bars = SampleMarketData().history(["AAPL", "MSFT", "IBM", "SPX"], end="2012-12-31")
    stocks = bars.loc[bars["symbol"] != "SPX"].reset_index(drop=True)
    index = bars.loc[bars["symbol"] == "SPX"].reset_index(drop=True)
    return build_dataset(stocks, index, Settings())


@pytest.fixture(scope="module")
def trained(
    sample_data: TrainingData, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, list[TrainingResult]]:
    root = tmp_path_factory.mktemp("mlruns")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    tracker = MlflowTracker(uri, root / "artifacts")
    registry = ModelRegistry(uri)
    context = TrainingContext(source="sample", code_version="test", seed=7, split=SPLIT)
    results = [train_model(model, sample_data, tracker=tracker, registry=registry,
                           context=context) for model in _small_models()]
    return uri, results


def test_dataset_is_point_in_time_and_labelled(sample_data: TrainingData) -> None:
    events = sample_data.events
    assert len(events) > 150
    assert (events["label_end"] > events["timestamp"]).all()
    assert set(events["won_20"].unique()) <= {0, 1}
    assert sample_data.index_symbol == "SPX"
    assert len(sample_data.market) > 2000
    assert "atr_14" not in sample_data.signal_features
    assert all(name.startswith("mkt_") for name in sample_data.market_features)


def test_every_model_registers_a_champion_with_metrics(
    trained: tuple[str, list[TrainingResult]],
) -> None:
    uri, results = trained
    registry = ModelRegistry(uri)
    assert sorted(r.name for r in results) == sorted(MODEL_NAMES)
    for result in results:
        assert registry.aliases(result.name) == {"champion": "1"}
        assert result.metrics["test_rows"] > 0
        card = registry.versions(result.name)[0].description
        assert "Out-of-time metrics" in card
    by_name = {r.name: r.metrics for r in results}
    assert 0.0 <= by_name["signal_quality"]["roc_auc"] <= 1.0
    assert 0.0 <= by_name["regime_classifier"]["macro_f1"] <= 1.0
    assert 0.0 <= by_name["risk_predictor"]["interval_coverage"] <= 1.0
    assert by_name["exit_optimizer"]["fixed_profit_factor"] > 0

    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    run_id = next(r.run_id for r in results if r.name == "signal_quality")
    artifacts = {a.path for a in client.list_artifacts(run_id, "plots")}
    assert artifacts == {"plots/feature_importance.png", "plots/roc_calibration.png"}
    tags = client.get_run(run_id).data.tags
    assert tags["code_version"] == "test"
    assert tags["label_definition"].startswith("won_20: triple barrier")


def test_model_set_predicts_right_shapes_and_ranges(
    trained: tuple[str, list[TrainingResult]], sample_data: TrainingData
) -> None:
    from models.loading import load_model_set

    uri, _ = trained
    model_set = load_model_set(uri, "champion")
    assert model_set.versions == dict.fromkeys(MODEL_NAMES, "1")
    # XGBoost in place, or the forest's ONNX twin (it matched scikit-learn)
    assert model_set.runtimes["signal_quality"] in {"xgboost", "onnxruntime"}
    assert model_set.runtimes["risk_predictor"] == "onnxruntime"
    assert model_set.policy is not None  # fitted with the signal model, loaded with it
    assert model_set.policy.skill is not None
    assert model_set.policy.exits == (2.0, 3.0)
    assert isinstance(model_set.regime_skilled, bool)
    if not model_set.regime_skilled:  # the policy's rule-based regime needs its inputs
        assert {"mkt_vol_level", "mkt_trend"} <= set(model_set.feature_names)
    rows = sample_data.events.merge(sample_data.market[["timestamp",
                                                        *sample_data.market_features]],
                                    on="timestamp", how="left", suffixes=("", "_market"))
    X = rows.reindex(columns=model_set.feature_names).tail(50)
    win = model_set.win_probability(X)
    assert win.shape == (50,)
    assert ((win >= 0) & (win <= 1)).all()
    exits = model_set.exits(X)
    assert list(exits.columns) == ["stop_loss_atr", "take_profit_atr"]
    assert (exits["stop_loss_atr"] >= 0.5).all()
    assert (exits["take_profit_atr"] <= 10).all()
    regimes = model_set.regime_probabilities(X)
    assert list(regimes.columns) == ["trending", "ranging", "volatile", "calm"]
    assert np.allclose(regimes.sum(axis=1), 1.0, atol=1e-5)
    drawdown = model_set.drawdown(X)
    assert (drawdown["drawdown_p10_pct"] <= drawdown["expected_drawdown_pct"]).all()
    assert (drawdown["expected_drawdown_pct"] <= drawdown["drawdown_p90_pct"]).all()
    ood = model_set.out_of_distribution(X)
    assert ood.dtype == bool
    assert ood.mean() < 0.5
    extreme = X.head(1).copy()
    extreme["rsi_14"] = 1e6
    assert model_set.out_of_distribution(extreme).all()
    one = X.tail(1)
    assert model_set.win_probability(one).shape == (1,)


def test_champion_uri_loads_with_mlflow(trained: tuple[str, list[TrainingResult]]) -> None:
    import mlflow
    import mlflow.pytorch
    import mlflow.xgboost
    import torch

    uri, _ = trained
    before = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        booster = mlflow.xgboost.load_model("models:/exit_optimizer@champion")
        network = mlflow.pytorch.load_model("models:/regime_classifier@champion")
    finally:
        mlflow.set_tracking_uri(before[0])
        mlflow.set_registry_uri(before[1])
    width = booster.n_features_in_
    assert np.asarray(booster.predict(np.zeros((3, width)))).shape == (3, 2)
    inputs = network.center.shape[0]
    probabilities = network(torch.zeros(4, inputs))
    assert tuple(probabilities.shape) == (4, 4)


def test_training_is_reproducible(sample_data: TrainingData, tmp_path: Path) -> None:
    tracker = MlflowTracker(f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "artifacts")
    context = TrainingContext(source="sample", seed=11, split=SPLIT)
    for model in (SignalQualityModel(SignalQualityConfig(xgb_n_estimators=30,
                                                         rf_n_estimators=20)),
                  RegimeModel(RegimeConfig(hidden=(8,)))):
        first = train_model(model, sample_data, tracker=tracker, registry=None, context=context)
        second = train_model(model, sample_data, tracker=tracker, registry=None,
                             context=context)
        assert first.metrics == pytest.approx(second.metrics, nan_ok=True)
        for one, two in zip(first.fold_metrics, second.fold_metrics, strict=True):
            assert one == pytest.approx(two, nan_ok=True)


def test_models_list_command_shows_the_champions(
    trained: tuple[str, list[TrainingResult]], workdir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from typer.testing import CliRunner

    from pipelines.cli import app

    uri, _ = trained
    monkeypatch.setenv("TRADEWIND_PATHS__MLFLOW_TRACKING_URI", uri)
    outcome = CliRunner().invoke(app, ["models", "list", "--json"])
    assert outcome.exit_code == 0, outcome.output
    rows = pd.DataFrame(json.loads(outcome.stdout))
    assert sorted(rows["name"]) == sorted(MODEL_NAMES)
    assert all(aliases == ["champion"] for aliases in rows["aliases"])
    assert all(window for window in rows["data_window"])


def test_fitted_state_comes_from_the_training_rows_only(sample_data: TrainingData) -> None:
    from models.labels import RegimeThresholds

    market = sample_data.market.sort_values("timestamp").reset_index(drop=True)
    train = market.iloc[: len(market) // 2]
    fitted = RegimeModel(RegimeConfig()).fit(train, sample_data.market_features, seed=1)
    horizon = sample_data.regime_horizon
    own = RegimeThresholds(horizon).fit(train).as_dict()
    everything = RegimeThresholds(horizon).fit(market).as_dict()
    assert fitted.thresholds.as_dict() == own
    assert own != everything  # so the check above would notice a leak

    events = sample_data.events.sort_values("timestamp").reset_index(drop=True)
    early = events.iloc[: len(events) // 2]
    signal = SignalQualityModel(SignalQualityConfig(estimator="xgboost")).fit(
        early, sample_data.signal_features, seed=1)
    net = sample_data.labels["net_return"]
    for strategy, payoff in signal.policy.payoffs.items():
        returns = early.loc[early["strategy"] == strategy, net]
        if (returns > 0).any() and (returns <= 0).any():
            assert payoff.avg_win == pytest.approx(returns[returns > 0].mean())
            assert payoff.avg_loss == pytest.approx(-returns[returns <= 0].mean())
    names = signal.ood.feature_names
    stamps = early["timestamp"].to_numpy()
    cut = np.unique(stamps)[int(len(np.unique(stamps)) * 0.75)]
    fit_rows = early[stamps < cut]
    medians = fit_rows[names].median().fillna(0.0).to_numpy()
    assert np.allclose(signal.ood.median_, medians)
    later = events[names].median().fillna(0.0).to_numpy()
    assert not np.allclose(signal.ood.median_, later)


def test_data_after_the_training_window_changes_nothing_the_policy_fitted() -> None:
    """The same window cut from a longer history: identical policy, calibration and OOD
    detector (features are causal, labels complete inside the window)."""
    from pipelines.training import build_dataset
    from trading.adapters.sample.data import SampleMarketData

    end = pd.Timestamp("2011-06-30", tz="UTC")
    bars = SampleMarketData().history(["AAPL", "MSFT", "IBM", "SPX"], end="2012-12-31")
    fitted = []
    for history in (bars[bars["timestamp"] <= end], bars):
        stocks = history.loc[history["symbol"] != "SPX"].reset_index(drop=True)
        index = history.loc[history["symbol"] == "SPX"].reset_index(drop=True)
        data = build_dataset(stocks, index, Settings())
        rows = data.events[data.events["label_end"] <= end]
        rows = rows.sort_values(["timestamp", "symbol", "strategy"]).reset_index(drop=True)
        model = SignalQualityModel(SignalQualityConfig(estimator="xgboost", n_jobs=1))
        fitted.append(model.fit(rows, data.signal_features, seed=3))
    truncated, longer = fitted
    assert truncated.policy.to_dict() == longer.policy.to_dict()
    assert truncated.calibration_dict() == longer.calibration_dict()
    assert truncated.ood.to_dict() == longer.ood.to_dict()
