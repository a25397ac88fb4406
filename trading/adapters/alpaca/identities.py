"""The identity map between Alpaca's order ids and the engine's names.

The engine names an order by its `client_order_id` and a bracket's exit legs
`<id>-tp` (limit) and `<id>-sl` (stop) (`core.types.BracketLeg`). Alpaca gives the legs
ids of its own and a replaced order a new id; a replacement is sent with the client id
`<id>~r<n>`, which maps back to `<id>`. This map learns every order it is shown (legs
included) and answers: the engine's name of an Alpaca order, the live Alpaca id of a
name, whether a leg belongs to a bracket entry, and the next replacement's client id.

Not thread-safe on its own: the broker calls it under its lock."""

from __future__ import annotations

import re

from alpaca.trading.models import Order as AlpacaOrder

from core.types import BracketLeg, OrderStatus
from trading.adapters.alpaca.wire import is_stop, status_of, value

REPLACEMENT = re.compile(r"~r(\d+)$")


class OrderIdentities:
    def __init__(self) -> None:
        self._names: dict[str, str] = {}  # Alpaca order id → engine client_order_id
        self._current: dict[str, str] = {}  # engine client_order_id → live Alpaca order id
        self._versions: dict[str, int] = {}  # engine client_order_id → replacements sent
        self._brackets: set[str] = set()  # client_order_ids of bracket entries

    def learn(self, raw: AlpacaOrder) -> None:
        """Remember the engine's names of an order and of its legs."""
        name = self.name(raw)
        if value(raw.order_class) == "bracket" and BracketLeg.of(name) is None:
            self._brackets.add(name)
        order_id = str(raw.id)
        self._names[order_id] = name
        if status_of(raw) is not OrderStatus.REPLACED:
            self._current[name] = order_id
        match = REPLACEMENT.search(raw.client_order_id)
        if match:
            self._versions[name] = max(self._versions.get(name, 0), int(match.group(1)))
        for leg in raw.legs or []:
            kind = BracketLeg.STOP_LOSS if is_stop(leg) else BracketLeg.TAKE_PROFIT
            leg_name = kind.leg_id(name)
            self._names[str(leg.id)] = leg_name
            if status_of(leg) is not OrderStatus.REPLACED:
                self._current[leg_name] = str(leg.id)

    def name(self, raw: AlpacaOrder) -> str:
        """The engine's name of an Alpaca order (its client id without `~r<n>` when the
        map has not seen it)."""
        known = self._names.get(str(raw.id))
        if known is not None:
            return known
        return REPLACEMENT.sub("", raw.client_order_id)

    def parent_of(self, raw: AlpacaOrder, name: str) -> str | None:
        """The bracket entry a leg named `name` belongs to, or None when it is no leg: its
        parent was seen as a bracket, or it shows the parent's class without legs of its
        own (how a leg looks when fetched alone)."""
        entry = BracketLeg.entry_id(name)
        if entry is None:
            return None
        is_leg = entry in self._brackets or (value(raw.order_class) == "bracket" and not raw.legs)
        return entry if is_leg else None

    def order_id(self, client_order_id: str) -> str | None:
        """The live Alpaca id of the engine's order, when known."""
        return self._current.get(client_order_id)

    def next_replacement(self, client_order_id: str) -> str:
        """The client id of the order's next replacement, `<id>~r<n>`."""
        version = self._versions.get(client_order_id, 0) + 1
        self._versions[client_order_id] = version
        return f"{client_order_id}~r{version}"

    def replaced(self, client_order_id: str, new_order_id: str) -> None:
        """The order now lives under `new_order_id` (a replacement was accepted)."""
        self._names[new_order_id] = client_order_id
        self._current[client_order_id] = new_order_id
