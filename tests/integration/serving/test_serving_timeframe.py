"""Minute-bar models end to end: trained on a slice of the real SPY 1-minute bars through
`tradewind train`'s data path (`pipelines.training`), registered with their timeframe,
and served by the session's real `bentoml serve`: a 1Min decision is answered, a 1Day one
is refused (409, naming both), and the engine's client refuses the service before a run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from core.errors import TimeframeMismatch
from serving.client import HttpModelClient
from tests.conftest import shared_file
from tests.integration.serving.harness import (
    MODEL_NAMES,
    TOKEN,
    Server,
    TrainedModels,
    bearer,
    serve_versions,
)

pytestmark = pytest.mark.integration

# Two weeks of SPY minutes (about 3,900 bars): enough signals for two walk-forward folds
# and an out-of-time window, small enough to train in seconds.
SLICE = ("2021-07-01", "2021-07-15")


def _train_minute_models(tracking_uri: str, root: Path) -> tuple[dict[str, str], dict[str, Any]]:
    """Register tiny models trained on SPY 1-minute bars; their versions and one real
    request (a minute signal with its features)."""
    import warnings

    from core.settings import load_settings
    from features.compute import compute_features
    from models.exit_optimizer import ExitOptimizerConfig, ExitOptimizerModel
    from models.regime import RegimeConfig, RegimeModel
    from models.registry import ModelRegistry
    from models.risk import RiskConfig, RiskModel
    from models.signal_quality import SignalQualityConfig, SignalQualityModel
    from models.template import TrainingContext, WalkForwardSplit, train_model
    from models.tracker import MlflowTracker
    from pipelines.training import TrainRequest, build_dataset, load_bars

    minutes = pd.read_parquet(shared_file("intraday/minute_2021.parquet"))
    window = minutes[(minutes["symbol"] == "SPY")
                     & (minutes["timestamp"] >= SLICE[0]) & (minutes["timestamp"] < SLICE[1])]
    source = root / "spy_minutes.parquet"
    window.to_parquet(source)
    settings = load_settings()
    request = TrainRequest(source=str(source), symbols=("SPY",), timeframe="1Min",
                           include_held_out=True,
                           include_store_trades=False)
    stocks, index, _ = load_bars(request, settings)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        features = compute_features(stocks, index)
        data = build_dataset(stocks, index, settings, features=features)
    tracker = MlflowTracker(tracking_uri, root / "artifacts")
    registry = ModelRegistry(tracking_uri)
    context = TrainingContext(source="spy-minutes", split=WalkForwardSplit(n_folds=2),
                              timeframe="1Min")
    versions = {}
    for model in (
        SignalQualityModel(SignalQualityConfig(estimator="random_forest", rf_n_estimators=20)),
        ExitOptimizerModel(ExitOptimizerConfig(n_estimators=30)),
        RegimeModel(RegimeConfig(max_iterations=100)),
        RiskModel(RiskConfig(n_estimators=30)),
    ):
        result = train_model(model, data, tracker=tracker, registry=registry, context=context)
        versions[result.name] = result.version
    event = data.events.iloc[-1]
    row = features[(features["symbol"] == event["symbol"])
                   & (features["timestamp"] == event["timestamp"])].iloc[0]
    names = [c for c in features.columns if c not in ("symbol", "timestamp")]
    request_body = {
        "signal": {"symbol": str(event["symbol"]), "side": str(event["side"]),
                   "strategy": str(event["strategy"]),
                   "timestamp": pd.Timestamp(event["timestamp"]).isoformat(),
                   "price": float(event["price"])},
        "features": {name: float(row[name]) if np.isfinite(row[name]) else None
                     for name in names},
    }
    return versions, request_body


@pytest.fixture(scope="module")
def minute_models(
    serving_server: Server, trained_models: TrainedModels,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[dict[str, str], dict[str, Any]]]:
    versions, request = _train_minute_models(trained_models.tracking_uri,
                                             tmp_path_factory.mktemp("minute-models"))
    serve_versions(serving_server, champion=versions, challenger=None)
    yield versions, request
    # The daily models serve again for the modules that follow.
    serve_versions(serving_server, champion=dict.fromkeys(MODEL_NAMES, "1"), challenger=None)


def test_minute_models_record_their_timeframe(
    minute_models: tuple[dict[str, str], dict[str, Any]], trained_models: TrainedModels,
) -> None:
    from models.registry import ModelRegistry

    versions, _ = minute_models
    registry = ModelRegistry(trained_models.tracking_uri)
    for name, version in versions.items():
        by_number = {info.version: info for info in registry.versions(name)}
        assert by_number[version].tags["timeframe"] == "1Min"
        assert by_number["1"].timeframe == "1Day"  # trained before the tag: daily


def test_a_minute_decision_is_answered_and_a_daily_one_refused(
    serving_server: Server, minute_models: tuple[dict[str, str], dict[str, Any]],
) -> None:
    versions, request = minute_models
    with httpx.Client(base_url=serving_server.url, headers=bearer(), timeout=30) as http:
        status = http.get("/models").json()
        assert status["timeframe"] == "1Min"
        assert status["champion"]["timeframe"] == "1Min"
        answered = http.post("/decide", json={**request, "timeframe": "1Min"})
        assert answered.status_code == 200, answered.text
        assert answered.json()["model_versions"] == versions
        refused = http.post("/decide", json={**request, "timeframe": "1Day"})
        assert refused.status_code == 409
        body = refused.json()
        assert body["field"] == "timeframe"
        assert "1Day bars" in body["error"]
        assert "trained on 1Min bars" in body["error"]
        per_model = http.post("/exit", json={**request, "timeframe": "1Day"})
        assert per_model.status_code == 409

    daily_engine = HttpModelClient(serving_server.url, token=TOKEN, timeout=30,
                                   timeframe="1Day")
    with pytest.raises(TimeframeMismatch, match="trained on 1Min bars and this engine "
                       "trades 1Day bars"):
        daily_engine.check()
    minute_engine = HttpModelClient(serving_server.url, token=TOKEN, timeout=30,
                                    timeframe="1Min")
    assert minute_engine.check()["timeframe"] == "1Min"


def test_an_engine_on_other_bars_is_refused_at_start_in_one_line(
    serving_server: Server, minute_models: tuple[dict[str, str], dict[str, Any]],
    workdir: Path,
) -> None:
    from tests.unit.pipelines.cli_runner import run_cli

    # No exchange runs at this address: the refusal comes before the broker is asked.
    outcome = run_cli("trade", "--broker", "paper-exchange", "--exchange-url",
                      "http://127.0.0.1:9", "--symbols", "SPY", "--timeframe", "1Day",
                      "--model-endpoint", serving_server.url, "--api-port", "0",
                      env={"TRADEWIND_API_TOKEN": TOKEN})
    assert outcome.code == 2
    assert len(outcome.error_lines) == 1, outcome.stderr
    assert "serves models trained on 1Min bars and this engine trades 1Day bars" in (
        outcome.error_lines[0])
