"""The engine as MCP tools (`tradewind mcp`, on the `mcp` SDK's `MCPServer`), for an AI
assistant: the same reads as the API (status, positions, orders, trades, performance,
decisions, equity, alerts, A/B arms) and the same controls, over the same API and token.
A control does nothing unless called with `confirm=true`: an assistant has to ask."""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from core.errors import TradewindError
from trading.control.client import EngineApiClient

INSTRUCTIONS = (
    "Tools of a live trading engine (Tradewind). Reads are safe. Controls (pause_entries, "
    "resume_entries, flatten, close_position, cancel_orders, set_watchlist) change what the "
    "engine does "
    "with real orders: call them only when the user asked for exactly that, with "
    "confirm=true. Day P&L is measured from the previous session's closing equity."
)


def build_server(client: EngineApiClient) -> MCPServer[Any]:
    server: MCPServer[Any] = MCPServer("tradewind-engine", instructions=INSTRUCTIONS)

    def read(path: str, **params: Any) -> Any:
        try:
            return client.get(path, **params)
        except TradewindError as exc:
            raise ToolError(exc.message) from None

    def control(
        confirm: bool, path: str, body: dict[str, Any] | None = None, *, method: str = "POST"
    ) -> Any:
        if confirm is not True:
            raise ToolError(
                "not done: this control acts on live orders; call it again with "
                "confirm=true once the user has confirmed"
            )
        try:
            if method == "PUT":
                return client.put(path, body or {})
            return client.post(path, body)
        except TradewindError as exc:
            raise ToolError(exc.message) from None

    @server.tool()
    def engine_status() -> dict[str, Any]:
        """State (running/paused/halted), equity, day P&L and its baseline, the daily-loss
        halt and why, the broker's clock, heartbeat, model service health and versions."""
        result: dict[str, Any] = read("/api/status")
        return result

    @server.tool()
    def positions() -> list[dict[str, Any]]:
        """Open positions with stop, target, unrealized P&L and the entry decision."""
        result: list[dict[str, Any]] = read("/api/positions")
        return result

    @server.tool()
    def open_orders() -> list[dict[str, Any]]:
        """Open orders at the broker."""
        result: list[dict[str, Any]] = read("/api/orders")
        return result

    @server.tool()
    def trades(since: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Closed trades, newest first; `since` is an ISO time (e.g. today's date)."""
        result: list[dict[str, Any]] = read("/api/trades", since=since, limit=limit)
        return result

    @server.tool()
    def performance() -> dict[str, Any]:
        """Trades, win rate, profit factor and P&L per strategy and per day."""
        result: dict[str, Any] = read("/api/performance")
        return result

    @server.tool()
    def decisions(since: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Decisions on signals, newest first: entered or refused, the reason category
        (ev, gate, ood, regime, sizing, risk, paused, model_unavailable), the win
        probability, the A/B arm and model versions. `since` is an ISO time."""
        result: list[dict[str, Any]] = read("/api/decisions", since=since, limit=limit)
        return result

    @server.tool()
    def equity_curve(limit: int = 500) -> list[dict[str, Any]]:
        """The equity curve's latest points."""
        result: list[dict[str, Any]] = read("/api/equity", limit=limit)
        return result

    @server.tool()
    def alerts(limit: int = 50) -> list[dict[str, Any]]:
        """The engine's recent alerts, newest first."""
        result: list[dict[str, Any]] = read("/api/alerts", limit=limit)
        return result

    @server.tool()
    def ab_arms() -> dict[str, Any]:
        """Live P&L per A/B arm (champion, challenger) and the versions each serves."""
        result: dict[str, Any] = read("/api/ab")
        return result

    @server.tool()
    def watchlist() -> dict[str, Any]:
        """The symbols the engine trades (its watchlist, plus any still held), the
        watchlist, where it came from (start symbols, the watchlist file, the API) and
        when it last changed."""
        result: dict[str, Any] = read("/api/watchlist")
        return result

    @server.tool()
    def set_watchlist(symbols: list[str], confirm: bool) -> dict[str, Any]:
        """Replace the watchlist: the engine trades these symbols from the next bar (held
        symbols stay managed until they exit). Unknown symbols are refused by name. Needs
        confirm=true."""
        result: dict[str, Any] = control(
            confirm, "/api/watchlist", {"symbols": symbols}, method="PUT"
        )
        return result

    @server.tool()
    def pause_entries(confirm: bool, reason: str = "") -> dict[str, Any]:
        """Pause new entries (exits and stops keep working). Needs confirm=true."""
        result: dict[str, Any] = control(confirm, "/api/pause", {"reason": reason})
        return result

    @server.tool()
    def resume_entries(confirm: bool) -> dict[str, Any]:
        """Allow new entries again. Needs confirm=true."""
        result: dict[str, Any] = control(confirm, "/api/resume")
        return result

    @server.tool()
    def flatten(confirm: bool) -> dict[str, Any]:
        """Cancel every open order and close every position at the market. Needs
        confirm=true."""
        result: dict[str, Any] = control(confirm, "/api/flatten")
        return result

    @server.tool()
    def close_position(symbol: str, confirm: bool) -> dict[str, Any]:
        """Close one position at the market. Needs confirm=true."""
        result: dict[str, Any] = control(confirm, f"/api/positions/{symbol.upper()}/close")
        return result

    @server.tool()
    def cancel_orders(confirm: bool) -> dict[str, Any]:
        """Cancel every open order (stops protecting positions too). Needs confirm=true."""
        result: dict[str, Any] = control(confirm, "/api/orders/cancel")
        return result

    return server
