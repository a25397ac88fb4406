"""Reconcile on start, against a hand-written broker that holds what a restart finds."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

from core.types import (
    MarketClock,
    Order,
    OrderClass,
    OrderStatus,
    OrderType,
    Position,
    Side,
)
from trading.journal import Journal
from trading.pending_entries import PendingEntries
from trading.ports import Account, OrderUpdate
from trading.position_book import OpenPosition, PositionBook
from trading.recovery import reconcile

NOW = datetime(2024, 3, 1, 15, tzinfo=UTC)


class RestartedBroker:
    """The broker's books as a restarted engine finds them."""

    def __init__(self, positions: list[Position], orders: list[Order]) -> None:
        self._positions = positions
        self._orders = {o.client_order_id: o for o in orders}

    def account(self) -> Account:
        return Account(100_000.0, 100_000.0, 100_000.0)

    def positions(self) -> list[Position]:
        return list(self._positions)

    def open_orders(self) -> list[Order]:
        return [o for o in self._orders.values() if o.status.is_open]

    def get_order(self, client_order_id: str) -> Order | None:
        return self._orders.get(client_order_id)

    def market_clock(self) -> MarketClock:
        return MarketClock(NOW, True, None, None)

    def submit(self, order: Order) -> Order:
        raise AssertionError("recovery submits nothing")

    def cancel(self, client_order_id: str) -> None:
        raise AssertionError("recovery cancels nothing")

    def replace_stop(self, client_order_id: str, stop_price: float) -> Order:
        raise AssertionError("recovery moves nothing")

    def close_position(self, symbol: str) -> Order | None:
        raise AssertionError("recovery closes nothing")

    async def updates(self) -> AsyncIterator[OrderUpdate]:
        raise AssertionError("not streamed")
        yield


def stop_leg(symbol: str, parent: str) -> Order:
    return Order(
        f"{parent}-sl", symbol, Side.SELL, 10.0, type=OrderType.STOP, stop_price=95.0,
        order_class=OrderClass.OCO, status=OrderStatus.ACCEPTED, parent_client_order_id=parent,
    )  # fmt: skip


def test_adopts_positions_with_their_stops_and_re_registers_entries() -> None:
    known = OpenPosition(
        "KNOWN", Side.BUY, 1.0, 10.0, NOW, "tw-k", "momentum", None, {}, None, None
    )
    book = PositionBook()
    book.adopt(known)
    waiting = Order("tw-new", "CCC", Side.BUY, 5.0, status=OrderStatus.ACCEPTED)
    broker = RestartedBroker(
        positions=[
            Position("AAA", 10.0, 100.0),
            Position("BBB", -3.0, 50.0),
            Position("KNOWN", 1.0, 10.0),
            Position("FLAT", 0.0, 1.0),
        ],
        orders=[stop_leg("AAA", "tw-aaa"), waiting],
    )
    pending = PendingEntries()
    report = reconcile(
        broker=broker, journal=Journal("sqlite://"), book=book, pending=pending, now=NOW
    )
    assert report.adopted == ["AAA", "BBB"]
    assert report.pending == ["tw-new"]
    assert report.vanished == []
    aaa, bbb = book.get("AAA"), book.get("BBB")
    assert aaa is not None
    assert bbb is not None
    assert (aaa.trade_id, aaa.stop_order_id, aaa.stop_price) == ("tw-aaa", "tw-aaa-sl", 95.0)
    assert (aaa.strategy, aaa.entry_time, aaa.qty) == ("adopted", NOW, 10.0)
    assert (bbb.side, bbb.qty, bbb.trade_id, bbb.stop_order_id) == (
        Side.SELL, 3.0, "adopted-BBB", None,
    )  # fmt: skip
    assert book.get("KNOWN") is known
    assert pending.is_waiting("CCC", "tw-new")


def test_journal_open_orders_take_the_brokers_state_or_are_canceled() -> None:
    journal = Journal("sqlite://")
    filled = Order("tw-done", "AAA", Side.BUY, 5.0, status=OrderStatus.ACCEPTED)
    gone = Order("tw-gone", "BBB", Side.BUY, 5.0, status=OrderStatus.ACCEPTED)
    journal.record_order(filled, at=NOW)
    journal.record_order(gone, at=NOW)
    journal.flush()
    broker = RestartedBroker(
        positions=[],
        orders=[Order("tw-done", "AAA", Side.BUY, 5.0, status=OrderStatus.FILLED, filled_qty=5)],
    )
    report = reconcile(
        broker=broker, journal=journal, book=PositionBook(), pending=PendingEntries(), now=NOW
    )
    assert report.vanished == ["tw-gone"]
    orders = journal.orders().set_index("client_order_id")["status"].to_dict()
    assert orders == {"tw-done": "filled", "tw-gone": "canceled"}
    assert journal.orders(open_only=True).empty
    assert report.as_dict() == {"adopted": [], "pending": [], "vanished": ["tw-gone"]}


def test_with_its_symbols_it_leaves_other_positions_and_orders_alone() -> None:
    waiting = Order("tw-other", "CCC", Side.BUY, 5.0, status=OrderStatus.ACCEPTED)
    broker = RestartedBroker(
        positions=[Position("AAA", 10.0, 100.0), Position("BBB", -3.0, 50.0)],
        orders=[stop_leg("BBB", "tw-bbb"), waiting],
    )
    book, pending = PositionBook(), PendingEntries()
    report = reconcile(
        broker=broker, journal=Journal("sqlite://"), book=book, pending=pending, now=NOW,
        symbols=frozenset({"AAA"}),
    )  # fmt: skip
    assert report.adopted == ["AAA"]
    assert report.pending == []
    assert book.get("BBB") is None
    assert not pending.is_waiting("CCC", "tw-other")
