"""The engine's ports. The engine talks only to these; Alpaca, the in-process simulated
exchange and the local paper exchange are adapters behind them (`trading/adapters/`),
and the model service sits behind `ModelClient`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import pandas as pd

from core.types import Decision, Fill, MarketClock, Order, OrderStatus, Position, Signal


@dataclass(frozen=True, slots=True)
class Account:
    equity: float
    cash: float
    buying_power: float
    currency: str = "USD"


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
    """Bars in the bar schema: symbol, timestamp (UTC), open, high, low, close, volume."""

    def history(
        self,
        symbols: Sequence[str] | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        timeframe: str = "1Day",
    ) -> pd.DataFrame: ...


class ModelClient(Protocol):
    """Given a signal and its features, what the models say. Raises
    `core.errors.ModelUnavailableError` when it cannot answer (down, slow, broken)."""

    def decide(self, signal: Signal, features: Mapping[str, float]) -> Decision: ...
