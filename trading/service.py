"""The live engine service behind `tradewind trade`: the trading engine driven by the
broker's clock and bars, its order updates, start-up recovery, a status file, and a
clean shutdown.

Start-up recovery (a kill -9 at any point loses no fill and duplicates no order):
1. the open positions the journal knows are rebuilt in the engine from their journaled
   fills (the fills since the symbol was last flat), so exits find their position;
2. fills the broker made while the service was down (broker filled quantity above the
   journaled one) are applied in the order they happened, under the same deterministic
   `fill_id` the stream uses (`<client_order_id>:<filled quantity>`), so a fill is never
   counted twice;
3. `TradingEngine.reconcile` adopts positions still unknown, re-registers pending entries
   and marks the journal's vanished orders; nothing is submitted. An entry is only ever
   submitted under its deterministic `client_order_id`, which the broker refuses twice.

The loop: look at the broker's clock; when it has moved, fetch the new bars (up to the
broker's time, never beyond), bring the order updates up to date (`sync`), then hand the
bars to the engine, timestamp by timestamp. Outside sessions it sleeps (broker clock,
else the exchange calendar), waking at least every `max_sleep_seconds`. Order updates from
the broker's stream are applied as they come; both paths are de-duplicated.

Fault injection for recovery drills: `TRADEWIND_CRASH_AT=before_submit|after_submit|
after_fill` makes the process SIGKILL itself at that point, once."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import signal
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, Protocol

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from core.bars import timeframe_step
from core.calendar import MarketCalendar
from core.clock import Clock, ReplayClock, WallClock
from core.errors import BrokerError, ConfigError, DataSourceError, DataValidationError
from core.types import (
    Bar,
    Fill,
    MarketClock,
    Order,
    OrderClass,
    OrderStatus,
    OrderType,
    Position,
    Side,
    TimeInForce,
)
from features.sentiment import WINDOWS
from trading.engine import TradingEngine
from trading.feed import RollingFeed
from trading.ports import (
    Account,
    BarCorrection,
    BarStream,
    Broker,
    MarketData,
    NewsStream,
    OrderUpdate,
    TradePrint,
)
from trading.watchlist import Watchlist, read_watchlist, write_watchlist

log = logging.getLogger(__name__)

CRASH_ENV = "TRADEWIND_CRASH_AT"
# Where the traded watchlist came from: the symbols the engine started with, the
# watchlist file (`--watchlist`, the screener's), or the engine API.
WATCHLIST_START, WATCHLIST_FILE, WATCHLIST_API = "symbols", "file", "api"
WATCHLIST_SOURCES = (WATCHLIST_START, WATCHLIST_FILE, WATCHLIST_API)
CRASH_POINTS = ("before_submit", "after_submit", "after_fill")


WARMUP_BARS = 600  # the catalogue's longest lookback (252) with room for the EMA(200)


def warmup_days_for(timeframe: str) -> int:
    """Calendar days of history that give a timeframe about `WARMUP_BARS` bars (weekends
    and holidays included): 450 for daily bars, a few days for minute bars."""
    step = timeframe_step(timeframe)
    if step >= timedelta(days=1):
        return 450
    sessions = WARMUP_BARS * step / timedelta(minutes=390)
    return int(sessions * 7 / 5) + 4


class ServiceConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    symbols: tuple[str, ...]
    timeframe: str = "1Day"
    status_path: Path = Path("data/trade_status.json")
    poll_seconds: float = Field(1.0, gt=0)  # how often the broker's clock is read
    max_sleep_seconds: float = Field(300.0, gt=0)  # longest nap outside sessions
    warmup_days: int = Field(450, ge=1)  # history loaded into the feed at start-up
    # The screener's watchlist (`tradewind screen`): when set, its symbols are traded and
    # re-read whenever the file changes; `symbols` serve until the file exists.
    watchlist_path: Path | None = None
    # Positions the account holds outside `symbols` (settings.broker.foreign_positions).
    foreign_positions: Literal["refuse", "warn"] = "refuse"


class ServiceObserver(Protocol):
    """Who hears what the runner does (the control plane: story, alerts, halt checks)."""

    def polled(self) -> None:
        """The loop came round (the heartbeat)."""
        ...

    def lag(self, bars: int) -> None:
        """How many bar times the broker's clock was ahead at this step."""
        ...

    def bar_done(self, at: datetime) -> None:
        """Every bar of time `at` has been traded."""
        ...

    def step_failed(self, error: str) -> None: ...


