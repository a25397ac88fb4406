"""The `screen` flow, run before the open: the universe's daily bars from the offline
bar store → `trading.screener.screen` as of today → the watchlist file the running
engine picks up. Wiring only; the ranking lives in `trading/screener.py`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from prefect import flow, get_run_logger, task

from core.errors import DataSourceError
from core.settings import load_settings
from features.bar_store import BarStore
from pipelines.flows.gate import exchange_day, market_day_gate
from trading.screener import HISTORY_SESSIONS, ScreenerConfig, screen
from trading.watchlist import Watchlist, write_watchlist


@task(task_run_name="read-daily-bars")
def read_bars(bars_dir: str, as_of: str) -> pd.DataFrame:
    """Enough daily bars before `as_of` for every measure (calendar days, generously)."""
    start = pd.Timestamp(as_of) - pd.Timedelta(days=HISTORY_SESSIONS * 2)
    bars = BarStore(Path(bars_dir)).read(start=start.date().isoformat(), end=as_of)
    if bars.empty:
        raise DataSourceError(
            f"the bar store at {bars_dir} has no daily bars before {as_of}; ingest first",
            where="screen",
        )
    return bars


@flow(name="screen", log_prints=False)
def screen_flow(
    as_of: str | None = None,
    top: int = 20,
    watchlist_path: str | None = None,
    market_days_only: bool = False,
    overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Rank the universe as of `as_of` (an ISO date, default today in New York; its
    sessions before that date) and write the top symbols to the watchlist; returns
    `as_of`, `symbols` and `watchlist` (the file), or `skipped` with the reason."""
    day = as_of[:10] if as_of else exchange_day().isoformat()
    if market_days_only:
        verdict = market_day_gate(day, flow_name="screen")
        if not verdict.is_session:
            get_run_logger().info("skipped: %s", verdict.reason)
            return {"skipped": True, "reason": verdict.reason}
    settings = load_settings(**(overrides or {}))
    path = Path(watchlist_path) if watchlist_path else settings.paths.data_dir / "watchlist.json"
    ranked = screen(read_bars(str(settings.paths.bars_dir), day), day, ScreenerConfig(top=top))
    chosen = tuple(ranked.loc[ranked["on_watchlist"], "symbol"].astype(str))
    write_watchlist(path, Watchlist(as_of=day, symbols=chosen))
    get_run_logger().info("watchlist of %s: %s -> %s", day, ", ".join(chosen), path)
    return {"as_of": day, "symbols": list(chosen), "watchlist": str(path)}
