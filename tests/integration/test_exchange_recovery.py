"""Recovery drills: `tradewind trade` runs as a real subprocess against the
`tradewind paper-exchange` subprocess and is killed with SIGKILL at several points
(after the decision before the submit; after the submit before the fill is journaled,
with the fill happening while it is down; right after a fill is journaled), then
restarted. Afterwards no fill is lost, no order exists twice at the exchange (counted by
client_order_id), and the journal's positions match the exchange's.

The kill points are armed with `TRADEWIND_CRASH_AT`, which makes the service SIGKILL
itself at that exact point; the exchange replays only when the test says so, so every
step is deterministic."""

from __future__ import annotations

import json
import signal
import sqlite3
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.exchange_support import (
    KEY,
    SECRET,
    Exchange,
    Process,
    exchange_env,
    sample_bars,
    wait_for,
    write_store,
)

pytestmark = pytest.mark.integration

REPLAY_START = "2010-02-22"  # AAPL enters on the 2010-02-26 signal, target hit 03-05


@pytest.fixture
def exchange(tmp_path: Path) -> Iterator[Exchange]:
    write_store(tmp_path / "data", sample_bars(("AAPL",), start="2008-09-01", end="2010-04-30"))
    running = Exchange(tmp_path, symbols="AAPL", start=REPLAY_START).start()
    try:
        yield running
    finally:
        running.close()


