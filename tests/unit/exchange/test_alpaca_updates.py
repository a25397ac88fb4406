"""Every order change reaches the engine exactly once, stream or catch-up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from core.types import Order, OrderStatus, OrderType, Side
from trading.adapters.alpaca.updates import UpdateTracker, in_order

T = datetime(2024, 3, 1, 15, tzinfo=UTC)


def order(status: OrderStatus, filled: float = 0.0, *, stop: float | None = None) -> Order:
    return Order(
        "tw-1", "AAA", Side.BUY, 10, type=OrderType.STOP if stop else OrderType.MARKET,
        stop_price=stop, status=status, filled_qty=filled,
        filled_avg_price=100.0 if filled else None, created_at=T,
    )  # fmt: skip


def test_a_fill_reported_by_a_catch_up_is_not_repeated_by_the_stream() -> None:
    tracker = UpdateTracker()
    tracker.seed([order(OrderStatus.ACCEPTED)])
    caught = tracker.from_catch_up(order(OrderStatus.FILLED, 10), T + timedelta(minutes=1))
    assert caught is not None
    assert caught.event == "fill"
    assert caught.fill is not None
    assert (caught.fill.qty, caught.fill.fill_id) == (10.0, "tw-1:10")
    late = tracker.from_stream(order(OrderStatus.FILLED, 10), "fill", price=100.0, qty=10.0, at=T)
    assert late is None
    assert tracker.from_catch_up(order(OrderStatus.FILLED, 10), T) is None  # nothing new


def test_stream_partial_fills_then_the_rest_by_catch_up() -> None:
    tracker = UpdateTracker()
    tracker.seed([])
    first = tracker.from_stream(
        order(OrderStatus.PARTIALLY_FILLED, 4), "partial_fill", price=99.5, qty=4.0, at=T
    )
    assert first is not None
    assert first.fill is not None
    assert (first.fill.qty, first.fill.price, first.fill.fill_id) == (4.0, 99.5, "tw-1:4")
    rest = tracker.from_catch_up(order(OrderStatus.FILLED, 10), T + timedelta(minutes=5))
    assert rest is not None
    assert rest.fill is not None
    assert (rest.event, rest.fill.qty) == ("fill", 6.0)


def test_terminal_states_once_and_moved_stops() -> None:
    tracker = UpdateTracker()
    tracker.seed([order(OrderStatus.ACCEPTED, stop=95.0)])
    moved = tracker.from_catch_up(order(OrderStatus.ACCEPTED, stop=97.0), T)
    assert moved is not None
    assert moved.event == "replaced"
    canceled = tracker.from_stream(
        order(OrderStatus.CANCELED, stop=97.0), "canceled", price=None, qty=None, at=T
    )
    assert canceled is not None
    assert canceled.status is OrderStatus.CANCELED
    again = tracker.from_stream(
        order(OrderStatus.CANCELED, stop=97.0), "canceled", price=None, qty=None, at=T
    )
    assert again is None


def test_an_order_first_seen_by_a_catch_up_is_new_or_its_fill() -> None:
    tracker = UpdateTracker()
    tracker.seed([])
    fresh = tracker.from_catch_up(order(OrderStatus.NEW), None)
    assert fresh is not None
    assert (fresh.event, fresh.timestamp) == ("new", T)
    other = UpdateTracker()
    other.seed([])
    filled = other.from_catch_up(order(OrderStatus.FILLED, 10), None)
    assert filled is not None
    assert filled.event == "fill"


def test_updates_in_the_order_they_happened_fills_first() -> None:
    tracker = UpdateTracker()
    fill = tracker.from_catch_up(order(OrderStatus.FILLED, 10), T)
    cancel = UpdateTracker().from_catch_up(
        Order("tw-1-sl", "AAA", Side.SELL, 10, status=OrderStatus.CANCELED, created_at=T), T
    )
    early = UpdateTracker().from_catch_up(order(OrderStatus.NEW), T - timedelta(hours=1))
    assert fill is not None
    assert cancel is not None
    assert early is not None
    assert in_order([cancel, fill, early]) == [early, fill, cancel]
