"""The sample (bokeh-sampledata + arch) and file (parquet/CSV) market data sources."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.bars import BarValidationError, validate_bars
from core.errors import DataSourceError, DataValidationError, NotFoundError
from core.types import BAR_COLUMNS
from trading.adapters.files.data import FileMarketData
from trading.adapters.sample.data import SampleMarketData
from trading.ports import MarketData


@pytest.fixture(scope="module")
def sample() -> SampleMarketData:
    return SampleMarketData()


def test_sample_covers_the_documented_symbols_and_years(sample: SampleMarketData) -> None:
    port: MarketData = sample
    bars = port.history()
    assert list(bars.columns) == list(BAR_COLUMNS)
    spans = bars.groupby("symbol")["timestamp"].agg(["min", "max"])
    ny = spans.apply(lambda col: col.dt.tz_convert("America/New_York").dt.strftime("%Y-%m-%d"))
    assert ny.loc["AAPL"].tolist() == ["2000-03-01", "2013-03-01"]
    assert ny.loc["GOOG", "min"] == "2004-08-19"
    assert ny.loc["FB", "min"] == "2012-05-18"
    assert ny.loc["SPX"].tolist() == ["1999-01-04", "2018-12-31"]
    assert ny.loc["COMP"].tolist() == ["1999-01-04", "2018-12-31"]
    assert ny.loc["VIX"].tolist() == ["2014-01-03", "2019-01-03"]
    # Stamped like Alpaca's daily bars: midnight New York, in UTC.
    local = bars["timestamp"].dt.tz_convert("America/New_York")
    assert (local == local.dt.normalize()).all()
    assert set(bars["timestamp"].dt.hour) == {4, 5}
    validate_bars(bars, where="sample", timeframe="1Day")  # passes strict validation


def test_vix_is_close_only_and_its_gaps_are_reported(sample: SampleMarketData) -> None:
    check = sample.history_check(["VIX"])
    vix = check.bars
    assert (vix["open"] == vix["close"]).all()
    assert (vix["high"] == vix["close"]).all()
    assert (vix["low"] == vix["close"]).all()
    assert (vix["volume"] == 0).all()
    assert len(check.repairs) == 46
    assert {r.action for r in check.repairs} == {"dropped"}
    assert all("close" in r.reason for r in check.repairs)


def test_split_adjustment_removes_the_false_crashes(sample: SampleMarketData) -> None:
    split_days = {("AAPL", "2000-06-21"), ("AAPL", "2005-02-28"), ("MSFT", "2003-02-18")}
    raw = SampleMarketData(adjustment="raw").history_check(["AAPL", "MSFT"])
    raw_jumps = {(w.symbol, w.timestamp[:10]) for w in raw.warnings}
    assert split_days <= raw_jumps
    adjusted = sample.history_check(["AAPL", "MSFT"])
    adjusted_jumps = {(w.symbol, w.timestamp[:10]) for w in adjusted.warnings}
    assert not split_days & adjusted_jumps
    assert ("AAPL", "2000-09-29") in adjusted_jumps  # a real crash stays, as a warning
    assert adjusted.repairs == []
    from bokeh_sampledata import stocks

    source = stocks.data[stocks.data["ticker"] == "AAPL"]
    aapl = adjusted.bars[adjusted.bars["symbol"] == "AAPL"]
    np.testing.assert_allclose(aapl["close"].to_numpy(), source["adj_close"].to_numpy(), rtol=1e-12)
    assert raw.bars.loc[raw.bars["symbol"] == "AAPL", "close"].iloc[-1] == 430.47


def test_sample_filters_and_refuses_what_it_lacks(sample: SampleMarketData) -> None:
    window = sample.history(["spx", "COMP"], start="2018-12-24", end="2018-12-31")
    assert window["symbol"].unique().tolist() == ["COMP", "SPX"]
    assert len(window) == 2 * 5  # 24, 26, 27, 28, 31 December 2018 (25th: Christmas)
    with pytest.raises(NotFoundError, match="TSLA"):
        sample.history(["TSLA"])
    with pytest.raises(DataSourceError, match="daily only"):
        sample.history(["AAPL"], timeframe="1Min")
    with pytest.raises(DataValidationError, match="unknown timeframe"):
        sample.history(["AAPL"], timeframe="2Day")


# --------------------------------------------------------------------------- files


def write_csv(path: Path, text: str) -> Path:
    path.write_text(text.strip() + "\n")
    return path


def test_csv_with_dates_and_no_symbol_column_takes_the_file_name(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "aapl.csv",
        """
