"""No lookahead: every feature computed on a history truncated at t equals the value
computed on the full history, at every time <= t (NaN == NaN), on real data. Breadth and
sector momentum are cross-sectional, so the whole universe is truncated too."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.types import BAR_COLUMNS
from features.catalogue import BAR_FEATURES
from features.compute import compute_feature_set

SYMBOLS = ["AAPL", "XOM", "JPM", "LNT", "BHF", "EBAY", "NEE", "DUK_NOT_SHIPPED"]
CUTS = ["2014-03-14", "2015-07-20", "2016-05-19", "2017-12-29"]


@pytest.fixture(scope="module")
def universe(sp500_daily: pd.DataFrame, spy_daily: pd.DataFrame) -> pd.DataFrame:
    bars = sp500_daily.loc[sp500_daily["symbol"].isin(SYMBOLS)]
    spy = spy_daily.loc[spy_daily["timestamp"] >= "2012-01-01", list(BAR_COLUMNS)]
    return pd.concat([bars, spy], ignore_index=True)


def _news(bars: pd.DataFrame) -> pd.DataFrame:
    """Headlines placed on real bar days (text is ours; only the timing matters here)."""
    days = bars.loc[bars["symbol"] == "AAPL", "timestamp"].iloc[::7]
    return pd.DataFrame(
        {
            "symbol": "AAPL",
            "timestamp": days + pd.Timedelta(hours=15),
            "headline": ["Apple beats estimates, shares surge", "Apple faces lawsuit"]
            * (len(days) // 2)
            + ["Apple unveils new iPhone"] * (len(days) % 2),
        }
    )


def test_truncated_history_gives_identical_features(universe: pd.DataFrame) -> None:
    news = _news(universe)
    earnings = pd.DataFrame(
        {"symbol": ["AAPL", "AAPL", "XOM"], "date": ["2014-04-23", "2016-04-26", "2015-07-31"]}
    )
    full = compute_feature_set(universe, news=news, earnings=earnings).frame
    assert len(full.columns) == 2 + len(BAR_FEATURES)
    for cut in CUTS:
        moment = pd.Timestamp(cut, tz="UTC")
        truncated = compute_feature_set(
            universe.loc[universe["timestamp"] <= moment],
            news=news.loc[news["timestamp"] <= moment + pd.Timedelta(hours=23)],
            earnings=earnings,
        ).frame
        expected = full.loc[full["timestamp"] <= moment].reset_index(drop=True)
        assert len(truncated) == len(expected)
        for name in BAR_FEATURES:
            a = truncated[name].to_numpy()
            b = expected[name].to_numpy()
            same = (a == b) | (np.isnan(a) & np.isnan(b))
            assert same.all(), (
                f"{name} differs at {cut}: first at "
                f"{expected.loc[~same, ['symbol', 'timestamp']].iloc[0].tolist()}"
            )
