"""The position book alone: fills in, positions and closed trades out, no broker."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.types import Bar, BracketLeg, Decision, Fill, Order, OrderClass, OrderStatus, Side, Signal
from trading.position_book import EntryIntent, PositionBook

T0 = datetime(2024, 1, 2, 5, tzinfo=UTC)
ENTRY = "tw-abc"


def at(day: int) -> datetime:
    return T0 + timedelta(days=day)


def order(
    client_order_id: str,
    side: Side,
    *,
    order_class: OrderClass = OrderClass.SIMPLE,
    status: OrderStatus = OrderStatus.FILLED,
    stop: float | None = None,
) -> Order:
    return Order(
        client_order_id, "AAA", side, 10.0, order_class=order_class, status=status,
        stop_loss_price=stop,
    )  # fmt: skip


def fill(client_order_id: str, side: Side, qty: float, price: float, day: int) -> Fill:
    return Fill(f"{client_order_id}:{day}", client_order_id, "AAA", side, qty, price, at(day), 0.5)


def decision() -> Decision:
    signal = Signal("AAA", Side.BUY, T0, "momentum", 100.0)
    return Decision("d-1", signal, 0.7, 98.0, 103.0, None, None, variant="challenger")


def bracket_entry(book: PositionBook) -> None:
    entry = order(ENTRY, Side.BUY, order_class=OrderClass.BRACKET, stop=98.0)
    intent = EntryIntent("momentum", decision(), {"atr_14": 1.0})
    book.apply_fill(entry, fill(ENTRY, Side.BUY, 10.0, 100.0, 1), intent)


def test_entry_fills_average_into_one_position_with_its_stop_leg() -> None:
    book = PositionBook()
    partial = order(
        ENTRY,
        Side.BUY,
        order_class=OrderClass.BRACKET,
        status=OrderStatus.PARTIALLY_FILLED,
        stop=98.0,
    )
    intent = EntryIntent("momentum", None)
    first = book.apply_fill(partial, fill(ENTRY, Side.BUY, 4.0, 100.0, 1), intent)
    assert first.added
    assert first.closed is None
    assert first.position.qty == 4.0
    result = book.apply_fill(partial, fill(ENTRY, Side.BUY, 6.0, 105.0, 1), None)
    position = book.get("AAA")
    assert position is not None
    assert position.qty == 10.0
    assert position.entry_price == pytest.approx(103.0)
    assert position.commission == pytest.approx(1.0)
    assert position.stop_order_id == BracketLeg.STOP_LOSS.leg_id(ENTRY)
    assert position.strategy == "momentum"  # from the first fill's intent
    assert result.position.qty == 10.0
    assert book.signed_quantities() == {"AAA": 10.0}


def test_bars_move_holding_time_and_excursions() -> None:
    book = PositionBook()
    bracket_entry(book)
    book.mark(Bar("AAA", at(2), 100.0, 104.0, 97.0, 101.0, 1e6))
    position = book.mark(Bar("AAA", at(3), 101.0, 102.0, 99.0, 100.5, 1e6))
    assert position is not None
    assert position.bars_held == 2
    assert position.last_price == 100.5
    assert position.max_favorable == pytest.approx(4.0)
    assert position.max_adverse == pytest.approx(3.0)
    assert book.mark(Bar("ZZZ", at(3), 1, 1, 1, 1, 1)) is None


@pytest.mark.parametrize(
    ("exit_id", "stop_moved", "reason"),
    [
        (BracketLeg.TAKE_PROFIT.leg_id(ENTRY), False, "take_profit"),
        (BracketLeg.STOP_LOSS.leg_id(ENTRY), False, "stop_loss"),
        (BracketLeg.STOP_LOSS.leg_id(ENTRY), True, "trailing_stop"),
        ("close-AAA", False, "time_limit"),
    ],
)
def test_back_to_zero_is_a_closed_trade_with_its_exit_reason(
    exit_id: str, stop_moved: bool, reason: str
) -> None:
    book = PositionBook()
    bracket_entry(book)
    position = book.get("AAA")
    assert position is not None
    position.stop_moved = stop_moved
    position.exit_reason = "time_limit"  # what the engine asked, used for a plain exit
    exit_order = order(exit_id, Side.SELL)
    half = book.apply_fill(exit_order, fill(exit_id, Side.SELL, 4.0, 103.0, 5), None)
    assert half.closed is None
    assert half.position.qty == 6.0
    done = book.apply_fill(exit_order, fill(exit_id, Side.SELL, 6.0, 104.0, 6), None)
    assert done.closed is not None
    trade = done.closed.trade
    assert trade.exit_reason == reason
    assert trade.qty == 10.0
    assert trade.exit_price == pytest.approx((4 * 103.0 + 6 * 104.0) / 10)
    assert trade.entry_time == at(1)
    assert trade.exit_time == at(6)
    assert trade.commission == pytest.approx(1.5)
    assert trade.decision_id == "d-1"
    assert done.closed.position.features == {"atr_14": 1.0}
    assert done.position.qty == 0.0
    assert "AAA" not in book
    assert len(book) == 0


def test_a_fill_no_plan_explains_is_an_external_position() -> None:
    book = PositionBook()
    book.apply_fill(order("manual", Side.SELL), fill("manual", Side.SELL, 5.0, 50.0, 1), None)
    position = book.get("AAA")
    assert position is not None
    assert position.strategy == "external"
    assert position.decision is None
    assert position.stop_order_id is None
    assert book.signed_quantities() == {"AAA": -5.0}