Date,Open,High,Low,Close,Volume
2020-01-03,10.5,10.8,10.1,10.2,1200
2020-01-02,10.0,11.0,9.5,10.5,1000
""",
    )
    with pytest.raises(BarValidationError, match=r"out of order.*row 1 AAPL"):
        FileMarketData(path).history()
    check = FileMarketData(path, repair=True).history_check()
    assert check.bars["symbol"].tolist() == ["AAPL", "AAPL"]
    assert check.bars["timestamp"].tolist() == [
        pd.Timestamp("2020-01-02T05:00Z"),
        pd.Timestamp("2020-01-03T05:00Z"),
    ]
    assert [(r.row, r.action) for r in check.repairs] == [(1, "sorted")]


def test_csv_problems_name_the_file_column_row_and_value(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "prices.csv",
        """
symbol,timestamp,open,high,low,close,volume
MSFT,2020-01-02T14:30:00Z,10,11,9,10,100
MSFT,32/13/2020,10,11,9,10,100
MSFT,2020-01-02T14:32:00Z,10,11,9,abc,100
""",
    )
    with pytest.raises(BarValidationError) as caught:
        FileMarketData(path).history(timeframe="1Min")
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    assert "unparseable timestamp in column timestamp: 1 — row 1 MSFT ('32/13/2020')" not in message
    assert "row 1 MSFT (value '32/13/2020')" in message
    assert "unparseable number in column close: 1 — row 2 MSFT 2020-01-02T14:32:00+00:00" in message


def test_missing_columns_name_the_file(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "x.csv", "symbol,timestamp,open,close\nA,2020-01-02,1,1")
    with pytest.raises(DataValidationError, match=r"x\.csv: missing column\(s\) high, low, volume"):
        FileMarketData(path).history()


def test_folder_of_files_is_checked_together(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "symbol": ["AAA", "AAA"],
            "timestamp": pd.to_datetime(["2020-01-02", "2020-01-03"], utc=True),
            "open": [1.0, 1.0],
            "high": [2.0, 2.0],
            "low": [0.5, 0.5],
            "close": [1.5, 1.6],
            "volume": [10, 10],
        }
    )
    (tmp_path / "part").mkdir()
    frame.to_parquet(tmp_path / "part" / "a.parquet")
    frame.iloc[1:].assign(close=1.7).to_csv(tmp_path / "b.csv", index=False)
    (tmp_path / "notes.txt").write_text("not bars")
    source = FileMarketData(tmp_path)
    assert [p.name for p in source.files()] == ["b.csv", "a.parquet"]
    with pytest.raises(BarValidationError, match=r"(?s)all files together.*duplicate"):
        source.history()
    check = FileMarketData(tmp_path, repair=True).history_check()
    assert check.bars["close"].tolist() == [1.5, 1.6]  # later file in the list wins
    assert [r.action for r in check.repairs] == ["dropped"]
    assert "out of order" not in str(check.repairs)


def test_unreadable_paths_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="no such file"):
        FileMarketData(tmp_path / "missing.csv").history()
    with pytest.raises(NotFoundError, match=r"no \.parquet"):
        FileMarketData(tmp_path).history()
    (tmp_path / "bars.json").write_text("{}")
    with pytest.raises(DataValidationError, match="not a bar file"):
        FileMarketData(tmp_path / "bars.json").history()
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"this is not parquet")
    with pytest.raises(DataValidationError, match="cannot read the file"):
        FileMarketData(broken).history()


def test_real_sp500_parquet_through_the_file_source(sp500_daily: pd.DataFrame) -> None:
    from tests.conftest import shared_file

    path = shared_file("sp500_daily_2013_2018.parquet")
    with pytest.raises(BarValidationError) as caught:
        FileMarketData(path).history()
    assert str(caught.value).startswith(str(path))
    assert "LNT 2016-05-19" in str(caught.value) or any(
        p.symbol == "LNT" for p in caught.value.problems
    )
    check = FileMarketData(path, repair=True).history_check(["LNT", "BAX"], start="2015-01-01")
    assert check.bars["symbol"].unique().tolist() == ["BAX", "LNT"]
    assert [(r.symbol, r.action) for r in check.repairs] == [("LNT", "dropped")]
    assert any(w.symbol == "BAX" and w.kind == "jump" for w in check.warnings)
    assert len(check.bars) > 2 * 700
    assert len(sp500_daily) == 496_240


def test_sample_index_series_match_arch_loaders_exactly(sample: SampleMarketData) -> None:
    from arch.data import nasdaq, sp500, vix

    bars = sample.history(["SPX", "COMP", "VIX"])
    for symbol, module, column in (("SPX", sp500, "Close"), ("COMP", nasdaq, "Close")):
        source = module.load()
        mine = bars[bars["symbol"] == symbol]
        np.testing.assert_array_equal(mine["close"].to_numpy(), source[column].to_numpy())
        np.testing.assert_array_equal(mine["volume"].to_numpy(), source["Volume"].to_numpy())
        dates = mine["timestamp"].dt.tz_convert("America/New_York").dt.strftime("%Y-%m-%d")
        assert dates.tolist() == source.index.strftime("%Y-%m-%d").tolist()
    source_vix = vix.load()["vix"].dropna()
    np.testing.assert_array_equal(bars.loc[bars["symbol"] == "VIX", "close"], source_vix)
