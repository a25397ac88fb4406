"""Entries between submission and fill."""

from __future__ import annotations

from datetime import UTC, datetime

from core.types import Decision, Side, Signal
from trading.pending_entries import EntryPlan, PendingEntries, entry_order_id

SIGNAL = Signal("AAA", Side.BUY, datetime(2024, 1, 2, tzinfo=UTC), "momentum", 100.0)
PLAN = EntryPlan(SIGNAL, Decision("d", SIGNAL, 0.7, 98.0, 103.0, None, None), {"x": 1.0}, 10.0)


def test_entry_ids_are_deterministic() -> None:
    assert entry_order_id(SIGNAL) == f"tw-{SIGNAL.signal_id}" == entry_order_id(SIGNAL)


def test_a_plan_waits_until_filled_or_forgotten() -> None:
    pending = PendingEntries()
    pending.add("tw-1", PLAN)
    assert pending.is_waiting("AAA", "tw-1")
    assert [symbol for symbol, _ in pending.waiting()] == ["AAA"]
    intent = pending.plan("tw-1").intent  # type: ignore[union-attr]
    assert (intent.strategy, intent.features) == ("momentum", {"x": 1.0})
    pending.filled("AAA", "tw-1")
    assert pending.plan("tw-1") is None
    assert not pending.is_waiting("AAA", "tw-1")
    pending.add("tw-2", PLAN)
    pending.forget("tw-2")
    assert list(pending.waiting()) == []


def test_a_recovered_entry_waits_without_a_plan() -> None:
    pending = PendingEntries()
    pending.register("AAA", "tw-9")
    assert pending.is_waiting("AAA", "tw-9")
    assert list(pending.waiting()) == []  # no plan: no size to count