class Service:
    """`tradewind trade` against the exchange, as a subprocess."""

    def __init__(self, exchange: Exchange) -> None:
        self.exchange = exchange
        self.status_path = exchange.workdir / "status.json"
        self.process: Process | None = None
        self.runs = 0

    def start(self, crash_at: str | None = None, *, dies_at_start: bool = False) -> Service:
        self.runs += 1
        extra = {"ALPACA_API_KEY": KEY, "ALPACA_SECRET_KEY": SECRET}
        if crash_at:
            extra["TRADEWIND_CRASH_AT"] = crash_at
        self.status_path.unlink(missing_ok=True)
        self.process = Process(
            [
                "trade",
                "--broker",
                "paper-exchange",
                "--exchange-url",
                self.exchange.url,
                "--symbols",
                "AAPL",
                "--strategy",
                "momentum",
                "--poll-seconds",
                "0.05",
                "--no-feature-store",
                "--status-file",
                str(self.status_path),
            ],
            self.exchange.workdir,
            exchange_env(self.exchange.workdir, **extra),
            f"trade-{self.runs}",
        )
        if dies_at_start:  # the armed point is reached during recovery
            assert self.process.proc.wait(timeout=60) == -signal.SIGKILL
            return self
        wait_for(lambda: self.status() is not None or self.dead(), "the service to start", 60)
        assert not self.dead(), self.process.stderr()[-3000:]
        return self

    def status(self) -> dict[str, Any] | None:
        try:
            result: dict[str, Any] = json.loads(self.status_path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        return result

    def dead(self) -> bool:
        return self.process is not None and self.process.proc.poll() is not None

    def caught_up(self, timestamp: str) -> bool:
        status = self.status()
        return status is not None and status["service"]["last_bar"] == timestamp

    def advance(self) -> str:
        """One bar at the exchange; wait until the service has traded it (or died)."""
        moment: str = self.exchange.advance(1)["timestamps"][0]
        wait_for(lambda: self.caught_up(moment) or self.dead(), f"the service at {moment}", 30)
        return moment

    def advance_until_dead(self, limit: int = 10) -> None:
        for _ in range(limit):
            self.advance()
            if self.dead():
                assert self.process is not None
                assert self.process.proc.wait(timeout=10) == -signal.SIGKILL
                return
        raise AssertionError("the armed crash point was never reached")

    def stop(self) -> int:
        assert self.process is not None
        code = self.process.terminate()
        self.process.close()
        return code


@pytest.fixture
def service(exchange: Exchange) -> Iterator[Service]:
    running = Service(exchange)
    try:
        yield running
    finally:
        if running.process is not None:
            running.process.close()


def journal(exchange: Exchange, query: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(exchange.workdir / "data" / "journal.db") as db:
        return db.execute(query).fetchall()


def assert_consistent(exchange: Exchange) -> None:
    """No order twice at the exchange, every exchange fill journaled once, positions equal."""
    orders = exchange.orders(nested="false")
    counts = Counter(o["client_order_id"].split("~r")[0] for o in orders)
    assert all(n == 1 for n in counts.values()), counts
    filled_at_exchange = {
        o["client_order_id"].split("~r")[0]: float(o["filled_qty"])
        for o in orders
        if float(o["filled_qty"]) > 0
    }
    journaled = dict(journal(exchange, "SELECT client_order_id, SUM(qty) FROM fills GROUP BY 1"))
    assert journaled == filled_at_exchange
    fill_ids = [row[0] for row in journal(exchange, "SELECT fill_id FROM fills")]
    assert len(fill_ids) == len(set(fill_ids))
    positions = {
        symbol: qty
        for symbol, qty in journal(exchange, "SELECT symbol, qty FROM positions")
        if abs(qty) > 1e-9
    }
    assert positions == exchange.positions()


def test_kill_after_decision_before_submit(exchange: Exchange, service: Service) -> None:
    service.start(crash_at="before_submit").advance_until_dead()
    decided = journal(exchange, "SELECT client_order_id FROM decisions WHERE action='entered'")
    assert len(decided) == 1
    entry_id = decided[0][0]
    assert exchange.orders() == []  # it never reached the exchange

    service.start()
    status = service.status()
    assert status is not None
    assert status["service"]["recovery"]["vanished"] == [entry_id]
    assert journal(exchange, f"SELECT status FROM orders WHERE client_order_id='{entry_id}'") == [
        ("canceled",)
    ]
    service.advance()
    assert not service.dead()
    assert exchange.orders() == []
    assert_consistent(exchange)
    assert service.stop() == 0


def test_kill_after_submit_and_after_fill(exchange: Exchange, service: Service) -> None:
    # 1. Killed right after the submit: the order is at the exchange, its answer is not
    #    in the journal. The entry then fills while the service is down.
    service.start(crash_at="after_submit").advance_until_dead()
    orders = exchange.orders()
    assert len(orders) == 1
    entry_id = orders[0]["client_order_id"]
    assert journal(exchange, "SELECT COUNT(*) FROM fills") == [(0,)]
    assert journal(exchange, f"SELECT status FROM orders WHERE client_order_id='{entry_id}'") == [
        ("new",)  # the intent, written before the submit
    ]
    exchange.advance(1)
    assert exchange.positions() != {}

    # 2. Restarted, it finds the missed fill and applies it, and is killed again right
    #    after journaling it (during its start-up recovery).
    service.start(crash_at="after_fill", dies_at_start=True)
    assert journal(exchange, "SELECT client_order_id FROM fills") == [(entry_id,)]

    # 3. A clean restart adopts the position with its stop leg and trades on to the exit.
    service.start()
    status = service.status()
    assert status is not None
    assert status["service"]["recovery"]["missed_fills"] == []
    assert status["service"]["recovery"]["adopted"] == ["AAPL"]
    assert [p["symbol"] for p in status["positions"]] == ["AAPL"]
    assert status["positions"][0]["stop_price"] is not None  # its stop leg re-attached
    assert_consistent(exchange)
    for _ in range(6):
        service.advance()
        if journal(exchange, "SELECT COUNT(*) FROM trades") == [(1,)]:
            break
    trades = journal(exchange, "SELECT trade_id, exit_reason FROM trades")
    assert trades == [(entry_id, "take_profit")]
    assert_consistent(exchange)
    assert exchange.positions() == {}
    assert service.stop() == 0
    final = service.status()
    assert final is not None
    assert final["service"]["state"] == "stopped"


def test_exit_filled_while_the_service_was_down(exchange: Exchange, service: Service) -> None:
    # Killed right after journaling the entry fill, in normal trading.
    service.start(crash_at="after_fill").advance_until_dead()
    fills = journal(exchange, "SELECT client_order_id FROM fills")
    assert len(fills) == 1
    entry_id = fills[0][0]
    # While it is down the market moves on and the take-profit leg fills.
    for _ in range(8):
        exchange.advance(1)
        if exchange.positions() == {}:
            break
    assert exchange.positions() == {}

    # The restart rebuilds the journaled position and applies the missed exit fill: the
    # trade is closed in the journal, exactly once.
    service.start()
    status = service.status()
    assert status is not None
    recovery = status["service"]["recovery"]
    assert recovery["rebuilt_positions"] == ["AAPL"]
    assert recovery["missed_fills"] == [f"{entry_id}-tp:{fills_qty(exchange, entry_id)}"]
    assert status["positions"] == []
    assert journal(exchange, "SELECT trade_id, exit_reason FROM trades") == [
        (entry_id, "take_profit")
    ]
    assert_consistent(exchange)
    assert service.stop() == 0


def fills_qty(exchange: Exchange, client_order_id: str) -> str:
    qty = journal(exchange, f"SELECT qty FROM fills WHERE client_order_id='{client_order_id}'")
    return f"{qty[0][0]:g}"
