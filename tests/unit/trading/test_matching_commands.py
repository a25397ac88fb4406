"""The matching engine's commands and reads at their edges: cancel and replace_stop refuse
what they must with one clear error naming the order, a canceled order never fills, a
partly filled exit leg shrinks its sibling, positions and prices read what the fills did."""

from __future__ import annotations

import pytest

from core.errors import BrokerError, DataValidationError, NotFoundError
from core.types import Order, OrderStatus, OrderType, Side, TimeInForce

from .test_matching import bar, buy_bracket, make, step


def test_cancel_closes_the_order_and_a_canceled_order_never_fills() -> None:
    engine, clock = make()
    events: list[tuple[str, str]] = []
    engine.subscribe(lambda update: events.append((update.event, update.order.client_order_id)))
    engine.submit(Order("m1", "AAA", Side.BUY, 10))
    canceled = engine.cancel("m1")
    assert events == [("new", "m1"), ("canceled", "m1")]
    assert canceled.status is OrderStatus.CANCELED
    assert engine.open_orders() == []
    assert engine.cancel("m1") == canceled  # again: unchanged
    assert step(engine, clock, bar(1, 100, 101, 99, 100)) == []
    assert engine.positions() == []


def test_a_filled_order_cannot_be_canceled() -> None:
    engine, clock = make()
    engine.submit(Order("m1", "AAA", Side.BUY, 10))
    step(engine, clock, bar(1, 100, 101, 99, 100))
    with pytest.raises(BrokerError) as refused:
        engine.cancel("m1")
    assert refused.value.message == "order m1 is filled; it cannot be canceled"
    assert refused.value.where == "MatchingEngine.cancel"
    with pytest.raises(NotFoundError, match="no order with client_order_id nope"):
        engine.cancel("nope")


def test_replace_stop_refuses_what_is_not_an_open_stop() -> None:
    engine, clock = make()
    engine.submit(buy_bracket())
    step(engine, clock, bar(1, 100, 102, 99, 101))
    with pytest.raises(BrokerError) as not_a_stop:
        engine.replace_stop("b1-tp", 97.0)
    assert not_a_stop.value.message == "order b1-tp is a limit order, not a stop"
    assert not_a_stop.value.where == "MatchingEngine.replace_stop"
    with pytest.raises(DataValidationError) as bad_price:
        engine.replace_stop("b1-sl", 0.0)
    assert bad_price.value.message == "stop price must be positive, got 0.0"
    assert engine.get_order("b1-sl").stop_price == 95.0  # type: ignore[union-attr]
    step(engine, clock, bar(2, 100, 101, 90, 91))  # the stop fills
    with pytest.raises(BrokerError) as closed:
        engine.replace_stop("b1-sl", 97.0)
    assert closed.value.message == "order b1-sl is filled; only open stops move"
    assert closed.value.where == "MatchingEngine.replace_stop"


def test_a_partly_filled_exit_leg_shrinks_its_sibling() -> None:
    engine, clock = make(max_volume_fraction=0.01)
    engine.submit(buy_bracket(qty=30))
    step(engine, clock, bar(1, 100, 102, 99, 101, volume=10_000))  # entry: 30 of 100 allowed
    assert engine.position("AAA").qty == 30  # type: ignore[union-attr]
    step(engine, clock, bar(2, 105, 112, 104, 111, volume=1_000))  # target: 10 of 30
    take_profit, stop_loss = engine.get_order("b1-tp"), engine.get_order("b1-sl")
    assert take_profit is not None
    assert stop_loss is not None
    assert (take_profit.filled_qty, take_profit.status) == (10, OrderStatus.PARTIALLY_FILLED)
    assert (stop_loss.qty, stop_loss.status) == (20, OrderStatus.NEW)
    assert engine.position("AAA").qty == 20  # type: ignore[union-attr]
    step(engine, clock, bar(3, 111, 112, 110, 111, volume=10_000))  # the rest of the target
    assert engine.get_order("b1-tp").status is OrderStatus.FILLED  # type: ignore[union-attr]
    assert engine.get_order("b1-sl").status is OrderStatus.CANCELED  # type: ignore[union-attr]
    assert engine.position("AAA") is None
    assert engine.positions() == []


def test_positions_prices_and_fills_read_what_happened() -> None:
    engine, clock = make()
    assert engine.position("AAA") is None
    assert engine.last_price("AAA") is None
    engine.mark("AAA", 99.0)
    assert engine.last_price("AAA") == 99.0
    engine.submit(Order("m1", "AAA", Side.BUY, 10))
    step(engine, clock, bar(1, 100, 101, 99, 100.5))
    position = engine.position("AAA")
    assert position is not None
    assert (position.symbol, position.qty, position.avg_entry_price, position.market_price) == (
        "AAA", 10, 100.0, 100.5)
    assert engine.positions() == [position]
    assert engine.last_price("AAA") == 100.5
    (fill,) = engine.fills()
    assert (fill.client_order_id, fill.qty, fill.price) == ("m1", 10, 100.0)
    engine.submit(Order("m2", "AAA", Side.SELL, 10))
    step(engine, clock, bar(2, 101, 102, 100, 101))
    assert engine.position("AAA") is None
    assert engine.positions() == []
    assert len(engine.fills()) == 2


def test_a_canceled_resting_limit_leaves_the_book_of_its_symbol() -> None:
    engine, clock = make()
    limit = Order("l1", "AAA", Side.BUY, 10, type=OrderType.LIMIT, limit_price=90.0,
                  time_in_force=TimeInForce.GTC)
    engine.submit(limit)
    engine.submit(Order("l2", "AAA", Side.BUY, 5, type=OrderType.LIMIT, limit_price=80.0,
                        time_in_force=TimeInForce.GTC))
    engine.cancel("l1")
    assert [o.client_order_id for o in engine.open_orders("AAA")] == ["l2"]
    assert step(engine, clock, bar(1, 85, 86, 79, 80)) == ["fill"]
    assert engine.get_order("l1").status is OrderStatus.CANCELED  # type: ignore[union-attr]


def test_one_share_left_on_the_other_leg_stays_protected() -> None:
    engine, clock = make(max_volume_fraction=0.01)
    engine.submit(buy_bracket(qty=30))
    step(engine, clock, bar(1, 100, 102, 99, 101, volume=10_000))
    step(engine, clock, bar(2, 105, 112, 104, 111, volume=2_900))  # target: 29 of 30
    stop_loss = engine.get_order("b1-sl")
    assert stop_loss is not None
    assert (stop_loss.qty, stop_loss.status) == (1, OrderStatus.NEW)
