"""The learning loop's report (`monitoring.loop_report`, `monitoring.report_page`): its
sections from plain results, JSON and HTML from a small hand-made report, and the
contract's missing keys named."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.errors import DataValidationError
from monitoring.calibration import calibration_table
from monitoring.loop_report import (
    ab_section,
    arm_section,
    check_report,
    decisions_per_arm,
    retraining_section,
    write_report,
)


def _section(equity: list[float]) -> dict[str, object]:
    stamps = pd.date_range("2010-01-04", periods=len(equity), freq="B", tz="UTC")
    metrics = {
        "trades": 3,
        "win_rate": 2 / 3,
        "profit_factor": 2.5,
        "sharpe": 1.1,
        "max_drawdown": 0.007,
        "total_return": equity[-1] / equity[0] - 1,
        "net_pnl": equity[-1] - equity[0],
        "ignored": "not a report figure",
    }
    return arm_section(metrics, pd.DataFrame({"timestamp": stamps, "equity": equity}))


def test_arm_section_keeps_the_figures_and_the_equity_curve() -> None:
    section = _section([100_000.0, 100_500.0])
    assert section["trades"] == 3
    assert section["net_pnl"] == 500.0
    assert "ignored" not in section
    assert "final_equity" not in section  # only the figures the run reported
    assert section["equity_curve"] == [
        ["2010-01-04T00:00:00+00:00", 100_000.0],
        ["2010-01-05T00:00:00+00:00", 100_500.0],
    ]


def test_decisions_per_arm_counts_the_log_and_the_engine() -> None:
    logged = pd.DataFrame({"variant": ["champion", "challenger", "champion"]})
    journal = pd.DataFrame(
        {"variant": ["champion", "champion", "challenger"], "action": ["entered", "gated", "gated"]}
    )
    counted = decisions_per_arm(logged, journal)
    assert counted["service"] == {"champion": 2, "challenger": 1}
    assert counted["engine"] == {"champion": {"entered": 1, "gated": 1}, "challenger": {"gated": 1}}
    assert decisions_per_arm(pd.DataFrame(), pd.DataFrame()) == {"service": {}, "engine": {}}


def test_ab_section_lists_only_applied_moves() -> None:
    evaluations = [
        {"at": "2010-01-01", "action": "promote", "reason": "better", "applied": True,
         "moves": {"exit_optimizer": {"champion": "2"}}, "counts": {}, "arms": {}},
        {"at": "2010-04-01", "action": "retire", "reason": "dry run", "applied": False},
        {"at": "2010-07-01", "action": "rollback", "reason": "floor", "applied": True},
    ]
    section = ab_section(evaluations, {"service": {"champion": 3}, "engine": {}}, [], 0.2)
    assert [e["at"] for e in section["promotions"]] == ["2010-01-01"]
    assert section["retired"] == []
    assert section["rollbacks"] == [{"at": "2010-07-01", "moves": None, "reason": "floor"}]
    assert section["decisions"] == {"champion": 3}
    assert len(section["evaluations"]) == 3
    assert section["challenger_share"] == 0.2


def test_retraining_section_keeps_what_each_retrain_decided() -> None:
    (row,) = retraining_section(
        [{"at": "2008-07-01", "trigger": "schedule", "action": "challenger",
          "challengers": {"exit_optimizer": "2"}, "candidates": {"dropped": True}}]
    )
    assert row["challengers"] == {"exit_optimizer": "2"}
    assert row["comparisons"] == {}
    assert "candidates" not in row


def test_report_written_as_json_and_html(tmp_path: Path) -> None:
    report = {
        "baseline": _section([100_000.0, 100_500.0, 99_800.0, 101_000.0]),
        "ml": {
            **_section([100_000.0, 100_200.0, 100_100.0, 100_900.0]),
            "profit_factor": float("inf"),  # no losing trade: readable, not null
            "sharpe": np.float64("nan"),
        },
        "models": {
            "signal_quality": {
                "champion_version": "2",
                "aliases": {"champion": "2"},
                "metrics": {"roc_auc": 0.55},
            }
        },
        "ab": {
            "decisions": {"champion": 10, "challenger": 4},
            "promotions": [],
            "rollbacks": [],
            "timeline": [
                {
                    "at": "2010-01-05T00:00:00+00:00",
                    "action": "challenger",
                    "model": "exit_optimizer",
                    "detail": "better",
                }
            ],
        },
        "features": {"count": 71},
        "calibration": calibration_table([0.4, 0.6], [False, True], bins=2),
        "feature_importance": {"rsi_14": 0.02, "adx_14": 0.01},
    }
    json_path, html_path = write_report(report, tmp_path)
    saved = json.loads(json_path.read_text())
    assert saved["features"]["count"] == 71
    assert saved["baseline"]["trades"] == 3
    assert saved["ml"]["profit_factor"] == "inf"
    assert saved["ml"]["sharpe"] is None
    html = html_path.read_text()
    assert (
        html.count("data:image/png;base64,") == 5
    )  # equity, drawdown, calibration, importance, timeline


def test_report_missing_keys_are_named() -> None:
    with pytest.raises(DataValidationError, match=r"ml\.sharpe") as caught:
        check_report(
            {
                "baseline": {
                    k: 0
                    for k in (
                        "trades",
                        "win_rate",
                        "profit_factor",
                        "sharpe",
                        "max_drawdown",
                        "total_return",
                    )
                },
                "ml": {"trades": 1},
                "models": {},
                "ab": {},
                "features": {},
            }
        )
    assert "features.count" in str(caught.value)
