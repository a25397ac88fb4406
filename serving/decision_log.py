"""The decision log: every decision the models made, where the retrain and A/B flows can
join it to the trade's outcome (by `decision_id`, or by `signal_id`).

One row per decision: id, time, the signal, a hash of the feature vector, the outputs,
the model versions, the arm, the latency, the policy's action and reason category
(`enter` / `skip`: `ev`, `gate`, `ood`, `regime`), the detector's own out-of-distribution
flag (whatever the policy did with it) and, in shadow mode, the challenger's outputs and
versions. `recent_decisions` reads back what the decision maker needs on start (the
coverage guard's memory).

Where it lives: a file path is a SQLite database in WAL mode (the default,
`<data_dir>/decisions.db`); a SQLAlchemy URL (`postgresql+psycopg://…`) is that database
(`TRADEWIND_DECISION_LOG` takes either). Same table, same answers (one conformance suite).

Writes stay off the hot path: `record()` only puts the row on a queue; one background
thread writes batches in single transactions (a batch gathers for up to `flush_seconds`).
`close()` (called on graceful shutdown) drains the queue before it returns, so nothing
recorded is lost. Several workers may share one log: WAL plus a busy timeout lets them
write one SQLite file concurrently, a server takes them as it takes any client. Rows are
keyed by `decision_id` and inserted once (a conflict is ignored), so a client retry of the
same decision does not create a second row."""

from __future__ import annotations

import hashlib
import json
import logging
import queue
import struct
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import (
    Column,
    Engine,
    Float,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    inspect,
    select,
    text,
)
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.schema import DefaultClause

from core.errors import ConfigError
from core.sql import sql_engine

logger = logging.getLogger(__name__)

