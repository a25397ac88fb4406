"""The update tracker: what the engine has been told about each order, so that every
change reaches it exactly once, whether the `trade_updates` stream reported it or a
catch-up over REST found it after a disconnect.

Per order it keeps (status, filled quantity, stop price). A stream event repeating what
is known is dropped (a fill a catch-up already reported, a second cancel); a catch-up
turns the difference between what is known and what the broker shows into the update
the stream would have sent: a fill of the new quantity, the terminal status, or a
`replaced` when a resting stop moved. Fills carry the deterministic id of
`wire.fill`, `<client_order_id>:<filled quantity>`.

Pure bookkeeping over `core.types.Order`s; not thread-safe on its own (the broker calls
it under its lock)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from core.types import Order, OrderStatus
from trading.adapters.alpaca.wire import fill
from trading.ports import OrderUpdate

FILL_EVENTS: tuple[str, ...] = ("fill", "partial_fill")
_QTY_NOISE = 1e-9

State = tuple[OrderStatus, float, float | None]  # status, filled quantity, stop price


def state_of(order: Order) -> State:
    return (order.status, order.filled_qty, order.stop_price)


class UpdateTracker:
    def __init__(self) -> None:
        self._known: dict[str, State] = {}
        self.seeded = False

    def seed(self, orders: Iterable[Order]) -> None:
        """What is on the books now is the baseline: changes count from here on."""
        for order in orders:
            self._known[order.client_order_id] = state_of(order)
        self.seeded = True

    def known(self, client_order_id: str) -> State | None:
        return self._known.get(client_order_id)

    def from_stream(
        self,
        order: Order,
        event: str,
        *,
        price: float | None,
        qty: float | None,
        at: datetime | None,
    ) -> OrderUpdate | None:
        """The update for a stream event, or None when it repeats what is known. `price`
        and `qty` are the event's own fill price and quantity, when it has them."""
        known = self._known.get(order.client_order_id)
        self._known[order.client_order_id] = state_of(order)
        new_fill = None
        if event in FILL_EVENTS:
            if known is not None and order.filled_qty <= known[1] + _QTY_NOISE:
                return None  # a catch-up already reported this fill
            previous = known[1] if known is not None else 0.0
            new_fill = fill(
                order,
                qty if qty is not None else order.filled_qty - previous,
                price if price is not None else order.filled_avg_price,
                at,
            )
        elif known is not None and known[0] is order.status and not order.status.is_open:
            return None  # already reported
        return OrderUpdate(event, order, order.status, new_fill, at)

    def from_catch_up(self, order: Order, changed_at: datetime | None) -> OrderUpdate | None:
        """The update the stream would have sent for what changed since the order was last
        known, or None when nothing did."""
        at = changed_at or order.created_at
        known = self._known.get(order.client_order_id)
        if known is None:
            self._known[order.client_order_id] = state_of(order)
            if order.filled_qty <= 0 and order.status.is_open:
                return OrderUpdate("new", order, order.status, None, at)
            known = (OrderStatus.NEW, 0.0, None)
        status, filled_qty, stop_price = known
        self._known[order.client_order_id] = state_of(order)
        if order.filled_qty > filled_qty + _QTY_NOISE:
            # Alpaca reports only the average price; exact for orders filled in one go.
            new_fill = fill(order, order.filled_qty - filled_qty, order.filled_avg_price, at)
            event = "fill" if order.status is OrderStatus.FILLED else "partial_fill"
            return OrderUpdate(event, order, order.status, new_fill, at)
        if order.status is not status and not order.status.is_open:
            return OrderUpdate(order.status.value, order, order.status, None, at)
        if order.stop_price != stop_price and order.status.is_open:
            return OrderUpdate("replaced", order, order.status, None, at)
        return None


def in_order(updates: Iterable[OrderUpdate]) -> list[OrderUpdate]:
    """Updates in the order they happened; at one time, fills before the cancels they
    caused."""
    return sorted(updates, key=lambda u: (u.timestamp is None, u.timestamp, u.fill is None))
