"""Joining closed trades to the decisions that opened them, and picking each A/B arm."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from core.errors import DataValidationError
from monitoring.outcomes import arm_trades, join_outcomes, matches_versions

T0 = pd.Timestamp("2012-01-03", tz="UTC")


def _trades() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "trade_id": ["t1", "t2", "t3", "t4"],
            "symbol": ["AAPL"] * 4,
            "entry_time": [T0 + pd.Timedelta(days=i) for i in range(4)],
            "exit_time": [T0 + pd.Timedelta(days=i + 2) for i in range(4)],
            "return_pct": [0.02, -0.01, 0.03, 0.01],
            "pnl": [20.0, -10.0, 30.0, 10.0],
            "decision_id": ["d1", "j2", "j3", None],
        }
    )


def test_join_prefers_the_service_log_then_the_signal_then_the_journal() -> None:
    log = pd.DataFrame(
        {
            "decision_id": ["d1", "d2-old", "d2-new"],
            "signal_id": ["s1", "s2", "s2"],
            "decided_at": [T0, T0, T0 + pd.Timedelta(hours=1)],
            "variant": ["champion", "champion", "challenger"],
            "model_versions": [
                {"signal_quality": "1"},
                {"signal_quality": "1"},
                {"signal_quality": "2"},
            ],
            "outputs": [
                {"win_probability": 0.7},
                {"win_probability": 0.5},
                {"win_probability": 0.8},
            ],
            "latency_ms": [2.0, 3.0, 4.0],
        }
    )
    journal = pd.DataFrame(
        {
            "decision_id": ["j2", "j3"],
            "signal_id": ["s2", "s3"],
            "variant": ["champion", "rules"],
            "model_versions": [json.dumps({"signal_quality": "1"}), "{}"],
            "win_probability": [0.55, None],
        }
    )
    out = join_outcomes(_trades(), journal, log).set_index("trade_id")
    assert out.loc["t1", "joined_by"] == "decision_log"
    assert out.loc["t1", "win_probability"] == pytest.approx(0.7)
    # the engine's decision j2 was for signal s2: the service's newest decision for it
    assert out.loc["t2", "joined_by"] == "decision_log_by_signal"
    assert out.loc["t2", "variant"] == "challenger"
    assert out.loc["t2", "model_versions"] == {"signal_quality": "2"}
    assert out.loc["t2", "latency_ms"] == 4.0
    assert out.loc["t3", "joined_by"] == "journal"
    assert out.loc["t3", "variant"] == "rules"
    assert np.isnan(out.loc["t3", "win_probability"])
    assert out.loc["t4", "variant"] == "unknown"
    assert list(out["won"]) == [True, False, True, True]


def test_join_without_any_decision_source_keeps_every_trade() -> None:
    out = join_outcomes(_trades())
    assert len(out) == 4
    assert set(out["variant"]) == {"unknown"}


def test_join_names_missing_trade_columns() -> None:
    with pytest.raises(DataValidationError, match="return_pct"):
        join_outcomes(_trades().drop(columns="return_pct"))


def test_arms_are_selected_by_variant_and_exact_versions() -> None:
    outcomes = pd.DataFrame(
        {
            "variant": ["champion", "champion", "challenger", "challenger"],
            "model_versions": [
                {"signal_quality": "1", "exit_optimizer": "1"},
                {"signal_quality": "3"},
                {"signal_quality": "2"},
                {"signal_quality": "4"},
            ],
        }
    )
    champion = arm_trades(outcomes, "champion", {"signal_quality": "1", "exit_optimizer": "1"})
    assert list(champion.index) == [0]
    assert list(arm_trades(outcomes, "challenger", {"signal_quality": "2"}).index) == [2]
    assert arm_trades(outcomes, "challenger", {}).empty
    assert not matches_versions({}, {"signal_quality": "1"})
