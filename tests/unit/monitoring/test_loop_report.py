"""The demo's report page (`pipelines.demo.page`): JSON and HTML from a small hand-made
report, and the contract's missing keys named."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from core.errors import DataValidationError
from monitoring.calibration import calibration_table
from pipelines.demo.page import check_report, performance, write_report


def _section(equity: list[float]) -> dict[str, object]:
    stamps = pd.date_range("2010-01-04", periods=len(equity), freq="B", tz="UTC")
    curve = pd.Series(equity, index=stamps)
    section = performance([100.0, -50.0, 25.0], curve, 100_000.0)
    section["equity_curve"] = [[t.isoformat(), v] for t, v in curve.items()]
    return section


def test_performance_figures_by_hand() -> None:
    stamps = pd.date_range("2010-01-04", periods=4, freq="B", tz="UTC")
    figures = performance(
        [100.0, -50.0, 25.0], pd.Series([100.0, 110.0, 99.0, 121.0], stamps), 100.0
    )
    assert figures["trades"] == 3
    assert figures["win_rate"] == pytest.approx(2 / 3)
    assert figures["profit_factor"] == pytest.approx(125 / 50)
    assert figures["max_drawdown"] == pytest.approx(99 / 110 - 1)
    assert figures["total_return"] == pytest.approx(0.21)


def test_report_written_as_json_and_html(tmp_path: Path) -> None:
    report = {
        "baseline": _section([100_000.0, 100_500.0, 99_800.0, 101_000.0]),
        "ml": _section([100_000.0, 100_200.0, 100_100.0, 100_900.0]),
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
