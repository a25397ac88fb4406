"""The engine as a service its users watch and steer: `tradewind trade` (a real
subprocess against the `tradewind paper-exchange` subprocess) serves its API and live
dashboard; Debian's Chromium, driven by Playwright, loads the page and uses its controls;
`tradewind ctl` and `tradewind mcp` (answered through the `mcp` SDK's own client) use the
same API and token.

The bars (real AAPL and MSFT daily bars, bokeh-sampledata) give: AAPL's momentum entry
on the 2010-02-26 signal (filled on 03-01's open), and MSFT's on 03-10."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.engine_support import TOKEN, Engine, browser_page
from tests.integration.exchange_support import (
    CLI,
    Exchange,
    exchange_env,
    sample_bars,
    wait_for,
    write_store,
)

pytestmark = pytest.mark.integration

REPLAY_START = "2010-02-22"


@pytest.fixture
def exchange(tmp_path: Path) -> Iterator[Exchange]:
    bars = sample_bars(("AAPL", "MSFT"), start="2008-09-01", end="2010-04-30")
    write_store(tmp_path / "data", bars)
    running = Exchange(tmp_path, symbols="AAPL,MSFT", start=REPLAY_START).start()
    try:
        yield running
    finally:
        running.close()


@pytest.fixture
def engine(exchange: Exchange) -> Iterator[Engine]:
    running = Engine(exchange).start()
    try:
        yield running
    finally:
        running.close()


@pytest.fixture(scope="module")
def shared_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """One engine for the tests that leave it as they found it (running, not paused)."""
    workdir = tmp_path_factory.mktemp("shared-engine")
    bars = sample_bars(("AAPL", "MSFT"), start="2008-09-01", end="2010-04-30")
    write_store(workdir / "data", bars)
    exchange = Exchange(workdir, symbols="AAPL,MSFT", start=REPLAY_START).start()
    running = Engine(exchange).start()
    try:
        yield running
    finally:
        running.close()
        exchange.close()


@pytest.fixture
def running_engine(shared_engine: Engine) -> Engine:
    """The shared engine, with new entries allowed (whatever a test before did)."""
    assert shared_engine.post("/api/resume").status_code == 200
    return shared_engine


def journal(exchange: Exchange, query: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(exchange.workdir / "data" / "journal.db") as db:
        return db.execute(query).fetchall()


def test_dashboard_position_flatten_pause_and_the_refused_signal(
    engine: Engine, exchange: Exchange
) -> None:
    with browser_page() as page:
        page.goto(engine.url + "/")
        page.wait_for_function("document.getElementById('state').textContent === 'running'")
        assert "fixed rules" in page.text_content("#decides")
        assert page.locator("#equity-chart canvas").count() == 1  # the vendored chart drew

        # A position appears on the page after bars advance (no reload: the page updates).
        engine.advance_until(lambda: exchange.positions() != {}, "AAPL's entry fill", 10)
        started = time.monotonic()
        page.wait_for_selector("#positions tr[data-symbol='AAPL']", timeout=5_000)
        update_seconds = time.monotonic() - started
        row = page.text_content("#positions tr[data-symbol='AAPL']") or ""
        assert "momentum" in row

        # Flatten, confirmed in the dialog with the token: nothing at the exchange after
        # the close's market order fills on the next bar.
        page.click("[data-testid=flatten]")
        page.wait_for_selector("#confirm[open]")
        page.fill("#confirm-token", TOKEN)
        page.click("#confirm-ok")
        page.wait_for_function(
            "document.getElementById('control-result').textContent.startsWith('flatten: done')"
        )
        engine.advance()
        assert exchange.positions() == {}
        assert [o for o in exchange.orders(status="open")] == []
        page.wait_for_selector("#positions tr[data-symbol='AAPL']", state="detached")

        # Pause: a cancelled dialog does nothing; a confirmed one pauses (token kept).
        page.click("[data-testid=pause]")
        page.click("#confirm-cancel")
        assert engine.status()["paused"] is False
        page.click("[data-testid=pause]")
        page.click("#confirm-ok")
        page.wait_for_function("document.getElementById('state').textContent === 'paused'")
        assert engine.status()["state"] == "paused"

        # The next signal (MSFT, 03-10) is refused with the reason `paused`.
        engine.advance_until(
            lambda: any(d["reason"] == "paused" for d in engine.get("/api/decisions")),
            "a refusal while paused",
        )
        refused = [d for d in engine.get("/api/decisions") if d["reason"] == "paused"]
        assert refused[0]["symbol"] == "MSFT"
        assert journal(exchange, "SELECT rule FROM risk_rejections") == [("paused",)]
        page.wait_for_selector("#decisions tr[data-reason='paused']", timeout=5_000)

    # Every control action is journaled: what, when, from where, with what outcome.
    actions = engine.get("/api/controls")
    assert [(a["action"], a["outcome"]) for a in actions] == [
        ("pause", "done"), ("flatten", "done")
    ]
    assert all(a["origin"].startswith("dashboard@127.0.0.1:") for a in actions)
    assert update_seconds < 2.5, update_seconds
    closed = engine.get("/api/trades")
    assert closed[0]["exit_reason"] == "flatten"
    assert "EXIT AAPL" in engine.output()
    assert "CONTROL flatten" in engine.output()


def test_token_rules_and_repeatable_controls(running_engine: Engine) -> None:
    engine = running_engine
    # Reads are open on loopback; every POST needs the token.
    assert engine.status()["state"] == "running"
    for path in ("/api/pause", "/api/resume", "/api/flatten", "/api/orders/cancel",
                 "/api/positions/AAPL/close"):  # fmt: skip
        assert engine.post(path, token=None).status_code == 401, path
        assert engine.post(path, token="wrong-token").status_code == 401, path
    assert engine.status()["paused"] is False
    # Strict validation: unknown fields and malformed symbols are refused.
    assert engine.post("/api/pause", unexpected=True).status_code == 422
    assert engine.post("/api/positions/not a symbol!/close").status_code in (404, 422)
    assert engine.post("/api/positions/IBM/close").status_code == 404  # nothing held
    # Safe to repeat: the second pause and the second flatten change nothing.
    assert engine.post("/api/pause", reason="test").json()["outcome"] == "done"
    assert engine.post("/api/pause").json()["outcome"] == "already"
    assert engine.post("/api/flatten").json()["outcome"] == "already"
    assert engine.post("/api/resume").json()["outcome"] == "done"
    assert engine.status()["paused"] is False
    # The OpenAPI spec and the metrics are served.
    spec = engine.get("/openapi.json")
    assert {"/api/status", "/api/pause", "/api/positions/{symbol}/close"} <= set(spec["paths"])
    metrics = engine._http.get(engine.url + "/metrics").text
    assert "tradewind_engine_equity" in metrics
    assert "tradewind_engine_paused 0.0" in metrics
    csv_text = engine._http.get(engine.url + "/api/trades", params={"format": "csv"}).text
    assert csv_text.startswith("trade_id,symbol,side")
    # The token never reaches a log, the terminal or the alerts.
    assert TOKEN not in engine.logs()
    alerts = engine.exchange.workdir / "data" / "engine" / "alerts.jsonl"
    assert not alerts.exists() or TOKEN not in alerts.read_text()


def test_refuses_to_listen_beyond_loopback_without_a_token(exchange: Exchange) -> None:
    engine = Engine(exchange, token=None, args=("--api-host", "0.0.0.0"))
    try:
        with pytest.raises(AssertionError):
            engine.start()
        assert engine.process is not None
        assert engine.process.proc.wait(timeout=30) == 2
        assert "beyond loopback" in engine.process.stderr()
    finally:
        engine.close()


def test_ctl_latency_and_reconnects(running_engine: Engine) -> None:
    import subprocess


    engine, exchange = running_engine, running_engine.exchange
    env = exchange_env(exchange.workdir, TRADEWIND_API_TOKEN=TOKEN)

    def ctl(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-c", CLI, "ctl", *args], cwd=exchange.workdir, env=env,
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stdout

    # ctl finds the engine by the address it wrote, with no --url.
    assert json.loads(ctl("status"))["state"] == "running"
    assert ctl("pause").startswith("pause: done")
    assert engine.status()["state"] == "paused"
    assert engine.post("/api/resume").json()["outcome"] == "done"
    # Status answers quickly while the engine trades.
    timings = []
    for _ in range(20):
        started = time.perf_counter()
        engine.status()
        timings.append(time.perf_counter() - started)
    timings.sort()
    assert timings[len(timings) // 2] < 0.25, timings
    wait_for(lambda: engine.status()["heartbeat_age_seconds"] < 5, "a fresh heartbeat")

    # A dropped order-update stream reconnects, and says so (terminal, alert, metric).
    exchange.drop_streams(refuse_seconds=0.5)
    wait_for(
        lambda: any(a["key"] == "stream:reconnect" for a in engine.get("/api/alerts")),
        "the reconnect alert",
        timeout=60,
    )
    assert "order-update stream reconnected" in engine.output()
    metrics = engine._http.get(engine.url + "/metrics").text
    assert "tradewind_engine_stream_reconnects_total" in metrics


def payload(result: Any) -> Any:
    """A tool's answer: its structured content, else its text as JSON."""
    if result.structured_content is not None:
        content = result.structured_content
        return content.get("result", content) if isinstance(content, dict) else content
    return json.loads(result.content[0].text)


