"""One way to open a SQL store (the trading journal, the decision log, the A/B outcome
store): a SQLAlchemy URL, SQLite by default and PostgreSQL by configuration.

A SQLite file gets its folder created and, on every connection, WAL mode (readers never
block the writer), `synchronous=NORMAL` (durable across a process kill in WAL mode; only
an OS crash can lose the last transactions, and much faster than FULL) and a 30-second
busy timeout. An in-memory SQLite database is one shared connection. Other URLs get
`pool_pre_ping`, so a restarted server is reconnected to."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import StaticPool

BUSY_TIMEOUT_MS = 30_000


def sql_engine(url: str, *, echo: bool = False, create: bool = True) -> Engine:
    """An engine on `url` (see the module doc); with `create=False` a SQLite file's
    folder is not made (a reader of a store that may not exist yet)."""
    if not url.startswith("sqlite"):
        return create_engine(url, echo=echo, pool_pre_ping=True)
    database = make_url(url).database
    in_memory = not database or database == ":memory:"
    if create and not in_memory:
        Path(str(database)).parent.mkdir(parents=True, exist_ok=True)
    options: dict[str, Any] = {
        "connect_args": {"check_same_thread": False, "timeout": BUSY_TIMEOUT_MS / 1000}
    }
    if in_memory:
        options["poolclass"] = StaticPool  # one shared in-memory database
    engine = create_engine(url, echo=echo, **options)

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        if not in_memory:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.close()

    return engine
