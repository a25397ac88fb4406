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
        [{"feature": f, "psi": 0.3, "ks_statistic": 0.2, "ks_pvalue": 1e-5, "ks_qvalue": 1e-4,
          "status": s} for f, s in rows]
    )


def _table(rows: list[tuple[str, float, float]]) -> pd.DataFrame:
    """feature, psi, KS p-value; q-values by Benjamini-Hochberg over all of them."""
    from monitoring.drift import benjamini_hochberg

    table = pd.DataFrame(
        [{"feature": f, "psi": psi, "ks_statistic": 0.1, "ks_pvalue": p, "status": "major"}
         for f, psi, p in rows]
    )
    table["ks_qvalue"] = benjamini_hochberg(table["ks_pvalue"].to_numpy())
    return table


def test_drift_alerts_only_when_significant_after_correction_ranked_by_importance() -> None:
    # 70 features tested: one shifts for real (p 1e-9), a few look "significant" alone.
    rows = [(f"f{i:02d}", 0.30, 0.5) for i in range(64)]
    rows += [("vix_close", 0.4, 1e-9), ("rsi_14", 0.3, 0.004), ("adx_14", 0.3, 0.72),
             ("atr_14_pct", 0.12, 1e-6), ("macd", 0.05, 1e-8), ("obv", 0.26, 1e-7)]
    importance = {"atr_14_pct": 0.09, "obv": 0.02, "vix_close": 0.05, "rsi_14": 0.3}
    alerts = monitor_alerts(
        _table(rows), {}, {"ece": None, "trades": 0}, {}, ece_limit=0.1,
        latency_p99_limit_ms=50, when=WHEN, importance=importance, important_features=3,
    )
    # rsi_14 (p=0.004) does not survive the correction over 70 tests; adx_14 (p=0.72) never
    # alerts; macd is significant but immaterial (PSI 0.05). vix_close is a major shift in
    # the model's #3 input: one page. obv (#4) and atr (moderate PSI) make one summary,
    # most important first.
    assert [(a.key, a.priority) for a in alerts] == [
        ("drift:vix_close", Priority.HIGH), ("drift:significant", Priority.MEDIUM)
    ]
    assert "#3 input" in alerts[0].title
    assert alerts[1].details["features"] == ["atr_14_pct", "obv"]


def test_without_importance_major_significant_drift_still_pages() -> None:
    alerts = monitor_alerts(
        _drift(("rsi_14", "major")), {}, {"ece": None, "trades": 0}, {}, ece_limit=0.1,
        latency_p99_limit_ms=50, when=WHEN,
    )
    assert [(a.key, a.priority) for a in alerts] == [("drift:rsi_14", Priority.HIGH)]
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
