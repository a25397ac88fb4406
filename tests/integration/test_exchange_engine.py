"""The trading engine, wired exactly as `tradewind trade` wires it (AlpacaBroker on the
real alpaca-py SDK, Alpaca market data, rolling features, rules client), trading against
the paper exchange subprocess on real AAPL bars: a momentum signal → bracket order →
fill → position → the ATR trailing stop replaced at the exchange → take-profit fill → a
closed trade in the journal, handed to the trade sink and stored in the feature store's
trade collection."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from core.settings import AlpacaCredentials, load_settings
from features.store import FeatureStore
from pipelines.commands.trading import build_trading_service
from tests.integration.exchange_support import (
    KEY,
    SECRET,
    Exchange,
    isolate_settings,
    sample_bars,
    write_store,
)
from trading.closed_trades import ClosedTradeRecord
from trading.service import ServiceConfig, TradingService

pytestmark = pytest.mark.integration

# AAPL, early 2010: the EMA crossover of 2010-02-26 enters at the 03-01 open; the trailing
# stop tightens on the following bars and the 3×ATR target is reached on 03-05.
REPLAY_START = "2010-02-22"
SIGNAL_DAY = "2010-02-26"


@pytest.fixture
def exchange(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Exchange]:
    isolate_settings(monkeypatch, tmp_path)
    write_store(tmp_path / "data", sample_bars(("AAPL",), start="2008-09-01", end="2010-04-30"))
    running = Exchange(tmp_path, symbols="AAPL", start=REPLAY_START).start()
    try:
        yield running
    finally:
        running.close()


def build(exchange: Exchange) -> tuple[TradingService, list[ClosedTradeRecord]]:
    service = build_trading_service(
        load_settings(),
        AlpacaCredentials(ALPACA_API_KEY=KEY, ALPACA_SECRET_KEY=SECRET),
        exchange.url,
        "momentum",
        ServiceConfig(symbols=("AAPL",), status_path=exchange.workdir / "status.json"),
        feature_store=True,
    )
    sunk: list[ClosedTradeRecord] = []
    to_store = service.engine.trade_sink
    assert to_store is not None

    def sink(record: ClosedTradeRecord) -> None:
        sunk.append(record)
        to_store(record)

    service.engine.trade_sink = sink
    return service, sunk


def test_engine_trades_a_bracket_with_trailing_stop_to_take_profit(exchange: Exchange) -> None:
    service, sunk = build(exchange)
    try:
        service.start()
        for _ in range(12):
            exchange.advance(1)
            service.step()
            if service.engine.stats.closed_trades:
                break
        journal = service.engine.journal
        trades = journal.trades()
        assert len(trades) == 1, trades
        trade = trades.iloc[0]
        assert trade["symbol"] == "AAPL"
        assert trade["exit_reason"] == "take_profit"
        assert trade["pnl"] > 0
        entry_id = str(trade["trade_id"])
        assert entry_id.startswith("tw-")
        decisions = journal.decisions()
        entered = decisions[decisions["action"] == "entered"]
        assert entered["client_order_id"].tolist() == [entry_id]
        assert str(entered["signal_time"].iloc[0])[:10] == SIGNAL_DAY

        # At the exchange: one entry, its two legs, the stop replaced (trailing), the
        # take-profit filled and the stop canceled by OCO; nothing left open.
        orders = {o["client_order_id"]: o for o in exchange.orders(nested="false")}
        assert sorted(orders) == [
            entry_id,
            f"{entry_id}-sl~r{service.engine.stats.stop_moves}",
            f"{entry_id}-tp",
        ]
        assert service.engine.stats.stop_moves >= 1
        stop_leg = orders[f"{entry_id}-sl~r{service.engine.stats.stop_moves}"]
        assert stop_leg["status"] == "canceled"
        entry_order = orders[entry_id]
        assert orders[f"{entry_id}-tp"]["status"] == "filled"
        assert exchange.positions() == {}

        # The journal saw every fill once, at the exchange's prices.
        fills = journal.fills()
        assert sorted(fills["client_order_id"]) == [entry_id, f"{entry_id}-tp"]
        assert trade["entry_price"] == pytest.approx(float(entry_order["filled_avg_price"]))
        assert trade["exit_price"] == pytest.approx(
            float(orders[f"{entry_id}-tp"]["filled_avg_price"])
        )
        journal_stop = journal.frame("orders").set_index("client_order_id").loc[f"{entry_id}-sl"]
        assert journal_stop["stop_price"] == pytest.approx(float(stop_leg["stop_price"]))
        assert journal_stop["stop_price"] > entered["stop_loss_price"].iloc[0]

        # And the closed trade went to the trade sink with its entry features.
        assert [record.trade.trade_id for record in sunk] == [entry_id]
        assert sunk[0].entry_features["atr_14"] > 0
        stored = FeatureStore(load_settings().paths).read_trades()
        assert stored["trade_id"].tolist() == [entry_id]
        assert stored["exit_reason"].tolist() == ["take_profit"]
        assert stored["atr_14"].iloc[0] == pytest.approx(sunk[0].entry_features["atr_14"])
        status = service.status()
        assert status["closed_trades"] == 1
        assert status["positions"] == []
    finally:
        service.broker.close()
