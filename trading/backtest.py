"""The one replay of the trading engine over historical bars. Backtests, trade collection
(the closed trades the learning loop learns from) and strategy optimization all run it.

What differs from live trading is only what is plugged in: a `ReplayClock` moved bar by
bar, a `SimulatedBroker` whose matching engine sees each bar before the engine does (so
orders placed on bar t's close fill from bar t+1), and a `PrecomputedFeed` whose
features and signals are computed vectorized once. The engine, its risk manager, sizer,
selector, stops and journal are the ones `tradewind trade` runs.

- `ReplayMarket`: bars split into tradable bars and market context (`core.symbols`) with
  their features, computed once over the whole history (features are causal, so bars
  before a window only warm the indicators up). Several replays may share one.
- `Replay`: the engine over the market's bars inside [start, end], in time order,
  steppable (`run_until`), collecting closed trades.
- `run_backtest`: validate the bars, replay them all, report the metrics."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from core.bars import DAILY, timeframe_of, validate_bars
from core.clock import ReplayClock
from core.errors import ConfigError, DataValidationError
from core.settings import Settings, load_settings
from core.symbols import CONTEXT_ONLY_SYMBOLS, split_context
from core.types import Bar
from core.utc import TimeLike, utc_timestamp
from trading.adapters.simulated import MatchingEngine, SimulatedBroker, SimulatedExchangeConfig
from trading.adapters.store.data import StoreMarketData
from trading.closed_trades import ClosedTradeRecord, TradeSink
from trading.engine import EngineConfig, EngineStats, TradingEngine
from trading.feed import PrecomputedFeed, compute_feature_frame, shared_datetimes
from trading.journal import Journal
from trading.ports import ModelClient, OrderUpdate
from trading.report import compute_metrics
from trading.risk import RiskConfig, RiskManager
from trading.rules_client import RulesModelClient
from trading.selector import StrategySelector
from trading.sizing import PositionSizer, SizingConfig
from trading.strategies import STRATEGIES, Strategy, get_strategy

WARMUP_DAYS = 400  # calendar days of history before a window: EMA(200) and friends warm up
BAR_VALUES: tuple[str, ...] = ("open", "high", "low", "close", "volume")


@dataclass(frozen=True)
class ReplayMarket:
    """Tradable bars, market context, and the bars merged with their features."""

    tradable: pd.DataFrame
    context: pd.DataFrame | None
    frame: pd.DataFrame  # one row per tradable bar: bars + features, by symbol then time

    @classmethod
    def from_bars(
        cls, bars: pd.DataFrame, index_bars: pd.DataFrame | None = None
    ) -> ReplayMarket:
        """Split `bars` (index rows are market context) and compute every feature once."""
        tradable, context = split_context(bars, index_bars)
        if tradable.empty:
            raise DataValidationError(
                "only index series in the selection; nothing tradable to replay", where="replay"
            )
        return cls(tradable, context, compute_feature_frame(tradable, context))

    def feed(self, strategies: Sequence[Strategy]) -> PrecomputedFeed:
        """The features of every bar and the signals of `strategies` on them."""
        return PrecomputedFeed(self.tradable, strategies, frame=self.frame)


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
    timeframe: str = DAILY,
) -> tuple[TradingEngine, MatchingEngine]:
    """The live engine on a simulated exchange, configured from `settings`."""
    from features.sectors import sector_of

    matching = MatchingEngine(
        exchange or SimulatedExchangeConfig.from_settings(settings.broker), clock
    )
    rules = RulesModelClient.from_settings(settings)
    engine = TradingEngine(
        broker=SimulatedBroker(matching),
        model_client=model_client or rules,
        feed=feed,
        journal=journal,
        clock=clock,
        risk=RiskManager(RiskConfig.from_settings(settings.risk)),
        sizer=PositionSizer(SizingConfig.from_risk(settings.risk)),
        selector=StrategySelector.for_strategy(strategy, set(STRATEGIES)),
        config=EngineConfig.from_settings(settings, timeframe=timeframe, gate_enabled=gate_enabled),
        fallback_client=RulesModelClient.from_settings(settings, source="fallback"),
        trade_sink=trade_sink,
        sector_of=sector_of,
    )
    return engine, matching


class Replay:
    """The engine over a market's bars inside [start, end] (`include_end=False`: up to
    end, excluded), bar by bar in time order: the exchange matches resting orders on the
    bar first (fills only on prices it reached), then the engine sees the bar and may
    signal; order updates reach the engine as they happen.

    `strategy` fixes one strategy for the regime selector (None lets it choose);
    `strategies` are the instances whose signals the feed carries (default: the named
    registered strategy, or all of them). Closed trades are kept in `records` and handed
    to `trade_sink` as well."""

    def __init__(
        self,
        market: ReplayMarket,
        settings: Settings,
        *,
        strategy: str | None = None,
        strategies: Sequence[Strategy] | None = None,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        include_end: bool = True,
        model_client: ModelClient | None = None,
        gate_enabled: bool = True,
        journal: Journal | None = None,
        trade_sink: TradeSink | None = None,
        exchange: SimulatedExchangeConfig | None = None,
        timeframe: str | None = None,
    ) -> None:
        if strategies is None:
            strategies = [get_strategy(strategy)] if strategy else list(STRATEGIES.values())
        self.market = market
        self.records: list[ClosedTradeRecord] = []
        self._sink = trade_sink
        self._symbols, self._timestamps, self._columns = _window(
            market.frame, utc_timestamp(start), utc_timestamp(end), include_end
        )
        # The bars as Python values, a list per column in replay order (a numpy scalar per
        # value would cost more than the bar), and their times in ns to find a step's end.
        self._values: list[list[Any]] = [
            [str(symbol) for symbol in self._symbols.tolist()],
            self._timestamps.tolist(),
            *(column.tolist() for column in self._columns),
        ]
        self._stamps = pd.DatetimeIndex(self._timestamps).as_unit("ns").asi8
        self._cursor = 0
        self._current: datetime | None = None
        self.feed = market.feed(strategies)
        self.clock = ReplayClock(self._timestamps[0])
        self.journal = journal or Journal("sqlite://", batch_size=5_000)
        self.engine, self.matching = build_engine(
            settings=settings,
            clock=self.clock,
            feed=self.feed,
            strategy=strategy,
            model_client=model_client,
            journal=self.journal,
            gate_enabled=gate_enabled,
            trade_sink=self._collect,
            exchange=exchange,
            # The bars' own spacing when not given: intraday bars get the session rules.
            timeframe=timeframe or timeframe_of(market.frame["timestamp"]),
        )
        self._updates: deque[OrderUpdate] = deque()
        self.matching.subscribe(self._updates.append)

    def _collect(self, record: ClosedTradeRecord) -> None:
        self.records.append(record)
        if self._sink is not None:
            self._sink(record)

    @property
    def bars(self) -> int:
        return len(self._symbols)

    @property
    def done(self) -> bool:
        return self._cursor >= len(self._symbols)

    @property
    def now(self) -> datetime | None:
        return self._current

    @property
    def first_timestamp(self) -> datetime:
        return self._timestamps[0]

    @property
    def last_timestamp(self) -> datetime:
        return self._timestamps[-1]

    def session_dates(self) -> pd.DatetimeIndex:
        return pd.DatetimeIndex(pd.unique(pd.Series(self._timestamps))).sort_values()

    def run_until(self, moment: TimeLike | None = None) -> int:
        """Replay every bar with timestamp < `moment` (all when None); returns the number
        of trades closed during this step."""
        limit = utc_timestamp(moment)
        closed_before = len(self.records)
        engine, matching, updates, clock = self.engine, self.matching, self._updates, self.clock
        start = self._cursor
        stop = len(self._symbols)
        if limit is not None:
            stop = max(start, int(np.searchsorted(self._stamps, limit.value, side="left")))
        current = self._current
        step = [values[start:stop] for values in self._values]
        for symbol, timestamp, o, h, low, c, v in zip(*step, strict=True):
            if timestamp is not current:  # one object per time (`shared_datetimes`)
                self._current = current = timestamp
                clock.advance_to(timestamp)
                engine.advance(timestamp)
            bar = Bar(symbol, timestamp, o, h, low, c, v)
            matching.on_bar(bar)
            while updates:
                engine.on_order_update(updates.popleft())
            engine.on_bar(bar)
            while updates:
                engine.on_order_update(updates.popleft())
            self._cursor += 1
        self.journal.flush()
        return len(self.records) - closed_before

    def finish(self) -> None:
        """Mark the last equity point and write the journal."""
        self.engine.finish()

    def metrics(self, bars_per_year: float = 252.0) -> dict[str, Any]:
        """The run's figures (`trading.report.compute_metrics`) from its journal."""
        return compute_metrics(
            self.journal.equity(),
            self.journal.trades(),
            starting_equity=self.matching.config.starting_cash,
            bars_per_year=bars_per_year,
        )


