"""The monitor's checks over data the flow has read: feature drift of the champion's
inputs (training window vs the current window), drift of its win probability (on recent
bars, and as served), decision latency, and calibration on recently closed trades. Pure:
frames and arrays in, `MonitorFindings` out; `monitoring.policy` turns them into alerts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd

from core.errors import ConfigError
from monitoring.alerts import Alert
from monitoring.calibration import CalibrationResult, expected_calibration_error
from monitoring.drift import feature_drift, prediction_drift
from monitoring.latency import latency_summary
from monitoring.outcomes import served_in_window, served_win_probability
from monitoring.policy import monitor_alerts


@dataclass(frozen=True)
class MonitorFindings:
    monitored: list[str]  # the champion's features computed from bars
    not_monitored: list[str]  # those that exist only at decision time
    drift: pd.DataFrame  # `monitoring.drift.feature_drift`'s table
    prediction: dict[str, dict[str, Any]]  # label → `DriftResult.summary()`
    latency: dict[str, float]
    calibration: CalibrationResult
    importance: dict[str, float] | None = None  # `monitoring.sensitivity`, largest first

    def alerts(
        self, *, ece_limit: float, latency_p99_limit_ms: float, when: pd.Timestamp
    ) -> list[Alert]:
        return monitor_alerts(
            self.drift,
            self.prediction,
            {"ece": self.calibration.ece, "trades": self.calibration.trades},
            self.latency,
            ece_limit=ece_limit,
            latency_p99_limit_ms=latency_p99_limit_ms,
            when=when,
            importance=self.importance,
        )


def run_checks(
    *,
    features: list[str],
    reference_rows: pd.DataFrame,
    current_rows: pd.DataFrame,
    predictions: dict[str, np.ndarray],
    decisions: pd.DataFrame,
    outcomes: pd.DataFrame,
    window: tuple[pd.Timestamp, pd.Timestamp],
    calibration_days: int,
    importance: dict[str, float] | None = None,
) -> MonitorFindings:
    """Every check of one monitor run. `predictions` holds the champion's win probability
    on the `reference` and `current` rows; `decisions` is the decision log, `outcomes` the
    joined closed trades (`monitoring.outcomes.join_outcomes`); `window` the current window."""
    monitored = [name for name in features if name in reference_rows.columns]
    not_monitored = [name for name in features if name not in reference_rows.columns]
    if not monitored:
        raise ConfigError(
            "none of the champion's features can be computed from bars", where="monitor"
        )
    drift = feature_drift(reference_rows, current_rows, monitored)
    prediction = {
        "model_on_recent_bars": prediction_drift(
            predictions["reference"], predictions["current"]
        ).summary()
    }
    start, end = window
    served = served_in_window(decisions, start, end)
    if not decisions.empty:
        prediction["served"] = prediction_drift(
            predictions["reference"], served_win_probability(served)
        ).summary()
    latency = latency_summary(
        served["latency_ms"].to_numpy(dtype=float) if not served.empty else []
    )
    recent = outcomes[outcomes["exit_time"] > end - timedelta(days=calibration_days)]
    calibration = expected_calibration_error(
        recent["win_probability"].to_numpy(dtype=float), recent["won"].to_numpy(dtype=float)
    )
    return MonitorFindings(
        monitored, not_monitored, drift, prediction, latency, calibration, importance
    )
