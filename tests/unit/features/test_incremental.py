"""Incremental features equal the batch result, on real data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.errors import DataValidationError
from core.types import BAR_COLUMNS, Bar
from features.catalogue import BAR_FEATURES
from features.compute import compute_feature_set
from features.incremental import IncrementalFeatures

SYMBOLS = ["AAPL", "XOM", "JPM", "NEE"]


def _assert_close(got: dict[str, float], expected: pd.Series, rtol: float) -> None:
    for name in BAR_FEATURES:
        a, b = got[name], float(expected[name])
        if np.isnan(b):
            assert np.isnan(a), name
        else:
            assert abs(a - b) <= rtol * max(1.0, abs(b)), (name, a, b)


@pytest.fixture(scope="module")
def bars(sp500_daily: pd.DataFrame) -> pd.DataFrame:
    chosen = sp500_daily.loc[sp500_daily["symbol"].isin(SYMBOLS)]
    return chosen.loc[chosen["timestamp"] <= "2017-12-29"].reset_index(drop=True)


@pytest.fixture(scope="module")
def spy(spy_daily: pd.DataFrame) -> pd.DataFrame:
    return spy_daily.loc[:, list(BAR_COLUMNS)]


def test_update_many_equals_batch_across_the_universe(
    bars: pd.DataFrame, spy: pd.DataFrame
) -> None:
    batch = compute_feature_set(bars, spy).frame.set_index(["symbol", "timestamp"])
    times = sorted(bars["timestamp"].unique())[-2:]
    live = IncrementalFeatures(index_bars=spy)
    live.seed(bars.loc[bars["timestamp"] < times[0]])
    for moment in times:
        out = live.update_many(bars.loc[bars["timestamp"] == moment])
        assert set(out) == set(SYMBOLS)
        for symbol, features in out.items():
            _assert_close(features, batch.loc[(symbol, moment)], rtol=1e-9)


def test_trimmed_window_stays_within_documented_tolerance(spy: pd.DataFrame) -> None:
    """SPY 2008-2017 (2,519 bars) with a 1,500-bar window: 1,000 bars are dropped, and the
    seeded EMAs stay within the tolerance the module documents (1e-6 relative)."""
    batch = compute_feature_set(spy, spy).frame
    live = IncrementalFeatures(window=1_500, index_bars=spy)
    live.seed(spy.iloc[:-3])
    for position in range(len(spy) - 3, len(spy)):
        row = spy.iloc[position]
        bar = Bar(
            row["symbol"],
            row["timestamp"].to_pydatetime(),
            *row[["open", "high", "low", "close", "volume"]].astype(float),
        )
        got = live.update(bar)
        assert len(live.history("SPY")) == 1_500
        _assert_close(got, batch.iloc[position], rtol=1e-6)


def test_older_bar_is_rejected(spy: pd.DataFrame) -> None:
    live = IncrementalFeatures()
    live.seed(spy.tail(300))
    with pytest.raises(DataValidationError, match="older"):
        live.update(spy.iloc[-10])