def test_mcp_tools_read_and_steer_with_confirmation(running_engine: Engine) -> None:
    from mcp import Client
    from mcp.client.stdio import StdioServerParameters

    engine = running_engine
    if engine.get("/api/decisions") == []:
        engine.advance_until(lambda: engine.get("/api/decisions") != [], "a decision", 10)
    workdir = engine.exchange.workdir
    server = StdioServerParameters(
        command=sys.executable,
        args=["-c", CLI, "mcp", "--url", engine.url],
        env=exchange_env(workdir, TRADEWIND_API_TOKEN=TOKEN),
        cwd=workdir,
    )

    async def session() -> dict[str, Any]:
        async with Client(server) as client:
            tools = {tool.name for tool in (await client.list_tools()).tools}
            status = payload(await client.call_tool("engine_status", {}))
            positions = payload(await client.call_tool("positions", {}))
            decisions = payload(await client.call_tool("decisions", {"since": "2010-02-01"}))
            unconfirmed = await client.call_tool("pause_entries", {"confirm": False})
            after_unconfirmed = payload(await client.call_tool("engine_status", {}))["paused"]
            paused = payload(
                await client.call_tool("pause_entries", {"confirm": True, "reason": "mcp test"})
            )
            return {
                "tools": tools, "status": status, "positions": positions,
                "decisions": decisions, "unconfirmed": unconfirmed,
                "after_unconfirmed": after_unconfirmed, "paused": paused,
            }  # fmt: skip

    answers = asyncio.run(session())
    assert {"engine_status", "positions", "trades", "decisions", "performance", "ab_arms",
            "pause_entries", "flatten", "close_position", "watchlist",
            "set_watchlist"} <= answers["tools"]  # fmt: skip
    assert answers["status"]["state"] == "running"
    assert answers["positions"] == engine.get("/api/positions")
    assert answers["decisions"][-1]["action"] == "entered"
    assert answers["unconfirmed"].is_error
    assert "confirm=true" in answers["unconfirmed"].content[0].text
    assert answers["after_unconfirmed"] is False
    assert answers["paused"]["outcome"] == "done"
    assert engine.status()["state"] == "paused"
    control = engine.get("/api/controls")[0]
    assert control["detail"].endswith("(mcp test)")
    assert control["action"] == "pause"
    assert control["origin"].startswith("mcp@127.0.0.1")


