"""The vendored S&P 500 set: lossless against the original export, validated, queryable."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.errors import DataSourceError, NotFoundError
from tests.conftest import shared_file
from trading.adapters.sp500.data import (
    DATA_FILE,
    SP500MarketData,
    read_compact,
    write_compact,
)



@pytest.fixture(scope="module")
def market() -> SP500MarketData:
    return SP500MarketData()


def test_the_compact_file_holds_the_whole_set() -> None:
    raw = read_compact()
    assert len(raw) == 496_240
    assert raw["symbol"].nunique() == 405
    assert str(raw["timestamp"].min().date()) == "2013-02-08"
    assert str(raw["timestamp"].max().date()) == "2018-02-07"
    assert DATA_FILE.stat().st_size < 8_000_000


def test_the_compact_form_is_lossless_against_the_original() -> None:
    original = pd.read_parquet(shared_file("sp500_daily_2013_2018.parquet")).sort_values(["symbol", "timestamp"])
    back = read_compact()
    assert (original["symbol"].to_numpy() == back["symbol"].to_numpy()).all()
    assert (original["timestamp"].to_numpy() == back["timestamp"].to_numpy()).all()
    for column in ("open", "high", "low", "close", "volume"):
        assert np.array_equal(
            original[column].to_numpy(dtype="float64"), back[column].to_numpy(),
            equal_nan=True,
        ), column


def test_write_compact_refuses_a_price_it_would_round(tmp_path: Path) -> None:
    bars = read_compact().head(3).copy()
    bars.loc[bars.index[1], "close"] = 45.123456
    with pytest.raises(DataSourceError, match="close prices are not multiples"):
        write_compact(bars, tmp_path / "x.parquet")


def test_write_then_read_round_trips(tmp_path: Path) -> None:
    bars = read_compact().iloc[1000:1300].reset_index(drop=True)
    write_compact(bars, tmp_path / "x.parquet")
    back = read_compact(tmp_path / "x.parquet")
    pd.testing.assert_frame_equal(bars, back)


def test_bars_are_validated_with_the_known_quirks_repaired(market: SP500MarketData) -> None:
    check = market.history_check(symbols=["LNT", "AOS", "AAPL"])
    bars = check.bars
    assert set(bars["symbol"]) == {"LNT", "AOS", "AAPL"}
    assert bars["timestamp"].dt.tz is not None
    assert not bars[["open", "high", "low", "close"]].isna().any().any()
    assert (bars["low"] <= bars[["open", "close"]].min(axis=1)).all()
    assert {r.symbol for r in check.repairs} <= {"LNT", "AOS", "AAPL"}
    assert any(r.symbol == "AOS" for r in check.repairs)


def test_index_series_come_with_the_stocks(market: SP500MarketData) -> None:
    bars = market.history(symbols=["SPX", "AAPL"], start="2016-01-01", end="2016-12-31")
    counts = bars.groupby("symbol").size()
    assert counts["SPX"] == counts["AAPL"] == 252


def test_unknown_symbols_are_named(market: SP500MarketData) -> None:
    with pytest.raises(NotFoundError, match="NOPE"):
        market.history(symbols=["AAPL", "NOPE"])


def test_other_timeframes_are_refused(market: SP500MarketData) -> None:
    with pytest.raises(DataSourceError, match="daily only"):
        market.history(timeframe="1Min")


def test_the_registry_builds_it_by_type_string() -> None:
    from trading.adapters.registry import market_data

    source = market_data("sp500")
    assert isinstance(source, SP500MarketData)
    assert "SPX" in source.symbols()
