"""Alpaca's trading-API wire format, as the paper exchange speaks it: orders, positions,
account, clock and `trade_updates` messages rendered as the JSON that the unmodified
`alpaca-py` SDK parses, plus Alpaca-style error bodies (`{"code": ..., "message": ...}`).

Pure functions over Tradewind's domain types and the venue's order book-keeping; no I/O."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from core.types import MarketClock, Order, OrderClass, OrderStatus, OrderType, Position
from trading.ports import Account

# Every id the exchange hands out is derived from the order's identity, so a restarted
# exchange gives the same ids back without storing them.
ID_NAMESPACE = uuid.UUID("6f1c1d2e-5b7a-4c8e-9f0a-2d3b4c5e6f70")
ACCOUNT_ID = uuid.uuid5(ID_NAMESPACE, "paper-account")

# Alpaca's error codes: the first three digits are the HTTP status.
ERROR_CODES: dict[int, int] = {
    400: 40010000,
    401: 40110000,
    403: 40310000,
    404: 40410000,
    409: 40910000,
    422: 42210000,
    500: 50010000,
    502: 50210000,
}


def error_body(status: int, message: str) -> dict[str, Any]:
    return {"code": ERROR_CODES.get(status, status * 100_000), "message": message}


def order_uuid(client_order_id: str, version: int = 0) -> uuid.UUID:
    """The Alpaca order id of one version of an order (a replace creates a new version)."""
    return uuid.uuid5(ID_NAMESPACE, f"order|{client_order_id}|{version}")


def asset_uuid(symbol: str) -> uuid.UUID:
    return uuid.uuid5(ID_NAMESPACE, f"asset|{symbol}")


@dataclass(slots=True)
class OrderRecord:
    """What the exchange keeps about one order beyond the matching engine's `Order`:
    Alpaca's ids and timestamps, its legs, and its replace history."""

    order: Order
    created_at: datetime
    updated_at: datetime
    version: int = 0
    alpaca_client_order_id: str = ""  # the id Alpaca shows; changes on replace
    legs: tuple[str, ...] = ()  # client_order_ids of the bracket/oco children
    parent: str | None = None
    filled_at: datetime | None = None
    canceled_at: datetime | None = None
    replaced_at: datetime | None = None

    @property
    def order_id(self) -> uuid.UUID:
        return order_uuid(self.order.client_order_id, self.version)


def _num(value: float | None) -> str | None:
    return None if value is None else repr(float(value))


