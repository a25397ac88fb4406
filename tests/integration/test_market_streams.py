"""The live engine on the paper exchange's news and market-data streams, through the
unmodified alpaca-py SDK (`NewsDataStream`, `StockDataStream`), wired as `tradewind
trade --timeframe 1Min` wires it with the intraday stream settings on:

- a news article from the exchange's `--news` file, replayed when its clock reaches it,
  reaches the sentiment features of the next bar the engine decides on, scored as the
  offline features score it; one published before the engine started is back-filled
  from the exchange's news REST API; a symbol without news has a real zero count (the
  source is live), never a silent 0 where there is no source;
- an `updatedBars` correction of the latest bar replaces it: its features are recomputed;
- with trades subscribed, a trade print that crosses a position's stop closes it within
  the bar, before the bar's own message arrives (`test_trade_print_closes_before_the_bar`).
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest

from core.types import BAR_COLUMNS
from features.sentiment import score_headlines
from tests.conftest import shared_file
from tests.integration.exchange_support import (
    Exchange,
    isolate_settings,
    minute_bar_service,
    write_store,
)
from trading.service import TradingService

pytestmark = pytest.mark.integration

SYMBOLS = ("AAPL", "MSFT")
SESSION = "2021-08-24"
HEADLINE = "Apple shares surge after record quarterly profit beats every estimate"
NEWS_AT = pd.Timestamp("2021-08-24 13:32:30", tz="UTC")
EARLIER = "Apple faces a lawsuit over accounting fraud"
EARLIER_AT = pd.Timestamp("2021-08-23 19:00", tz="UTC")  # the day before: back-filled
STREAMS_ENV = {
    "TRADEWIND_INTRADAY__STREAM_NEWS": "true",
    "TRADEWIND_INTRADAY__STREAM_TRADES": "true",
    "TRADEWIND_INTRADAY__STREAM_BAR_CORRECTIONS": "true",
    "TRADEWIND_INTRADAY__NO_ENTRY_FIRST_MINUTES": "0",
}


@pytest.fixture
def minute_bars() -> pd.DataFrame:
    bars = pd.read_parquet(shared_file("intraday/minute_2021.parquet"))
    bars = bars.loc[bars["symbol"].isin(SYMBOLS), list(BAR_COLUMNS)]
    return bars.sort_values(["symbol", "timestamp"]).reset_index(drop=True)


def start_exchange(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bars: pd.DataFrame, env: dict[str, str]
) -> Exchange:
    isolate_settings(monkeypatch, tmp_path)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    write_store(tmp_path / "data", bars, "1Min")
    news = tmp_path / "news.jsonl"
    articles = [
        {"id": 6, "created_at": EARLIER_AT.isoformat(), "headline": EARLIER, "symbols": ["AAPL"]},
        {"id": 7, "created_at": NEWS_AT.isoformat(), "headline": HEADLINE, "symbols": ["AAPL"],
         "source": "test"},
    ]
    news.write_text("# two articles\n" + "".join(json.dumps(a) + "\n" for a in articles),
                    encoding="utf-8")
    exchange = Exchange(tmp_path, symbols=",".join(SYMBOLS), timeframe="1Min", start=SESSION,
                        extra_args=("--news", str(news)))
    return exchange.start()


@pytest.fixture
def exchange(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, minute_bars: pd.DataFrame
) -> Iterator[Exchange]:
    running = start_exchange(tmp_path, monkeypatch, minute_bars, STREAMS_ENV)
    try:
        yield running
    finally:
        running.close()


def build(exchange: Exchange) -> TradingService:
    service: TradingService = minute_bar_service(exchange, SYMBOLS)
    return service


async def until(condition: Callable[[], object], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)


async def start(service: TradingService, exchange: Exchange, stop: asyncio.Event,
                streams: int) -> asyncio.Task[None]:
    runner = asyncio.create_task(service.run(stop))
    await until(lambda: service.state == "running", "the service's start")
    await until(lambda: exchange.state().get("stream_connections", 0) >= streams,
                "the trade-update, market-data and news streams")
    await asyncio.sleep(0.3)  # the SDKs subscribe a moment after they connect
    return runner


async def replay_minute(service: TradingService, exchange: Exchange) -> pd.Timestamp:
    answer = await asyncio.to_thread(exchange.advance)
    moment = pd.Timestamp(answer["timestamps"][0])
    await until(
        lambda: service.last_bar_time is not None and pd.Timestamp(service.last_bar_time) >= moment,
        f"the engine to trade {moment}",
    )
    return moment


def test_news_reaches_the_next_decision_and_a_correction_is_applied(
    exchange: Exchange, minute_bars: pd.DataFrame
) -> None:
    exchange.advance()  # 13:30: the earlier article is out before the engine starts
    service = build(exchange)
    assert service.news_stream is not None
    features: dict[str, dict[str, float]] = {}
    corrected: dict[str, float] = {}

    async def scenario() -> None:
        stop = asyncio.Event()
        runner = await start(service, exchange, stop, streams=3)
        try:
            stream = service.news_stream
            await until(lambda: getattr(stream, "backfilled", 0) >= 1, "the back-fill")
            first = await replay_minute(service, exchange)  # 13:31: the earlier article
            features["before"] = dict(service.feed.features("AAPL", first.to_pydatetime()) or {})
            moment = first
            while moment < NEWS_AT:  # the article goes out with the 13:33 step
                moment = await replay_minute(service, exchange)
            await until(lambda: getattr(stream, "received", 0) >= 1, "the article")
            after = (await replay_minute(service, exchange)).to_pydatetime()
            features["AAPL"] = dict(service.feed.features("AAPL", after) or {})
            features["MSFT"] = dict(service.feed.features("MSFT", after) or {})
            # The exchange revises the latest AAPL bar: its features are recomputed.
            row = minute_bars.set_index(["symbol", "timestamp"]).loc[("AAPL", after)]
            new_close = float(row["close"]) * 1.01
            exchange.admin("POST", "/admin/bars/correct", symbol="AAPL",
                           timestamp=after.isoformat(), open=float(row["open"]),
                           high=max(float(row["high"]), new_close), low=float(row["low"]),
                           close=new_close, volume=float(row["volume"]))
            corrected["close"] = new_close
            old_return = features["AAPL"]["return_1"]

            def revised() -> bool:
                now = service.feed.features("AAPL", after)
                return now is not None and now["return_1"] != old_return

            await until(revised, "the corrected bar's features")
            corrected["return_1"] = (service.feed.features("AAPL", after) or {})["return_1"]
            corrected["previous_close"] = float(
                minute_bars.set_index(["symbol", "timestamp"])
                .loc[("AAPL", after - pd.Timedelta(minutes=1)), "close"]
            )
        finally:
            stop.set()
            await runner

    asyncio.run(scenario())

    earlier = float(score_headlines(pd.Series([EARLIER]))[0])
    score = float(score_headlines(pd.Series([HEADLINE]))[0])
    assert earlier < -0.3  # VADER reads them as bad and good news
    assert score > 0.5
    before = features["before"]
    assert before["sent_available"] == 1.0
    assert before["news_count_1d"] == 1.0
    assert before["sent_mean_1d"] == pytest.approx(earlier)
    aapl = features["AAPL"]
    assert aapl["news_count_1d"] == 2.0
    assert aapl["news_count_5d"] == 2.0
    assert aapl["sent_mean_1d"] == pytest.approx((earlier + score) / 2)
    assert aapl["sent_available"] == 1.0
    msft = features["MSFT"]
    assert msft["news_count_1d"] == 0.0
    assert math.isnan(msft["sent_mean_1d"])
    assert corrected["return_1"] == pytest.approx(
        corrected["close"] / corrected["previous_close"] - 1.0
    )


def crossing_bar(bars: pd.DataFrame, held: int = 5) -> tuple[int, pd.Timestamp, float]:
    """The first AAPL minute of the session whose low undercuts the `held` minutes before
    it by a few cents while its open does not: (its index in the session, its time, a
    stop between the two). Every print of those minutes is above the stop; the minute's
    low print (never its last) is below."""
    day = bars.loc[(bars["symbol"] == "AAPL") & (bars["timestamp"].dt.strftime("%Y-%m-%d")
                                                  == SESSION)]
    day = day.sort_values("timestamp").reset_index(drop=True)
    floor = day["low"].rolling(held).min().shift(1)
    for index in range(held + 1, len(day)):
        row = day.iloc[index]
        if row["low"] < floor[index] - 0.03 and row["open"] > floor[index]:
            return index, pd.Timestamp(row["timestamp"]), round(
                (float(floor[index]) + float(row["low"])) / 2, 2
            )
    raise AssertionError("no minute undercuts the minutes before it")


def test_trade_print_closes_before_the_bar(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, minute_bars: pd.DataFrame
) -> None:
    """Intrabar prints: a position the engine holds with a stop it watches itself (its
    stop order at the broker was canceled) is closed at the market at the first print
    that crosses the stop, and the close fills at the next print, within the minute,
    before the minute's bar reaches the engine."""
    env = {**STREAMS_ENV, "TRADEWIND_INTRADAY__STREAM_NEWS": "false",
           "TRADEWIND_RISK__MAX_HOLDING_BARS": "390"}
    exchange = Exchange(tmp_path, symbols=",".join(SYMBOLS), timeframe="1Min", start=SESSION,
                        extra_args=("--intrabar-prints",))
    isolate_settings(monkeypatch, tmp_path)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    write_store(tmp_path / "data", minute_bars, "1Min")
    exchange.start()
    index, minute, stop_price = crossing_bar(minute_bars)
    closed_at: dict[str, object] = {}
    try:
        # A bracket bought five minutes before that minute, before the engine starts:
        # the engine adopts it with its stop.
        exchange.advance(steps=index - 5)
        exchange.admin("POST", "/v2/orders", symbol="AAPL", qty=10, side="buy", type="market",
                       time_in_force="gtc", order_class="bracket", client_order_id="held",
                       take_profit={"limit_price": 10_000}, stop_loss={"stop_price": stop_price})
        exchange.admin("POST", "/admin/advance", prints=1)  # filled at the next open
        assert exchange.positions() == {"AAPL": 10.0}
        service = build(exchange)

        async def scenario() -> None:
            stop = asyncio.Event()
            runner = await start(service, exchange, stop, streams=2)
            try:
                held = service.engine.book.get("AAPL")
                assert held is not None
                assert held.stop_price == pytest.approx(stop_price)
                leg = next(o for o in exchange.orders(status="open")
                           if o["client_order_id"] == "held-sl")
                canceled = exchange._http.delete(f"{exchange.url}/v2/orders/{leg['id']}")
                assert canceled.status_code == 204
                await until(lambda: held.stop_order_id is None, "the stop order's cancel")
                while "AAPL" in exchange.positions():
                    seen = service.engine.stats.prints
                    answer = await asyncio.to_thread(exchange.admin, "POST", "/admin/advance",
                                                     prints=1)
                    assert answer["timestamps"], "the replay ended with the position open"
                    await until(lambda s=seen: service.engine.stats.prints >= s + 2,
                                "the print at the engine")
                    position = service.engine.book.get("AAPL")
                    if position is not None and position.exit_reason and not closed_at:
                        closed_at["asked"] = pd.Timestamp(answer["timestamps"][0])
                        closed_at["engine_bar"] = service.last_bar_time
                closed_at["filled"] = pd.Timestamp(answer["timestamps"][0])
                await until(lambda: "AAPL" in set(service.engine.journal.trades()["symbol"]),
                            "the closed trade")
            finally:
                stop.set()
                await runner

        asyncio.run(scenario())
    finally:
        exchange.close()

    trades = service.engine.journal.trades()
    trade = trades.loc[trades["symbol"] == "AAPL"].iloc[0]
    assert trade["exit_reason"] == "stop_loss"
    exit_time = pd.Timestamp(trade["exit_time"])
    assert minute < exit_time < minute + pd.Timedelta(minutes=1), "within the minute"
    asked = pd.Timestamp(closed_at["asked"])
    assert minute <= asked < exit_time == closed_at["filled"], "asked at a print, filled later"
    assert pd.Timestamp(closed_at["engine_bar"]) < minute, "before the minute's bar"
    assert float(trade["exit_price"]) < stop_price + 0.5
