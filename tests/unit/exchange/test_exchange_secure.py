"""The paper exchange's secure defaults: it never listens beyond loopback without keys,
asks for Alpaca's key headers on every API call (401 without them, as Alpaca does), and
its `/v2/stocks/bars` never serves a bar after its replay clock."""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd
import pytest
from pydantic import SecretStr

from core.errors import ConfigError
from features.bar_store import BarStore
from trading.adapters.paper_exchange.config import PaperExchangeConfig
from trading.adapters.paper_exchange.server import create_exchange_app

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

KEYS = {"APCA-API-KEY-ID": "key", "APCA-API-SECRET-KEY": "secret"}


@pytest.mark.parametrize("host", ["0.0.0.0", "10.1.2.3", "exchange.example"])
def test_beyond_loopback_only_with_both_keys(host: str) -> None:
    with pytest.raises(ConfigError, match=f"would listen on {host}, beyond loopback"):
        PaperExchangeConfig(host=host)
    with pytest.raises(ConfigError):
        PaperExchangeConfig(host=host, api_key=SecretStr("k"))
    PaperExchangeConfig(host=host, api_key=SecretStr("k"), secret_key=SecretStr("s"))
    PaperExchangeConfig(host="127.0.0.1")


def _client(bars: pd.DataFrame, tmp_path: Path, **config: object) -> TestClient:
    """The exchange replaying the bar store it also serves (as `tradewind paper-exchange`)."""
    store = tmp_path / "bars"
    BarStore(store).write(bars)
    replayed = BarStore(store).read()
    app = create_exchange_app(replayed, PaperExchangeConfig.model_validate(config),
                              bars_dir=store)
    return TestClient(app)


@pytest.mark.parametrize("path", ["/v2/account", "/v2/orders", "/v2/positions", "/v2/clock",
                                  "/v2/stocks/bars?symbols=AAPL&timeframe=1Day"])
def test_every_api_call_needs_both_key_headers(
    bars: pd.DataFrame, tmp_path: Path, path: str
) -> None:
    with _client(bars, tmp_path) as client:
        assert client.get(path).status_code == 401
        assert client.get(path, headers={"APCA-API-KEY-ID": "key"}).status_code == 401
        assert client.get(path, headers=KEYS).status_code == 200


def test_configured_keys_must_match(bars: pd.DataFrame, tmp_path: Path) -> None:
    with _client(bars, tmp_path, api_key="key", secret_key="secret") as client:
        assert client.get("/v2/account", headers=KEYS).status_code == 200
        wrong = {**KEYS, "APCA-API-SECRET-KEY": "secreT"}
        assert client.get("/v2/account", headers=wrong).status_code == 401
        assert client.get("/v2/stocks/bars", params={"symbols": "AAPL"},
                          headers=wrong).status_code == 401


def test_market_data_never_runs_ahead_of_the_replay(bars: pd.DataFrame, tmp_path: Path) -> None:
    params = {"symbols": "AAPL,MSFT", "timeframe": "1Day", "limit": 10_000}
    with _client(bars, tmp_path) as client:
        before = client.get("/v2/stocks/bars", params=params, headers=KEYS).json()
        assert before["bars"] == {}  # nothing replayed yet
        client.post("/admin/advance", json={"steps": 3}, headers=KEYS)
        now = pd.Timestamp(client.get("/v2/clock", headers=KEYS).json()["timestamp"])
        served = client.get("/v2/stocks/bars", params={**params, "end": "2030-01-01"},
                            headers=KEYS).json()["bars"]
    stamps = [pd.Timestamp(bar["t"]) for rows in served.values() for bar in rows]
    assert len(stamps) == 6  # three sessions of two symbols
    assert max(stamps) == now
    assert len({s.date() for s in stamps}) == 3
