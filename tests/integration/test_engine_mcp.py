"""`tradewind mcp` (a real subprocess, on stdio) answered through the `mcp` SDK's own
client: the same reads as the engine's API, and controls that do nothing without an
explicit confirmation; all over the engine's API and token."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.engine_support import TOKEN, Engine
from tests.integration.exchange_support import CLI, Exchange, exchange_env, sample_bars, write_store

pytestmark = pytest.mark.integration


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    write_store(tmp_path / "data", sample_bars(("AAPL",), start="2008-09-01", end="2010-04-30"))
    exchange = Exchange(tmp_path, symbols="AAPL", start="2010-02-22").start()
    running = Engine(exchange, symbols="AAPL").start()
    try:
        yield running
    finally:
        running.close()
        exchange.close()


def payload(result: Any) -> Any:
    """A tool's answer: its structured content, else its text as JSON."""
    if result.structured_content is not None:
        content = result.structured_content
        return content.get("result", content) if isinstance(content, dict) else content
    return json.loads(result.content[0].text)


def test_mcp_tools_read_and_steer_with_confirmation(engine: Engine) -> None:
    from mcp import Client
    from mcp.client.stdio import StdioServerParameters

    engine.advance_until(lambda: engine.get("/api/positions") != [], "AAPL's position", 10)
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
            "pause_entries", "flatten", "close_position"} <= answers["tools"]  # fmt: skip
    assert answers["status"]["state"] == "running"
    assert [p["symbol"] for p in answers["positions"]] == ["AAPL"]
    assert answers["decisions"][0]["action"] == "entered"
    assert answers["unconfirmed"].is_error
    assert "confirm=true" in answers["unconfirmed"].content[0].text
    assert answers["after_unconfirmed"] is False
    assert answers["paused"]["outcome"] == "done"
    assert engine.status()["state"] == "paused"
    control = engine.get("/api/controls")[0]
    assert control["action"] == "pause"
    assert control["origin"].startswith("mcp@127.0.0.1")
