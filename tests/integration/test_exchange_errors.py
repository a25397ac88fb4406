"""Refusals from the paper exchange subprocess reach the engine as `BrokerError`s that
say what was refused and why (Alpaca's status and message), never as an alpaca-py or
requests traceback; a retried submit never creates a second order; a restarted exchange
keeps its orders and positions."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from core.errors import BrokerError, ConfigError
from core.settings import AlpacaCredentials
from core.types import Order, OrderClass, OrderType, Side, TimeInForce
from tests.integration.exchange_support import (
    ADMIN_HEADERS,
    KEY,
    SECRET,
    Exchange,
    sample_bars,
    write_store,
)
from trading.adapters.alpaca.execution import AlpacaBroker, AlpacaBrokerConfig

pytestmark = pytest.mark.integration


@pytest.fixture
def exchange(tmp_path: Path) -> Iterator[Exchange]:
    write_store(tmp_path / "data", sample_bars())
    running = Exchange(tmp_path, keys=True).start()
    try:
        yield running
    finally:
        running.close()


def broker_for(url: str, key: str = KEY, secret: str = SECRET) -> AlpacaBroker:
    return AlpacaBroker(
        AlpacaBrokerConfig(url_override=url),
        AlpacaCredentials(ALPACA_API_KEY=key, ALPACA_SECRET_KEY=secret),
    )


def test_refusals_become_clear_broker_errors(exchange: Exchange) -> None:
    broker = broker_for(exchange.url)
    exchange.advance(1)

    raw = httpx.post(exchange.url + "/v2/orders", headers=ADMIN_HEADERS, content=b"{not json")
    assert raw.status_code == 400
    assert raw.json() == {"code": 40010000, "message": "request body is not valid JSON"}

    with pytest.raises(BrokerError, match=r"HTTP 422\): asset 'NOPE' is not traded"):
        broker.submit(Order("bad-symbol", "NOPE", Side.BUY, 1))
    with pytest.raises(BrokerError, match=r"HTTP 403\): no long position in AAPL"):
        broker.submit(Order("naked-sell", "AAPL", Side.SELL, 1))
    with pytest.raises(BrokerError, match=r"HTTP 403\): insufficient buying power"):
        broker.submit(Order("too-big", "AAPL", Side.BUY, 1_000_000))
    with pytest.raises(BrokerError, match="no order never-sent"):
        broker.cancel("never-sent")
    assert broker.get_order("never-sent") is None
    assert broker.close_position("AAPL") is None

    broker.submit(Order("entry", "AAPL", Side.BUY, 2))
    exchange.advance(1)
    with pytest.raises(BrokerError, match=r"HTTP 422\): order is already in filled state"):
        broker.cancel("entry")
    with pytest.raises(BrokerError, match=r"only the stop_price of a stop order"):
        broker.replace_stop("entry", 100.0)
    limit = broker.submit(
        Order("low-bid", "AAPL", Side.BUY, 1, type=OrderType.LIMIT, limit_price=1.0)
    )
    assert limit.status.is_open
    broker.cancel("low-bid")
    with pytest.raises(BrokerError, match="canceled state and cannot be canceled"):
        broker.cancel("low-bid")

    with pytest.raises(BrokerError, match=r"HTTP 401\): request is not authorized"):
        broker_for(exchange.url, secret="wrong").account()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free_port = probe.getsockname()[1]
    with pytest.raises(BrokerError, match=r"cannot reach http://127\.0\.0\.1"):
        broker_for(f"http://127.0.0.1:{free_port}").account()
    with pytest.raises(ConfigError, match="ALPACA_API_KEY and ALPACA_SECRET_KEY must be set"):
        AlpacaBroker(AlpacaBrokerConfig(url_override=exchange.url), AlpacaCredentials())


def test_retried_submit_and_restart_never_duplicate(exchange: Exchange) -> None:
    broker = broker_for(exchange.url)
    exchange.advance(1)
    order = Order(
        "bracket-1",
        "MSFT",
        Side.BUY,
        10,
        order_class=OrderClass.BRACKET,
        take_profit_price=40.0,
        stop_loss_price=20.0,
    )
    first = broker.submit(order)
    again = broker.submit(order)  # a retry after a lost answer
    assert again.broker_order_id == first.broker_order_id
    assert first.take_profit_price == 40.0
    assert first.stop_loss_price == 20.0
    exchange.advance(1)
    before = ({p.symbol: p.qty for p in broker.positions()}, broker.account())
    open_before = sorted(o.client_order_id for o in broker.open_orders())
    assert open_before == ["bracket-1-sl", "bracket-1-tp"]

    exchange.kill()  # SIGKILL: the journal is all that survives
    exchange.start()
    restarted = broker_for(exchange.url)
    assert ({p.symbol: p.qty for p in restarted.positions()}, restarted.account()) == before
    assert sorted(o.client_order_id for o in restarted.open_orders()) == open_before
    assert restarted.submit(order).broker_order_id == first.broker_order_id
    ids = [o["client_order_id"] for o in exchange.orders(nested="false")]
    assert sorted(ids) == ["bracket-1", "bracket-1-sl", "bracket-1-tp"]
    stop = restarted.replace_stop("bracket-1-sl", 25.0)
    assert stop.client_order_id == "bracket-1-sl"
    assert stop.stop_price == 25.0
    assert restarted.get_order("bracket-1-sl") == stop

    # An OCO exit pair over the same shares goes through too (and is canceled on close).
    exit_pair = restarted.submit(
        Order(
            "exit-pair",
            "MSFT",
            Side.SELL,
            10,
            type=OrderType.LIMIT,
            time_in_force=TimeInForce.GTC,
            order_class=OrderClass.OCO,
            take_profit_price=45.0,
            stop_loss_price=15.0,
        )
    )
    assert exit_pair.order_class is OrderClass.OCO
    assert exit_pair.stop_loss_price == 15.0
    assert restarted.get_order("exit-pair-sl") is not None

    # Closing the position cancels its resting orders first, then flattens at the market.
    closing = restarted.close_position("MSFT")
    assert closing is not None
    assert closing.side is Side.SELL
    assert closing.qty == 10
    assert {o.client_order_id for o in restarted.open_orders()} == {closing.client_order_id}
    exchange.advance(1)
    assert restarted.positions() == []
    assert restarted.open_orders() == []
    legs = {o["client_order_id"]: o["status"] for o in exchange.orders(nested="false")}
    assert legs["bracket-1-tp"] == "canceled"
    assert legs["bracket-1-sl~r1"] == "canceled"