class _LogObserver:
    """The default observer: the lag warning once when it starts, once when it ends."""

    def __init__(self) -> None:
        self._lagging = False

    def polled(self) -> None:
        return None

    def lag(self, bars: int) -> None:
        if bars > 0 and not self._lagging:
            log.warning(
                "the broker's clock is %d bar(s) ahead of the engine; entries decided on them "
                "fill at later prices (replay the paper exchange slower)",
                bars,
            )
        elif bars == 0 and self._lagging:
            log.warning("caught up with the broker's clock")
        self._lagging = bars > 0

    def bar_done(self, at: datetime) -> None:
        return None

    def step_failed(self, error: str) -> None:
        log.warning("trading step failed, retrying: %s", error)


Companion = Callable[[asyncio.Event], Coroutine[Any, Any, None]]


class RecoveringBroker(Broker, Protocol):
    """A broker that can also say what it did recently (for start-up recovery) and bring
    its updates up to date on demand (`AlpacaBroker` does both)."""

    def recent_orders(self) -> list[tuple[Order, datetime | None]]: ...

    def sync(self) -> list[OrderUpdate]: ...

    def close(self) -> None: ...


@dataclass(slots=True)
class RecoveryReport:
    rebuilt_positions: list[str] = field(default_factory=list)
    replayed_fills: int = 0
    missed_fills: list[str] = field(default_factory=list)
    adopted: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    vanished: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)  # held outside the engine's symbols

    def as_dict(self) -> dict[str, Any]:
        return {
            "foreign": self.foreign,
            "rebuilt_positions": self.rebuilt_positions,
            "replayed_fills": self.replayed_fills,
            "missed_fills": self.missed_fills,
            "adopted": self.adopted,
            "pending": self.pending,
            "vanished": self.vanished,
        }


