"""Streaming features equal the batch TA-Lib features on real daily and minute bars:
every column of every bar, from the first bar on (warm-up included), within 1e-9."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from core.errors import DataValidationError
from core.types import BAR_COLUMNS, Bar
from features.catalogue import BAR_FEATURES
from features.compute import compute_feature_set
from features.streaming import StreamingFeatures
from features.streaming.technical import SymbolTechnicals
from features.technical import periods_per_year
from tests.conftest import shared_file

TOLERANCE = 1e-9
DAILY_SYMBOLS = ["AAPL", "XOM", "JPM", "NEE", "LNT", "BAX", "EBAY"]  # bad print, spin-off


def _stream(bars: pd.DataFrame, index: pd.DataFrame | None) -> pd.DataFrame:
    """Every bar through `update_many`, one timestamp at a time."""
    live = StreamingFeatures(
        bars_per_year=periods_per_year(bars["timestamp"]),
        index_bars=index,
    )
    rows = []
    for moment, group in bars.groupby("timestamp", sort=True):
        for symbol, features in live.update_many(group).items():
            rows.append({"symbol": symbol, "timestamp": moment, **features})
    return pd.DataFrame(rows).set_index(["symbol", "timestamp"]).sort_index()


def _mismatches(streamed: pd.DataFrame, batch: pd.DataFrame, skip: int) -> list[str]:
    """Columns where a bar after the first `skip` of its symbol differs by more than the
    tolerance (relative above 1, absolute below), or where NaN-ness differs."""
    batch = batch.set_index(["symbol", "timestamp"]).sort_index()
    assert streamed.index.equals(batch.index)
    rank = streamed.groupby(level="symbol").cumcount().to_numpy()
    keep = rank >= skip
    wrong = []
    for name in BAR_FEATURES:
        got = streamed[name].to_numpy(dtype=np.float64)[keep]
        want = batch[name].to_numpy(dtype=np.float64)[keep]
        same_nan = np.isnan(got) == np.isnan(want)
        both = ~np.isnan(got) & ~np.isnan(want)
        gap = np.abs(got[both] - want[both]) / np.maximum(1.0, np.abs(want[both]))
        if not same_nan.all() or (gap > TOLERANCE).any():
            worst = float(gap.max()) if gap.size else float("nan")
            wrong.append(f"{name}: nan-mismatch {int((~same_nan).sum())}, worst gap {worst:.2e}")
    return wrong


@pytest.fixture(scope="module")
def daily(sp500_daily: pd.DataFrame) -> pd.DataFrame:
    chosen = sp500_daily.loc[sp500_daily["symbol"].isin(DAILY_SYMBOLS), list(BAR_COLUMNS)]
    return chosen.reset_index(drop=True)


@pytest.fixture(scope="module")
def spy(spy_daily: pd.DataFrame) -> pd.DataFrame:
    return spy_daily.loc[:, list(BAR_COLUMNS)]


@pytest.fixture(scope="module")
def minute() -> pd.DataFrame:
    frame = pd.read_parquet(shared_file("intraday/minute_2021.parquet"))
    return frame.loc[:, list(BAR_COLUMNS)].reset_index(drop=True)


def test_daily_stream_equals_batch_from_the_first_bar(
    daily: pd.DataFrame, spy: pd.DataFrame
) -> None:
    """Seven S&P 500 stocks 2013-2018 (missing prices, a bad print, spin-off jumps)
    against SPY: every column of every bar within 1e-9 of the batch."""
    batch = compute_feature_set(daily, spy).frame
    assert _mismatches(_stream(daily, spy), batch, skip=0) == []


def test_minute_stream_equals_batch_from_the_first_bar(minute: pd.DataFrame) -> None:
    """SPY, AAPL, MSFT, GLD and TLT 1-minute bars of 2021, SPY also the index."""
    index = minute.loc[minute["symbol"] == "SPY"]
    batch = compute_feature_set(minute, index).frame
    assert _mismatches(_stream(minute, index), batch, skip=0) == []


def test_pre_and_post_market_minutes_equal_batch() -> None:
    """SPY January 2011 with pre- and post-market minutes (other session codes)."""
    bars = pd.read_parquet(shared_file("intraday/spy_minute_2011_01.parquet"))
    bars = bars.loc[:, list(BAR_COLUMNS)].iloc[:4_000].reset_index(drop=True)
    batch = compute_feature_set(bars, bars).frame
    assert _mismatches(_stream(bars, bars), batch, skip=0) == []


def test_seeded_state_continues_like_a_full_stream(
    daily: pd.DataFrame, spy: pd.DataFrame
) -> None:
    times = sorted(daily["timestamp"].unique())
    cut = times[-3]
    live = StreamingFeatures(index_bars=spy)
    live.seed(daily.loc[daily["timestamp"] < cut])
    batch = compute_feature_set(daily, spy).frame.set_index(["symbol", "timestamp"])
    for moment in times[-3:]:
        for symbol, got in live.update_many(daily.loc[daily["timestamp"] == moment]).items():
            want = batch.loc[(symbol, moment)]
            for name in BAR_FEATURES:
                a, b = got[name], float(want[name])
                assert (np.isnan(a) and np.isnan(b)) or abs(a - b) <= TOLERANCE * max(
                    1.0, abs(b)
                ), (symbol, name, a, b)


def test_state_does_not_grow_with_history(minute: pd.DataFrame) -> None:
    """O(1) per bar: the indicator state after 3,000 bars is no larger than after 300."""
    spy_bars = minute.loc[minute["symbol"] == "SPY"]
    rows = spy_bars[["open", "high", "low", "close", "volume"]].to_numpy()
    state = SymbolTechnicals(bars_per_year=98_280.0)
    sizes = {}
    for i, row in enumerate(rows[:3_000], start=1):
        state.update(*map(float, row))
        if i in (300, 3_000):
            sizes[i] = len(pickle.dumps(state))
    assert sizes[3_000] <= sizes[300] + 16


def test_bad_input_gets_one_clear_error() -> None:
    live = StreamingFeatures(bars_per_year=252.0)
    stamp = pd.Timestamp("2021-08-23", tz="UTC")
    live.update(Bar("AAPL", stamp.to_pydatetime(), 10.0, 11.0, 9.0, 10.5, 100.0))
    with pytest.raises(DataValidationError, match="not newer than the latest bar"):
        live.update(Bar("AAPL", stamp.to_pydatetime(), 10.0, 11.0, 9.0, 10.5, 100.0))
    two = pd.DataFrame(
        {"symbol": ["AAPL", "MSFT"], "timestamp": [stamp, stamp], "open": 1.0, "high": 1.0,
         "low": 1.0, "close": 1.0, "volume": 1.0}
    )
    with pytest.raises(DataValidationError, match="one symbol"):
        live.update(two)
    with pytest.raises(DataValidationError, match="bars_per_year is unknown"):
        StreamingFeatures().update(Bar("AAPL", stamp.to_pydatetime(), 1, 1, 1, 1, 1))
