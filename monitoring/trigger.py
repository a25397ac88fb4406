"""When the learning loop retrains: every `every_trades` closed trades since the last
retrain of a journal (`trigger="trades"`), or always on a schedule or when forced. The
loop's memory of the last retrain per journal is a small JSON file
(`<data_dir>/loop/retrain_state.json`), written atomically."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from core.errors import DataValidationError

TRIGGERS = ("trades", "schedule")


def state_file(data_dir: Path) -> Path:
    return data_dir / "loop" / "retrain_state.json"


@dataclass(frozen=True, slots=True)
class RetrainStateFile:
    """The last retrain per journal URL (`last_as_of`, `mlflow_run_id`)."""

    path: Path

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