class TradingService:
    def __init__(
        self,
        *,
        engine: TradingEngine,
        broker: RecoveringBroker,
        market_data: MarketData,
        feed: RollingFeed,
        clock: ReplayClock,
        config: ServiceConfig,
        calendar: MarketCalendar | None = None,
        broker_name: str = "alpaca",
        wall_clock: Clock | None = None,
        observer: ServiceObserver | None = None,
        bar_stream: BarStream | None = None,
        news_stream: NewsStream | None = None,
    ) -> None:
        self.engine = engine
        self.broker = broker
        self.market_data = market_data
        self.feed = feed
        self.clock = clock
        self.config = config
        self.calendar = calendar or MarketCalendar()
        self.broker_name = broker_name
        self.recovery = RecoveryReport()
        self.last_bar_time: datetime | None = None
        self.lag_bars = 0  # bar times the broker was ahead at the last step
        self.started_at = datetime.now(UTC)
        self.state = "starting"
        self._applied_fills: set[str] = set()
        self._crash_at = os.environ.get(CRASH_ENV) or None
        self._wall: Clock = wall_clock or WallClock()
        self.observer: ServiceObserver = observer or _LogObserver()
        # Streamed bars waiting for their timestamp to be complete (see `_stream_bars`).
        self.bar_stream = bar_stream
        self.news_stream = news_stream  # headlines → the feed's sentiment features
        self._arrived: dict[datetime, dict[str, Bar]] = {}
        self._first_seen: dict[datetime, float] = {}
        self._wake = asyncio.Event()
        self.symbols: tuple[str, ...] = config.symbols
        # What the watchlist asks for (`symbols` adds the held symbols), where it came from
        # (`WATCHLIST_SOURCES`), and when it last changed.
        self.watchlist: tuple[str, ...] = config.symbols
        self.watchlist_source = WATCHLIST_START
        self.watchlist_changed_at: datetime | None = None
        self._watchlist_stamp: float | None = None

    # ------------------------------------------------------------------ start-up
    def warm_up(self) -> None:
        """Load recent history into the feed; only bars after it are traded."""
        now = self.broker.market_clock().timestamp
        self._follow(now)
        history = self.market_data.history(
            list(self.symbols),
            start=now - timedelta(days=self.config.warmup_days),
            end=now,
            timeframe=self.config.timeframe,
        )
        history = self._final(history)
        if not history.empty:
            self.feed.seed(history)
            self.last_bar_time = pd.Timestamp(history["timestamp"].max()).to_pydatetime()

    def recover(self) -> RecoveryReport:
        """Bring the engine and the journal in line with the broker (see module doc).
        Positions outside the engine's symbols are refused or left alone (`foreign`)."""
        ours = frozenset(self.config.symbols)
        self.recovery.foreign = self._foreign_positions(ours)
        journal = self.engine.journal
        fills = journal.fills()
        self._applied_fills = set(fills["fill_id"].astype(str)) if len(fills) else set()
        journaled = _filled_by_order(fills)
        missed: list[tuple[datetime, bool, Order]] = []
        for order, changed_at in self.broker.recent_orders():
            if order.symbol not in ours:
                continue
            if order.filled_qty > journaled.get(order.client_order_id, 0.0) + 1e-9:
                at = changed_at or order.created_at or self.clock.now()
                missed.append((at, order.parent_client_order_id is not None, order))
        # In the order they happened; at one time, an entry before its exit legs.
        missed.sort(key=lambda item: (item[0], item[1]))

        # A symbol with missed fills needs the position the journal knew first (an exit
        # filled while we were down must close it, not open the other way). Positions
        # without missed fills are adopted from the broker by `reconcile` instead, with
        # the broker's current stop.
        touched = {order.symbol for _, _, order in missed}
        orders = journal.frame("orders")
        known_orders = {
            str(row["client_order_id"]): _journal_order(row) for _, row in orders.iterrows()
        }
        for _, row in journal.positions().iterrows():
            symbol = str(row["symbol"])
            if symbol not in touched or abs(float(row["qty"])) < 1e-9:
                continue
            for fill in _fills_since_flat(fills[fills["symbol"] == symbol]):
                journaled_order = known_orders.get(fill.client_order_id)
                if journaled_order is not None:
                    self.engine.on_order_update(
                        OrderUpdate(
                            "fill", journaled_order, journaled_order.status, fill, fill.timestamp
                        )
                    )
                    self.recovery.replayed_fills += 1
            self.recovery.rebuilt_positions.append(symbol)

        for at, _, order in missed:
            already = journaled.get(order.client_order_id, 0.0)
            fill = Fill(
                fill_id=f"{order.client_order_id}:{order.filled_qty:g}",
                client_order_id=order.client_order_id,
                symbol=order.symbol,
                side=order.side,
                qty=order.filled_qty - already,
                price=order.filled_avg_price or 0.0,
                timestamp=at,
            )
            event = "fill" if order.status is OrderStatus.FILLED else "partial_fill"
            self.apply(OrderUpdate(event, order, order.status, fill, at))
            self.recovery.missed_fills.append(fill.fill_id)

        outcome = self.engine.reconcile(symbols=ours)
        self.recovery.adopted = outcome.get("adopted", [])
        self.recovery.pending = outcome.get("pending", [])
        self.recovery.vanished = outcome.get("vanished", [])
        return self.recovery

    def _foreign_positions(self, ours: frozenset[str]) -> list[str]:
        held = sorted(
            f"{p.symbol} {p.qty:g}" for p in self.broker.positions()
            if p.symbol not in ours and p.qty != 0
        )
        if not held:
            return []
        what = (
            f"the account holds {', '.join(held)} outside the engine's symbols "
            f"({', '.join(sorted(ours))})"
        )
        if self.config.foreign_positions == "refuse":
            raise ConfigError(
                f"{what}; refusing to trade beside them (another engine's, or a manual "
                "trade?). Trade those symbols too, close them, or set "
                "TRADEWIND_BROKER__FOREIGN_POSITIONS=warn to leave them alone",
                where="trade",
            )
        log.warning("%s: left alone (never adopted, never exited by this engine)", what)
        return [entry.split(" ")[0] for entry in held]

    def start(self) -> RecoveryReport:
        """Baseline of the broker's updates, warm-up, recovery; then ready to `step`."""
        self.broker.sync()  # the first sync takes the baseline the updates start from
        watchlist = self.config.watchlist_path
        if watchlist is not None and watchlist.exists():
            self.symbols = self.watchlist = read_watchlist(watchlist).symbols
            self.watchlist_source = WATCHLIST_FILE
            self._watchlist_stamp = watchlist.stat().st_mtime_ns
        self.warm_up()
        report = self.recover()
        self.state = "running"
        self.write_status()
        return report

    # ------------------------------------------------------------------ events
    def apply(self, update: OrderUpdate) -> None:
        """One order update into the engine, each fill once."""
        if update.fill is not None:
            if update.fill.fill_id in self._applied_fills:
                return
            self._applied_fills.add(update.fill.fill_id)
        self.engine.on_order_update(update)
        if update.fill is not None:
            self._maybe_crash("after_fill")

    def step(self) -> int:
        """Trade whatever bars the broker's clock has made available; return how many."""
        market = self.broker.market_clock()
        self._follow(market.timestamp)
        start = self.last_bar_time + timedelta(microseconds=1) if self.last_bar_time else None
        if start is not None and start > market.timestamp:
            return 0
        bars = self.market_data.history(
            list(self.symbols),
            start=start,
            end=market.timestamp,
            timeframe=self.config.timeframe,
        )
        if bars.empty:
            return 0
        if self.last_bar_time is not None:
            bars = bars[bars["timestamp"] > pd.Timestamp(self.last_bar_time)]
        bars = self._final(bars)
        if bars.empty:
            return 0
        times = bars["timestamp"].nunique()
        self.lag_bars = times - 1
        if self.state == "running":
            # Orders decided on an old bar reach the broker at its current time, so they
            # fill at later prices than the bar that made the decision.
            self.observer.lag(self.lag_bars)
        done = 0
        for moment, group in bars.sort_values(["timestamp", "symbol"]).groupby("timestamp"):
            stamp = pd.Timestamp(moment).to_pydatetime()  # type: ignore[arg-type]
            done += self._trade_time(
                stamp,
                [
                    Bar(str(row.symbol), stamp, float(row.open), float(row.high),
                        float(row.low), float(row.close), float(row.volume))
                    for row in group.itertuples(index=False)
                ],
            )
        self.write_status()
        return done

    def _trade_time(self, stamp: datetime, bars: Sequence[Bar]) -> int:
        """Every symbol's bar of one time: its fills first, then the engine sees the bars."""
        self._follow(stamp)
        for update in self.broker.sync():  # fills of this bar before the engine sees it
            self.apply(update)
        self.engine.advance(stamp)
        self.feed.observe_many(bars)  # one pass over the cross-section; on_bar finds it done
        for bar in bars:
            self.engine.on_bar(bar)
        self.last_bar_time = stamp
        self.observer.bar_done(stamp)
        return len(bars)

    def refresh_watchlist(self) -> bool:
        """Trade the watchlist's symbols from now on when its file changed (plus every
        symbol still held, so its exits stay managed); a new symbol's history is loaded
        into the feed first. True when the traded symbols changed."""
        path = self.config.watchlist_path
        if path is None or not path.exists():
            return False
        stamp = path.stat().st_mtime_ns
        if stamp == self._watchlist_stamp:
            return False
        self._watchlist_stamp = stamp
        try:
            wanted = read_watchlist(path).symbols
        except ConfigError as exc:
            self.observer.step_failed(exc.message)
            return False
        return self._trade_watchlist(wanted, WATCHLIST_FILE)

    def replace_watchlist(self, symbols: Sequence[str]) -> bool:
        """The watchlist replaced by the operator (the engine API). Every new symbol must
        have bars at the market data (`DataValidationError` naming those without: a typo
        trades nothing). With a watchlist file, the file is rewritten and read back, as
        any change of it is, and the list lasts across a restart; without one, it holds
        until the engine stops. True when the traded symbols changed."""
        wanted = tuple(dict.fromkeys(symbol.upper() for symbol in symbols))
        _, added = self._plan(wanted)
        history = self._history(added)
        if history is not None:
            missing = [s for s in added if s not in set(history["symbol"])]
            if missing:
                raise DataValidationError(
                    f"no bars for {', '.join(missing)} at the market data in the "
                    f"{self.config.warmup_days} days to {self.last_bar_time:%Y-%m-%d}; "
                    "not a tradable symbol?",
                    where="watchlist",
                )
        path = self.config.watchlist_path
        if path is not None:
            write_watchlist(path, Watchlist(self.clock.now().date().isoformat(), wanted))
            self._watchlist_stamp = path.stat().st_mtime_ns
            wanted = read_watchlist(path).symbols
        return self._trade_watchlist(wanted, WATCHLIST_API, history)

    def _plan(self, wanted: tuple[str, ...]) -> tuple[tuple[str, ...], list[str]]:
        """(the symbols to trade: the watchlist and every symbol still held, the ones
        among them not traded yet)."""
        held = tuple(p.symbol for p in self.engine.book if p.symbol not in wanted)
        symbols = tuple(dict.fromkeys((*wanted, *held)))
        return symbols, [s for s in symbols if s not in self.symbols]

    def _history(self, symbols: list[str]) -> pd.DataFrame | None:
        """The warm-up history of `symbols` up to the last bar traded (None before any)."""
        if not symbols or self.last_bar_time is None:
            return None
        return self.market_data.history(
            symbols,
            start=self.last_bar_time - timedelta(days=self.config.warmup_days),
            end=self.last_bar_time,
            timeframe=self.config.timeframe,
        )

    def _trade_watchlist(
        self, wanted: tuple[str, ...], source: str, history: pd.DataFrame | None = None
    ) -> bool:
        self.watchlist, self.watchlist_source = wanted, source
        self.watchlist_changed_at = datetime.now(UTC)
        symbols, added = self._plan(wanted)
        if set(symbols) == set(self.symbols):
            return False
        if history is None:
            history = self._history(added)
        if history is not None and not history.empty:
            self.feed.seed(history[history["symbol"].isin(added)])
        log.info("watchlist: trading %s", ", ".join(symbols))
        self.symbols = symbols
        for stream in (self.bar_stream, self.news_stream):
            if stream is not None:
                stream.close()  # the stream reopens on the new symbols
        return True

    def step_streamed(self, *, grace_seconds: float = 2.0) -> int:
        """Trade the streamed bars whose time is complete: every symbol has its bar, a
        later time has begun, or `grace_seconds` passed since its first bar (a symbol
        without a trade that minute has no bar)."""
        done = 0
        now = time.monotonic()
        times = sorted(self._arrived)
        wanted = set(self.symbols)
        for position, stamp in enumerate(times):
            bars = self._arrived[stamp]
            complete = (
                wanted <= set(bars)
                or position < len(times) - 1
                or now - self._first_seen[stamp] >= grace_seconds
            )
            if not complete:
                break
            del self._arrived[stamp]
            del self._first_seen[stamp]
            if self.last_bar_time is not None and stamp <= self.last_bar_time:
                continue  # already traded (warm-up or the REST path)
            done += self._trade_time(stamp, [bars[symbol] for symbol in sorted(bars)])
        if done:
            self.lag_bars = len(self._arrived)
            self.write_status()
        return done

    async def _stream_bars(self, stream: BarStream, retry_seconds: float = 1.0) -> None:
        """Collect streamed bars by time (after the warm-up's last bar, gaps back-filled
        by the stream) and wake the loop. A stream that fails (its back-fill could not
        reach the bars API, say) is reported and opened again from the last traded bar."""
        while self.last_bar_time is None and self.state == "starting":
            await asyncio.sleep(0.01)  # the warm-up says where the stream resumes
        while True:
            try:
                async for event in stream.bars(list(self.symbols), after=self.last_bar_time):
                    if isinstance(event, TradePrint):
                        self.engine.on_trade(event)  # stops and targets at the print
                        continue
                    if isinstance(event, BarCorrection):
                        self.correct_bar(event.bar)
                        continue
                    bar = event
                    if bar.timestamp not in self._arrived:
                        self._first_seen[bar.timestamp] = time.monotonic()
                    self._arrived.setdefault(bar.timestamp, {})[bar.symbol] = bar
                    self._wake.set()
            except (BrokerError, DataSourceError, ConnectionError, OSError) as exc:
                self.observer.step_failed(f"bar stream: {exc}")
                stream.close()
                await asyncio.sleep(retry_seconds)

    def correct_bar(self, bar: Bar) -> bool:
        """A bar revised after it was sent: replaced while it waits to be traded, else
        the feed recomputes the symbol's latest features and signals from it. False when
        it came too late (an older bar: nothing changes)."""
        waiting = self._arrived.get(bar.timestamp)
        if waiting is not None and bar.symbol in waiting:
            waiting[bar.symbol] = bar
            return True
        corrected = self.feed.correct(bar)
        if not corrected:
            log.info("correction of %s %s came after a later bar; ignored", bar.symbol,
                     bar.timestamp.isoformat())
        return corrected

    async def _stream_news(self, stream: NewsStream, retry_seconds: float = 1.0) -> None:
        """Headlines into the feed's sentiment features as they are published, those of
        the longest sentiment window before the last traded bar first; each article
        (per symbol) counted once, across reconnects."""
        while self.last_bar_time is None and self.state == "starting":
            await asyncio.sleep(0.01)  # the warm-up says where the windows start
        self.feed.news_live()
        seen: set[tuple[str, str]] = set()
        while True:
            since = None
            if self.last_bar_time is not None:
                since = self.last_bar_time - max(WINDOWS.values()).to_pytimedelta()
            try:
                async for item in stream.headlines(list(self.symbols), since=since):
                    key = (item.news_id, item.symbol)
                    if item.news_id and key in seen:
                        continue
                    seen.add(key)
                    self.feed.observe_news(item.symbol, item.timestamp, item.headline)
            except (DataSourceError, ConnectionError, OSError) as exc:
                self.observer.step_failed(f"news stream: {exc}")
                stream.close()
                await asyncio.sleep(retry_seconds)

    def seconds_to_sleep(self, market: MarketClock) -> float:
        return seconds_to_sleep(
            market,
            datetime.now(UTC),
            poll_seconds=self.config.poll_seconds,
            max_sleep_seconds=self.config.max_sleep_seconds,
            calendar=self.calendar,
        )

    # ------------------------------------------------------------------ the service
    async def run(self, stop: asyncio.Event, companions: Sequence[Companion] = ()) -> None:
        """Until `stop` is set: recover, then trade. Always leaves a final status.
        `companions` run beside the loop on the same event loop (the engine's API: its
        control actions never interleave with a step) and are cancelled at the end."""
        consumer = asyncio.create_task(self._consume(self.broker.updates()))
        helpers = [asyncio.create_task(companion(stop)) for companion in companions]
        if self.bar_stream is not None:
            helpers.append(asyncio.create_task(self._stream_bars(self.bar_stream)))
        if self.news_stream is not None:
            helpers.append(asyncio.create_task(self._stream_news(self.news_stream)))
        try:
            await asyncio.sleep(0)  # the stream subscribes before recovery reads the books
            self.start()
            while not stop.is_set():
                self._wake.clear()
                try:
                    self.refresh_watchlist()
                    if self.bar_stream is None:
                        self.step()
                    else:
                        self.step_streamed()
                    market = self.broker.market_clock()
                except (BrokerError, DataSourceError) as exc:
                    self.observer.step_failed(str(exc))
                    market = MarketClock(datetime.now(UTC), True, None, None)
                self.observer.polled()
                pause = self.seconds_to_sleep(market)
                if self.bar_stream is not None:  # bars wake the loop; the poll only ticks
                    pause = min(pause, self.config.poll_seconds)
                await _first_of(stop, self._wake, timeout=pause)
        finally:
            for stream in (self.bar_stream, self.news_stream):
                if stream is not None:
                    stream.close()
            for task in (consumer, *helpers):
                task.cancel()
            for task in (consumer, *helpers):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            self.state = "stopped"
            with contextlib.suppress(Exception):
                self.engine.finish()
                self.write_status()
            self.broker.close()

    async def _consume(self, updates: AsyncIterator[OrderUpdate]) -> None:
        async for update in updates:
            try:
                self.apply(update)
            except Exception:  # one bad update must not end the service
                log.exception("order update %s could not be applied", update.event)

    def status(self) -> dict[str, Any]:
        body = self.engine.status()
        body["service"] = {
            "state": self.state,
            "broker": self.broker_name,
            "symbols": list(self.symbols),
            "pid": os.getpid(),
            "started_at": self.started_at.isoformat(),
            "last_bar": self.last_bar_time.isoformat() if self.last_bar_time else None,
            "lag_bars": self.lag_bars,
            "written_at": datetime.now(UTC).isoformat(),
            "recovery": self.recovery.as_dict(),
        }
        body["circuit_breaker"] = {"halted": body.get("halted", False)}
        return body

    def write_status(self) -> None:
        """Atomically replace the status file (a reader never sees half of it)."""
        path = self.config.status_path
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        temporary.write_text(json.dumps(self.status(), indent=2, default=str))
        os.replace(temporary, path)

    # ------------------------------------------------------------------ helpers
    def _final(self, bars: pd.DataFrame) -> pd.DataFrame:
        """Only bars that can no longer change (today's daily bar waits for the close)."""
        if bars.empty:
            return bars
        now = self._wall.now()
        keep = [
            bar_is_final(pd.Timestamp(t).to_pydatetime(), self.config.timeframe, now, self.calendar)
            for t in bars["timestamp"]
        ]
        return bars[keep]

    def _follow(self, moment: datetime) -> None:
        if moment > self.clock.now():
            self.clock.advance_to(moment)

    def _maybe_crash(self, point: str) -> None:
        if self._crash_at == point:
            self._crash_at = None
            os.kill(os.getpid(), signal.SIGKILL)


