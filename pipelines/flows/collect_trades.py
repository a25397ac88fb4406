"""The `collect_trades` flow: replay the engine (the same `TradingEngine` that trades
live, on a `SimulatedBroker`) over a window of stored bars and collect every closed trade,
with the features it had at entry and its outcome labels, into the feature store's trade
collection (idempotent on `trade_id`) and the journal.

With `compute.symbols_per_shard`, the symbols are replayed in shards, one account and
one journal each, as tasks on the configured runner (`pipelines.compute`).

Wiring only: the replay is `trading.backtest` (`load_window_bars`, `ReplaySession`), the
closed-trade rows are `trading.closed_trades.trades_frame`, the store is
`features.store`."""

from __future__ import annotations

from typing import Any

import pandas as pd
from prefect import flow, get_run_logger, task

from core.settings import Settings, load_settings
from core.utc import utc_timestamp
from pipelines.compute import ComputeTaskRunner, results, symbol_shards
from trading.backtest import ReplaySession, load_window_bars
from trading.closed_trades import trades_frame
from trading.report import pooled_metrics

DEFAULT_JOURNAL = "collect_trades.db"


def journal_url_for(settings: Settings, name: str) -> str:
    """A SQLite journal under the data dir for one named replay."""
    path = (settings.paths.data_dir / "journals" / name).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


@task(task_run_name="replay-{start}-{end}-{symbols[0]}")
def replay_window(
    symbols: list[str],
    start: str | None,
    end: str | None,
    journal_name: str,
    overrides: dict[str, Any],
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The ungated engine over [start, end]: closed trades and the run's metrics."""
    settings = load_settings(**overrides)
    bars, index_bars = load_window_bars(settings, symbols, start, end)
    begin = utc_timestamp(start) or pd.Timestamp(bars["timestamp"].min())
    session = ReplaySession(
        settings,
        bars,
        index_bars,
        begin,
        journal_url=journal_url_for(settings, journal_name),
    )
    session.run_until(None)
    session.finish()
    metrics = session.metrics()
    get_run_logger().info(
        "replayed %s..%s: %d closed trades, win rate %.3f",
        start,
        end,
        metrics["trades"],
        metrics["win_rate"],
    )
    return trades_frame(session.records), metrics


@task(retries=2, retry_delay_seconds=5, task_run_name="store-trades")
def store_trades(trades: pd.DataFrame, overrides: dict[str, Any]) -> int:
    """Write closed trades to the feature store's trade collection (idempotent)."""
    from features.store import FeatureStore

    if trades.empty:
        return 0
    settings = load_settings(**overrides)
    return int(FeatureStore(settings.paths, settings.feature_store).write_trades(trades))


@flow(name="collect_trades", log_prints=True, task_runner=ComputeTaskRunner())
def collect_trades_flow(
    start: str | None = None,
    end: str | None = None,
    symbols: list[str] | None = None,
    journal_name: str = DEFAULT_JOURNAL,
    overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Replay the ungated engine over [start, end] and store its closed trades."""
    overrides = overrides or {}
    settings = load_settings(**overrides)
    shards = symbol_shards(symbols or settings.symbols, settings.compute.symbols_per_shard)
    names = [journal_name] if len(shards) == 1 else [f"shard-{i}-{journal_name}"
                                                     for i in range(len(shards))]
    replayed = results(replay_window.submit(shard, start, end, name, overrides)
                       for shard, name in zip(shards, names, strict=True))
    trades = pd.concat([frame for frame, _ in replayed], ignore_index=True)
    written = store_trades(trades, overrides)
    return {"trades": len(trades), "written": written,
            "metrics": pooled_metrics([figures for _, figures in replayed])}
