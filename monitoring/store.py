"""The record of every A/B evaluation: one row per `evaluate_ab` run in an `ab_outcomes`
table (verdict, reason, whether it was applied, the versions of both arms, the trade
counts, the full summary as strict JSON and the MLflow run that holds the statistics).

Its own small SQLAlchemy store. The default database is the trading journal's
(`paths.journal_url`: `ab_outcomes` has always lived beside the trades it judges), unless
`paths.outcome_store_url` names another; nothing is shared with the journal's code: any
SQLAlchemy URL works (SQLite in WAL mode by default, PostgreSQL at scale)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import (
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    select,
)

from core.settings import Settings
from core.sql import sql_engine
from core.strict_json import dumps_strict

_metadata = MetaData()
ab_outcomes = Table(
    "ab_outcomes",
    _metadata,
    Column("outcome_id", String(64), primary_key=True),
    Column("evaluated_at", DateTime(timezone=True), nullable=False),
    Column("verdict", String(24), nullable=False),
    Column("reason", Text, nullable=False),
    Column("applied", Integer, nullable=False),
    Column("champion_versions", Text, nullable=False),
    Column("challenger_versions", Text, nullable=False),
    Column("champion_trades", Integer, nullable=False),
    Column("challenger_trades", Integer, nullable=False),
    Column("details", Text, nullable=False),  # JSON: per-arm metrics, tests, registry moves
    Column("mlflow_run_id", String(64)),
)


def outcome_store_url(settings: Settings) -> str:
    """Where A/B outcomes are kept: the journal's database unless told otherwise."""
    return settings.paths.outcome_store_url or settings.paths.journal_url


@dataclass(frozen=True, slots=True)
class ABOutcome:
    """One evaluation as stored."""

    evaluated_at: datetime
    verdict: str
    reason: str
    applied: bool
    champion_versions: dict[str, str]
    challenger_versions: dict[str, str]
    champion_trades: int
    challenger_trades: int
    details: dict[str, Any] = field(default_factory=dict)
    mlflow_run_id: str | None = None


class ABOutcomeStore:
    """Appends and reads `ab_outcomes` rows."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._engine = sql_engine(url)
        _metadata.create_all(self._engine)

    def record(self, outcome: ABOutcome) -> str:
        """Store one evaluation; returns its new `outcome_id`."""
        outcome_id = uuid.uuid4().hex
        with self._engine.begin() as connection:
            connection.execute(
                ab_outcomes.insert().values(
                    outcome_id=outcome_id,
                    evaluated_at=outcome.evaluated_at,
                    verdict=outcome.verdict,
                    reason=outcome.reason,
                    applied=int(outcome.applied),
                    champion_versions=json.dumps(outcome.champion_versions),
                    challenger_versions=json.dumps(outcome.challenger_versions),
                    champion_trades=outcome.champion_trades,
                    challenger_trades=outcome.challenger_trades,
                    details=dumps_strict(outcome.details, default=str),
                    mlflow_run_id=outcome.mlflow_run_id,
                )
            )
        return outcome_id

    def read(self) -> pd.DataFrame:
        """Every recorded outcome, oldest first (empty when none was recorded)."""
        with self._engine.connect() as connection:
            result = connection.execute(select(ab_outcomes).order_by(ab_outcomes.c.evaluated_at))
            frame = pd.DataFrame(result.fetchall(), columns=list(result.keys()))
        frame["evaluated_at"] = pd.to_datetime(frame["evaluated_at"], utc=True)
        return frame

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> ABOutcomeStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
