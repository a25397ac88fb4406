"""Shared fixtures: the real market data in ../shared/data (skipped cleanly when absent
on a developer's machine; a failure where `TRADEWIND_REQUIRE_SHARED_DATA=1`, as in CI,
so the no-lookahead and point-in-time tests never skip there silently), and an isolated
working directory so no test touches the user's stores."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"
REQUIRE_SHARED_DATA_ENV = "TRADEWIND_REQUIRE_SHARED_DATA"
# Read once at start-up: the `workdir` fixture clears TRADEWIND_* variables per test.
REQUIRE_SHARED_DATA = os.environ.get(REQUIRE_SHARED_DATA_ENV, "") == "1"


def shared_file(name: str, *, required: bool | None = None) -> Path:
    """Path of a file in ../shared/data; when absent, skip the test with the reason, or
    fail it where the data is required (`TRADEWIND_REQUIRE_SHARED_DATA=1`)."""
    path = SHARED_DATA / name
    if not path.exists():
        message = f"real market data {name} not found in ../shared/data"
        if REQUIRE_SHARED_DATA if required is None else required:
            pytest.fail(f"{message}, and {REQUIRE_SHARED_DATA_ENV}=1 requires it", pytrace=False)
        pytest.skip(f"{message} (optional test data)")
    return path


@pytest.fixture(scope="session")
def sp500_daily() -> pd.DataFrame:
    """405 S&P 500 stocks, daily 2013-2018 (real, with the quirks its README lists)."""
    return pd.read_parquet(shared_file("sp500_daily_2013_2018.parquet"))


@pytest.fixture(scope="session")
def spy_daily() -> pd.DataFrame:
    """SPY daily 2008-2017."""
    return pd.read_parquet(shared_file("spy_daily_2008_2017.parquet"))


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run the test inside a fresh directory, with Tradewind's env settings cleared."""
    import os

    for key in list(os.environ):
        if key.startswith(("TRADEWIND_", "ALPACA_")):
            monkeypatch.delenv(key, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def pytest_unconfigure(config: pytest.Config) -> None:
    """Prefect stops its temporary API server at interpreter exit and logs that to a stream
    pytest has already closed; keep that teardown noise out of the run's closing lines."""
    import logging

    logging.raiseExceptions = False
