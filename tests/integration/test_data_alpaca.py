"""The Alpaca source through the real alpaca-py SDK (`url_override`) against the local
market-data server (`trading.adapters.paper_exchange.data_api`) run by uvicorn on
127.0.0.1: multi-symbol, multi-page answers, HTTP 429 back-off, every timeframe."""

from __future__ import annotations

import logging
import math
import socket
from pathlib import Path

import pandas as pd
import pytest

from core.errors import AuthenticationError, DataSourceError
from core.settings import AlpacaCredentials
from features.bar_store import BarStore
from tests.integration.local_server import serve_app
from trading.adapters.alpaca.config import AlpacaDataConfig
from trading.adapters.alpaca.data import AlpacaMarketData
from trading.adapters.paper_exchange.data_api import DataApiConfig, build_data_app
from trading.adapters.sample.data import SampleMarketData

pytestmark = pytest.mark.integration

KEY, SECRET = "test-key-id", "test-secret-0123456789"
CREDENTIALS = AlpacaCredentials(ALPACA_API_KEY=KEY, ALPACA_SECRET_KEY=SECRET)


running = serve_app


@pytest.fixture(scope="module")
def daily_source() -> pd.DataFrame:
    return SampleMarketData().history(["AAPL", "MSFT", "GOOG", "SPX"])


def client(url: str, **config: object) -> AlpacaMarketData:
    settings = {"data_url": url, "retry_wait_seconds": 0.01, **config}
    return AlpacaMarketData(AlpacaDataConfig(**settings), CREDENTIALS)  # type: ignore[arg-type]


def window(frame: pd.DataFrame, symbols: list[str], start: str, end: str) -> pd.DataFrame:
    lower = pd.Timestamp(start).tz_localize("America/New_York")
    upper = pd.Timestamp(end).tz_localize("America/New_York") + pd.Timedelta(days=1)
    keep = frame["symbol"].isin(symbols) & (frame["timestamp"] >= lower)
    keep &= frame["timestamp"] < upper
    return frame[keep].reset_index(drop=True)


def test_multi_symbol_multi_page_answer_equals_the_source(daily_source: pd.DataFrame) -> None:
    app = build_data_app(daily_source, DataApiConfig(max_page_size=500))
    symbols = ["MSFT", "AAPL", "GOOG", "SPX"]
    with running(app) as url:
        got = client(url).history(symbols, start="2004-01-01", end="2013-12-31")
    expected = window(daily_source, symbols, "2004-01-01", "2013-12-31")
    pd.testing.assert_frame_equal(got, expected)
    pages = app.state.requests
    assert len(pages) == math.ceil(len(expected) / 500) > 10
    assert "page_token" not in pages[0]
    assert all(page.get("page_token") for page in pages[1:])  # the SDK followed every token
    first = pages[0]
    assert first["symbols"] == "MSFT,AAPL,GOOG,SPX"
    assert (first["timeframe"], first["adjustment"], first["feed"]) == ("1Day", "all", "iex")


def test_adjustment_and_feed_are_sent_as_configured(daily_source: pd.DataFrame) -> None:
    app = build_data_app(daily_source)
    with running(app) as url:
        client(url, feed="sip", adjustment="raw").history(["AAPL"], start="2013-01-02")
    assert (app.state.requests[0]["feed"], app.state.requests[0]["adjustment"]) == ("sip", "raw")


def test_rate_limit_429_is_retried_then_succeeds(daily_source: pd.DataFrame) -> None:
    app = build_data_app(daily_source, DataApiConfig(max_page_size=1000))
    with running(app) as url:
        source = client(url, retry_attempts=3)
        app.state.rate_limit.arm(2)
        got = source.history(["AAPL", "IBM"], start="2010-01-01", end="2012-12-31")
        assert app.state.rate_limit.answered == 2
        pd.testing.assert_frame_equal(
            got, window(daily_source, ["AAPL"], "2010-01-01", "2012-12-31")
        )
        assert len(app.state.requests) == 2 + 1
        app.state.rate_limit.arm(4)  # more 429s than retries
        with pytest.raises(DataSourceError, match=r"HTTP 429 .* after 3 retries"):
            source.history(["AAPL"], start="2010-01-01", end="2010-12-31")


