"""The gated engine over the demo's trading window, month by month, consulting the model
service for every signal; between months the retrain triggers are checked (every N
closed trades from the journal, or the schedule in replay time: `monitoring.trigger`)
and the `evaluate_ab` flow runs, with the service reloaded after every registry move."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from core.settings import load_settings
from pipelines.demo.narration import Narrator
from pipelines.demo.plan import DemoPlan
from serving.process import ServiceProcess


@task(cache_policy=NO_CACHE, task_run_name="store-closed-trades")
def store_closed(records: list[Any], overrides: dict[str, Any]) -> int:
    from features.store import FeatureStore
    from trading.closed_trades import trades_frame

    if not records:
        return 0
    settings = load_settings(**overrides)
    return FeatureStore(settings.paths, settings.feature_store).write_trades(trades_frame(records))


@task(cache_policy=NO_CACHE, task_run_name="trade-until-{until}")
def trade_step(session: Any, until: str) -> int:
    return int(session.run_until(pd.Timestamp(until)))


def trade_with_learning(
    plan: DemoPlan,
    overrides: dict[str, Any],
    service: ServiceProcess,
    demo_dir: Path,
    story: Narrator,
) -> dict[str, Any]:
    """The gated engine over the trade window, month by month, consulting the service;
    between months the retrain triggers are checked and `evaluate_ab` runs."""
    from monitoring.trigger import LoopCadence, closed_between
    from pipelines.flows.evaluate_ab import evaluate_ab_flow
    from pipelines.flows.retrain import retrain_flow
    from serving.client import HttpModelClient
    from trading.backtest import ReplaySession, load_window_bars

    settings = load_settings(**overrides)
    bars, index_bars = load_window_bars(settings, plan.trade_symbols, plan.trade_start,
                                        plan.trade_end)
    client = HttpModelClient(service.url, timeout=5.0, retries=2)
    session = ReplaySession(
        settings,
        bars,
        index_bars,
        pd.Timestamp(plan.trade_start, tz="UTC"),
        model_client=client,
        gate_enabled=True,
        journal_url=settings.paths.journal_url,
        journal_batch=1,
    )
    cadence = LoopCadence(
        every_trades=plan.retrain_every_trades,
        schedule_months=plan.retrain_schedule_months,
        max_retrains=plan.max_retrains,
        ab_every_months=plan.ab_every_months,
        start=pd.Timestamp(plan.trade_start, tz="UTC"),
    )
    months = cadence.month_starts(session.last_timestamp)
    retrains: list[dict[str, Any]] = []
    evaluations: list[dict[str, Any]] = []
    stored = 0
    progress = Progress(
        TextColumn("   trading"),
        BarColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=story.console,
        transient=True,
    )
    with progress:
        bar = progress.add_task("", total=len(months))
        for index, boundary in enumerate(months):
            trade_step(session, boundary.isoformat())
            now = min(boundary, pd.Timestamp(session.last_timestamp)) if session.done else boundary
            as_of = (now - pd.Timedelta(seconds=1)).isoformat()
            progress.update(
                bar, advance=1, description=f"{boundary.date()}  trades {len(session.records)}"
            )
            if session.records[stored:]:
                store_closed(session.records[stored:], overrides)
                stored = len(session.records)
            # Retrain triggers: N closed trades since the last retrain (from the journal),
            # or the schedule; both capped so the demo stays within its time budget.
            if cadence.retrains < plan.max_retrains and not session.done:
                since = closed_between(session.journal.trades(), cadence.last_retrain, now)
                trigger = cadence.retrain_trigger(now, since)
                if trigger is not None:
                    progress.stop()
                    story.say(
                        f"[bold]{now.date()}[/]: retrain ({trigger}: {since} trades closed "
                        "since the last one)"
                    )
                    result = retrain_flow(
                        as_of=as_of,
                        trigger=trigger,
                        train_start=plan.history_start,
                        symbols=plan.symbols,
                        journal_url=settings.paths.journal_url,
                        overrides=overrides,
                    )
                    cadence.retrained(now, trigger)
                    retrains.append(result | {"at": now.isoformat()})
                    story.retrained(now, trigger, since, result)
                    if result.get("challengers"):
                        service.reload()
                        story.say(
                            f"  service reloaded: challenger arm now serves {result['challengers']}"
                        )
                    progress.start()
            if cadence.ab_due(index + 1, finished=session.done):
                verdict = evaluate_ab_flow(
                    as_of=as_of,
                    alpha=plan.alpha,
                    min_trades_per_arm=plan.min_trades_per_arm,
                    max_trades_per_arm=plan.max_trades_per_arm,
                    decision_log=str(demo_dir / "decisions.db"),
                    overrides=overrides,
                )
                evaluations.append(verdict | {"at": now.isoformat()})
                if verdict["action"] in ("promote", "retire", "rollback"):
                    progress.stop()
                    story.verdict(now, verdict)
                    if verdict.get("applied"):
                        service.reload()
                    progress.start()
            if session.done:
                break
    session.finish()
    if session.records[stored:]:
        store_closed(session.records[stored:], overrides)
    return {
        "metrics": session.metrics(),
        "equity": session.journal.equity(),
        "trades": session.journal.trades(),
        "decisions": session.journal.decisions(),
        "records": session.records,
        "retrains": retrains,
        "evaluations": evaluations,
        "stats": session.engine.stats,
        "models_at_end": service.models(),
    }
