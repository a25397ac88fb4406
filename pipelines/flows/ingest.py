"""The `ingest` flow: bars from the configured source into the offline bar store, the
feature catalogue computed over the stored history (per-symbol work in symbol shards, as
tasks on the configured runner: `pipelines.compute`), written to the Feast offline store
and materialized into the online store.

Fetching (network for Alpaca, files for parquet/csv) and the Feast steps retry; the bar
store's upsert is idempotent, so a retried or repeated ingest never duplicates a bar.
Flow parameters are plain JSON values (they show in the Prefect UI); `overrides` are
settings overrides in `load_settings(**overrides)` form."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from prefect import flow, get_run_logger, task

from core.errors import ConfigError
from core.settings import Settings, load_settings
from core.symbols import MARKET_CONTEXT_SYMBOLS
from core.utc import utc_datetime
from features.compute import FeatureSet
from pipelines.compute import ComputeTaskRunner, results, symbol_shards
from trading.adapters.registry import SOURCES, SourceContext
from trading.adapters.registry import market_data as build_market_data
from trading.ports import MarketData

EMBEDDED = ("sample", "sp500")  # sources that ship their own market-context series


def market_data(source: str, settings: Settings, path: str | None = None) -> MarketData:
    """The `MarketData` adapter for a source type (`trading.adapters.registry`); `path`
    is where a file source reads."""
    if source in ("parquet", "csv", "files") and path is None:
        raise ConfigError(f"--source {source} needs --path", where="ingest")
    if source not in SOURCES:
        raise ConfigError(
            f"unknown source '{source}' (choose one of {', '.join(SOURCES)})", where="ingest"
        )
    fields = {"path": Path(path)} if path is not None else {}
    return build_market_data({"type": source, **fields}, SourceContext.from_settings(settings))


@task(retries=3, retry_delay_seconds=[2, 10, 30], task_run_name="fetch-{source}-bars")
def fetch_bars(
    source: str,
    symbols: list[str],
    start: str | None,
    end: str | None,
    timeframe: str,
    path: str | None,
    overrides: dict[str, Any],
) -> pd.DataFrame:
    """Bars of the stock symbols plus the market-context index series."""
    settings = load_settings(**overrides)
    data = market_data(source, settings, path)
    wanted = (
        list(dict.fromkeys([*symbols, *sorted(MARKET_CONTEXT_SYMBOLS)]))
        if source in EMBEDDED
        else symbols
    )
    if source in EMBEDDED:
        # The embedded sources know which of the index symbols they ship; ask for all their
        # data and keep the requested stocks plus every index series.
        frame = data.history(None, utc_datetime(start), utc_datetime(end), timeframe)
        frame = frame[frame["symbol"].isin(wanted)]
    else:
        frame = data.history(symbols or None, utc_datetime(start), utc_datetime(end), timeframe)
    get_run_logger().info("fetched %d bars of %d symbols", len(frame), frame["symbol"].nunique())
    return frame.reset_index(drop=True)


@task(task_run_name="store-bars")
def store_bars(frame: pd.DataFrame, timeframe: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """Idempotent upsert into the offline bar store."""
    from features.bar_store import BarStore

    settings = load_settings(**overrides)
    report = BarStore(settings.paths.bars_dir).write(frame, timeframe=timeframe)
    get_run_logger().info(
        "bar store: %d rows written, %d new", report.rows_written, report.rows_new
    )
    return {
        "rows_written": report.rows_written,
        "rows_new": report.rows_new,
        "symbols": list(report.symbols),
    }


@task(task_run_name="stored-universe")
def stored_universe(
    symbols: list[str], timeframe: str, overrides: dict[str, Any]
) -> tuple[list[str], list[str]]:
    """(stock symbols with stored bars, stored index series)."""
    from features.bar_store import BarStore

    stored = set(BarStore(load_settings(**overrides).paths.bars_dir).symbols(timeframe))
    stocks = [s for s in symbols if s in stored and s not in MARKET_CONTEXT_SYMBOLS]
    if not stocks:
        raise ConfigError(
            f"no bars stored for {', '.join(symbols) or 'any symbol'} ({timeframe}); ingest first",
            where="ingest",
        )
    return stocks, sorted(stored & MARKET_CONTEXT_SYMBOLS)


@task(task_run_name="technical-features-{symbols[0]}")
def technical_shard(symbols: list[str], timeframe: str, overrides: dict[str, Any]) -> FeatureSet:
    """The technical group of one shard of symbols over their whole stored history."""
    from features.bar_store import BarStore
    from features.compute import bar_frequency, technical_feature_set

    bars = BarStore(load_settings(**overrides).paths.bars_dir).read(symbols=symbols,
                                                                   timeframe=timeframe)
    return technical_feature_set(bars, bar_frequency(bars))


@task(task_run_name="compute-features")
def build_features(
    parts: list[FeatureSet], indices: list[str], timeframe: str, overrides: dict[str, Any]
) -> pd.DataFrame:
    """The catalogue's bar-derived features from the shards' technical groups, with the
    index as market context (every lookback warm: the whole stored history)."""
    from features.bar_store import BarStore
    from features.compute import bar_frequency, complete_feature_set
    from features.data_quality import issue

    settings = load_settings(**overrides)
    store = BarStore(settings.paths.bars_dir)
    index_bars = store.read(symbols=indices, timeframe=timeframe) if indices else None
    technical = FeatureSet(pd.concat([p.frame for p in parts], ignore_index=True),
                           [w for p in parts for w in p.warnings])
    result = complete_feature_set(technical, index_bars,
                                  bars_per_year=bar_frequency(technical.frame))
    issue(result.warnings)
    get_run_logger().info(
        "computed %d feature rows × %d columns", len(result.frame), result.frame.shape[1] - 2
    )
    return result.frame


@task(retries=2, retry_delay_seconds=5, task_run_name="feast-write-and-materialize")
def materialize_features(features: pd.DataFrame, overrides: dict[str, Any]) -> dict[str, Any]:
    """Register the Feast repo, write the offline rows and materialize the online store."""
    from features.store import FeatureStore

    settings = load_settings(**overrides)
    store = FeatureStore(settings.paths, settings.feature_store)
    store.apply()
    store.write_features(features)
    store.materialize()
    return {"rows": len(features), "columns": int(features.shape[1] - 2)}


@flow(name="ingest", log_prints=True, task_runner=ComputeTaskRunner())
def ingest_flow(
    source: str = "sample",
    symbols: list[str] | None = None,
    start: str | None = None,
    end: str | None = None,
    timeframe: str = "1Day",
    path: str | None = None,
    features: bool = True,
    overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Bars → offline store → features → Feast (offline + online)."""
    overrides = overrides or {}
    settings = load_settings(**overrides)
    wanted = list(symbols or settings.symbols)
    frame = fetch_bars(source, wanted, start, end, timeframe, path, overrides)
    stored = store_bars(frame, timeframe, overrides)
    result: dict[str, Any] = {"bars": stored}
    if features:  # the technical group in symbol shards (`compute`), the rest at once
        stocks, indices = stored_universe(wanted, timeframe, overrides)
        parts = results(technical_shard.submit(shard, timeframe, overrides) for shard
                        in symbol_shards(stocks, settings.compute.symbols_per_shard))
        computed = build_features(parts, indices, timeframe, overrides)
        result["features"] = materialize_features(computed, overrides)
    return result
