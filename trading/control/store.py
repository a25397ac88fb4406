"""The control plane's own tables, in the journal's database (so a Postgres journal
holds them too): the operator's control actions, the engine's persisted flags (paused,
the retrain trigger's last count), each session's baseline equity and halt, and the
retrain runs started. Written at once (a kill -9 loses none of it)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    delete,
    func,
    insert,
    select,
    update,
)

from core.utc import utc_datetime, utc_now

metadata = MetaData()

control_actions = Table(
    "control_actions",
    metadata,
    Column("action_id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("action", String(32), nullable=False),  # pause | resume | flatten | close | ...
    Column("target", String(64), nullable=False),  # a symbol, "all", or ""
    Column("origin", String(128), nullable=False),  # who asked: client address, ctl, mcp
    Column("outcome", String(32), nullable=False),  # done | already | failed
    Column("detail", Text, nullable=False),
)

engine_flags = Table(
    "engine_flags",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),  # JSON
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

session_marks = Table(
    "session_marks",
    metadata,
    Column("session", String(10), primary_key=True),  # YYYY-MM-DD
    Column("baseline_equity", Float),
    Column("baseline_source", String(32)),
    Column("closing_equity", Float),  # the last equity seen during the session
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("halted_at", DateTime(timezone=True)),
    Column("halt_reason", Text),
)

retrain_runs = Table(
    "retrain_runs",
    metadata,
    Column("run_id", String(64), primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("closed_trades", Integer, nullable=False),
    Column("deployment", String(128), nullable=False),
    Column("state", String(32), nullable=False),
    Column("url", Text),
)


@dataclass(frozen=True, slots=True)
class ControlAction:
    at: datetime
    action: str
    target: str
    origin: str
    outcome: str
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "action": self.action,
            "target": self.target,
            "origin": self.origin,
            "outcome": self.outcome,
            "detail": self.detail,
        }


class ControlStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        metadata.create_all(engine)

    # ------------------------------------------------------------------ actions
    def record_action(self, action: ControlAction) -> None:
        with self._engine.begin() as connection:
            connection.execute(
                insert(control_actions).values(
                    at=utc_datetime(action.at),
                    action=action.action,
                    target=action.target,
                    origin=action.origin,
                    outcome=action.outcome,
                    detail=action.detail,
                )
            )

    def actions(self, limit: int = 50) -> list[ControlAction]:
        query = select(control_actions).order_by(control_actions.c.action_id.desc()).limit(limit)
        with self._engine.connect() as connection:
            rows = connection.execute(query).mappings().all()
        return [
            ControlAction(
                at=utc_datetime(row["at"]),
                action=row["action"],
                target=row["target"],
                origin=row["origin"],
                outcome=row["outcome"],
                detail=row["detail"],
            )
            for row in rows
        ]

    # ------------------------------------------------------------------ flags
    def flag(self, name: str) -> Any:
        with self._engine.connect() as connection:
            row = connection.execute(
                select(engine_flags.c.value).where(engine_flags.c.name == name)
            ).first()
        return None if row is None else json.loads(row[0])

    def set_flag(self, name: str, value: Any) -> None:
        """Set (or with None, clear) a flag."""
        with self._engine.begin() as connection:
            connection.execute(delete(engine_flags).where(engine_flags.c.name == name))
            if value is not None:
                connection.execute(
                    insert(engine_flags).values(
                        name=name, value=json.dumps(value), updated_at=utc_now()
                    )
                )

    # ------------------------------------------------------------------ sessions
    def session_mark(self, session: date) -> dict[str, Any] | None:
        with self._engine.connect() as connection:
            row = (
                connection.execute(
                    select(session_marks).where(session_marks.c.session == session.isoformat())
                )
                .mappings()
                .first()
            )
        return None if row is None else dict(row)

    def last_close_before(self, session: date) -> tuple[str, float] | None:
        """The latest earlier session with a closing equity, and that equity."""
        query = (
            select(session_marks.c.session, session_marks.c.closing_equity)
            .where(session_marks.c.session < session.isoformat())
            .where(session_marks.c.closing_equity.is_not(None))
            .order_by(session_marks.c.session.desc())
            .limit(1)
        )
        with self._engine.connect() as connection:
            row = connection.execute(query).first()
        return None if row is None else (str(row[0]), float(row[1]))

    def save_baseline(self, session: date, equity: float, source: str) -> None:
        self._upsert_session(session, baseline_equity=equity, baseline_source=source)

    def save_close(self, session: date, equity: float) -> None:
        self._upsert_session(session, closing_equity=equity)

    def save_halt(self, session: date, reason: str) -> None:
        self._upsert_session(session, halted_at=utc_now(), halt_reason=reason)

    def _upsert_session(self, session: date, **values: Any) -> None:
        key = session.isoformat()
        values["updated_at"] = utc_now()
        with self._engine.begin() as connection:
            found = connection.execute(
                select(session_marks.c.session).where(session_marks.c.session == key)
            ).first()
            if found is None:
                connection.execute(insert(session_marks).values(session=key, **values))
            else:
                connection.execute(
                    update(session_marks).where(session_marks.c.session == key).values(**values)
                )

    # ------------------------------------------------------------------ retrain runs
    def record_run(
        self, run_id: str, *, closed_trades: int, deployment: str, state: str, url: str | None
    ) -> None:
        with self._engine.begin() as connection:
            connection.execute(
                insert(retrain_runs).values(
                    run_id=run_id,
                    at=utc_now(),
                    closed_trades=closed_trades,
                    deployment=deployment,
                    state=state,
                    url=url,
                )
            )

    def runs(self, limit: int = 20) -> list[dict[str, Any]]:
        query = select(retrain_runs).order_by(retrain_runs.c.at.desc()).limit(limit)
        with self._engine.connect() as connection:
            rows = connection.execute(query).mappings().all()
        return [
            {**dict(row), "at": utc_datetime(row["at"]).isoformat()} for row in rows
        ]

    def count(self, table: Table) -> int:
        with self._engine.connect() as connection:
            return int(connection.execute(select(func.count()).select_from(table)).scalar_one())
