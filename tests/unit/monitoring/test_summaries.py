"""What the A/B and monitor flows publish: the A/B summary record (figures, tests,
metrics, params), its store row and tags, the markdown verdict, and the monitor's checks
and report on hand-made frames."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from core.errors import ConfigError
from monitoring.ab import ABConfig
from monitoring.alerts import DispatchReport
from monitoring.checks import run_checks
from monitoring.lifecycle import evaluate_live
from monitoring.rollback import RollbackFloor
from monitoring.summaries import (
    ab_outcome,
    ab_run_tags,
    ab_summary,
    monitor_markdown,
    monitor_report,
    verdict_markdown,
)

T0 = pd.Timestamp("2012-01-03", tz="UTC")
CONFIG = ABConfig(min_trades_per_arm=3, max_trades_per_arm=3, alpha=0.05)
FLOOR = RollbackFloor(min_trades=2)
ALIASES = {"champion": {"exit_optimizer": "1"}, "challenger": {"exit_optimizer": "2"},
           "previous": {}}


def _outcomes() -> pd.DataFrame:
    rows = []
    for variant, version, returns in (("champion", "1", [0.02, -0.01, 0.01]),
                                      ("challenger", "2", [0.03, -0.02, 0.01])):
        for day, value in enumerate(returns):
            entry = T0 + pd.Timedelta(days=day)
            rows.append({"trade_id": f"{variant}{day}", "entry_time": entry,
                         "exit_time": entry + pd.Timedelta(days=1), "return_pct": value,
                         "variant": variant, "model_versions": {"exit_optimizer": version},
                         "win_probability": np.nan})
    return pd.DataFrame(rows)


def _summary() -> dict:
    evaluation = evaluate_live(_outcomes(), ALIASES, config=CONFIG, floor=FLOOR)
    return ab_summary(
        evaluation, aliases=ALIASES, config=CONFIG, floor=FLOOR, applied=True, dry_run=False,
        evaluated_at=datetime(2012, 2, 1, tzinfo=UTC), moves={"exit_optimizer": {"champion": "1"}},
    )


def test_ab_summary_carries_the_figures_tests_and_parameters() -> None:
    summary = _summary()
    assert summary["action"] == "retire"  # no difference after the 3-trade cap
    assert summary["arms"]["challenger"]["trades"] == 3
    assert summary["counts"] == {"champion_all": 3, "challenger": 3, "champion_same_period": 3}
    assert [t["name"] for t in summary["tests"]] == ["fisher_exact_win_rate",
                                                     "mann_whitney_returns"]
    assert summary["metrics"]["challenger_win_rate"] == pytest.approx(2 / 3)
    assert "mann_whitney_returns_pvalue" in summary["metrics"]
    assert "champion_recent_trades" in summary["metrics"]  # the floor was checked too
    assert summary["params"]["max_trades_per_arm"] == 3
    assert summary["evaluated_at"] == "2012-02-01T00:00:00+00:00"


def test_the_store_row_tags_and_markdown_come_from_the_summary() -> None:
    summary = _summary()
    row = ab_outcome(summary, "run-1")
    assert (row.verdict, row.applied, row.champion_trades, row.mlflow_run_id) == (
        "retire", True, 3, "run-1"
    )
    assert row.challenger_versions == {"exit_optimizer": "2"}
    assert ab_run_tags(summary)["challenger_versions"] == '{"exit_optimizer": "2"}'
    markdown = verdict_markdown(summary)
    assert "## A/B verdict: **retire**" in markdown
    assert "| challenger | exit_optimizer v2 | 3 |" in markdown
    assert "- exit_optimizer: {'champion': '1'}" in markdown


def _features(n: int, shift: float, start: str) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    return pd.DataFrame({
        "timestamp": pd.date_range(start, periods=n, freq="D", tz="UTC"),
        "rsi_14": rng.normal(50 + shift, 10, n),
        "adx_14": rng.normal(20, 5, n),
    })


def test_run_checks_and_the_monitor_report() -> None:
    reference, current = _features(400, 0, "2010-01-01"), _features(60, 15, "2012-01-01")
    # adx_14 keeps the reference's distribution: its 60 evenly spaced quantiles
    current["adx_14"] = np.quantile(reference["adx_14"], (np.arange(60) + 0.5) / 60)
    end = current["timestamp"].max()
    decisions = pd.DataFrame({
        "signal_timestamp": current["timestamp"],
        "outputs": [{"win_probability": 0.9}] * 60,
        "latency_ms": np.linspace(1.0, 3.0, 60),
    })
    outcomes = pd.DataFrame({"exit_time": current["timestamp"], "won": [True, False] * 30,
                             "win_probability": [0.9] * 60})
    findings = run_checks(
        features=["rsi_14", "adx_14", "pos_exposure"],
        reference_rows=reference,
        current_rows=current,
        predictions={"reference": np.full(400, 0.5), "current": np.full(60, 0.5)},
        decisions=decisions,
        outcomes=outcomes,
        window=(current["timestamp"].min() - pd.Timedelta(days=1), end),
        calibration_days=365,
    )
    assert findings.monitored == ["rsi_14", "adx_14"]
    assert findings.not_monitored == ["pos_exposure"]
    assert findings.drift.set_index("feature").loc["rsi_14", "status"] == "major"
    assert findings.prediction["served"]["status"] == "major"  # 0.9 served vs 0.5 trained
    assert findings.latency["p50_ms"] == pytest.approx(2.0)
    assert findings.calibration.ece == pytest.approx(0.4)
    keys = {a.key for a in findings.alerts(ece_limit=0.1, latency_p99_limit_ms=50, when=end)}
    assert keys == {"drift:rsi_14", "prediction_drift:served", "calibration:win_probability"}
    report = monitor_report(
        findings, champion={"version": "1", "run_id": "r", "start": "x"},
        reference_window=("2010-01-01", "2011-02-04"),
        current_window=(str(current["timestamp"].min()), str(end)),
        symbols=["AAPL"], dispatched=DispatchReport([], [], []),
    )
    assert report["features_monitored"] == 2
    assert report["calibration"]["ece"] == pytest.approx(0.4)
    assert report["champion"] == {"version": "1", "run_id": "r"}
    assert "Champion signal_quality v1" in monitor_markdown(report, findings.drift)


def test_run_checks_needs_a_feature_it_can_compute() -> None:
    with pytest.raises(ConfigError, match="none of the champion's features"):
        run_checks(
            features=["pos_exposure"], reference_rows=_features(50, 0, "2010-01-01"),
            current_rows=_features(50, 0, "2011-01-01"), predictions={}, decisions=pd.DataFrame(),
            outcomes=pd.DataFrame(), window=(T0, T0), calibration_days=30,
        )
