"""The parquet bar store: round trip, idempotent upsert, filters, summary, temp files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.bars import validate_bars
from core.errors import DataValidationError
from features.bar_store import BarStore


def daily(symbol: str, start: str, days: int, base: float = 100.0) -> pd.DataFrame:
    stamps = pd.bdate_range(start, periods=days).tz_localize("America/New_York").tz_convert("UTC")
    close = base + np.arange(days, dtype=float)
    return pd.DataFrame(
        {
            "symbol": symbol,
            "timestamp": stamps,
            "open": close - 0.5,
            "high": close + 1.0,
            "low": close - 1.0,
            "close": close,
            "volume": 1000.0,
        }
    )


@pytest.fixture
def store(tmp_path: Path) -> BarStore:
    return BarStore(tmp_path / "bars")


def test_round_trip_keeps_the_bar_schema(store: BarStore) -> None:
    frame = pd.concat([daily("MSFT", "2020-01-01", 30), daily("AAPL", "2020-01-01", 20)])
    report = store.write(frame)
    assert (report.rows_written, report.rows_new, report.symbols) == (50, 50, ["AAPL", "MSFT"])
    back = store.read()
    expected = validate_bars(frame, where="x").bars
    pd.testing.assert_frame_equal(back, expected)
    assert (store.root / "timeframe=1Day" / "symbol=AAPL" / "all.parquet").is_file()


def test_rewriting_the_same_bars_changes_nothing(store: BarStore) -> None:
    frame = daily("AAPL", "2020-01-01", 30)
    store.write(frame)
    path = store.root / "timeframe=1Day" / "symbol=AAPL" / "all.parquet"
    before = path.stat().st_mtime_ns
    report = store.write(frame)
    assert (report.rows_new, report.partitions_changed) == (0, 0)
    assert path.stat().st_mtime_ns == before
    assert len(store.read()) == 30


def test_overlapping_ranges_never_duplicate_and_newer_values_win(store: BarStore) -> None:
    first = daily("AAPL", "2020-01-01", 40)
    second = daily("AAPL", "2020-02-03", 40, base=500.0)  # overlaps the last days of `first`
    store.write(first)
    report = store.write(second)
    union = pd.concat([first, second]).drop_duplicates("timestamp", keep="last")
    assert report.rows_new == len(union) - len(first)
    back = store.read(["AAPL"])
    assert len(back) == len(union)
    assert back["timestamp"].is_unique
    overlap = back[
        back["timestamp"].isin(first["timestamp"]) & back["timestamp"].isin(second["timestamp"])
    ]
    assert not overlap.empty
    assert (overlap["close"] >= 500.0).all()


def test_daily_bars_from_date_only_files_land_on_the_same_session(store: BarStore) -> None:
    alpaca_style = daily("AAPL", "2020-06-01", 5)
    date_only = alpaca_style.assign(
        timestamp=alpaca_style["timestamp"].dt.tz_convert("UTC").dt.floor("D")
    )
    store.write(alpaca_style)
    assert store.write(date_only).rows_new == 0
    assert store.read()["timestamp"].dt.hour.unique().tolist() == [4]


def test_invalid_bars_are_refused_and_the_store_is_untouched(store: BarStore) -> None:
    frame = daily("AAPL", "2020-01-01", 5)
    frame.loc[2, "high"] = frame.loc[2, "low"] - 1
    with pytest.raises(DataValidationError, match="high below low"):
        store.write(frame)
    assert store.symbols() == []
    with pytest.raises(DataValidationError, match="cannot name a store partition"):
        store.write(daily("../evil", "2020-01-01", 2))


def test_read_filters_by_symbol_and_inclusive_time_bounds(store: BarStore) -> None:
    store.write(pd.concat([daily(s, "2020-01-01", 60) for s in ("AAPL", "MSFT", "IBM")]))
    stamps = store.read(["MSFT"])["timestamp"]
    start, end = stamps.iloc[10], stamps.iloc[19]
    window = store.read(["MSFT", "IBM"], start=start, end=end)
    assert window["symbol"].unique().tolist() == ["IBM", "MSFT"]
    assert len(window) == 2 * 10
    assert window["timestamp"].min() == start
    assert window["timestamp"].max() == end
    naive = store.read(["AAPL"], start="2020-02-03", end=pd.Timestamp("2020-02-05"))
    assert len(naive) == 2  # 2020-02-03 05:00Z and 2020-02-04 05:00Z; 02-05 05:00Z > end
    whole_days = store.read(["AAPL"], start="2020-02-03", end="2020-02-05")
    assert len(whole_days) == 3  # a bare date covers the whole New York day
    assert store.read(["NOPE"]).empty
    assert list(store.read(["NOPE"]).columns) == list(store.read(["AAPL"]).columns)
    with pytest.raises(DataValidationError, match="as a time"):
        store.read(start="not a time")


def test_intraday_bars_are_partitioned_by_year(store: BarStore) -> None:
    stamps = pd.date_range("2020-12-31T20:55Z", periods=10, freq="1min").append(
        pd.date_range("2021-01-04T14:30Z", periods=10, freq="1min")
    )
    frame = pd.DataFrame(
        {
            "symbol": "SPY",
            "timestamp": stamps,
            "open": 1.0,
            "high": 2.0,
            "low": 0.5,
            "close": 1.5,
            "volume": 3.0,
        }
    )
    report = store.write(frame, timeframe="1Min")
    assert report.partitions_changed == 2
    folder = store.root / "timeframe=1Min" / "symbol=SPY"
    assert sorted(p.name for p in folder.iterdir()) == ["year=2020.parquet", "year=2021.parquet"]
    assert len(store.read(["SPY"], timeframe="1Min", start="2021-01-01")) == 10
    assert len(store.read(timeframe="1Min")) == 20
    assert store.read(timeframe="1Day").empty
    with pytest.raises(DataValidationError, match="unknown timeframe"):
        store.read(timeframe="1Week")


def test_summary_and_symbols(store: BarStore) -> None:
    store.write(pd.concat([daily("AAPL", "2020-01-01", 10), daily("MSFT", "2020-03-02", 5)]))
    summary = store.summary()
    assert list(summary.columns) == ["symbol", "timeframe", "bars", "first", "last"]
    assert summary["symbol"].tolist() == ["AAPL", "MSFT"]
    assert summary["bars"].tolist() == [10, 5]
    assert summary.loc[1, "first"] == pd.Timestamp("2020-03-02T05:00Z")
    assert store.symbols() == ["AAPL", "MSFT"]
    assert store.timeframes() == ["1Day"]
    assert BarStore(store.root / "missing").summary().empty


def test_temp_files_of_a_killed_writer_are_ignored_then_cleaned(store: BarStore) -> None:
    store.write(daily("AAPL", "2020-01-01", 10))
    folder = store.root / "timeframe=1Day" / "symbol=AAPL"
    torn = folder / ".all.parquet.99999.tmp"
    torn.write_bytes(b"PAR1 half a file")
    assert len(store.read()) == 10
    store.write(daily("AAPL", "2020-01-15", 10))
    assert not torn.exists()


def test_reading_a_few_symbols_out_of_the_real_405(
    tmp_path: Path, sp500_daily: pd.DataFrame
) -> None:
    store = BarStore(tmp_path / "bars", durable=False)  # fsync adds seconds, tests nothing here
    clean = validate_bars(sp500_daily, where="sp500", repair=True, timeframe="1Day").bars
    report = store.write(clean)
    assert len(report.symbols) == 405
    few = store.read(["LNT", "AAPL", "BAX"], start="2015-01-01", end="2015-12-31")
    assert few["symbol"].unique().tolist() == ["AAPL", "BAX", "LNT"]
    expected = clean[clean["symbol"].isin(["LNT", "AAPL", "BAX"])]
    expected = expected[expected["timestamp"].dt.year == 2015].reset_index(drop=True)
    pd.testing.assert_frame_equal(few, expected)
    assert store.summary()["bars"].sum() == len(clean)
