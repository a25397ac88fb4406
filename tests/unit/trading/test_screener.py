"""The pre-market screener on the real S&P 500 daily set: ranks on the last completed
session only, applies its filters, and its measures are what they say."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.errors import DataValidationError
from core.types import BAR_COLUMNS
from trading.screener import MEASURES, ScreenerConfig, screen

AS_OF = "2017-06-01"


@pytest.fixture(scope="module")
def bars(sp500_daily: pd.DataFrame, spy_daily: pd.DataFrame) -> pd.DataFrame:
    window = sp500_daily.loc[
        (sp500_daily["timestamp"] >= "2017-01-01") & (sp500_daily["timestamp"] < "2017-07-01"),
        list(BAR_COLUMNS),
    ]
    spy = spy_daily.loc[spy_daily["timestamp"] >= "2017-01-01", list(BAR_COLUMNS)]
    return pd.concat([window, spy], ignore_index=True)


@pytest.fixture(scope="module")
def ranked(bars: pd.DataFrame) -> pd.DataFrame:
    return screen(bars, AS_OF, ScreenerConfig(top=20))


def test_the_watchlist_is_the_top_scores_of_the_liquid_universe(ranked: pd.DataFrame) -> None:
    assert ranked["on_watchlist"].sum() == 20
    assert ranked["score"].is_monotonic_decreasing
    assert ranked.loc[ranked["on_watchlist"], "rank"].tolist() == list(range(1, 21))
    assert ranked[list(MEASURES)].notna().all().all()
    assert (ranked["dollar_volume_20"] >= 10_000_000).all()
    assert len(ranked) > 300  # most of the 405 symbols are liquid enough
    assert ranked["score"].between(0, 1).all()


def test_it_sees_only_sessions_before_the_as_of_date(
    bars: pd.DataFrame, ranked: pd.DataFrame
) -> None:
    assert (ranked["session"] < pd.Timestamp(AS_OF, tz="UTC")).all()
    later = bars["timestamp"] >= AS_OF
    changed = bars.copy()
    changed.loc[later, ["open", "high", "low", "close"]] *= 3.0
    changed.loc[later, "volume"] *= 10.0
    again = screen(changed, AS_OF, ScreenerConfig(top=20))
    pd.testing.assert_frame_equal(ranked, again)


def test_measures_are_what_they_say(bars: pd.DataFrame, ranked: pd.DataFrame) -> None:
    best = ranked.iloc[0]
    own = bars.loc[(bars["symbol"] == best["symbol"]) & (bars["timestamp"] < AS_OF)]
    own = own.sort_values("timestamp")
    dollar = (own["close"] * own["volume"]).tail(20).mean()
    assert best["dollar_volume_20"] == pytest.approx(dollar, rel=1e-12)
    previous, session = own.iloc[-2], own.iloc[-1]
    assert best["gap"] == pytest.approx(abs(session["open"] / previous["close"] - 1.0))
    assert best["relative_volume"] == pytest.approx(
        session["volume"] / own["volume"].tail(20).mean(), rel=1e-9
    )


def test_filters_and_bad_input(bars: pd.DataFrame) -> None:
    rich_only = screen(bars, AS_OF, ScreenerConfig(min_dollar_volume=1e9, top=5))
    assert (rich_only["dollar_volume_20"] >= 1e9).all()
    assert 0 < len(rich_only) < 60
    expensive = screen(bars, AS_OF, ScreenerConfig(min_price=500.0))
    assert set(expensive["symbol"]) <= {"AMZN", "GOOG", "GOOGL", "PCLN", "AZO", "CMG", "MTD"}
    with pytest.raises(DataValidationError, match="no bars before 2000-01-03"):
        screen(bars, "2000-01-03")
    assert np.isfinite(rich_only["score"]).all()