class ReplaySession(Replay):
    """Trade collection: the engine with every strategy over `bars` (index rows and
    `index_bars` are context) from `start` on; earlier bars only warm the features up.
    Journaled to `journal_url`."""

    def __init__(
        self,
        settings: Settings,
        bars: pd.DataFrame,
        index_bars: pd.DataFrame | None,
        start: TimeLike,
        *,
        model_client: ModelClient | None = None,
        gate_enabled: bool = True,
        journal_url: str = "sqlite://",
        journal_batch: int = 2_000,
    ) -> None:
        super().__init__(
            ReplayMarket.from_bars(bars, index_bars),
            settings,
            start=start,
            model_client=model_client,
            gate_enabled=gate_enabled,
            journal=Journal(journal_url, batch_size=journal_batch),
        )


def _window(
    frame: pd.DataFrame,
    start: pd.Timestamp | None,
    end: pd.Timestamp | None,
    include_end: bool,
) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """(symbols, timestamps, open/high/low/close/volume) of the rows in the window,
    ordered by time then symbol."""
    stamps = frame["timestamp"]
    inside = np.ones(len(frame), dtype=bool)
    if start is not None:
        inside &= (stamps >= start).to_numpy()
    if end is not None:
        inside &= ((stamps <= end) if include_end else (stamps < end)).to_numpy()
    if not inside.any():
        raise DataValidationError(
            f"no bars between {start or 'the start'} and {end or 'the end'} to replay",
            where="replay",
        )
    # Column by column: selecting rows of the frame would copy every feature column too.
    symbols = frame["symbol"].to_numpy()[inside]
    times = pd.DatetimeIndex(stamps[inside])
    order = np.lexsort((symbols, times.asi8))
    timestamps = shared_datetimes(times)[order]
    columns = [frame[name].to_numpy(dtype=np.float64)[inside][order] for name in BAR_VALUES]
    return symbols[order], timestamps, columns


