"""`AlpacaBroker`: the `trading.ports.Broker` port on the alpaca-py SDK.

REST goes through `TradingClient` (paper by default, `url_override` for the local paper
exchange); order updates come from `TradingStream`'s `trade_updates`, which reconnects by
itself. Each (re)connection triggers a catch-up: the orders are fetched over REST and
every change the stream did not report (a fill while disconnected, a cancel...) is turned
into the update the engine would have received. Duplicates are dropped, so the engine
sees each fill exactly once, under a deterministic `fill_id` (`<client_order_id>:<filled
quantity>`) whether it came from the stream or from a catch-up.

The adapter is the REST calls and the stream; its three pure parts are their own
modules, each testable without a server: `wire.py` (SDK objects ↔ domain types),
`identities.py` (Alpaca's order ids ↔ the engine's names, bracket legs `<id>-tp`/`<id>-sl`,
replacements `<id>~r<n>`) and `updates.py` (what the engine was told: dedup and catch-up).

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
from alpaca.trading.enums import QueryOrderStatus
from alpaca.trading.models import Order as AlpacaOrder
from alpaca.trading.models import TradeUpdate
from alpaca.trading.requests import GetOrdersRequest, ReplaceOrderRequest
from alpaca.trading.stream import TradingStream
from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

from core.errors import BrokerError
from core.settings import AlpacaCredentials
from core.types import BracketLeg, MarketClock, Order, OrderStatus, Position
from trading.adapters.alpaca import wire
from trading.adapters.alpaca.identities import OrderIdentities
from trading.adapters.alpaca.sdk_streams import stop_sdk_stream
from trading.adapters.alpaca.updates import UpdateTracker, in_order
from trading.ports import Account, OrderUpdate

log = logging.getLogger(__name__)

T = TypeVar("T")


class _Refused:
    """What a `recover` hook returns when the API error it saw is a real refusal."""


REFUSED = _Refused()


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
        self._lock = threading.RLock()  # guards the identities, the tracker and the sinks
        self._identities = OrderIdentities()
        self._tracker = UpdateTracker()
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
                f"{what} refused by {self._where} (HTTP {exc.status_code}): "
                f"{wire.api_message(exc)}",
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
        return wire.to_account(self._call("get account", self._client.get_account))

    def positions(self) -> list[Position]:
        return wire.to_positions(self._call("list positions", self._client.get_all_positions))

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
                self._identities.learn(parent)
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
            order_id = self._identities.order_id(client_order_id)
        if order_id is not None:
            return self._order_by_id(client_order_id, order_id)
        try:
            raw: Any = self._client.get_order_by_client_id(client_order_id)
        except APIError as exc:
            if exc.status_code != 404:
                raise BrokerError(
                    f"get order {client_order_id} refused by {self._where} "
                    f"(HTTP {exc.status_code}): {wire.api_message(exc)}",
                    where="AlpacaBroker",
                ) from None
            # A bracket leg Alpaca named itself: its parent tells us its id.
            entry = BracketLeg.entry_id(client_order_id)
            if entry is not None and self.get_order(entry) is not None:
                with self._lock:
                    leg_id = self._identities.order_id(client_order_id)
                if leg_id is not None:
                    return self._order_by_id(client_order_id, leg_id)
            return None
        except requests.RequestException as exc:
            raise BrokerError(
                f"get order {client_order_id}: cannot reach {self._where} ({type(exc).__name__})",
                where="AlpacaBroker",
            ) from None
        return self._learned(raw)

    def _order_by_id(self, client_order_id: str, order_id: str) -> Order:
        raw: Any = self._call(
            f"get order {client_order_id}", lambda: self._client.get_order_by_id(order_id)
        )
        return self._learned(raw)

    def market_clock(self) -> MarketClock:
        return wire.to_market_clock(self._call("get clock", self._client.get_clock))

    def submit(self, order: Order) -> Order:
        request = wire.order_request(order)

        def already_submitted(exc: APIError) -> Any:
            # Submitted before (a retry, or a restart): the order that exists wins.
            if exc.status_code == 422 and "client_order_id" in wire.api_message(exc):
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
        return self._learned(raw)

    def cancel(self, client_order_id: str) -> None:
        order_id = self._require_id(client_order_id)
        self._call(f"cancel {client_order_id}", lambda: self._client.cancel_order_by_id(order_id))

    def replace_stop(self, client_order_id: str, stop_price: float) -> Order:
        current = self.get_order(client_order_id)
        if current is None or current.broker_order_id is None:
            raise BrokerError(f"no order {client_order_id} to move", where="AlpacaBroker")
        with self._lock:
            replacement = self._identities.next_replacement(client_order_id)
        request = ReplaceOrderRequest(
            stop_price=wire.round_price(stop_price), client_order_id=replacement
        )
        order_id = current.broker_order_id
        raw: Any = self._call(
            f"move stop {client_order_id} to {stop_price:.2f}",
            lambda: self._client.replace_order_by_id(order_id, request),
        )
        with self._lock:
            self._identities.replaced(client_order_id, str(raw.id))
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
        return self._learned(raw)

    def _require_id(self, client_order_id: str) -> str:
        order = self.get_order(client_order_id)
        if order is None or order.broker_order_id is None:
            raise BrokerError(f"no order {client_order_id} at {self._where}", where="AlpacaBroker")
        return order.broker_order_id

    # ------------------------------------------------------------------ identities
    def _learned(self, raw: AlpacaOrder) -> Order:
        """Learn the order's names, then translate it."""
        with self._lock:
            self._identities.learn(raw)
        return self._to_order(raw)

    def _to_order(self, raw: AlpacaOrder, parent_name: str | None = None) -> Order:
        with self._lock:
            name = self._identities.name(raw)
            if parent_name is None:
                parent_name = self._identities.parent_of(raw, name)
        return wire.to_order(raw, name, parent_name)

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
            if not self._tracker.seeded:
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
        stop_sdk_stream(stream, thread, "alpaca.trading.stream")

    def _seed(self) -> None:
        self._tracker.seed(order for order, _ in self.recent_orders())

    def sync(self) -> list[OrderUpdate]:
        """Bring the updates up to date now, over REST: what changed since the stream or
        the last sync reported (the first call only takes the baseline). The updates are
        returned, not streamed; the stream will not repeat them."""
        with self._lock:
            if not self._tracker.seeded:
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
                    seen[parent_order.client_order_id] = (parent_order, wire.changed_at(parent))
                for leg_order, leg in zip(legs, parent.legs or [], strict=True):
                    if leg_order.status is not OrderStatus.REPLACED:
                        seen[leg_order.client_order_id] = (leg_order, wire.changed_at(leg))
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
        with self._lock:
            found = [self._tracker.from_catch_up(order, at) for order, at in orders]
        return in_order(update for update in found if update is not None)

    async def _on_trade_update(self, data: TradeUpdate) -> None:
        with self._lock:
            self._identities.learn(data.order)
            update = self._tracker.from_stream(
                self._to_order(data.order),
                wire.value(data.event),
                price=float(data.price) if data.price is not None else None,
                qty=float(data.qty) if data.qty is not None else None,
                at=data.timestamp,
            )
        if update is not None:
            self._deliver(update)

    def _deliver(self, update: OrderUpdate) -> None:
        with self._lock:
            sinks = list(self._sinks)
        for loop, queue in sinks:
            with contextlib.suppress(RuntimeError):  # the consumer's loop has closed
                loop.call_soon_threadsafe(queue.put_nowait, update)


__all__ = ["AlpacaBroker", "AlpacaBrokerConfig"]
