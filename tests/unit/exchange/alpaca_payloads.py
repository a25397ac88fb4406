"""Alpaca orders as alpaca-py parses them, written by hand the way Alpaca sends them:
bracket legs carry ids and client ids of Alpaca's own (random), a replacement a new id."""

from __future__ import annotations

import uuid
from typing import Any

from alpaca.trading.models import Order as AlpacaOrder

CREATED = "2024-03-01T15:00:00Z"


def alpaca_order(**fields: Any) -> AlpacaOrder:
    body: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "client_order_id": "tw-1",
        "created_at": CREATED,
        "updated_at": CREATED,
        "submitted_at": CREATED,
        "asset_id": str(uuid.uuid4()),
        "symbol": "AAA",
        "asset_class": "us_equity",
        "qty": "10",
        "filled_qty": "0",
        "order_class": "simple",
        "order_type": "market",
        "type": "market",
        "side": "buy",
        "time_in_force": "day",
        "status": "new",
        "extended_hours": False,
    }
    body.update(fields)
    return AlpacaOrder(**body)


def bracket(
    client_order_id: str = "tw-1", *, status: str = "new", leg_status: str = "held"
) -> AlpacaOrder:
    """A bracket entry with its two legs, as Alpaca nests them."""
    legs = [
        {"type": "limit", "order_type": "limit", "limit_price": "103.0", "side": "sell"},
        {"type": "stop", "order_type": "stop", "stop_price": "98.0", "side": "sell"},
    ]
    return alpaca_order(
        client_order_id=client_order_id,
        order_class="bracket",
        status=status,
        time_in_force="gtc",
        legs=[
            alpaca_order(
                client_order_id=str(uuid.uuid4()), order_class="bracket", status=leg_status,
                time_in_force="gtc", **leg,
            ).model_dump()
            for leg in legs
        ],
    )  # fmt: skip
