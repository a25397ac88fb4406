"""One conformance suite for the `Broker` port, run over every implementation: the
in-process `SimulatedBroker` (its matching engine driven bar by bar) and `AlpacaBroker`
through alpaca-py against the local paper exchange (a real `tradewind paper-exchange`
subprocess, advanced through its admin API). Both replay the same real daily bars
(bokeh-sampledata AAPL and MSFT, early 2010); each test writes what a broker must do once.

An order placed on one bar fills from the next bar's open at the earliest; a bracket's
exit legs are `<entry>-tp` and `<entry>-sl`; submitting a `client_order_id` twice never
makes a second order; the updates stream reports every fill once."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from core.clock import ReplayClock
from core.settings import AlpacaCredentials, load_settings
from core.types import Bar, BracketLeg, Order, OrderClass, OrderStatus, OrderType, Side
from tests.integration.exchange_support import KEY, SECRET, Exchange, sample_bars, write_store
from trading.adapters.alpaca.execution import AlpacaBroker, AlpacaBrokerConfig
from trading.adapters.simulated import MatchingEngine, SimulatedBroker, SimulatedExchangeConfig
from trading.ports import Broker, OrderUpdate

pytestmark = pytest.mark.integration

ENTRY = "conformance-entry"


@dataclass
class Venue:
    broker: Broker
    advance: Callable[[], None]  # one more bar of every symbol
    bars: pd.DataFrame
    stop: Callable[[], None]


def simulated(bars: pd.DataFrame) -> Venue:
    stamps = sorted(bars["timestamp"].unique())
    clock = ReplayClock(pd.Timestamp(stamps[0]).to_pydatetime())
    settings = load_settings()
    config = SimulatedExchangeConfig.from_settings(
        settings.broker, allow_short=settings.risk.allow_short
    )
    matching = MatchingEngine(config, clock)
    pending = iter(stamps)

    def advance() -> None:
        moment = pd.Timestamp(next(pending))
        clock.advance_to(moment.to_pydatetime())
        for row in bars[bars["timestamp"] == moment].itertuples(index=False):
            matching.on_bar(Bar(row.symbol, moment.to_pydatetime(), row.open, row.high,
                                row.low, row.close, row.volume))  # fmt: skip

    return Venue(SimulatedBroker(matching), advance, bars, lambda: None)


def paper_exchange(bars: pd.DataFrame, workdir: Path) -> Venue:
    stored = write_store(workdir / "data", bars)
    exchange = Exchange(workdir).start()
    broker = AlpacaBroker(
        AlpacaBrokerConfig(url_override=exchange.url),
        AlpacaCredentials(ALPACA_API_KEY=KEY, ALPACA_SECRET_KEY=SECRET),
    )

    def stop() -> None:
        broker.close()
        exchange.close()

    return Venue(broker, lambda: exchange.advance(1), stored, stop)


@pytest.fixture(params=["simulated", "alpaca-paper-exchange"])
def venue(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Venue]:
    bars = sample_bars()
    running = simulated(bars) if request.param == "simulated" else paper_exchange(bars, tmp_path)
    running.advance()  # the first bar: the market has prices
    try:
        yield running
    finally:
        running.stop()


def bar_open(venue: Venue, symbol: str, index: int) -> float:
    rows = venue.bars[venue.bars["symbol"] == symbol].reset_index(drop=True)
    return float(rows.loc[index, "open"])


def bracket(qty: float = 10) -> Order:
    return Order(
        ENTRY, "MSFT", Side.BUY, qty, order_class=OrderClass.BRACKET,
        take_profit_price=60.0, stop_loss_price=20.0,
    )  # fmt: skip


def test_a_fresh_account_is_flat(venue: Venue) -> None:
    broker = venue.broker
    account = broker.account()
    assert account.equity == account.cash > 0
    assert account.buying_power > 0
    assert broker.positions() == []
    assert broker.open_orders() == []
    assert broker.get_order("never-sent") is None
    assert broker.close_position("AAPL") is None


def test_submitting_the_same_order_twice_makes_one_order(venue: Venue) -> None:
    first = venue.broker.submit(bracket())
    again = venue.broker.submit(bracket())
    assert again.client_order_id == first.client_order_id == ENTRY
    assert again.broker_order_id == first.broker_order_id
    assert first.status.is_open
    assert [o.client_order_id for o in venue.broker.open_orders() if o.symbol == "MSFT"].count(
        ENTRY
    ) == 1


def test_a_bracket_fills_on_the_next_bar_and_rests_its_named_legs(venue: Venue) -> None:
    broker = venue.broker
    broker.submit(bracket())
    assert broker.positions() == []  # never on the bar it was placed on
    venue.advance()
    (position,) = broker.positions()
    assert (position.symbol, position.qty) == ("MSFT", 10)
    assert position.avg_entry_price == pytest.approx(bar_open(venue, "MSFT", 1), rel=1e-3)
    entry = broker.get_order(ENTRY)
    assert entry is not None
    assert entry.status is OrderStatus.FILLED
    assert entry.filled_qty == 10
    legs = {o.client_order_id: o for o in broker.open_orders()}
    stop_id, target_id = BracketLeg.STOP_LOSS.leg_id(ENTRY), BracketLeg.TAKE_PROFIT.leg_id(ENTRY)
    assert set(legs) == {stop_id, target_id}
    assert legs[stop_id].type is OrderType.STOP
    assert legs[stop_id].stop_price == 20.0
    assert legs[target_id].type is OrderType.LIMIT
    assert legs[target_id].limit_price == 60.0
    assert {leg.parent_client_order_id for leg in legs.values()} == {ENTRY}
    assert {leg.side for leg in legs.values()} == {Side.SELL}


def test_a_stop_leg_moves_and_keeps_its_name(venue: Venue) -> None:
    broker = venue.broker
    broker.submit(bracket())
    venue.advance()
    stop_id = BracketLeg.STOP_LOSS.leg_id(ENTRY)
    moved = broker.replace_stop(stop_id, 25.0)
    assert (moved.client_order_id, moved.stop_price) == (stop_id, 25.0)
    current = broker.get_order(stop_id)
    assert current is not None
    assert current.stop_price == 25.0
    assert current.status.is_open


def test_closing_cancels_the_legs_and_flattens_at_the_next_bar(venue: Venue) -> None:
    broker = venue.broker
    broker.submit(bracket())
    venue.advance()
    closing = broker.close_position("MSFT")
    assert closing is not None
    assert (closing.side, closing.qty) == (Side.SELL, 10)
    assert {o.client_order_id for o in broker.open_orders()} == {closing.client_order_id}
    venue.advance()
    assert broker.positions() == []
    assert broker.open_orders() == []
    stop_leg = broker.get_order(BracketLeg.STOP_LOSS.leg_id(ENTRY))
    assert stop_leg is not None
    assert stop_leg.status is OrderStatus.CANCELED


def test_a_resting_order_is_canceled(venue: Venue) -> None:
    broker = venue.broker
    bid = broker.submit(
        Order("low-bid", "AAPL", Side.BUY, 1, type=OrderType.LIMIT, limit_price=1.0)
    )
    assert bid.status.is_open
    venue.advance()
    assert [o.client_order_id for o in broker.open_orders()] == ["low-bid"]  # not reached
    broker.cancel("low-bid")
    canceled = broker.get_order("low-bid")
    assert canceled is not None
    assert canceled.status is OrderStatus.CANCELED
    assert broker.open_orders() == []


def test_the_updates_stream_reports_each_fill_once(venue: Venue) -> None:
    async def scenario() -> list[OrderUpdate]:
        stream = venue.broker.updates()
        seen: list[OrderUpdate] = []

        async def until_filled() -> None:
            async for update in stream:
                seen.append(update)
                if update.fill is not None and update.order.client_order_id == "market-buy":
                    return

        waiting = asyncio.ensure_future(until_filled())
        # One scheduling turn (no wall-clock wait): the stream subscribes, and takes its
        # baseline, before the order exists.
        await asyncio.sleep(0)

        def trade() -> None:
            venue.broker.submit(Order("market-buy", "AAPL", Side.BUY, 3))
            venue.advance()

        await asyncio.to_thread(trade)
        await asyncio.wait_for(waiting, timeout=30)
        await stream.aclose()  # type: ignore[attr-defined]
        return seen

    updates = asyncio.run(scenario())
    fills = [u.fill for u in updates if u.fill is not None]
    assert len(fills) == 1
    (fill,) = fills
    assert (fill.client_order_id, fill.symbol, fill.side) == ("market-buy", "AAPL", Side.BUY)
    assert fill.qty == 3
    assert fill.price == pytest.approx(bar_open(venue, "AAPL", 1), rel=1e-3)
    assert updates[-1].status is OrderStatus.FILLED
