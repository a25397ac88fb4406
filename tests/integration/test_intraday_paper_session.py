"""A paper session on real 1-minute bars, end to end: the engine wired exactly as
`tradewind trade --timeframe 1Min` wires it (AlpacaBroker on alpaca-py, bars over the
paper exchange's market-data stream through alpaca-py's StockDataStream, streaming
features, rules client) trades AAPL and MSFT through 2021-08-24 against the paper
exchange subprocess, one replayed minute at a time: it enters only inside the session
window, moves trailing stops during the day, and is flat at the exchange before the
close (the flatten 5 minutes before it)."""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from core.calendar import MarketCalendar
from core.types import BAR_COLUMNS
from tests.conftest import shared_file
from tests.integration.exchange_support import (
    Exchange,
    isolate_settings,
    minute_bar_service,
    write_store,
)
from trading.service import TradingService
from trading.watchlist import Watchlist, write_watchlist

pytestmark = pytest.mark.integration

SYMBOLS = ("AAPL", "MSFT")
SESSION = "2021-08-24"
FIRST, LAST, FLATTEN = 15, 15, 5
SETTINGS_ENV = {
    "TRADEWIND_INTRADAY__NO_ENTRY_FIRST_MINUTES": str(FIRST),
    "TRADEWIND_INTRADAY__NO_ENTRY_LAST_MINUTES": str(LAST),
    "TRADEWIND_INTRADAY__FLATTEN_BEFORE_CLOSE_MINUTES": str(FLATTEN),
    # Exits far away, no time limit, no exit on the opposite signal: positions are still
    # open when the close nears, so the flatten has work to do.
    "TRADEWIND_RISK__MAX_HOLDING_BARS": "390",
    "TRADEWIND_RISK__STOP_LOSS_ATR": "40",
    "TRADEWIND_RISK__TAKE_PROFIT_ATR": "60",
    "TRADEWIND_RISK__TRAILING_STOP_ATR": "40",
    "TRADEWIND_RISK__EXIT_ON_OPPOSITE_SIGNAL": "false",
}


@pytest.fixture
def exchange(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Exchange]:
    isolate_settings(monkeypatch, tmp_path)
    for key, value in SETTINGS_ENV.items():
        monkeypatch.setenv(key, value)
    bars = pd.read_parquet(shared_file("intraday/minute_2021.parquet"))
    bars = bars.loc[bars["symbol"].isin(SYMBOLS), list(BAR_COLUMNS)]
    write_store(tmp_path / "data", bars.reset_index(drop=True), "1Min")
    running = Exchange(tmp_path, symbols=",".join(SYMBOLS), timeframe="1Min", start=SESSION)
    running.start()
    try:
        yield running
    finally:
        running.close()


def build(
    exchange: Exchange, symbols: tuple[str, ...] = SYMBOLS, watchlist: Path | None = None
) -> TradingService:
    service: TradingService = minute_bar_service(exchange, symbols, watchlist)
    return service


async def start(
    service: TradingService, exchange: Exchange, stop: asyncio.Event
) -> asyncio.Task[None]:
    """The service running, its trade-update and market-data streams connected."""
    runner = asyncio.create_task(service.run(stop))
    await until(lambda: service.state == "running", "the service's start")
    await until(
        lambda: exchange.state().get("stream_connections", 0) >= 2,
        "the trade-update and market-data streams",
    )
    return runner


async def replay_minute(
    service: TradingService, exchange: Exchange, timeout: float = 20.0
) -> pd.Timestamp | None:
    """One replayed minute, traded by the engine before the next; None at the end."""
    answer = await asyncio.to_thread(exchange.advance)
    if not answer["timestamps"]:
        return None
    moment = pd.Timestamp(answer["timestamps"][0])
    await until(
        lambda: service.last_bar_time is not None and pd.Timestamp(service.last_bar_time) >= moment,
        f"the engine to trade {moment}",
        timeout,
    )
    return moment


async def until(condition: object, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)


def test_a_minute_bar_session_trades_inside_the_window_and_ends_flat(
    exchange: Exchange,
) -> None:
    service = build(exchange)
    assert service.bar_stream is not None  # 1-minute bars come over the stream
    calendar = MarketCalendar()
    opens, closes = calendar.session_bounds(pd.Timestamp(SESSION).date())
    replayed: list[pd.Timestamp] = []

    async def scenario() -> None:
        stop = asyncio.Event()
        runner = await start(service, exchange, stop)
        try:
            while (moment := await replay_minute(service, exchange)) is not None:
                if moment >= closes:
                    break
                replayed.append(moment)
            await until(lambda: exchange.positions() == {}, "flat at the exchange", 10.0)
        finally:
            stop.set()
            await runner

    asyncio.run(scenario())

    assert len(replayed) >= 380  # the whole session, minute by minute
    journal = service.engine.journal
    decisions = journal.decisions()
    entered = decisions.loc[decisions["action"] == "entered"]
    assert len(entered) > 0
    for signal_time in entered["signal_time"]:
        decided = signal_time + pd.Timedelta(minutes=1)
        assert opens + pd.Timedelta(minutes=FIRST) <= decided <= closes - pd.Timedelta(
            minutes=LAST
        )
    assert (decisions["category"] == "session").any()
    assert service.engine.stats.stop_moves > 0, "trailing stops move within the day"
    trades = journal.trades()
    assert len(trades) > 0
    assert (trades["exit_time"] < closes).all()
    assert "session_close" in set(trades["exit_reason"])
    assert exchange.positions() == {}


def test_the_running_engine_picks_up_a_new_watchlist(exchange: Exchange) -> None:
    """Started on AAPL alone; the screener's watchlist then names MSFT too: without a
    restart the engine subscribes to MSFT's bars, warms its features up and trades it."""
    watchlist = exchange.workdir / "watchlist.json"
    service = build(exchange, symbols=("AAPL",), watchlist=watchlist)
    seen: list[pd.Timestamp] = []
    bars_before: list[int] = []

    async def scenario() -> None:
        stop = asyncio.Event()
        runner = await start(service, exchange, stop)
        try:
            for _ in range(5):
                await replay_minute(service, exchange)
            assert service.symbols == ("AAPL",)
            bars_before.append(service.engine.stats.bars)
            write_watchlist(watchlist, Watchlist(as_of=SESSION, symbols=SYMBOLS))
            await until(lambda: service.symbols == SYMBOLS, "the watchlist's symbols")
            # The stream reopens on both symbols; a minute replayed meanwhile is
            # back-filled when the next one arrives, so keep the replay going.
            traded: list[pd.Timestamp] = []
            while len(traded) < 10:
                answer = await asyncio.to_thread(exchange.advance)
                traded.append(pd.Timestamp(answer["timestamps"][0]))
                with contextlib.suppress(AssertionError):
                    await until(
                        lambda: service.last_bar_time is not None
                        and pd.Timestamp(service.last_bar_time) >= traded[-1],
                        "the minute traded",
                        3.0,
                    )
            await until(
                lambda: pd.Timestamp(service.last_bar_time) >= traded[-1], "the last minute"
            )
            seen.extend(traded)
        finally:
            stop.set()
            await runner

    asyncio.run(scenario())
    # Ten minutes of AAPL, and of MSFT all but the minute or two the stream reopened in
    # (those come back from the bars API when the next minute arrives).
    assert service.engine.stats.bars - bars_before[0] >= 10 + 8
    latest = service.feed.features("MSFT", seen[-1].to_pydatetime())
    assert latest is not None
    # 200-bar features already: MSFT's history was loaded when it joined, not 10 bars.
    assert math.isfinite(latest["ema_200_dist"])
