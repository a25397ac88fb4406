"""The model service over real HTTP: a `bentoml serve` subprocess with tiny real models
in a temporary MLflow store (champion v1, challenger v2), auth on, shadow mode on, 20%
challenger share."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bentoml
import httpx
import pandas as pd
import pytest

from core.types import Side, Signal
from serving.client import HttpModelClient
from serving.decision_log import read_decisions
from serving.router import bucket
from serving.schemas import SignalIn
from tests.integration.serving.harness import (
    MODEL_NAMES,
    TOKEN,
    Server,
    TrainedModels,
    bearer,
    serve_versions,
    wait_for,
)

pytestmark = pytest.mark.integration

V1 = dict.fromkeys(MODEL_NAMES, "1")
V2 = dict.fromkeys(MODEL_NAMES, "2")


@pytest.fixture(scope="module")
def server(serving_server: Server) -> Server:
    serve_versions(serving_server, champion=V1, challenger=V2)
    return serving_server


@pytest.fixture(scope="module")
def http(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, headers=bearer(), timeout=30.0) as client:
        yield client


def _signal_id(request: dict[str, Any]) -> str:
    return SignalIn.model_validate_json(json.dumps(request["signal"])).to_signal().signal_id


def test_a_valid_decision(http: httpx.Client, trained_models: TrainedModels) -> None:
    request = next(r for r in trained_models.requests if r["signal"]["side"] == "buy")
    response = http.post("/decide", json=request)
    assert response.status_code == 200, response.text
    answer = response.json()
    price = request["signal"]["price"]
    assert answer["variant"] in {"champion", "challenger"}
    assert answer["model_versions"] == (V2 if answer["variant"] == "challenger" else V1)
    assert 0.0 <= answer["win_probability"] <= 1.0
    assert answer["stop_loss_price"] < price < answer["take_profit_price"]
    atr = request["features"]["atr_14"]
    assert answer["stop_loss_price"] == pytest.approx(price - answer["stop_loss_atr"] * atr)
    assert answer["regime"] in {"trending", "ranging", "volatile", "calm"}
    assert sum(answer["regime_probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
    assert answer["regime"] == max(
        answer["regime_probabilities"], key=answer["regime_probabilities"].get
    )
    assert answer["expected_drawdown_pct"] >= 0
    assert isinstance(answer["out_of_distribution"], bool)
    assert answer["signal_id"] == _signal_id(request)


def _mutated(request: dict[str, Any], change: str) -> tuple[str, str]:
    """(raw JSON body, field the answer must name) for one kind of bad input."""
    signal, features = dict(request["signal"]), dict(request["features"])
    name = "rsi_14"
    if change == "missing_feature":
        del features[name]
        return json.dumps({"signal": signal, "features": features}), name
    if change == "unknown_feature":
        features["moon_phase"] = 0.5
        return json.dumps({"signal": signal, "features": features}), "moon_phase"
    if change in ("nan", "inf"):
        features[name] = float("nan") if change == "nan" else float("inf")
        return json.dumps({"signal": signal, "features": features}), name  # NaN/Infinity tokens
    if change == "wrong_type":
        features[name] = "seventy"
        return json.dumps({"signal": signal, "features": features}), name
    if change == "negative_price":
        signal["price"] = -5.0
        return json.dumps({"signal": signal, "features": features}), "price"
    if change == "unknown_side":
        signal["side"] = "short_sell"
        return json.dumps({"signal": signal, "features": features}), "side"
    if change == "naive_timestamp":
        signal["timestamp"] = signal["timestamp"][:19]
        return json.dumps({"signal": signal, "features": features}), "timestamp"
    if change == "zero_atr":
        features["atr_14"] = 0.0
        return json.dumps({"signal": signal, "features": features}), "atr_14"
    if change == "no_signal":
        return json.dumps({"features": features}), "signal"
    raise AssertionError(change)


@pytest.mark.parametrize(
    "change",
    ["missing_feature", "unknown_feature", "nan", "inf", "wrong_type", "negative_price",
     "unknown_side", "naive_timestamp", "zero_atr", "no_signal"],
)
def test_bad_input_is_a_4xx_naming_the_field(
    http: httpx.Client, trained_models: TrainedModels, change: str
) -> None:
    body, field = _mutated(trained_models.requests[0], change)
    for endpoint in ("/decide", "/signal_quality"):
        response = http.post(
            endpoint, content=body, headers={"content-type": "application/json"}
        )
        assert 400 <= response.status_code < 500, (change, response.status_code, response.text)
        assert field in response.text, (change, response.text)


def test_auth_guards_decisions_and_reload_but_not_health(
    server: Server, trained_models: TrainedModels
) -> None:
    request = trained_models.requests[0]
    with httpx.Client(base_url=server.url, timeout=30.0) as anonymous:
        for path in ("/decide", "/signal_quality", "/exit", "/regime", "/risk"):
            assert anonymous.post(path, json=request).status_code == 401
            assert anonymous.post(path, json=request, headers=bearer("wrong")).status_code == 401
        assert anonymous.post("/reload", json={}).status_code == 401
        for path in ("/readyz", "/livez", "/metrics", "/models"):
            assert anonymous.get(path).status_code == 200, path
        assert anonymous.post("/decide", json=request, headers=bearer()).status_code == 200
    assert TOKEN not in server.output()


def test_per_model_endpoints_agree_with_decide(
    http: httpx.Client, trained_models: TrainedModels
) -> None:
    request = trained_models.requests[1]
    decision = http.post("/decide", json=request).json()
    quality = http.post("/signal_quality", json=request).json()
    exits = http.post("/exit", json=request).json()
    regime = http.post("/regime", json=request).json()
    risk = http.post("/risk", json=request).json()
    assert quality["win_probability"] == pytest.approx(decision["win_probability"])
    assert quality["variant"] == decision["variant"]
    # /exit is the exit model's answer; /decide trades the policy's fixed exits and
    # reports the model's beside them
    assert exits["stop_loss_atr"] == pytest.approx(decision["model_stop_loss_atr"])
    assert exits["take_profit_atr"] == pytest.approx(decision["model_take_profit_atr"])
    assert decision["stop_loss_atr"] == pytest.approx(2.0)
    assert decision["action"] in {"enter", "skip"}
    assert decision["reason"] in {"", "ev", "gate", "ood", "regime"}
    assert regime["regime"] == decision["regime"]
    assert risk["expected_drawdown_pct"] == pytest.approx(decision["expected_drawdown_pct"])
    assert quality["model_version"] == decision["model_versions"]["signal_quality"]


def test_bentoml_sync_http_client(server: Server, trained_models: TrainedModels) -> None:
    request = trained_models.requests[2]
    with bentoml.SyncHTTPClient(server.url, token=TOKEN, timeout=30) as client:
        answer = client.decide(request)
        quality = client.signal_quality(request)
    assert answer["signal_id"] == _signal_id(request)
    assert quality["win_probability"] == pytest.approx(answer["win_probability"])


def test_sticky_ab_shares_and_shadow_mode(
    http: httpx.Client, server: Server, trained_models: TrainedModels
) -> None:
    requests = trained_models.requests[:240]
    assert len(requests) == 240
    answers = [http.post("/decide", json=r).json() for r in requests]
    again = [http.post("/decide", json=r).json() for r in requests[:20]]
    for request, answer in zip(requests, answers, strict=True):
        expected = "challenger" if bucket(_signal_id(request)) < 0.2 else "champion"
        assert answer["variant"] == expected
        assert answer["model_versions"] == (V2 if expected == "challenger" else V1)
        assert answer["shadowed"] == (expected == "champion")
    assert [a["decision_id"] for a in again] == [a["decision_id"] for a in answers[:20]]
    share = sum(a["variant"] == "challenger" for a in answers) / len(answers)
    assert abs(share - 0.2) < 0.08, share  # 240 signals: ±0.08 is about 3 sd

    # Shadow mode: every champion decision also has the challenger's outputs in the log.
    wanted = {a["decision_id"] for a in answers}

    def logged() -> Any:
        frame = read_decisions(server.decision_log)
        frame = frame[frame["decision_id"].isin(wanted)]
        return [frame] if len(frame) == len(wanted) else None

    (frame,) = wait_for(logged, timeout=30, what="every decision in the log")
    champion = frame[frame["variant"] == "champion"]
    challenger = frame[frame["variant"] == "challenger"]
    assert all(v == V2 for v in champion["shadow_model_versions"])
    assert all("win_probability" in out for out in champion["shadow_outputs"])
    assert challenger["shadow_outputs"].isna().all()
    assert all(v == V2 for v in challenger["model_versions"])
    assert (frame["feature_hash"].str.len() == 16).all()
    assert (frame["latency_ms"] > 0).all()


def test_models_and_metrics_report_what_serves(http: httpx.Client) -> None:
    status = http.get("/models").json()
    assert status["ready"] is True
    assert status["champion"]["versions"] == V1
    assert status["challenger"]["versions"] == V2
    assert status["ab"] == {"challenger_share": 0.2, "shadow": True, "challenger_loaded": True}
    assert status["last_reload_error"] is None
    assert status["registry_aliases"]["signal_quality"]["champion"] == "1"
    assert "atr_14" in status["accepted_features"]
    metrics = http.get("/metrics").text
    assert 'tradewind_decisions_total{endpoint="decide",variant="champion"}' in metrics
    assert "tradewind_decision_latency_seconds_bucket" in metrics
    assert 'tradewind_refused_requests_total{endpoint="decide",status="422"}' in metrics


def test_the_engine_backtests_through_the_service(
    server: Server, trained_models: TrainedModels, tmp_path: Path
) -> None:
    from trading.backtest import run_backtest

    bars = trained_models.bars
    window = bars[bars["timestamp"] >= "2011-01-01"]
    index = trained_models.index_bars
    with HttpModelClient(server.url, timeout=5.0, retries=1, token=TOKEN) as client:
        result = run_backtest(
            window, index_bars=index, model_client=client,
            journal_url=f"sqlite:///{tmp_path / 'journal.db'}",
        )
    decisions = result.journal.decisions()
    consulted = decisions[decisions["source"] == "http"]
    assert len(consulted) > 0
    versions = consulted["model_versions"].map(json.loads)
    assert all(v in (V1, V2) for v in versions)
    assert set(consulted["variant"]) <= {"champion", "challenger"}
    for row in consulted.itertuples():
        expected = "challenger" if bucket(row.signal_id) < 0.2 else "champion"
        assert row.variant == expected
    # The service logged every decision the engine took from it, joinable by decision_id,
    # and both record what happened: the policy's action and reason, the true OOD flag.
    wanted = set(consulted["decision_id"])
    wait_for(
        lambda: wanted <= set(read_decisions(server.decision_log)["decision_id"]),
        timeout=30, what="the engine's decisions in the service log",
    )
    assert result.stats.model_failures == 0
    log = read_decisions(server.decision_log).set_index("decision_id")
    joined = consulted.join(log[["action", "reason", "out_of_distribution"]],
                            on="decision_id", rsuffix="_log")
    assert (joined["out_of_distribution"].astype(bool) == joined["out_of_distribution_log"]).all()
    policy_skips = joined["category"].isin(["ev", "gate", "ood", "regime"])
    assert (joined.loc[policy_skips, "category"] == joined.loc[policy_skips, "reason_log"]).all()
    assert (joined.loc[policy_skips, "action_log"] == "skip").all()
    assert (joined.loc[~policy_skips, "action_log"] == "enter").all()


def test_the_http_client_decides_like_the_service(
    server: Server, trained_models: TrainedModels
) -> None:
    request = trained_models.requests[3]
    signal = SignalIn.model_validate_json(json.dumps(request["signal"])).to_signal()
    assert isinstance(signal, Signal)
    assert signal.side in (Side.BUY, Side.SELL)
    features = {k: (float("nan") if v is None else v) for k, v in request["features"].items()}
    with HttpModelClient(server.url, token=TOKEN, timeout=5.0) as client:
        decision = client.decide(signal, features)
    assert decision.source == "http"
    assert decision.model_versions in (V1, V2)
    assert decision.win_probability is not None


def test_without_features_the_online_store_supplies_them(
    http: httpx.Client, trained_models: TrainedModels
) -> None:
    features = trained_models.features
    latest = features[features["symbol"] == "MSFT"].iloc[-1]
    request = {
        "signal": {
            "symbol": "MSFT", "side": "buy", "strategy": "momentum",
            "timestamp": latest["timestamp"].isoformat(), "price": 27.0,
        }
    }
    answer = http.post("/decide", json=request)
    assert answer.status_code == 200, answer.text
    decision = answer.json()
    # Exits are placed with the store's latest ATR for the symbol.
    assert decision["stop_loss_price"] == pytest.approx(
        27.0 - decision["stop_loss_atr"] * float(latest["atr_14"])
    )
    explicit = {**request, "features": {
        name: (None if pd.isna(latest[name]) else float(latest[name]))
        for name in features.columns if name not in ("symbol", "timestamp")
    }}
    assert http.post("/decide", json=explicit).json()["win_probability"] == pytest.approx(
        decision["win_probability"]
    )
    unknown = {"signal": {**request["signal"], "symbol": "ZZZZ"}}
    refused = http.post("/decide", json=unknown)
    assert refused.status_code == 404
    assert "ZZZZ" in refused.text


def test_the_backtest_command_consults_the_service(
    server: Server, trained_models: TrainedModels, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipelines.cli import main

    bars = trained_models.bars
    window = pd.concat([bars[bars["timestamp"] >= "2011-01-01"], trained_models.index_bars])
    window.to_parquet(tmp_path / "bars.parquet")
    monkeypatch.setenv("TRADEWIND_API_TOKEN", TOKEN)
    # The default 0.5 s client timeout is for a quiet machine; under a loaded test run a
    # slow answer would become `model_unavailable` and no decision would reach the log.
    monkeypatch.setenv("TRADEWIND_SERVING__TIMEOUT_SECONDS", "10")
    out = tmp_path / "backtest.json"
    journal = tmp_path / "journal.db"
    with pytest.raises(SystemExit) as finished:
        main(["backtest", "--source", "parquet", "--path", str(tmp_path / "bars.parquet"),
              "--model-endpoint", server.url, "--json", str(out),
              "--journal", f"sqlite:///{journal}"])  # fmt: skip
    assert finished.value.code == 0
    report = json.loads(out.read_text())
    assert report["trades"] >= 0
    assert report["equity_curve"]
    from trading.journal import Journal

    decided = Journal(f"sqlite:///{journal}").decisions()
    consulted = set(decided.loc[decided["source"] == "http", "decision_id"])
    assert consulted
    # every decision the command took is in the service's log (a replay of signals the
    # service already decided is the same decision: same id, logged once)
    wait_for(
        lambda: consulted <= set(read_decisions(server.decision_log)["decision_id"]),
        timeout=30, what="the command's decisions in the service log",
    )
