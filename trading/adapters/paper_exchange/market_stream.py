"""The paper exchange's market-data streams: Alpaca's stock data websocket (`/v2/iex`,
`/v2/sip`) and news websocket (`/v1beta1/news`), msgpack frames as alpaca-py's
`StockDataStream` and `NewsDataStream` speak them, replaying the stored bars step by
step as the venue advances.

Handshake: `[{"T": "success", "msg": "connected"}]` on accept; `{"action": "auth", "key",
"secret"}` → `[{"T": "success", "msg": "authenticated"}]` or an error and close;
`{"action": "subscribe" | "unsubscribe", "bars": [...], ...}` → `[{"T": "subscription",
...}]`. Then each replayed step sends `[{"T": "b", "S", "o", "h", "l", "c", "v", "t"}, ...]`
for the subscribed symbols (`"*"`: all), `t` a msgpack Timestamp, preceded by the bar's
`trades` and `quotes` derived from it when those are subscribed (`ticks.py`); a bar
revised by `POST /admin/bars/correct` goes to `updatedBars` subscribers as `T: u`; news
(`news` channel, `T: n`, `news.py`) to subscribers of one of its symbols. Other channels
are acknowledged and stay silent."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import msgpack
from starlette.websockets import WebSocket, WebSocketDisconnect

from core.types import Bar
from trading.adapters.paper_exchange.news import news_message
from trading.adapters.paper_exchange.relay import relay
from trading.adapters.paper_exchange.ticks import tick_messages
from trading.adapters.paper_exchange.venue import MarketUpdate, PaperVenue

CHANNELS = ("trades", "quotes", "bars", "updatedBars", "dailyBars", "statuses", "lulds",
            "corrections", "cancelErrors", "news")
FEEDS = ("iex", "sip", "delayed_sip")


def bar_message(bar: Bar, kind: str = "b") -> dict[str, Any]:
    return {
        "T": kind,
        "S": bar.symbol,
        "o": bar.open,
        "h": bar.high,
        "l": bar.low,
        "c": bar.close,
        "v": bar.volume,
        "t": msgpack.Timestamp.from_datetime(bar.timestamp),
    }


def _pack(messages: list[dict[str, Any]]) -> bytes:
    packed: bytes = msgpack.packb(messages)
    return packed


async def _receive(websocket: WebSocket) -> dict[str, Any]:
    message = await websocket.receive()
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000))
    raw = message.get("bytes")
    if raw is None:
        raise ValueError("the market-data stream speaks msgpack (binary frames) only")
    decoded = msgpack.unpackb(raw)
    if not isinstance(decoded, dict):
        raise ValueError("a market-data request must be a msgpack map")
    return decoded


class Subscription:
    """The channels and symbols one connection asked for."""

    def __init__(self) -> None:
        self.channels: dict[str, set[str]] = {channel: set() for channel in CHANNELS}

    def apply(self, request: dict[str, Any]) -> None:
        adding = request.get("action") == "subscribe"
        for channel in CHANNELS:
            symbols = {str(s) for s in request.get(channel) or ()}
            if adding:
                self.channels[channel] |= symbols
            else:
                self.channels[channel] -= symbols

    def answer(self) -> list[dict[str, Any]]:
        return [{"T": "subscription", **{c: sorted(s) for c, s in self.channels.items()}}]

    def _has(self, channel: str, symbol: str) -> bool:
        symbols = self.channels[channel]
        return "*" in symbols or symbol in symbols

    def wants(self, update: MarketUpdate, step: timedelta) -> list[dict[str, Any]]:
        """The messages of `update` this connection subscribed to, in time order."""
        out: list[dict[str, Any]] = []
        for bar, phase in update.prints:
            trades, quotes = self._has("trades", bar.symbol), self._has("quotes", bar.symbol)
            if trades or quotes:
                out.extend(tick_messages(bar, step, phase, trades=trades, quotes=quotes))
        out.extend(bar_message(bar) for bar in update.bars if self._has("bars", bar.symbol))
        out.extend(bar_message(bar, "u") for bar in update.corrections
                   if self._has("updatedBars", bar.symbol))
        out.extend(news_message(article) for article in update.news
                   if any(self._has("news", s) for s in article.symbols))
        return out


def market_data_endpoint(
    venue: PaperVenue,
    sockets: set[WebSocket],
    accepting: Callable[[], bool],
    authorized: Callable[[str | None, str | None], bool],
    step: timedelta = timedelta(minutes=1),
) -> Callable[[WebSocket], Awaitable[None]]:
    """The websocket handler; `sockets` is the hub's set (so the admin can drop them)."""

    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        if not accepting():
            await websocket.close(code=1013)
            return
        outgoing: asyncio.Queue[MarketUpdate] = asyncio.Queue()
        subscription = Subscription()
        try:
            await websocket.send_bytes(_pack([{"T": "success", "msg": "connected"}]))
            auth = await _receive(websocket)
            if auth.get("action") != "auth" or not authorized(auth.get("key"), auth.get("secret")):
                await websocket.send_bytes(
                    _pack([{"T": "error", "code": 402, "msg": "auth failed"}])
                )
                await websocket.close(code=1008)
                return
            await websocket.send_bytes(_pack([{"T": "success", "msg": "authenticated"}]))
            sockets.add(websocket)
            venue.subscribe_bars(outgoing.put_nowait)

            async def read_requests() -> None:
                while True:
                    request = await _receive(websocket)
                    if request.get("action") in ("subscribe", "unsubscribe"):
                        subscription.apply(request)
                        await websocket.send_bytes(_pack(subscription.answer()))

            async def send(update: MarketUpdate) -> None:
                messages = subscription.wants(update, step)
                if messages:
                    await websocket.send_bytes(_pack(messages))

            await relay(outgoing, asyncio.create_task(read_requests()), send)
        except (WebSocketDisconnect, RuntimeError, ValueError, msgpack.UnpackException):
            pass
        finally:
            venue.unsubscribe_bars(outgoing.put_nowait)
            sockets.discard(websocket)

    return endpoint
