"""The `monitor` flow: is the champion still looking at the market it was trained on, is
its win probability still calibrated, and is the service fast enough?

- Feature drift: PSI and KS per model feature, the champion's training window (from the
  champion `signal_quality` run's MLflow tags `data_window` and `out_of_time_start`: the
  final model is fitted on the rows before the out-of-time start) against the latest
  `window_days` of stored bars, both computed from the bar store with the same code.
  Position features (`pos_*`) exist only at decision time and are not monitored here.
- Prediction drift: the champion's win probability on the training-window rows against
  its win probability on the recent rows, and against what the service actually served in
  the window (decision log), when there is any.
- Calibration: expected calibration error of the served win probability on the closed
  trades of the last `calibration_days`.
- Latency: p50/p95/p99 of the service's decision latency in the decision log.
Findings become prioritised, deduplicated alerts (`pipelines/monitoring/alerts.py`), a
Prefect table artifact (the drift table) and markdown summary, and a JSON report under
`<reports_dir>/monitoring/`."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from core.errors import ConfigError, NotFoundError
from core.settings import Settings, load_settings

INDEX_SYMBOLS = ("SPX", "COMP", "VIX", "SPY")


def _settings(overrides: dict[str, Any] | None) -> Settings:
    return load_settings(**(overrides or {}))


def _utc(value: str | pd.Timestamp) -> pd.Timestamp:
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


@task(name="champion-training-window", retries=2, retry_delay_seconds=3)
def champion_training_window(tracking_uri: str) -> dict[str, Any]:
    """Training window, input features and version of the champion signal_quality model,
    from its training run's tags."""
    from mlflow import MlflowClient

    from models.registry import ModelRegistry

    registry = ModelRegistry(tracking_uri)
    version = registry.version_of("signal_quality", "champion")
    run_id = registry.run_id("signal_quality", version)
    tags = MlflowClient(tracking_uri=tracking_uri).get_run(run_id).data.tags
    window = tags.get("data_window", "")
    if ".." not in window:
        raise NotFoundError(
            f"run {run_id} of signal_quality v{version} has no data_window tag",
            where="monitor",
        )
    start, end = window.split("..", 1)
    fitted_until = tags.get("out_of_time_start") or end
    features = [name for name in tags.get("feature_list", "").split(",") if name]
    return {
        "version": version,
        "run_id": run_id,
        "start": start,
        "end": fitted_until,
        "features": features,
    }


@task(name="feature-windows", retries=1, retry_delay_seconds=3)
def feature_windows(
    symbols: list[str],
    timeframe: str,
    reference: tuple[str, str],
    current_days: int,
    as_of: str | None,
    overrides: dict[str, Any],
) -> dict[str, Any]:
    """Features of the stored bars: the reference window and the latest `current_days`."""
    from features.bar_store import BarStore
    from features.compute import compute_features

    settings = _settings(overrides)
    store = BarStore(settings.paths.bars_dir)
    stored = set(store.symbols(timeframe))
    stocks = [s for s in symbols if s in stored and s not in INDEX_SYMBOLS[:3]]
    if not stocks:
        raise ConfigError(
            f"no stored bars for {', '.join(symbols)} ({timeframe}); run the ingest flow first",
            where="monitor",
        )
    bars = store.read(symbols=stocks, timeframe=timeframe)
    indices = sorted(stored & set(INDEX_SYMBOLS) - set(stocks))
    index_bars = store.read(symbols=indices, timeframe=timeframe) if indices else None
    features = compute_features(bars, index_bars)
    end = _utc(as_of) if as_of else features["timestamp"].max()
    start = end - pd.Timedelta(days=current_days)
    current = features[(features["timestamp"] > start) & (features["timestamp"] <= end)]
    ref_start, ref_end = _utc(reference[0]), _utc(reference[1])
    reference_rows = features[
        (features["timestamp"] >= ref_start) & (features["timestamp"] < ref_end)
    ]
    return {
        "reference": reference_rows.reset_index(drop=True),
        "current": current.reset_index(drop=True),
        "current_window": (str(start), str(end)),
        "symbols": stocks,
    }


