"""Temporal (exchange calendar, exchange time), market context and sentiment rules."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.types import BAR_COLUMNS
from features.compute import compute_feature_set
from features.sectors import SECTORS, sector_map, sector_of
from features.sentiment import sentiment_features
from features.temporal import temporal_features


def test_intraday_sessions_on_the_exchange_calendar() -> None:
    stamps = pd.Series(
        pd.to_datetime(
            [
                "2021-07-01 12:00",  # 08:00 New York: pre-market
                "2021-07-01 13:30",  # 09:30: the open
                "2021-07-01 19:45",  # 15:45: last 30 minutes
                "2021-07-01 20:00",  # 16:00: post-market
                "2021-07-03 15:00",  # Saturday: closed
                "2021-11-26 17:45",  # 12:45 on the day after Thanksgiving (closes 13:00)
                "2021-07-30 14:00",  # last session of July
            ],
            utc=True,
        )
    )
    got = temporal_features(stamps, daily=False)
    assert got["session_code"].tolist() == [0, 1, 1, 2, -1, 1, 1]
    assert got["tod_bucket"].tolist() == [0, 1, 5, 6, -1, 5, 2]
    assert got["minutes_since_open"].iloc[1] == 0
    assert got["minutes_to_close"].iloc[5] == 15  # early close from the calendar
    assert got["dow"].iloc[0] == 3  # Thursday
    assert got["days_to_month_end"].iloc[6] == 0
    assert got["days_to_month_end"].iloc[0] == 20  # 21 July sessions (4th is a holiday)
    assert np.isnan(got["minutes_since_open"].iloc[4])


def test_daily_bars_are_whole_sessions_in_exchange_time() -> None:
    stamps = pd.Series(pd.to_datetime(["2021-11-26", "2021-11-29"], utc=True))
    got = temporal_features(stamps, daily=True)
    assert got["minutes_since_open"].tolist() == [210, 390]  # early close, normal day
    assert got["session_is_regular"].tolist() == [1, 1]


def test_earnings_proximity_and_explicit_missing_values() -> None:
    symbols = pd.Series(["AAPL", "AAPL", "XOM"])
    decided = pd.Series(
        pd.to_datetime(["2016-04-20 20:00", "2016-04-27 20:00", "2016-04-20 20:00"], utc=True)
    )
    earnings = pd.DataFrame({"symbol": ["AAPL"], "date": ["2016-04-26"]})
    got = sentiment_features(symbols, decided, earnings=earnings)
    assert got["earnings_days_to"].iloc[0] == 6
    assert got["earnings_days_since"].iloc[1] == 1
    assert np.isnan(got["earnings_days_to"].iloc[2])  # no date for XOM: unknown, not zero
    assert got["earnings_available"].eq(1).all()
    assert got["sent_available"].eq(0).all()
    assert got["news_count_1d"].isna().all()


def test_market_context_vix_flag_stale_index_and_unknown_sector(
    sp500_daily: pd.DataFrame, spy_daily: pd.DataFrame
) -> None:
    bars = sp500_daily.loc[sp500_daily["symbol"].isin(["AAPL", "XOM", "CVX"])]
    spy = spy_daily.loc[:, list(BAR_COLUMNS)]
    vix = spy.loc[spy["timestamp"] >= "2016-01-01"].assign(symbol="VIX")
    vix[["open", "high", "low", "close"]] = 15.0
    unknown = bars.loc[bars["symbol"] == "AAPL"].assign(symbol="NOTASTOCK")
    frame = compute_feature_set(pd.concat([bars, unknown]), pd.concat([spy, vix])).frame.set_index(
        ["symbol", "timestamp"]
    )
    row = frame.loc[("XOM", pd.Timestamp("2016-06-01", tz="UTC"))]
    assert row["mkt_vol_is_vix"] == 1
    assert row["mkt_vol_level"] == pytest.approx(0.15)
    early = frame.loc[("XOM", pd.Timestamp("2015-06-01", tz="UTC"))]
    assert early["mkt_vol_is_vix"] == 0
    assert early["mkt_vol_level"] == early["mkt_realized_vol_20"]
    # SPY ends 2017-12-29; the stocks go on to 2018-02: no stale index values after that.
    late = frame.loc[("XOM", pd.Timestamp("2018-02-01", tz="UTC"))]
    assert np.isnan(late["mkt_return_1"])
    assert np.isnan(late["beta_60"])
    assert not np.isnan(late["mkt_advance_decline"])  # breadth is still known
    energy = frame.loc[("CVX", pd.Timestamp("2016-06-01", tz="UTC"))]
    expected = (
        frame.xs(pd.Timestamp("2016-06-01", tz="UTC"), level="timestamp")
        .loc[["XOM", "CVX"], "return_20"]
        .mean()
    )
    assert energy["sector_momentum_20"] == pytest.approx(expected)
    stranger = frame.loc[("NOTASTOCK", pd.Timestamp("2016-06-01", tz="UTC"))]
    assert stranger["sector_id"] == -1
    assert np.isnan(stranger["sector_momentum_20"])
    assert 0.5 < energy["beta_60"] < 2.5


def test_sector_map_covers_every_shipped_symbol(sp500_daily: pd.DataFrame) -> None:
    shipped = set(sp500_daily["symbol"].unique()) | {"AAPL", "MSFT", "IBM", "GOOG", "FB"}
    assert shipped <= set(sector_map())
    assert set(sector_map().values()) == set(SECTORS)
    assert sector_of("SPY") == "unknown"


def test_index_features_are_the_joined_market_columns_and_causal() -> None:
    """The regime model's rows (`index_features`, the index's whole history) carry the
    values `compute_features` joins to a stock's bar of the same day, and a history cut
    at t gives the same values up to t."""
    from features.compute import index_features
    from features.market import REGIME_INDEX_COLUMNS
    from trading.adapters.sample.data import SampleMarketData

    bars = SampleMarketData().history(symbols=["AAPL", "SPX", "VIX"], end="2013-03-01")
    index = bars[bars["symbol"] != "AAPL"]
    history = index_features(index)
    assert history["timestamp"].min().year == 1999
    joined = compute_feature_set(bars[bars["symbol"] == "AAPL"], index).frame
    day = joined["timestamp"].dt.floor("D")
    merged = joined.assign(day=day).merge(history, left_on="day", right_on="timestamp",
                                          suffixes=("", "_index"))
    assert len(merged) == len(joined)
    for name in (*REGIME_INDEX_COLUMNS, "mkt_realized_vol_20", "mkt_ema_200_dist"):
        a, b = merged[name].to_numpy(), merged[f"{name}_index"].to_numpy()
        assert ((a == b) | (np.isnan(a) & np.isnan(b))).all(), name
    cut = pd.Timestamp("2008-09-15", tz="UTC")
    truncated = index_features(index[index["timestamp"] <= cut + pd.Timedelta(hours=23)])
    expected = history[history["timestamp"] <= cut].reset_index(drop=True)
    pd.testing.assert_frame_equal(truncated, expected)
    late = history[history["timestamp"] >= "2001-01-01"]
    assert late[list(REGIME_INDEX_COLUMNS)].notna().all().all()  # warmed up everywhere
