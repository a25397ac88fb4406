"""Alpaca's SDK objects in Tradewind's words and back: order requests from `Order`s,
`Order`s, fills, positions, the account and the clock from what alpaca-py parsed. Pure
functions, no I/O: the identity map (`identities.py`) supplies the engine's names.

Alpaca has many order states; `STATUS` maps them to the engine's fewer ones. Alpaca
refuses sub-penny prices (`round_price`). A trailing stop reads as a stop order."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from alpaca.common.exceptions import APIError
from alpaca.trading.enums import OrderClass as AlpacaOrderClass
from alpaca.trading.enums import OrderSide
from alpaca.trading.enums import TimeInForce as AlpacaTimeInForce
from alpaca.trading.models import Order as AlpacaOrder
from alpaca.trading.requests import (
    LimitOrderRequest,
    MarketOrderRequest,
    OrderRequest,
    StopLimitOrderRequest,
    StopLossRequest,
    StopOrderRequest,
    TakeProfitRequest,
)
from pydantic import ValidationError as PydanticValidationError

from core.errors import BrokerError
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
from trading.ports import Account

STATUS: dict[str, OrderStatus] = {
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
STOP_TYPES: tuple[str, ...] = ("stop", "stop_limit", "trailing_stop")


def status_of(raw: AlpacaOrder) -> OrderStatus:
    """The engine's status of an Alpaca order (an unknown state counts as accepted)."""
    return STATUS.get(value(raw.status), OrderStatus.ACCEPTED)


def is_stop(raw: AlpacaOrder) -> bool:
    return value(raw.type or raw.order_type) in STOP_TYPES


def order_request(order: Order) -> OrderRequest:
    """The alpaca-py request submitting `order` (a bracket carries its two legs)."""
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
        common["take_profit"] = TakeProfitRequest(limit_price=round_price(order.take_profit_price))
        common["stop_loss"] = StopLossRequest(stop_price=round_price(order.stop_loss_price))
    if order.order_class is OrderClass.OCO:
        # An exit pair for shares held: a limit at the take-profit plus a stop leg.
        if order.take_profit_price is None or order.stop_loss_price is None:
            raise BrokerError(
                f"oco order {order.client_order_id} needs take_profit_price and stop_loss_price",
                where="AlpacaBroker.submit",
            )
        return LimitOrderRequest(
            limit_price=round_price(order.take_profit_price),
            order_class=AlpacaOrderClass.OCO,
            take_profit=TakeProfitRequest(limit_price=round_price(order.take_profit_price)),
            stop_loss=StopLossRequest(stop_price=round_price(order.stop_loss_price)),
            **common,
        )
    try:
        if order.type is OrderType.MARKET:
            return MarketOrderRequest(**common)
        if order.type is OrderType.LIMIT:
            return LimitOrderRequest(limit_price=round_price(order.limit_price), **common)
        if order.type is OrderType.STOP:
            return StopOrderRequest(stop_price=round_price(order.stop_price), **common)
        return StopLimitOrderRequest(
            stop_price=round_price(order.stop_price),
            limit_price=round_price(order.limit_price),
            **common,
        )
    except (PydanticValidationError, ValueError) as exc:
        raise BrokerError(
            f"order {order.client_order_id} cannot be expressed for Alpaca: {exc}",
            where="AlpacaBroker.submit",
        ) from None


def to_order(raw: AlpacaOrder, name: str, parent_name: str | None) -> Order:
    """Alpaca's order as an `Order` named `name`; `parent_name` is the entry of a bracket
    leg (which makes it an OCO child), None for anything else."""
    take_profit = stop_loss = None
    for leg in raw.legs or []:
        if value(leg.type or leg.order_type) in ("stop", "stop_limit"):
            stop_loss = number(leg.stop_price)
        else:
            take_profit = number(leg.limit_price)
    order_type = value(raw.type or raw.order_type)
    order_class = value(raw.order_class)
    return Order(
        client_order_id=name,
        symbol=raw.symbol or "",
        side=Side.BUY if value(raw.side) == "buy" else Side.SELL,
        qty=number(raw.qty) or 0.0,
        type=OrderType.STOP if order_type == "trailing_stop" else OrderType(order_type),
        limit_price=number(raw.limit_price),
        stop_price=number(raw.stop_price),
        time_in_force=TimeInForce.GTC if value(raw.time_in_force) == "gtc" else TimeInForce.DAY,
        order_class=OrderClass.OCO
        if parent_name is not None
        else (OrderClass(order_class) if order_class in ("bracket", "oco") else OrderClass.SIMPLE),
        take_profit_price=take_profit,
        stop_loss_price=stop_loss,
        status=status_of(raw),
        broker_order_id=str(raw.id),
        parent_client_order_id=parent_name,
        filled_qty=number(raw.filled_qty) or 0.0,
        filled_avg_price=number(raw.filled_avg_price),
        created_at=raw.submitted_at or raw.created_at,
    )


def fill(order: Order, qty: float, price: float | None, at: datetime | None = None) -> Fill:
    """A fill of `order` with a deterministic id, `<client_order_id>:<filled quantity>`:
    the stream and a catch-up name the same fill the same way."""
    return Fill(
        fill_id=f"{order.client_order_id}:{order.filled_qty:g}",
        client_order_id=order.client_order_id,
        symbol=order.symbol,
        side=order.side,
        qty=qty,
        price=price if price is not None else (order.filled_avg_price or 0.0),
        timestamp=at or order.created_at or datetime.now().astimezone(),
    )


def changed_at(raw: AlpacaOrder) -> datetime | None:
    """When the order last changed, as far as Alpaca says."""
    return raw.filled_at or raw.canceled_at or raw.expired_at or raw.failed_at or raw.updated_at


def to_account(raw: Any) -> Account:
    return Account(
        equity=float(raw.equity or 0.0),
        cash=float(raw.cash or 0.0),
        buying_power=float(raw.buying_power or 0.0),
        currency=raw.currency or "USD",
        last_equity=float(raw.last_equity) if getattr(raw, "last_equity", None) else None,
    )


def to_positions(raw: Any) -> list[Position]:
    """Alpaca's positions, short ones with a negative quantity."""
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


def to_market_clock(raw: Any) -> MarketClock:
    return MarketClock(
        timestamp=raw.timestamp,
        is_open=bool(raw.is_open),
        next_open=raw.next_open,
        next_close=raw.next_close,
    )


def round_price(price: float | None) -> float:
    """Alpaca refuses sub-penny prices: cents from $1 up, 4 decimals below."""
    if price is None:
        raise BrokerError("a price is missing for this order type", where="AlpacaBroker")
    return round(price, 2 if price >= 1 else 4)


def number(raw: Any) -> float | None:
    if raw is None or raw == "":
        return None
    return float(raw)


def value(raw: Any) -> str:
    """An SDK enum's value, or the text itself."""
    return str(getattr(raw, "value", raw))


def api_message(exc: APIError) -> str:
    """Alpaca's own message from an API error (its JSON `message`), else the error text."""
    try:
        return str(exc.message)
    except (ValueError, KeyError, TypeError):
        return str(exc)[:300]
