"""Reconcile on start: align the engine's books with the broker after a restart.

- Positions the broker holds and the book does not know are adopted (strategy
  `adopted`), with their resting stop leg re-attached so the trailing stop keeps working;
  the trade id is the stop's parent entry when there is one.
- Open entry orders (`tw-…`, no parent) of symbols without a position wait again as
  pending entries, so the risk checks count them.
- Every order the journal still thinks is open is written with the broker's current
  state; an order the broker no longer knows is journaled as canceled (`vanished`).

Nothing is submitted or canceled here."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from core.types import Order, OrderClass, OrderStatus, OrderType, Position, Side
from trading.journal import Journal
from trading.pending_entries import ENTRY_PREFIX, PendingEntries
from trading.ports import Broker
from trading.position_book import OpenPosition, PositionBook

ADOPTED = "adopted"


@dataclass(frozen=True)
class Reconciliation:
    adopted: list[str] = field(default_factory=list)  # symbols
    pending: list[str] = field(default_factory=list)  # entry client_order_ids
    vanished: list[str] = field(default_factory=list)  # client_order_ids

    def as_dict(self) -> dict[str, list[str]]:
        return {"adopted": self.adopted, "pending": self.pending, "vanished": self.vanished}


def reconcile(
    *,
    broker: Broker,
    journal: Journal,
    book: PositionBook,
    pending: PendingEntries,
    now: datetime,
    symbols: frozenset[str] | None = None,
) -> Reconciliation:
    """Adopt, re-register and correct the journal as the module says; with `symbols`,
    positions and orders of other symbols are not the engine's and stay untouched."""
    open_orders = {
        o.client_order_id: o
        for o in broker.open_orders()
        if symbols is None or o.symbol in symbols
    }
    adopted: list[str] = []
    for held in broker.positions():
        if held.symbol in book or held.qty == 0:
            continue
        if symbols is not None and held.symbol not in symbols:
            continue
        book.adopt(_adopted_position(held, list(open_orders.values()), now))
        adopted.append(held.symbol)
    waiting: list[str] = []
    for order in open_orders.values():
        if (
            order.client_order_id.startswith(ENTRY_PREFIX)
            and order.parent_client_order_id is None
            and order.symbol not in book
        ):
            pending.register(order.symbol, order.client_order_id)
            waiting.append(order.client_order_id)
    vanished = _correct_journal(broker, journal, open_orders, now)
    journal.flush()
    return Reconciliation(adopted, waiting, vanished)


def _adopted_position(held: Position, orders: list[Order], now: datetime) -> OpenPosition:
    stop = next(
        (
            o
            for o in orders
            if o.symbol == held.symbol and o.type in (OrderType.STOP, OrderType.STOP_LIMIT)
        ),
        None,
    )
    entry_id = (
        stop.parent_client_order_id
        if stop is not None and stop.parent_client_order_id
        else f"{ADOPTED}-{held.symbol}"
    )
    return OpenPosition(
        symbol=held.symbol,
        side=Side.BUY if held.qty > 0 else Side.SELL,
        qty=abs(held.qty),
        entry_price=held.avg_entry_price,
        entry_time=now,
        trade_id=entry_id,
        strategy=ADOPTED,
        decision=None,
        features={},
        stop_order_id=stop.client_order_id if stop else None,
        stop_price=stop.stop_price if stop else None,
        entry_qty=abs(held.qty),
    )


def _correct_journal(
    broker: Broker, journal: Journal, open_orders: dict[str, Order], now: datetime
) -> list[str]:
    vanished: list[str] = []
    for client_order_id in journal.orders(open_only=True)["client_order_id"]:
        if client_order_id in open_orders:
            continue
        current = broker.get_order(client_order_id)
        if current is not None:
            journal.record_order(current, at=now)
            continue
        vanished.append(client_order_id)
        stale = journal.frame("orders")
        row = stale[stale["client_order_id"] == client_order_id].iloc[0]
        journal.record_order(
            Order(
                client_order_id=client_order_id,
                symbol=str(row["symbol"]),
                side=Side(row["side"]),
                qty=float(row["qty"]),
                type=OrderType(row["type"]),
                status=OrderStatus.CANCELED,
                order_class=OrderClass(row["order_class"]),
            ),
            at=now,
        )
    return vanished
