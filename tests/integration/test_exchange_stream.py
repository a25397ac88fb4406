"""`AlpacaBroker.updates()` over alpaca-py's TradingStream against the paper exchange
subprocess: updates arrive over the websocket, and a fill that happens while the stream
is forcibly disconnected (and refused until the fill is done) is recovered by the catch-up after the
reconnect, exactly once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from core.settings import AlpacaCredentials
from core.types import Order, Side
from tests.integration.exchange_support import KEY, SECRET, Exchange, sample_bars, write_store
from trading.adapters.alpaca.execution import AlpacaBroker, AlpacaBrokerConfig
from trading.ports import OrderUpdate

pytestmark = pytest.mark.integration


@pytest.fixture
def exchange(tmp_path: Path) -> Iterator[Exchange]:
    write_store(tmp_path / "data", sample_bars())
    running = Exchange(tmp_path).start()
    try:
        yield running
    finally:
        running.close()


def make_broker(exchange: Exchange) -> AlpacaBroker:
    return AlpacaBroker(
        AlpacaBrokerConfig(
            url_override=exchange.url,
            reconnect_min_backoff_seconds=0.2,
            reconnect_max_backoff_seconds=1.0,
        ),
        AlpacaCredentials(ALPACA_API_KEY=KEY, ALPACA_SECRET_KEY=SECRET),
    )


async def until(condition: Callable[[], object], what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def test_updates_survive_a_forced_disconnect(exchange: Exchange) -> None:
    broker = make_broker(exchange)
    received: list[OrderUpdate] = []

    async def scenario() -> None:
        async def consume() -> None:
            async for update in broker.updates():
                received.append(update)

        consumer = asyncio.create_task(consume())
        try:
            await until(lambda: exchange.state()["listeners"] == 1, "the stream to listen")
            exchange.advance(1)
            broker.submit(Order("live-1", "AAPL", Side.BUY, 5))
            exchange.advance(1)
            await until(
                lambda: any(
                    u.event == "fill" and u.order.client_order_id == "live-1" for u in received
                ),
                "the live fill over the websocket",
            )
            assert broker.caught_up_updates == 0

            # Cut the stream and refuse reconnects for a while; meanwhile an order fills.
            broker.submit(Order("missed-1", "MSFT", Side.BUY, 7))
            dropped = exchange.drop_streams(refuse_seconds=600)
            assert dropped["dropped"] == 1
            await until(lambda: exchange.state()["listeners"] == 0, "the stream to drop")
            exchange.advance(1)
            exchange.accept_streams()
            await until(
                lambda: any(
                    u.event == "fill" and u.order.client_order_id == "missed-1" for u in received
                ),
                "the missed fill, recovered by the catch-up",
            )
            assert broker.stream_connections >= 2
            assert broker.caught_up_updates >= 1

            # After the reconnect the live stream works again, and nothing came twice.
            await until(lambda: exchange.state()["listeners"] == 1, "the stream to be back")
            broker.submit(Order("live-2", "AAPL", Side.BUY, 3))
            exchange.advance(1)
            await until(
                lambda: any(
                    u.event == "fill" and u.order.client_order_id == "live-2" for u in received
                ),
                "a live fill after the reconnect",
            )
        finally:
            consumer.cancel()

    try:
        asyncio.run(scenario())
    finally:
        broker.close()
    fills = [u.fill for u in received if u.fill is not None]
    assert sorted(f.fill_id for f in fills) == ["live-1:5", "live-2:3", "missed-1:7"]
    missed = next(f for f in fills if f.client_order_id == "missed-1")
    assert missed.qty == 7
    assert missed.price > 0
    assert missed.timestamp == next(
        u.timestamp for u in received if u.fill is not None and u.fill is missed
    )
    positions = {p.symbol: p.qty for p in broker.positions()}
    assert positions == {"AAPL": 8.0, "MSFT": 7.0}
