"""The alert policy: which monitor findings and A/B outcomes become alerts, at which
priority, under which deduplication key."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd

from monitoring.ab import Verdict
from monitoring.alerts import Priority
from monitoring.policy import ab_alert, monitor_alerts

WHEN = pd.Timestamp("2026-03-02T15:00", tz="UTC")


def _drift(*rows: tuple[str, str]) -> pd.DataFrame:
    return pd.DataFrame(
        [{"feature": f, "psi": 0.3, "ks_statistic": 0.2, "ks_pvalue": 1e-5, "status": s}
         for f, s in rows]
    )


def test_major_drift_pages_per_feature_and_moderate_drift_is_one_summary() -> None:
    alerts = monitor_alerts(
        _drift(("rsi_14", "major"), ("adx_14", "moderate"), ("atr_14_pct", "moderate"),
               ("macd", "stable")),
        {}, {"ece": None, "trades": 0}, {}, ece_limit=0.1, latency_p99_limit_ms=50, when=WHEN,
    )
    assert [(a.key, a.priority) for a in alerts] == [
        ("drift:rsi_14", Priority.HIGH), ("drift:moderate", Priority.LOW)
    ]
    assert alerts[1].message == "adx_14, atr_14_pct"
    assert alerts[0].created_at == WHEN.to_pydatetime()


def test_prediction_drift_calibration_and_latency_limits() -> None:
    alerts = monitor_alerts(
        _drift(),
        {"served": {"psi": 0.4, "status": "major"}, "model_on_recent_bars": {"status": "stable"}},
        {"ece": 0.15, "trades": 40},
        {"p99_ms": 80.0},
        ece_limit=0.1,
        latency_p99_limit_ms=50,
        when=WHEN,
    )
    assert {a.key: a.priority for a in alerts} == {
        "prediction_drift:served": Priority.HIGH,
        "calibration:win_probability": Priority.MEDIUM,
        "latency:decide": Priority.HIGH,
    }
    quiet = monitor_alerts(_drift(), {}, {"ece": 0.05, "trades": 40}, {"p99_ms": float("nan")},
                           ece_limit=0.1, latency_p99_limit_ms=50, when=WHEN)
    assert quiet == []


def test_ab_outcomes_alert_by_how_much_they_matter() -> None:
    when = datetime(2026, 3, 2, tzinfo=UTC)
    rollback = ab_alert(Verdict.ROLLBACK, "floor", applied=True,
                        champion_versions={"risk_predictor": "3", "signal_quality": "2"},
                        details={}, when=when)
    assert rollback is not None
    assert rollback.priority is Priority.CRITICAL
    assert rollback.key == 'ab:rollback:{"risk_predictor": "3", "signal_quality": "2"}'
    retire = ab_alert(Verdict.RETIRE, "no edge", applied=False, champion_versions={},
                      details={}, when=when)
    assert retire is not None
    assert (retire.priority, retire.title) == (Priority.LOW, "A/B retire (not applied)")
    assert ab_alert(Verdict.PROMOTE, "", applied=True, champion_versions={}, details={},
                    when=when).priority is Priority.MEDIUM  # type: ignore[union-attr]
    assert ab_alert(Verdict.KEEP_COLLECTING, "", applied=False, champion_versions={},
                    details={}, when=when) is None