async def _first_of(*events: asyncio.Event, timeout: float) -> None:
    """Wait until one of `events` is set, or `timeout` seconds."""
    waiters = [asyncio.create_task(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


class CrashingBroker:
    """Wraps a broker to SIGKILL the process around `submit` (recovery drills only; see
    `TRADEWIND_CRASH_AT`)."""

    def __init__(self, broker: RecoveringBroker, point: str | None) -> None:
        self._broker = broker
        self._point = point

    def submit(self, order: Order) -> Order:
        if self._point == "before_submit":
            os.kill(os.getpid(), signal.SIGKILL)
        placed = self._broker.submit(order)
        if self._point == "after_submit":
            os.kill(os.getpid(), signal.SIGKILL)
        return placed

    def account(self) -> Account:
        return self._broker.account()

    def positions(self) -> list[Position]:
        return self._broker.positions()

    def open_orders(self) -> list[Order]:
        return self._broker.open_orders()

    def get_order(self, client_order_id: str) -> Order | None:
        return self._broker.get_order(client_order_id)

    def market_clock(self) -> MarketClock:
        return self._broker.market_clock()

    def cancel(self, client_order_id: str) -> None:
        self._broker.cancel(client_order_id)

    def replace_stop(self, client_order_id: str, stop_price: float) -> Order:
        return self._broker.replace_stop(client_order_id, stop_price)

    def close_position(self, symbol: str) -> Order | None:
        return self._broker.close_position(symbol)

    def updates(self) -> AsyncIterator[OrderUpdate]:
        return self._broker.updates()

    def recent_orders(self) -> list[tuple[Order, datetime | None]]:
        return self._broker.recent_orders()

    def sync(self) -> list[OrderUpdate]:
        return self._broker.sync()

    def close(self) -> None:
        self._broker.close()


def crash_point() -> str | None:
    point = os.environ.get(CRASH_ENV) or None
    if point is not None and point not in CRASH_POINTS:
        from core.errors import ConfigError

        raise ConfigError(
            f"{CRASH_ENV}={point!r} is not one of {', '.join(CRASH_POINTS)}", where="trade"
        )
    return point


def install_signal_handlers(stop: asyncio.Event) -> Callable[[], None]:
    """SIGTERM and SIGINT set `stop` (graceful shutdown); returns the undo function."""
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)

    def remove() -> None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)

    return remove


