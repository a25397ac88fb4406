"""`AlpacaBroker`: the `trading.ports.Broker` port on the alpaca-py SDK.

REST goes through `TradingClient` (paper by default, `url_override` for the local paper
exchange); order updates come from `TradingStream`'s `trade_updates`, which reconnects by
itself. Each (re)connection triggers a catch-up: the orders are fetched over REST and
every change the stream did not report (a fill while disconnected, a cancel...) is turned
into the update the engine would have received. Duplicates are dropped, so the engine
sees each fill exactly once, under a deterministic `fill_id` (`<client_order_id>:<filled
quantity>`) whether it came from the stream or from a catch-up.

Identities: the engine names orders by `client_order_id` and a bracket's exit legs
`<id>-tp` (limit) and `<id>-sl` (stop), like the matching engine. Alpaca gives legs ids
of its own and gives a replaced order a new id, so this adapter keeps the map from
Alpaca's order ids to the engine's names; a replacement is sent with the client id
`<id>~r<n>`, which maps back to `<id>`.

Credentials come only from `core.settings.AlpacaCredentials` and are never logged;
Alpaca's errors become `core.errors.BrokerError` with the status and Alpaca's message."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import threading
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from functools import partial
from typing import Any, TypeVar

import requests
from alpaca.common.enums import BaseURL
from alpaca.common.exceptions import APIError
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderClass as AlpacaOrderClass
from alpaca.trading.enums import OrderSide, QueryOrderStatus
from alpaca.trading.enums import TimeInForce as AlpacaTimeInForce
from alpaca.trading.models import Order as AlpacaOrder
from alpaca.trading.models import TradeUpdate
from alpaca.trading.requests import (
    GetOrdersRequest,
    LimitOrderRequest,
    MarketOrderRequest,
    OrderRequest,
    ReplaceOrderRequest,
    StopLimitOrderRequest,
    StopLossRequest,
    StopOrderRequest,
    TakeProfitRequest,
)
from alpaca.trading.stream import TradingStream
from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

from core.errors import BrokerError
from core.settings import AlpacaCredentials
from core.types import (
    Fill,
    MarketClock,
    Order,
    OrderClass,
    OrderStatus,
    OrderType,
    Position,
    Side,
    TimeInForce,
)
from trading.ports import Account, OrderUpdate

log = logging.getLogger(__name__)

T = TypeVar("T")


class _Refused:
    """What a `recover` hook returns when the API error it saw is a real refusal."""


REFUSED = _Refused()

TAKE_PROFIT_SUFFIX = "-tp"
STOP_LOSS_SUFFIX = "-sl"
_REPLACE_SUFFIX = re.compile(r"~r(\d+)$")

# Alpaca's many order states, in the engine's fewer words.
_STATUS: dict[str, OrderStatus] = {
    "new": OrderStatus.NEW,
    "pending_new": OrderStatus.NEW,
    "held": OrderStatus.NEW,
    "accepted": OrderStatus.ACCEPTED,
    "accepted_for_bidding": OrderStatus.ACCEPTED,
    "pending_cancel": OrderStatus.ACCEPTED,
    "pending_replace": OrderStatus.ACCEPTED,
    "pending_review": OrderStatus.ACCEPTED,
    "calculated": OrderStatus.ACCEPTED,
    "stopped": OrderStatus.ACCEPTED,
    "suspended": OrderStatus.ACCEPTED,
    "partially_filled": OrderStatus.PARTIALLY_FILLED,
    "filled": OrderStatus.FILLED,
    "done_for_day": OrderStatus.EXPIRED,
    "canceled": OrderStatus.CANCELED,
    "expired": OrderStatus.EXPIRED,
    "replaced": OrderStatus.REPLACED,
    "rejected": OrderStatus.REJECTED,
}


class AlpacaBrokerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # Base URL of the trading REST API (e.g. the local paper exchange); None = Alpaca.
    url_override: str | None = None
    # The trade_updates websocket; None derives it from url_override (`ws://.../stream`).
    stream_url: str | None = None
    # How many recent orders a catch-up compares against what the engine already knows.
    catch_up_orders: int = Field(500, ge=1, le=500)
    reconnect_min_backoff_seconds: float = Field(1.0, gt=0)
    reconnect_max_backoff_seconds: float = Field(30.0, gt=0)


class _DropReconnectNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "websocket error" not in record.getMessage()


class _CatchUpStream(TradingStream):
    """alpaca-py's `TradingStream`, plus a hook run after every (re)connection."""

    def __init__(self, on_connect: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._on_connect = on_connect

    async def _start_ws(self) -> None:
        await super()._start_ws()
        # REST in a worker thread: the stream's loop keeps reading meanwhile.
        await asyncio.to_thread(self._on_connect)


class AlpacaBroker:
    """The `Broker` port on Alpaca (or anything that speaks its API)."""

    def __init__(
        self,
        config: AlpacaBrokerConfig | None = None,
        credentials: AlpacaCredentials | None = None,
        *,
        allow_live: bool = False,
    ) -> None:
        self.config = config or AlpacaBrokerConfig()
        creds = credentials if credentials is not None else AlpacaCredentials()
        api_key, secret_key, paper = creds.require(allow_live=allow_live)
        self._paper = paper
        self._where = (
            self.config.url_override or (BaseURL.TRADING_PAPER if paper else BaseURL.TRADING_LIVE)
        ).rstrip("/")
        self._client = TradingClient(
            api_key, secret_key, paper=paper, url_override=self.config.url_override
        )
        stream_url = self.config.stream_url
        if stream_url is None and self.config.url_override is not None:
            stream_url = re.sub(r"^http", "ws", self.config.url_override.rstrip("/")) + "/stream"
        self._stream_kwargs: dict[str, Any] = {
            "api_key": api_key,
            "secret_key": secret_key,
            "paper": paper,
            "url_override": stream_url,
        }
        self._lock = threading.RLock()
        self._names: dict[str, str] = {}  # Alpaca order id -> engine client_order_id
        self._current: dict[str, str] = {}  # engine client_order_id -> live Alpaca order id
        self._versions: dict[str, int] = {}  # engine client_order_id -> replacements sent
        self._brackets: set[str] = set()  # client_order_ids of bracket entries
        self._known: dict[str, tuple[OrderStatus, float, float | None]] = {}
        self._seeded = False
        self._changes_since: datetime | None = None  # older orders can no longer change
        self._sinks: list[tuple[asyncio.AbstractEventLoop, asyncio.Queue[OrderUpdate]]] = []
        self._stream: _CatchUpStream | None = None
        self._stream_thread: threading.Thread | None = None
        self.stream_connections = 0  # how many times the stream (re)connected
        self.caught_up_updates = 0  # updates recovered by catch-ups

    def __repr__(self) -> str:
        return f"AlpacaBroker(url={self._where!r}, paper={self._paper})"

    # ------------------------------------------------------------------ REST calls
    def _call(
        self,
        what: str,
        action: Callable[[], T],
        recover: Callable[[APIError], T | _Refused] | None = None,
    ) -> T:
        """Run one REST call, turning every failure into a BrokerError that says what was
        asked and why it failed. `recover` may answer an API error the caller expects
        (an order already there, a position already gone) instead of raising."""
        try:
            return action()
        except APIError as exc:
            if recover is not None:
                answer = recover(exc)
                if not isinstance(answer, _Refused):
                    return answer
            raise BrokerError(
                f"{what} refused by {self._where} (HTTP {exc.status_code}): {_api_message(exc)}",
                where="AlpacaBroker",
            ) from None
        except requests.RequestException as exc:
            raise BrokerError(
                f"{what}: cannot reach {self._where} ({type(exc).__name__})",
                where="AlpacaBroker",
            ) from None
        except PydanticValidationError as exc:
            raise BrokerError(
                f"{what}: {self._where} answered with a payload alpaca-py cannot read "
                f"({exc.error_count()} problems, first: {exc.errors()[0]['msg']})",
                where="AlpacaBroker",
            ) from None

    def account(self) -> Account:
        raw: Any = self._call("get account", self._client.get_account)
        return Account(
            equity=float(raw.equity or 0.0),
            cash=float(raw.cash or 0.0),
            buying_power=float(raw.buying_power or 0.0),
            currency=raw.currency or "USD",
        )

    def positions(self) -> list[Position]:
        raw: Any = self._call("list positions", self._client.get_all_positions)
        positions = []
        for item in raw:
            qty = float(item.qty)
            if str(getattr(item.side, "value", item.side)) == "short" and qty > 0:
                qty = -qty
            positions.append(
                Position(
                    symbol=item.symbol,
                    qty=qty,
                    avg_entry_price=float(item.avg_entry_price),
                    market_price=float(item.current_price) if item.current_price else None,
                )
            )
        return positions

    def _fetch_orders(
        self, status: QueryOrderStatus, limit: int = 500, after: datetime | None = None
    ) -> list[AlpacaOrder]:
        request = GetOrdersRequest(status=status, limit=limit, nested=True, after=after)
        raw: Any = self._call(
            f"list {status.value} orders", lambda: self._client.get_orders(request)
        )
        orders: list[AlpacaOrder] = list(raw)
        with self._lock:
            for parent in orders:
                self._learn(parent)
        return orders

    def open_orders(self) -> list[Order]:
        found = []
        for parent in self._fetch_orders(QueryOrderStatus.OPEN):
            for alpaca_order in (parent, *(parent.legs or [])):
                order = self._to_order(alpaca_order)
                if order.status.is_open:
                    found.append(order)
        return found

    def get_order(self, client_order_id: str) -> Order | None:
        with self._lock:
            order_id = self._current.get(client_order_id)
        if order_id is not None:
            return self._order_by_id(client_order_id, order_id)
        try:
            raw: Any = self._client.get_order_by_client_id(client_order_id)
        except APIError as exc:
            if exc.status_code != 404:
                raise BrokerError(
                    f"get order {client_order_id} refused by {self._where} "
                    f"(HTTP {exc.status_code}): {_api_message(exc)}",
                    where="AlpacaBroker",
                ) from None
            # A bracket leg Alpaca named itself: its parent tells us its id.
            is_leg = client_order_id.endswith((TAKE_PROFIT_SUFFIX, STOP_LOSS_SUFFIX))
            if is_leg and self.get_order(client_order_id[:-3]) is not None:
                with self._lock:
                    leg_id = self._current.get(client_order_id)
                if leg_id is not None:
                    return self._order_by_id(client_order_id, leg_id)
            return None
        except requests.RequestException as exc:
            raise BrokerError(
                f"get order {client_order_id}: cannot reach {self._where} ({type(exc).__name__})",
                where="AlpacaBroker",
            ) from None
        with self._lock:
            self._learn(raw)
        return self._to_order(raw)

    def _order_by_id(self, client_order_id: str, order_id: str) -> Order:
        raw: Any = self._call(
            f"get order {client_order_id}", lambda: self._client.get_order_by_id(order_id)
        )
        with self._lock:
            self._learn(raw)
        return self._to_order(raw)

    def market_clock(self) -> MarketClock:
        raw: Any = self._call("get clock", self._client.get_clock)
        return MarketClock(
            timestamp=raw.timestamp,
            is_open=bool(raw.is_open),
            next_open=raw.next_open,
            next_close=raw.next_close,
        )

    def submit(self, order: Order) -> Order:
        request = _order_request(order)

        def already_submitted(exc: APIError) -> Any:
            # Submitted before (a retry, or a restart): the order that exists wins.
            if exc.status_code == 422 and "client_order_id" in _api_message(exc):
                existing = self.get_order(order.client_order_id)
                if existing is not None:
                    return existing
            return REFUSED

        raw: Any = self._call(
            f"submit {order.client_order_id} ({order.side.value} {order.qty:g} {order.symbol})",
            lambda: self._client.submit_order(request),
            already_submitted,
        )
        if isinstance(raw, Order):
            return raw
        with self._lock:
            self._learn(raw)
        return self._to_order(raw)

    def cancel(self, client_order_id: str) -> None:
        order_id = self._require_id(client_order_id)
        self._call(f"cancel {client_order_id}", lambda: self._client.cancel_order_by_id(order_id))

    def replace_stop(self, client_order_id: str, stop_price: float) -> Order:
        current = self.get_order(client_order_id)
        if current is None or current.broker_order_id is None:
            raise BrokerError(f"no order {client_order_id} to move", where="AlpacaBroker")
        with self._lock:
            version = self._versions.get(client_order_id, 0) + 1
            self._versions[client_order_id] = version
        request = ReplaceOrderRequest(
            stop_price=_round_price(stop_price),
            client_order_id=f"{client_order_id}~r{version}",
        )
        order_id = current.broker_order_id
        raw: Any = self._call(
            f"move stop {client_order_id} to {stop_price:.2f}",
            lambda: self._client.replace_order_by_id(order_id, request),
        )
        with self._lock:
            self._names[str(raw.id)] = client_order_id
            self._current[client_order_id] = str(raw.id)
        return self._to_order(raw)

    def close_position(self, symbol: str) -> Order | None:
        """Cancel the symbol's resting orders (bracket legs hold its shares) and flatten
        it at the market; None when there is no position."""

        def gone_or_done(exc: APIError) -> Any:
            return None if exc.status_code in (404, 422) else REFUSED

        for order in self.open_orders():
            if order.symbol != symbol or order.broker_order_id is None:
                continue
            self._call(
                f"cancel {order.client_order_id} before closing {symbol}",
                partial(self._client.cancel_order_by_id, order.broker_order_id),
                gone_or_done,  # gone or done meanwhile: fine
            )
        raw: Any = self._call(
            f"close position {symbol}",
            lambda: self._client.close_position(symbol),
            lambda exc: None if exc.status_code == 404 else REFUSED,
        )
        if raw is None:
            return None
        with self._lock:
            self._learn(raw)
        return self._to_order(raw)

    def _require_id(self, client_order_id: str) -> str:
        order = self.get_order(client_order_id)
        if order is None or order.broker_order_id is None:
            raise BrokerError(f"no order {client_order_id} at {self._where}", where="AlpacaBroker")
        return order.broker_order_id

    # ------------------------------------------------------------------ identities
    def _learn(self, alpaca_order: AlpacaOrder) -> None:
        """Remember the engine's names for an order and its legs (caller holds the lock)."""
        name = self._name(alpaca_order)
        if _value(alpaca_order.order_class) == "bracket" and not name.endswith(
            (TAKE_PROFIT_SUFFIX, STOP_LOSS_SUFFIX)
        ):
            self._brackets.add(name)
        order_id = str(alpaca_order.id)
        self._names[order_id] = name
        if _STATUS.get(_value(alpaca_order.status)) is not OrderStatus.REPLACED:
            self._current[name] = order_id
        match = _REPLACE_SUFFIX.search(alpaca_order.client_order_id)
        if match:
            self._versions[name] = max(self._versions.get(name, 0), int(match.group(1)))
        for leg in alpaca_order.legs or []:
            kind = (
                STOP_LOSS_SUFFIX
                if _value(leg.type or leg.order_type)
                in (
                    "stop",
                    "stop_limit",
                    "trailing_stop",
                )
                else TAKE_PROFIT_SUFFIX
            )
            leg_name = name + kind
            self._names[str(leg.id)] = leg_name
            if _STATUS.get(_value(leg.status)) is not OrderStatus.REPLACED:
                self._current[leg_name] = str(leg.id)

    def _name(self, alpaca_order: AlpacaOrder) -> str:
        known = self._names.get(str(alpaca_order.id))
        if known is not None:
            return known
        return _REPLACE_SUFFIX.sub("", alpaca_order.client_order_id)

    def _to_order(self, raw: AlpacaOrder, parent_name: str | None = None) -> Order:
        with self._lock:
            name = self._name(raw)
            if parent_name is None and name.endswith((TAKE_PROFIT_SUFFIX, STOP_LOSS_SUFFIX)):
                # A leg: its parent was seen as a bracket, or it shows the parent's class
                # without legs of its own (how a leg looks when fetched alone).
                is_leg = name[:-3] in self._brackets or (
                    _value(raw.order_class) == "bracket" and not raw.legs
                )
                parent_name = name[:-3] if is_leg else None
        take_profit = stop_loss = None
        for leg in raw.legs or []:
            if _value(leg.type or leg.order_type) in ("stop", "stop_limit"):
                stop_loss = _float(leg.stop_price)
            else:
                take_profit = _float(leg.limit_price)
        order_type = _value(raw.type or raw.order_type)
        order_class = _value(raw.order_class)
        return Order(
            client_order_id=name,
            symbol=raw.symbol or "",
            side=Side.BUY if _value(raw.side) == "buy" else Side.SELL,
            qty=_float(raw.qty) or 0.0,
            type=OrderType.STOP if order_type == "trailing_stop" else OrderType(order_type),
            limit_price=_float(raw.limit_price),
            stop_price=_float(raw.stop_price),
            time_in_force=TimeInForce.GTC
            if _value(raw.time_in_force) == "gtc"
            else TimeInForce.DAY,
            order_class=OrderClass.OCO
            if parent_name is not None
            else (
                OrderClass(order_class) if order_class in ("bracket", "oco") else OrderClass.SIMPLE
            ),
            take_profit_price=take_profit,
            stop_loss_price=stop_loss,
            status=_STATUS.get(_value(raw.status), OrderStatus.ACCEPTED),
            broker_order_id=str(raw.id),
            parent_client_order_id=parent_name,
            filled_qty=_float(raw.filled_qty) or 0.0,
            filled_avg_price=_float(raw.filled_avg_price),
            created_at=raw.submitted_at or raw.created_at,
        )

    # ------------------------------------------------------------------ updates
    async def updates(self) -> AsyncIterator[OrderUpdate]:
        """Order updates from the `trade_updates` stream, with catch-up after reconnects."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[OrderUpdate] = asyncio.Queue()
        sink = (loop, queue)
        with self._lock:
            self._sinks.append(sink)
        self.start_stream()
        try:
            while True:
                yield await queue.get()
        finally:
            with self._lock:
                if sink in self._sinks:
                    self._sinks.remove(sink)

    def start_stream(self) -> None:
        """Connect the stream (idempotent). What is on the books now is the baseline; the
        stream and the catch-ups report changes from here on."""
        with self._lock:
            if self._stream_thread is not None:
                return
            if not self._seeded:
                self._seed()
            stream = _CatchUpStream(on_connect=self._on_connect, **self._stream_kwargs)
            stream._reconnect_min_backoff = self.config.reconnect_min_backoff_seconds
            stream._reconnect_max_backoff = self.config.reconnect_max_backoff_seconds
            stream.subscribe_trade_updates(self._on_trade_update)
            self._stream = stream
            self._stream_thread = threading.Thread(
                target=stream.run, name="alpaca-trade-updates", daemon=True
            )
            self._stream_thread.start()

    def close(self) -> None:
        """Stop the stream thread."""
        with self._lock:
            stream, thread = self._stream, self._stream_thread
            self._stream = self._stream_thread = None
        # alpaca-py logs the socket we close on purpose as a "websocket error".
        sdk_log = logging.getLogger("alpaca.trading.stream")
        quiet = _DropReconnectNoise()
        sdk_log.addFilter(quiet)
        try:
            if stream is not None and stream._loop is not None:
                with contextlib.suppress(Exception):
                    stream.stop()
                    # alpaca-py checks its stop flag only between 5 s receive timeouts;
                    # closing the socket ends the wait now.
                    asyncio.run_coroutine_threadsafe(stream.close(), stream._loop).result(timeout=5)
            if thread is not None:
                thread.join(timeout=10)
        finally:
            sdk_log.removeFilter(quiet)

    def _seed(self) -> None:
        for order, _ in self.recent_orders():
            self._known[order.client_order_id] = _state(order)
        self._seeded = True

    def sync(self) -> list[OrderUpdate]:
        """Bring the updates up to date now, over REST: what changed since the stream or
        the last sync reported (the first call only takes the baseline). The updates are
        returned, not streamed; the stream will not repeat them."""
        with self._lock:
            if not self._seeded:
                self._seed()
                return []
        return self._catch_up()

    def recent_orders(self, after: datetime | None = None) -> list[tuple[Order, datetime | None]]:
        """The open orders, plus the others submitted after `after` (all recent ones when
        None), legs included, each with the time of its last change."""
        seen: dict[str, tuple[Order, datetime | None]] = {}
        open_since: datetime | None = None
        newest: datetime | None = None
        for status, since in ((QueryOrderStatus.ALL, after), (QueryOrderStatus.OPEN, None)):
            for parent in self._fetch_orders(status, self.config.catch_up_orders, since):
                parent_order = self._to_order(parent)
                submitted = parent.submitted_at or parent.created_at
                newest = submitted if newest is None else max(newest, submitted)
                legs = [
                    self._to_order(leg, parent_order.client_order_id) for leg in parent.legs or []
                ]
                if parent_order.status.is_open or any(leg.status.is_open for leg in legs):
                    open_since = submitted if open_since is None else min(open_since, submitted)
                if parent_order.status is not OrderStatus.REPLACED:
                    seen[parent_order.client_order_id] = (parent_order, _changed_at(parent))
                for leg_order, leg in zip(legs, parent.legs or [], strict=True):
                    if leg_order.status is not OrderStatus.REPLACED:
                        seen[leg_order.client_order_id] = (leg_order, _changed_at(leg))
        # Only orders still open (or submitted later) can change before the next look.
        floor = open_since or newest
        if floor is not None:
            with self._lock:
                self._changes_since = floor - timedelta(seconds=1)
        return list(seen.values())

    def _on_connect(self) -> None:
        self.stream_connections += 1
        try:
            updates = self._catch_up()
        except BrokerError as exc:
            log.warning("catch-up after stream connect failed: %s", exc.message)
            return
        self.caught_up_updates += len(updates)
        for update in updates:
            self._deliver(update)

    def _catch_up(self) -> list[OrderUpdate]:
        with self._lock:
            since = self._changes_since
        orders = self.recent_orders(since)
        updates = []
        with self._lock:
            for order, changed_at in orders:
                update = self._catch_up_update(order, changed_at)
                if update is not None:
                    updates.append(update)
        # In the order they happened; at one time, fills before the cancels they caused.
        updates.sort(key=lambda u: (u.timestamp is None, u.timestamp, u.fill is None))
        return updates

    def _catch_up_update(self, order: Order, changed_at: datetime | None) -> OrderUpdate | None:
        """The update the stream would have sent for what changed since we last knew."""
        at = changed_at or order.created_at
        known = self._known.get(order.client_order_id)
        if known is None:
            self._known[order.client_order_id] = _state(order)
            if order.filled_qty <= 0 and order.status.is_open:
                return OrderUpdate("new", order, order.status, None, at)
            known = (OrderStatus.NEW, 0.0, None)
        status, filled_qty, stop_price = known
        self._known[order.client_order_id] = _state(order)
        if order.filled_qty > filled_qty + 1e-9:
            # Alpaca reports only the average price; exact for orders filled in one go.
            fill = _fill(order, order.filled_qty - filled_qty, order.filled_avg_price, at)
            event = "fill" if order.status is OrderStatus.FILLED else "partial_fill"
            return OrderUpdate(event, order, order.status, fill, at)
        if order.status is not status and not order.status.is_open:
            return OrderUpdate(order.status.value, order, order.status, None, at)
        if order.stop_price != stop_price and order.status.is_open:
            return OrderUpdate("replaced", order, order.status, None, at)
        return None

    async def _on_trade_update(self, data: TradeUpdate) -> None:
        with self._lock:
            self._learn(data.order)
            update = self._stream_update(data)
        if update is not None:
            self._deliver(update)

    def _stream_update(self, data: TradeUpdate) -> OrderUpdate | None:
        order = self._to_order(data.order)
        event = _value(data.event)
        known = self._known.get(order.client_order_id)
        self._known[order.client_order_id] = _state(order)
        fill = None
        if event in ("fill", "partial_fill"):
            if known is not None and order.filled_qty <= known[1] + 1e-9:
                return None  # a catch-up already reported this fill
            previous = known[1] if known is not None else 0.0
            price = float(data.price) if data.price is not None else order.filled_avg_price
            qty = float(data.qty) if data.qty is not None else order.filled_qty - previous
            fill = _fill(order, qty, price, data.timestamp)
        elif known is not None and known[0] is order.status and not order.status.is_open:
            return None  # already reported
        return OrderUpdate(event, order, order.status, fill, data.timestamp)

    def _deliver(self, update: OrderUpdate) -> None:
        with self._lock:
            sinks = list(self._sinks)
        for loop, queue in sinks:
            with contextlib.suppress(RuntimeError):  # the consumer's loop has closed
                loop.call_soon_threadsafe(queue.put_nowait, update)


# ---------------------------------------------------------------------- helpers
def _order_request(order: Order) -> OrderRequest:
    common: dict[str, Any] = {
        "symbol": order.symbol,
        "qty": order.qty,
        "side": OrderSide.BUY if order.side is Side.BUY else OrderSide.SELL,
        "time_in_force": AlpacaTimeInForce.GTC
        if order.time_in_force is TimeInForce.GTC
        else AlpacaTimeInForce.DAY,
        "client_order_id": order.client_order_id,
    }
    if order.order_class is OrderClass.BRACKET:
        if order.take_profit_price is None or order.stop_loss_price is None:
            raise BrokerError(
                f"bracket order {order.client_order_id} needs take_profit_price and "
                "stop_loss_price",
                where="AlpacaBroker.submit",
            )
        common["order_class"] = AlpacaOrderClass.BRACKET
        common["take_profit"] = TakeProfitRequest(limit_price=_round_price(order.take_profit_price))
        common["stop_loss"] = StopLossRequest(stop_price=_round_price(order.stop_loss_price))
    if order.order_class is OrderClass.OCO:
        # An exit pair for shares held: a limit at the take-profit plus a stop leg.
        if order.take_profit_price is None or order.stop_loss_price is None:
            raise BrokerError(
                f"oco order {order.client_order_id} needs take_profit_price and stop_loss_price",
                where="AlpacaBroker.submit",
            )
        return LimitOrderRequest(
            limit_price=_round_price(order.take_profit_price),
            order_class=AlpacaOrderClass.OCO,
            take_profit=TakeProfitRequest(limit_price=_round_price(order.take_profit_price)),
            stop_loss=StopLossRequest(stop_price=_round_price(order.stop_loss_price)),
            **common,
        )
    try:
        if order.type is OrderType.MARKET:
            return MarketOrderRequest(**common)
        if order.type is OrderType.LIMIT:
            return LimitOrderRequest(limit_price=_round_price(order.limit_price), **common)
        if order.type is OrderType.STOP:
            return StopOrderRequest(stop_price=_round_price(order.stop_price), **common)
        return StopLimitOrderRequest(
            stop_price=_round_price(order.stop_price),
            limit_price=_round_price(order.limit_price),
            **common,
        )
    except (PydanticValidationError, ValueError) as exc:
        raise BrokerError(
            f"order {order.client_order_id} cannot be expressed for Alpaca: {exc}",
            where="AlpacaBroker.submit",
        ) from None


def _round_price(price: float | None) -> float:
    """Alpaca refuses sub-penny prices: cents from $1 up, 4 decimals below."""
    if price is None:
        raise BrokerError("a price is missing for this order type", where="AlpacaBroker")
    return round(price, 2 if price >= 1 else 4)


def _state(order: Order) -> tuple[OrderStatus, float, float | None]:
    return (order.status, order.filled_qty, order.stop_price)


def _fill(order: Order, qty: float, price: float | None, at: datetime | None = None) -> Fill:
    return Fill(
        fill_id=f"{order.client_order_id}:{order.filled_qty:g}",
        client_order_id=order.client_order_id,
        symbol=order.symbol,
        side=order.side,
        qty=qty,
        price=price if price is not None else (order.filled_avg_price or 0.0),
        timestamp=at or order.created_at or datetime.now().astimezone(),
    )


def _changed_at(raw: AlpacaOrder) -> datetime | None:
    return raw.filled_at or raw.canceled_at or raw.expired_at or raw.failed_at or raw.updated_at


def _float(value: Any) -> float | None:
    if value is None or value == "":
        return None
    return float(value)


def _value(value: Any) -> str:
    return str(getattr(value, "value", value))


def _api_message(exc: APIError) -> str:
    try:
        return str(exc.message)
    except (ValueError, KeyError, TypeError):
        return str(exc)[:300]


__all__ = ["AlpacaBroker", "AlpacaBrokerConfig"]
