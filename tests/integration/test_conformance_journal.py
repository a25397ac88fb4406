"""One conformance suite for the SQL stores of the trading side, run over every back end
they support: the trading journal and the A/B outcome store on SQLite (a file in WAL
mode, the default) and on PostgreSQL (a real server started by the session). Each test
gets a fresh database; the same writes must read back the same way on both."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from core.servers import LocalPostgres
from core.settings import load_settings
from core.types import Decision, Fill, Order, OrderStatus, Position, Side, Signal, Trade
from monitoring.store import ABOutcome, ABOutcomeStore, outcome_store_url
from tests.integration.conftest import fresh_postgres_url
from trading.journal import DecisionRecord, Journal

pytestmark = pytest.mark.integration

T = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database of one back end."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'journal.db'}"
    server: LocalPostgres = request.getfixturevalue("postgres")
    return fresh_postgres_url(server, "journal")


@pytest.fixture
def journal(url: str) -> Iterator[Journal]:
    opened = Journal(url)
    yield opened
    opened.close()


def _trade(trade_id: str, days: int) -> Trade:
    return Trade(trade_id, "AAA", Side.BUY, 10, T, 100.0, T + timedelta(days=days), 101.5,
                 "momentum", "take_profit", decision_id=f"d-{trade_id}")


def test_replayed_events_are_written_once_and_survive_reopening(url: str) -> None:
    journal = Journal(url)
    order = Order("tw-1", "AAA", Side.BUY, 10, created_at=T)
    for _ in range(2):  # a replay after a crash writes the same events again
        journal.record_order(order, decision_id="d-1", at=T)
        journal.record_fill(Fill("tw-1-1", "tw-1", "AAA", Side.BUY, 10, 100.0, T))
        journal.record_trade(_trade("tw-1", 3))
        journal.record_rejection(signal_id="s", symbol="AAA", strategy="momentum",
                                 rule="max_positions", reason="full", at=T)
    journal.record_order(
        Order("tw-1", "AAA", Side.BUY, 10, status=OrderStatus.FILLED, filled_qty=10,
              created_at=T),
        at=T + timedelta(days=1),
    )
    journal.close()
    reopened = Journal(url)
    try:
        orders = reopened.orders()
        assert len(orders) == 1
        assert orders.loc[0, "status"] == "filled"  # an upsert: the latest state wins
        assert orders.loc[0, "decision_id"] == "d-1"  # the link made at placement is kept
        assert (len(reopened.fills()), len(reopened.trades()), len(reopened.rejections())) == (
            1, 1, 1)
        assert reopened.has_order("tw-1")
        assert not reopened.has_order("tw-2")
        assert reopened.orders(open_only=True).empty
    finally:
        reopened.close()


def test_times_read_back_as_utc_and_rows_in_time_order(journal: Journal) -> None:
    for trade_id, days in (("b", 5), ("a", 2)):
        journal.record_trade(_trade(trade_id, days))
    trades = journal.trades()
    assert list(trades["trade_id"]) == ["a", "b"]
    assert str(trades["exit_time"].dt.tz) == "UTC"
    assert trades.loc[0, "entry_time"] == pd.Timestamp(T)
    assert trades.loc[1, "exit_time"] == pd.Timestamp(T + timedelta(days=5))
    assert trades["pnl"].tolist() == pytest.approx([15.0, 15.0])


def test_positions_and_equity_keep_their_latest_state(journal: Journal) -> None:
    journal.record_position(Position("AAA", 10, 100.0, 101.0), T)
    journal.record_position(Position("BBB", 5, 50.0, 49.0), T)
    journal.record_position(Position("AAA", 0, 100.0, 102.0), T + timedelta(hours=1))
    for equity in (100_000.0, 100_250.0):  # the same bar written twice: the last one wins
        journal.record_equity(T, equity=equity, cash=90_000.0, positions_value=equity - 90_000,
                              open_positions=1, halted=False)
    assert journal.positions()["symbol"].tolist() == ["BBB"]  # qty 0 marks AAA closed
    equity = journal.equity()
    assert equity["equity"].tolist() == [100_250.0]
    assert equity.loc[0, "timestamp"] == pd.Timestamp(T)


def test_decisions_keep_versions_and_arm_with_batched_writes(url: str) -> None:
    journal = Journal(url, batch_size=100)
    try:
        signal = Signal("AAA", Side.BUY, T, "momentum", 100.0)
        decision = Decision("d-9", signal, 0.7, 98.0, 103.0, None, 2.0, variant="challenger",
                            model_versions={"signal_quality": "4", "risk_predictor": "2"},
                            source="http")
        record = DecisionRecord(signal.signal_id, "AAA", "buy", T, "momentum", 100.0,
                                "entered", "", T, decision, 10, "tw-x")
        journal.record_decision(record)
        journal.record_decision(record)  # a retry of the same decision
        rows = journal.decisions()  # reading flushes the buffer
        assert len(rows) == 1
        assert rows.loc[0, "variant"] == "challenger"
        assert json.loads(rows.loc[0, "model_versions"]) == {"risk_predictor": "2",
                                                             "signal_quality": "4"}
        assert rows.loc[0, "win_probability"] == 0.7
    finally:
        journal.close()


def test_ab_outcomes_live_beside_the_journal_or_on_their_own(url: str, tmp_path: Path) -> None:
    outcome = ABOutcome(
        evaluated_at=T, verdict="retire", reason="no significant difference", applied=True,
        champion_versions={"exit_optimizer": "1"}, challenger_versions={"exit_optimizer": "2"},
        champion_trades=6, challenger_trades=6,
        details={"arms": {"champion": {"log_loss": float("nan"), "pf": float("inf")}}},
    )
    shared = load_settings(paths={"journal_url": url})
    assert outcome_store_url(shared) == url
    journal = Journal(url)
    try:
        with ABOutcomeStore(outcome_store_url(shared)) as store:
            first = store.record(outcome)
            later = store.record(ABOutcome(**_later(outcome)))
            frame = store.read()
        assert list(frame["outcome_id"]) == [first, later]
        assert str(frame["evaluated_at"].dt.tz) == "UTC"
        assert json.loads(frame["details"].iloc[0])["arms"]["champion"] == {"log_loss": None,
                                                                             "pf": None}
        assert journal.trades().empty  # the journal's tables are untouched
    finally:
        journal.close()
    apart = load_settings(paths={"journal_url": url,
                                 "outcome_store_url": f"sqlite:///{tmp_path / 'ab.db'}"})
    assert outcome_store_url(apart).endswith("ab.db")


def _later(outcome: ABOutcome) -> dict[str, Any]:
    return {**asdict(outcome), "evaluated_at": outcome.evaluated_at + timedelta(days=1)}