def load_window_bars(
    settings: Settings,
    symbols: Sequence[str],
    start: TimeLike | None,
    end: TimeLike | None,
    *,
    warmup_days: int = WARMUP_DAYS,
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """(tradable bars, context-only index bars) from the offline bar store, from
    `warmup_days` before `start` to `end`."""
    source = StoreMarketData(settings.paths.bars_dir)
    stored = set(source.symbols())
    wanted = [s for s in symbols if s in stored and s not in CONTEXT_ONLY_SYMBOLS]
    if not wanted:
        raise ConfigError(
            f"no stored bars for {', '.join(symbols)}; run `tradewind ingest` first",
            where="replay",
        )
    begin = utc_timestamp(start)
    first = None if begin is None else (begin - pd.Timedelta(days=warmup_days)).to_pydatetime()
    last = None if end is None else utc_timestamp(end).to_pydatetime()
    bars = source.history(wanted, first, last)
    indices = sorted(stored & CONTEXT_ONLY_SYMBOLS)
    index_bars = source.history(indices, first, last) if indices else None
    return bars, index_bars


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


def run_backtest(
    bars: pd.DataFrame,
    *,
    index_bars: pd.DataFrame | None = None,
    settings: Settings | None = None,
    strategy: str | None = None,
    model_client: ModelClient | None = None,
    gate_enabled: bool = True,
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

    started = time.perf_counter()
    market = ReplayMarket.from_bars(bars, index_bars)
    replay = Replay(
        market,
        settings,
        strategy=strategy,
        model_client=model_client,
        gate_enabled=gate_enabled,
        journal=Journal(journal_url, batch_size=5_000),
        trade_sink=trade_sink,
        exchange=exchange,
    )
    feature_seconds = time.perf_counter() - started
    started = time.perf_counter()
    replay.run_until(None)
    replay.finish()
    replay_seconds = time.perf_counter() - started

    frame = market.frame
    metrics = replay.metrics(bars_per_year=_bars_per_year(frame["timestamp"]))
    stats = replay.engine.stats
    metrics.update(
        {
            "bars": len(frame),
            "symbols": int(frame["symbol"].nunique()),
            "start": replay.first_timestamp.isoformat(),
            "end": replay.last_timestamp.isoformat(),
            "strategy": strategy or "auto",
            "signals": stats.signals,
            "entries": stats.entries,
            "risk_rejections": dict(sorted(stats.rejections_by_rule.items())),
            "open_positions_at_end": len(replay.engine.open_positions),
            "bars_per_second": len(frame) / replay_seconds if replay_seconds > 0 else None,
        }
    )
    return BacktestResult(
        metrics=metrics,
        equity=replay.journal.equity(),
        trades=replay.journal.trades(),
        stats=stats,
        journal=replay.journal,
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
