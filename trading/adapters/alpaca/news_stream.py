"""`AlpacaNewsStream`: the `NewsStream` port on alpaca-py's `NewsDataStream`, for Alpaca
(`wss://stream.data.alpaca.markets/v1beta1/news`) or the local paper exchange
(`stream_url`). The SDK runs in its own thread and reconnects by itself; each article
becomes one `Headline` per traded symbol it is tagged with, handed to the consumer's
event loop. With `since`, the articles published since then are read first from the
news REST API (`AlpacaNews`, after the stream has subscribed, so none falls between);
an article both paths deliver may come twice (same `news_id`: the consumer drops it).
Scoring is not done here: the live sentiment features score the headline
with `features.sentiment` (the one definition the offline features use)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import pandas as pd
from alpaca.data.live.news import NewsDataStream
from pydantic import BaseModel, ConfigDict, Field

from core.errors import ConfigError
from core.settings import AlpacaCredentials
from trading.adapters.alpaca.news import AlpacaNews
from trading.adapters.alpaca.sdk_streams import stop_sdk_stream
from trading.adapters.alpaca.stream import wire_time
from trading.ports import Headline


class AlpacaNewsStreamConfig(BaseModel):
    """The news stream. `stream_url` None means Alpaca's own."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    stream_url: str | None = None
    reconnect_min_backoff_seconds: float = Field(1.0, gt=0)
    reconnect_max_backoff_seconds: float = Field(30.0, gt=0)


def news_stream_url_for(base_url: str) -> str:
    """The news stream of an Alpaca-compatible server at `base_url` (http → ws)."""
    root = base_url.rstrip("/").replace("https://", "wss://").replace("http://", "ws://")
    return root + "/v1beta1/news"


def headlines_of(message: dict[str, Any], wanted: set[str]) -> list[Headline]:
    """Alpaca's raw news message → one headline per wanted symbol it is tagged with."""
    moment = wire_time(message["created_at"])
    text = str(message.get("headline") or "")
    tagged = dict.fromkeys(str(s).upper() for s in message.get("symbols") or ())
    news_id = str(message.get("id", ""))
    return [Headline(symbol, moment, text, news_id) for symbol in tagged if symbol in wanted]


class AlpacaNewsStream:
    """Live headlines for the traded symbols."""

    def __init__(
        self,
        config: AlpacaNewsStreamConfig,
        credentials: AlpacaCredentials,
        history: AlpacaNews | None = None,
    ) -> None:
        self.config = config
        self._history = history
        self.backfilled = 0  # headlines read from the news API at (re)start
        api_key, secret_key, _ = credentials.require(allow_live=True)
        self._keys = (api_key, secret_key)
        self._stream: NewsDataStream | None = None
        self._thread: threading.Thread | None = None
        self._stop_consumer: Callable[[], object] | None = None
        self.received = 0  # articles heard (for monitoring)

    async def headlines(
        self, symbols: Sequence[str], since: datetime | None = None
    ) -> AsyncIterator[Headline]:
        if not symbols:
            raise ConfigError("no symbols to stream news for", where="AlpacaNewsStream")
        wanted = {s.upper() for s in symbols}
        loop = asyncio.get_running_loop()
        arrived: asyncio.Queue[Headline | None] = asyncio.Queue()

        async def on_news(message: dict[str, Any]) -> None:
            self.received += 1
            for headline in headlines_of(message, wanted):
                loop.call_soon_threadsafe(arrived.put_nowait, headline)

        self._start(on_news, sorted(wanted))
        self._stop_consumer = lambda: loop.call_soon_threadsafe(arrived.put_nowait, None)
        try:
            if since is not None and self._history is not None:
                for earlier in await self._backfill(sorted(wanted), since):
                    yield earlier
            while True:
                headline = await arrived.get()
                if headline is None:
                    return
                yield headline
        finally:
            self.close()

    async def _backfill(self, symbols: list[str], since: datetime) -> list[Headline]:
        assert self._history is not None
        frame = await asyncio.to_thread(
            self._history.headlines, symbols, since, datetime.now(UTC)
        )
        found = [
            Headline(str(row.symbol), pd.Timestamp(row.timestamp).to_pydatetime(),
                     str(row.headline), str(row.news_id))
            for row in frame.itertuples(index=False)
        ]
        self.backfilled += len(found)
        return found

    def _start(self, handler: Any, symbols: list[str]) -> None:
        if self._thread is not None:
            raise ConfigError("this news stream is already running", where="AlpacaNewsStream")
        api_key, secret_key = self._keys
        stream = NewsDataStream(
            api_key, secret_key, raw_data=True, url_override=self.config.stream_url
        )
        stream._reconnect_min_backoff = self.config.reconnect_min_backoff_seconds
        stream._reconnect_max_backoff = self.config.reconnect_max_backoff_seconds
        stream.subscribe_news(handler, *symbols)
        self._stream = stream
        self._thread = threading.Thread(target=stream.run, name="alpaca-news", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop the SDK's thread and end `headlines` (idempotent)."""
        stop_consumer, self._stop_consumer = self._stop_consumer, None
        if stop_consumer is not None:
            with contextlib.suppress(RuntimeError):
                stop_consumer()
        stream, thread = self._stream, self._thread
        self._stream = self._thread = None
        stop_sdk_stream(stream, thread, "alpaca.data.live.websocket")
