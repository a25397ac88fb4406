"""The A/B outcome store: rows written and read back in time order, strict JSON details,
and the default database shared with the trading journal without either noticing."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from core.settings import load_settings
from monitoring.store import ABOutcome, ABOutcomeStore, outcome_store_url


def _outcome(day: int, verdict: str = "retire") -> ABOutcome:
    return ABOutcome(
        evaluated_at=datetime(2026, 3, day, 21, 0, tzinfo=UTC),
        verdict=verdict,
        reason="no significant difference",
        applied=verdict != "keep_collecting",
        champion_versions={"exit_optimizer": "1"},
        challenger_versions={"exit_optimizer": "2"},
        champion_trades=6,
        challenger_trades=6,
        details={"arms": {"champion": {"log_loss": float("nan"), "pf": float("inf")}}},
        mlflow_run_id="abc",
    )


def test_outcomes_round_trip_oldest_first_with_strict_json(tmp_path: Path) -> None:
    with ABOutcomeStore(f"sqlite:///{tmp_path / 'outcomes.db'}") as store:
        second = store.record(_outcome(3, "retire"))
        first = store.record(_outcome(2, "keep_collecting"))
        frame = store.read()
    assert list(frame["outcome_id"]) == [first, second]
    assert list(frame["verdict"]) == ["keep_collecting", "retire"]
    assert list(frame["applied"]) == [0, 1]
    assert str(frame["evaluated_at"].dt.tz) == "UTC"
    assert json.loads(frame["champion_versions"].iloc[0]) == {"exit_optimizer": "1"}

    def strict(constant: str) -> None:
        raise AssertionError(f"{constant} in stored JSON")

    details = json.loads(frame["details"].iloc[1], parse_constant=strict)
    assert details["arms"]["champion"] == {"log_loss": None, "pf": None}


def test_an_empty_store_reads_as_an_empty_frame() -> None:
    with ABOutcomeStore("sqlite://") as store:
        frame = store.read()
        assert frame.empty
        store.record(_outcome(2))
        assert len(store.read()) == 1  # one in-memory database for the store's life


def test_default_database_is_the_journal_file_and_both_tables_live_there(
    tmp_path: Path,
) -> None:
    from trading.journal import Journal

    url = f"sqlite:///{tmp_path / 'journal.db'}"
    settings = load_settings(paths={"journal_url": url})
    assert outcome_store_url(settings) == url
    journal = Journal(url)
    try:
        with ABOutcomeStore(outcome_store_url(settings)) as store:
            store.record(_outcome(4))
            assert len(store.read()) == 1
        assert journal.trades().empty
    finally:
        journal.close()

