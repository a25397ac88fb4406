"""One engine per journal and account, and no position taken over silently: real
`tradewind trade` subprocesses against the `tradewind paper-exchange` subprocess.

- a second engine on the same journal, or on the same account with its own journal, is
  refused at start with one line naming the first engine's pid; once the first stops, a
  new one starts;
- a position the account holds outside the engine's symbols (here MSFT, bought by hand
  at the exchange) is refused by default, and with `foreign_positions=warn` it is named
  loudly and left alone: never adopted, never exited."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.engine_support import TOKEN, Engine
from tests.integration.exchange_support import (
    ADMIN_HEADERS,
    KEY,
    SECRET,
    Exchange,
    Process,
    exchange_env,
    sample_bars,
    write_store,
)

pytestmark = pytest.mark.integration

REPLAY_START = "2010-02-22"


@pytest.fixture
def exchange(tmp_path: Path) -> Iterator[Exchange]:
    write_store(
        tmp_path / "data", sample_bars(("AAPL", "MSFT"), start="2008-09-01", end="2010-04-30")
    )
    running = Exchange(tmp_path, symbols="AAPL,MSFT", start=REPLAY_START).start()
    try:
        yield running
    finally:
        running.close()


def refused_start(exchange: Exchange, name: str, symbols: str = "AAPL,MSFT",
                  **env: str) -> str:
    """A `tradewind trade` that must exit 2 at start; returns its stderr."""
    extra = {"ALPACA_API_KEY": KEY, "ALPACA_SECRET_KEY": SECRET,
             "TRADEWIND_API_TOKEN": TOKEN, **env}
    process = Process(
        ["trade", "--broker", "paper-exchange", "--exchange-url", exchange.url,
         "--symbols", symbols, "--poll-seconds", "0.05", "--no-feature-store",
         "--status-file", str(exchange.workdir / f"{name}.json"), "--api-port", "0"],
        exchange.workdir, exchange_env(exchange.workdir, **extra), name,
    )  # fmt: skip
    try:
        assert process.proc.wait(timeout=120) == 2, process.stderr()[-3000:]
        return process.stderr()
    finally:
        process.close()


def test_a_second_engine_on_the_same_journal_or_account_is_refused(exchange: Exchange) -> None:
    first = Engine(exchange).start()
    try:
        assert first.process is not None
        pid = first.process.proc.pid
        same_journal = refused_start(exchange, "second")
        assert f"another engine (pid {pid}) already trades the journal" in same_journal
        assert "Traceback" not in same_journal

        own_journal = refused_start(
            exchange, "third",
            TRADEWIND_PATHS__JOURNAL_URL=f"sqlite:///{exchange.workdir / 'other.db'}",
        )
        assert f"another engine (pid {pid}) already trades the account at {exchange.url}" in (
            own_journal
        )
        assert first.process.proc.poll() is None  # the first engine trades on
        assert first.stop() == 0
    finally:
        first.close()
    again = Engine(exchange).start()  # the lock went with the first engine
    try:
        assert again.status()["state"] == "running"
    finally:
        again.close()


def buy_by_hand(exchange: Exchange, symbol: str, qty: int) -> None:
    answer = httpx.post(
        exchange.url + "/v2/orders", headers=ADMIN_HEADERS, timeout=10,
        json={"symbol": symbol, "qty": str(qty), "side": "buy", "type": "market",
              "time_in_force": "day", "client_order_id": f"manual-{symbol}"},
    )  # fmt: skip
    answer.raise_for_status()
    exchange.advance(1)
    assert exchange.positions() == {symbol: qty}


def test_a_position_outside_the_engines_symbols_is_refused_or_left_alone(
    exchange: Exchange,
) -> None:
    buy_by_hand(exchange, "MSFT", 7)

    refusal = refused_start(exchange, "refused", symbols="AAPL")
    assert "the account holds MSFT 7 outside the engine's symbols (AAPL)" in refusal
    assert "FOREIGN_POSITIONS=warn" in refusal

    engine = Engine(
        exchange, symbols="AAPL", env={"TRADEWIND_BROKER__FOREIGN_POSITIONS": "warn"}
    ).start()
    try:
        status = json.loads((exchange.workdir / "status.json").read_text())
        assert status["service"]["recovery"]["foreign"] == ["MSFT"]
        assert status["positions"] == []  # MSFT was not adopted
        assert engine.logs().count("the account holds MSFT 7 outside") == 1
        engine.advance(3)
        assert exchange.positions() == {"MSFT": 7}  # never exited
        assert [o["client_order_id"] for o in exchange.orders() if o["symbol"] == "MSFT"] == [
            "manual-MSFT"
        ]
        assert engine.stop() == 0
    finally:
        engine.close()