def _time(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def alpaca_status(record: OrderRecord, parent: OrderRecord | None) -> str:
    """Alpaca shows a bracket's exit legs as `held` until the entry has filled."""
    status = record.order.status
    if (
        parent is not None
        and status.is_open
        and parent.order.status not in (OrderStatus.FILLED, OrderStatus.PARTIALLY_FILLED)
    ):
        return "held"
    return status.value


def order_json(
    record: OrderRecord,
    records: dict[str, OrderRecord],
    *,
    nested: bool = True,
) -> dict[str, Any]:
    order = record.order
    parent = records.get(record.parent) if record.parent else None
    legs: list[dict[str, Any]] | None = None
    if nested and record.legs:
        legs = [
            order_json(records[leg], records, nested=False) for leg in record.legs if leg in records
        ]
    elif nested and order.order_class is OrderClass.BRACKET and order.status.is_open:
        # The matching engine creates the exit legs when the entry fills; Alpaca shows
        # them from the start, `held`, under the ids they will have.
        legs = [_held_leg(record, kind) for kind in ("tp", "sl")]
    order_class = order.order_class.value
    if parent is not None:
        order_class = parent.order.order_class.value
    return {
        "id": str(record.order_id),
        "client_order_id": record.alpaca_client_order_id or order.client_order_id,
        "created_at": _time(record.created_at),
        "updated_at": _time(record.updated_at),
        "submitted_at": _time(record.created_at),
        "filled_at": _time(record.filled_at),
        "expired_at": _time(record.updated_at) if order.status is OrderStatus.EXPIRED else None,
        "canceled_at": _time(record.canceled_at),
        "failed_at": _time(record.updated_at) if order.status is OrderStatus.REJECTED else None,
        "replaced_at": _time(record.replaced_at),
        "replaced_by": None,
        "replaces": str(order_uuid(order.client_order_id, record.version - 1))
        if record.version > 0
        else None,
        "asset_id": str(asset_uuid(order.symbol)),
        "symbol": order.symbol,
        "asset_class": "us_equity",
        "notional": None,
        "qty": _num(order.qty),
        "filled_qty": _num(order.filled_qty),
        "filled_avg_price": _num(order.filled_avg_price),
        "order_class": order_class,
        "order_type": order.type.value,
        "type": order.type.value,
        "side": order.side.value,
        "position_intent": None,
        "time_in_force": order.time_in_force.value,
        "limit_price": _num(order.limit_price),
        "stop_price": _num(order.stop_price),
        "status": alpaca_status(record, parent),
        "extended_hours": False,
        "legs": legs,
        "trail_percent": None,
        "trail_price": None,
        "hwm": None,
    }


def _held_leg(record: OrderRecord, kind: str) -> dict[str, Any]:
    entry = record.order
    client_order_id = f"{entry.client_order_id}-{kind}"
    is_stop = kind == "sl"
    return {
        "id": str(order_uuid(client_order_id)),
        "client_order_id": client_order_id,
        "created_at": _time(record.created_at),
        "updated_at": _time(record.updated_at),
        "submitted_at": _time(record.created_at),
        "asset_id": str(asset_uuid(entry.symbol)),
        "symbol": entry.symbol,
        "asset_class": "us_equity",
        "qty": _num(entry.qty),
        "filled_qty": "0",
        "filled_avg_price": None,
        "order_class": OrderClass.BRACKET.value,
        "order_type": "stop" if is_stop else "limit",
        "type": "stop" if is_stop else "limit",
        "side": entry.side.opposite.value,
        "time_in_force": "gtc",
        "limit_price": None if is_stop else _num(entry.take_profit_price),
        "stop_price": _num(entry.stop_loss_price) if is_stop else None,
        "status": "held",
        "extended_hours": False,
        "legs": None,
    }


def replaced_order_json(
    record: OrderRecord, version: int, records: dict[str, OrderRecord]
) -> dict[str, Any]:
    """An earlier version of a replaced order, as Alpaca shows it: status `replaced`,
    pointing at its successor."""
    body = order_json(record, records, nested=False)
    body["id"] = str(order_uuid(record.order.client_order_id, version))
    body["status"] = OrderStatus.REPLACED.value
    body["replaced_by"] = str(order_uuid(record.order.client_order_id, version + 1))
    body["replaces"] = (
        str(order_uuid(record.order.client_order_id, version - 1)) if version > 0 else None
    )
    body["client_order_id"] = (
        record.order.client_order_id
        if version == 0
        else f"{record.order.client_order_id}~r{version}"
    )
    if record.order.type is OrderType.STOP:
        body["stop_price"] = None  # the old price is not kept; only the live version matters
    return body


def position_json(position: Position, last_price: float | None) -> dict[str, Any]:
    price = last_price if last_price is not None else position.avg_entry_price
    qty = position.qty
    cost_basis = qty * position.avg_entry_price
    market_value = qty * price
    unrealized = market_value - cost_basis
    plpc = unrealized / abs(cost_basis) if cost_basis else 0.0
    return {
        "asset_id": str(asset_uuid(position.symbol)),
        "symbol": position.symbol,
        "exchange": "NASDAQ",
        "asset_class": "us_equity",
        "asset_marginable": True,
        "avg_entry_price": _num(position.avg_entry_price),
        "qty": _num(qty),
        "qty_available": _num(qty),
        "side": "long" if qty >= 0 else "short",
        "market_value": _num(market_value),
        "cost_basis": _num(cost_basis),
        "unrealized_pl": _num(unrealized),
        "unrealized_plpc": _num(plpc),
        "unrealized_intraday_pl": _num(unrealized),
        "unrealized_intraday_plpc": _num(plpc),
        "current_price": _num(price),
        "lastday_price": _num(price),
        "change_today": "0.0",
    }


def account_json(
    account: Account,
    positions: list[Position],
    created_at: datetime,
    last_equity: float | None = None,
) -> dict[str, Any]:
    long_value = sum(p.market_value for p in positions if p.qty > 0)
    short_value = sum(p.market_value for p in positions if p.qty < 0)
    return {
        "id": str(ACCOUNT_ID),
        "account_number": "PA0TRADEWIND",
        "status": "ACTIVE",
        "crypto_status": "INACTIVE",
        "currency": account.currency,
        "buying_power": _num(account.buying_power),
        "regt_buying_power": _num(account.buying_power),
        "daytrading_buying_power": "0",
        "non_marginable_buying_power": _num(account.cash),
        "cash": _num(account.cash),
        "accrued_fees": "0",
        "pending_transfer_out": "0",
        "pending_transfer_in": "0",
        "portfolio_value": _num(account.equity),
        "pattern_day_trader": False,
        "trading_blocked": False,
        "transfers_blocked": False,
        "account_blocked": False,
        "created_at": _time(created_at),
        "trade_suspended_by_user": False,
        "multiplier": "1",
        "shorting_enabled": False,
        "equity": _num(account.equity),
        # Alpaca's last_equity: the equity at the previous session's close (the baseline
        # of the day's P&L and of the daily-loss halt); the account's own until a close.
        "last_equity": _num(account.equity if last_equity is None else last_equity),
        "long_market_value": _num(long_value),
        "short_market_value": _num(short_value),
        "initial_margin": "0",
        "maintenance_margin": "0",
        "last_maintenance_margin": "0",
        "sma": "0",
        "daytrade_count": 0,
    }


def clock_json(clock: MarketClock) -> dict[str, Any]:
    fallback = clock.timestamp
    return {
        "timestamp": _time(clock.timestamp),
        "is_open": clock.is_open,
        "next_open": _time(clock.next_open or fallback),
        "next_close": _time(clock.next_close or fallback),
    }


__all__ = [
    "ACCOUNT_ID",
    "OrderRecord",
    "account_json",
    "clock_json",
    "error_body",
    "order_json",
    "order_uuid",
    "position_json",
    "replaced_order_json",
]
