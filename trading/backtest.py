"""Backtests: the live trading engine replayed over historical bars.

The replay is the only thing that differs from live trading: a `ReplayClock` moved bar
by bar, a `SimulatedBroker` whose matching engine sees each bar before the engine does
(so orders placed on bar t's close fill from bar t+1), and a `PrecomputedFeed` whose
features and signals are computed vectorized once. The engine object, its risk manager,
sizer, selector, stops and journal are the ones `tradewind trade` runs.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from core.bars import validate_bars
from core.clock import ReplayClock
from core.errors import DataValidationError
from core.settings import Settings, load_settings
from core.types import Bar
from trading.adapters.simulated import MatchingEngine, SimulatedBroker, SimulatedExchangeConfig
from trading.engine import EngineConfig, EngineStats, TradeSink, TradingEngine
from trading.feed import PrecomputedFeed, compute_feature_frame
from trading.journal import Journal
from trading.ports import ModelClient, OrderUpdate
from trading.report import compute_metrics
from trading.risk import RiskConfig, RiskManager
from trading.rules_client import RulesModelClient
from trading.selector import StrategySelector
from trading.sizing import PositionSizer, SizingConfig
from trading.strategies import STRATEGIES, get_strategy

CONTEXT_ONLY = frozenset({"SPX", "COMP", "VIX"})
INDEX_SYMBOLS = frozenset({"SPX", "COMP", "VIX", "SPY"})


@dataclass(frozen=True)
class BacktestResult:
    metrics: dict[str, Any]
    equity: pd.DataFrame  # timestamp, equity, cash, positions_value, open_positions, halted
    trades: pd.DataFrame
    stats: EngineStats
    journal: Journal
    bars: int
    replay_seconds: float
    feature_seconds: float


def split_context(
    bars: pd.DataFrame, index_bars: pd.DataFrame | None = None
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """(tradable bars, market-context bars). SPX, COMP and VIX are context only; SPY is
    tradable and also context when no other index is given."""
    symbols = bars["symbol"].astype(str)
    in_file = bars[symbols.isin(INDEX_SYMBOLS)]
    tradable = bars[~symbols.isin(CONTEXT_ONLY)].reset_index(drop=True)
    context = [frame for frame in (index_bars, in_file) if frame is not None and len(frame)]
    if not context:
        return tradable, None
    merged = pd.concat(context, ignore_index=True)
    merged = merged.drop_duplicates(["symbol", "timestamp"]).sort_values(["symbol", "timestamp"])
    return tradable, merged.reset_index(drop=True)


def build_engine(
    *,
    settings: Settings,
    clock: ReplayClock,
    feed: PrecomputedFeed,
    strategy: str | None,
    model_client: ModelClient | None,
    journal: Journal,
    gate_enabled: bool,
    trade_sink: TradeSink | None,
    exchange: SimulatedExchangeConfig | None,
) -> tuple[TradingEngine, MatchingEngine]:
    matching = MatchingEngine(
        exchange or SimulatedExchangeConfig.from_settings(settings.broker), clock
    )
    rules = RulesModelClient(settings.risk)
    engine = TradingEngine(
        broker=SimulatedBroker(matching),
        model_client=model_client or rules,
        feed=feed,
        journal=journal,
        clock=clock,
        risk=RiskManager(RiskConfig.from_settings(settings.risk)),
        sizer=PositionSizer(SizingConfig.from_risk(settings.risk)),
        selector=StrategySelector.for_strategy(strategy, set(STRATEGIES)),
        config=EngineConfig.from_settings(settings, gate_enabled=gate_enabled),
        fallback_client=RulesModelClient(settings.risk, source="fallback"),
        trade_sink=trade_sink,
        sector_of=_sector_lookup(),
    )
    return engine, matching


def replay(
    engine: TradingEngine,
    matching: MatchingEngine,
    clock: ReplayClock,
    symbols: Sequence[str],
    timestamps: Sequence[datetime],
    columns: Sequence[np.ndarray],
) -> None:
    """Drive the engine bar by bar, in time order: the exchange matches resting orders on
    the bar first (fills only on prices it reached), then the engine sees the bar and may
    signal; order updates reach the engine as they happen. `columns` are open, high, low,
    close and volume aligned with `symbols` and `timestamps`."""
    updates: deque[OrderUpdate] = deque()
    matching.subscribe(updates.append)
    current = None
    for symbol, timestamp, o, h, low, c, v in zip(symbols, timestamps, *columns, strict=True):
        if timestamp != current:
            current = timestamp
            clock.advance_to(timestamp)
            engine.advance(timestamp)
        bar = Bar(str(symbol), timestamp, o, h, low, c, v)
        matching.on_bar(bar)
        while updates:
            engine.on_order_update(updates.popleft())
        engine.on_bar(bar)
        while updates:
            engine.on_order_update(updates.popleft())
    engine.finish()


def run_backtest(
    bars: pd.DataFrame,
    *,
    index_bars: pd.DataFrame | None = None,
    settings: Settings | None = None,
    strategy: str | None = None,
    model_client: ModelClient | None = None,
    gate_enabled: bool = False,
    journal_url: str = "sqlite://",
    trade_sink: TradeSink | None = None,
    exchange: SimulatedExchangeConfig | None = None,
    repair: bool = False,
) -> BacktestResult:
    """Replay `bars` (bar frame; index rows are used as market context) through the
    engine. `strategy` fixes one strategy; None lets the regime selector choose.
    Ungated by default (the rules client has no win probability anyway). Bars are
    validated first: a bad bar raises `DataValidationError` naming it, or with
    `repair=True` is dropped/fixed as `core.bars.validate_bars` documents."""
    settings = settings or load_settings()
    if bars.empty:
        raise DataValidationError("no bars in the selection to backtest", where="backtest")
    bars = validate_bars(bars, where="backtest bars", repair=repair).bars
    if index_bars is not None and len(index_bars):
        index_bars = validate_bars(index_bars, where="backtest index bars", repair=repair).bars
    tradable, context = split_context(bars, index_bars)
    if tradable.empty:
        raise DataValidationError(
            "only index series in the selection; nothing tradable to backtest", where="backtest"
        )
    strategies = [get_strategy(strategy)] if strategy else list(STRATEGIES.values())

    started = time.perf_counter()
    frame = compute_feature_frame(tradable, context)
    feed = PrecomputedFeed(tradable, strategies, frame=frame)
    feature_seconds = time.perf_counter() - started

    order = np.lexsort(
        (frame["symbol"].to_numpy(), frame["timestamp"].to_numpy(dtype="datetime64[ns]"))
    )
    symbols = frame["symbol"].to_numpy()[order]
    timestamps = pd.DatetimeIndex(frame["timestamp"]).to_pydatetime()[order]
    columns = [
        frame[c].to_numpy(dtype=np.float64)[order]
        for c in ("open", "high", "low", "close", "volume")
    ]

    clock = ReplayClock(timestamps[0])
    journal = Journal(journal_url, batch_size=5_000)
    engine, matching = build_engine(
        settings=settings,
        clock=clock,
        feed=feed,
        strategy=strategy,
        model_client=model_client,
        journal=journal,
        gate_enabled=gate_enabled,
        trade_sink=trade_sink,
        exchange=exchange,
    )
    started = time.perf_counter()
    replay(engine, matching, clock, symbols, timestamps, columns)
    replay_seconds = time.perf_counter() - started

    equity = journal.equity()
    trades = journal.trades()
    metrics = compute_metrics(
        equity,
        trades,
        starting_equity=matching.config.starting_cash,
        bars_per_year=_bars_per_year(frame["timestamp"]),
    )
    metrics.update(
        {
            "bars": len(frame),
            "symbols": int(frame["symbol"].nunique()),
            "start": timestamps[0].isoformat(),
            "end": timestamps[-1].isoformat(),
            "strategy": strategy or "auto",
            "signals": engine.stats.signals,
            "entries": engine.stats.entries,
            "risk_rejections": dict(sorted(engine.stats.rejections_by_rule.items())),
            "open_positions_at_end": len(engine.open_positions),
            "bars_per_second": len(frame) / replay_seconds if replay_seconds > 0 else None,
        }
    )
    return BacktestResult(
        metrics=metrics,
        equity=equity,
        trades=trades,
        stats=engine.stats,
        journal=journal,
        bars=len(frame),
        replay_seconds=replay_seconds,
        feature_seconds=feature_seconds,
    )


def _bars_per_year(timestamps: pd.Series) -> float:
    unique = pd.Series(timestamps.unique()).sort_values()
    if len(unique) < 2:
        return 252.0
    spacing = unique.diff().median()
    if spacing >= pd.Timedelta(hours=20):
        return 252.0
    per_day = pd.Timedelta(hours=6.5) / spacing
    return float(252.0 * per_day)


def _sector_lookup() -> Any:
    from features.sectors import sector_of

    return sector_of
