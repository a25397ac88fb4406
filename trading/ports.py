"""The engine's ports. The engine talks only to these; Alpaca, the in-process simulated
exchange and the local paper exchange are adapters behind them (`trading/adapters/`),
and the model service sits behind `ModelClient`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol

import pandas as pd

from core.bars import BarCheck
from core.types import Bar, Decision, Fill, MarketClock, Order, OrderStatus, Position, Signal


@dataclass(frozen=True, slots=True)
class Account:
    equity: float
    cash: float
    buying_power: float
    currency: str = "USD"
    # The equity at the previous session's close (Alpaca's `last_equity`): the day's P&L
    # and the daily-loss halt are measured from it. None when the broker cannot say.
    last_equity: float | None = None


@dataclass(frozen=True, slots=True)
class OrderUpdate:
    """One event of an order's life, as Alpaca's `trade_updates` stream reports it."""

    event: str  # new, fill, partial_fill, canceled, rejected, expired, replaced, ...
    order: Order
    status: OrderStatus
    fill: Fill | None = None
    timestamp: datetime | None = None


class Broker(Protocol):
    """Where orders go. Every call may raise `core.errors.BrokerError`."""

    def account(self) -> Account: ...

    def positions(self) -> list[Position]: ...

    def open_orders(self) -> list[Order]: ...

    def get_order(self, client_order_id: str) -> Order | None: ...

    def market_clock(self) -> MarketClock: ...

    def submit(self, order: Order) -> Order:
        """Submit a market/limit/stop or bracket order. Submitting the same
        `client_order_id` twice returns the existing order, never a second one."""
        ...

    def cancel(self, client_order_id: str) -> None: ...

    def replace_stop(self, client_order_id: str, stop_price: float) -> Order:
        """Move a resting stop order (trailing stops)."""
        ...

    def close_position(self, symbol: str) -> Order | None: ...

    def updates(self) -> AsyncIterator[OrderUpdate]:
        """The stream of order updates (fills, cancels, rejects...)."""
        ...


class MarketData(Protocol):
    """Bars in the bar schema: symbol, timestamp (UTC), open, high, low, close, volume,
    sorted by symbol and time. `symbols=None` means every symbol the source has (a source
    that cannot list its symbols raises `DataSourceError`); start and end are inclusive,
    a bare date meaning that whole New York day (`core.bars.time_bound`)."""

    def history(
        self,
        symbols: Sequence[str] | None = None,
        start: datetime | date | str | None = None,
        end: datetime | date | str | None = None,
        timeframe: str = "1Day",
    ) -> pd.DataFrame: ...

    def history_check(
        self,
        symbols: Sequence[str] | None = None,
        start: datetime | date | str | None = None,
        end: datetime | date | str | None = None,
        timeframe: str = "1Day",
    ) -> BarCheck:
        """The same bars, with what validation repaired and the jump warnings."""
        ...


@dataclass(frozen=True, slots=True)
class TradePrint:
    """One trade on the tape (Alpaca's `trades` channel)."""

    symbol: str
    timestamp: datetime
    price: float
    size: float


@dataclass(frozen=True, slots=True)
class BarCorrection:
    """A bar revised after it was sent (Alpaca's `updatedBars`): it replaces the bar of
    the same symbol and time."""

    bar: Bar


@dataclass(frozen=True, slots=True)
class Headline:
    """One news article for one of its symbols (Alpaca's news stream)."""

    symbol: str
    timestamp: datetime
    headline: str
    news_id: str = ""  # the article's id at the source (the same article once)


StreamEvent = Bar | TradePrint | BarCorrection


class BarStream(Protocol):
    """Bars pushed as they close (Alpaca's market-data stream, or the paper exchange's).
    Per symbol each bar comes once and in time order; bars missed while the stream was
    down, and since `after` (the last bar the caller has), are back-filled from history
    before the next live one. Trade prints and bar corrections come in between when the
    stream was configured to subscribe to them (never otherwise)."""

    def bars(
        self, symbols: Sequence[str], after: datetime | None = None
    ) -> AsyncIterator[StreamEvent]: ...

    def close(self) -> None: ...


class NewsStream(Protocol):
    """Headlines pushed as they are published, one per tagged symbol traded; with
    `since`, those published since then come first (back-filled from the news API)."""

    def headlines(
        self, symbols: Sequence[str], since: datetime | None = None
    ) -> AsyncIterator[Headline]: ...

    def close(self) -> None: ...


class ModelClient(Protocol):
    """Given a signal and its features, what the models say. Raises
    `core.errors.ModelUnavailableError` when it cannot answer (down, slow, broken)."""

    def decide(self, signal: Signal, features: Mapping[str, float]) -> Decision: ...
