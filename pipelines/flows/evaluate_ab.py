"""The `evaluate_ab` flow: champion vs challenger on live closed trades, then promote,
retire, keep collecting, or roll the champion back.

Steps (each a Prefect task; the reads retry because they touch databases another process
writes): closed trades from the journal joined to the serving decision log
(`pipelines/monitoring/outcomes.py`) → the registry's aliases → the arms: trades decided by
the current challenger versions, and trades decided by the current champion versions in the
same period (from the challenger's first trade on, so both arms faced the same market) →
the decision rule of `pipelines/ab.py` → the registry move (`ModelRegistry.promote`,
`retire_challenger`, `rollback`) for every model that has the alias → a run in the MLflow
experiment `ab_tests` (per-arm metrics, test statistics, verdict), a row in the journal's
`ab_outcomes` table, a Prefect markdown artifact with the verdict, and an alert.

The champion's floor is checked whenever the champion was not just replaced: when its most
recent live trades fall below the floor and a `previous` version exists, every model with
a `previous` alias is rolled back."""

from __future__ import annotations

import json
import logging
import math
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from prefect import flow, get_run_logger, task
from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, Text, select

from core.settings import Settings, load_settings
from pipelines.ab import ABConfig, ABVerdict, RollbackFloor, RollbackVerdict, Verdict, decide
from pipelines.ab import check_rollback as floor_check

AB_EXPERIMENT = "ab_tests"

_metadata = MetaData()
ab_outcomes = Table(
    "ab_outcomes",
    _metadata,
    Column("outcome_id", String(64), primary_key=True),
    Column("evaluated_at", DateTime(timezone=True), nullable=False),
    Column("verdict", String(24), nullable=False),
    Column("reason", Text, nullable=False),
    Column("applied", Integer, nullable=False),
    Column("champion_versions", Text, nullable=False),
    Column("challenger_versions", Text, nullable=False),
    Column("champion_trades", Integer, nullable=False),
    Column("challenger_trades", Integer, nullable=False),
    Column("details", Text, nullable=False),  # JSON: per-arm metrics, tests, registry moves
    Column("mlflow_run_id", String(64)),
)


def _logger() -> Any:
    """The run logger inside a flow or task run (shown in the UI), else the module's."""
    from prefect.exceptions import MissingContextError

    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger(__name__)


def _json_safe(value: Any) -> Any:
    """NaN/inf become None, so the stored JSON is strict (MLflow's viewer, other readers)."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _settings(overrides: dict[str, Any] | None) -> Settings:
    return load_settings(**(overrides or {}))


def _as_of(value: str | None) -> datetime:
    if value is None:
        return datetime.now(UTC)
    stamp = pd.Timestamp(value)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.to_pydatetime()


def decision_log_path(settings: Settings, explicit: str | None = None) -> Path:
    """The service's decision log (the same default `serving.config` uses)."""
    if explicit:
        return Path(explicit)
    from serving.config import ServiceConfig

    return ServiceConfig.from_env(settings).decision_log


@task(name="load-live-outcomes", retries=2, retry_delay_seconds=3)
def load_outcomes(
    journal_url: str, decision_log: str, as_of: str | None = None
) -> pd.DataFrame:
    """Closed trades (exit ≤ as_of) joined to the decisions that opened them."""
    from pipelines.monitoring.outcomes import join_outcomes
    from serving.decision_log import read_decisions
    from trading.journal import Journal

    journal = Journal(journal_url)
    try:
        trades = journal.trades()
        journal_decisions = journal.decisions()
    finally:
        journal.close()
    log_path = Path(decision_log)
    logged = read_decisions(log_path) if log_path.exists() else None
    outcomes = join_outcomes(trades, journal_decisions, logged)
    if as_of is not None and not outcomes.empty:
        outcomes = outcomes[outcomes["exit_time"] <= pd.Timestamp(_as_of(as_of))]
    get_run_logger().info(
        "%d closed trades; by arm: %s", len(outcomes), outcomes["variant"].value_counts().to_dict()
    )
    return outcomes.reset_index(drop=True)


@task(name="read-registry-aliases", retries=2, retry_delay_seconds=3)
def registry_aliases(tracking_uri: str) -> dict[str, dict[str, str]]:
    """alias → {model name → version} for champion, challenger and previous."""
    from models.registry import ALIASES, MODEL_NAMES, ModelRegistry

    registry = ModelRegistry(tracking_uri)
    present = set(registry.names())
    by_alias: dict[str, dict[str, str]] = {alias: {} for alias in ALIASES}
    for name in MODEL_NAMES:
        if name not in present:
            continue
        for alias, version in registry.aliases(name).items():
            if alias in by_alias:
                by_alias[alias][name] = version
    return by_alias


