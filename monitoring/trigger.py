"""When the learning loop retrains: every `every_trades` closed trades since the last
retrain of a journal (`trigger="trades"`), or always on a schedule or when forced. The
loop's memory of the last retrain per journal is a small JSON file
(`<data_dir>/loop/retrain_state.json`), written atomically.

`LoopCadence` is the same rule stepped through replay time (the demo): at each month
boundary, retrain on N closed trades or on the schedule (capped at `max_retrains`), and
evaluate the A/B arms every `ab_every_months` and at the end."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from core.errors import DataValidationError

TRIGGERS = ("trades", "schedule")


@dataclass(frozen=True, slots=True)
class RetrainStateFile:
    """The last retrain per journal URL (`last_as_of`, `mlflow_run_id`)."""

    path: Path

    @classmethod
    def under(cls, data_dir: Path) -> RetrainStateFile:
        """The loop's state file below a data directory."""
        return cls(data_dir / "loop" / "retrain_state.json")

    def read(self, journal_url: str) -> dict[str, Any]:
        state = self._all().get(journal_url, {})
        return state if isinstance(state, dict) else {}

    def write(self, journal_url: str, state: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        states = self._all()
        states[journal_url] = state
        temp = self.path.with_suffix(".tmp")
        temp.write_text(json.dumps(states, indent=2))
        temp.replace(self.path)

    def _all(self) -> dict[str, Any]:
        if not self.path.is_file():
            return {}
        try:
            states = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        return states if isinstance(states, dict) else {}


def closed_between(
    trades: pd.DataFrame, since: pd.Timestamp | None, until: pd.Timestamp | None
) -> int:
    """Trades that closed after `since` and no later than `until` (either may be open)."""
    if trades.empty:
        return 0
    exits = pd.to_datetime(trades["exit_time"], utc=True)
    mask = pd.Series(True, index=trades.index)
    if since is not None:
        mask &= exits > since
    if until is not None:
        mask &= exits <= until
    return int(mask.sum())


def check_trigger(trigger: str) -> None:
    if trigger not in TRIGGERS:
        raise DataValidationError(
            f"trigger must be 'trades' or 'schedule', got {trigger!r}", where="retrain"
        )


def retrain_due(trigger: str, closed: int, every_trades: int, *, force: bool = False) -> bool:
    """The trigger rule: a schedule or a forced run always retrains; the trades trigger
    waits for `every_trades` closed trades."""
    check_trigger(trigger)
    return trigger != "trades" or force or closed >= every_trades


@dataclass
class LoopCadence:
    """The loop's clock in replay time: which retrain trigger fires now, if any, and when
    the A/B arms are evaluated."""

    every_trades: int
    schedule_months: int
    max_retrains: int
    ab_every_months: int
    start: pd.Timestamp
    last_retrain: pd.Timestamp | None = None
    retrains: int = 0
    last_scheduled: pd.Timestamp = field(init=False)

    def __post_init__(self) -> None:
        self.last_scheduled = self.start

    def retrain_trigger(self, now: pd.Timestamp, closed_since: int) -> str | None:
        """`trades`, `schedule` or None (also None once `max_retrains` ran)."""
        if self.retrains >= self.max_retrains:
            return None
        if closed_since >= self.every_trades:
            return "trades"
        if now >= self.last_scheduled + pd.DateOffset(months=self.schedule_months):
            return "schedule"
        return None

    def retrained(self, now: pd.Timestamp, trigger: str) -> None:
        self.retrains += 1
        self.last_retrain = now
        if trigger == "schedule":
            self.last_scheduled = now

    def month_starts(self, last: datetime | pd.Timestamp) -> list[pd.Timestamp]:
        """The loop's steps: month boundaries (UTC midnight) after the start, up to and
        past `last`."""
        return list(
            pd.date_range(
                self.start + pd.offsets.MonthBegin(1),
                pd.Timestamp(last) + pd.offsets.MonthBegin(1),
                freq="MS",
                tz="UTC",
            )
        )

    def ab_due(self, months_done: int, *, finished: bool) -> bool:
        return months_done % self.ab_every_months == 0 or finished
