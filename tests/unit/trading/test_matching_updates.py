"""What the matching engine tells its listeners (the paper exchange's `trade_updates`, the
simulated broker's stream): every event carries its order's status and the time it
happened; fills are numbered per order; partial fills average their prices; a position
that flips side books its average price from the flip."""

from __future__ import annotations

import pytest

from core.types import Order, OrderStatus, Side
from trading.ports import OrderUpdate

from .test_matching import bar, buy_bracket, day, make, step


def _listen(engine: object) -> list[OrderUpdate]:
    updates: list[OrderUpdate] = []
    engine.subscribe(updates.append)  # type: ignore[attr-defined]
    return updates


def test_every_event_carries_its_status_and_time() -> None:
    engine, clock = make()
    updates = _listen(engine)
    engine.submit(buy_bracket())
    step(engine, clock, bar(1, 100, 102, 99, 101))
    engine.replace_stop("b1-sl", 97.0)
    step(engine, clock, bar(2, 105, 112, 104, 111))
    seen = [(u.event, u.order.client_order_id, u.status, u.timestamp) for u in updates]
    assert seen == [
        ("new", "b1", OrderStatus.NEW, day(0)),
        ("fill", "b1", OrderStatus.FILLED, day(1)),
        ("new", "b1-tp", OrderStatus.NEW, day(1)),
        ("new", "b1-sl", OrderStatus.NEW, day(1)),
        ("replaced", "b1-sl", OrderStatus.NEW, day(1)),
        ("fill", "b1-tp", OrderStatus.FILLED, day(2)),
        ("canceled", "b1-sl", OrderStatus.CANCELED, day(2)),
    ]
    legs = engine.legs("b1")
    assert legs is not None
    assert [leg.broker_order_id for leg in legs] == ["sim-2", "sim-3"]
    assert {leg.order_class.value for leg in legs} == {"oco"}
    assert legs[1].limit_price is None


def test_partial_fills_are_numbered_and_averaged() -> None:
    engine, clock = make(max_volume_fraction=0.01)
    updates = _listen(engine)
    engine.submit(Order("m1", "AAA", Side.BUY, 30))
    step(engine, clock, bar(1, 100, 101, 99, 100, volume=1_000))  # 10 at 100
    step(engine, clock, bar(2, 110, 111, 109, 110, volume=2_000))  # 20 at 110
    fills = [u for u in updates if u.fill is not None]
    assert [(u.event, u.status) for u in fills] == [
        ("partial_fill", OrderStatus.PARTIALLY_FILLED), ("fill", OrderStatus.FILLED)]
    assert [u.fill.fill_id for u in fills if u.fill] == ["m1-1", "m1-2"]
    assert [u.timestamp for u in fills] == [day(1), day(2)]
    order = engine.get_order("m1")
    assert order is not None
    assert order.filled_qty == 30
    assert order.filled_avg_price == pytest.approx((10 * 100 + 20 * 110) / 30)
    assert engine.position("AAA").avg_entry_price == pytest.approx(320 / 3)  # type: ignore[union-attr]


def test_a_sell_beyond_the_position_fills_only_what_is_held() -> None:
    engine, clock = make()
    engine.submit(Order("b", "AAA", Side.BUY, 10))
    step(engine, clock, bar(1, 100, 101, 99, 100))
    updates = _listen(engine)
    engine.submit(Order("s1", "AAA", Side.SELL, 4))
    engine.submit(Order("s2", "AAA", Side.SELL, 10))
    step(engine, clock, bar(2, 100, 101, 99, 100))
    events = [(u.event, u.order.client_order_id, u.status) for u in updates]
    assert ("fill", "s1", OrderStatus.FILLED) in events
    assert ("partial_fill", "s2", OrderStatus.PARTIALLY_FILLED) in events
    assert engine.get_order("s2").filled_qty == 6  # type: ignore[union-attr]
    assert engine.position("AAA") is None
    step(engine, clock, bar(3, 100, 101, 99, 100))  # nothing left to sell: the rest goes
    assert engine.get_order("s2").status is OrderStatus.CANCELED  # type: ignore[union-attr]
    assert ("canceled", "s2", OrderStatus.CANCELED) in [
        (u.event, u.order.client_order_id, u.status) for u in updates]


def test_a_short_that_covers_through_zero_opens_long_at_the_fill_price() -> None:
    engine, clock = make(allow_short=True)
    engine.submit(Order("s", "AAA", Side.SELL, 10))
    step(engine, clock, bar(1, 100, 101, 99, 100))
    assert engine.position("AAA").qty == -10  # type: ignore[union-attr]
    engine.submit(Order("b", "AAA", Side.BUY, 15))
    step(engine, clock, bar(2, 90, 91, 89, 90))
    position = engine.position("AAA")
    assert position is not None
    assert (position.qty, position.avg_entry_price) == (5, 90.0)
    assert engine.account().cash == pytest.approx(100_000 + 10 * 100 - 15 * 90)
