"""alpaca-py's real `StockDataStream` against the paper exchange subprocess replaying real
1-minute bars: the bars arrive over the msgpack websocket as the replay advances, and
the minutes replayed while the stream is forcibly down (and refused) are back-filled
from the REST bars after the SDK reconnects: every stored bar exactly once, in order."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest

from core.settings import AlpacaCredentials
from core.types import BAR_COLUMNS, Bar
from tests.conftest import shared_file
from tests.integration.exchange_support import KEY, SECRET, Exchange, write_store
from trading.adapters.alpaca.config import AlpacaDataConfig
from trading.adapters.alpaca.data import AlpacaMarketData
from trading.adapters.alpaca.stream import AlpacaBarStream, AlpacaStreamConfig, stream_url_for

pytestmark = pytest.mark.integration

SYMBOLS = ("AAPL", "MSFT")
CREDENTIALS = AlpacaCredentials(ALPACA_API_KEY=KEY, ALPACA_SECRET_KEY=SECRET)


@pytest.fixture
def minute_bars() -> pd.DataFrame:
    frame = pd.read_parquet(shared_file("intraday/minute_2021.parquet"))
    frame = frame.loc[frame["symbol"].isin(SYMBOLS), list(BAR_COLUMNS)]
    first_day = frame.loc[frame["timestamp"] < "2021-08-23 14:30:00+00:00"]
    return first_day.sort_values(["symbol", "timestamp"]).reset_index(drop=True)


@pytest.fixture
def exchange(tmp_path: Path, minute_bars: pd.DataFrame) -> Iterator[Exchange]:
    write_store(tmp_path / "data", minute_bars, "1Min")
    running = Exchange(tmp_path, symbols=",".join(SYMBOLS), timeframe="1Min").start()
    try:
        yield running
    finally:
        running.close()


async def until(condition: Callable[[], object], what: str, act: Callable[[], object],
                timeout: float = 20.0) -> None:
    """Call `act` (a replay step) and wait a little, until `condition` holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.to_thread(act)
        for _ in range(10):
            if condition():
                return
            await asyncio.sleep(0.03)


def test_sdk_stream_delivers_replayed_bars_and_backfills_a_forced_gap(
    exchange: Exchange, minute_bars: pd.DataFrame
) -> None:
    history = AlpacaMarketData(AlpacaDataConfig(data_url=exchange.url), CREDENTIALS)
    stream = AlpacaBarStream(
        AlpacaStreamConfig(
            stream_url=stream_url_for(exchange.url),
            timeframe="1Min",
            reconnect_min_backoff_seconds=0.2,
            reconnect_max_backoff_seconds=1.0,
        ),
        CREDENTIALS,
        history,
    )
    received: list[Bar] = []

    async def scenario() -> None:
        async def consume() -> None:
            async for bar in stream.bars(list(SYMBOLS)):
                received.append(bar)

        task = asyncio.create_task(consume())
        try:
            # The SDK subscribes a moment after it starts: step until bars flow.
            await until(lambda: len(received) >= 4, "live bars", exchange.advance)
            live_count = len(received)
            exchange.drop_streams(refuse_seconds=1.0)
            for _ in range(3):
                await asyncio.to_thread(exchange.advance)  # replayed while nobody listens
            assert len(received) == live_count
            await until(lambda: len(received) >= live_count + 10, "bars after reconnect",
                        exchange.advance)
        finally:
            task.cancel()
            stream.close()

    asyncio.run(scenario())

    assert stream.backfilled >= 2 * 3  # both symbols' three missed minutes at least
    for symbol in SYMBOLS:
        got = [b for b in received if b.symbol == symbol]
        stamps = [b.timestamp for b in got]
        assert stamps == sorted(set(stamps)), "each bar once, in time order"
        stored = minute_bars.loc[minute_bars["symbol"] == symbol].set_index("timestamp")
        expected = stored.loc[stamps[0] : stamps[-1]]
        assert [pd.Timestamp(s) for s in stamps] == list(expected.index)
        for bar in got:
            row = stored.loc[pd.Timestamp(bar.timestamp)]
            assert (bar.open, bar.high, bar.low, bar.close, bar.volume) == pytest.approx(
                (row["open"], row["high"], row["low"], row["close"], row["volume"])
            )
