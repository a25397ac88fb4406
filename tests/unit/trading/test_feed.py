"""Live and backtest see the same market: the rolling (live) feed's features and signals
equal the precomputed (backtest) feed's on the same bars."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.types import Bar
from trading.adapters.sample.data import SampleMarketData
from trading.feed import PrecomputedFeed, RollingFeed
from trading.strategies import STRATEGIES

TECHNICAL = ["ema_9_dist", "ema_21_dist", "ema_200_dist", "rsi_14", "atr_14", "bb_pct_b_20",
             "volume_ratio_20", "high_20_dist", "mkt_trend", "mkt_vol_level"]  # fmt: skip


def test_rolling_feed_equals_precomputed_feed() -> None:
    bars = (
        SampleMarketData()
        .history_check(["AAPL", "IBM", "SPX", "VIX"], "2009-06-01", "2012-06-30")
        .bars
    )
    cut = pd.Timestamp("2012-05-01", tz="UTC")
    stocks = bars[bars["symbol"].isin(["AAPL", "IBM"])].reset_index(drop=True)
    index = bars[bars["symbol"].isin(["SPX", "VIX"])].reset_index(drop=True)
    strategies = list(STRATEGIES.values())
    batch = PrecomputedFeed(stocks, strategies, index)

    live = RollingFeed(strategies)
    live.seed(bars[bars["timestamp"] < cut])
    later = bars[bars["timestamp"] >= cut].copy()
    later["is_index"] = later["symbol"].isin(["SPX", "VIX"])
    later = later.sort_values(["timestamp", "is_index", "symbol"], ascending=[True, False, True])
    compared = 0
    signals_seen = 0
    for row in later.itertuples(index=False):
        bar = Bar(row.symbol, row.timestamp.to_pydatetime(), row.open, row.high, row.low,
                  row.close, row.volume)  # fmt: skip
        live.observe(bar)
        if row.is_index:
            continue
        expected = batch.features(bar.symbol, bar.timestamp)
        got = live.features(bar.symbol, bar.timestamp)
        assert expected is not None
        assert got is not None
        for name in TECHNICAL:
            assert got[name] == pytest.approx(expected[name], rel=1e-6, abs=1e-9, nan_ok=True), name
        assert [s.signal_id for s in live.signals(bar.symbol, bar.timestamp)] == [
            s.signal_id for s in batch.signals(bar.symbol, bar.timestamp)
        ]
        signals_seen += len(batch.signals(bar.symbol, bar.timestamp))
        returns = live.trailing_returns(bar.symbol, bar.timestamp)
        batch_returns = batch.trailing_returns(bar.symbol, bar.timestamp)
        assert returns is not None
        assert batch_returns is not None
        np.testing.assert_allclose(returns[-20:], batch_returns[-20:])
        compared += 1
    assert compared > 60
    assert signals_seen > 0


def test_observe_many_gives_the_whole_cross_section_and_the_same_signals() -> None:
    """The live service's path: a timestamp's bars at once give every feature of the
    batch computation (breadth and sector momentum over the whole cross-section too)."""
    from features.catalogue import BAR_FEATURES

    bars = (
        SampleMarketData()
        .history_check(["AAPL", "IBM", "MSFT", "SPX", "VIX"], "2009-06-01", "2012-06-30")
        .bars
    )
    cut = pd.Timestamp("2012-05-01", tz="UTC")
    stocks = bars[bars["symbol"].isin(["AAPL", "IBM", "MSFT"])].reset_index(drop=True)
    index = bars[bars["symbol"].isin(["SPX", "VIX"])].reset_index(drop=True)
    strategies = list(STRATEGIES.values())
    batch = PrecomputedFeed(stocks, strategies, index)
    live = RollingFeed(strategies)
    live.seed(bars[bars["timestamp"] < cut])
    compared = 0
    for moment, group in bars[bars["timestamp"] >= cut].groupby("timestamp"):
        live.observe_many([
            Bar(r.symbol, r.timestamp.to_pydatetime(), r.open, r.high, r.low, r.close, r.volume)
            for r in group.itertuples(index=False)
        ])
        for symbol in ("AAPL", "IBM", "MSFT"):
            stamp = pd.Timestamp(moment).to_pydatetime()
            expected, got = batch.features(symbol, stamp), live.features(symbol, stamp)
            assert expected is not None
            assert got is not None
            for name in BAR_FEATURES:
                want = pytest.approx(expected[name], rel=1e-9, abs=1e-9, nan_ok=True)
                assert got[name] == want, name
            assert [s.signal_id for s in live.signals(symbol, stamp)] == [
                s.signal_id for s in batch.signals(symbol, stamp)
            ]
            compared += 1
    assert compared > 60