def _fill_position_features(frame: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """The model inputs only (numeric), those that exist only at decision time set to a
    flat book's values."""
    missing = [name for name in names if name not in frame.columns]
    if not missing:
        return frame[names]
    from features.position import PortfolioState, position_features

    flat = position_features(PortfolioState(equity=1.0, cash=1.0, buying_power=1.0))
    filled = frame.copy()
    for name in missing:
        filled[name] = float(flat.get(name, 0.0))
    return filled[names]


@task(name="champion-predictions", retries=1, retry_delay_seconds=3, cache_policy=NO_CACHE)
def champion_predictions(
    tracking_uri: str, reference: pd.DataFrame, current: pd.DataFrame
) -> dict[str, np.ndarray]:
    """The champion's win probability on both windows."""
    from models.loading import load_model_set

    model_set = load_model_set(tracking_uri, "champion")
    names = list(model_set.feature_names)
    return {
        "reference": model_set.win_probability(_fill_position_features(reference, names)),
        "current": model_set.win_probability(_fill_position_features(current, names)),
    }


@task(name="served-decisions", retries=2, retry_delay_seconds=3)
def served_decisions(decision_log: str) -> pd.DataFrame:
    """The service's decision log (empty when the service never ran)."""
    from serving.decision_log import read_decisions

    path = Path(decision_log)
    if not path.exists():
        return pd.DataFrame(columns=["decided_at", "signal_timestamp", "latency_ms", "outputs"])
    return read_decisions(path)


def _alerts_for(
    drift: pd.DataFrame,
    prediction: dict[str, Any],
    calibration: dict[str, Any],
    latency: dict[str, float],
    *,
    ece_limit: float,
    latency_p99_limit_ms: float,
    when: pd.Timestamp,
) -> list[Any]:
    from pipelines.monitoring.alerts import Alert, Priority
    from pipelines.monitoring.drift import DriftStatus

    created = when.to_pydatetime()
    alerts = []
    # Major drift pages per feature (deduplicated per feature); moderate drift is one
    # low-priority summary, so a volatile week does not bury the console in alerts.
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
                    details=result,
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
                details=latency,
            )
        )
    return alerts


def _summary_markdown(report: dict[str, Any], drift: pd.DataFrame) -> str:
    counts = drift["status"].value_counts().to_dict() if not drift.empty else {}
    lines = [
        "## Monitor",
        "",
        f"Champion signal_quality v{report['champion']['version']}, trained on "
        f"{report['reference_window'][0]} → {report['reference_window'][1]}; "
        f"current window {report['current_window'][0][:10]} → {report['current_window'][1][:10]}.",
        "",
        "Feature drift: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())),
        "",
        "| check | figure |",
        "|---|---|",
    ]
    for label, result in report["prediction_drift"].items():
        lines.append(f"| prediction drift ({label}) | PSI {result['psi']}, {result['status']} |")
    calibration = report["calibration"]
    lines.append(f"| calibration (ECE, {calibration['trades']} trades) | {calibration['ece']} |")
    latency = report["latency"]
    lines.append(f"| decision latency p50 / p99 | {latency['p50_ms']} / {latency['p99_ms']} ms |")
    lines.append(
        f"| alerts sent / suppressed | {report['alerts']['sent']} / "
        f"{report['alerts']['suppressed']} |"
    )
    return "\n".join(lines)


def _round(value: float) -> float | None:
    return None if value is None or not np.isfinite(value) else round(float(value), 4)


