"""When the loop retrains: the trigger rule, the count of closed trades between two
moments, the state file per journal, and the cadence of the loop in replay time."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from core.errors import DataValidationError
from monitoring.trigger import LoopCadence, RetrainStateFile, closed_between, retrain_due

T0 = pd.Timestamp("2010-01-01", tz="UTC")


def test_the_trades_trigger_waits_and_the_others_do_not() -> None:
    assert not retrain_due("trades", 9, 10)
    assert retrain_due("trades", 10, 10)
    assert retrain_due("trades", 0, 10, force=True)
    assert retrain_due("schedule", 0, 10)
    with pytest.raises(DataValidationError, match="'trades' or 'schedule'"):
        retrain_due("hourly", 0, 10)


def test_closed_between_is_open_at_the_start_and_closed_at_the_end() -> None:
    trades = pd.DataFrame({"exit_time": [T0, T0 + pd.Timedelta(days=1), T0 + pd.Timedelta(days=2)]})
    assert closed_between(trades, None, None) == 3
    assert closed_between(trades, T0, T0 + pd.Timedelta(days=1)) == 1
    assert closed_between(trades.iloc[0:0], None, None) == 0


def test_state_is_kept_per_journal_and_survives_a_torn_file(tmp_path: Path) -> None:
    state = RetrainStateFile.under(tmp_path)
    assert state.path == tmp_path / "loop" / "retrain_state.json"
    assert state.read("sqlite:///a.db") == {}
    state.write("sqlite:///a.db", {"last_as_of": "2010-06-30"})
    state.write("sqlite:///b.db", {"last_as_of": "2011-01-31"})
    assert state.read("sqlite:///a.db") == {"last_as_of": "2010-06-30"}
    state.path.write_text("{not json")
    assert state.read("sqlite:///a.db") == {}


def test_the_loop_cadence_in_replay_time() -> None:
    cadence = LoopCadence(every_trades=10, schedule_months=6, max_retrains=2,
                          ab_every_months=3, start=T0)
    assert cadence.retrain_trigger(T0 + pd.DateOffset(months=1), 3) is None
    assert cadence.retrain_trigger(T0 + pd.DateOffset(months=1), 10) == "trades"
    cadence.retrained(T0 + pd.DateOffset(months=1), "trades")
    # the schedule counts from the last scheduled retrain (the start), not the trades one
    assert cadence.retrain_trigger(T0 + pd.DateOffset(months=6), 0) == "schedule"
    cadence.retrained(T0 + pd.DateOffset(months=6), "schedule")
    assert cadence.last_scheduled == T0 + pd.DateOffset(months=6)
    assert cadence.retrain_trigger(T0 + pd.DateOffset(months=12), 50) is None  # capped
    assert [m for m in range(1, 8) if cadence.ab_due(m, finished=False)] == [3, 6]
    assert cadence.ab_due(7, finished=True)


def test_the_loop_steps_month_by_month_past_the_last_bar() -> None:
    cadence = LoopCadence(every_trades=10, schedule_months=6, max_retrains=1,
                          ab_every_months=3, start=pd.Timestamp("2008-01-01", tz="UTC"))
    months = cadence.month_starts(pd.Timestamp("2008-03-15", tz="UTC"))
    assert [m.strftime("%Y-%m-%d") for m in months] == ["2008-02-01", "2008-03-01", "2008-04-01"]
