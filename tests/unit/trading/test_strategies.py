"""Strategies on real sample bars with real features: each signal satisfies its rule on
its own bar, only on the first bar of the condition, and never depends on later bars."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import talib

from core.errors import ConfigError, DataValidationError
from trading.adapters.sample.data import SampleMarketData
from trading.feed import compute_feature_frame
from trading.strategies import SIGNAL_COLUMNS, STRATEGIES, get_strategy


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    bars = (
        SampleMarketData()
        .history_check(["AAPL", "IBM", "SPX", "VIX"], "2008-01-01", "2012-12-31")
        .bars
    )
    index = bars[bars["symbol"].isin(["SPX", "VIX"])]
    stocks = bars[~bars["symbol"].isin(["SPX", "VIX"])].reset_index(drop=True)
    return compute_feature_frame(stocks, index)


def test_registry_names_match_the_contract() -> None:
    assert set(STRATEGIES) == {"momentum", "mean_reversion", "breakout"}
    with pytest.raises(ConfigError, match="known: breakout"):
        get_strategy("nope")


def test_momentum_signals_are_ema_crossovers(frame: pd.DataFrame) -> None:
    signals = STRATEGIES["momentum"].signals_frame(frame)
    assert list(signals.columns) == list(SIGNAL_COLUMNS)
    assert len(signals) > 10
    for symbol, rows in frame.groupby("symbol"):
        close = rows["close"].to_numpy()
        spread = talib.EMA(close, 9) - talib.EMA(close, 21)
        ups = rows["timestamp"].to_numpy()[1:][(spread[1:] > 0) & (spread[:-1] <= 0)]
        got = signals[(signals["symbol"] == symbol) & (signals["side"] == "buy")]["timestamp"]
        # The features' EMAs and TA-Lib's agree to rounding: same crossover bars.
        assert set(pd.to_datetime(ups, utc=True)) == set(got)


def test_mean_reversion_and_breakout_rules_hold_on_signal_rows(frame: pd.DataFrame) -> None:
    indexed = frame.set_index(["symbol", "timestamp"])
    mr = STRATEGIES["mean_reversion"].signals_frame(frame)
    assert len(mr) > 0
    for row in mr.itertuples():
        features = indexed.loc[(row.symbol, row.timestamp)]
        if row.side == "buy":
            assert features["rsi_14"] < 30
            assert features["bb_pct_b_20"] < 0
        else:
            assert features["rsi_14"] > 70
            assert features["bb_pct_b_20"] > 1
    bo = STRATEGIES["breakout"].signals_frame(frame)
    assert len(bo) > 0
    for row in bo.itertuples():
        features = indexed.loc[(row.symbol, row.timestamp)]
        assert features["volume_ratio_20"] >= 2.0
        assert (
            (features["high_20_dist"] > 0) if row.side == "buy" else (features["low_20_dist"] < 0)
        )


def test_breakout_needs_twice_the_volume(frame: pd.DataFrame) -> None:
    weak = frame.copy()
    weak["volume_ratio_20"] = np.minimum(weak["volume_ratio_20"], 1.99)
    assert STRATEGIES["breakout"].signals_frame(weak).empty


def test_no_lookahead_signals_up_to_t_do_not_change_with_later_bars(frame: pd.DataFrame) -> None:
    cut = pd.Timestamp("2010-06-30", tz="UTC")
    for strategy in STRATEGIES.values():
        full = strategy.signals_frame(frame)
        bars = frame[["symbol", "timestamp", "open", "high", "low", "close", "volume"]]
        truncated = compute_feature_frame(bars[bars["timestamp"] <= cut].reset_index(drop=True))
        early = strategy.signals_frame(truncated)
        expected = full[full["timestamp"] <= cut].reset_index(drop=True)
        pd.testing.assert_frame_equal(
            early[["symbol", "timestamp", "side"]], expected[["symbol", "timestamp", "side"]]
        )


def test_signals_objects_equal_frame_rows(frame: pd.DataFrame) -> None:
    strategy = STRATEGIES["momentum"]
    signals = strategy.signals(frame)
    table = strategy.signals_frame(frame)
    assert [s.timestamp for s in signals] == list(table["timestamp"])
    assert all(s.strategy == "momentum" and s.price > 0 for s in signals)


def test_missing_feature_columns_are_named() -> None:
    bars = pd.DataFrame({"symbol": ["A"], "timestamp": [pd.Timestamp("2024-01-02", tz="UTC")],
                         "close": [1.0]})  # fmt: skip
    with pytest.raises(DataValidationError, match="rsi_14"):
        STRATEGIES["mean_reversion"].signals_frame(bars)
