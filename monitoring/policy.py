"""The alert policy: which findings become alerts, at which priority, under which
deduplication key.

- Feature drift alerts only when it is significant after correcting for testing every
  feature at once (Benjamini–Hochberg q-value of the KS test below `drift_fdr`, 5%) and
  material (PSI at least moderate). Significant major drift in one of the model's most
  important inputs (`importance`, top `important_features`) pages per feature (HIGH,
  keyed per feature, at most `max_feature_alerts`, the most important first); the other
  significant drift is one MEDIUM summary ranked by importance. A raw p-value never
  alerts.
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
from monitoring.drift import PSI_MAJOR, PSI_MODERATE, DriftStatus

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
    importance: Mapping[str, float] | None = None,
    drift_fdr: float = 0.05,
    important_features: int = 10,
    max_feature_alerts: int = 5,
) -> list[Alert]:
    """Alerts for one monitor run: the drift table (`monitoring.drift.feature_drift`),
    prediction drift summaries by label, `{"ece", "trades"}` and the latency summary;
    `importance` ranks the features (`monitoring.sensitivity`)."""
    created = when.to_pydatetime()
    alerts = drift_alerts(
        drift,
        created,
        importance=importance,
        fdr=drift_fdr,
        important_features=important_features,
        max_feature_alerts=max_feature_alerts,
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


def significant_drift(
    drift: pd.DataFrame, importance: Mapping[str, float] | None = None, *, fdr: float = 0.05
) -> pd.DataFrame:
    """The drift rows significant after the multiple-testing correction (BH q-value below
    `fdr`) and material (PSI at least moderate), the most important feature first (then
    the largest PSI), with their `importance` and `importance_rank` (1 = the model's most
    important input; NaN when unknown)."""
    if drift.empty or "ks_qvalue" not in drift.columns:
        return drift.iloc[0:0]
    q = pd.to_numeric(drift["ks_qvalue"], errors="coerce")
    psi = pd.to_numeric(drift["psi"], errors="coerce")
    chosen = drift[(q < fdr) & (psi >= PSI_MODERATE)].copy()
    scores = dict(importance or {})
    ranking = {name: rank for rank, name in enumerate(sorted(scores, key=lambda n: -scores[n]), 1)}
    chosen["importance"] = [scores.get(str(name), np.nan) for name in chosen["feature"]]
    chosen["importance_rank"] = [ranking.get(str(name), np.nan) for name in chosen["feature"]]
    return chosen.sort_values(
        ["importance", "psi"], ascending=[False, False], na_position="last"
    ).reset_index(drop=True)


def drift_alerts(
    drift: pd.DataFrame,
    created: Any,
    *,
    importance: Mapping[str, float] | None = None,
    fdr: float = 0.05,
    important_features: int = 10,
    max_feature_alerts: int = 5,
) -> list[Alert]:
    """The feature-drift alerts (see the module): per important feature, then a summary."""
    chosen = significant_drift(drift, importance, fdr=fdr)
    alerts: list[Alert] = []
    rest: list[str] = []
    for row in chosen.itertuples(index=False):
        rank = row.importance_rank
        important = importance is None or (np.isfinite(rank) and rank <= important_features)
        if row.psi >= PSI_MAJOR and important and len(alerts) < max_feature_alerts:
            where = f" (#{int(rank)} input of the model)" if np.isfinite(rank) else ""
            alerts.append(
                Alert(
                    key=f"drift:{row.feature}",
                    priority=Priority.HIGH,
                    title=f"major drift in {row.feature}{where}",
                    message=f"PSI {row.psi:.3f}, KS {row.ks_statistic:.3f} "
                    f"(BH q={row.ks_qvalue:.2g} over {int(drift['ks_qvalue'].notna().sum())} "
                    "features)",
                    source="monitor.feature_drift",
                    created_at=created,
                    details={
                        "psi": row.psi,
                        "ks": row.ks_statistic,
                        "pvalue": row.ks_pvalue,
                        "qvalue": row.ks_qvalue,
                        "importance": row.importance,
                        "importance_rank": rank,
                    },
                )
            )
        else:
            rest.append(str(row.feature))
    if rest:
        alerts.append(
            Alert(
                key="drift:significant",
                priority=Priority.MEDIUM,
                title=f"significant drift in {len(rest)} more feature(s)",
                message="by importance: " + ", ".join(rest[:10]) + (" …" if len(rest) > 10 else ""),
                source="monitor.feature_drift",
                created_at=created,
                details={"features": rest, "fdr": fdr},
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