def seconds_to_sleep(
    market: MarketClock,
    now: datetime,
    *,
    poll_seconds: float,
    max_sleep_seconds: float,
    calendar: MarketCalendar,
) -> float:
    """Poll while the market is open; outside sessions sleep until the next open (the
    broker's word, else the exchange calendar's), waking at least every
    `max_sleep_seconds` (a stop request ends any sleep at once)."""
    if market.is_open:
        return poll_seconds
    next_open = market.next_open
    if next_open is None or next_open <= now:
        next_open = calendar.next_open(now)
    wait = (next_open - now).total_seconds()
    return min(max(wait, poll_seconds), max_sleep_seconds)


_TIMEFRAME = re.compile(r"^(\d*)(Min|Hour|Day)$")


def bar_is_final(
    timestamp: datetime, timeframe: str, now: datetime, calendar: MarketCalendar
) -> bool:
    """Whether a bar stamped `timestamp` (its start) can no longer change at `now` (real
    time): a daily bar once its session has closed, an intraday bar once its span is over.
    Replayed history is final; live, today's daily bar waits for the close."""
    match = _TIMEFRAME.match(timeframe)
    count = int(match.group(1) or 1) if match else 1
    unit = match.group(2) if match else "Day"
    if unit != "Day":
        span = timedelta(minutes=count) if unit == "Min" else timedelta(hours=count)
        return timestamp + span <= now
    if now - timestamp > timedelta(days=count + 1):
        return True
    day = calendar.session_date(timestamp)
    if not calendar.is_session(day):
        return True  # no session that day: nothing more will trade
    return calendar.session_bounds(day)[1] <= now


