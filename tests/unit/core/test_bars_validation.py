"""Bar validation: every bad-bar case on small frames, then the real quirks of the
S&P 500 file in ../shared/data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.bars import (
    BarValidationError,
    daily_bar_timestamps,
    find_jumps,
    normalize_bars,
    validate_bars,
)
from core.errors import DataValidationError
from core.types import BAR_COLUMNS


def bars(*rows: tuple[object, ...]) -> pd.DataFrame:
    """Rows of (symbol, timestamp, open, high, low, close, volume)."""
    return pd.DataFrame(list(rows), columns=list(BAR_COLUMNS))


GOOD = (
    ("AAA", "2020-01-02T00:00:00Z", 10.0, 11.0, 9.5, 10.5, 1000),
    ("AAA", "2020-01-03T00:00:00Z", 10.5, 10.8, 10.1, 10.2, 1200),
    ("BBB", "2020-01-02T00:00:00Z", 50.0, 51.0, 49.0, 50.5, 300),
)


T6 = "2020-01-06T00:00:00Z"


def problems_of(frame: pd.DataFrame) -> BarValidationError:
    with pytest.raises(BarValidationError) as caught:
        validate_bars(frame, where="test.csv")
    return caught.value


def test_clean_frame_passes_with_the_bar_schema() -> None:
    check = validate_bars(bars(GOOD[2], GOOD[0], GOOD[1]), where="test")
    frame = check.bars
    assert list(frame.columns) == list(BAR_COLUMNS)
    assert str(frame["timestamp"].dtype) == "datetime64[ns, UTC]"
    assert all(frame[name].dtype == np.float64 for name in BAR_COLUMNS[2:])
    assert frame["symbol"].tolist() == ["AAA", "AAA", "BBB"]
    assert check.repairs == []
    assert check.warnings == []


def test_missing_columns_are_named_even_with_repair() -> None:
    frame = bars(*GOOD).drop(columns=["low", "volume"])
    with pytest.raises(DataValidationError, match=r"missing column\(s\) low, volume") as caught:
        validate_bars(frame, where="prices.csv", repair=True)
    assert "prices.csv" in str(caught.value)


@pytest.mark.parametrize(
    ("row", "kind", "column"),
    [
        (("AAA", T6, 10.0, 11.0, 9.0, 0.0, 1), "non-positive price", "close"),
        (("AAA", T6, -1.0, 11.0, 9.0, 10.0, 1), "non-positive price", "open"),
        (("AAA", T6, 10.0, 9.0, 11.0, 10.0, 1), "high below low", "high"),
        (("AAA", T6, 10.0, 11.0, 9.0, 12.0, 1), "price outside [low, high]", "close"),
        (("AAA", T6, 8.0, 11.0, 9.0, 10.0, 1), "price outside [low, high]", "open"),
        (("AAA", T6, 10.0, np.nan, 9.0, 10.0, 1), "missing value (NaN)", "high"),
        (("AAA", T6, 10.0, 11.0, 9.0, np.nan, 1), "missing value (NaN)", "close"),
        (("AAA", T6, 10.0, 11.0, 9.0, 10.0, -5), "negative volume", "volume"),
        (("AAA", T6, 10.0, np.inf, 9.0, 10.0, 1), "unparseable number", "high"),
        (("AAA", T6, "ten", 11.0, 9.0, 10.0, 1), "unparseable number", "open"),
        (("AAA", "yesterday-ish", 10.0, 11.0, 9.0, 10.0, 1), "unparseable timestamp", "timestamp"),
        (("AAA", "2020-01-06 15:30:00", 10.0, 11.0, 9.0, 10.0, 1), "naive timestamp", "timestamp"),
        (("AAA", None, 10.0, 11.0, 9.0, 10.0, 1), "missing timestamp", "timestamp"),
        ((None, T6, 10.0, 11.0, 9.0, 10.0, 1), "missing symbol", "symbol"),
        (("AAA", "2020-01-02T00:00:00Z", 10.0, 11.0, 9.0, 10.0, 1), "duplicate", "timestamp"),
        (("AAA", "2019-12-31T00:00:00Z", 10.0, 11.0, 9.0, 10.0, 1), "out of order", "timestamp"),
    ],
)
def test_each_bad_bar_is_named_with_column_symbol_timestamp_and_row(
    row: tuple[object, ...], kind: str, column: str
) -> None:
    # The bad row goes in second position (row 1) so "out of order" is meaningful.
    error = problems_of(bars(GOOD[0], row, GOOD[2]))
    found = [p for p in error.problems if kind in p.kind]
    assert found, error.problems
    problem = found[0]
    assert problem.column == column
    # A duplicate is reported on the earlier row: repair keeps the last occurrence.
    assert problem.row == (0 if kind == "duplicate" else 1)
    message = str(error)
    assert message.startswith("test.csv: ")
    assert kind in message
    assert f"column {column}" in message
    assert f"row {problem.row}" in message
    if row[0] is not None:
        assert "AAA" in message
    if kind not in ("unparseable timestamp", "missing timestamp"):
        assert "2020-01-0" in message or "2019-12-31" in message


def test_message_shows_the_first_examples_and_counts_the_rest() -> None:
    rows = [("AAA", f"2020-02-{day:02d}T00:00Z", 10.0, 9.0, 11.0, 10.0, 1) for day in range(1, 11)]
    error = problems_of(bars(*rows))
    assert len(error.problems) == 3 * 10  # high < low; open and close outside the empty range
    line = next(line for line in str(error).splitlines() if "high below low" in line)
    assert "high below low in column high: 10" in line
    assert line.count("row ") == 3
    assert "and 7 more" in line


def test_date_only_values_are_session_dates_not_naive() -> None:
    frame = bars(("AAA", "2020-01-02", 10.0, 11.0, 9.5, 10.5, 1000))
    check = validate_bars(frame, where="test")
    assert check.bars["timestamp"].iloc[0] == pd.Timestamp("2020-01-02", tz="UTC")
    naive_midnight = frame.assign(timestamp=pd.to_datetime(frame["timestamp"]))
    assert validate_bars(naive_midnight, where="test").bars.equals(check.bars)


def test_naive_datetime_dtype_with_time_of_day_is_refused() -> None:
    frame = bars(("AAA", "2020-01-02 14:30", 10.0, 11.0, 9.5, 10.5, 1000))
    frame["timestamp"] = pd.to_datetime(frame["timestamp"])
    error = problems_of(frame)
    assert error.problems[0].kind.startswith("naive timestamp")


def test_numeric_timestamps_are_refused_not_guessed() -> None:
    frame = bars(("AAA", 1577923200, 10.0, 11.0, 9.5, 10.5, 1000))
    assert problems_of(frame).problems[0].kind == "unparseable timestamp"


def test_offsets_are_converted_to_utc() -> None:
    frame = bars(("AAA", "2020-01-02T09:30:00-05:00", 10.0, 11.0, 9.5, 10.5, 1000))
    stamp = validate_bars(frame, where="test").bars["timestamp"].iloc[0]
    assert stamp == pd.Timestamp("2020-01-02T14:30:00Z")


def test_repair_drops_or_fixes_every_bad_row_and_reports_each() -> None:
    frame = bars(
        ("AAA", "2020-01-03T00:00:00Z", 10.5, 10.8, 10.1, 10.2, 1200),  # 0 fine (order fixed)
        ("AAA", "2020-01-02T00:00:00Z", 10.0, 11.0, 9.5, 10.5, 1000),  # 1 out of order
        ("AAA", T6, 10.0, 9.0, 11.0, 10.0, 1),  # 2 high < low
        ("AAA", "2020-01-07T00:00:00Z", np.nan, np.nan, np.nan, 10.0, 7),  # 3 filled flat
        ("AAA", "2020-01-08T00:00:00Z", 10.0, 11.0, 9.0, np.nan, 7),  # 4 no close
        ("AAA", "2020-01-09T00:00:00Z", 10.0, 11.0, 9.0, 10.0, -1),  # 5 negative volume
        ("AAA", "2020-01-10T00:00:00Z", 10.0, 11.0, 9.0, 10.0, np.nan),  # 6 volume -> 0
        ("AAA", "2020-01-13 15:00:00", 10.0, 11.0, 9.0, 10.0, 5),  # 7 naive -> UTC
        ("AAA", "garbage", 10.0, 11.0, 9.0, 10.0, 5),  # 8 unparseable
        ("BBB", "2020-01-02T00:00:00Z", 50.0, 51.0, 49.0, 50.5, 300),  # 9 duplicate of 10
        ("BBB", "2020-01-02T00:00:00Z", 50.0, 51.0, 49.0, 50.7, 310),  # 10 kept (last)
        ("BBB", "2020-01-03T00:00:00Z", 50.0, 51.0, 49.0, 0.0, 310),  # 11 zero close
    )
    check = validate_bars(frame, where="test", repair=True)
    by_row = {repair.row: repair for repair in check.repairs}
    assert {row: r.action for row, r in by_row.items()} == {
        1: "sorted",
        2: "dropped",
        3: "filled",
        4: "dropped",
        5: "dropped",
        6: "filled",
        7: "assumed_utc",
        8: "dropped",
        9: "dropped",
        11: "dropped",
    }
    assert "high below low" in by_row[2].reason
    assert "duplicate" in by_row[9].reason
    assert by_row[9].symbol == "BBB"
    assert by_row[9].timestamp == "2020-01-02T00:00:00+00:00"
    assert "open" in by_row[3].reason
    clean = check.bars
    assert len(clean) == 12 - 6
    assert clean.loc[clean["symbol"] == "AAA", "timestamp"].is_monotonic_increasing
    flat = clean[clean["timestamp"] == pd.Timestamp("2020-01-07", tz="UTC")].iloc[0]
    assert (flat["open"], flat["high"], flat["low"], flat["close"]) == (10.0, 10.0, 10.0, 10.0)
    assert clean.loc[clean["symbol"] == "BBB", "close"].tolist() == [50.7]
    assert pd.Timestamp("2020-01-13T15:00:00Z") in set(clean["timestamp"])
    tenth = clean["timestamp"] == pd.Timestamp("2020-01-10", tz="UTC")
    assert clean.loc[tenth, "volume"].item() == 0
    # The result passes strict validation.
    assert validate_bars(clean, where="again").bars.equals(clean)


def test_repair_fill_that_stays_inconsistent_is_dropped() -> None:
    # open missing, close above high: filling open cannot make it a valid bar.
    frame = bars(("AAA", "2020-01-02T00:00:00Z", np.nan, 11.0, 9.0, 12.0, 1))
    check = validate_bars(frame, where="test", repair=True)
    assert check.bars.empty
    assert check.repairs[0].action == "dropped"
    assert "outside" in check.repairs[0].reason


def test_normalize_coerces_without_judging() -> None:
    frame = bars(("BBB", "2020-01-02", 5, 4, 6, 5, 1), ("AAA", "2020-01-02 10:00", 1, 1, 1, 1, 1))
    frame["extra"] = 1
    out = normalize_bars(frame)
    assert list(out.columns) == list(BAR_COLUMNS)
    assert out["symbol"].tolist() == ["AAA", "BBB"]
    assert out["high"].tolist() == [1.0, 4.0]  # high < low kept: normalize does not judge
    assert str(out["timestamp"].dtype) == "datetime64[ns, UTC]"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("2020-01-02T00:00:00Z", "2020-01-02T05:00:00Z"),  # date-only export, winter
        ("2020-07-01T00:00:00Z", "2020-07-01T04:00:00Z"),  # summer (EDT)
        ("2020-07-01T04:00:00Z", "2020-07-01T04:00:00Z"),  # already Alpaca's stamp
        ("2020-07-01T20:00:00Z", "2020-07-01T04:00:00Z"),  # session close, same NY date
        ("2020-07-01T16:00:00-04:00", "2020-07-01T04:00:00Z"),
    ],
)
def test_daily_bars_are_stamped_at_midnight_new_york(given: str, expected: str) -> None:
    stamped = daily_bar_timestamps(pd.Series(pd.to_datetime([given], utc=True)))
    assert stamped.iloc[0] == pd.Timestamp(expected)


def test_daily_timeframe_dedupes_two_stamps_of_one_session() -> None:
    frame = bars(
        ("AAA", "2020-07-01T00:00:00Z", 10.0, 11.0, 9.5, 10.5, 1000),
        ("AAA", "2020-07-01T04:00:00Z", 10.0, 11.0, 9.5, 10.5, 1000),
    )
    with pytest.raises(BarValidationError, match="duplicate"):
        validate_bars(frame, where="test", timeframe="1Day")
    assert len(validate_bars(frame, where="test").bars) == 2


def test_jumps_warn_and_spikes_are_told_apart() -> None:
    closes = [10.0, 10.1, 5.0, 10.0, 10.2, 16.0, 16.1]  # spike at 2, jump at 5
    frame = pd.DataFrame(
        {
            "symbol": "AAA",
            "timestamp": pd.date_range("2020-01-01", periods=len(closes), freq="D", tz="UTC"),
            "open": closes,
            "high": closes,
            "low": closes,
            "close": closes,
            "volume": 1.0,
        }
    )
    warnings = find_jumps(frame)
    assert [(w.kind, w.timestamp[:10]) for w in warnings] == [
        ("spike", "2020-01-03"),
        ("jump", "2020-01-06"),
    ]
    check = validate_bars(frame, where="test")
    assert len(check.bars) == len(closes)  # warnings never drop a consistent bar
    assert check.warnings == warnings


# ----------------------------------------------------------------- the real S&P 500 file


def test_real_sp500_file_is_refused_with_its_exact_quirks(sp500_daily: pd.DataFrame) -> None:
    error = problems_of(sp500_daily)
    rows_with_nan = {p.row for p in error.problems if p.kind == "missing value (NaN)"}
    assert len(rows_with_nan) == 8
    nan_cells = [p for p in error.problems if p.kind == "missing value (NaN)"]
    assert len(nan_cells) == 20  # the README's "20 missing prices"
    lnt = [p for p in error.problems if p.symbol == "LNT"]
    assert lnt
    assert lnt[0].timestamp == "2016-05-19T00:00:00+00:00"
    assert lnt[0].column == "close"
    assert "close=17.87" in lnt[0].detail
    # The file lists AAPL before AAP (file-name order): symbol order is not a problem.
    assert not any("order" in p.kind for p in error.problems)
    assert "missing value (NaN) in column open: 8" in str(error)


def test_real_sp500_file_repairs_report_every_row_and_keep_spin_offs(
    sp500_daily: pd.DataFrame,
) -> None:
    check = validate_bars(sp500_daily, where="sp500", repair=True, timeframe="1Day")
    actions = [r.action for r in check.repairs]
    assert actions.count("filled") == 8
    assert actions.count("dropped") == 10
    assert len(check.bars) == len(sp500_daily) - 10
    lnt_day = pd.Timestamp("2016-05-19T04:00:00Z")
    lnt = check.bars[check.bars["symbol"] == "LNT"]
    assert lnt_day not in set(lnt["timestamp"])
    assert len(lnt) == (sp500_daily["symbol"] == "LNT").sum() - 1
    # Spin-off jumps are real: kept, and only warned about.
    jumps = {(w.symbol, w.timestamp[:10]) for w in check.warnings if w.kind == "jump"}
    for symbol, day in (
        ("BAX", "2015-07-01"),
        ("EBAY", "2015-07-20"),
        ("DISCA", "2014-08-07"),
        ("DISCK", "2014-08-07"),
    ):
        assert (symbol, day) in jumps
        stamp = pd.Timestamp(day).tz_localize("America/New_York").tz_convert("UTC")
        kept = check.bars[(check.bars["symbol"] == symbol) & (check.bars["timestamp"] == stamp)]
        assert len(kept) == 1
    assert validate_bars(check.bars, where="clean", timeframe="1Day").bars.equals(check.bars)


def test_a_consistent_bad_print_is_kept_and_flagged_as_a_spike(sp500_daily: pd.DataFrame) -> None:
    lnt = sp500_daily[sp500_daily["symbol"] == "LNT"].copy()
    bad = lnt["timestamp"] == pd.Timestamp("2016-05-19", tz="UTC")
    lnt.loc[bad, "low"] = 17.5  # make the bad print internally consistent
    lnt.loc[bad, "open"] = 17.9
    check = validate_bars(lnt, where="lnt")
    assert len(check.bars) == len(lnt)
    assert [(w.kind, w.timestamp[:10]) for w in check.warnings] == [("spike", "2016-05-19")]


def test_real_spy_daily_file_has_two_opens_outside_the_range(spy_daily: pd.DataFrame) -> None:
    error = problems_of(spy_daily)
    assert [(p.row, p.column, p.timestamp[:10]) for p in error.problems] == [
        (1806, "open", "2015-03-05"),
        (1823, "open", "2015-03-30"),
    ]
    check = validate_bars(spy_daily, where="spy", repair=True, timeframe="1Day")
    assert len(check.bars) == len(spy_daily) - 2
    assert [r.action for r in check.repairs] == ["dropped", "dropped"]


def test_real_minute_files_pass_as_they_are() -> None:
    from tests.conftest import shared_file

    for name in ("intraday/spy_minute_2011_01.parquet", "intraday/minute_2021.parquet"):
        frame = pd.read_parquet(shared_file(name))
        check = validate_bars(frame, where=name, timeframe="1Min")
        assert len(check.bars) == len(frame)
        assert (check.bars["volume"] >= 0).all()
