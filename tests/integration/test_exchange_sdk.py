"""The unmodified alpaca-py SDK (TradingClient + TradingStream) trading against the local
paper exchange, started as a real `tradewind paper-exchange` subprocess: bracket order →
fill → position → trailing stop replaced → take-profit fill, every step also reported on
the `trade_updates` websocket."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderClass, OrderSide, QueryOrderStatus, TimeInForce
from alpaca.trading.models import TradeUpdate
from alpaca.trading.requests import (
    GetOrdersRequest,
    MarketOrderRequest,
    ReplaceOrderRequest,
    StopLossRequest,
    TakeProfitRequest,
)
from alpaca.trading.stream import TradingStream

from tests.integration.exchange_support import (
    KEY,
    SECRET,
    Exchange,
    sample_bars,
    wait_for,
    write_store,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def exchange(tmp_path: Path) -> Iterator[tuple[Exchange, pd.DataFrame]]:
    stored = write_store(tmp_path / "data", sample_bars())
    running = Exchange(tmp_path).start()
    try:
        yield running, stored
    finally:
        running.close()


def plan_prices(aapl: pd.DataFrame) -> tuple[float, float, float, int]:
    """From the real bars: the entry fills at bar 1's open; pick a take-profit above bar
    1's high that a later bar reaches (bar j), a stop far below, and a trailing stop that
    is higher but still below every low up to bar j."""
    entry_bar = aapl.iloc[1]
    take_profit = round(float(entry_bar["high"]) * 1.002, 2)
    later = aapl.iloc[2:]
    reached = later.index[later["high"] >= take_profit]
    assert len(reached) > 0, "sample data has no bar reaching the take-profit"
    j = int(aapl.index.get_loc(reached[0]))
    lowest = float(aapl.iloc[1 : j + 1]["low"].min())
    stop_loss = round(lowest * 0.90, 2)
    trailing = round(float(aapl.iloc[2 : j + 1]["low"].min()) * 0.995, 2)
    assert stop_loss < trailing
    return take_profit, stop_loss, trailing, j


def test_bracket_trailing_stop_and_take_profit_through_alpaca_py(
    exchange: tuple[Exchange, pd.DataFrame],
) -> None:
    venue, bars = exchange
    aapl = bars[bars["symbol"] == "AAPL"].reset_index(drop=True)
    take_profit, stop_loss, trailing, target_bar = plan_prices(aapl)

    events: list[TradeUpdate] = []
    stream = TradingStream(KEY, SECRET, url_override=venue.stream_url)

    async def on_update(update: TradeUpdate) -> None:
        events.append(update)

    stream.subscribe_trade_updates(on_update)
    threading.Thread(target=stream.run, daemon=True).start()
    client = TradingClient(KEY, SECRET, paper=True, url_override=venue.url)
    try:
        wait_for(lambda: venue.state()["listeners"] == 1, "the stream to listen")
        venue.advance(1)  # bar 0: the decision bar
        entry = client.submit_order(
            MarketOrderRequest(
                symbol="AAPL",
                qty=10,
                side=OrderSide.BUY,
                time_in_force=TimeInForce.DAY,
                order_class=OrderClass.BRACKET,
                client_order_id="sdk-entry-1",
                take_profit=TakeProfitRequest(limit_price=take_profit),
                stop_loss=StopLossRequest(stop_price=stop_loss),
            )
        )
        assert entry.status == "new"
        assert entry.legs is not None
        assert len(entry.legs) == 2
        wait_for(lambda: any(e.event == "new" for e in events), "the 'new' event")

        venue.advance(1)  # bar 1: the entry fills at the open
        wait_for(lambda: any(e.event == "fill" for e in events), "the entry fill event")
        filled = client.get_order_by_client_id("sdk-entry-1")
        assert filled.status == "filled"
        assert float(filled.filled_avg_price or 0) == pytest.approx(
            float(aapl.iloc[1]["open"]) * (1 + 2 / 10_000)
        )
        position = client.get_open_position("AAPL")
        assert float(position.qty) == 10

        stop_leg = client.get_order_by_client_id("sdk-entry-1-sl")
        moved = client.replace_order_by_id(stop_leg.id, ReplaceOrderRequest(stop_price=trailing))
        assert float(moved.stop_price or 0) == trailing
        wait_for(lambda: any(e.event == "replaced" for e in events), "the 'replaced' event")

        venue.advance(target_bar - 1)  # bars 2..j: the take-profit is reached at bar j
        wait_for(
            lambda: any(
                e.event == "fill" and e.order.client_order_id == "sdk-entry-1-tp" for e in events
            ),
            "the take-profit fill event",
        )
        wait_for(
            lambda: any(
                e.event == "canceled" and e.order.client_order_id.startswith("sdk-entry-1-sl")
                for e in events
            ),
            "the stop leg canceled by its OCO sibling",
        )
        assert client.get_all_positions() == []
        exit_leg = client.get_order_by_client_id("sdk-entry-1-tp")
        assert exit_leg.status == "filled"
        assert float(exit_leg.filled_avg_price or 0) >= take_profit
        closed = client.get_orders(GetOrdersRequest(status=QueryOrderStatus.CLOSED, nested=True))
        assert [o.client_order_id for o in closed] == ["sdk-entry-1"]
        account = client.get_account()
        profit = (float(exit_leg.filled_avg_price or 0) - float(filled.filled_avg_price or 0)) * 10
        assert float(account.cash or 0) == pytest.approx(100_000 + profit)
    finally:
        stream.stop()


def test_same_server_answers_market_data(exchange: tuple[Exchange, pd.DataFrame]) -> None:
    from alpaca.data.historical import StockHistoricalDataClient
    from alpaca.data.requests import StockBarsRequest
    from alpaca.data.timeframe import TimeFrame

    venue, bars = exchange
    aapl = bars[bars["symbol"] == "AAPL"]
    venue.advance(len(aapl))  # the exchange serves no bar after its own clock
    client = StockHistoricalDataClient(KEY, SECRET, url_override=venue.url)
    answer = client.get_stock_bars(
        StockBarsRequest(
            symbol_or_symbols=["AAPL"], timeframe=TimeFrame.Day, start=bars["timestamp"].min()
        )
    )
    served = answer.data["AAPL"]  # type: ignore[union-attr]
    assert len(served) == len(aapl)
    assert served[0].open == aapl["open"].iloc[0]
