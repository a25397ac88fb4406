"""The alert policy: which findings become alerts, at which priority, under which
deduplication key.

- Major feature drift pages per feature (HIGH, keyed per feature); moderate drift is one
  LOW summary, so a volatile week does not bury the console in alerts.
- Major drift of the win probability (model on recent bars, or as served): HIGH.
- Expected calibration error above its limit: MEDIUM. p99 decision latency above its
  limit: HIGH.
- A/B: a rollback is CRITICAL, a promotion MEDIUM, a retirement LOW (keyed by the
  champion versions it concerns); nothing for hold or keep collecting."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from monitoring.ab import Verdict
from monitoring.alerts import Alert, Priority
from monitoring.drift import DriftStatus

AB_PRIORITY: dict[Verdict, Priority] = {
    Verdict.ROLLBACK: Priority.CRITICAL,
    Verdict.PROMOTE: Priority.MEDIUM,
    Verdict.RETIRE: Priority.LOW,
}


def monitor_alerts(
    drift: pd.DataFrame,
    prediction: Mapping[str, Mapping[str, Any]],
    calibration: Mapping[str, Any],
    latency: Mapping[str, float],
    *,
    ece_limit: float,
    latency_p99_limit_ms: float,
    when: pd.Timestamp,
) -> list[Alert]:
    """Alerts for one monitor run: the drift table (`monitoring.drift.feature_drift`),
    prediction drift summaries by label, `{"ece", "trades"}` and the latency summary."""
    created = when.to_pydatetime()
    alerts = []
    moderate = []
    for row in drift.itertuples(index=False):
        if row.status == DriftStatus.MODERATE:
            moderate.append(str(row.feature))
        if row.status != DriftStatus.MAJOR:
            continue
        alerts.append(
            Alert(
                key=f"drift:{row.feature}",
                priority=Priority.HIGH,
                title=f"major drift in {row.feature}",
                message=f"PSI {row.psi:.3f}, KS {row.ks_statistic:.3f} (p={row.ks_pvalue:.2g})",
                source="monitor.feature_drift",
                created_at=created,
                details={"psi": row.psi, "ks": row.ks_statistic, "pvalue": row.ks_pvalue},
            )
        )
    if moderate:
        alerts.append(
            Alert(
                key="drift:moderate",
                priority=Priority.LOW,
                title=f"moderate drift in {len(moderate)} features",
                message=", ".join(moderate[:10]) + (" …" if len(moderate) > 10 else ""),
                source="monitor.feature_drift",
                created_at=created,
                details={"features": moderate},
            )
        )
    for label, result in prediction.items():
        if result.get("status") == DriftStatus.MAJOR:
            alerts.append(
                Alert(
                    key=f"prediction_drift:{label}",
                    priority=Priority.HIGH,
                    title=f"win probability drift ({label})",
                    message=f"PSI {result['psi']:.3f} against the training window",
                    source="monitor.prediction_drift",
                    created_at=created,
                    details=dict(result),
                )
            )
    ece = calibration.get("ece")
    if ece is not None and np.isfinite(ece) and ece > ece_limit:
        alerts.append(
            Alert(
                key="calibration:win_probability",
                priority=Priority.MEDIUM,
                title="win probability miscalibrated",
                message=f"ECE {ece:.3f} > {ece_limit:.3f} on {calibration['trades']} trades",
                source="monitor.calibration",
                created_at=created,
                details={"ece": ece, "trades": calibration["trades"]},
            )
        )
    p99 = latency.get("p99_ms", float("nan"))
    if np.isfinite(p99) and p99 > latency_p99_limit_ms:
        alerts.append(
            Alert(
                key="latency:decide",
                priority=Priority.HIGH,
                title="model service slow",
                message=f"p99 decision latency {p99:.1f} ms > {latency_p99_limit_ms:.1f} ms",
                source="monitor.latency",
                created_at=created,
                details=dict(latency),
            )
        )
    return alerts


def ab_alert(
    action: Verdict,
    reason: str,
    *,
    applied: bool,
    champion_versions: Mapping[str, str],
    details: dict[str, Any],
    when: datetime,
) -> Alert | None:
    """The alert for an A/B outcome, or None when the outcome needs nobody's attention."""
    priority = AB_PRIORITY.get(action)
    if priority is None:
        return None
    champion_key = json.dumps(dict(champion_versions), sort_keys=True)
    return Alert(
        key=f"ab:{action.value}:{champion_key}",
        priority=priority,
        title=f"A/B {action.value}" + ("" if applied else " (not applied)"),
        message=reason,
        source="evaluate_ab",
        created_at=when,
        details=details,
    )