def compare_arms(
    outcomes: pd.DataFrame,
    aliases: dict[str, dict[str, str]],
    *,
    config: ABConfig,
    floor: RollbackFloor,
) -> tuple[ABVerdict | None, RollbackVerdict | None, dict[str, int]]:
    """The A/B verdict (None without a challenger) and the floor check of the champion
    (None when the verdict replaces the champion anyway). Pure."""
    from pipelines.monitoring.outcomes import arm_trades

    champion_all = arm_trades(outcomes, "champion", aliases.get("champion", {}))
    challenger = arm_trades(outcomes, "challenger", aliases.get("challenger", {}))
    counts = {"champion_all": len(champion_all), "challenger": len(challenger)}
    verdict: ABVerdict | None = None
    if aliases.get("challenger"):
        start = challenger["entry_time"].min() if not challenger.empty else None
        champion = champion_all if start is None else champion_all[
            champion_all["entry_time"] >= start
        ]
        counts["champion_same_period"] = len(champion)
        verdict = decide(
            champion["return_pct"].to_numpy(),
            challenger["return_pct"].to_numpy(),
            config=config,
            champion_win_probability=champion["win_probability"].to_numpy(),
            challenger_win_probability=challenger["win_probability"].to_numpy(),
        )
    rollback: RollbackVerdict | None = None
    if verdict is None or verdict.verdict is not Verdict.PROMOTE:
        rollback = floor_check(
            champion_all["return_pct"].to_numpy(),
            floor=floor,
            champion_win_probability=champion_all["win_probability"].to_numpy(),
        )
    return verdict, rollback, counts


@task(name="apply-registry-moves", retries=1, retry_delay_seconds=3)
def apply_moves(
    tracking_uri: str, action: str, reason: str, aliases: dict[str, dict[str, str]]
) -> dict[str, dict[str, str]]:
    """Move the aliases of every model concerned; returns the new aliases per model.

    Each move happens only if the alias still points at the version that was evaluated:
    a challenger registered by a retrain after the comparison is never promoted unseen,
    and a retried task does not move anything twice."""
    from models.registry import ModelRegistry

    registry = ModelRegistry(tracking_uri)
    moved: dict[str, dict[str, str]] = {}
    alias = "previous" if action == Verdict.ROLLBACK else "challenger"
    for name, evaluated in sorted(aliases.get(alias, {}).items()):
        if registry.aliases(name).get(alias) != evaluated:
            _logger().warning(
                "%s: %s is no longer v%s; not moved", name, alias, evaluated
            )
            continue
        if action == Verdict.PROMOTE:
            moved[name] = registry.promote(name, reason)
        elif action == Verdict.RETIRE:
            moved[name] = registry.retire_challenger(name, reason)
        elif action == Verdict.ROLLBACK:
            moved[name] = registry.rollback(name, reason)
    return moved


@task(name="record-ab-outcome-mlflow", retries=2, retry_delay_seconds=3)
def record_mlflow(
    tracking_uri: str, artifact_root: str, summary: dict[str, Any]
) -> str:
    """One run in the `ab_tests` experiment: per-arm metrics, tests and the verdict."""
    from models.tracker import MlflowTracker

    tracker = MlflowTracker(tracking_uri, Path(artifact_root))
    tags = {
        "verdict": summary["action"],
        "reason": summary["reason"][:4000],
        "applied": str(summary["applied"]),
        "champion_versions": json.dumps(summary["aliases"].get("champion", {}), sort_keys=True),
        "challenger_versions": json.dumps(
            summary["aliases"].get("challenger", {}), sort_keys=True
        ),
    }
    run_name = f"ab-{summary['action']}-{summary['evaluated_at'][:19]}"
    with tracker.run(AB_EXPERIMENT, run_name, tags) as run:
        run.log_params(summary["params"])
        run.log_metrics(summary["metrics"])
        run.log_dict(_json_safe(summary), "ab_verdict.json")
        return run.run_id


