"""The `monitor` flow: is the champion still looking at the market it was trained on, is
its win probability still calibrated, and is the service fast enough?

- Feature drift (`monitoring.drift`): PSI and KS per model feature, the champion's training
  window (its signal_quality run's tags, through `models.registry`: the final model is
  fitted on the rows before the out-of-time start) against the latest `window_days` of
  stored bars, both computed from the bar store with the same code. Position features
  (`pos_*`) exist only at decision time and are not monitored here.
- Prediction drift: the champion's win probability on the training-window rows against its
  win probability on the recent rows, and against what the service actually served in the
  window (decision log), when there is any.
- Calibration (`monitoring.calibration`): expected calibration error of the served win
  probability on the closed trades of the last `calibration_days`.
- Latency (`monitoring.latency`): p50/p95/p99 of the service's decision latency.
The checks themselves are `monitoring.checks.run_checks`. Findings become prioritised,
deduplicated alerts (`monitoring.policy`, `monitoring.alerts`), a Prefect table artifact
(the drift table) and markdown summary, and a JSON report under
`<reports_dir>/monitoring/`."""

from __future__ import annotations

import json
from typing import Any, cast

import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from core.errors import ConfigError
from core.settings import load_settings
from core.symbols import MARKET_CONTEXT_SYMBOLS, is_tradable
from core.utc import utc_timestamp
from pipelines.tasks import champion_training_window, load_outcomes
from serving.config import decision_log_path


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
    from monitoring.drift import split_windows

    store = BarStore(load_settings(**overrides).paths.bars_dir)
    stored = set(store.symbols(timeframe))
    stocks = [s for s in symbols if s in stored and is_tradable(s)]
    if not stocks:
        raise ConfigError(
            f"no stored bars for {', '.join(symbols)} ({timeframe}); run the ingest flow first",
            where="monitor",
        )
    bars = store.read(symbols=stocks, timeframe=timeframe)
    indices = sorted(stored & (MARKET_CONTEXT_SYMBOLS - set(stocks)))
    index_bars = store.read(symbols=indices, timeframe=timeframe) if indices else None
    features = compute_features(bars, index_bars)
    reference_rows, current, (start, end) = split_windows(
        features,
        (utc_timestamp(reference[0]), utc_timestamp(reference[1])),
        current_days,
        utc_timestamp(as_of) if as_of else None,
    )
    return {
        "reference": reference_rows,
        "current": current,
        "current_window": (str(start), str(end)),
        "symbols": stocks,
    }


def _model_inputs(frame: pd.DataFrame, names: list[str]) -> pd.DataFrame:
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
) -> dict[str, Any]:
    """The champion's win probability on both windows, and how much it leans on each
    input (drift alerts are ranked by it)."""
    from models.loading import load_model_set
    from monitoring.sensitivity import prediction_sensitivity

    model_set = load_model_set(tracking_uri, "champion")
    names = list(model_set.feature_names)
    inputs = _model_inputs(reference, names)
    return {
        "reference": model_set.win_probability(inputs),
        "current": model_set.win_probability(_model_inputs(current, names)),
        "importance": prediction_sensitivity(model_set.win_probability, inputs, names),
    }


@task(name="served-decisions", retries=2, retry_delay_seconds=3)
def served_decisions(decision_log: str) -> pd.DataFrame:
    """The service's decision log (empty when the service never ran)."""
    from serving.decision_log import decision_log_exists, read_decisions

    if not decision_log_exists(decision_log):
        return pd.DataFrame(columns=["decided_at", "signal_timestamp", "latency_ms", "outputs"])
    return read_decisions(decision_log)


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

    from monitoring.checks import run_checks
    from monitoring.sinks import AlertConfig, dispatcher_for
    from monitoring.summaries import monitor_markdown, monitor_report, table_records
    from pipelines.flows.gate import market_day_gate

    logger = get_run_logger()
    if market_days_only:
        day = market_day_gate(as_of[:10] if as_of else None, flow_name="monitor")
        if not day.is_session:
            logger.info("skipped: %s", day.reason)
            return {"skipped": True, "reason": day.reason}
    overrides = overrides or {}
    settings = load_settings(**overrides)
    tracking_uri = settings.paths.mlflow_tracking_uri
    champion = champion_training_window(tracking_uri)
    reference = (reference_start or champion["start"], reference_end or champion["end"])
    windows = feature_windows(
        list(symbols or settings.symbols), timeframe, reference, window_days, as_of, overrides
    )
    start, end = (utc_timestamp(value) for value in windows["current_window"])
    log_path = decision_log or str(decision_log_path(settings))
    predictions = champion_predictions(tracking_uri, windows["reference"], windows["current"])
    findings = run_checks(
        features=champion["features"],
        reference_rows=windows["reference"],
        current_rows=windows["current"],
        predictions=predictions,
        decisions=cast(pd.DataFrame, served_decisions(log_path)),
        outcomes=cast(pd.DataFrame, load_outcomes(settings.paths.journal_url, log_path, str(end))),
        window=(start, end),
        calibration_days=calibration_days,
        importance=predictions["importance"],
    )
    create_table_artifact(
        key="feature-drift",
        table=table_records(findings.drift),
        description="PSI and KS per feature: training window vs the current window",
    )
    alert_config = AlertConfig.under(
        settings.paths.data_dir, **({"webhook_url": alert_webhook} if alert_webhook else {})
    )
    dispatched = dispatcher_for(alert_config).dispatch(
        findings.alerts(ece_limit=ece_limit, latency_p99_limit_ms=latency_p99_limit_ms, when=end)
    )
    report = monitor_report(
        findings,
        champion=champion,
        reference_window=reference,
        current_window=windows["current_window"],
        symbols=windows["symbols"],
        dispatched=dispatched,
    )
    folder = settings.paths.reports_dir / "monitoring"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"monitor-{end:%Y%m%dT%H%M%S}.json"
    path.write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
    report["report_path"] = str(path)
    create_markdown_artifact(
        key="monitor-summary",
        markdown=monitor_markdown(report, findings.drift),
        description="drift, calibration and latency",
    )
    logger.info("monitor: %s; alerts %s", report["drift_counts"], dispatched.summary())
    return report
