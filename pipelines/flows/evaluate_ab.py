"""The `evaluate_ab` flow: champion vs challenger on live closed trades, then promote,
retire, keep collecting, or roll the champion back.

Tasks (the reads retry: they touch databases another process writes): closed trades from
the journal joined to the serving decision log (`pipelines.tasks.load_outcomes`) → the
registry's aliases → the rule of `monitoring.lifecycle.evaluate_live` (A/B verdict of
`monitoring.ab` and the champion's floor of `monitoring.rollback`) → the registry move for
every model that has the alias (`monitoring.lifecycle.apply_verdict`) → a run in the
MLflow experiment `ab_tests`, a row in the A/B outcome store (`monitoring.store`), a
Prefect markdown artifact with the verdict, and an alert (`monitoring.policy`)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task

from core.settings import Settings, load_settings
from core.utc import utc_datetime, utc_now
from monitoring.ab import ABConfig, Verdict
from monitoring.lifecycle import LiveEvaluation, evaluate_live
from monitoring.rollback import RollbackFloor
from pipelines.tasks import load_outcomes, run_logger
from serving.config import decision_log_path

AB_EXPERIMENT = "ab_tests"


@task(name="read-registry-aliases", retries=2, retry_delay_seconds=3)
def registry_aliases(tracking_uri: str) -> dict[str, dict[str, str]]:
    """alias → {model name → version} for champion, challenger and previous."""
    from models.registry import ModelRegistry

    return ModelRegistry(tracking_uri).aliases_by_alias()


@task(name="apply-registry-moves", retries=1, retry_delay_seconds=3)
def apply_moves(
    tracking_uri: str, action: str, reason: str, aliases: dict[str, dict[str, str]]
) -> dict[str, dict[str, str]]:
    """Move the aliases of every model concerned (only where the alias still points at the
    evaluated version); returns the new aliases per model."""
    from models.registry import ModelRegistry
    from monitoring.lifecycle import apply_verdict

    applied = apply_verdict(ModelRegistry(tracking_uri), Verdict(action), reason, aliases)
    for message in applied.stale:
        run_logger().warning(message)
    return applied.moved


@task(name="record-ab-outcome-mlflow", retries=2, retry_delay_seconds=3)
def record_mlflow(tracking_uri: str, artifact_root: str, summary: dict[str, Any]) -> str:
    """One run in the `ab_tests` experiment: per-arm metrics, tests and the verdict."""
    from core.strict_json import json_safe
    from models.tracker import MlflowTracker
    from monitoring.summaries import ab_run_tags

    tracker = MlflowTracker(tracking_uri, Path(artifact_root))
    run_name = f"ab-{summary['action']}-{summary['evaluated_at'][:19]}"
    with tracker.run(AB_EXPERIMENT, run_name, ab_run_tags(summary)) as run:
        run.log_params(summary["params"])
        run.log_metrics(summary["metrics"])
        run.log_dict(json_safe(summary), "ab_verdict.json")
        return run.run_id


@task(name="record-ab-outcome", retries=2, retry_delay_seconds=3)
def record_outcome(store_url: str, summary: dict[str, Any], mlflow_run_id: str | None) -> str:
    """A row in the A/B outcome store."""
    from monitoring.store import ABOutcomeStore
    from monitoring.summaries import ab_outcome

    with ABOutcomeStore(store_url) as store:
        return store.record(ab_outcome(summary, mlflow_run_id))


def _alert(
    settings: Settings, evaluation: LiveEvaluation, summary: dict[str, Any], when: datetime
) -> None:
    """The outcome's alert, if the policy raises one (`monitoring.policy.ab_alert`)."""
    from monitoring.policy import ab_alert
    from monitoring.sinks import AlertConfig, dispatcher_for

    alert = ab_alert(
        evaluation.action,
        evaluation.reason,
        applied=summary["applied"],
        champion_versions=summary["aliases"].get("champion", {}),
        details={"moves": summary["moves"], "counts": summary["counts"]},
        when=when,
    )
    if alert is not None:
        dispatcher_for(AlertConfig.under(settings.paths.data_dir)).dispatch([alert])


@flow(name="evaluate_ab", log_prints=True)
def evaluate_ab_flow(
    as_of: str | None = None,
    alpha: float = 0.05,
    min_trades_per_arm: int | None = None,
    max_trades_per_arm: int = 300,
    floor_min_trades: int = 20,
    floor_window_trades: int = 50,
    floor_min_win_rate: float = 0.35,
    floor_min_profit_factor: float = 0.8,
    decision_log: str | None = None,
    dry_run: bool = False,
    market_days_only: bool = False,
    overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Compare the arms on live trades and act on the verdict (see the module)."""
    from prefect.artifacts import create_markdown_artifact

    from monitoring.store import outcome_store_url
    from monitoring.summaries import ab_summary, verdict_markdown
    from pipelines.flows.gate import market_day_gate
    from serving.process import request_reload

    logger = get_run_logger()
    if market_days_only:
        day = market_day_gate(as_of[:10] if as_of else None, flow_name="evaluate_ab")
        if not day.is_session:
            logger.info("skipped: %s", day.reason)
            return {"action": "skipped", "reason": day.reason, "applied": False}
    settings = load_settings(**(overrides or {}))
    evaluated_at = utc_datetime(as_of or utc_now())
    min_trades = min_trades_per_arm or settings.models.min_trades_per_arm
    config = ABConfig.bounded(min_trades, max_trades_per_arm, alpha)
    floor = RollbackFloor(
        min_trades=floor_min_trades,
        window_trades=floor_window_trades,
        min_win_rate=floor_min_win_rate,
        min_profit_factor=floor_min_profit_factor,
    )
    tracking_uri = settings.paths.mlflow_tracking_uri
    outcomes = load_outcomes(
        settings.paths.journal_url, decision_log or str(decision_log_path(settings)), as_of
    )
    aliases = registry_aliases(tracking_uri)
    evaluation = evaluate_live(outcomes, aliases, config=config, floor=floor)

    moves: dict[str, dict[str, str]] = {}
    if evaluation.moves_registry and not dry_run:
        moves = apply_moves(tracking_uri, evaluation.action.value, evaluation.reason, aliases)
    summary = ab_summary(
        evaluation,
        aliases=aliases,
        config=config,
        floor=floor,
        applied=bool(moves),
        dry_run=dry_run,
        evaluated_at=evaluated_at,
        moves=moves,
    )
    run_id = record_mlflow(tracking_uri, str(settings.paths.mlflow_artifact_root), summary)
    summary["mlflow_run_id"] = run_id
    summary["outcome_id"] = record_outcome(outcome_store_url(settings), summary, run_id)
    create_markdown_artifact(
        key="ab-verdict",
        markdown=verdict_markdown(summary),
        description=f"A/B: {evaluation.action}",
    )
    if summary["applied"]:
        token = settings.serving.api_token
        summary["service_reload"] = request_reload(
            settings.serving.endpoint, token.get_secret_value() if token else None
        )
    _alert(settings, evaluation, summary, evaluated_at)
    logger.info(
        "A/B verdict %s (applied=%s): %s", evaluation.action.value, summary["applied"],
        evaluation.reason,
    )
    return summary