def test_fuzzing_the_engine_api_finds_no_server_error_and_no_schema_violation(
    engine: Engine, tmp_path: Path
) -> None:
    """Every endpoint of `/openapi.json`, every schemathesis check, with the token."""
    from tests.integration.fuzz_support import fuzz

    fuzz(f"{engine.url}/openapi.json", TOKEN, tmp_path, max_examples=15, workers=2)
    assert engine.process is not None
    assert engine.process.proc.poll() is None  # still trading


def test_the_watchlist_is_read_and_replaced_through_the_api(exchange: Exchange) -> None:
    """Started on AAPL with a `--watchlist` file not written yet: the API shows the start
    symbols, refuses bad lists by the symbol at fault, and a replacement is written to the
    file and traded from the next bar (MSFT's momentum entry of 2010-03-10 is decided)."""
    watchlist = exchange.workdir / "watchlist.json"
    engine = Engine(exchange, symbols="AAPL", args=("--watchlist", str(watchlist))).start()
    try:
        shown = engine.get("/api/watchlist")
        assert shown["symbols"] == ["AAPL"]
        assert shown["source"] == "symbols"
        assert shown["path"] == str(watchlist)
        engine.advance()  # a bar traded: new symbols are checked against the market data

        def put(token: str | None = TOKEN, **body: Any) -> Any:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            return engine._http.put(engine.url + "/api/watchlist", json=body, headers=headers)

        assert put(token=None, symbols=["MSFT"]).status_code == 401
        assert put(token="wrong-token", symbols=["MSFT"]).status_code == 401
        for body, named in (
            ({"symbols": ["AAPL", "not a symbol!"]}, "'not a symbol!'"),
            ({"symbols": ["vix"]}, "VIX is a market index"),
            ({"symbols": ["AAPL", "ZZZZ"]}, "no bars for ZZZZ"),
        ):
            refused = put(**body)
            assert refused.status_code == 422, refused.text
            assert named in refused.json()["message"]
        assert put(symbols=[]).status_code == 422
        assert put(symbols=["MSFT"], extra=1).status_code == 422
        assert engine.get("/api/watchlist")["symbols"] == ["AAPL"]  # nothing changed
        assert not watchlist.exists()

        answer = put(symbols=["aapl", "MSFT", "AAPL"]).json()
        assert answer["outcome"] == "done"
        assert answer["watchlist"]["symbols"] == ["AAPL", "MSFT"]
        assert answer["watchlist"]["source"] == "api"
        assert json.loads(watchlist.read_text())["symbols"] == ["AAPL", "MSFT"]
        assert put(symbols=["AAPL", "MSFT"]).json()["outcome"] == "already"
        control = engine.get("/api/controls")[0]
        assert (control["action"], control["outcome"]) == ("watchlist", "already")
        assert "CONTROL watchlist" in engine.output()

        engine.advance_until(
            lambda: any(d["symbol"] == "MSFT" for d in engine.get("/api/decisions")),
            "a decision on MSFT",
            15,
        )
        spec = engine.get("/openapi.json")
        assert {"get", "put"} <= set(spec["paths"]["/api/watchlist"])
    finally:
        engine.close()
