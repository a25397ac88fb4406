"""The engine's HTTP API and live dashboard, served by `tradewind trade` itself on the
engine's own event loop (FastAPI; OpenAPI at `/openapi.json`, docs at `/docs`).

Reads: `GET /api/status|positions|orders|trades|performance|decisions|equity|alerts|ab`,
`GET /api/trades?format=csv`, `GET /api/dashboard` (all of the page in one answer),
`GET /api/stream` (the same as server-sent events, every `refresh_seconds`), `/metrics`
(Prometheus), `GET /api/watchlist`. Controls: `POST /api/pause|resume|flatten`,
`/api/positions/{symbol}/close`, `/api/orders/cancel`; `PUT /api/watchlist` (the symbols
traded from the next bar, as a change of the `--watchlist` file does).

Access: a bearer token (`TRADEWIND_API_TOKEN`) on every POST and PUT, and on every request when
the server is bound beyond loopback (a browser there signs in once: `POST /api/session`
with the token sets an HttpOnly cookie that GETs accept; POSTs still need the header).
Errors are the project's one hierarchy (`core.errors`), each answered with its status."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import re
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime
from http import HTTPStatus
from pathlib import Path
from typing import Annotated, Any

import uvicorn
from fastapi import Depends, FastAPI, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import StreamingResponse
from starlette.routing import Match

from core.errors import AuthenticationError, ConfigError, DataValidationError, TradewindError
from core.symbols import CONTEXT_ONLY_SYMBOLS
from core.utc import utc_datetime
from trading.control.metrics import CONTENT_TYPE
from trading.control.plane import EngineControlPlane
from trading.http_limits import BodyLimit
from trading.service import Companion

HERE = Path(__file__).parent
# Every body the schema admits fits (200 order ids of 128 characters, each escaped as
# JSON's \uXXXX surrogate pairs at worst): a valid request is never refused as too large.
MAX_ORDER_IDS = 200
MAX_BODY_BYTES = 512 * 1024
COOKIE = "tradewind_session"
CLIENT_HEADER = "X-Tradewind-Client"


class PauseRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    reason: str = Field("", max_length=200)


class CancelRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    client_order_ids: list[Annotated[str, Field(min_length=1, max_length=128)]] | None = Field(
        None, max_length=MAX_ORDER_IDS
    )


class Empty(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


SYMBOL_PATTERN = r"[A-Za-z][A-Za-z0-9.\-]{0,15}"
MAX_WATCHLIST = 500
Symbol = Annotated[str, PathParam(pattern=f"^{SYMBOL_PATTERN}$")]


class WatchlistRequest(BaseModel):
    """The new watchlist. Symbols are upper-cased and deduplicated; each must look like a
    ticker, must not be a market index, and must have bars at the market data."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    symbols: list[
        Annotated[str, Field(min_length=1, max_length=16,
                             json_schema_extra={"pattern": f"^{SYMBOL_PATTERN}$"})]
    ] = Field(min_length=1, max_length=MAX_WATCHLIST)  # fmt: skip

    @field_validator("symbols")
    @classmethod
    def _tickers(cls, symbols: list[str]) -> list[str]:
        # Checked here, not by the schema's pattern alone, so the answer names the symbol.
        for symbol in symbols:
            if not re.fullmatch(SYMBOL_PATTERN, symbol):
                raise ValueError(
                    f"{symbol!r} is not a symbol (a letter, then up to 15 letters, digits, "
                    "'.' or '-')"
                )
            if symbol.upper() in CONTEXT_ONLY_SYMBOLS:
                raise ValueError(f"{symbol.upper()} is a market index, not a tradable symbol")
        return symbols
# ISO 8601 text only: a bare number would otherwise pass as seconds since 1970.
Since = Annotated[
    str | None,
    Query(
        description="Only rows after this time (ISO 8601; UTC if naive).",
        pattern=r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?)?(Z|[+-]\d{2}:\d{2})?$",
        json_schema_extra={"format": "date-time"},
    ),
]


class ErrorOut(BaseModel):
    """Every refusal: the error's kind, what is wrong, and each problem of a request."""

    error: str
    message: str
    detail: list[dict[str, Any]] | None = None


