"""The paper exchange's command journal: every state-changing request (submit, cancel,
replace, one replayed bar step) appended to SQLite before it is acknowledged.

The exchange is event-sourced: a restarted exchange replays the journal through a fresh
matching engine and ends in exactly the state it had (orders, fills, positions, cash,
replay position), because the matching engine is deterministic. `:memory:` keeps nothing."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class Command:
    seq: int
    kind: str  # submit | cancel | replace | step
    at: datetime
    payload: dict[str, Any]


class CommandJournal:
    def __init__(self, path: Path | None) -> None:
        target = ":memory:"
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            target = str(path)
        # One writer (the exchange's event loop); autocommit so each append is durable.
        self._db = sqlite3.connect(target, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS commands ("
            " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
            " kind TEXT NOT NULL, at TEXT NOT NULL, payload TEXT NOT NULL)"
        )

    def append(self, kind: str, at: datetime, payload: dict[str, Any]) -> None:
        self._db.execute(
            "INSERT INTO commands (kind, at, payload) VALUES (?, ?, ?)",
            (kind, at.isoformat(), json.dumps(payload, sort_keys=True)),
        )

    def replay(self) -> Iterator[Command]:
        rows = self._db.execute("SELECT seq, kind, at, payload FROM commands ORDER BY seq")
        for seq, kind, at, payload in rows.fetchall():
            yield Command(int(seq), str(kind), datetime.fromisoformat(at), json.loads(payload))

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM commands").fetchone()[0])

    def close(self) -> None:
        self._db.close()
