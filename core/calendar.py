"""The exchange calendar: NYSE (XNYS) sessions, early closes and holidays from
`exchange_calendars`, answered in exchange time (America/New_York) or UTC. The one place
Tradewind builds a calendar: the engine and the market-day gate ask `MarketCalendar`;
the vectorized temporal features take the underlying schedule from `exchange_calendar`.

The engine asks whether the market is open, when it opens or closes next, and which
session a bar belongs to. Daily bars are labelled at 00:00 UTC of their session date (the
convention of every data source here), so a midnight-UTC timestamp names its own date;
any other timestamp belongs to the session of its New York date."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import exchange_calendars as xcals
import pandas as pd

from core.errors import ConfigError, DataValidationError
from core.types import MarketClock
from core.utc import require_aware, utc_datetime

EXCHANGE = "XNYS"
EXCHANGE_TZ = ZoneInfo("America/New_York")
_CALENDAR_START = "1995-01-01"


@lru_cache(maxsize=8)
def exchange_calendar(
    name: str = EXCHANGE, start: str = _CALENDAR_START, end: str | None = None
) -> xcals.ExchangeCalendar:
    """The `exchange_calendars` calendar `name` from `start` to `end` (the library's
    default horizon when None), built once per bounds."""
    try:
        return xcals.get_calendar(name, start=start, end=end)
    except Exception as exc:  # the library raises several unrelated types
        raise ConfigError(
            f"cannot build exchange calendar '{name}' from {start} to {end or 'its horizon'}: "
            f"{exc}",
            where="calendar",
        ) from None


def calendar_for_years(name: str, first_year: int, last_year: int) -> xcals.ExchangeCalendar:
    """The calendar over whole years: a history truncated mid-year sees the same sessions
    ahead (no accidental lookahead through the calendar's bounds)."""
    return exchange_calendar(name, f"{first_year}-01-01", f"{last_year}-12-31")


class MarketCalendar:
    """Sessions and the market clock of one exchange (XNYS by default)."""

    def __init__(self, name: str = EXCHANGE) -> None:
        self.name = name
        self._cal = exchange_calendar(name)

    def _through(self, day: date) -> xcals.ExchangeCalendar:
        """A calendar that reaches `day`: the default one (the library's horizon, about a
        year ahead), or one to the end of the year after `day` for schedules that look
        further ahead."""
        if pd.Timestamp(day) <= self._cal.last_session:
            return self._cal
        return exchange_calendar(self.name, _CALENDAR_START, f"{day.year + 1}-12-31")

    # ------------------------------------------------------------------ sessions
    def is_session(self, day: date) -> bool:
        return bool(self._through(day).is_session(pd.Timestamp(day)))

    def sessions(self, start: date, end: date) -> list[date]:
        """Trading days from `start` to `end`, inclusive."""
        labels = self._through(end).sessions_in_range(pd.Timestamp(start), pd.Timestamp(end))
        return [label.date() for label in labels]

    def session_bounds(self, day: date) -> tuple[datetime, datetime]:
        """Open and close of the session `day`, tz-aware UTC."""
        self._require_session(day)
        label = pd.Timestamp(day)
        return (
            self._cal.session_open(label).to_pydatetime(),
            self._cal.session_close(label).to_pydatetime(),
        )

    def is_early_close(self, day: date) -> bool:
        """True on half days (e.g. the day after Thanksgiving closes at 13:00)."""
        _, close = self.session_bounds(day)
        return close.astimezone(EXCHANGE_TZ).time() < time(16, 0)

    def is_holiday(self, day: date) -> bool:
        """A weekday without a session."""
        return day.weekday() < 5 and not self.is_session(day)

    def holidays(self, start: date, end: date) -> list[date]:
        """Weekdays in [start, end] without a session."""
        sessions = set(self.sessions(start, end))
        return [day for day in pd.bdate_range(start, end).date if day not in sessions]

    def session_date(self, moment: datetime) -> date:
        """The session date a bar timestamp belongs to (see the module docstring)."""
        require_aware(moment, where="calendar")
        utc = utc_datetime(moment)
        if utc.time() == time(0, 0):
            return utc.date()
        return utc.astimezone(EXCHANGE_TZ).date()

    # ------------------------------------------------------------------ the clock
    def is_open(self, moment: datetime) -> bool:
        require_aware(moment, where="calendar")
        return bool(self._cal.is_open_on_minute(pd.Timestamp(moment).tz_convert(UTC)))

    def next_open(self, moment: datetime) -> datetime:
        require_aware(moment, where="calendar")
        return self._cal.next_open(pd.Timestamp(moment).tz_convert(UTC)).to_pydatetime()

    def next_close(self, moment: datetime) -> datetime:
        require_aware(moment, where="calendar")
        return self._cal.next_close(pd.Timestamp(moment).tz_convert(UTC)).to_pydatetime()

    def market_clock(self, moment: datetime) -> MarketClock:
        """The broker-style clock at `moment` (what `Broker.market_clock` returns)."""
        return MarketClock(
            timestamp=moment,
            is_open=self.is_open(moment),
            next_open=self.next_open(moment),
            next_close=self.next_close(moment),
        )

    def seconds_until_open(self, moment: datetime) -> float:
        """0 while the market is open; else how long the engine may sleep."""
        if self.is_open(moment):
            return 0.0
        return max(0.0, (self.next_open(moment) - moment).total_seconds())

    def in_exchange_time(self, moment: datetime) -> datetime:
        require_aware(moment, where="calendar")
        return moment.astimezone(EXCHANGE_TZ)

    def previous_session(self, day: date) -> date:
        probe = day - timedelta(days=1)
        for _ in range(15):
            if self.is_session(probe):
                return probe
            probe -= timedelta(days=1)
        raise DataValidationError(f"no session in the 15 days before {day}", where="calendar")

    def _require_session(self, day: date) -> None:
        if not self.is_session(day):
            raise DataValidationError(f"{day} is not a {self.name} session", where="calendar")

