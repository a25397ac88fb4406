"""The paper exchange's venue: the ENGINE team's `MatchingEngine` driven by a bar replay,
with Alpaca's view of orders on top (ids, timestamps, bracket legs, replace versions),
the `trade_updates` events it produces, and its command journal for restarts.

Every request arrives here already parsed into domain terms; the HTTP layer (`app.py`)
only translates JSON. The venue runs on one event loop, so it needs no locks."""

from __future__ import annotations

import bisect
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from core.bars import timeframe_step
from core.calendar import MarketCalendar
from core.clock import ReplayClock
from core.errors import ConfigError, TradewindError
from core.types import (
    Bar,
    BracketLeg,
    MarketClock,
    Order,
    OrderClass,
    OrderStatus,
    OrderType,
    Position,
    Side,
    TimeInForce,
)
from trading.adapters.paper_exchange.config import PaperExchangeConfig
from trading.adapters.paper_exchange.journal import CommandJournal
from trading.adapters.paper_exchange.news import NewsArticle, NewsReplay
from trading.adapters.paper_exchange.ticks import (
    PRINTS_PER_BAR,
    price_path,
    print_sizes,
    print_time,
)
from trading.adapters.paper_exchange.wire import (
    ID_NAMESPACE,
    OrderRecord,
    account_json,
    clock_json,
    order_json,
    position_json,
    replaced_order_json,
)
from trading.adapters.simulated.matching import MatchingEngine

EventListener = Callable[[dict[str, Any]], None]


@dataclass(frozen=True, slots=True)
class MarketUpdate:
    """What the market-data streams publish at once: a replayed step's bars, bars revised
    after they were sent (`updatedBars`), and the news the clock has reached."""

    bars: tuple[Bar, ...] = ()
    corrections: tuple[Bar, ...] = ()
    news: tuple[NewsArticle, ...] = ()
    prints: tuple[tuple[Bar, int], ...] = ()  # (bar, print phase) for trades and quotes


BarListener = Callable[[MarketUpdate], None]


class ExchangeRejection(TradewindError):
    """A request the exchange refuses; carries the HTTP status Alpaca would answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.http_status = status


class BarReplay:
    """Bars grouped by timestamp: one step applies every symbol's bar of the next time."""

    def __init__(self, bars: pd.DataFrame) -> None:
        self.steps: list[tuple[datetime, list[Bar]]] = []
        self.symbols: frozenset[str] = frozenset(str(s) for s in bars["symbol"].unique())
        ordered = bars.sort_values(["timestamp", "symbol"])
        for moment, group in ordered.groupby("timestamp", sort=True):
            stamp = pd.Timestamp(moment).to_pydatetime()  # type: ignore[arg-type]
            self.steps.append(
                (
                    stamp,
                    [
                        Bar(
                            symbol=str(row.symbol),
                            timestamp=stamp,
                            open=float(row.open),
                            high=float(row.high),
                            low=float(row.low),
                            close=float(row.close),
                            volume=float(row.volume),
                        )
                        for row in group.itertuples(index=False)
                    ],
                )
            )
        self.times = [stamp for stamp, _ in self.steps]

    def index_after(self, moment: datetime) -> int:
        """Index of the first step strictly after `moment`."""
        return bisect.bisect_right(self.times, moment)


