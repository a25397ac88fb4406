"""Prefect tasks and small helpers that more than one flow runs, so no flow imports
another: the training set and one model's training (`pipelines.training`), the live
outcomes (journal + decision log, joined by `monitoring.outcomes`), the champion's
training window (from the registry). Wiring only: the
logic lives in `monitoring/` and `models/`."""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Any

import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from core.settings import load_settings
from core.utc import utc_timestamp
from models.datasets import TrainingData


def run_logger() -> Any:
    """The run logger inside a flow or task run (shown in the UI), else a module logger."""
    from prefect.exceptions import MissingContextError

    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger("tradewind.flows")


@task(name="load-live-outcomes", retries=2, retry_delay_seconds=3)
def load_outcomes(journal_url: str, decision_log: str, as_of: str | None = None) -> pd.DataFrame:
    """Closed trades (exit ≤ as_of) joined to the decisions that opened them."""
    from monitoring.outcomes import join_outcomes
    from serving.decision_log import decision_log_exists, read_decisions
    from trading.journal import Journal

    journal = Journal(journal_url)
    try:
        trades = journal.trades()
        journal_decisions = journal.decisions()
    finally:
        journal.close()
    logged = read_decisions(decision_log) if decision_log_exists(decision_log) else None
    outcomes = join_outcomes(trades, journal_decisions, logged)
    if as_of is not None and not outcomes.empty:
        outcomes = outcomes[outcomes["exit_time"] <= utc_timestamp(as_of)]
    get_run_logger().info(
        "%d closed trades; by arm: %s", len(outcomes), outcomes["variant"].value_counts().to_dict()
    )
    return outcomes.reset_index(drop=True)


@task(name="champion-training-window", retries=2, retry_delay_seconds=3)
def champion_training_window(tracking_uri: str) -> dict[str, Any]:
    """Training window, input features and version of the champion signal_quality model
    (`version`, `run_id`, `start`, `end`, `features`)."""
    from models.registry import ModelRegistry

    return asdict(ModelRegistry(tracking_uri).training_window("signal_quality", "champion"))


@task(cache_policy=NO_CACHE, task_run_name="training-set-{start}-{end}")
def prepare_training_data(
    symbols: list[str], start: str | None, end: str | None, overrides: dict[str, Any]
) -> TrainingData:
    from pipelines.training import build_training_set

    data = build_training_set(load_settings(**overrides), symbols, start, end)
    get_run_logger().info(
        "training set: %d signal events, %d market dates, %d dropped",
        len(data.events),
        len(data.market),
        data.dropped_events,
    )
    return data


@task(cache_policy=NO_CACHE, retries=1, retry_delay_seconds=5, task_run_name="train-{name}")
def train_one(
    name: str, data: TrainingData, register: bool, overrides: dict[str, Any], source: str
) -> dict[str, Any]:
    """One model through the template; registered when `register`."""
    from pipelines.training import train_models

    (result,) = train_models(
        data, [name], load_settings(**overrides), source=source, register=register
    )
    get_run_logger().info("%s: run %s version %s", name, result.run_id, result.version or "-")
    return {
        "name": result.name,
        "version": result.version,
        "run_id": result.run_id,
        "metrics": {k: float(v) for k, v in result.metrics.items()},
        "aliases": result.aliases,
        "seconds": result.seconds,
        "window": list(result.window),
    }
