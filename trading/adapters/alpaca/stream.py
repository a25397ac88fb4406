"""`AlpacaBarStream`: the `BarStream` port on alpaca-py's `StockDataStream` (bars), for
Alpaca or the local paper exchange (`stream_url`).

- The SDK runs in its own thread (`StockDataStream.run`) and reconnects by itself, with
  the back-off from `AlpacaStreamConfig`; each bar is handed to the consumer's event loop.
- Gap back-fill: per symbol, a bar more than one bar step after the last one delivered
  means bars may have been missed (a reconnect, or a quiet minute); the span between is
  read from the `MarketData` port (Alpaca's REST bars) and delivered first, in order.
  A bar at or before the last delivered one is a duplicate and is dropped.
- Only when configured: `trades` subscribes to the trade prints (delivered as
  `TradePrint`s as they come) and `updated_bars` to Alpaca's `updatedBars` (a bar
  revised after it was sent, delivered as a `BarCorrection`, only for a bar already
  delivered).
- Credentials come from `core.settings.AlpacaCredentials` only."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import pandas as pd
from alpaca.data.enums import DataFeed
from alpaca.data.live import StockDataStream
from pydantic import BaseModel, ConfigDict, Field

from core.bars import timeframe_step
from core.errors import ConfigError
from core.settings import AlpacaCredentials
from core.types import Bar
from trading.adapters.alpaca.config import Feed
from trading.adapters.alpaca.sdk_streams import stop_sdk_stream
from trading.ports import BarCorrection, MarketData, StreamEvent, TradePrint

log = logging.getLogger(__name__)


class AlpacaStreamConfig(BaseModel):
    """The market-data stream. `stream_url` None means Alpaca's own
    (wss://stream.data.alpaca.markets/v2/<feed>)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    stream_url: str | None = None
    feed: Feed = "iex"
    timeframe: str = "1Min"  # the bars' spacing, for gap detection (Alpaca streams 1Min)
    trades: bool = False  # subscribe to trade prints (a strategy/engine setting asks)
    updated_bars: bool = False  # subscribe to Alpaca's bar corrections
    reconnect_min_backoff_seconds: float = Field(1.0, gt=0)
    reconnect_max_backoff_seconds: float = Field(30.0, gt=0)


def stream_url_for(base_url: str, feed: str = "iex") -> str:
    """The stream endpoint of an Alpaca-compatible server at `base_url` (http → ws)."""
    return base_url.rstrip("/").replace("https://", "wss://").replace("http://", "ws://") + (
        f"/v2/{feed}"
    )


def wire_time(stamp: Any) -> datetime:
    moment = stamp.to_datetime() if hasattr(stamp, "to_datetime") else pd.Timestamp(stamp)
    return pd.Timestamp(moment).tz_convert(UTC).to_pydatetime()


def _trade(message: dict[str, Any]) -> TradePrint:
    return TradePrint(str(message["S"]), wire_time(message["t"]), float(message["p"]),
                      float(message["s"]))


def _bar(message: dict[str, Any]) -> Bar:
    return Bar(
        symbol=str(message["S"]),
        timestamp=wire_time(message["t"]),
        open=float(message["o"]),
        high=float(message["h"]),
        low=float(message["l"]),
        close=float(message["c"]),
        volume=float(message["v"]),
    )


class AlpacaBarStream:
    """Live bars from Alpaca's stock data stream, gaps back-filled from `history`."""

    def __init__(
        self,
        config: AlpacaStreamConfig,
        credentials: AlpacaCredentials,
        history: MarketData,
    ) -> None:
        self.config = config
        self._step = timeframe_step(config.timeframe)
        api_key, secret_key, _ = credentials.require(allow_live=True)
        self._keys = (api_key, secret_key)
        self._history = history
        self._stream: StockDataStream | None = None
        self._thread: threading.Thread | None = None
        self._last: dict[str, datetime] = {}
        self._stop_consumer: Callable[[], object] | None = None
        self.backfilled = 0  # bars delivered from history after a gap (for monitoring)

    async def bars(
        self, symbols: Sequence[str], after: datetime | None = None
    ) -> AsyncIterator[StreamEvent]:
        """Each symbol's bars as they close; with `after`, the first live bar of a symbol
        is preceded by its bars since `after` (back-filled from history). Trade prints
        and corrections in between when configured."""
        if not symbols:
            raise ConfigError("no symbols to stream bars for", where="AlpacaBarStream")
        if after is not None:
            for symbol in symbols:
                self._last.setdefault(symbol, after)
        loop = asyncio.get_running_loop()
        # None: `close` was called
        arrived: asyncio.Queue[StreamEvent | None] = asyncio.Queue()

        async def on_bar(message: dict[str, Any]) -> None:
            loop.call_soon_threadsafe(arrived.put_nowait, _bar(message))

        async def on_trade(message: dict[str, Any]) -> None:
            loop.call_soon_threadsafe(arrived.put_nowait, _trade(message))

        async def on_updated_bar(message: dict[str, Any]) -> None:
            loop.call_soon_threadsafe(arrived.put_nowait, BarCorrection(_bar(message)))

        self._start(on_bar, list(symbols), on_trade=on_trade, on_updated_bar=on_updated_bar)
        self._stop_consumer = lambda: loop.call_soon_threadsafe(arrived.put_nowait, None)
        try:
            while True:
                bar = await arrived.get()
                if bar is None:
                    return
                if isinstance(bar, TradePrint):
                    yield bar
                    continue
                if isinstance(bar, BarCorrection):
                    last = self._last.get(bar.bar.symbol)
                    if last is not None and bar.bar.timestamp <= last:
                        yield bar  # only a bar already delivered can be corrected
                    continue
                for missed in await self._backfill(bar):
                    yield missed
                last = self._last.get(bar.symbol)
                if last is not None and bar.timestamp <= last:
                    continue
                self._last[bar.symbol] = bar.timestamp
                yield bar
        finally:
            self.close()

    async def _backfill(self, bar: Bar) -> list[Bar]:
        """The bars of `bar.symbol` strictly between the last delivered one and `bar`."""
        last = self._last.get(bar.symbol)
        if last is None or bar.timestamp - last <= self._step:
            return []
        frame = await asyncio.to_thread(
            self._history.history,
            [bar.symbol],
            start=last + self._step,
            end=bar.timestamp - self._step,
            timeframe=self.config.timeframe,
        )
        missed = [
            Bar(str(row.symbol), pd.Timestamp(row.timestamp).to_pydatetime(), float(row.open),
                float(row.high), float(row.low), float(row.close), float(row.volume))
            for row in frame.itertuples(index=False)
        ]
        missed = [b for b in missed if last < b.timestamp < bar.timestamp]
        missed.sort(key=lambda b: b.timestamp)
        if missed:
            self._last[bar.symbol] = missed[-1].timestamp
            self.backfilled += len(missed)
            log.info("back-filled %d %s bar(s) of %s from history", len(missed),
                     self.config.timeframe, bar.symbol)
        return missed

    def _start(
        self, handler: Any, symbols: list[str], *, on_trade: Any, on_updated_bar: Any
    ) -> None:
        if self._thread is not None:
            raise ConfigError("this bar stream is already running", where="AlpacaBarStream")
        api_key, secret_key = self._keys
        stream = StockDataStream(
            api_key,
            secret_key,
            raw_data=True,
            feed=DataFeed(self.config.feed),
            url_override=self.config.stream_url,
        )
        stream._reconnect_min_backoff = self.config.reconnect_min_backoff_seconds
        stream._reconnect_max_backoff = self.config.reconnect_max_backoff_seconds
        stream.subscribe_bars(handler, *symbols)
        if self.config.trades:
            stream.subscribe_trades(on_trade, *symbols)
        if self.config.updated_bars:
            stream.subscribe_updated_bars(on_updated_bar, *symbols)
        self._stream = stream
        self._thread = threading.Thread(target=stream.run, name="alpaca-bars", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop the SDK's thread and end `bars` (idempotent)."""
        stop_consumer, self._stop_consumer = self._stop_consumer, None
        if stop_consumer is not None:
            with contextlib.suppress(RuntimeError):  # the consumer's loop is gone
                stop_consumer()
        stream, thread = self._stream, self._thread
        self._stream = self._thread = None
        stop_sdk_stream(stream, thread, "alpaca.data.live.websocket")
