"""The `demo` flow: the stages of `tradewind demo` (see `pipelines.demo`) as one parent
Prefect flow whose stages are the platform's own flows (ingest, collect_trades, train,
retrain, evaluate_ab, evaluate) run as subflows, plus tasks for the model service, the two
replays and the report. It is a driver of flows, like the command line, not one of them: it lives
outside `pipelines/flows/`, which never import each other."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pandas as pd
from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from core.settings import load_settings
from pipelines.demo.narration import Narrator, current_terminal, summary_table, where_to_look
from pipelines.demo.plan import LOG_FILE, DemoPlan
from pipelines.runtime import model_service_command
from serving.process import ServiceProcess


def launch_service(port: int, overrides: dict[str, Any], demo_dir: str) -> ServiceProcess:
    """`tradewind serve` as a child process on the demo's stores, launched before the
    models are trained so its start-up overlaps the training (`ready_service` waits).
    The tracking store is created here first: two processes creating one SQLite store's
    tables at once would collide."""
    from models.registry import ModelRegistry

    paths = overrides["paths"]
    ModelRegistry(paths["mlflow_tracking_uri"])
    env = {
        "TRADEWIND_PATHS__DATA_DIR": paths["data_dir"],
        "TRADEWIND_PATHS__MLFLOW_TRACKING_URI": paths["mlflow_tracking_uri"],
        "TRADEWIND_PATHS__MLFLOW_ARTIFACT_ROOT": paths["mlflow_artifact_root"],
        "TRADEWIND_MODELS__CHALLENGER_SHARE": str(overrides["models"]["challenger_share"]),
        "TRADEWIND_DECISION_LOG": str(Path(demo_dir) / "decisions.db"),
        "TRADEWIND_RELOAD_INTERVAL_SECONDS": "0",  # the demo reloads explicitly
        "TRADEWIND_SERVING__WORKERS": "1",
    }
    service = ServiceProcess(
        model_service_command(port), port, log_path=Path(demo_dir) / "service.log", env=env
    )
    service.launch()
    return service


@task(cache_policy=NO_CACHE, task_run_name="start-model-service")
def ready_service(service: ServiceProcess) -> str:
    """Wait until the launched service serves the registered champions."""
    service.wait_ready(reload=True)
    return service.url


@task(cache_policy=NO_CACHE, task_run_name="baseline-replay")
def baseline_replay(
    plan: dict[str, Any], overrides: dict[str, Any], demo_dir: str
) -> dict[str, Any]:
    """The same years replayed ungated with the rules client: the baseline."""
    from trading.backtest import ReplaySession, load_window_bars

    settings = load_settings(**overrides)
    bars, index_bars = load_window_bars(
        settings, plan["trade_symbols"], plan["trade_start"], plan["trade_end"]
    )
    session = ReplaySession(
        settings,
        bars,
        index_bars,
        pd.Timestamp(plan["trade_start"], tz="UTC"),
        journal_url=f"sqlite:///{Path(demo_dir) / 'baseline_journal.db'}",
    )
    session.run_until(None)
    session.finish()
    return {
        "metrics": session.metrics(),
        "equity": session.journal.equity(),
        "trades": session.journal.trades(),
    }


@flow(name="demo", log_prints=True)
def demo_flow(plan: dict[str, Any], port: int, demo_dir: str) -> dict[str, Any]:
    """Ingest → collect → train → serve → trade with retraining and A/B → evaluate →
    report."""
    from pipelines.demo.loop import trade_with_learning
    from pipelines.flows.collect_trades import collect_trades_flow
    from pipelines.flows.ingest import ingest_flow
    from pipelines.flows.train import train_flow

    started = time.perf_counter()
    console = current_terminal()
    chosen = DemoPlan.model_validate(plan)
    settings = load_settings()
    demo_path = Path(demo_dir)
    endpoint = f"http://127.0.0.1:{port}"
    overrides = chosen.overrides(settings, demo_path, endpoint)
    story = Narrator(console)
    console.print(
        f"[bold]Tradewind demo[/] on {chosen.source}: the models learn from "
        f"{len(chosen.symbols)} development symbols {chosen.history_start}..{chosen.train_end};"
        f" the engine trades {len(chosen.trade_symbols)} held-out symbols "
        f"{chosen.trade_start}..{chosen.trade_end}.\n"
        f"   decision policy: {settings.models.policy.mode.replace('_', ' ')} (fitted in the "
        f"training window); demo settings: challenger share "
        f"{chosen.challenger_share:.0%}, retrain every {chosen.retrain_every_trades} closed "
        f"trades or every {chosen.retrain_schedule_months} months, margin "
        f"{chosen.promotion_margin:.0%}, A/B from {chosen.min_trades_per_arm} trades per arm."
    )

    with story.stage(1, f"Ingest {chosen.source} bars, compute and materialize features"):
        ingested = ingest_flow(source=chosen.source, symbols=chosen.all_symbols,
                               overrides=overrides)
        story.say(
            f"{ingested['bars']['rows_written']} bars of {len(ingested['bars']['symbols'])} "
            f"series in the bar store; {ingested['features']['rows']} feature rows × "
            f"{ingested['features']['columns']} features written to Feast and materialized"
        )

    with story.stage(2, "Collect trades with the ungated engine over the training years"):
        collected = collect_trades_flow(
            start=chosen.history_start,
            end=chosen.train_end,
            symbols=chosen.symbols,
            journal_name="demo_collect.db",
            overrides=overrides,
        )
        story.say(
            f"{collected['trades']} closed trades ({collected['written']} new in the store's "
            f"trade collection); win rate {collected['metrics']['win_rate']:.1%}"
        )

    service = launch_service(port, overrides, demo_dir)
    try:
        with story.stage(3, "Train and register the four models (development symbols only)"):
            trained = train_flow(
                start=chosen.history_start,
                end=chosen.train_end,
                symbols=chosen.symbols,
                make_champion=True,
                source=chosen.source,
                overrides=overrides,
            )
            for name, info in trained["models"].items():
                key = {
                    "signal_quality": "roc_auc",
                    "exit_optimizer": "stop_loss_mae",
                    "regime_classifier": "macro_f1",
                    "risk_predictor": "mae",
                }[name]
                story.say(
                    f"{name}: v{info['version']} champion; out-of-time {key} "
                    f"{info['metrics'].get(key, float('nan')):.3f}"
                )
                story.event(
                    pd.Timestamp(chosen.train_end, tz="UTC"),
                    "champion",
                    name,
                    f"v{info['version']} trained",
                )

        with story.stage(4, "Start the BentoML model service"):
            ready_service(service)
            story.say(f"serving at {service.url} (log: {service.log_path})")

        with story.stage(5, "Trade the held-out symbols through the service, with retraining "
                         "and A/B"):
            loop = trade_with_learning(chosen, overrides, service, demo_path, story)
            baseline = baseline_replay(plan, overrides, demo_dir)
            story.say(
                f"baseline (ungated): {baseline['metrics']['trades']} trades; model-gated: "
                f"{loop['metrics']['trades']} trades"
            )
            actions = loop["decisions"]["action"].value_counts().to_dict()
            story.say(
                "what the engine did with the service's answers: "
                + ", ".join(f"{count} {action}" for action, count in actions.items())
            )
    finally:
        service.stop()

    with story.stage(6, "Evaluate the policy walk-forward on the held-out symbols"):
        from pipelines.flows.evaluate import evaluate_flow

        report_dir = Path(overrides["paths"]["reports_dir"]) / "demo"
        evaluated = evaluate_flow(source=chosen.source, years=chosen.evaluation_years,
                                  symbols=chosen.all_symbols, overrides=overrides,
                                  json_path=str(report_dir / "evaluation.json"))
        story.evaluation(evaluated["evaluation"])

    with story.stage(7, "Write the report"):
        from monitoring.loop_report import write_report
        from pipelines.demo.report import build_report

        report = build_report(
            chosen,
            overrides,
            baseline,
            loop,
            trained,
            evaluated,
            story,
            demo_path,
            wall_seconds=time.perf_counter() - started,
        )
        json_path, html_path = write_report(
            report, Path(overrides["paths"]["reports_dir"]) / "demo"
        )
        console.print(summary_table(report))
    seconds = time.perf_counter() - started
    report["run"]["wall_seconds"] = seconds
    json_path.write_text(
        json.dumps(json.loads(json_path.read_text()) | {"run": report["run"]}, indent=2)
    )
    where_to_look(console, json_path, html_path, seconds, demo_path / LOG_FILE)
    return report
