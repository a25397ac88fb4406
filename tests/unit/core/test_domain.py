"""Domain types and the clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.clock import ReplayClock
from core.errors import DataValidationError
from core.types import Side, Signal, Trade

T0 = datetime(2020, 1, 2, 5, tzinfo=UTC)


def _trade(side: Side, entry: float, exit_: float, commission: float = 0.0) -> Trade:
    return Trade(
        trade_id="t1", symbol="AAPL", side=side, qty=10, entry_time=T0, entry_price=entry,
        exit_time=T0 + timedelta(days=3), exit_price=exit_, strategy="momentum",
        exit_reason="take_profit", commission=commission,
    )  # fmt: skip


def test_long_and_short_trades_book_profit_the_right_way_net_of_costs() -> None:
    long_win = _trade(Side.BUY, 100.0, 110.0, commission=2.0)
    assert long_win.pnl == pytest.approx(98.0)
    assert long_win.return_pct == pytest.approx(0.10 - 2.0 / 1000.0)
    assert long_win.is_win
    short_win = _trade(Side.SELL, 100.0, 90.0)
    assert short_win.pnl == pytest.approx(100.0)
    assert _trade(Side.SELL, 100.0, 110.0).pnl == pytest.approx(-100.0)
    assert not _trade(Side.BUY, 100.0, 100.0, commission=1.0).is_win
    assert long_win.holding_seconds == pytest.approx(3 * 86_400)


def test_a_signal_id_is_stable_and_tells_signals_apart() -> None:
    signal = Signal("AAPL", Side.BUY, T0, "momentum", 100.0, "ema cross")
    same = Signal("AAPL", Side.BUY, T0, "momentum", 101.0, "other reason")
    other = Signal("AAPL", Side.SELL, T0, "momentum", 100.0)
    assert signal.signal_id == same.signal_id
    assert signal.signal_id != other.signal_id
    assert len(signal.signal_id) == 16


def test_the_replay_clock_moves_forward_only_and_needs_time_zones() -> None:
    clock = ReplayClock(T0)
    clock.advance_to(T0 + timedelta(days=1))
    assert clock.now() == T0 + timedelta(days=1)
    with pytest.raises(DataValidationError, match="cannot go back"):
        clock.advance_to(T0)
    with pytest.raises(DataValidationError, match="no time zone"):
        clock.advance_to(datetime(2020, 1, 5))  # noqa: DTZ001 - the naive time under test
