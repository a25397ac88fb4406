"""The rule-based regime and what each regime selects, the fixed-strategy selector, the
rules client (the pass-through policy), and the XNYS calendar."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from core.calendar import MarketCalendar
from core.errors import DataValidationError
from core.regimes import rule_regime, selects
from core.types import Regime, Side, Signal
from trading.rules_client import RulesModelClient
from trading.selector import StrategySelector

NOW = datetime(2024, 3, 1, tzinfo=UTC)


def test_rule_regime_from_market_features() -> None:
    assert rule_regime({"mkt_vol_level": 0.30, "mkt_trend": 0.05}) is Regime.VOLATILE
    assert rule_regime({"mkt_vol_level": 0.15, "mkt_trend": 0.05}) is Regime.TRENDING
    assert rule_regime({"mkt_vol_level": 0.09, "mkt_trend": 0.01}) is Regime.CALM
    assert rule_regime({"mkt_vol_level": 0.15, "mkt_trend": 0.01}) is Regime.RANGING
    assert rule_regime({"mkt_pct_above_ema_50": 0.85}) is Regime.TRENDING  # no index: breadth
    assert rule_regime({}) is None


def test_regimes_select_strategies() -> None:
    assert selects(Regime.TRENDING, "momentum")
    assert not selects(Regime.RANGING, "momentum")
    assert selects(Regime.RANGING, "mean_reversion")
    assert selects(Regime.VOLATILE, "breakout")
    assert selects(Regime.CALM, "mean_reversion")


def test_selector_only_filters_a_fixed_strategy() -> None:
    assert StrategySelector().allows("breakout")
    fixed = StrategySelector(fixed="momentum")
    assert fixed.allows("momentum")
    assert not fixed.allows("breakout")


def test_rules_client_is_the_pass_through_policy() -> None:
    signal = Signal("AAA", Side.BUY, NOW, "momentum", 100.0)
    decision = RulesModelClient(size_fraction=0.07).decide(signal, {"atr_14": 2.0})
    assert decision.enter
    assert decision.size_fraction == pytest.approx(0.07)
    assert RulesModelClient().decide(signal, {"atr_14": 2.0}).size_fraction == pytest.approx(
        1 / 12)


def test_rules_client_two_and_three_atr() -> None:
    signal = Signal("AAA", Side.BUY, NOW, "momentum", 100.0)
    decision = RulesModelClient().decide(signal, {"atr_14": 2.0})
    assert decision.stop_loss_price == pytest.approx(96.0)
    assert decision.take_profit_price == pytest.approx(106.0)
    assert decision.win_probability is None
    assert decision.variant == "rules"
    short = RulesModelClient().decide(
        Signal("AAA", Side.SELL, NOW, "momentum", 100.0), {"atr_14": 2.0}
    )
    assert (short.stop_loss_price, short.take_profit_price) == (104.0, 94.0)
    with pytest.raises(DataValidationError, match="atr_14"):
        RulesModelClient().decide(signal, {"atr_14": float("nan")})


def test_calendar_holidays_early_closes_and_exchange_time() -> None:
    calendar = MarketCalendar()
    assert calendar.is_holiday(date(2024, 12, 25))
    assert not calendar.is_session(date(2024, 7, 4))
    assert calendar.is_early_close(date(2024, 11, 29))  # day after Thanksgiving
    assert not calendar.is_early_close(date(2024, 11, 27))
    opening, closing = calendar.session_bounds(date(2024, 7, 3))
    assert calendar.in_exchange_time(opening).hour == 9
    assert calendar.in_exchange_time(closing).hour == 13
    assert calendar.is_open(datetime(2024, 3, 1, 15, 0, tzinfo=UTC))
    clock = calendar.market_clock(datetime(2024, 12, 24, 20, 0, tzinfo=UTC))  # after the half day
    assert not clock.is_open
    assert clock.next_open == datetime(2024, 12, 26, 14, 30, tzinfo=UTC)
    assert calendar.seconds_until_open(datetime(2024, 3, 1, 15, 0, tzinfo=UTC)) == 0.0
    # Daily bars are labelled at midnight UTC of their session date.
    assert calendar.session_date(datetime(2024, 3, 1, tzinfo=UTC)) == date(2024, 3, 1)
    assert calendar.session_date(datetime(2024, 3, 1, 20, 59, tzinfo=UTC)) == date(2024, 3, 1)
    with pytest.raises(DataValidationError):
        calendar.is_open(datetime(2024, 3, 1))  # noqa: DTZ001 - the naive time is the point
