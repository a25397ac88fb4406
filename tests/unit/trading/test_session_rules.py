"""Intraday session rules on the real XNYS calendar: the entry windows, the flatten
window (early closes included), and daily bars untouched."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import pytest
from pydantic import ValidationError

from core.calendar import MarketCalendar
from core.errors import DataValidationError
from core.settings import IntradaySettings
from trading.session_rules import SessionRules, SessionWindows

CALENDAR = MarketCalendar()
RULES = IntradaySettings(
    no_entry_first_minutes=15, no_entry_last_minutes=15, flatten_before_close_minutes=5
)


def at(text: str) -> datetime:
    """A New York wall-clock time as an aware UTC datetime."""
    return pd.Timestamp(text, tz="America/New_York").tz_convert("UTC").to_pydatetime()


def windows(timeframe: str = "1Min") -> SessionWindows:
    return SessionWindows(SessionRules.from_settings(RULES, timeframe), CALENDAR)


@pytest.mark.parametrize(
    ("bar", "refused"),
    [
        ("2021-08-23 09:30", "first 15 minutes"),  # decided 09:31
        ("2021-08-23 09:43", "first 15 minutes"),  # decided 09:44
        ("2021-08-23 09:44", None),  # decided 09:45: the window is over
        ("2021-08-23 15:44", None),  # decided 15:45, exactly 15 minutes before the close
        ("2021-08-23 15:45", "last 15 minutes"),
        ("2021-08-23 08:00", "outside the regular session"),  # pre-market
        ("2021-08-23 16:05", "outside the regular session"),  # post-market
        ("2021-08-21 10:00", "no session"),  # a Saturday
        ("2021-11-26 12:44", None),  # the day after Thanksgiving closes at 13:00
        ("2021-11-26 12:45", "last 15 minutes"),
    ],
)
def test_entry_windows(bar: str, refused: str | None) -> None:
    reason = windows().entry_refusal(at(bar))
    if refused is None:
        assert reason is None
    else:
        assert reason is not None
        assert refused in reason


def test_flatten_window_reaches_the_close_early_closes_included() -> None:
    rules = windows()
    assert not rules.flatten_due(at("2021-08-23 15:53"))  # decided 15:54
    assert rules.flatten_due(at("2021-08-23 15:54"))  # decided 15:55
    assert rules.flatten_due(at("2021-08-23 15:59"))
    assert not rules.flatten_due(at("2021-11-26 12:53"))
    assert rules.flatten_due(at("2021-11-26 12:54"))
    only_flatten = SessionWindows(
        SessionRules(timeframe="1Min", flatten_before_close_minutes=5), CALENDAR
    )
    assert only_flatten.entry_refusal(at("2021-08-23 15:53")) is None
    assert "flattened" in (only_flatten.entry_refusal(at("2021-08-23 15:54")) or "")


def test_five_minute_bars_are_decided_at_their_close() -> None:
    rules = windows("5Min")
    assert rules.entry_refusal(at("2021-08-23 09:35")) is not None  # decided 09:40
    assert rules.entry_refusal(at("2021-08-23 09:40")) is None  # decided 09:45
    assert rules.flatten_due(at("2021-08-23 15:50"))  # decided 15:55


def test_daily_bars_ignore_the_session_rules() -> None:
    rules = windows("1Day")
    midnight = pd.Timestamp("2021-08-23", tz="UTC").to_pydatetime()
    assert rules.entry_refusal(midnight) is None
    assert not rules.flatten_due(midnight)


def test_bad_rules_get_one_clear_error() -> None:
    with pytest.raises(DataValidationError, match="unknown timeframe '2Min'"):
        SessionRules.from_settings(RULES, "2Min")
    with pytest.raises(ValidationError):
        IntradaySettings(no_entry_first_minutes=-1)
