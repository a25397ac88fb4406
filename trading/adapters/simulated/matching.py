"""The matching engine: an in-process exchange for one account. It holds the order book,
the positions and the cash, and fills resting orders against each bar it is shown.

Shared by `SimulatedBroker` (backtests) and the local Alpaca-compatible paper exchange,
so both fill the same way. The fill rules, chosen so a backtest never sees the future:

- An order fills only on a bar that STARTS after the order was submitted
  (`order.created_at < bar.timestamp`): a signal taken on bar t's close fills at bar t+1
  at the earliest.
- Market orders fill at the bar's open, moved against the trader by `slippage_bps`.
- Limit orders fill when the bar reached the limit: at the limit, or at the open when the
  bar gapped through it (a better price). No slippage: a limit guarantees its price.
- Stop orders trigger when the bar reached the stop: at the stop, or at the open when the
  bar gapped through it (a worse price), then slippage is applied.
- Bracket orders: the entry plus two OCO children `<id>-tp` (limit) and `<id>-sl` (stop),
  created when the entry fills. When the entry fills at the bar's open, the children may
  fill later in the same bar (every price of the bar came after its open). When the entry
  fills inside the bar (a limit), the children start on the next bar: the bar cannot tell
  whether its extremes came before or after the entry.
- When a bar reaches both the stop and the take-profit of one bracket and neither was hit
  at the open, the STOP is assumed to have filled first. Daily bars do not say which came
  first; assuming the stop is the conservative choice.
- DAY limit/stop orders expire when a bar of a later UTC date than the first bar they
  could fill on arrives (a US regular session lies within one UTC date); GTC orders rest
  until filled or canceled. Market orders wait for the next bar whatever their time in
  force.
- Partial fills are optional (`max_volume_fraction`): an order fills at most that share
  of a bar's volume, the rest stays open.
- Buy orders beyond buying power (less what open entry orders already reserve) are
  rejected at submission; without `allow_short`, sells never take a position below zero.

Thread-safe (one re-entrant lock), so the paper exchange can serve HTTP requests while
its replay feeds bars. Every event also goes to subscribed listeners (the paper
exchange's `trade_updates` stream, the simulated broker's `updates()`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import date, datetime
from operator import attrgetter
from typing import Any

from core.clock import Clock
from core.errors import BrokerError, DataValidationError, NotFoundError
from core.types import (
    Bar,
    BracketLeg,
    Fill,
    Order,
    OrderClass,
    OrderStatus,
    OrderType,
    Position,
    Side,
    TimeInForce,
)
from trading.adapters.simulated.config import SimulatedExchangeConfig
from trading.ports import Account, OrderUpdate

Listener = Callable[[OrderUpdate], None]

_ORDER_FIELDS = tuple(f.name for f in fields(Order))
_order_values = attrgetter(*_ORDER_FIELDS)
_ORDER_POSITION = {name: position for position, name in enumerate(_ORDER_FIELDS)}


def _evolve(order: Order, **changes: Any) -> Order:
    """`dataclasses.replace` for an `Order` (every field is an init field), without its
    generic per-field machinery: the book copies an order on every state change."""
    values = list(_order_values(order))
    for name, value in changes.items():
        values[_ORDER_POSITION[name]] = value
    return Order(*values)


@dataclass(slots=True)
class _Holding:
    qty: float = 0.0  # signed
    avg_price: float = 0.0


@dataclass(slots=True)
class _Candidate:
    """An order the current bar can fill, and at what price."""

    order_id: str
    price: float
    at_open: bool
    is_stop: bool


class MatchingEngine:
    """Order book, positions and cash of one simulated account."""

    def __init__(self, config: SimulatedExchangeConfig, clock: Clock) -> None:
        self.config = config
        self._clock = clock
        self._lock = threading.RLock()
        self._orders: dict[str, Order] = {}
        self._open_by_symbol: dict[str, list[str]] = {}
        self._children: dict[str, tuple[str, str]] = {}  # bracket entry id -> (tp id, sl id)
        self._holdings: dict[str, _Holding] = {}
        # The non-zero holdings, in the order of `_holdings` (the account sums them in that
        # order): the account is read several times a bar, positions change rarely.
        self._held: list[tuple[str, _Holding]] = []
        self._last_price: dict[str, float] = {}
        self._fill_count: dict[str, int] = {}
        self._fills: list[Fill] = []
        self._reject_reasons: dict[str, str] = {}
        self._first_session: dict[str, date] = {}  # DAY orders: date of their first bar
        self._cash = config.starting_cash
        self._listeners: list[Listener] = []
        self._slip = config.slippage_bps / 10_000.0

    @property
    def clock(self) -> Clock:
        return self._clock

    # ------------------------------------------------------------------ listeners
    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call `listener` with every order update; returns the unsubscribe function."""
        with self._lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unsubscribe

    def _emit(self, update: OrderUpdate, sink: list[OrderUpdate] | None = None) -> None:
        if sink is not None:
            sink.append(update)
        for listener in list(self._listeners):
            listener(update)

    # ------------------------------------------------------------------ queries
    def account(self) -> Account:
        with self._lock:
            long_value = 0.0
            short_value = 0.0
            last_price = self._last_price
            for symbol, holding in self._held:
                value = holding.qty * last_price.get(symbol, holding.avg_price)
                if value >= 0:
                    long_value += value
                else:
                    short_value -= value
            equity = self._cash + long_value - short_value
            buying_power = max(
                0.0, equity * self.config.margin_multiplier - long_value - short_value
            )
            return Account(equity=equity, cash=self._cash, buying_power=buying_power)

    def positions(self) -> list[Position]:
        with self._lock:
            return [
                Position(
                    symbol=symbol,
                    qty=holding.qty,
                    avg_entry_price=holding.avg_price,
                    market_price=self._last_price.get(symbol),
                )
                for symbol, holding in self._holdings.items()
                if holding.qty != 0
            ]

    def position(self, symbol: str) -> Position | None:
        with self._lock:
            holding = self._holdings.get(symbol)
            if holding is None or holding.qty == 0:
                return None
            return Position(symbol, holding.qty, holding.avg_price, self._last_price.get(symbol))

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        with self._lock:
            symbols = [symbol] if symbol is not None else list(self._open_by_symbol)
            return [
                self._orders[order_id]
                for name in symbols
                for order_id in self._open_by_symbol.get(name, [])
            ]

    def get_order(self, client_order_id: str) -> Order | None:
        with self._lock:
            return self._orders.get(client_order_id)

    def orders(self) -> list[Order]:
        """Every order this account ever saw, in submission order."""
        with self._lock:
            return list(self._orders.values())

    def fills(self) -> list[Fill]:
        with self._lock:
            return list(self._fills)

    def rejection_reason(self, client_order_id: str) -> str | None:
        return self._reject_reasons.get(client_order_id)

    def last_price(self, symbol: str) -> float | None:
        return self._last_price.get(symbol)

    def legs(self, client_order_id: str) -> tuple[Order, Order] | None:
        """The take-profit and stop-loss children of a filled bracket entry."""
        with self._lock:
            ids = self._children.get(client_order_id)
            if ids is None:
                return None
            return self._orders[ids[0]], self._orders[ids[1]]

    # ------------------------------------------------------------------ commands
    def submit(self, order: Order) -> Order:
        """Accept (or reject) an order. The same `client_order_id` twice returns the
        order already on the book; it never creates a second one."""
        with self._lock:
            existing = self._orders.get(order.client_order_id)
            if existing is not None:
                return existing
            self._validate(order)
            accepted = _evolve(
                order,
                status=OrderStatus.NEW,
                broker_order_id=order.broker_order_id or f"sim-{len(self._orders) + 1}",
                filled_qty=0.0,
                filled_avg_price=None,
                created_at=self._clock.now(),
            )
            reason = self._rejection(accepted)
            if reason is not None:
                rejected = _evolve(accepted, status=OrderStatus.REJECTED)
                self._orders[order.client_order_id] = rejected
                self._reject_reasons[order.client_order_id] = reason
                self._emit(
                    OrderUpdate(
                        "rejected", rejected, OrderStatus.REJECTED, None, rejected.created_at
                    )
                )
                return rejected
            self._orders[order.client_order_id] = accepted
            self._open_by_symbol.setdefault(order.symbol, []).append(order.client_order_id)
            self._emit(OrderUpdate("new", accepted, OrderStatus.NEW, None, accepted.created_at))
            return accepted

    def cancel(self, client_order_id: str) -> Order:
        """Cancel an open order; canceling a canceled order returns it unchanged."""
        with self._lock:
            order = self._require(client_order_id)
            if order.status in (OrderStatus.CANCELED, OrderStatus.EXPIRED, OrderStatus.REJECTED):
                return order
            if not order.status.is_open:
                raise BrokerError(
                    f"order {client_order_id} is {order.status.value}; it cannot be canceled",
                    where="MatchingEngine.cancel",
                )
            return self._close_order(client_order_id, OrderStatus.CANCELED, "canceled", None)

    def replace_stop(self, client_order_id: str, stop_price: float) -> Order:
        """Move the stop price of a resting stop order (trailing stops)."""
        with self._lock:
            order = self._require(client_order_id)
            if order.type not in (OrderType.STOP, OrderType.STOP_LIMIT):
                raise BrokerError(
                    f"order {client_order_id} is a {order.type.value} order, not a stop",
                    where="MatchingEngine.replace_stop",
                )
            if not order.status.is_open:
                raise BrokerError(
                    f"order {client_order_id} is {order.status.value}; only open stops move",
                    where="MatchingEngine.replace_stop",
                )
            if not stop_price > 0:
                raise DataValidationError(
                    f"stop price must be positive, got {stop_price}",
                    where="MatchingEngine.replace_stop",
                )
            moved = _evolve(order, stop_price=stop_price)
            self._orders[client_order_id] = moved
            self._emit(OrderUpdate("replaced", moved, moved.status, None, self._clock.now()))
            return moved

    # ------------------------------------------------------------------ matching
    def on_bar(self, bar: Bar) -> list[OrderUpdate]:
        """Match the resting orders of `bar.symbol` against the bar; return the updates
        (fills, partial fills, OCO cancels, expiries) in the order they happened."""
        with self._lock:
            updates: list[OrderUpdate] = []
            if self._open_by_symbol.get(bar.symbol):
                self._expire_day_orders(bar, updates)
                new_children = self._match(bar, None, updates)
                if new_children:
                    self._match(bar, new_children, updates)
            self._last_price[bar.symbol] = bar.close
            return updates

    def mark(self, symbol: str, price: float) -> None:
        """Set the last price of a symbol without matching (e.g. a quote)."""
        with self._lock:
            self._last_price[symbol] = price

    def _match(self, bar: Bar, only: list[str] | None, updates: list[OrderUpdate]) -> list[str]:
        """One pass over the book for `bar`. With `only`, consider just those orders and
        ignore their submission time (children born at this bar's open). Returns the ids
        of bracket children created at the open, which may fill within the same bar."""
        ids = only if only is not None else list(self._open_by_symbol.get(bar.symbol, ()))
        candidates: list[_Candidate] = []
        for order_id in ids:
            order = self._orders[order_id]
            if only is None and order.created_at is not None and order.created_at >= bar.timestamp:
                continue
            if order.time_in_force is TimeInForce.DAY and order.type is not OrderType.MARKET:
                self._first_session.setdefault(order_id, bar.timestamp.date())
            candidate = self._price_for(order, bar)
            if candidate is not None:
                candidates.append(candidate)
        # What happened at the open happened first; within the bar, stops before limits
        # (the conservative assumption when a bar reached both legs of a bracket).
        candidates.sort(key=lambda c: (not c.at_open, not c.is_stop))
        born_at_open: list[str] = []
        for candidate in candidates:
            order = self._orders[candidate.order_id]
            if not order.status.is_open:
                continue  # canceled by its OCO sibling earlier in this bar
            children = self._fill(order, candidate.price, bar, updates)
            if children and candidate.at_open:
                born_at_open.extend(children)
        return born_at_open

    def _price_for(self, order: Order, bar: Bar) -> _Candidate | None:
        buy = order.side is Side.BUY
        if order.type is OrderType.MARKET:
            price = bar.open * (1 + self._slip) if buy else bar.open * (1 - self._slip)
            return _Candidate(order.client_order_id, price, True, False)
        if order.type is OrderType.LIMIT:
            limit = order.limit_price
            assert limit is not None
            if buy and bar.low <= limit:
                at_open = bar.open <= limit
                return _Candidate(
                    order.client_order_id, bar.open if at_open else limit, at_open, False
                )
            if not buy and bar.high >= limit:
                at_open = bar.open >= limit
                return _Candidate(
                    order.client_order_id, bar.open if at_open else limit, at_open, False
                )
            return None
        stop = order.stop_price
        assert stop is not None
        if buy and bar.high >= stop:
            at_open = bar.open >= stop
            trigger = bar.open if at_open else stop
        elif not buy and bar.low <= stop:
            at_open = bar.open <= stop
            trigger = bar.open if at_open else stop
        else:
            return None
        if order.type is OrderType.STOP_LIMIT:
            limit = order.limit_price
            assert limit is not None
            # Triggered stop-limit: fills only if the limit is still reachable.
            if (buy and trigger > limit) or (not buy and trigger < limit):
                if (buy and bar.low <= limit) or (not buy and bar.high >= limit):
                    return _Candidate(order.client_order_id, limit, False, True)
                return None
            return _Candidate(order.client_order_id, trigger, at_open, True)
        price = trigger * (1 + self._slip) if buy else trigger * (1 - self._slip)
        return _Candidate(order.client_order_id, price, at_open, True)

    def _fill(self, order: Order, price: float, bar: Bar, updates: list[OrderUpdate]) -> list[str]:
        remaining = order.qty - order.filled_qty
        qty = remaining
        if self.config.max_volume_fraction is not None:
            qty = min(qty, float(int(bar.volume * self.config.max_volume_fraction)))
        if order.side is Side.SELL and not self.config.allow_short:
            held = self._holdings.get(order.symbol)
            qty = min(qty, max(held.qty, 0.0) if held else 0.0)
            if qty <= 0:
                self._close_order(order.client_order_id, OrderStatus.CANCELED, "canceled", updates)
                return []
        if qty <= 0:
            return []
        commission = qty * self.config.commission_per_share
        self._book_fill(order.symbol, order.side, qty, price, commission)
        filled = order.filled_qty + qty
        avg = (
            price
            if order.filled_avg_price is None
            else ((order.filled_avg_price * order.filled_qty + price * qty) / filled)
        )
        done = filled >= order.qty - 1e-9
        status = OrderStatus.FILLED if done else OrderStatus.PARTIALLY_FILLED
        updated = _evolve(order, filled_qty=filled, filled_avg_price=avg, status=status)
        self._orders[order.client_order_id] = updated
        count = self._fill_count.get(order.client_order_id, 0) + 1
        self._fill_count[order.client_order_id] = count
        fill = Fill(
            fill_id=f"{order.client_order_id}-{count}",
            client_order_id=order.client_order_id,
            symbol=order.symbol,
            side=order.side,
            qty=qty,
            price=price,
            timestamp=bar.timestamp,
            commission=commission,
        )
        self._fills.append(fill)
        if done:
            self._open_by_symbol[order.symbol].remove(order.client_order_id)
        self._emit(
            OrderUpdate("fill" if done else "partial_fill", updated, status, fill, bar.timestamp),
            updates,
        )
        if order.parent_client_order_id is not None:
            self._shrink_sibling(updated, qty, updates)
            return []
        if order.order_class is OrderClass.BRACKET:
            return self._grow_children(updated, bar.timestamp, updates)
        return []

    def _book_fill(
        self, symbol: str, side: Side, qty: float, price: float, commission: float
    ) -> None:
        holding = self._holdings.setdefault(symbol, _Holding())
        signed = qty * side.sign
        new_qty = holding.qty + signed
        if holding.qty == 0 or (holding.qty > 0) == (signed > 0):
            holding.avg_price = (holding.avg_price * abs(holding.qty) + price * qty) / abs(new_qty)
        elif (new_qty > 0) != (holding.qty > 0) and new_qty != 0:
            holding.avg_price = price  # flipped through zero: the rest opened at this price
        was_held = holding.qty != 0
        holding.qty = 0.0 if abs(new_qty) < 1e-9 else new_qty
        if holding.qty == 0:
            holding.avg_price = 0.0
        if was_held != (holding.qty != 0):
            self._held = [(name, held) for name, held in self._holdings.items() if held.qty != 0]
        self._cash -= signed * price + commission

    def _grow_children(self, entry: Order, at: datetime, updates: list[OrderUpdate]) -> list[str]:
        """Create (or enlarge, after a partial fill) the OCO exit legs of a bracket."""
        ids = self._children.get(entry.client_order_id)
        if ids is not None:
            for child_id in ids:
                child = self._orders[child_id]
                if child.status.is_open:
                    self._orders[child_id] = _evolve(child, qty=entry.filled_qty)
            return []
        exit_side = entry.side.opposite
        take_profit = Order(
            client_order_id=BracketLeg.TAKE_PROFIT.leg_id(entry.client_order_id),
            symbol=entry.symbol,
            side=exit_side,
            qty=entry.filled_qty,
            type=OrderType.LIMIT,
            limit_price=entry.take_profit_price,
            time_in_force=TimeInForce.GTC,
            order_class=OrderClass.OCO,
            status=OrderStatus.NEW,
            broker_order_id=f"sim-{len(self._orders) + 1}",
            parent_client_order_id=entry.client_order_id,
            created_at=at,
        )
        stop_loss = _evolve(
            take_profit,
            client_order_id=BracketLeg.STOP_LOSS.leg_id(entry.client_order_id),
            type=OrderType.STOP,
            limit_price=None,
            stop_price=entry.stop_loss_price,
            broker_order_id=f"sim-{len(self._orders) + 2}",
        )
        for child in (take_profit, stop_loss):
            self._orders[child.client_order_id] = child
            self._open_by_symbol[entry.symbol].append(child.client_order_id)
            self._emit(OrderUpdate("new", child, OrderStatus.NEW, None, at), updates)
        self._children[entry.client_order_id] = (
            take_profit.client_order_id,
            stop_loss.client_order_id,
        )
        return [take_profit.client_order_id, stop_loss.client_order_id]

    def _shrink_sibling(self, child: Order, qty: float, updates: list[OrderUpdate]) -> None:
        """One OCO leg filled `qty`: the other leg shrinks by as much, or goes away."""
        ids = self._children.get(child.parent_client_order_id or "")
        if ids is None:
            return
        sibling_id = ids[1] if child.client_order_id == ids[0] else ids[0]
        sibling = self._orders[sibling_id]
        if not sibling.status.is_open:
            return
        left = sibling.qty - qty
        if child.status is OrderStatus.FILLED or left <= sibling.filled_qty + 1e-9:
            self._close_order(sibling_id, OrderStatus.CANCELED, "canceled", updates)
        else:
            self._orders[sibling_id] = _evolve(sibling, qty=left)

    def _expire_day_orders(self, bar: Bar, updates: list[OrderUpdate]) -> None:
        day = bar.timestamp.date()
        for order_id in list(self._open_by_symbol.get(bar.symbol, ())):
            first = self._first_session.get(order_id)
            if first is not None and first < day:
                self._close_order(order_id, OrderStatus.EXPIRED, "expired", updates)

    def _close_order(
        self, order_id: str, status: OrderStatus, event: str, updates: list[OrderUpdate] | None
    ) -> Order:
        order = self._orders[order_id]
        closed = _evolve(order, status=status)
        self._orders[order_id] = closed
        open_ids = self._open_by_symbol.get(order.symbol, [])
        if order_id in open_ids:
            open_ids.remove(order_id)
        self._emit(OrderUpdate(event, closed, status, None, self._clock.now()), updates)
        return closed

    # ------------------------------------------------------------------ validation
    def _require(self, client_order_id: str) -> Order:
        order = self._orders.get(client_order_id)
        if order is None:
            raise NotFoundError(
                f"no order with client_order_id {client_order_id}", where="MatchingEngine"
            )
        return order

    def _validate(self, order: Order) -> None:
        where = f"order {order.client_order_id}"
        problems: list[str] = []
        if not order.client_order_id:
            problems.append("client_order_id is empty")
        if not order.qty > 0:
            problems.append(f"qty must be positive, got {order.qty}")
        if (
            order.type in (OrderType.LIMIT, OrderType.STOP_LIMIT)
            and not (order.limit_price or 0) > 0
        ):
            problems.append(f"{order.type.value} order needs a positive limit_price")
        if order.type in (OrderType.STOP, OrderType.STOP_LIMIT) and not (order.stop_price or 0) > 0:
            problems.append(f"{order.type.value} order needs a positive stop_price")
        if order.order_class is OrderClass.BRACKET:
            take_profit, stop_loss = order.take_profit_price, order.stop_loss_price
            if take_profit is None or stop_loss is None:
                problems.append("bracket order needs take_profit_price and stop_loss_price")
            elif order.side is Side.BUY and not stop_loss < take_profit:
                problems.append(
                    f"buy bracket needs stop_loss {stop_loss} < take_profit {take_profit}"
                )
            elif order.side is Side.SELL and not stop_loss > take_profit:
                problems.append(
                    f"sell bracket needs stop_loss {stop_loss} > take_profit {take_profit}"
                )
        if problems:
            raise DataValidationError("; ".join(problems), where=where)

    def _rejection(self, order: Order) -> str | None:
        if order.side is Side.SELL and not self.config.allow_short:
            held = self._holdings.get(order.symbol)
            if held is None or held.qty <= 0:
                return f"no long position in {order.symbol} to sell and short selling is off"
            return None
        if order.side is Side.BUY:
            held = self._holdings.get(order.symbol)
            if held is not None and held.qty < 0:
                return None  # buying to cover needs no buying power
            price = order.limit_price or order.stop_price or self._last_price.get(order.symbol)
            if price is None:
                return None  # no price known yet: nothing to check against
            cost = (
                order.qty * price * (1 + self._slip) + order.qty * self.config.commission_per_share
            )
            available = self.account().buying_power - self._reserved()
            if cost > available + 1e-6:
                return (
                    f"insufficient buying power: order needs {cost:,.2f}, "
                    f"available {available:,.2f}"
                )
        return None

    def _reserved(self) -> float:
        """Cash that open buy entries will need when they fill."""
        total = 0.0
        for ids in self._open_by_symbol.values():
            for order_id in ids:
                order = self._orders[order_id]
                if order.side is Side.BUY and order.parent_client_order_id is None:
                    price = (
                        order.limit_price
                        or order.stop_price
                        or self._last_price.get(order.symbol, 0.0)
                    )
                    total += (order.qty - order.filled_qty) * price * (1 + self._slip)
        return total
