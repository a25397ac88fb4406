"""The engine's collaborators, watched: the journal (decisions, fills, closed trades),
the model client (failures, the fallback, the circuit breaker) and the broker (order
latency, stream reconnections). Each wrapper does exactly what the wrapped object does
and tells the `EventHub` what happened; the engine cannot tell the difference."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from typing import Any

from core.errors import ModelUnavailableError
from core.types import Decision, Fill, MarketClock, Order, Position, Signal, Trade
from trading.control.events import EventHub
from trading.journal import DecisionRecord, Journal
from trading.ports import Account, ModelClient, OrderUpdate
from trading.service import RecoveringBroker


class ObservedJournal(Journal):
    """The journal, telling the hub about each new decision, fill and closed trade."""

    def __init__(self, url: str, hub: EventHub, **options: Any) -> None:
        super().__init__(url, **options)
        self.hub = hub
        self._seen_fills: set[str] = set()

    def record_decision(self, record: DecisionRecord) -> None:
        super().record_decision(record)
        self.hub.decision(record)

    def record_fill(self, fill: Fill) -> None:
        super().record_fill(fill)
        if fill.fill_id not in self._seen_fills:
            self._seen_fills.add(fill.fill_id)
            self.hub.fill(fill)

    def record_trade(self, trade: Trade) -> None:
        super().record_trade(trade)
        self.hub.trade_closed(trade)


class ObservedModelClient:
    """A `ModelClient` whose failures (and recoveries) are events. `fallback` is what the
    engine does meanwhile: "rules" (the rules client decides) or "no_entry"."""

    def __init__(self, inner: ModelClient, hub: EventHub, *, fallback: str) -> None:
        self.inner = inner
        self.hub = hub
        self.fallback = fallback
        self.calls = 0
        self.failures = 0

    @property
    def endpoint(self) -> str | None:
        endpoint = getattr(self.inner, "endpoint", None)
        return str(endpoint) if endpoint else None

    def breaker_state(self) -> str:
        breaker = getattr(self.inner, "breaker", None)
        return str(breaker.state) if breaker is not None else "none"

    def decide(self, signal: Signal, features: Mapping[str, float]) -> Decision:
        self.calls += 1
        try:
            decision = self.inner.decide(signal, features)
        except ModelUnavailableError as exc:
            self.failures += 1
            self.hub.breaker(self.breaker_state())
            if getattr(exc, "status", None) is None:  # a refusal by a healthy service is not
                self.hub.model_failed(exc.message, fallback=self.fallback)
            raise
        self.hub.breaker(self.breaker_state())
        self.hub.model_ok()
        return decision

    def models(self) -> dict[str, Any] | None:
        """The model service's `GET /models` (versions per A/B arm), None without one."""
        ask = getattr(self.inner, "models", None)
        if ask is None:
            return None
        answer: dict[str, Any] = ask()
        return answer


class ObservedBroker:
    """A broker whose order submissions are timed and whose stream reconnections are
    counted (the stream's first connection is not a reconnection)."""

    def __init__(self, inner: RecoveringBroker, hub: EventHub) -> None:
        self.inner = inner
        self.hub = hub
        self._connections_seen = 0

    def check_stream(self) -> None:
        """Report reconnections since the last look (the runner calls this each poll)."""
        connections = int(getattr(self.inner, "stream_connections", 0) or 0)
        while self._connections_seen < connections:
            self._connections_seen += 1
            if self._connections_seen > 1:
                self.hub.reconnected(self._connections_seen)

    def submit(self, order: Order) -> Order:
        started = time.perf_counter()
        try:
            return self.inner.submit(order)
        finally:
            self.hub.metrics.order_latency.observe(time.perf_counter() - started)

    def account(self) -> Account:
        return self.inner.account()

    def positions(self) -> list[Position]:
        return self.inner.positions()

    def open_orders(self) -> list[Order]:
        return self.inner.open_orders()

    def get_order(self, client_order_id: str) -> Order | None:
        return self.inner.get_order(client_order_id)

    def market_clock(self) -> MarketClock:
        return self.inner.market_clock()

    def cancel(self, client_order_id: str) -> None:
        self.inner.cancel(client_order_id)

    def replace_stop(self, client_order_id: str, stop_price: float) -> Order:
        return self.inner.replace_stop(client_order_id, stop_price)

    def close_position(self, symbol: str) -> Order | None:
        return self.inner.close_position(symbol)

    def updates(self) -> AsyncIterator[OrderUpdate]:
        return self.inner.updates()

    def recent_orders(self) -> list[tuple[Order, datetime | None]]:
        return self.inner.recent_orders()

    def sync(self) -> list[OrderUpdate]:
        return self.inner.sync()

    def close(self) -> None:
        self.inner.close()
