"""Alpaca's SDK objects in the engine's words and back, without a server."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from alpaca.trading.enums import OrderClass as AlpacaOrderClass
from alpaca.trading.requests import LimitOrderRequest, MarketOrderRequest, StopOrderRequest

from core.errors import BrokerError
from core.types import Order, OrderClass, OrderStatus, OrderType, Side, TimeInForce
from trading.adapters.alpaca import wire

from .alpaca_payloads import alpaca_order, bracket


def test_a_bracket_entry_is_sent_with_both_legs_at_alpaca_prices() -> None:
    order = Order(
        "tw-1", "AAA", Side.BUY, 10, order_class=OrderClass.BRACKET,
        time_in_force=TimeInForce.GTC, take_profit_price=103.456, stop_loss_price=97.991,
    )  # fmt: skip
    request = wire.order_request(order)
    assert isinstance(request, MarketOrderRequest)
    assert request.order_class is AlpacaOrderClass.BRACKET
    assert request.take_profit is not None
    assert request.take_profit.limit_price == 103.46
    assert request.stop_loss is not None
    assert request.stop_loss.stop_price == 97.99
    assert request.client_order_id == "tw-1"


def test_plain_orders_and_the_ones_alpaca_cannot_take() -> None:
    penny_stock = Order("s", "AAA", Side.SELL, 1, type=OrderType.STOP, stop_price=0.12345)
    stop = wire.order_request(penny_stock)
    assert isinstance(stop, StopOrderRequest)
    assert stop.stop_price == 0.1235
    oco = wire.order_request(
        Order("o", "AAA", Side.SELL, 1, order_class=OrderClass.OCO, take_profit_price=110.0,
              stop_loss_price=90.0)
    )  # fmt: skip
    assert isinstance(oco, LimitOrderRequest)
    assert oco.limit_price == 110.0
    with pytest.raises(BrokerError, match="needs take_profit_price"):
        wire.order_request(Order("b", "AAA", Side.BUY, 1, order_class=OrderClass.BRACKET))
    with pytest.raises(BrokerError, match="price is missing"):
        wire.order_request(Order("l", "AAA", Side.BUY, 1, type=OrderType.LIMIT))


def test_alpaca_orders_read_as_engine_orders() -> None:
    raw = bracket(status="partially_filled")
    raw.filled_qty, raw.filled_avg_price = "4", "100.5"
    order = wire.to_order(raw, "tw-1", None)
    assert order.client_order_id == "tw-1"
    assert order.order_class is OrderClass.BRACKET
    assert order.status is OrderStatus.PARTIALLY_FILLED
    assert (order.take_profit_price, order.stop_loss_price) == (103.0, 98.0)
    assert (order.filled_qty, order.filled_avg_price) == (4.0, 100.5)
    assert order.time_in_force is TimeInForce.GTC
    assert order.broker_order_id == str(raw.id)
    assert order.created_at == datetime(2024, 3, 1, 15, tzinfo=UTC)
    assert raw.legs is not None
    leg = wire.to_order(raw.legs[1], "tw-1-sl", "tw-1")
    assert (leg.order_class, leg.type, leg.stop_price) == (OrderClass.OCO, OrderType.STOP, 98.0)
    assert leg.status is OrderStatus.NEW  # held
    trailing_stop = alpaca_order(type="trailing_stop", order_type="trailing_stop")
    trailing = wire.to_order(trailing_stop, "t", None)
    assert trailing.type is OrderType.STOP
    assert wire.status_of(alpaca_order(status="done_for_day")) is OrderStatus.EXPIRED


def test_fills_have_one_id_whoever_reports_them() -> None:
    order = Order("tw-1", "AAA", Side.BUY, 10, filled_qty=6.0, filled_avg_price=101.0)
    at = datetime(2024, 3, 1, 16, tzinfo=UTC)
    fill = wire.fill(order, 6.0, None, at)
    assert (fill.fill_id, fill.price, fill.qty, fill.timestamp) == ("tw-1:6", 101.0, 6.0, at)


def test_account_positions_and_clock() -> None:
    account = wire.to_account(SimpleNamespace(equity="1000", cash="400", buying_power=None,
                                              currency=None))  # fmt: skip
    assert (account.equity, account.cash, account.buying_power, account.currency) == (
        1000.0, 400.0, 0.0, "USD",
    )  # fmt: skip
    short = SimpleNamespace(symbol="AAA", qty="5", side=SimpleNamespace(value="short"),
                            avg_entry_price="20", current_price=None)  # fmt: skip
    assert wire.to_positions([short])[0].qty == -5.0
    now = datetime(2024, 3, 1, 16, tzinfo=UTC)
    clock = wire.to_market_clock(SimpleNamespace(timestamp=now, is_open=1, next_open=None,
                                                 next_close=now))  # fmt: skip
    assert clock.is_open is True
    assert clock.next_close == now
