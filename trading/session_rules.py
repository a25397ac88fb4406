"""Intraday session rules, judged at each bar's decision time (its close: bars are
stamped at their start, so a 1-minute bar stamped 09:30 is decided at 09:31 New York):

- no entries in the first `no_entry_first_minutes` after the regular open, in the last
  `no_entry_last_minutes` before the close (early closes included), or outside the
  regular session;
- with `flatten_before_close_minutes`, every position is closed at the first bar decided
  that many minutes (or fewer) before the close, and no entry is taken after it.

Daily bars (1Day) are decided at the close by construction: the rules do not apply."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field

from core.bars import DAILY, check_timeframe, timeframe_step
from core.calendar import MarketCalendar
from core.settings import IntradaySettings


class SessionRules(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    timeframe: str = DAILY
    no_entry_first_minutes: int = Field(0, ge=0, le=390)
    no_entry_last_minutes: int = Field(0, ge=0, le=390)
    flatten_before_close_minutes: int | None = Field(None, ge=1, le=390)

    @classmethod
    def from_settings(cls, intraday: IntradaySettings, timeframe: str) -> SessionRules:
        rules = intraday.model_dump(include=set(cls.model_fields) - {"timeframe"})
        return cls(timeframe=check_timeframe(timeframe), **rules)

    @property
    def intraday(self) -> bool:
        return self.timeframe != DAILY


class SessionWindows:
    """The rules applied to bar times on an exchange calendar."""

    def __init__(self, rules: SessionRules, calendar: MarketCalendar) -> None:
        self.rules = rules
        self._calendar = calendar
        self._step = timeframe_step(rules.timeframe)
        self._bounds: dict[date, tuple[datetime, datetime] | None] = {}

    def _session(self, bar_time: datetime) -> tuple[datetime, datetime, datetime] | None:
        """(open, close, decision time) of the bar's session, or None outside sessions."""
        day = self._calendar.session_date(bar_time)
        if day not in self._bounds:
            is_session = self._calendar.is_session(day)
            self._bounds[day] = self._calendar.session_bounds(day) if is_session else None
        bounds = self._bounds[day]
        if bounds is None:
            return None
        return bounds[0], bounds[1], bar_time + self._step

    def entry_refusal(self, bar_time: datetime) -> str | None:
        """Why no entry may be decided on the bar stamped `bar_time`, or None."""
        if not self.rules.intraday:
            return None
        found = self._session(bar_time)
        if found is None:
            return "no session on this date"
        opens, closes, decided = found
        minutes = timedelta(minutes=1)
        if decided <= opens or decided > closes:
            return "outside the regular session"
        if decided < opens + self.rules.no_entry_first_minutes * minutes:
            return f"first {self.rules.no_entry_first_minutes} minutes of the session"
        if decided > closes - self.rules.no_entry_last_minutes * minutes:
            return f"last {self.rules.no_entry_last_minutes} minutes of the session"
        if self.flatten_due(bar_time):
            return "positions are being flattened before the close"
        return None

    def flatten_due(self, bar_time: datetime) -> bool:
        """True from the first bar decided `flatten_before_close_minutes` before the close
        to the close."""
        flatten = self.rules.flatten_before_close_minutes
        if not self.rules.intraday or flatten is None:
            return False
        found = self._session(bar_time)
        if found is None:
            return False
        _, closes, decided = found
        return closes - timedelta(minutes=flatten) <= decided and bar_time < closes
