"""The engine on real 1-minute bars (AAPL and MSFT, three sessions of August 2021) with
the intraday session rules: entries only inside the allowed window, every position closed
before each close, trailing stops moved within the day, and refusals counted as
`session`. The same engine runs live (`tradewind trade --timeframe 1Min`)."""

from __future__ import annotations

import pandas as pd
import pytest

from core.calendar import MarketCalendar
from core.settings import IntradaySettings, RiskSettings, Settings
from core.types import BAR_COLUMNS
from tests.conftest import shared_file
from trading.backtest import BacktestResult, run_backtest

FIRST, LAST, FLATTEN = 15, 15, 5
CALENDAR = MarketCalendar()


def session_of(moment: pd.Timestamp) -> tuple[object, pd.Timestamp, pd.Timestamp]:
    """(session date, open, close) of the session a bar time belongs to."""
    day = CALENDAR.session_date(moment)
    opens, closes = CALENDAR.session_bounds(day)
    return day, pd.Timestamp(opens), pd.Timestamp(closes)


def _run(risk: RiskSettings) -> BacktestResult:
    bars = pd.read_parquet(shared_file("intraday/minute_2021.parquet"))
    bars = bars.loc[bars["symbol"].isin(["AAPL", "MSFT"]), list(BAR_COLUMNS)]
    settings = Settings(
        risk=risk,
        intraday=IntradaySettings(
            no_entry_first_minutes=FIRST,
            no_entry_last_minutes=LAST,
            flatten_before_close_minutes=FLATTEN,
        ),
    )
    return run_backtest(bars.reset_index(drop=True), settings=settings, gate_enabled=False)


@pytest.fixture(scope="module")
def result() -> BacktestResult:
    """The default exits: 2x/3x ATR of 1-minute bars, held at most 20 bars."""
    return _run(RiskSettings())


@pytest.fixture(scope="module")
def held() -> BacktestResult:
    """Exits far away and no time limit: positions are still open when the close nears."""
    return _run(RiskSettings(max_holding_bars=390, stop_loss_atr=40.0, take_profit_atr=60.0,
                             trailing_stop_atr=40.0))


def test_entries_only_inside_the_session_window(result: BacktestResult) -> None:
    decisions = result.journal.decisions()
    entered = decisions.loc[decisions["action"] == "entered"]
    assert len(entered) > 0
    for signal_time in entered["signal_time"]:
        _, opens, closes = session_of(signal_time)
        decided = signal_time + pd.Timedelta(minutes=1)
        assert opens + pd.Timedelta(minutes=FIRST) <= decided
        assert decided <= closes - pd.Timedelta(minutes=LAST)
    assert result.stats.refusals.get("session", 0) > 0


@pytest.mark.parametrize("name", ["result", "held"])
def test_every_position_is_flat_before_each_close(
    name: str, request: pytest.FixtureRequest
) -> None:
    result: BacktestResult = request.getfixturevalue(name)
    trades = result.journal.trades()
    assert len(trades) > 0
    for entry, exit_ in zip(trades["entry_time"], trades["exit_time"], strict=True):
        session, _, closes = session_of(entry)
        assert CALENDAR.session_date(exit_) == session, "held overnight"
        assert exit_ < closes
    assert result.metrics["open_positions_at_end"] == 0


def test_the_flatten_closes_what_is_still_open(held: BacktestResult) -> None:
    trades = held.journal.trades()
    flattened = trades.loc[trades["exit_reason"] == "session_close"]
    assert len(flattened) > 0
    for exit_ in flattened["exit_time"]:
        _, _, closes = session_of(exit_)
        assert closes - pd.Timedelta(minutes=FLATTEN) <= exit_ < closes


def test_stops_move_within_the_day(result: BacktestResult) -> None:
    assert result.stats.stop_moves > 0


def test_the_daily_loss_halt_trips_within_the_session() -> None:
    """A 0.05% daily-loss limit on minute bars: the breaker trips in the middle of a
    session (equity is marked every minute), later entries that session are refused,
    and the next session trades again."""
    halting = _run(RiskSettings(daily_loss_halt_pct=0.0005, max_position_pct=0.5))
    equity = halting.journal.equity()
    first_halt = equity.loc[equity["halted"].astype(bool), "timestamp"].min()
    session, opens, closes = session_of(first_halt)
    assert opens + pd.Timedelta(minutes=30) < first_halt < closes - pd.Timedelta(minutes=30)
    assert halting.stats.rejections_by_rule.get("daily_loss_halt", 0) > 0
    decisions = halting.journal.decisions()
    entered = decisions.loc[decisions["action"] == "entered", "signal_time"]
    same_session = [CALENDAR.session_date(t) == session for t in entered]
    assert not any(t >= first_halt for t, same in zip(entered, same_session, strict=True)
                   if same)
    assert any(CALENDAR.session_date(t) > session for t in entered)
