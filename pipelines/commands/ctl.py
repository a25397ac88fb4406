"""`tradewind ctl` (the running engine's API from the shell) and `tradewind mcp` (the same
API as MCP tools for an AI assistant, on stdio). Both find the engine at `--url`, else
where it wrote its address, else 127.0.0.1:8780; the token is TRADEWIND_API_TOKEN, else
the local token file a loopback engine made."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

from pipelines.commands.options import command_group

if TYPE_CHECKING:
    from trading.control.client import EngineApiClient

Url = Annotated[str | None, typer.Option(help="Engine API URL (default: the running engine).")]


def register(app: typer.Typer) -> None:
    ctl = command_group(
        "Steer the running engine: status, pause, resume, flatten, close, watchlist."
    )
    app.add_typer(ctl, name="ctl")

    @ctl.command()
    def status(url: Url = None) -> None:
        """State, equity, day P&L, halt, positions and orders."""
        _show(_client(url).get("/api/status"))

    @ctl.command()
    def pause(url: Url = None, reason: Annotated[str, typer.Option()] = "") -> None:
        """Pause new entries (exits and stops keep working)."""
        _show(_client(url).post("/api/pause", {"reason": reason}), brief=True)

    @ctl.command()
    def resume(url: Url = None) -> None:
        """Allow new entries again."""
        _show(_client(url).post("/api/resume"), brief=True)

    @ctl.command()
    def flatten(url: Url = None) -> None:
        """Cancel every order and close every position at the market."""
        _show(_client(url).post("/api/flatten"), brief=True)

    @ctl.command()
    def close(symbol: str, url: Url = None) -> None:
        """Close one position at the market."""
        _show(_client(url).post(f"/api/positions/{symbol.upper()}/close"), brief=True)

    @ctl.command()
    def watchlist(
        symbols: Annotated[
            str | None,
            typer.Argument(help="Comma-separated symbols to trade instead; omit to show it."),
        ] = None,
        url: Url = None,
    ) -> None:
        """Show the watchlist, or replace it (the engine trades it from the next bar)."""
        client = _client(url)
        if symbols is None:
            _show(client.get("/api/watchlist"))
            return
        wanted = [s.strip() for s in symbols.split(",") if s.strip()]
        _show(client.put("/api/watchlist", {"symbols": wanted}), brief=True)

    @app.command()
    def mcp(url: Url = None) -> None:
        """Serve the engine's reads and controls as MCP tools on stdio (controls need
        confirm=true)."""
        from trading.control.mcp_tools import build_server

        build_server(_client(url, "mcp")).run("stdio")


def _client(url: str | None, name: str = "ctl") -> EngineApiClient:
    import os

    from core.settings import load_settings
    from trading.control.client import EngineApiClient
    from trading.control.config import DEFAULT_PORT, TOKEN_ENV, engine_address

    folder = load_settings().paths.data_dir / "engine"
    token_file = folder / "api-token"
    token = os.environ.get(TOKEN_ENV) or (
        token_file.read_text(encoding="utf-8").strip() if token_file.is_file() else None
    )
    found = url or engine_address(folder / "api.json") or f"http://127.0.0.1:{DEFAULT_PORT}"
    return EngineApiClient(found, token, client_name=name)


def _show(answer: object, *, brief: bool = False) -> None:
    if brief and isinstance(answer, dict):
        print(f"{answer.get('action')}: {answer.get('outcome')} - {answer.get('detail')}")
        answer = {k: answer["status"][k] for k in ("state", "equity", "day_pnl", "open_positions")}
    print(json.dumps(answer, indent=2, default=str))