_ERROR = {"model": ErrorOut}
# Every route may refuse: bad body (400), token (401), unknown symbol/order (404), a
# control that conflicts with the engine's state (409), body too large (413).
REFUSALS: dict[int | str, dict[str, Any]] = {
    status: {**_ERROR, "description": text}
    for status, text in {
        400: "The body is not JSON", 401: "Missing or wrong token",
        404: "No such position or order", 409: "Conflicts with the engine's state",
        405: "Method not allowed on this path", 413: "Body too large",
        422: "Invalid parameters or body",
    }.items()
}


# One server-sent event: `event: dashboard` and the page's data as JSON text.
SSE_EVENT: dict[str, Any] = {
    "type": "object",
    "required": ["event", "data"],
    "properties": {"event": {"const": "dashboard"}, "data": {"type": "string"}},
}


def _since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return utc_datetime(datetime.fromisoformat(value.replace("Z", "+00:00")))
    except ValueError:
        raise DataValidationError(f"since {value!r} is not an ISO 8601 time",
                                  where="since") from None


Limit = Annotated[int, Query(ge=1, le=10_000)]


def build_app(plane: EngineControlPlane) -> FastAPI:
    config = plane.config
    token = config.token.get_secret_value() if config.token else None
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    app = FastAPI(
        title="Tradewind engine",
        version="1",
        description="The live trading engine: its state, its journal, and its controls.",
        responses=REFUSALS,
    )
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    app.add_middleware(
        BodyLimit, limit=MAX_BODY_BYTES,
        body=lambda limit: {"error": "PayloadTooLarge",
                            "message": f"request body over {limit} bytes"},
    )

    @app.exception_handler(TradewindError)
    async def domain_error(request: Request, exc: TradewindError) -> JSONResponse:
        return JSONResponse(
            {"error": type(exc).__name__, "message": exc.message}, status_code=exc.http_status
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # FastAPI's own refusals (a body that is not JSON, an unknown path, a method the
        # path does not take) in the same shape as every other error.
        headers = exc.headers
        if exc.status_code == HTTPStatus.METHOD_NOT_ALLOWED:
            # Every method of the path (its GET and PUT are two routes; Starlette names
            # only the first route's).
            headers = {**(headers or {}), "Allow": ", ".join(_allowed(request))}
        return JSONResponse(
            {"error": HTTPStatus(exc.status_code).phrase.replace(" ", ""),
             "message": str(exc.detail)},
            status_code=exc.status_code, headers=headers,
        )

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        # What is wrong and where, without the validator's inputs, internals or links.
        detail = [
            {"loc": list(error.get("loc", ())), "msg": str(error.get("msg", "")),
             "type": str(error.get("type", ""))}
            for error in exc.errors()
        ]
        message = "; ".join(
            f"{'.'.join(str(part) for part in d['loc'])}: {d['msg']}" for d in detail[:10]
        )
        return JSONResponse(
            {"error": "ValidationError", "message": message or "invalid request",
             "detail": detail},
            status_code=422,
        )

    app.state.token = token
    app.state.loopback = config.loopback
    Reader = Depends(reader)

    # ------------------------------------------------------------------ the page
    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page(request: Request) -> Response:
        authorized = config.loopback or _valid(_presented(request, cookie=True), token)
        return templates.TemplateResponse(
            request,
            "dashboard.html",
            {
                "authorized": authorized,
                "initial": json.dumps(plane.dashboard()) if authorized else "null",
                "refresh_ms": int(config.refresh_seconds * 1000),
                "token_required": token is not None,
                "symbols": ", ".join(plane.service.symbols),
                "decides": plane.decides,
            },
        )

    @app.post("/api/session", summary="Sign a browser in (sets the session cookie)")
    async def session(request: Request) -> Response:
        given = _presented(request, cookie=False)
        _check(request, given)
        response = JSONResponse({"signed_in": True})
        response.set_cookie(COOKIE, given or "", httponly=True, samesite="strict")
        return response

    # ------------------------------------------------------------------ reads
    @app.get("/api/status", dependencies=[Reader], summary="State, account, halt, models")
    async def status() -> dict[str, Any]:
        return _safe(plane.status())

    @app.get("/api/positions", dependencies=[Reader], summary="Open positions with stops")
    async def positions() -> list[dict[str, Any]]:
        return _safe(plane.positions())

    @app.get("/api/orders", dependencies=[Reader], summary="Open orders at the broker")
    async def orders() -> list[dict[str, Any]]:
        return _safe(plane.orders())

    @app.get("/api/trades", dependencies=[Reader], summary="Closed trades (JSON or CSV)",
             responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}})
    async def closed_trades(
        since: Since = None,
        limit: Limit = config.recent_limit,
        format: Annotated[str, Query(pattern="^(json|csv)$")] = "json",
    ) -> Any:
        moment = _since(since)
        if format == "csv":
            return PlainTextResponse(
                plane.reads.trades_csv(since=moment, limit=limit),
                media_type="text/csv",
                headers={"Content-Disposition": 'attachment; filename="trades.csv"'},
            )
        return plane.reads.trades(since=moment, limit=limit)

    @app.get("/api/performance", dependencies=[Reader], summary="Per strategy and per day")
    async def performance() -> dict[str, Any]:
        return plane.reads.performance()

    @app.get("/api/decisions", dependencies=[Reader], summary="Decisions with reasons")
    async def recent_decisions(
        since: Since = None, limit: Limit = config.recent_limit
    ) -> list[dict[str, Any]]:
        return plane.reads.decisions(since=_since(since), limit=limit)

    @app.get("/api/equity", dependencies=[Reader], summary="The equity curve")
    async def equity(limit: Limit = 2_000) -> list[dict[str, Any]]:
        return plane.reads.equity(limit=limit)

    @app.get("/api/alerts", dependencies=[Reader], summary="The engine's recent alerts")
    async def alerts(limit: Limit = 50) -> list[dict[str, Any]]:
        return plane.outbox.recent(limit) if plane.outbox else []

    @app.get("/api/ab", dependencies=[Reader], summary="Live P&L per A/B arm")
    async def ab() -> dict[str, Any]:
        return _safe(
            {"arms": plane.reads.ab(), "served": plane.status()["model_service"]["arms"]}
        )

    @app.get("/api/controls", dependencies=[Reader], summary="The journal of control actions")
    async def controls(limit: Limit = 50) -> list[dict[str, Any]]:
        return [action.as_dict() for action in plane.store.actions(limit)]

    @app.get("/api/watchlist", dependencies=[Reader],
             summary="The symbols traded, the watchlist and where it came from")
    async def watchlist() -> dict[str, Any]:
        return plane.controls.watchlist()

    @app.get("/api/dashboard", dependencies=[Reader], summary="Everything the page shows")
    async def dashboard() -> dict[str, Any]:
        return plane.dashboard()

    @app.get("/api/stream", dependencies=[Reader], summary="The page's data as server-sent events",
             response_class=StreamingResponse,
             responses={200: {"content": {"text/event-stream": {"schema": SSE_EVENT}}}})
    async def stream(request: Request) -> StreamingResponse:
        async def events() -> AsyncIterator[str]:
            while not await request.is_disconnected():
                yield f"event: dashboard\ndata: {json.dumps(plane.dashboard())}\n\n"
                await asyncio.sleep(config.refresh_seconds)

        return StreamingResponse(
            events(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @app.get("/metrics", dependencies=[Reader], include_in_schema=False)
    async def metrics() -> Response:
        plane.refresh()
        status = plane.status()
        gauges = plane.hub.metrics
        if status["equity"] is not None:
            gauges.equity.set(status["equity"])
        gauges.day_pnl.set(status["day_pnl"] or 0.0)
        gauges.positions.set(status["open_positions"])
        gauges.halted.set(1 if status["halted"] else 0)
        gauges.paused.set(1 if status["paused"] else 0)
        return Response(gauges.exposition(), media_type=CONTENT_TYPE)

    # ------------------------------------------------------------------ controls
    def acted(result: Any) -> dict[str, Any]:
        plane.refresh(force=True)
        answer: dict[str, Any] = result.as_dict()
        answer["status"] = _safe(plane.status())
        return answer

    @app.post("/api/pause", summary="Pause new entries (exits and stops keep working)")
    async def pause(
        origin: Origin, body: PauseRequest | None = None
    ) -> dict[str, Any]:
        return acted(plane.controls.pause(origin, body.reason if body else ""))

    @app.post("/api/resume", summary="Allow new entries again")
    async def resume(
        origin: Origin, body: Empty | None = None
    ) -> dict[str, Any]:
        return acted(plane.controls.resume(origin))

    @app.post("/api/flatten", summary="Cancel every order and close every position")
    async def flatten(
        origin: Origin, body: Empty | None = None
    ) -> dict[str, Any]:
        return acted(plane.controls.flatten(origin))

    @app.post("/api/positions/{symbol}/close", summary="Close one position at the market")
    async def close(
        symbol: Symbol, origin: Origin, body: Empty | None = None
    ) -> dict[str, Any]:
        return acted(plane.controls.close(symbol, origin))

    @app.put("/api/watchlist", summary="Replace the watchlist (as a change of its file does)",
             responses={502: {**_ERROR, "description": "The market data could not be read"}})
    async def replace_watchlist(origin: Origin, body: WatchlistRequest) -> dict[str, Any]:
        answer = acted(plane.controls.set_watchlist(body.symbols, origin))
        answer["watchlist"] = plane.controls.watchlist()
        return answer

    @app.post("/api/orders/cancel", summary="Cancel open orders (all, or those named)")
    async def cancel(
        origin: Origin, body: CancelRequest | None = None
    ) -> dict[str, Any]:
        ids = body.client_order_ids if body else None
        return acted(plane.controls.cancel_orders(origin, ids))

    return app


def _allowed(request: Request) -> list[str]:
    """The methods the routes of the request's path take."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)
        if match is not Match.NONE:
            methods |= getattr(route, "methods", None) or set()
    return sorted(methods)


def _presented(request: Request, *, cookie: bool) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.cookies.get(COOKIE) if cookie else None


def _check(request: Request, given: str | None) -> None:
    if not _valid(given, request.app.state.token):
        raise AuthenticationError(
            "a valid bearer token is required (TRADEWIND_API_TOKEN)", where="engine api"
        )


async def reader(request: Request) -> None:
    """GETs: open on loopback; beyond it, the token (header or the session cookie)."""
    if not request.app.state.loopback:
        _check(request, _presented(request, cookie=True))


async def controller(request: Request) -> str:
    """POSTs: always the token, in the header; answers who asked (journaled)."""
    _check(request, _presented(request, cookie=False))
    client = request.client
    where = f"{client.host}:{client.port}" if client else "unknown"
    tool = request.headers.get(CLIENT_HEADER, "http")[:40]
    return f"{tool}@{where}"


Origin = Annotated[str, Depends(controller)]


def _valid(given: str | None, token: str | None) -> bool:
    return token is not None and given is not None and hmac.compare_digest(given, token)


def _safe(value: Any) -> Any:
    from core.strict_json import json_safe

    return json_safe(value)


def _write_address(path: Path | None, url: str) -> None:
    if path is None:
        return
    import os

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"url": url, "pid": os.getpid()}), encoding="utf-8")


class _Server(uvicorn.Server):
    """uvicorn on a loop it does not own: the engine's signal handlers stay in charge."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def api_companion(plane: EngineControlPlane, announce: Callable[[str], None]) -> Companion:
    """The API server as a companion of the trading loop (`TradingService.run`): bound
    first (port 0 picks a free one), announced once listening, stopped with the loop."""
    config = plane.config
    family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((config.host, config.port))
    except OSError as exc:
        sock.close()
        raise ConfigError(
            f"the engine API cannot listen on {config.host}:{config.port} ({exc.strerror}); "
            "--api-port 0 picks a free port",
            where="engine api",
        ) from None
    port = int(sock.getsockname()[1])
    plane.api_url = config.url(port)
    server = _Server(
        uvicorn.Config(
            build_app(plane), log_level="warning", lifespan="off", access_log=False
        )
    )

    async def run(stop: asyncio.Event) -> None:
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started and not serving.done():
            await asyncio.sleep(0.01)
        if server.started:
            _write_address(config.address_file, plane.api_url or "")
            announce(plane.api_url or "")
        try:
            await stop.wait()
        finally:
            server.should_exit = True
            if config.address_file is not None:
                config.address_file.unlink(missing_ok=True)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(serving, timeout=5)

    return run
