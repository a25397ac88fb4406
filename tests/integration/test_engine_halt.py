"""The daily-loss halt, live: `tradewind trade` against the paper exchange across a
losing day and a restart. The session's baseline is the previous session's closing
equity (the exchange's `last_equity`, as Alpaca reports it), persisted; a restart keeps
the baseline and the halt; the next session starts from the day's close.

Real AAPL and MSFT bars from 2010-05-20: MSFT (05-26) and AAPL (06-01) are held into
06-04, a day that loses 0.58% (the limit is set to 0.3% so a real day trips it)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.engine_support import Engine
from tests.integration.exchange_support import (
    ADMIN_HEADERS,
    Exchange,
    sample_bars,
    wait_for,
    write_store,
)

pytestmark = pytest.mark.integration

LIMIT = "0.003"


@pytest.fixture
def exchange(tmp_path: Path) -> Iterator[Exchange]:
    bars = sample_bars(("AAPL", "MSFT"), start="2008-09-01", end="2010-07-30")
    write_store(tmp_path / "data", bars)
    running = Exchange(tmp_path, symbols="AAPL,MSFT", start="2010-05-20").start()
    try:
        yield running
    finally:
        running.close()


def last_equity(exchange: Exchange) -> float:
    import httpx

    account = httpx.get(exchange.url + "/v2/account", headers=ADMIN_HEADERS, timeout=10).json()
    return float(account["last_equity"])


def test_halt_trips_on_a_losing_day_and_survives_a_restart(exchange: Exchange) -> None:
    engine = Engine(exchange, env={"TRADEWIND_RISK__DAILY_LOSS_HALT_PCT": LIMIT}).start()
    try:
        equity_before: dict[str, float] = {}

        def halted() -> bool:
            status = engine.status()
            equity_before[status["session"]] = status["equity"]
            return bool(status["halted"])

        engine.advance_until(halted, "the daily-loss halt", limit=20)
        status = engine.status()
        assert status["session"] == "2010-06-04"
        assert status["baseline_source"] == "broker_last_equity"
        assert status["baseline_equity"] == pytest.approx(last_equity(exchange))
        assert status["baseline_equity"] == pytest.approx(equity_before["2010-06-03"])
        assert status["day_pnl_pct"] <= -float(LIMIT)
        assert "DAILY-LOSS HALT for 2010-06-04" in engine.output()
        alerts = engine.get("/api/alerts")
        assert any(a["key"] == "halt:2010-06-04" and a["priority"] == "critical" for a in alerts)
        baseline, reason = status["baseline_equity"], status["halt_reason"]

        # A restart keeps the session's baseline and its halt, before any new bar.
        assert engine.stop() == 0
        engine.start()
        wait_for(lambda: engine.status()["session"] == "2010-06-04", "the resumed session", 30)
        again = engine.status()
        assert again["halted"] is True
        assert again["state"] == "halted"
        assert again["halt_reason"] == reason
        assert again["baseline_equity"] == pytest.approx(baseline)

        # The next session measures from 06-04's close.
        close_of_day = again["equity"]
        engine.advance()
        following = engine.status()
        assert following["session"] == "2010-06-07"
        assert following["baseline_equity"] == pytest.approx(close_of_day)
        assert following["baseline_source"] == "broker_last_equity"
    finally:
        engine.close()