@task(name="record-ab-outcome-journal", retries=2, retry_delay_seconds=3)
def record_journal(journal_url: str, summary: dict[str, Any], mlflow_run_id: str | None) -> str:
    """A row in the journal's `ab_outcomes` table (same database as trades and decisions)."""
    from trading.journal import Journal

    journal = Journal(journal_url)
    try:
        _metadata.create_all(journal.engine)
        outcome_id = uuid.uuid4().hex
        with journal.engine.begin() as connection:
            connection.execute(
                ab_outcomes.insert().values(
                    outcome_id=outcome_id,
                    evaluated_at=datetime.fromisoformat(summary["evaluated_at"]),
                    verdict=summary["action"],
                    reason=summary["reason"],
                    applied=int(summary["applied"]),
                    champion_versions=json.dumps(summary["aliases"].get("champion", {})),
                    challenger_versions=json.dumps(summary["aliases"].get("challenger", {})),
                    champion_trades=int(summary["counts"].get("champion_same_period",
                                                              summary["counts"]["champion_all"])),
                    challenger_trades=int(summary["counts"]["challenger"]),
                    details=json.dumps(_json_safe(summary), default=str, allow_nan=False),
                    mlflow_run_id=mlflow_run_id,
                )
            )
    finally:
        journal.close()
    return outcome_id


def read_ab_outcomes(journal_url: str) -> pd.DataFrame:
    """Every recorded A/B outcome, oldest first (empty when none was recorded)."""
    from trading.journal import Journal

    journal = Journal(journal_url)
    try:
        _metadata.create_all(journal.engine)
        with journal.engine.connect() as connection:
            result = connection.execute(select(ab_outcomes).order_by(ab_outcomes.c.evaluated_at))
            frame = pd.DataFrame(result.fetchall(), columns=list(result.keys()))
    finally:
        journal.close()
    frame["evaluated_at"] = pd.to_datetime(frame["evaluated_at"], utc=True)
    return frame


def _verdict_markdown(summary: dict[str, Any]) -> str:
    lines = [
        f"## A/B verdict: **{summary['action']}**",
        "",
        summary["reason"],
        "",
        f"Applied: {summary['applied']} · evaluated at {summary['evaluated_at']}",
        "",
    ]
    arms = summary.get("arms") or {}
    if arms:
        lines += [
            "| arm | versions | trades | win rate | profit factor | mean return | log loss |",
            "|---|---|---|---|---|---|---|",
        ]
        for arm, figures in arms.items():
            versions = ", ".join(
                f"{k} v{v}" for k, v in summary["aliases"].get(arm, {}).items()
            )
            lines.append(
                f"| {arm} | {versions} | {figures['trades']} | {figures['win_rate']:.3f} | "
                f"{figures['profit_factor']:.3f} | {figures['mean_return']:.4f} | "
                f"{figures['log_loss']:.4f} |"
            )
    tests = summary.get("tests") or []
    if tests:
        lines += ["", "| test | statistic | p-value | favours |", "|---|---|---|---|"]
        for test in tests:
            lines.append(
                f"| {test['name']} | {test['statistic']:.4f} | {test['pvalue']:.4g} | "
                f"{test['favours'] or '—'} |"
            )
        lines.append(f"\nα = {summary['params']['alpha']} (Bonferroni: α/2 per test)")
    if summary.get("moves"):
        lines += ["", "Registry moves:"]
        lines += [f"- {name}: {moved}" for name, moved in summary["moves"].items()]
    return "\n".join(lines)


