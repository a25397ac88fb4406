"""Entries submitted and not yet filled: the plan behind each entry order (signal,
decision, features, size) by `client_order_id`, and which symbol waits on which entry.
The engine counts them as exposure in the risk checks and hands a plan to the position
book when its order fills."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from core.types import Decision, Signal
from trading.position_book import EntryIntent

ENTRY_PREFIX = "tw-"


def entry_order_id(signal: Signal) -> str:
    """The entry's deterministic client order id, `tw-<signal_id>`: resubmitting the same
    signal (a retry, a restart) is a no-op at the broker."""
    return f"{ENTRY_PREFIX}{signal.signal_id}"


@dataclass(frozen=True, slots=True)
class EntryPlan:
    signal: Signal
    decision: Decision
    features: dict[str, float]
    qty: float

    @property
    def intent(self) -> EntryIntent:
        return EntryIntent(self.signal.strategy, self.decision, self.features)


class PendingEntries:
    def __init__(self) -> None:
        self._plans: dict[str, EntryPlan] = {}  # entry client_order_id → plan
        self._waiting: dict[str, str] = {}  # symbol → entry client_order_id not yet filled

    def add(self, client_order_id: str, plan: EntryPlan) -> None:
        self._plans[client_order_id] = plan
        self._waiting[plan.signal.symbol] = client_order_id

    def register(self, symbol: str, client_order_id: str) -> None:
        """An entry known only by its order (found at the broker after a restart)."""
        self._waiting[symbol] = client_order_id

    def plan(self, client_order_id: str) -> EntryPlan | None:
        return self._plans.get(client_order_id)

    def is_waiting(self, symbol: str, client_order_id: str) -> bool:
        return self._waiting.get(symbol) == client_order_id

    def forget(self, client_order_id: str) -> None:
        """The entry is gone (refused, canceled, expired): drop its plan and the wait."""
        plan = self._plans.pop(client_order_id, None)
        if plan is not None and self._waiting.get(plan.signal.symbol) == client_order_id:
            del self._waiting[plan.signal.symbol]

    def filled(self, symbol: str, client_order_id: str) -> None:
        """The entry filled completely: it no longer waits."""
        self._plans.pop(client_order_id, None)
        if self._waiting.get(symbol) == client_order_id:
            del self._waiting[symbol]

    def waiting(self) -> Iterator[tuple[str, EntryPlan]]:
        """(symbol, plan) of every entry still waiting whose plan is known."""
        for symbol, client_order_id in self._waiting.items():
            plan = self._plans.get(client_order_id)
            if plan is not None:
                yield symbol, plan
