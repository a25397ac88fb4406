"""The one exchange calendar: sessions and holidays for the engine and the gate, whole
years for the temporal features."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from core.calendar import MarketCalendar, calendar_for_years, exchange_calendar
from core.errors import ConfigError
from core.utc import utc_now


def test_holidays_are_weekdays_without_a_session() -> None:
    calendar = MarketCalendar()
    assert calendar.holidays(date(2024, 11, 25), date(2024, 12, 31)) == [
        date(2024, 11, 28),
        date(2024, 12, 25),
    ]
    assert calendar.holidays(date(2024, 7, 1), date(2024, 7, 5)) == [date(2024, 7, 4)]


def test_holidays_past_the_default_horizon_for_schedules_a_year_ahead() -> None:
    calendar = MarketCalendar()  # the library's default horizon is about a year ahead
    assert calendar.holidays(date(2026, 11, 1), date(2027, 1, 10)) == [
        date(2026, 11, 26),
        date(2026, 12, 25),
        date(2027, 1, 1),
    ]
    new_year = date(utc_now().year + 3, 1, 1)
    assert not calendar.is_session(new_year)
    assert len(calendar.sessions(new_year, new_year + timedelta(days=14))) >= 8
    assert calendar.holidays(date(2031, 11, 24), date(2031, 11, 28)) == [date(2031, 11, 27)]


def test_whole_years_and_the_engine_calendar_agree_on_sessions() -> None:
    years = calendar_for_years("XNYS", 2008, 2010)
    assert str(years.first_session.date()) == "2008-01-02"
    assert str(years.last_session.date()) == "2010-12-31"
    engine = MarketCalendar()
    sessions = [label.date() for label in years.sessions_in_range("2009-01-01", "2009-12-31")]
    assert sessions == engine.sessions(date(2009, 1, 1), date(2009, 12, 31))
    assert calendar_for_years("XNYS", 2008, 2010) is years  # built once


def test_an_unknown_exchange_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="NOPE"):
        exchange_calendar("NOPE")
