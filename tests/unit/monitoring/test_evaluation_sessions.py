"""Intraday folds of the policy's yardstick (`monitoring.evaluation.session_folds`): blocks
of trading sessions in time order, no overlap, the embargo in bars, nothing at or after a
fold's first bar in its training window; equity judged per session; the report says the
folds are out of time only."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.errors import DataValidationError
from monitoring.evaluation import (
    OUT_OF_TIME_NOTE,
    ArmRun,
    EvaluationFold,
    FoldResult,
    evaluation_metrics,
    exchange_dates,
    out_of_time_data_section,
    purge_events,
    session_closes,
    session_folds,
    summarize,
)
from monitoring.evaluation_page import summary_lines, write_evaluation

CASH = 100_000.0


def minutes(start: str = "2021-07-01", sessions: int = 20) -> pd.DatetimeIndex:
    """Regular-hours minute bar times (09:31..16:00 New York, in UTC) of `sessions`
    weekdays."""
    days = pd.bdate_range(start, periods=sessions)
    stamps = [pd.date_range(f"{day.date()} 09:31", f"{day.date()} 16:00", freq="1min",
                            tz="America/New_York") for day in days]
    return pd.DatetimeIndex(np.concatenate([s.tz_convert("UTC") for s in stamps]))


def test_folds_are_blocks_of_sessions_at_the_end_without_overlap() -> None:
    stamps = minutes(sessions=20)
    days = exchange_dates(stamps)
    sessions = sorted(set(days))
    folds = session_folds(stamps, fold_sessions=5, count=3, embargo_bars=5)
    assert [f.label for f in folds] == [d.isoformat() for d in sessions[5::5]]
    for fold, first in zip(folds, range(5, 20, 5), strict=True):
        inside = (stamps >= fold.start) & (stamps <= fold.end)
        assert sorted(set(days[inside])) == sessions[first:first + 5]  # whole sessions
        assert fold.start == stamps[days == sessions[first]][0]
        assert fold.end == stamps[days == sessions[first + 4]][-1]
        assert fold.name == sessions[first].isoformat()
    for before, after in itertools.pairwise(folds):
        assert before.end < after.start  # no overlap, in time order
        assert after.train_end < after.start


def test_the_embargo_counts_bars_and_the_training_window_ends_before_the_fold() -> None:
    stamps = minutes(sessions=12)
    (fold,) = session_folds(stamps, fold_sessions=5, count=1, embargo_bars=30)
    before = stamps[stamps < fold.start]
    assert fold.train_end == before[-31]  # thirty bars of embargo, then the training end
    assert ((stamps > fold.train_end) & (stamps < fold.start)).sum() == 30
    assert fold.train_end < fold.start
    (none,) = session_folds(stamps, fold_sessions=5, count=1, embargo_bars=0)
    assert none.train_end == before[-1]
    # Training events whose label reaches into the embargo or the fold are purged.
    events = pd.DataFrame({"symbol": "SPY", "timestamp": stamps[:: 60],
                           "label_end": stamps[:: 60] + pd.Timedelta(minutes=45)})
    kept = purge_events(events, fold)
    assert len(kept)
    assert (kept["label_end"] <= fold.train_end).all()
    assert not (pd.to_datetime(kept["timestamp"]) >= fold.start).any()


def test_folds_start_where_asked() -> None:
    stamps = minutes(sessions=15)
    folds = session_folds(stamps, fold_sessions=3, starts=["2021-07-19", "2021-07-12"])
    assert [f.label for f in folds] == ["2021-07-12", "2021-07-19"]
    assert exchange_dates(pd.DatetimeIndex([folds[0].end]))[0].isoformat() == "2021-07-14"


@pytest.mark.parametrize(("arguments", "message"), [
    ({"fold_sessions": 5, "count": 3}, "too few sessions for 3 folds of 5"),
    ({"fold_sessions": 5, "starts": ["2021-07-03"]}, "not a session of the data"),
    ({"fold_sessions": 5, "starts": ["2021-07-12", "2021-07-14"]}, "overlap"),
    ({"fold_sessions": 5, "starts": ["2021-07-16"]}, "too few sessions for a fold of 5"),
    ({"fold_sessions": 2, "starts": ["2021-07-02"]}, "too few sessions of training history"),
])
def test_bad_folds_are_refused_with_the_reason(arguments: dict, message: str) -> None:
    with pytest.raises(DataValidationError, match=message):
        session_folds(minutes(sessions=14), **arguments)


def test_pre_and_post_market_bars_belong_to_their_session() -> None:
    # 20:30 New York is 00:30 UTC the next day in January: the same session still.
    stamps = pd.DatetimeIndex(pd.to_datetime(
        ["2011-01-03 13:00", "2011-01-04 00:30", "2011-01-04 14:00"], utc=True))
    assert [d.isoformat() for d in exchange_dates(stamps)] == [
        "2011-01-03", "2011-01-03", "2011-01-04"]


def test_intraday_equity_is_judged_per_session() -> None:
    stamps = minutes(sessions=3)
    equity = pd.DataFrame({"timestamp": stamps, "equity": np.arange(len(stamps), dtype=float)})
    closes = session_closes(equity)
    assert len(closes) == 3
    assert closes["equity"].tolist() == [389.0, 779.0, 1169.0]  # each session's last mark


def _arm(stamps: pd.DatetimeIndex, pnls: list[float]) -> ArmRun:
    closes = session_closes(pd.DataFrame({"timestamp": stamps,
                                          "equity": CASH + np.linspace(0, 500, len(stamps))}))
    return ArmRun(pd.DataFrame({"exit_time": stamps[[10, 400, 800][:len(pnls)]], "pnl": pnls}),
                  closes, pd.DataFrame({"action": [], "reason": []}), CASH)


def test_the_report_names_intraday_folds_and_says_they_are_out_of_time(tmp_path: Path) -> None:
    stamps = minutes(sessions=12)
    (fold,) = session_folds(stamps, fold_sessions=3, count=1)
    inside = stamps[(stamps >= fold.start) & (stamps <= fold.end)]
    result = FoldResult(fold, _arm(inside, [50.0, -20.0, 30.0]), _arm(inside, [50.0, -20.0]),
                        {"auc": 0.6, "brier": 0.2, "events": 10}, 0.01,
                        {"macro_f1": 0.4, "majority_macro_f1": 0.2})
    evaluation = summarize([result], resamples=50) | {"timeframe": "1Min",
                                                        "note": OUT_OF_TIME_NOTE}
    assert evaluation["folds"][0]["label"] == fold.label
    assert evaluation["worst_fold"]["label"] == fold.label
    assert "fold_20210714_policy_trades" in evaluation_metrics(evaluation)
    assert evaluation["bootstrap"]["sessions"] == 3
    lines = summary_lines(evaluation)
    assert "not held-out symbols" in lines[0]
    assert lines[1].startswith(f"{fold.label}: AUC 0.600")
    bars = pd.DataFrame({"symbol": "SPY", "timestamp": stamps})
    data = out_of_time_data_section(bars, "1Min")
    assert data == {"symbols": 1, "held_out_symbols": 0, "bars": len(stamps), "sessions": 12,
                    "start": "2021-07-01", "end": "2021-07-16", "timeframe": "1Min"}
    _, page = write_evaluation({"evaluation": evaluation, "data": data, "run": {}},
                               tmp_path / "evaluation.json")
    text = page.read_text()
    assert "out of time on the same symbols" in text
    assert "not held-out symbols" in text


def test_a_daily_fold_keeps_its_year_name() -> None:
    fold = EvaluationFold(2017, pd.Timestamp("2017-01-03", tz="UTC"),
                          pd.Timestamp("2018-02-07", tz="UTC"),
                          pd.Timestamp("2016-12-22", tz="UTC"))
    assert fold.name == "2017-2018"
    assert fold.label is None