def test_wrong_credentials_are_refused_and_never_echoed(
    daily_source: pd.DataFrame, caplog: pytest.LogCaptureFixture
) -> None:
    config = DataApiConfig(api_key="other-key", secret_key="other-secret")  # type: ignore[arg-type]
    app = build_data_app(daily_source, config)
    caplog.set_level(logging.DEBUG)
    with running(app) as url, pytest.raises(AuthenticationError) as caught:
        client(url).history(["AAPL"], start="2013-01-02")
    assert "401" in str(caught.value)
    assert SECRET not in str(caught.value)
    assert SECRET not in caplog.text
    assert KEY not in caplog.text
    assert SECRET not in repr(CREDENTIALS)


def test_missing_credentials_are_a_config_error() -> None:
    from core.errors import ConfigError

    with pytest.raises(ConfigError, match="ALPACA_API_KEY"):
        AlpacaMarketData(AlpacaDataConfig(data_url="http://127.0.0.1:9"), AlpacaCredentials())


def test_unreachable_server_is_a_data_source_error() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()  # nothing listens there now
    source = client(f"http://127.0.0.1:{port}", retry_attempts=0)
    with pytest.raises(DataSourceError, match="cannot reach"):
        source.history(["AAPL"], start="2013-01-02")


@pytest.fixture(scope="module")
def minute_store(tmp_path_factory: pytest.TempPathFactory) -> BarStore:
    from tests.conftest import shared_file

    minutes = pd.read_parquet(shared_file("intraday/minute_2021.parquet"))
    store = BarStore(tmp_path_factory.mktemp("minutes") / "bars")
    store.write(minutes, timeframe="1Min")
    return store


@pytest.mark.parametrize("timeframe", ["1Min", "5Min", "15Min", "1Hour"])
def test_every_intraday_timeframe_from_the_store(minute_store: BarStore, timeframe: str) -> None:
    app = build_data_app(minute_store.root, DataApiConfig(max_page_size=700))
    symbols = ["AAPL", "MSFT", "SPY"]
    with running(app) as url:
        got = client(url).history(
            symbols, start="2021-08-01", end="2021-08-31", timeframe=timeframe
        )
    minutes = minute_store.read(symbols, start="2021-08-01", end="2021-08-31", timeframe="1Min")
    rule = {"1Min": "1min", "5Min": "5min", "15Min": "15min", "1Hour": "60min"}[timeframe]
    expected = (
        minutes.groupby(["symbol", minutes["timestamp"].dt.floor(rule)])
        .agg(
            open=("open", "first"),
            high=("high", "max"),
            low=("low", "min"),
            close=("close", "last"),
            volume=("volume", "sum"),
        )
        .reset_index()
    )
    pd.testing.assert_frame_equal(got, expected[got.columns.tolist()])
    assert len(app.state.requests) == math.ceil(len(expected) / 700)


def test_daily_bars_from_the_store_keep_alpaca_stamps(tmp_path: Path) -> None:
    store = BarStore(tmp_path / "bars")
    store.write(SampleMarketData().history(["IBM"], start="2012-01-01"))
    app = build_data_app(store)
    with running(app) as url:
        got = client(url).history(["IBM"], start="2012-01-01", end="2013-12-31")
    pd.testing.assert_frame_equal(got, store.read(["IBM"]))
    assert set(got["timestamp"].dt.hour) == {4, 5}


def test_many_symbols_are_split_across_requests(daily_source: pd.DataFrame) -> None:
    app = build_data_app(daily_source)
    symbols = ["SPX", "MSFT", "GOOG", "AAPL", "ZZZZ"]  # ZZZZ: Alpaca just omits it
    with running(app) as url:
        got = client(url, symbols_per_request=2).history(
            symbols, start="2013-01-02", end="2013-12-31"
        )
    assert [page["symbols"] for page in app.state.requests] == ["SPX,MSFT", "GOOG,AAPL", "ZZZZ"]
    pd.testing.assert_frame_equal(got, window(daily_source, symbols, "2013-01-02", "2013-12-31"))
