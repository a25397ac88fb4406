"""The decision log writes off the hot path and loses nothing on close."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

from serving.decision_log import DecisionLog, DecisionRecord, feature_hash, read_decisions


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


def test_everything_recorded_from_many_threads_is_on_disk_after_close(tmp_path: Path) -> None:
    log = DecisionLog(tmp_path / "decisions.db")
    threads = [
        threading.Thread(target=lambda k=k: [log.record(_record(k * 1000 + i)) for i in range(500)])
        for k in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    log.close()
    frame = read_decisions(tmp_path / "decisions.db")
    assert len(frame) == 2000
    assert frame["decision_id"].is_unique
    assert frame["out_of_distribution"].sum() == 200


def test_rows_round_trip_with_json_columns_and_duplicates_ignored(tmp_path: Path) -> None:
    log = DecisionLog(tmp_path / "decisions.db")
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


def test_two_writers_share_one_file(tmp_path: Path) -> None:
    first = DecisionLog(tmp_path / "decisions.db")
    second = DecisionLog(tmp_path / "decisions.db")  # another worker process's log
    for i in range(300):
        (first if i % 2 else second).record(_record(i))
    first.close()
    second.close()
    assert len(read_decisions(tmp_path / "decisions.db")) == 300


def test_feature_hash_is_stable_and_order_sensitive() -> None:
    assert feature_hash([1.0, 2.0]) == feature_hash([1.0, 2.0])
    assert feature_hash([1.0, 2.0]) != feature_hash([2.0, 1.0])


def test_a_decision_recorded_after_close_is_still_written(tmp_path: Path) -> None:
    log = DecisionLog(tmp_path / "decisions.db")
    log.record(_record(1))
    log.close()
    log.record(_record(2))  # a request that finished during shutdown
    assert set(read_decisions(tmp_path / "decisions.db")["decision_id"]) == {"d000001", "d000002"}
