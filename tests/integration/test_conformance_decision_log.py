"""One conformance suite for the decision log, run over every back end it supports: a
SQLite file in WAL mode (the default) and PostgreSQL (a real server started by the
session). On both, the background writer keeps writes off the hot path and loses nothing
on close, a retried decision is stored once, two writers share one log, and the coverage
guard's memory reads back."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.servers import LocalPostgres
from serving.decision_log import (
    DecisionLog,
    DecisionRecord,
    decision_log_exists,
    feature_hash,
    read_decisions,
)
from tests.integration.conftest import fresh_postgres_url

pytestmark = pytest.mark.integration


@pytest.fixture(params=["sqlite", "postgresql"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    """Where a fresh log lives: a file, or an empty database on the session's server."""
    if request.param == "sqlite":
        return tmp_path / "decisions.db"
    server: LocalPostgres = request.getfixturevalue("postgres")
    return fresh_postgres_url(server, "decisions")


def _record(i: int, *, shadow: bool = False) -> DecisionRecord:
    return DecisionRecord(
        decision_id=f"d{i:06d}",
        decided_at=datetime(2024, 1, 2, 15, 30, tzinfo=UTC),
        signal_id=f"s{i:06d}",
        symbol="AAPL",
        side="buy",
        strategy="momentum",
        signal_timestamp=datetime(2024, 1, 2, 15, 30, tzinfo=UTC),
        price=100.0 + i,
        feature_hash=feature_hash([float(i), 1.0]),
        variant="champion",
        model_versions={"signal_quality": "1"},
        outputs={"win_probability": 0.6},
        out_of_distribution=i % 10 == 0,
        latency_ms=1.5,
        shadow_model_versions={"signal_quality": "2"} if shadow else None,
        shadow_outputs={"win_probability": 0.7} if shadow else None,
    )


def test_everything_recorded_from_many_threads_is_stored_after_close(
    target: Path | str,
) -> None:
    log = DecisionLog(target)
    threads = [
        threading.Thread(target=lambda k=k: [log.record(_record(k * 1000 + i)) for i in range(500)])
        for k in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    log.close()
    frame = read_decisions(target)
    assert len(frame) == 2000
    assert frame["decision_id"].is_unique
    assert frame["out_of_distribution"].sum() == 200


def test_rows_round_trip_with_json_columns_and_duplicates_ignored(target: Path | str) -> None:
    log = DecisionLog(target)
    log.record(_record(1, shadow=True))
    log.record(_record(1, shadow=True))  # a client retry of the same decision
    log.record(_record(2))
    log.flush()
    frame = log.frame().set_index("decision_id")
    assert len(frame) == 2
    assert frame.loc["d000001", "shadow_outputs"] == {"win_probability": 0.7}
    assert frame.loc["d000002", "shadow_outputs"] is None
    assert frame.loc["d000001", "model_versions"] == {"signal_quality": "1"}
    assert str(frame["decided_at"].dt.tz) == "UTC"
    log.close()
    log.close()  # idempotent


def test_two_writers_share_one_log(target: Path | str) -> None:
    first = DecisionLog(target)
    second = DecisionLog(target)  # another worker process's log
    for i in range(300):
        (first if i % 2 else second).record(_record(i))
    first.close()
    second.close()
    assert len(read_decisions(target)) == 300


def test_feature_hash_is_stable_and_order_sensitive() -> None:
    assert feature_hash([1.0, 2.0]) == feature_hash([1.0, 2.0])
    assert feature_hash([1.0, 2.0]) != feature_hash([2.0, 1.0])


def test_a_decision_recorded_after_close_is_still_written(target: Path | str) -> None:
    log = DecisionLog(target)
    log.record(_record(1))
    log.close()
    log.record(_record(2))  # a request that finished during shutdown
    assert set(read_decisions(target)["decision_id"]) == {"d000001", "d000002"}


def test_the_guards_memory_reads_back_the_recent_window(target: Path | str) -> None:
    assert not decision_log_exists(target)
    log = DecisionLog(target)
    assert log.recent(timedelta(days=3)) == []  # an empty log remembers nothing
    start = datetime(2024, 1, 2, 15, 30, tzinfo=UTC)
    for day in range(5):
        row = _record(day)
        log.record(DecisionRecord(**{**_fields(row), "signal_timestamp": start
                                     + timedelta(days=day)}))
    log.flush()
    assert decision_log_exists(target)
    recent = log.recent(timedelta(days=2))
    assert [r.signal_id for r in recent] == ["s000002", "s000003", "s000004"]
    assert {(r.arm, r.win_probability) for r in recent} == {("1", 0.6)}
    assert recent[0].session_day == "2024-01-04"
    log.close()


def _fields(record: DecisionRecord) -> dict[str, object]:
    return {name: getattr(record, name) for name in DecisionRecord.__dataclass_fields__}


def test_a_log_written_before_the_policy_columns_gets_them_on_open(target: Path | str) -> None:
    from sqlalchemy import create_engine, text

    old_columns = ", ".join(
        f"{name} {kind}" for name, kind in [
            ("decision_id", "TEXT PRIMARY KEY"), ("decided_at", "TEXT NOT NULL"),
            ("signal_id", "TEXT NOT NULL"), ("symbol", "TEXT NOT NULL"),
            ("side", "TEXT NOT NULL"), ("strategy", "TEXT NOT NULL"),
            ("signal_timestamp", "TEXT NOT NULL"), ("price", "REAL NOT NULL"),
            ("feature_hash", "TEXT NOT NULL"), ("variant", "TEXT NOT NULL"),
            ("model_versions", "TEXT NOT NULL"), ("outputs", "TEXT NOT NULL"),
            ("out_of_distribution", "INTEGER NOT NULL"), ("latency_ms", "REAL NOT NULL"),
            ("endpoint", "TEXT NOT NULL"), ("shadow_model_versions", "TEXT"),
            ("shadow_outputs", "TEXT")])
    engine = create_engine(target if isinstance(target, str) else f"sqlite:///{target}")
    old = _record(1).row()
    with engine.begin() as connection:
        connection.execute(text(f"CREATE TABLE decisions ({old_columns})"))
        kept = [k for k in old if k not in ("action", "reason", "reason_detail")]
        connection.execute(text(f"INSERT INTO decisions ({', '.join(kept)}) VALUES "
                                f"({', '.join(':' + k for k in kept)})"), [old])
    engine.dispose()
    log = DecisionLog(target)
    log.record(DecisionRecord(**{**_fields(_record(2)), "action": "skip", "reason": "ev"}))
    log.close()
    frame = read_decisions(target).set_index("decision_id")
    assert frame.loc["d000001", "action"] == "enter"  # the default for rows written before
    assert (frame.loc["d000002", "action"], frame.loc["d000002", "reason"]) == ("skip", "ev")