_metadata = MetaData()
decisions = Table(
    "decisions",
    _metadata,
    Column("decision_id", Text, primary_key=True),
    Column("decided_at", Text, nullable=False),  # ISO 8601, UTC: sorts as text
    Column("signal_id", Text, nullable=False),
    Column("symbol", Text, nullable=False),
    Column("side", Text, nullable=False),
    Column("strategy", Text, nullable=False),
    Column("signal_timestamp", Text, nullable=False),
    Column("price", Float, nullable=False),
    Column("feature_hash", Text, nullable=False),
    Column("variant", Text, nullable=False),
    Column("model_versions", Text, nullable=False),
    Column("outputs", Text, nullable=False),
    Column("out_of_distribution", Integer, nullable=False),
    Column("latency_ms", Float, nullable=False),
    Column("endpoint", Text, nullable=False),
    Column("shadow_model_versions", Text),
    Column("shadow_outputs", Text),
    Column("action", Text, nullable=False, server_default="enter"),
    Column("reason", Text, nullable=False, server_default=""),
    Column("reason_detail", Text, nullable=False, server_default=""),
    Index("decisions_signal", "signal_id"),
    Index("decisions_time", "decided_at"),
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

    def row(self) -> dict[str, Any]:
        data = asdict(self)
        data["decided_at"] = self.decided_at.isoformat()
        data["signal_timestamp"] = self.signal_timestamp.isoformat()
        data["out_of_distribution"] = int(self.out_of_distribution)
        for name in _JSON_COLUMNS:
            if data[name] is not None:
                data[name] = json.dumps(data[name], sort_keys=True)
        return data


_STOP = object()


def is_url(target: Path | str) -> bool:
    """A SQLAlchemy URL (`dialect[+driver]://…`) rather than a file path."""
    return isinstance(target, str) and "://" in target


class DecisionLog:
    """Append-only decision log with a background writer."""

    def __init__(
        self, target: Path | str, *, batch_size: int = 256, flush_seconds: float = 0.05
    ) -> None:
        self.target = target if is_url(target) else Path(target)
        try:
            self._engine = _engine(self.target, create=True)
            _metadata.create_all(self._engine)
            _add_missing_columns(self._engine)
        except (OSError, SQLAlchemyError) as exc:
            raise ConfigError(
                f"cannot open the decision log at {_shown(self.target)}: {exc}",
                where="decision log",
            ) from exc
        self._insert = _insert_once(self._engine)
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

    @property
    def path(self) -> Path | None:
        """The SQLite file, or None when the log is on a database server."""
        return self.target if isinstance(self.target, Path) else None

    # -- hot path ------------------------------------------------------------------
    def record(self, record: DecisionRecord) -> None:
        """Queue one decision for writing; returns at once."""
        if self._closed:
            # A request still in flight while the service stops: write it here and now
            # rather than lose it (slow, but it only happens during shutdown).
            with self._engine.begin() as connection:
                connection.execute(self._insert, [record.row()])
            self._written += 1
            return
        self._queue.put(record)

    # -- lifecycle -----------------------------------------------------------------
    def flush(self, timeout: float = 30.0) -> None:
        """Block until everything recorded so far is written."""
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
        return read_decisions(self.target)

    def recent(self, window: timedelta) -> list[RecentDecision]:
        """`recent_decisions` of this log."""
        return recent_decisions(self.target, window)

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
            for event_ in events:
                event_.set()

    def _write(self, batch: Iterable[DecisionRecord]) -> None:
        rows = [record.row() for record in batch]
        if not rows:
            return
        for attempt in range(5):
            try:
                with self._engine.begin() as connection:
                    connection.execute(self._insert, rows)
                self._written += len(rows)
                return
            except OperationalError as exc:  # locked by another worker, or a lost link
                if attempt == 4:
                    self._failed += len(rows)
                    logger.error("decision log lost %d rows: %s", len(rows), exc)


def _shown(target: Path | str) -> str:
    """The log's location without a password."""
    if isinstance(target, Path):
        return str(target)
    from sqlalchemy.engine import make_url

    return make_url(target).render_as_string(hide_password=True)


def _engine(target: Path | str, *, create: bool = False) -> Engine:
    """An engine on the log: its URL, or a SQLite file (`core.sql`)."""
    url = target if isinstance(target, str) else f"sqlite:///{target}"
    return sql_engine(url, create=create)


def _insert_once(engine: Engine) -> Any:
    """INSERT that ignores a `decision_id` already stored (SQLite and PostgreSQL)."""
    dialect = engine.dialect.name
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    elif dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert  # type: ignore[assignment]
    else:
        raise ConfigError(f"the decision log supports SQLite and PostgreSQL, not {dialect}",
                          where="decision log")
    return insert(decisions).on_conflict_do_nothing(index_elements=["decision_id"])


def _add_missing_columns(engine: Engine) -> None:
    """A log written by an older version lacks the columns added since (the policy's
    action and reasons): add them, with their defaults, before any write."""
    present = {column["name"] for column in inspect(engine).get_columns("decisions")}
    for column in decisions.columns:
        if column.name in present:
            continue
        kind = column.type.compile(dialect=engine.dialect)
        default = column.server_default
        clause = (f" NOT NULL DEFAULT '{default.arg}'" if isinstance(default, DefaultClause)
                  else "")
        with engine.begin() as connection:
            connection.exec_driver_sql(
                f"ALTER TABLE decisions ADD COLUMN {column.name} {kind}{clause}")


def decision_log_exists(target: Path | str) -> bool:
    """Whether a decision log was ever written there (a file, or the table on a server)."""
    if not is_url(target):
        return Path(target).exists()
    engine = _engine(target)
    try:
        return inspect(engine).has_table("decisions")
    finally:
        engine.dispose()


def read_decisions(target: Path | str) -> pd.DataFrame:
    """Read a decision log (any process may call this while writers run)."""
    if not decision_log_exists(target):
        raise ConfigError(f"no decision log at {_shown(target)}", where="decision log")
    engine = _engine(target if is_url(target) else Path(target))
    try:
        with engine.connect() as connection:
            frame = pd.read_sql_query(
                select(decisions).order_by(decisions.c.decided_at), connection)
    finally:
        engine.dispose()
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


def recent_decisions(target: Path | str, window: timedelta) -> list[RecentDecision]:
    """The `/decide` rows whose signal lies within `window` of the latest logged signal,
    oldest first (read-only; writers may run; none when nothing was logged)."""
    from zoneinfo import ZoneInfo

    if not decision_log_exists(target):
        return []
    engine = _engine(target if is_url(target) else Path(target))
    try:
        with engine.connect() as connection:
            latest = connection.execute(text(
                "SELECT MAX(signal_timestamp) FROM decisions WHERE endpoint = 'decide'"
            )).scalar()
            if latest is None:
                return []
            since = (datetime.fromisoformat(latest) - window).isoformat()
            rows = connection.execute(text(
                "SELECT signal_id, strategy, signal_timestamp, model_versions, outputs "
                "FROM decisions WHERE endpoint = 'decide' AND signal_timestamp >= :since "
                "ORDER BY signal_timestamp"), {"since": since}).fetchall()
    finally:
        engine.dispose()
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
