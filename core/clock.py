"""Injected time. Backtests and live trading run the same code path; only the clock
handed to the engine differs."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from core.errors import DataValidationError
from core.utc import require_aware, utc_now


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, tz-aware UTC."""
        ...


class WallClock:
    """The machine's clock, in UTC."""

    def now(self) -> datetime:
        return utc_now()


class ReplayClock:
    """A clock moved forward by the replay; it never goes back."""

    def __init__(self, start: datetime) -> None:
        require_aware(start, where="ReplayClock")
        self._now = start

    def now(self) -> datetime:
        return self._now

    def advance_to(self, moment: datetime) -> None:
        require_aware(moment, where="ReplayClock.advance_to")
        if moment < self._now:
            raise DataValidationError(
                f"replay clock cannot go back from {self._now.isoformat()} to {moment.isoformat()}",
                where="ReplayClock.advance_to",
            )
        self._now = moment

