"""The decision log: every decision the models made, where the retrain and A/B flows can
join it to the trade's outcome (by `decision_id`, or by `signal_id`).

SQLite in WAL mode, one row per decision: id, time, the signal, a hash of the feature
vector, the outputs, the model versions, the arm, the latency, the policy's action and
reason category (`enter` / `skip`: `ev`, `gate`, `ood`, `regime`), the detector's own
out-of-distribution flag (whatever the policy did with it) and, in shadow mode, the
challenger's outputs and versions. `recent_decisions` reads back what the decision
maker needs on start (the coverage guard's memory).

Writes stay off the hot path: `record()` only puts the row on a queue; one background
thread writes batches in single transactions (a batch gathers for up to `flush_seconds`).
`close()` (called on graceful shutdown) drains the queue before it returns, so nothing
recorded is lost. Several workers may share one file: WAL plus a busy timeout lets them
write concurrently. Rows are keyed by `decision_id` and inserted with `OR IGNORE`, so a
client retry of the same decision does not create a second row."""

from __future__ import annotations

import hashlib
import json
import logging
import queue
import sqlite3
import struct
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from core.errors import ConfigError

logger = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS decisions (
    decision_id TEXT PRIMARY KEY,
    decided_at TEXT NOT NULL,
    signal_id TEXT NOT NULL,
    symbol TEXT NOT NULL,
    side TEXT NOT NULL,
    strategy TEXT NOT NULL,
    signal_timestamp TEXT NOT NULL,
    price REAL NOT NULL,
    feature_hash TEXT NOT NULL,
    variant TEXT NOT NULL,
    model_versions TEXT NOT NULL,
    outputs TEXT NOT NULL,
    out_of_distribution INTEGER NOT NULL,
    latency_ms REAL NOT NULL,
    endpoint TEXT NOT NULL,
    shadow_model_versions TEXT,
    shadow_outputs TEXT,
    action TEXT NOT NULL DEFAULT 'enter',
    reason TEXT NOT NULL DEFAULT '',
    reason_detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS decisions_signal ON decisions (signal_id);
CREATE INDEX IF NOT EXISTS decisions_time ON decisions (decided_at);
"""
# Columns added after the first release: an older log file gets them on open.
_ADDED_COLUMNS = (
    ("action", "TEXT NOT NULL DEFAULT 'enter'"),
    ("reason", "TEXT NOT NULL DEFAULT ''"),
    ("reason_detail", "TEXT NOT NULL DEFAULT ''"),
)

_COLUMNS = (
    "decision_id",
    "decided_at",
    "signal_id",
    "symbol",
    "side",
    "strategy",
    "signal_timestamp",
    "price",
    "feature_hash",
    "variant",
    "model_versions",
    "outputs",
    "out_of_distribution",
    "latency_ms",
    "endpoint",
    "shadow_model_versions",
    "shadow_outputs",
    "action",
    "reason",
    "reason_detail",
)
_INSERT = (
    f"INSERT OR IGNORE INTO decisions ({', '.join(_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in _COLUMNS)})"
)
_JSON_COLUMNS = ("model_versions", "outputs", "shadow_model_versions", "shadow_outputs")


def feature_hash(values: Sequence[float]) -> str:
    """A short, stable hash of a feature vector in the models' column order."""
    return hashlib.sha256(struct.pack(f"<{len(values)}d", *values)).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    decision_id: str
    decided_at: datetime
    signal_id: str
    symbol: str
    side: str
    strategy: str
    signal_timestamp: datetime
    price: float
    feature_hash: str
    variant: str
    model_versions: dict[str, str]
    outputs: dict[str, Any]
    out_of_distribution: bool
    latency_ms: float
    endpoint: str = "decide"
    shadow_model_versions: dict[str, str] | None = None
    shadow_outputs: dict[str, Any] | None = field(default=None)
    action: str = "enter"
    reason: str = ""
    reason_detail: str = ""

    def row(self) -> tuple[Any, ...]:
        data = asdict(self)
        data["decided_at"] = self.decided_at.isoformat()
        data["signal_timestamp"] = self.signal_timestamp.isoformat()
        data["out_of_distribution"] = int(self.out_of_distribution)
        for name in _JSON_COLUMNS:
            if data[name] is not None:
                data[name] = json.dumps(data[name], sort_keys=True)
        return tuple(data[name] for name in _COLUMNS)


_STOP = object()


class DecisionLog:
    """Append-only decision log with a background writer."""

    def __init__(
        self, path: Path, *, batch_size: int = 256, flush_seconds: float = 0.05
    ) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = _connect(self.path)
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(
                f"cannot open the decision log at {self.path}: {exc}", where="decision log"
            ) from exc
        with connection:
            connection.executescript(_SCHEMA)
            present = {row[1] for row in connection.execute("PRAGMA table_info(decisions)")}
            for name, kind in _ADDED_COLUMNS:
                if name not in present:
                    connection.execute(f"ALTER TABLE decisions ADD COLUMN {name} {kind}")
        self._connection = connection
        self._batch_size = batch_size
        self._flush_seconds = flush_seconds
        self._queue: queue.Queue[object] = queue.Queue()
        self._written = 0
        self._failed = 0
        self._closed = False
        self._thread = threading.Thread(
            target=self._run, name="decision-log-writer", daemon=True
        )
        self._thread.start()

    # -- hot path ------------------------------------------------------------------
    def record(self, record: DecisionRecord) -> None:
        """Queue one decision for writing; returns at once."""
        if self._closed:
            # A request still in flight while the service stops: write it here and now
            # rather than lose it (slow, but it only happens during shutdown).
            connection = _connect(self.path)
            try:
                with connection:
                    connection.execute(_INSERT, record.row())
                self._written += 1
            finally:
                connection.close()
            return
        self._queue.put(record)

    # -- lifecycle -----------------------------------------------------------------
    def flush(self, timeout: float = 30.0) -> None:
        """Block until everything recorded so far is on disk."""
        done = threading.Event()
        self._queue.put(done)
        if not done.wait(timeout):
            raise ConfigError(
                f"decision log did not flush within {timeout} s", where="decision log"
            )

    def close(self, timeout: float = 30.0) -> None:
        """Write everything still queued, then stop the writer. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)
        self._thread.join(timeout)

    @property
    def written(self) -> int:
        return self._written

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    # -- reading (for the A/B and retrain flows, and tests) ------------------------
    def frame(self) -> pd.DataFrame:
        """Every logged decision, JSON columns decoded."""
        return read_decisions(self.path)

    # -- writer thread -------------------------------------------------------------
    def _run(self) -> None:
        stop = False
        while not stop:
            batch: list[DecisionRecord] = []
            events: list[threading.Event] = []
            item = self._queue.get()
            deadline = time.monotonic() + self._flush_seconds
            while True:
                if item is _STOP:
                    stop = True
                elif isinstance(item, threading.Event):
                    events.append(item)
                elif isinstance(item, DecisionRecord):
                    batch.append(item)
                if stop or events or len(batch) >= self._batch_size:
                    break
                # Gather rows for up to `flush_seconds` so a burst becomes one transaction.
                remaining = deadline - time.monotonic()
                try:
                    item = (
                        self._queue.get(timeout=remaining)
                        if remaining > 0
                        else self._queue.get_nowait()
                    )
                except queue.Empty:
                    break
            if stop:
                # Anything queued after the stop marker by a racing request still goes in.
                while True:
                    try:
                        extra = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if isinstance(extra, DecisionRecord):
                        batch.append(extra)
                    elif isinstance(extra, threading.Event):
                        events.append(extra)
            self._write(batch)
            for event in events:
                event.set()
        self._connection.close()

    def _write(self, batch: Iterable[DecisionRecord]) -> None:
        rows = [record.row() for record in batch]
        if not rows:
            return
        for attempt in range(5):
            try:
                with self._connection:
                    self._connection.executemany(_INSERT, rows)
                self._written += len(rows)
                return
            except sqlite3.OperationalError as exc:  # locked by another worker: retry
                if attempt == 4:
                    self._failed += len(rows)
                    logger.error("decision log lost %d rows: %s", len(rows), exc)


def _connect(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(path, timeout=30.0, check_same_thread=False)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    return connection


def read_decisions(path: Path) -> pd.DataFrame:
    """Read a decision log file (any process may call this while writers run)."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"no decision log at {path}", where="decision log")
    connection = sqlite3.connect(path, timeout=30.0)
    try:
        frame = pd.read_sql_query("SELECT * FROM decisions ORDER BY decided_at", connection)
    finally:
        connection.close()
    for name in _JSON_COLUMNS:
        frame[name] = frame[name].map(lambda text: json.loads(text) if text else None)
    frame["out_of_distribution"] = frame["out_of_distribution"].astype(bool)
    frame["decided_at"] = pd.to_datetime(frame["decided_at"], utc=True, format="ISO8601")
    frame["signal_timestamp"] = pd.to_datetime(
        frame["signal_timestamp"], utc=True, format="ISO8601"
    )
    return frame


@dataclass(frozen=True, slots=True)
class RecentDecision:
    """What the decision maker's coverage guard remembers of one logged decision."""

    signal_id: str
    strategy: str
    session_day: str  # the signal's date in New York (its trading session)
    arm: str  # the signal model's version
    win_probability: float | None


def recent_decisions(path: Path, window: timedelta) -> list[RecentDecision]:
    """The `/decide` rows whose signal lies within `window` of the latest logged signal,
    oldest first (read-only; writers may run)."""
    from zoneinfo import ZoneInfo

    connection = sqlite3.connect(path, timeout=30.0)
    try:
        latest = connection.execute(
            "SELECT MAX(signal_timestamp) FROM decisions WHERE endpoint = 'decide'"
        ).fetchone()[0]
        if latest is None:
            return []
        since = (datetime.fromisoformat(latest) - window).isoformat()
        rows = connection.execute(
            "SELECT signal_id, strategy, signal_timestamp, model_versions, outputs "
            "FROM decisions WHERE endpoint = 'decide' AND signal_timestamp >= ? "
            "ORDER BY signal_timestamp",
            (since,),
        ).fetchall()
    finally:
        connection.close()
    new_york = ZoneInfo("America/New_York")
    found = []
    for signal_id, strategy, stamp, versions, outputs in rows:
        probability = json.loads(outputs).get("win_probability")
        found.append(RecentDecision(
            signal_id=str(signal_id),
            strategy=str(strategy),
            session_day=datetime.fromisoformat(stamp).astimezone(new_york).date().isoformat(),
            arm=str(json.loads(versions).get("signal_quality", "unversioned")),
            win_probability=None if probability is None else float(probability),
        ))
    return found
