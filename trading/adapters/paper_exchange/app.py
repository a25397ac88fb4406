"""The paper exchange's HTTP + WebSocket face: Alpaca's trading API over Starlette.

REST: `/v2/account`, `/v2/clock`, `/v2/orders` (POST simple/bracket/oco, GET with the
status/after/until/nested/symbols filters, DELETE all), `/v2/orders/{id}` (GET, PATCH
replace, DELETE cancel), `/v2/orders:by_client_order_id`, `/v2/positions` (+ DELETE to
close). Stream: `/stream`, Alpaca's `trade_updates` with its authenticate → listen
handshake; `/v2/iex` and `/v2/sip`, Alpaca's stock data stream replaying the bars (with
derived trades and quotes, and `updatedBars`), and `/v1beta1/news`, its news stream
(`market_stream.py`). Admin (tests and demos): `POST /admin/advance` replays bar steps,
`GET /admin/state`, `POST /admin/streams` drops stream connections and refuses new ones
for `refuse_seconds` (0 accepts again; to prove clients reconnect and catch up),
`POST /admin/news` loads news articles, `POST /admin/bars/correct` revises a bar already
sent. `GET /v1beta1/news` is Alpaca's news REST API over the articles sent so far.

Every refusal is an Alpaca-style JSON error `{"code": ..., "message": ...}` with a 4xx
status; the venue (`venue.py`) does the work."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.types import ASGIApp
from starlette.websockets import WebSocket, WebSocketDisconnect

from core.bars import timeframe_step
from core.errors import ConfigError
from core.network import same_secret
from core.types import Bar, Order, OrderClass, OrderType, Side, TimeInForce
from trading.adapters.paper_exchange.config import PaperExchangeConfig
from trading.adapters.paper_exchange.market_stream import FEEDS, market_data_endpoint
from trading.adapters.paper_exchange.news import news_json, parse_article
from trading.adapters.paper_exchange.relay import relay
from trading.adapters.paper_exchange.venue import ExchangeRejection, PaperVenue
from trading.adapters.paper_exchange.wire import error_body

Handler = Callable[[Request], Awaitable[Response]]

_TIME_IN_FORCE = {"day": TimeInForce.DAY, "gtc": TimeInForce.GTC}
_ORDER_TYPES = {t.value: t for t in OrderType}
_ORDER_CLASSES = {"simple": OrderClass.SIMPLE, "bracket": OrderClass.BRACKET, "oco": OrderClass.OCO}


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse(error_body(status, message), status_code=status)


class StreamHub:
    """The open `trade_updates` connections, and whether new ones are welcome."""

    def __init__(self) -> None:
        self.sockets: set[WebSocket] = set()
        self.refuse_until: float = 0.0

    def accepting(self) -> bool:
        return asyncio.get_running_loop().time() >= self.refuse_until

    def refuse_for(self, seconds: float) -> None:
        """Refuse new connections for `seconds` (0 accepts again at once)."""
        self.refuse_until = asyncio.get_running_loop().time() + seconds

    async def drop_all(self) -> int:
        dropped = 0
        for socket in list(self.sockets):
            with contextlib.suppress(Exception):
                await socket.close(code=1012)
            dropped += 1
        return dropped


def build_app(
    venue: PaperVenue,
    config: PaperExchangeConfig,
    *,
    data_app: ASGIApp | None = None,
    replay_interval: float | None = None,
) -> Starlette:
    """The exchange as an ASGI app. `data_app` (the market-data API) is mounted last so
    the same server also answers `/v2/stocks/bars`."""
    hub = StreamHub()

    def authorized(key: str | None, secret: str | None) -> bool:
        if not key or not secret:
            return False
        if config.api_key is None or config.secret_key is None:
            return True
        key_ok = same_secret(key, config.api_key.get_secret_value())
        secret_ok = same_secret(secret, config.secret_key.get_secret_value())
        return key_ok and secret_ok

    def guarded(handler: Handler) -> Handler:
        async def endpoint(request: Request) -> Response:
            if not authorized(
                request.headers.get("APCA-API-KEY-ID"), request.headers.get("APCA-API-SECRET-KEY")
            ):
                return _error(401, "request is not authorized")
            try:
                return await handler(request)
            except ExchangeRejection as exc:
                return _error(exc.http_status, exc.message)

        return endpoint

    async def get_account(request: Request) -> Response:
        return JSONResponse(venue.account_json())

    async def get_clock(request: Request) -> Response:
        return JSONResponse(venue.clock_json())

    async def post_order(request: Request) -> Response:
        body = await _json_body(request)
        order = parse_order_request(body)
        return JSONResponse(venue.submit(order))

    async def get_orders(request: Request) -> Response:
        q = request.query_params
        status = q.get("status", "open")
        if status not in ("open", "closed", "all"):
            raise ExchangeRejection(422, f"status {status!r} is not one of open, closed, all")
        direction = q.get("direction", "desc")
        if direction not in ("asc", "desc"):
            raise ExchangeRejection(422, f"direction {direction!r} is not asc or desc")
        symbols = {s.strip() for s in q.get("symbols", "").split(",") if s.strip()} or None
        orders = venue.list_orders(
            status=status,
            limit=min(_int_param(q.get("limit"), "limit", 50), 500),
            after=_time_param(q.get("after"), "after"),
            until=_time_param(q.get("until"), "until"),
            direction=direction,
            nested=q.get("nested", "false").lower() == "true",
            symbols=symbols,
            side=q.get("side"),
        )
        return JSONResponse(orders)

    async def cancel_all(request: Request) -> Response:
        answers = []
        for order in venue.list_orders(status="open", limit=10_000):
            try:
                venue.cancel(order["id"])
                answers.append({"id": order["id"], "status": 200, "body": None})
            except ExchangeRejection as exc:
                answers.append(
                    {
                        "id": order["id"],
                        "status": exc.http_status,
                        "body": error_body(exc.http_status, exc.message),
                    }
                )
        return JSONResponse(answers, status_code=207)

    async def get_order_by_client_id(request: Request) -> Response:
        client_order_id = request.query_params.get("client_order_id")
        if not client_order_id:
            raise ExchangeRejection(422, "client_order_id is required")
        return JSONResponse(venue.order_json_by_client_id(client_order_id))

    async def get_order(request: Request) -> Response:
        nested = request.query_params.get("nested", "true").lower() == "true"
        return JSONResponse(venue.order_json_by_id(request.path_params["order_id"], nested=nested))

    async def patch_order(request: Request) -> Response:
        body = await _json_body(request)
        unsupported = sorted(set(body) - {"stop_price", "client_order_id"} - _none_keys(body))
        if unsupported:
            raise ExchangeRejection(
                422, f"the paper exchange can only replace stop_price, not {', '.join(unsupported)}"
            )
        stop_price = _price(body.get("stop_price"), "stop_price")
        alias = body.get("client_order_id")
        if alias is not None and (not isinstance(alias, str) or len(alias) > 128):
            raise ExchangeRejection(
                422, "client_order_id must be a string of at most 128 characters"
            )
        return JSONResponse(
            venue.replace(request.path_params["order_id"], stop_price=stop_price, alias=alias)
        )

    async def delete_order(request: Request) -> Response:
        venue.cancel(request.path_params["order_id"])
        return Response(status_code=204)

    async def get_positions(request: Request) -> Response:
        return JSONResponse(venue.positions_json())

    async def get_position(request: Request) -> Response:
        return JSONResponse(venue.position_json(request.path_params["symbol"]))

    async def close_position(request: Request) -> Response:
        qty = request.query_params.get("qty")
        size = _price(qty, "qty") if qty is not None else None
        return JSONResponse(venue.close_position(request.path_params["symbol"], size))

    async def close_all_positions(request: Request) -> Response:
        answers = []
        for position in venue.positions_json():
            symbol = position["symbol"]
            try:
                order = venue.close_position(symbol)
                answers.append({"symbol": symbol, "status": 200, "body": order})
            except ExchangeRejection as exc:
                answers.append(
                    {
                        "symbol": symbol,
                        "status": exc.http_status,
                        "body": error_body(exc.http_status, exc.message),
                    }
                )
        return JSONResponse(answers, status_code=207)

    async def admin_advance(request: Request) -> Response:
        body = await _json_body(request) if await request.body() else {}
        prints = body.get("prints")
        if prints is not None and not config.intrabar_prints:
            raise ExchangeRejection(
                422, "prints advance only an exchange started with --intrabar-prints"
            )
        count = _int_param(prints, "prints", 1) if prints is not None else _int_param(
            body.get("steps", 1), "steps", 1
        )
        advance = venue.print_step if prints is not None else venue.step
        done: list[str] = []
        for _ in range(count):
            moment = advance()
            if moment is None:
                break
            done.append(moment.isoformat())
        return JSONResponse({"advanced": len(done), "timestamps": done, **venue.state()})

    async def admin_state(request: Request) -> Response:
        return JSONResponse({**venue.state(), "stream_connections": len(hub.sockets)})

    async def admin_streams(request: Request) -> Response:
        body = await _json_body(request) if await request.body() else {}
        refuse = float(body.get("refuse_seconds", 0.0))
        hub.refuse_for(refuse)
        dropped = await hub.drop_all() if body.get("disconnect", True) else 0
        return JSONResponse({"dropped": dropped, "refuse_seconds": refuse})

    async def admin_news(request: Request) -> Response:
        body = await _json_body(request)
        items = body.get("items")
        if not isinstance(items, list):
            raise ExchangeRejection(422, "items must be a list of news articles")
        try:
            articles = [
                parse_article(item, f"items[{i}]", venue.news_count() + i + 1)
                for i, item in enumerate(items)
            ]
        except ConfigError as exc:
            raise ExchangeRejection(422, f"{exc.where}: {exc.message}") from None
        sent = venue.add_news(articles)
        return JSONResponse({"loaded": len(articles), "sent": sent})

    async def get_news(request: Request) -> Response:
        """Alpaca's news REST API over the articles sent so far (one page, newest first
        unless `sort=asc`)."""
        q = request.query_params
        wanted = {s.strip().upper() for s in q.get("symbols", "").split(",") if s.strip()}
        start = _time_param(q.get("start"), "start")
        end = _time_param(q.get("end"), "end")
        chosen = [
            article for article in venue.news.published()
            if (not wanted or wanted & set(article.symbols))
            and (start is None or article.created_at >= start)
            and (end is None or article.created_at <= end)
        ]
        if q.get("sort", "desc") != "asc":
            chosen.reverse()
        limit = _int_param(q.get("limit"), "limit", 50)
        return JSONResponse({"news": [news_json(a) for a in chosen[:limit]],
                             "next_page_token": None})

    async def admin_correct_bar(request: Request) -> Response:
        body = await _json_body(request)
        symbol = body.get("symbol")
        if not isinstance(symbol, str) or not symbol.strip():
            raise ExchangeRejection(422, "symbol is required")
        stamp = body.get("timestamp")
        moment = _time_param(None if stamp is None else str(stamp), "timestamp")
        if moment is None:
            raise ExchangeRejection(422, "timestamp is required")
        prices = {name: _price(body.get(name), name) for name in ("open", "high", "low", "close")}
        missing = sorted(name for name, value in prices.items() if value is None)
        if missing:
            raise ExchangeRejection(422, f"{', '.join(missing)} required")
        volume = body.get("volume")
        if not isinstance(volume, int | float) or isinstance(volume, bool) or volume < 0:
            raise ExchangeRejection(422, f"volume must be a number of 0 or more, got {volume!r}")
        bar = Bar(symbol.strip().upper(), moment, float(prices["open"] or 0),
                  float(prices["high"] or 0), float(prices["low"] or 0),
                  float(prices["close"] or 0), float(volume))
        if not bar.low <= min(bar.open, bar.close) <= max(bar.open, bar.close) <= bar.high:
            raise ExchangeRejection(422, "the bar needs low <= open, close <= high")
        venue.correct_bar(bar)
        return JSONResponse({"corrected": {"symbol": bar.symbol,
                                           "timestamp": moment.isoformat()}})

    async def stream(websocket: WebSocket) -> None:
        await websocket.accept()
        if not hub.accepting():
            await websocket.close(code=1013)
            return
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        try:
            first = await _receive_json(websocket)
            data = first.get("data") or {}
            if first.get("action") not in ("authenticate", "auth") or not authorized(
                data.get("key_id"), data.get("secret_key")
            ):
                await websocket.send_text(
                    json.dumps(
                        {
                            "stream": "authorization",
                            "data": {"action": "authenticate", "status": "unauthorized"},
                        }
                    )
                )
                await websocket.close(code=1008)
                return
            await websocket.send_text(
                json.dumps(
                    {
                        "stream": "authorization",
                        "data": {"action": "authenticate", "status": "authorized"},
                    }
                )
            )
            hub.sockets.add(websocket)
            listening = False

            async def read_requests() -> None:
                nonlocal listening
                while True:
                    request = await _receive_json(websocket)
                    if request.get("action") != "listen":
                        continue
                    streams = list((request.get("data") or {}).get("streams") or [])
                    wanted = "trade_updates" in streams
                    if wanted and not listening:
                        venue.subscribe(queue.put_nowait)
                    elif not wanted and listening:
                        venue.unsubscribe(queue.put_nowait)
                    listening = wanted
                    await websocket.send_text(
                        json.dumps(
                            {
                                "stream": "listening",
                                "data": {"streams": ["trade_updates"] if wanted else []},
                            }
                        )
                    )

            async def send(message: dict[str, Any]) -> None:
                await websocket.send_text(json.dumps(message))

            await relay(queue, asyncio.create_task(read_requests()), send)
        except (WebSocketDisconnect, RuntimeError, ValueError):
            pass
        finally:
            venue.unsubscribe(queue.put_nowait)
            hub.sockets.discard(websocket)

    market_data = market_data_endpoint(
        venue, hub.sockets, hub.accepting, authorized, timeframe_step(config.timeframe)
    )
    routes: list[BaseRoute] = [
        *(WebSocketRoute(f"/v2/{feed}", market_data) for feed in FEEDS),
        WebSocketRoute("/v1beta1/news", market_data),
        Route("/v1beta1/news", guarded(get_news), methods=["GET"]),
        Route("/v2/account", guarded(get_account), methods=["GET"]),
        Route("/v2/clock", guarded(get_clock), methods=["GET"]),
        Route("/v2/orders:by_client_order_id", guarded(get_order_by_client_id), methods=["GET"]),
        Route("/v2/orders", guarded(get_orders), methods=["GET"]),
        Route("/v2/orders", guarded(post_order), methods=["POST"]),
        Route("/v2/orders", guarded(cancel_all), methods=["DELETE"]),
        Route("/v2/orders/{order_id}", guarded(get_order), methods=["GET"]),
        Route("/v2/orders/{order_id}", guarded(patch_order), methods=["PATCH"]),
        Route("/v2/orders/{order_id}", guarded(delete_order), methods=["DELETE"]),
        Route("/v2/positions", guarded(get_positions), methods=["GET"]),
        Route("/v2/positions", guarded(close_all_positions), methods=["DELETE"]),
        Route("/v2/positions/{symbol}", guarded(get_position), methods=["GET"]),
        Route("/v2/positions/{symbol}", guarded(close_position), methods=["DELETE"]),
        Route("/admin/advance", guarded(admin_advance), methods=["POST"]),
        Route("/admin/state", guarded(admin_state), methods=["GET"]),
        Route("/admin/streams", guarded(admin_streams), methods=["POST"]),
        Route("/admin/news", guarded(admin_news), methods=["POST"]),
        Route("/admin/bars/correct", guarded(admin_correct_bar), methods=["POST"]),
        WebSocketRoute("/stream", stream),
    ]
    if data_app is not None:
        routes.append(Mount("/", app=data_app))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        pacer = asyncio.create_task(_pace(venue, replay_interval)) if replay_interval else None
        try:
            yield
        finally:
            if pacer is not None:
                pacer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await pacer
            venue.close()

    async def not_found(request: Request, exc: Exception) -> Response:
        return _error(404, f"endpoint {request.method} {request.url.path} not found")

    async def not_allowed(request: Request, exc: Exception) -> Response:
        return _error(405, f"method {request.method} not allowed on {request.url.path}")

    async def internal_error(request: Request, exc: Exception) -> Response:
        # Still Alpaca's shape, so clients report it instead of failing to parse it.
        return _error(500, f"internal error in the paper exchange: {type(exc).__name__}: {exc}")

    return Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={404: not_found, 405: not_allowed, Exception: internal_error},
    )


async def _pace(venue: PaperVenue, interval: float) -> None:
    """Replay one bar step every `interval` seconds until the bars run out."""
    while True:
        await asyncio.sleep(interval)
        if venue.step() is None:
            return


# ---------------------------------------------------------------------- request parsing
def parse_order_request(body: dict[str, Any]) -> Order:
    """An Alpaca order request → a domain `Order`, or a 422 naming the bad field."""
    symbol = body.get("symbol")
    if not isinstance(symbol, str) or not symbol.strip():
        raise ExchangeRejection(422, "symbol is required")
    if body.get("notional") is not None:
        raise ExchangeRejection(
            422, "notional orders are not supported by the paper exchange; send qty"
        )
    qty = _price(body.get("qty"), "qty")
    if qty is None:
        raise ExchangeRejection(422, "qty is required")
    side = body.get("side")
    if side not in ("buy", "sell"):
        raise ExchangeRejection(422, f"side {side!r} is not buy or sell")
    order_type = _ORDER_TYPES.get(str(body.get("type")))
    if order_type is None:
        raise ExchangeRejection(
            422, f"type {body.get('type')!r} is not one of {', '.join(_ORDER_TYPES)}"
        )
    time_in_force = _TIME_IN_FORCE.get(str(body.get("time_in_force")))
    if time_in_force is None:
        raise ExchangeRejection(
            422, f"time_in_force {body.get('time_in_force')!r} is not supported (day, gtc)"
        )
    order_class = _ORDER_CLASSES.get(str(body.get("order_class") or "simple"))
    if order_class is None:
        raise ExchangeRejection(
            422, f"order_class {body.get('order_class')!r} is not one of simple, bracket, oco"
        )
    limit_price = _price(body.get("limit_price"), "limit_price")
    stop_price = _price(body.get("stop_price"), "stop_price")
    needs_limit = order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT)
    if needs_limit and limit_price is None and order_class is not OrderClass.OCO:
        raise ExchangeRejection(422, f"limit_price is required for {order_type.value} orders")
    if order_type in (OrderType.STOP, OrderType.STOP_LIMIT) and stop_price is None:
        raise ExchangeRejection(422, f"stop_price is required for {order_type.value} orders")
    take_profit_price = stop_loss_price = None
    if order_class is OrderClass.OCO and order_type is not OrderType.LIMIT:
        raise ExchangeRejection(422, "oco orders must be of type limit")
    if order_class in (OrderClass.BRACKET, OrderClass.OCO):
        take_profit = body.get("take_profit") or {}
        stop_loss = body.get("stop_loss") or {}
        take_profit_price = _price(take_profit.get("limit_price"), "take_profit.limit_price")
        stop_loss_price = _price(stop_loss.get("stop_price"), "stop_loss.stop_price")
        if take_profit_price is None or stop_loss_price is None:
            raise ExchangeRejection(
                422,
                f"{order_class.value} orders require take_profit.limit_price "
                "and stop_loss.stop_price",
            )
        # A bracket's exits protect a position it opens; an oco's, one already held.
        long_exits = (side == "buy") == (order_class is OrderClass.BRACKET)
        if (take_profit_price - stop_loss_price) * (1 if long_exits else -1) <= 0:
            raise ExchangeRejection(
                422,
                f"take_profit.limit_price {take_profit_price} must be "
                f"{'above' if long_exits else 'below'} stop_loss.stop_price {stop_loss_price}",
            )
    client_order_id = body.get("client_order_id") or str(uuid.uuid4())
    if not isinstance(client_order_id, str) or len(client_order_id) > 128:
        raise ExchangeRejection(422, "client_order_id must be a string of at most 128 characters")
    return Order(
        client_order_id=client_order_id,
        symbol=symbol.strip().upper(),
        side=Side(side),
        qty=qty,
        type=order_type,
        limit_price=limit_price,
        stop_price=stop_price,
        time_in_force=time_in_force,
        order_class=order_class,
        take_profit_price=take_profit_price,
        stop_loss_price=stop_loss_price,
    )


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise ExchangeRejection(400, "request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ExchangeRejection(400, "request body must be a JSON object")
    return body


async def _receive_json(websocket: WebSocket) -> dict[str, Any]:
    message = await websocket.receive()
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000))
    raw = message.get("text") or message.get("bytes") or b""
    parsed = json.loads(raw)
    if not isinstance(parsed, dict):
        raise ValueError("stream messages must be JSON objects")
    return parsed


def _none_keys(body: dict[str, Any]) -> set[str]:
    return {key for key, value in body.items() if value is None}


def _price(value: Any, name: str) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ExchangeRejection(422, f"{name} {value!r} is not a number") from None
    if not number > 0 or number != number or number == float("inf"):
        raise ExchangeRejection(422, f"{name} must be a positive number, got {value!r}")
    return number


def _int_param(value: Any, name: str, default: int) -> int:
    if value is None:
        return default
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ExchangeRejection(422, f"{name} {value!r} is not an integer") from None
    if number < 1:
        raise ExchangeRejection(422, f"{name} must be at least 1, got {number}")
    return number


def _time_param(value: str | None, name: str) -> datetime | None:
    if value is None or value == "":
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ExchangeRejection(422, f"{name} {value!r} is not an RFC-3339 time") from None
    if moment.tzinfo is None:
        raise ExchangeRejection(422, f"{name} {value!r} has no time zone")
    return moment
