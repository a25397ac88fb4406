"""`SimulatedBroker`: the `Broker` port over an in-process `MatchingEngine`. Backtests
drive it bar by bar (the replay hands each bar to the engine's `on_bar`); the trading
engine talks to it exactly as it talks to Alpaca."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import datetime

from core.types import MarketClock, Order, OrderType, Position, Side, TimeInForce
from trading.adapters.simulated.matching import MatchingEngine
from trading.ports import Account, OrderUpdate

SessionClock = Callable[[datetime], MarketClock]


class SimulatedBroker:
    """Implements `trading.ports.Broker` against a matching engine.

    `session_clock` answers `market_clock()` (e.g. `MarketCalendar.market_clock`); without
    it the simulated market is always open, which suits a replay that only shows session
    bars."""

    def __init__(self, engine: MatchingEngine, session_clock: SessionClock | None = None) -> None:
        self.engine = engine
        self._session_clock = session_clock

    def account(self) -> Account:
        return self.engine.account()

    def positions(self) -> list[Position]:
        return self.engine.positions()

    def open_orders(self) -> list[Order]:
        return self.engine.open_orders()

    def get_order(self, client_order_id: str) -> Order | None:
        return self.engine.get_order(client_order_id)

    def market_clock(self) -> MarketClock:
        now = self.engine.clock.now()
        if self._session_clock is not None:
            return self._session_clock(now)
        return MarketClock(timestamp=now, is_open=True, next_open=None, next_close=None)

    def submit(self, order: Order) -> Order:
        return self.engine.submit(order)

    def cancel(self, client_order_id: str) -> None:
        self.engine.cancel(client_order_id)

    def replace_stop(self, client_order_id: str, stop_price: float) -> Order:
        return self.engine.replace_stop(client_order_id, stop_price)

    def close_position(self, symbol: str) -> Order | None:
        """Cancel the symbol's resting orders (bracket legs) and flatten at the market."""
        position = self.engine.position(symbol)
        for order in self.engine.open_orders(symbol):
            self.engine.cancel(order.client_order_id)
        if position is None:
            return None
        now = self.engine.clock.now()
        return self.engine.submit(
            Order(
                client_order_id=f"close-{symbol}-{now:%Y%m%dT%H%M%S%f}",
                symbol=symbol,
                side=Side.SELL if position.qty > 0 else Side.BUY,
                qty=abs(position.qty),
                type=OrderType.MARKET,
                time_in_force=TimeInForce.DAY,
            )
        )

    def updates(self) -> AsyncIterator[OrderUpdate]:
        return self._stream()

    async def _stream(self) -> AsyncIterator[OrderUpdate]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[OrderUpdate] = asyncio.Queue()

        def push(update: OrderUpdate) -> None:
            # The matching engine may run in another thread (a replay feeding bars).
            try:
                same_loop = asyncio.get_running_loop() is loop
            except RuntimeError:
                same_loop = False
            if same_loop:
                queue.put_nowait(update)
            else:
                loop.call_soon_threadsafe(queue.put_nowait, update)

        unsubscribe = self.engine.subscribe(push)
        try:
            while True:
                yield await queue.get()
        finally:
            unsubscribe()