@flow(name="monitor", log_prints=True)
def monitor_flow(
    window_days: int = 30,
    as_of: str | None = None,
    symbols: list[str] | None = None,
    timeframe: str = "1Day",
    reference_start: str | None = None,
    reference_end: str | None = None,
    calibration_days: int = 365,
    ece_limit: float = 0.10,
    latency_p99_limit_ms: float = 50.0,
    decision_log: str | None = None,
    alert_webhook: str | None = None,
    market_days_only: bool = False,
    overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Drift, calibration and latency checks with alerts (see the module)."""
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    from pipelines.flows.evaluate_ab import decision_log_path, load_outcomes
    from pipelines.flows.gate import market_day_gate
    from pipelines.monitoring.alerts import AlertConfig, AlertDispatcher
    from pipelines.monitoring.drift import (
        expected_calibration_error,
        feature_drift,
        latency_summary,
        prediction_drift,
    )

    logger = get_run_logger()
    if market_days_only:
        day = market_day_gate(as_of[:10] if as_of else None, flow_name="monitor")
        if not day.is_session:
            logger.info("skipped: %s", day.reason)
            return {"skipped": True, "reason": day.reason}
    overrides = overrides or {}
    settings = _settings(overrides)
    tracking_uri = settings.paths.mlflow_tracking_uri
    champion = champion_training_window(tracking_uri)
    reference = (reference_start or champion["start"], reference_end or champion["end"])
    windows = feature_windows(
        list(symbols or settings.symbols), timeframe, reference, window_days, as_of, overrides
    )
    reference_rows, current_rows = windows["reference"], windows["current"]
    monitored = [name for name in champion["features"] if name in reference_rows.columns]
    skipped = [name for name in champion["features"] if name not in reference_rows.columns]
    if not monitored:
        raise ConfigError(
            "none of the champion's features can be computed from bars", where="monitor"
        )
    drift = feature_drift(reference_rows, current_rows, monitored)
    create_table_artifact(
        key="feature-drift",
        table=json.loads(drift.round(4).to_json(orient="records")),
        description="PSI and KS per feature: training window vs the current window",
    )

    predictions = champion_predictions(tracking_uri, reference_rows, current_rows)
    prediction: dict[str, dict[str, Any]] = {}
    model_result = prediction_drift(predictions["reference"], predictions["current"])
    prediction["model_on_recent_bars"] = {
        "psi": model_result.psi,
        "ks": model_result.ks_statistic,
        "pvalue": model_result.ks_pvalue,
        "status": model_result.status.value,
        "current_n": model_result.current_n,
    }
    log_path = str(decision_log_path(settings, decision_log))
    decisions = cast(pd.DataFrame, served_decisions(log_path))
    start, end = (_utc(value) for value in windows["current_window"])
    served_window = decisions
    if not decisions.empty:
        in_window = (decisions["signal_timestamp"] > start) & (decisions["signal_timestamp"] <= end)
        served_window = decisions[in_window]
        served = served_window["outputs"].map(
            lambda out: float(out.get("win_probability", np.nan)) if out else np.nan
        )
        served_result = prediction_drift(predictions["reference"], served.to_numpy())
        prediction["served"] = {
            "psi": served_result.psi,
            "ks": served_result.ks_statistic,
            "pvalue": served_result.ks_pvalue,
            "status": served_result.status.value,
            "current_n": served_result.current_n,
        }
    latency = latency_summary(
        served_window["latency_ms"].to_numpy(dtype=float) if not served_window.empty else []
    )

    outcomes = cast(pd.DataFrame, load_outcomes(settings.paths.journal_url, log_path, str(end)))
    recent = outcomes[outcomes["exit_time"] > end - timedelta(days=calibration_days)]
    calibration_result = expected_calibration_error(
        recent["win_probability"].to_numpy(dtype=float), recent["won"].to_numpy(dtype=float)
    )
    calibration = {
        "ece": _round(calibration_result.ece),
        "trades": calibration_result.trades,
        "table": json.loads(calibration_result.table.round(4).to_json(orient="records")),
    }

    alert_config = AlertConfig.under(
        settings.paths.data_dir, **({"webhook_url": alert_webhook} if alert_webhook else {})
    )
    dispatched = AlertDispatcher.from_config(alert_config).dispatch(
        _alerts_for(
            drift,
            prediction,
            {"ece": calibration_result.ece, "trades": calibration["trades"]},
            latency,
            ece_limit=ece_limit,
            latency_p99_limit_ms=latency_p99_limit_ms,
            when=end,
        )
    )
    report: dict[str, Any] = {
        "champion": {k: champion[k] for k in ("version", "run_id")},
        "reference_window": list(reference),
        "current_window": list(windows["current_window"]),
        "symbols": windows["symbols"],
        "features_monitored": len(monitored),
        "features_not_monitored": skipped,
        "drift": json.loads(drift.round(4).to_json(orient="records")),
        "drift_counts": drift["status"].value_counts().to_dict(),
        "prediction_drift": {
            label: {k: (_round(v) if isinstance(v, float) else v) for k, v in result.items()}
            for label, result in prediction.items()
        },
        "calibration": calibration,
        "latency": {k: _round(v) for k, v in latency.items()},
        "alerts": {
            **dispatched.summary(),
            "keys": [alert.key for alert in dispatched.sent],
            "failures": [list(failure) for failure in dispatched.failures],
        },
    }
    folder = settings.paths.reports_dir / "monitoring"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"monitor-{end:%Y%m%dT%H%M%S}.json"
    path.write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
    report["report_path"] = str(path)
    create_markdown_artifact(
        key="monitor-summary",
        markdown=_summary_markdown(report, drift),
        description="drift, calibration and latency",
    )
    logger.info("monitor: %s; alerts %s", report["drift_counts"], dispatched.summary())
    return report
