"""The `collect_trades` flow: replay the engine (the same `TradingEngine` that trades
live, on a `SimulatedBroker`) over a window of stored bars and collect every closed trade,
with the features it had at entry and its outcome labels, into the feature store's trade
collection (idempotent on `trade_id`) and the journal.

`ReplaySession` is the replay itself, steppable: `run_until(moment)` replays the bars up
to a moment and returns, so a driver (the demo) can retrain, move aliases and reload the
model service between steps while the engine keeps its positions. Features are computed
once over the whole history (they are causal: the value at t uses bars ≤ t only); bars
before the window's start only warm the indicators up and are never traded."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from prefect import flow, get_run_logger, task

from core.clock import ReplayClock
from core.errors import ConfigError, DataValidationError
from core.settings import Settings, load_settings
from core.types import Bar
from trading.engine import ClosedTradeRecord, TradingEngine
from trading.ports import ModelClient, OrderUpdate

WARMUP_DAYS = 400  # calendar days of history before a window: EMA(200) and friends warm up
DEFAULT_JOURNAL = "collect_trades.db"


def _utc(value: str | datetime | pd.Timestamp | None) -> pd.Timestamp | None:
    if value is None:
        return None
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def load_window_bars(
    settings: Settings,
    symbols: list[str],
    start: str | None,
    end: str | None,
    *,
    warmup_days: int = WARMUP_DAYS,
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """(tradable bars, index bars) from the offline store, from `warmup_days` before
    `start` to `end`."""
    from features.bar_store import BarStore
    from features.sectors import INDEX_SYMBOLS

    store = BarStore(settings.paths.bars_dir)
    stored = set(store.symbols("1Day"))
    wanted = [s for s in symbols if s in stored and s not in INDEX_SYMBOLS - {"SPY"}]
    if not wanted:
        raise ConfigError(
            f"no stored bars for {', '.join(symbols)}; run `tradewind ingest` first",
            where="collect_trades",
        )
    begin = _utc(start)
    first = None if begin is None else (begin - pd.Timedelta(days=warmup_days)).to_pydatetime()
    last = None if end is None else _utc(end).to_pydatetime()  # type: ignore[union-attr]
    bars = store.read(symbols=wanted, start=first, end=last)
    indices = sorted(stored & (INDEX_SYMBOLS - {"SPY"}))
    index_bars = store.read(symbols=indices, start=first, end=last) if indices else None
    return bars, index_bars


@dataclass
class ReplaySession:
    """The engine over stored bars, replayed step by step."""

    settings: Settings
    bars: pd.DataFrame
    index_bars: pd.DataFrame | None
    start: pd.Timestamp
    model_client: ModelClient | None = None
    gate_enabled: bool = False
    journal_url: str = "sqlite://"
    journal_batch: int = 2_000
    records: list[ClosedTradeRecord] = field(default_factory=list)

    def __post_init__(self) -> None:
        from trading.backtest import build_engine, split_context
        from trading.feed import PrecomputedFeed, compute_feature_frame
        from trading.journal import Journal
        from trading.strategies import STRATEGIES

        tradable, context = split_context(self.bars, self.index_bars)
        if tradable.empty:
            raise DataValidationError("no tradable bars to replay", where="replay")
        frame = compute_feature_frame(tradable, context)
        self.frame = frame
        self.feed = PrecomputedFeed(tradable, list(STRATEGIES.values()), frame=frame)
        replay = frame[frame["timestamp"] >= self.start]
        if replay.empty:
            raise DataValidationError(
                f"no bars on or after {self.start.date()} to replay", where="replay"
            )
        order = np.lexsort((replay["symbol"].to_numpy(), replay["timestamp"].to_numpy()))
        self._symbols = replay["symbol"].to_numpy()[order]
        self._timestamps = np.array(replay["timestamp"].dt.to_pydatetime())[order]
        self._columns = [
            replay[c].to_numpy(dtype=np.float64)[order]
            for c in ("open", "high", "low", "close", "volume")
        ]
        self._cursor = 0
        self.clock = ReplayClock(self._timestamps[0])
        self.journal = Journal(self.journal_url, batch_size=self.journal_batch)
        self.engine: TradingEngine
        self.engine, self.matching = build_engine(
            settings=self.settings,
            clock=self.clock,
            feed=self.feed,
            strategy=None,
            model_client=self.model_client,
            journal=self.journal,
            gate_enabled=self.gate_enabled,
            trade_sink=self._collect,
            exchange=None,
        )
        self._updates: deque[OrderUpdate] = deque()
        self.matching.subscribe(self._updates.append)
        self._current: datetime | None = None

    def _collect(self, record: ClosedTradeRecord) -> None:
        self.records.append(record)

    @property
    def done(self) -> bool:
        return self._cursor >= len(self._symbols)

    @property
    def now(self) -> datetime | None:
        return self._current

    @property
    def last_timestamp(self) -> datetime:
        return self._timestamps[-1]

    def session_dates(self) -> pd.DatetimeIndex:
        return pd.DatetimeIndex(pd.unique(pd.Series(self._timestamps))).sort_values()

    def run_until(self, moment: datetime | pd.Timestamp | None = None) -> int:
        """Replay every bar with timestamp < `moment` (all when None); returns the number
        of trades closed during this step."""
        limit = None if moment is None else _utc(moment)
        closed_before = len(self.records)
        engine, matching, updates = self.engine, self.matching, self._updates
        opens, highs, lows, closes, volumes = self._columns
        while self._cursor < len(self._symbols):
            i = self._cursor
            timestamp = self._timestamps[i]
            if limit is not None and timestamp >= limit:
                break
            if timestamp != self._current:
                self._current = timestamp
                self.clock.advance_to(timestamp)
                engine.advance(timestamp)
            bar = Bar(
                str(self._symbols[i]), timestamp, opens[i], highs[i], lows[i], closes[i], volumes[i]
            )
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
        self.engine.finish()

    def metrics(self) -> dict[str, Any]:
        from trading.report import compute_metrics

        return compute_metrics(
            self.journal.equity(),
            self.journal.trades(),
            starting_equity=self.matching.config.starting_cash,
        )


def trade_frame(records: list[ClosedTradeRecord]) -> pd.DataFrame:
    """Closed trades with their entry features and the model context, one row per trade:
    the frame `FeatureStore.write_trades` takes (it derives the outcome labels)."""
    rows = []
    for record in records:
        trade = record.trade
        rows.append(
            {
                **record.entry_features,
                "trade_id": trade.trade_id,
                "symbol": trade.symbol,
                "side": trade.side.value,
                "qty": trade.qty,
                "entry_time": pd.Timestamp(trade.entry_time),
                "entry_price": trade.entry_price,
                "exit_time": pd.Timestamp(trade.exit_time),
                "exit_price": trade.exit_price,
                "strategy": trade.strategy,
                "exit_reason": trade.exit_reason,
                "commission": trade.commission,
                "max_favorable_excursion": trade.max_favorable_excursion,
                "max_adverse_excursion": trade.max_adverse_excursion,
                "pnl": trade.pnl,
                "return_pct": trade.return_pct,
                "decision_id": trade.decision_id,
                "variant": record.variant,
                "win_probability": record.win_probability,
                "regime": record.regime,
            }
        )
    return pd.DataFrame(rows)


def journal_url_for(settings: Settings, name: str) -> str:
    """A SQLite journal under the data dir for one named replay."""
    path = (settings.paths.data_dir / "journals" / name).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


@task(task_run_name="replay-{start}-{end}")
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
    begin = _utc(start) or pd.Timestamp(bars["timestamp"].min())
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
    return trade_frame(session.records), metrics


@task(retries=2, retry_delay_seconds=5, task_run_name="store-trades")
def store_trades(trades: pd.DataFrame, overrides: dict[str, Any]) -> int:
    """Write closed trades to the feature store's trade collection (idempotent)."""
    from features.store import FeatureStore

    if trades.empty:
        return 0
    settings = load_settings(**overrides)
    return int(FeatureStore(settings.paths).write_trades(trades))


@flow(name="collect_trades", log_prints=True)
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
    trades, metrics = replay_window(
        list(symbols or settings.symbols), start, end, journal_name, overrides
    )
    written = store_trades(trades, overrides)
    return {"trades": len(trades), "written": written, "metrics": metrics}