class PaperVenue:
    def __init__(
        self,
        bars: pd.DataFrame,
        config: PaperExchangeConfig,
        news: list[NewsArticle] | None = None,
    ) -> None:
        self.config = config
        self.replay = BarReplay(bars)
        self.news = NewsReplay(news)
        first = self.replay.steps[0][0] if self.replay.steps else datetime(2000, 1, 3).astimezone()
        self.opened_at = first - timedelta(minutes=1)
        self._clock = ReplayClock(self.opened_at)
        self._engine = MatchingEngine(config.exchange, self._clock)
        self._records: dict[str, OrderRecord] = {}
        # What `_sync` looks at after each command: only these can change.
        self._open_ids: set[str] = set()
        self._awaiting_legs: set[str] = set()  # bracket entries whose legs do not exist yet
        self._oco_siblings: dict[str, str] = {}  # stand-alone OCO: each order -> the other
        self._by_alpaca_client_id: dict[str, str] = {}
        self._by_uuid: dict[uuid.UUID, tuple[str, int]] = {}
        self._cursor = 0
        self._step = timeframe_step(config.timeframe)
        self._phase = 0  # prints of the bar at `_cursor` replayed so far (intrabar prints)
        self._bar_time = self.opened_at  # the last bar replayed whole
        # The equity at the last session's close (Alpaca's `last_equity`): taken before
        # the first step of each new session, so it survives a restart by the replay.
        self._last_equity: float | None = None
        self._calendar = MarketCalendar()
        self._listeners: set[EventListener] = set()
        self._bar_listeners: set[BarListener] = set()
        self._replaying = False
        self._pending: list[dict[str, Any]] = []
        self.events_published = 0
        self._journal = CommandJournal(config.state_path)
        self._restore()
        if self._cursor > 0:
            self.news.due(self._bar_time)  # sent before the restart

    # ------------------------------------------------------------------ lifecycle
    def _restore(self) -> None:
        """Replay the command journal through the fresh engine (no events go out)."""
        self._replaying = True
        try:
            for command in self._journal.replay():
                if command.at > self._clock.now():
                    self._clock.advance_to(command.at)
                try:
                    self._apply(command.kind, command.payload)
                except TradewindError as exc:
                    raise ConfigError(
                        f"the saved state {self.config.state_path} does not fit these bars "
                        f"(command {command.seq}, {command.kind}: {exc.message}); start it with "
                        "the same --symbols/--start as before, or with --fresh",
                        where="paper exchange",
                    ) from None
        finally:
            self._replaying = False

    def close(self) -> None:
        self._journal.close()

    def subscribe(self, listener: EventListener) -> None:
        self._listeners.add(listener)

    def unsubscribe(self, listener: EventListener) -> None:
        self._listeners.discard(listener)

    def subscribe_bars(self, listener: BarListener) -> None:
        """`listener(update)` hears every symbol's bar of each replayed step with the news
        its clock reached (the market-data streams), after the step's order events; and
        each correction and admin-loaded article as it comes."""
        self._bar_listeners.add(listener)

    def unsubscribe_bars(self, listener: BarListener) -> None:
        self._bar_listeners.discard(listener)

    # ------------------------------------------------------------------ commands
    def _execute(self, kind: str, payload: dict[str, Any]) -> Any:
        self._pending.clear()
        result = self._apply(kind, payload)
        # Journal only what the engine accepted (a refused request changes nothing), and
        # publish its events only once it is durable.
        self._journal.append(kind, self._clock.now(), payload)
        pending, self._pending = self._pending, []
        for message in pending:
            for listener in list(self._listeners):
                listener(message)
        return result

    def _apply(self, kind: str, payload: dict[str, Any]) -> Any:
        if kind == "submit":
            return self._apply_submit(order_from_dict(payload["order"]))
        if kind == "cancel":
            return self._apply_cancel(payload["client_order_id"])
        if kind == "replace":
            return self._apply_replace(
                payload["client_order_id"], float(payload["stop_price"]), payload.get("alias")
            )
        if kind == "step":
            return self._apply_step(datetime.fromisoformat(payload["timestamp"]))
        if kind == "print":
            return self._apply_print(
                datetime.fromisoformat(payload["timestamp"]), int(payload["phase"])
            )
        raise ExchangeRejection(500, f"unknown journal command {kind!r}")

    def submit(self, order: Order) -> dict[str, Any]:
        if (
            order.client_order_id in self._records
            or order.client_order_id in self._by_alpaca_client_id
        ):
            raise ExchangeRejection(422, "client_order_id must be unique")
        if self.replay.symbols and order.symbol not in self.replay.symbols:
            raise ExchangeRejection(
                422, f"asset {order.symbol!r} is not traded on this exchange (no bars replayed)"
            )
        record = self._execute("submit", {"order": order_to_dict(order)})
        return self.order_json(record)

    def cancel(self, order_id: str) -> None:
        record = self.record_by_id(order_id)
        if not record.order.status.is_open:
            raise ExchangeRejection(
                422, f"order is already in {record.order.status.value} state and cannot be canceled"
            )
        self._execute("cancel", {"client_order_id": record.order.client_order_id})

    def replace(
        self, order_id: str, *, stop_price: float | None, alias: str | None
    ) -> dict[str, Any]:
        record = self.record_by_id(order_id)
        if record.order.type is not OrderType.STOP or stop_price is None:
            raise ExchangeRejection(
                422, "only the stop_price of a stop order can be replaced on the paper exchange"
            )
        if not record.order.status.is_open:
            raise ExchangeRejection(
                422, f"order is already in {record.order.status.value} state and cannot be replaced"
            )
        if stop_price <= 0:
            raise ExchangeRejection(422, "stop_price must be greater than 0")
        if alias is not None and (alias in self._by_alpaca_client_id or alias in self._records):
            raise ExchangeRejection(422, "client_order_id must be unique")
        self._execute(
            "replace",
            {
                "client_order_id": record.order.client_order_id,
                "stop_price": stop_price,
                "alias": alias,
            },
        )
        return self.order_json(record)

    def step(self) -> datetime | None:
        """Replay the next bar time; None when the replay is over."""
        if self._cursor >= len(self.replay.steps):
            return None
        moment, bars = self.replay.steps[self._cursor]
        if self.config.intrabar_prints:
            while self._cursor < len(self.replay.steps) and self._next_bar_time() == moment:
                self.print_step()
            return moment
        self._execute("step", {"timestamp": moment.isoformat()})
        prints = tuple((bar, phase) for phase in range(PRINTS_PER_BAR) for bar in bars)
        self._publish_market(MarketUpdate(bars=tuple(bars), news=tuple(self.news.due(moment)),
                                          prints=prints))
        return moment

    def _next_bar_time(self) -> datetime:
        return self.replay.steps[self._cursor][0]

    def print_step(self) -> datetime | None:
        """Replay the next trade print of every symbol of the next bar (intrabar
        prints): orders match at it; the bar's last print completes the bar, which then
        goes out with the news its time reached. None when the replay is over."""
        if self._cursor >= len(self.replay.steps):
            return None
        moment, bars = self.replay.steps[self._cursor]
        phase = self._phase
        self._execute("print", {"timestamp": moment.isoformat(), "phase": phase})
        last = phase == PRINTS_PER_BAR - 1
        self._publish_market(MarketUpdate(
            bars=tuple(bars) if last else (),
            news=tuple(self.news.due(moment)) if last else (),
            prints=tuple((bar, phase) for bar in bars),
        ))
        return print_time(bars[0], self._step, phase)

    def add_news(self, articles: list[NewsArticle]) -> int:
        """Load articles; those the clock has already reached go out at once. Returns how
        many went out now. (Not journaled: a restart replays the `--news` file only.)"""
        for article in articles:
            self.news.add(article)
        due = self.news.due(self._clock.now()) if self._cursor > 0 else []
        if due:
            self._publish_market(MarketUpdate(news=tuple(due)))
        return len(due)

    def news_count(self) -> int:
        return len(self.news)

    def correct_bar(self, bar: Bar) -> None:
        """Revise a bar already replayed (Alpaca's `updatedBars`): the stream sends the
        new values; orders already matched on the old bar stay as they are."""
        index = self.replay.index_after(bar.timestamp - timedelta(microseconds=1))
        step = self.replay.steps[index] if index < len(self.replay.steps) else None
        if step is None or step[0] != bar.timestamp or index >= self._cursor:
            raise ExchangeRejection(
                422, f"no replayed bar at {bar.timestamp.isoformat()} to correct (only bars "
                "already sent can be revised)"
            )
        bars = step[1]
        for position, old in enumerate(bars):
            if old.symbol == bar.symbol:
                bars[position] = bar
                break
        else:
            raise ExchangeRejection(
                422, f"no {bar.symbol} bar at {bar.timestamp.isoformat()} to correct"
            )
        self._publish_market(MarketUpdate(corrections=(bar,)))

    def _publish_market(self, update: MarketUpdate) -> None:
        for listener in list(self._bar_listeners):
            listener(update)

    # ------------------------------------------------------------------ application
    def _apply_submit(self, order: Order) -> OrderRecord:
        now = self._clock.now()
        before = self._snapshot()
        if order.order_class is OrderClass.OCO:
            return self._apply_submit_oco(order, now, before)
        accepted = self._engine_submit(replace(order, created_at=order.created_at or now))
        record = self._register(accepted, now)
        self._publish_order_event("new", record)
        self._sync(before)
        return record

    def _apply_submit_oco(
        self,
        order: Order,
        now: datetime,
        before: dict[str, tuple[OrderStatus, float, float | None, float | None]],
    ) -> OrderRecord:
        """Alpaca's stand-alone OCO (an exit pair for a position held): a limit order at
        the take-profit with a stop leg `<id>-sl`; the venue cancels one when the other
        fills (the matching engine's own OCO legs belong to brackets)."""
        take_profit = replace(
            order,
            type=OrderType.LIMIT,
            limit_price=order.take_profit_price,
            stop_price=None,
            created_at=now,
        )
        stop_loss = Order(
            client_order_id=BracketLeg.STOP_LOSS.leg_id(order.client_order_id),
            symbol=order.symbol,
            side=order.side,
            qty=order.qty,
            type=OrderType.STOP,
            stop_price=order.stop_loss_price,
            time_in_force=order.time_in_force,
            order_class=OrderClass.OCO,
            parent_client_order_id=order.client_order_id,
            created_at=now,
        )
        parent = self._engine_submit(take_profit)
        try:
            leg = self._engine_submit(stop_loss)
        except ExchangeRejection:
            self._engine.cancel(parent.client_order_id)
            raise
        record = self._register(parent, now)
        self._register(leg, now, parent=parent.client_order_id)
        record.legs = (leg.client_order_id,)
        self._oco_siblings[parent.client_order_id] = leg.client_order_id
        self._oco_siblings[leg.client_order_id] = parent.client_order_id
        self._publish_order_event("new", record)
        self._sync(before)
        return record

    def _engine_submit(self, order: Order) -> Order:
        try:
            accepted = self._engine.submit(order)
        except TradewindError as exc:
            raise ExchangeRejection(
                422 if exc.http_status >= 500 else exc.http_status, exc.message
            ) from None
        except ValueError as exc:
            raise ExchangeRejection(422, str(exc)) from None
        if accepted.status is OrderStatus.REJECTED:
            # Alpaca refuses such orders outright (403) instead of booking them.
            reason = self._engine.rejection_reason(order.client_order_id) or "order rejected"
            raise ExchangeRejection(403, reason)
        return accepted

    def _apply_cancel(self, client_order_id: str) -> None:
        before = self._snapshot()
        try:
            self._engine.cancel(client_order_id)
        except TradewindError as exc:
            raise ExchangeRejection(
                422 if exc.http_status >= 500 else exc.http_status, exc.message
            ) from None
        self._sync(before)

    def _apply_replace(self, client_order_id: str, stop_price: float, alias: str | None) -> None:
        record = self._records[client_order_id]
        before = self._snapshot()
        try:
            moved = self._engine.replace_stop(client_order_id, stop_price)
        except TradewindError as exc:
            raise ExchangeRejection(
                422 if exc.http_status >= 500 else exc.http_status, exc.message
            ) from None
        now = self._clock.now()
        record.version += 1
        record.replaced_at = now
        record.updated_at = now
        record.order = moved
        record.alpaca_client_order_id = alias or f"{client_order_id}~r{record.version}"
        self._by_alpaca_client_id[record.alpaca_client_order_id] = client_order_id
        self._by_uuid[record.order_id] = (client_order_id, record.version)
        self._publish_order_event("replaced", record)
        self._sync(before)

    def _begin_step(self, moment: datetime) -> int:
        """The index of the step at `moment`; a new session marks `last_equity` first."""
        index = self.replay.index_after(moment - timedelta(microseconds=1))
        if index >= len(self.replay.steps) or self.replay.steps[index][0] != moment:
            raise ExchangeRejection(500, f"no bars at {moment.isoformat()} in this replay")
        previous = self.replay.steps[self._cursor - 1][0] if self._cursor > 0 else None
        if previous is not None and self._calendar.session_date(
            previous
        ) != self._calendar.session_date(moment):
            self._last_equity = self._engine.account().equity
        return index

    def _apply_step(self, moment: datetime) -> int:
        index = self._begin_step(moment)
        if moment > self._clock.now():
            self._clock.advance_to(moment)
        before = self._snapshot()
        for bar in self.replay.steps[index][1]:
            self._engine.on_bar(bar)
        self._cursor = index + 1
        self._bar_time = moment
        return self._sync(before)

    def _apply_print(self, moment: datetime, phase: int) -> int:
        """Print `phase` of the step at `moment`: each symbol's price at that print is a
        one-price bar for the matching engine (the same fill rules, at the print)."""
        index = self._begin_step(moment) if phase == 0 else self._cursor
        bars = self.replay.steps[index][1]
        at = print_time(bars[0], self._step, phase)
        if at > self._clock.now():
            self._clock.advance_to(at)
        before = self._snapshot()
        for bar in bars:
            price = price_path(bar)[phase]
            size = float(print_sizes(bar.volume)[phase])
            self._engine.on_bar(Bar(bar.symbol, at, price, price, price, price, size))
        if phase == PRINTS_PER_BAR - 1:
            self._cursor, self._phase, self._bar_time = index + 1, 0, moment
        else:
            self._cursor, self._phase = index, phase + 1
        return self._sync(before)

    # ------------------------------------------------------------------ bookkeeping
    def _register(self, order: Order, now: datetime, parent: str | None = None) -> OrderRecord:
        record = OrderRecord(order=order, created_at=now, updated_at=now, parent=parent)
        self._records[order.client_order_id] = record
        self._by_uuid[record.order_id] = (order.client_order_id, 0)
        if order.status.is_open:
            self._open_ids.add(order.client_order_id)
        if order.order_class is OrderClass.BRACKET and parent is None:
            self._awaiting_legs.add(order.client_order_id)
            self._discover_legs(record, now)
        return record

    def _discover_legs(self, record: OrderRecord, now: datetime) -> None:
        """Bracket/oco children are named `<id>-tp` and `<id>-sl` by the matching engine;
        an engine may create them at submission or when the entry fills."""
        parent_id = record.order.client_order_id
        legs = list(record.legs)
        for leg in BracketLeg:
            child_id = leg.leg_id(parent_id)
            if child_id in self._records:
                continue
            child = self._engine.get_order(child_id)
            if child is not None:
                self._register(child, now, parent=parent_id)
                legs.append(child_id)
        record.legs = tuple(legs)
        if len(legs) >= 2:
            self._awaiting_legs.discard(parent_id)

    def _snapshot(self) -> dict[str, tuple[OrderStatus, float, float | None, float | None]]:
        return {
            coid: (r.order.status, r.order.filled_qty, r.order.filled_avg_price, r.order.stop_price)
            for coid, r in ((coid, self._records[coid]) for coid in self._open_ids)
        }

    def _sync(
        self, before: dict[str, tuple[OrderStatus, float, float | None, float | None]]
    ) -> int:
        """Refresh every order from the engine and publish what changed, in Alpaca's terms."""
        now = self._clock.now()
        published = 0
        for parent_id in list(self._awaiting_legs):
            entry = self._records[parent_id]
            if not entry.order.status.is_open and entry.order.filled_qty <= 0:
                self._awaiting_legs.discard(parent_id)  # closed unfilled: no legs ever
                continue
            # children born in this step: diff them against an empty order
            self._discover_legs(entry, now)
            for leg in self._records[parent_id].legs:
                before.setdefault(leg, (OrderStatus.NEW, 0.0, None, None))
        for coid, sibling in list(self._oco_siblings.items()):
            previous_fill = before.get(coid, (OrderStatus.NEW, 0.0, None, None))[1]
            current_order = self._engine.get_order(coid)
            other = self._engine.get_order(sibling)
            if current_order is None or other is None:
                continue
            if current_order.filled_qty > previous_fill + 1e-12 and other.status.is_open:
                self._engine.cancel(sibling)  # one-cancels-other
            if not current_order.status.is_open and not other.status.is_open:
                self._oco_siblings.pop(coid, None)
        for coid in list(self._open_ids):
            record = self._records[coid]
            current = self._engine.get_order(coid)
            if current is None:
                continue
            previous = before.get(coid)
            record.order = current
            if not current.status.is_open:
                self._open_ids.discard(coid)
            if previous is None:
                continue
            old_status, old_filled, old_avg, _ = previous
            if current.filled_qty > old_filled + 1e-12:
                record.updated_at = now
                if current.status is OrderStatus.FILLED:
                    record.filled_at = now
                qty = current.filled_qty - old_filled
                price = _delta_price(
                    current.filled_qty, current.filled_avg_price, old_filled, old_avg
                )
                event = "fill" if current.status is OrderStatus.FILLED else "partial_fill"
                self._publish_order_event(event, record, qty=qty, price=price)
                published += 1
            elif current.status is not old_status and not current.status.is_open:
                record.updated_at = now
                if current.status is OrderStatus.CANCELED:
                    record.canceled_at = now
                self._publish_order_event(current.status.value, record)
                published += 1
        return published

    def _publish_order_event(
        self,
        event: str,
        record: OrderRecord,
        *,
        qty: float | None = None,
        price: float | None = None,
    ) -> None:
        order = record.order
        data: dict[str, Any] = {
            "event": event,
            "order": self.order_json(record),
            "timestamp": self._clock.now().isoformat(),
        }
        if event in ("fill", "partial_fill"):
            data["execution_id"] = str(
                uuid.uuid5(ID_NAMESPACE, f"fill|{order.client_order_id}|{order.filled_qty!r}")
            )
            data["qty"] = qty
            data["price"] = price
            data["position_qty"] = self._position_qty(order.symbol)
        self.events_published += 1
        if not self._replaying:
            self._pending.append({"stream": "trade_updates", "data": data})

    def _position_qty(self, symbol: str) -> float:
        for position in self._engine.positions():
            if position.symbol == symbol:
                return position.qty
        return 0.0

    # ------------------------------------------------------------------ queries
    def record_by_id(self, order_id: str) -> OrderRecord:
        try:
            key = uuid.UUID(order_id)
        except ValueError:
            raise ExchangeRejection(422, f"order id {order_id!r} is not a valid uuid") from None
        found = self._by_uuid.get(key)
        if found is None:
            raise ExchangeRejection(404, "order not found")
        return self._records[found[0]]

    def order_json_by_id(self, order_id: str, *, nested: bool = True) -> dict[str, Any]:
        record = self.record_by_id(order_id)
        version = self._by_uuid[uuid.UUID(order_id)][1]
        if version < record.version:
            return replaced_order_json(record, version, self._records)
        return order_json(record, self._records, nested=nested)

    def order_json_by_client_id(self, client_order_id: str) -> dict[str, Any]:
        coid = self._by_alpaca_client_id.get(client_order_id, client_order_id)
        record = self._records.get(coid)
        if record is None:
            raise ExchangeRejection(404, "order not found")
        if client_order_id != coid and client_order_id != record.alpaca_client_order_id:
            # an earlier alias of a replaced order
            version = int(client_order_id.rsplit("~r", 1)[-1]) if "~r" in client_order_id else 0
            return replaced_order_json(record, version, self._records)
        return order_json(record, self._records)

    def order_json(self, record: OrderRecord) -> dict[str, Any]:
        return order_json(record, self._records)

    def list_orders(
        self,
        *,
        status: str = "open",
        limit: int = 50,
        after: datetime | None = None,
        until: datetime | None = None,
        direction: str = "desc",
        nested: bool = False,
        symbols: set[str] | None = None,
        side: str | None = None,
    ) -> list[dict[str, Any]]:
        chosen: list[OrderRecord] = []
        for record in self._records.values():
            if nested and record.parent is not None:
                continue
            order = record.order
            is_open = order.status.is_open
            if status == "open" and not is_open and not _has_open_leg(record, self._records):
                continue
            if status == "closed" and is_open:
                continue
            if after is not None and record.created_at <= after:
                continue
            if until is not None and record.created_at >= until:
                continue
            if symbols and order.symbol not in symbols:
                continue
            if side and order.side.value != side:
                continue
            chosen.append(record)
        chosen.sort(
            key=lambda r: (r.created_at, r.order.client_order_id), reverse=direction == "desc"
        )
        return [order_json(r, self._records, nested=nested) for r in chosen[:limit]]

    def positions_json(self) -> list[dict[str, Any]]:
        return [position_json(p, self._engine.last_price(p.symbol)) for p in self._positions()]

    def position_json(self, symbol: str) -> dict[str, Any]:
        for position in self._positions():
            if position.symbol == symbol:
                return position_json(position, self._engine.last_price(symbol))
        raise ExchangeRejection(404, "position does not exist")

    def close_position(self, symbol: str, qty: float | None = None) -> dict[str, Any]:
        position = next((p for p in self._positions() if p.symbol == symbol), None)
        if position is None:
            raise ExchangeRejection(404, "position does not exist")
        size = abs(position.qty) if qty is None else qty
        if size <= 0 or size > abs(position.qty) + 1e-9:
            raise ExchangeRejection(
                422, f"qty {size} is not between 0 and the position's {abs(position.qty)}"
            )
        order = Order(
            client_order_id=f"close-{symbol}-{len(self._records)}",
            symbol=symbol,
            side=Side.SELL if position.qty > 0 else Side.BUY,
            qty=size,
            type=OrderType.MARKET,
            time_in_force=TimeInForce.DAY,
        )
        return self.submit(order)

    def _positions(self) -> list[Position]:
        return [p for p in self._engine.positions() if abs(p.qty) > 1e-12]

    def account_json(self) -> dict[str, Any]:
        return account_json(
            self._engine.account(), self._positions(), self.opened_at, self._last_equity
        )

    def now(self) -> datetime:
        """The time of the last bar replayed whole (nothing later is known; mid-bar, with
        intrabar prints, the bar being printed is not served yet)."""
        return self._bar_time

    def market_clock(self) -> MarketClock:
        remaining = self._cursor < len(self.replay.steps)
        upcoming = self.replay.steps[self._cursor][0] if remaining else None
        return MarketClock(
            timestamp=self._clock.now(),
            is_open=remaining,
            next_open=upcoming,
            next_close=upcoming,
        )

    def clock_json(self) -> dict[str, Any]:
        return clock_json(self.market_clock())

    def state(self) -> dict[str, Any]:
        return {
            "timestamp": self._clock.now().isoformat(),
            "steps_done": self._cursor,
            "steps_total": len(self.replay.steps),
            "orders": len(self._records),
            "events_published": self.events_published,
            "commands": len(self._journal),
            "listeners": len(self._listeners),
        }


def _has_open_leg(record: OrderRecord, records: dict[str, OrderRecord]) -> bool:
    return any(leg in records and records[leg].order.status.is_open for leg in record.legs)


def _delta_price(
    new_qty: float, new_avg: float | None, old_qty: float, old_avg: float | None
) -> float | None:
    if new_avg is None:
        return None
    if old_qty <= 0 or old_avg is None:
        return new_avg
    return (new_avg * new_qty - old_avg * old_qty) / (new_qty - old_qty)


def order_to_dict(order: Order) -> dict[str, Any]:
    values = asdict(order)
    for key, value in values.items():
        if isinstance(value, datetime):
            values[key] = value.isoformat()
        elif hasattr(value, "value"):
            values[key] = value.value
    return values


def order_from_dict(values: dict[str, Any]) -> Order:
    data = dict(values)
    data["side"] = Side(data["side"])
    data["type"] = OrderType(data["type"])
    data["time_in_force"] = TimeInForce(data["time_in_force"])
    data["order_class"] = OrderClass(data["order_class"])
    data["status"] = OrderStatus(data["status"])
    if data.get("created_at"):
        data["created_at"] = datetime.fromisoformat(data["created_at"])
    return Order(**data)
