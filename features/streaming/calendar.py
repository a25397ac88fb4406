"""Temporal features and decision times, bar by bar: the streaming twin of
`features.temporal`, with the same values. The exchange calendar is read once per
session date (open, close, its place in the month); each bar then costs a few integer
operations."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from core.calendar import calendar_for_years
from features.temporal import EXTENDED_HOURS_END, EXTENDED_HOURS_START

NAN = math.nan
MINUTE_NS = 60_000_000_000
DAY_NS = 86_400_000_000_000
_EXTENDED_START = int(EXTENDED_HOURS_START.value)
_EXTENDED_END = int(EXTENDED_HOURS_END.value)
_LAST_MINUTE = 23 * 3_600_000_000_000 + 59 * MINUTE_NS


@dataclass(frozen=True, slots=True)
class SessionDay:
    """What the calendar says about one date (exchange-local date)."""

    is_session: bool
    open_ns: int
    close_ns: int
    local_midnight_ns: int
    dow: float
    days_to_month_end: float
    days_since_month_start: float


class SessionClock:
    """Temporal columns for a timestamp; daily bars are placed on their UTC date."""

    def __init__(self, *, daily: bool, calendar: str = "XNYS") -> None:
        self.daily = daily
        self._calendar = calendar
        self._days: dict[tuple[int, int, int], SessionDay] = {}
        self._tz: ZoneInfo | None = None

    def _day(self, year: int, month: int, day: int) -> SessionDay:
        known = self._days.get((year, month, day))
        if known is None:
            self._load_year(year)
            known = self._days[(year, month, day)]
        return known

    def _load_year(self, year: int) -> None:
        """Every date of `year` at once (vectorized), so no bar pays for a new date."""
        cal = calendar_for_years(self._calendar, year - 1, year + 1)
        self._tz = ZoneInfo(str(cal.tz))
        schedule = cal.schedule
        sessions = schedule.index.to_numpy(dtype="datetime64[ns]")
        dates = pd.date_range(f"{year}-01-01", f"{year}-12-31", freq="D")
        values = dates.to_numpy(dtype="datetime64[ns]")
        is_session = np.isin(values, sessions)
        opens = schedule["open"].reindex(values).to_numpy(dtype="datetime64[ns]")
        closes = schedule["close"].reindex(values).to_numpy(dtype="datetime64[ns]")
        open_ns = np.where(is_session, opens.astype(np.int64), 0)
        close_ns = np.where(is_session, closes.astype(np.int64), 0)
        months = dates.to_period("M")
        month_start = months.start_time.to_numpy(dtype="datetime64[ns]")
        next_month = (months + 1).start_time.to_numpy(dtype="datetime64[ns]")
        at_or_before = np.searchsorted(sessions, values, side="right")
        before = np.searchsorted(sessions, values, side="left")
        to_month_end = np.searchsorted(sessions, next_month, side="left") - at_or_before
        since_month_start = before - np.searchsorted(sessions, month_start, side="left")
        midnight = dates.tz_localize(self._tz).asi8
        for i, date in enumerate(dates):
            self._days[(year, date.month, date.day)] = SessionDay(
                is_session=bool(is_session[i]),
                open_ns=int(open_ns[i]),
                close_ns=int(close_ns[i]),
                local_midnight_ns=int(midnight[i]),
                dow=float(date.dayofweek),
                days_to_month_end=float(to_month_end[i]),
                days_since_month_start=float(since_month_start[i]),
            )

    def _session_day(self, timestamp_ns: int) -> SessionDay:
        if self.daily:
            moment = datetime.fromtimestamp(timestamp_ns / 1e9, UTC)
        else:
            if self._tz is None:
                self._load_year(datetime.fromtimestamp(timestamp_ns / 1e9, UTC).year)
            moment = datetime.fromtimestamp(timestamp_ns // 1_000_000_000, self._tz)
        return self._day(moment.year, moment.month, moment.day)

    def decision_ns(self, timestamp_ns: int) -> int:
        """When the bar's features are known (see `features.temporal.decision_times`)."""
        if not self.daily:
            return timestamp_ns
        day = self._session_day(timestamp_ns)
        if day.is_session:
            return day.close_ns
        return timestamp_ns - timestamp_ns % DAY_NS + _LAST_MINUTE

    def features(self, timestamp_ns: int) -> dict[str, float]:
        day = self._session_day(timestamp_ns)
        if self.daily:
            if day.is_session:
                session, since_open, to_close = 1, (day.close_ns - day.open_ns) / MINUTE_NS, 0.0
            else:
                session, since_open, to_close = -1, NAN, NAN
        else:
            clock = timestamp_ns - day.local_midnight_ns
            extended = _EXTENDED_START <= clock < _EXTENDED_END
            session = -1
            if day.is_session:
                if day.open_ns <= timestamp_ns < day.close_ns:
                    session = 1
                elif extended:
                    session = 0 if timestamp_ns < day.open_ns else 2
            if session >= 0:
                since_open = (timestamp_ns - day.open_ns) / MINUTE_NS
                to_close = (day.close_ns - timestamp_ns) / MINUTE_NS
            else:
                since_open = to_close = NAN
        if session == 0:
            bucket = 0
        elif session == 2:
            bucket = 6
        elif session == -1:
            bucket = -1
        elif to_close <= 30:
            bucket = 5
        elif since_open < 30:
            bucket = 1
        elif since_open < 120:
            bucket = 2
        elif since_open < 270:
            bucket = 3
        else:
            bucket = 4
        return {
            "tod_bucket": float(bucket),
            "dow": day.dow,
            "session_code": float(session),
            "session_is_regular": float(session == 1),
            "minutes_since_open": since_open,
            "minutes_to_close": to_close,
            "days_to_month_end": day.days_to_month_end,
            "days_since_month_start": day.days_since_month_start,
        }
