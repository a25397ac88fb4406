"""Trade prints (trades streamed): an open position's stop and target are checked at
every print by the rule the engine applies at a bar's close (`stops.exit_crossed`),
and the trailing stop follows the prints. Against the real matching engine behind the
SimulatedBroker; a print reaches the matching engine as a one-price bar, as the paper
exchange's intrabar prints do."""

from __future__ import annotations

from datetime import timedelta

import pytest

from core.types import Bar, Side
from trading.ports import TradePrint
from trading.stops import exit_crossed

from .helpers import Harness, session


def held() -> Harness:
    """Long 100-ish shares of AAA from session 1's open at 100: stop 98, target 103."""
    h = Harness()
    h.bar(0, 100, 101, 99, 100, signal=Side.BUY)
    h.bar(1, 100, 100.6, 99.6, 100.0)  # the trailing stop (close - 2 ATR) stays at 98
    assert h.engine.book.get("AAA") is not None
    return h


def trade(h: Harness, minutes: int, price: float) -> None:
    """A print during session 2: the exchange matches it, then the engine hears it."""
    at = session(2) + timedelta(minutes=minutes)
    h.clock.advance_to(at)
    h.matching.on_bar(Bar("AAA", at, price, price, price, price, 100))
    h.drain()
    h.engine.on_trade(TradePrint("AAA", at, price, 100))
    h.drain()


def cancel_stop_leg(h: Harness) -> None:
    position = h.engine.book.get("AAA")
    assert position is not None
    assert position.stop_order_id is not None
    h.broker.cancel(position.stop_order_id)
    h.drain()
    assert position.stop_order_id is None  # the engine still watches its stop price


def test_the_one_rule() -> None:
    assert exit_crossed(Side.BUY, 98.0, 103.0, 97.99) == "stop_loss"
    assert exit_crossed(Side.BUY, 98.0, 103.0, 98.0) == "stop_loss"
    assert exit_crossed(Side.BUY, 98.0, 103.0, 103.0) == "take_profit"
    assert exit_crossed(Side.BUY, 98.0, 103.0, 100.0) is None
    assert exit_crossed(Side.SELL, 102.0, 97.0, 102.5) == "stop_loss"
    assert exit_crossed(Side.SELL, 102.0, 97.0, 96.0) == "take_profit"
    assert exit_crossed(Side.BUY, None, None, 1.0) is None


def test_a_print_through_the_stop_exits_at_the_next_print_within_the_bar() -> None:
    h = held()
    cancel_stop_leg(h)
    trade(h, 5, 99.0)  # above the stop: nothing
    assert h.journal.trades().empty
    trade(h, 6, 97.9)  # through the stop: the engine asks to exit at the market
    position = h.engine.book.get("AAA")
    assert position is not None
    assert position.exit_reason == "stop_loss"
    trade(h, 7, 97.5)  # the close fills at the next print, before the day's bar
    trades = h.journal.trades()
    assert list(trades["exit_reason"]) == ["stop_loss"]
    assert trades.loc[0, "exit_price"] == pytest.approx(97.5)
    assert trades.loc[0, "exit_time"] == session(2) + timedelta(minutes=7)
    assert h.engine.stats.prints == 3


def test_a_print_at_the_target_exits_by_the_same_rule() -> None:
    h = held()
    trade(h, 5, 103.2)  # the broker's take-profit leg fills at the print itself
    trades = h.journal.trades()
    assert list(trades["exit_reason"]) == ["take_profit"]
    assert trades.loc[0, "exit_time"] == session(2) + timedelta(minutes=5)


def test_the_trailing_stop_follows_the_prints() -> None:
    h = held()
    trade(h, 5, 102.4)  # 2 x ATR (1.0) below: the stop rises to 100.4 at the broker
    position = h.engine.book.get("AAA")
    assert position is not None
    assert position.stop_price == pytest.approx(100.4)
    stop = h.broker.get_order(str(position.stop_order_id))
    assert stop is not None
    assert stop.stop_price == pytest.approx(100.4)
    trade(h, 6, 101.0)  # lower print: the stop never loosens
    assert position.stop_price == pytest.approx(100.4)


def test_prints_of_symbols_without_a_position_change_nothing() -> None:
    h = Harness()
    h.engine.on_trade(TradePrint("AAA", session(0), 50.0, 10))
    assert h.engine.stats.prints == 1
    assert h.broker.open_orders() == []