def _reload_service(endpoint: str | None, token: str | None) -> str:
    """Ask a running model service to pick up the new aliases now (it also polls)."""
    if not endpoint:
        return "no service endpoint configured; the service picks up aliases when it polls"
    import httpx

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        response = httpx.post(f"{endpoint.rstrip('/')}/reload", headers=headers, timeout=30.0)
    except httpx.HTTPError as exc:
        return f"service reload failed: {exc}"
    return f"service reload answered HTTP {response.status_code}"


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

    from pipelines.flows.gate import market_day_gate
    from pipelines.monitoring.alerts import Alert, AlertConfig, AlertDispatcher, Priority

    logger = get_run_logger()
    if market_days_only:
        day = market_day_gate(as_of[:10] if as_of else None, flow_name="evaluate_ab")
        if not day.is_session:
            logger.info("skipped: %s", day.reason)
            return {"action": "skipped", "reason": day.reason, "applied": False}
    settings = _settings(overrides)
    evaluated_at = _as_of(as_of)
    min_trades = min_trades_per_arm or settings.models.min_trades_per_arm
    config = ABConfig(
        min_trades_per_arm=min_trades,
        max_trades_per_arm=max(max_trades_per_arm, min_trades),
        alpha=alpha,
    )
    floor = RollbackFloor(
        min_trades=floor_min_trades,
        window_trades=floor_window_trades,
        min_win_rate=floor_min_win_rate,
        min_profit_factor=floor_min_profit_factor,
    )
    tracking_uri = settings.paths.mlflow_tracking_uri
    outcomes = load_outcomes(
        settings.paths.journal_url, str(decision_log_path(settings, decision_log)), as_of
    )
    aliases = registry_aliases(tracking_uri)
    verdict, rollback, counts = compare_arms(outcomes, aliases, config=config, floor=floor)

    action = Verdict.HOLD
    reason = "no challenger in A/B"
    if verdict is not None:
        action, reason = verdict.verdict, verdict.reason
    if rollback is not None and rollback.rollback:
        if aliases.get("previous"):
            action, reason = Verdict.ROLLBACK, rollback.reason
        else:
            reason += f"; {rollback.reason}, but no previous version to roll back to"
    elif rollback is not None and verdict is None:
        reason = f"no challenger in A/B; {rollback.reason}"

    moves: dict[str, dict[str, str]] = {}
    applied = False
    if action in (Verdict.PROMOTE, Verdict.RETIRE, Verdict.ROLLBACK) and not dry_run:
        moves = apply_moves(tracking_uri, action.value, reason, aliases)
        applied = bool(moves)

    arms: dict[str, dict[str, Any]] = {}
    metrics: dict[str, float] = {}
    tests: list[dict[str, Any]] = []
    if verdict is not None:
        for arm in (verdict.champion, verdict.challenger):
            arms[arm.arm] = {
                "trades": arm.trades,
                "win_rate": arm.win_rate,
                "profit_factor": min(arm.profit_factor, 1e6),
                "mean_return": arm.mean_return,
                "log_loss": arm.log_loss,
            }
            metrics.update(arm.to_metrics(arm.arm))
        tests = verdict.to_dict()["tests"]
        for test in verdict.tests:
            metrics[f"{test.name}_pvalue"] = test.pvalue
            metrics[f"{test.name}_statistic"] = test.statistic
    if rollback is not None:
        metrics.update(rollback.champion.to_metrics("champion_recent"))
    summary: dict[str, Any] = {
        "action": action.value,
        "reason": reason,
        "applied": applied,
        "dry_run": dry_run,
        "evaluated_at": evaluated_at.isoformat(),
        "aliases": aliases,
        "counts": counts,
        "arms": arms,
        "tests": tests,
        "moves": moves,
        "metrics": metrics,
        "params": {
            "alpha": alpha,
            "min_trades_per_arm": config.min_trades_per_arm,
            "max_trades_per_arm": config.max_trades_per_arm,
            "floor_min_trades": floor.min_trades,
            "floor_window_trades": floor.window_trades,
            "floor_min_win_rate": floor.min_win_rate,
            "floor_min_profit_factor": floor.min_profit_factor,
        },
    }
    run_id = record_mlflow(tracking_uri, str(settings.paths.mlflow_artifact_root), summary)
    summary["mlflow_run_id"] = run_id
    summary["outcome_id"] = record_journal(settings.paths.journal_url, summary, run_id)
    create_markdown_artifact(
        key="ab-verdict", markdown=_verdict_markdown(summary), description=f"A/B: {action}"
    )
    if applied:
        token = settings.serving.api_token
        summary["service_reload"] = _reload_service(
            settings.serving.endpoint, token.get_secret_value() if token else None
        )
    priority = {
        Verdict.ROLLBACK: Priority.CRITICAL,
        Verdict.PROMOTE: Priority.MEDIUM,
        Verdict.RETIRE: Priority.LOW,
    }.get(action)
    if priority is not None:
        champion_key = json.dumps(aliases.get("champion", {}), sort_keys=True)
        dispatcher = AlertDispatcher.from_config(AlertConfig.under(settings.paths.data_dir))
        dispatcher.dispatch(
            [
                Alert(
                    key=f"ab:{action.value}:{champion_key}",
                    priority=priority,
                    title=f"A/B {action.value}" + ("" if applied else " (not applied)"),
                    message=reason,
                    source="evaluate_ab",
                    created_at=evaluated_at,
                    details={"moves": moves, "counts": counts},
                )
            ]
        )
    logger.info("A/B verdict %s (applied=%s): %s", action.value, applied, reason)
    return summary