def _filled_by_order(fills: pd.DataFrame) -> dict[str, float]:
    if fills.empty:
        return {}
    totals = fills.groupby("client_order_id")["qty"].sum()
    return {str(k): float(v) for k, v in totals.items()}


def _fills_since_flat(fills: pd.DataFrame) -> list[Fill]:
    """The fills that built a symbol's current position (after it was last flat)."""
    ordered = fills.sort_values(["timestamp", "fill_id"], kind="stable")
    rows = list(ordered.itertuples(index=False))
    running = 0.0
    start = 0
    for index, row in enumerate(rows):
        running += float(row.qty) * (1 if row.side == "buy" else -1)
        if abs(running) < 1e-9:
            start = index + 1
    return [
        Fill(
            fill_id=str(row.fill_id),
            client_order_id=str(row.client_order_id),
            symbol=str(row.symbol),
            side=Side(row.side),
            qty=float(row.qty),
            price=float(row.price),
            timestamp=pd.Timestamp(row.timestamp).to_pydatetime(),
            commission=float(row.commission),
        )
        for row in rows[start:]
    ]


def _journal_order(row: pd.Series) -> Order:
    def number(name: str) -> float | None:
        value = row.get(name)
        return None if value is None or pd.isna(value) else float(value)

    created = row.get("created_at")
    return Order(
        client_order_id=str(row["client_order_id"]),
        symbol=str(row["symbol"]),
        side=Side(row["side"]),
        qty=float(row["qty"]),
        type=OrderType(row["type"]),
        limit_price=number("limit_price"),
        stop_price=number("stop_price"),
        time_in_force=TimeInForce(row["time_in_force"]),
        order_class=OrderClass(row["order_class"]),
        take_profit_price=number("take_profit_price"),
        stop_loss_price=number("stop_loss_price"),
        status=OrderStatus(row["status"]),
        broker_order_id=None
        if pd.isna(row.get("broker_order_id"))
        else str(row["broker_order_id"]),
        parent_client_order_id=None
        if pd.isna(row.get("parent_client_order_id"))
        else str(row["parent_client_order_id"]),
        filled_qty=float(row["filled_qty"]),
        filled_avg_price=number("filled_avg_price"),
        created_at=None
        if created is None or pd.isna(created)
        else pd.Timestamp(created).to_pydatetime(),
    )
