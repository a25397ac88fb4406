"""Technical features: TA-Lib values, the contract's names and scales, bad data."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
import talib

from features.catalogue import MODEL_FEATURES, feature_names
from features.compute import compute_feature_set, compute_features
from features.data_quality import FeatureDataWarning
from features.technical import technical_features

CONTRACT_NAMES = [
    "ema_9_dist",
    "ema_21_dist",
    "ema_50_dist",
    "ema_200_dist",
    "rsi_14",
    "atr_14",
    "atr_14_pct",
    "macd_line",
    "macd_signal",
    "macd_hist",
    "bb_pct_b_20",
    "bb_width_20",
    "volume_ratio_20",
    "roc_10",
    "stoch_k_14",
    "stoch_d_3",
    "adx_14",
    "obv_slope_20",
    "vwap_dist_20",
    "return_1",
    "return_5",
    "return_20",
    "realized_vol_20",
    "high_20_dist",
    "low_20_dist",
]


def random_walk(symbol: str, n: int, seed: int = 1) -> pd.DataFrame:
    """A labelled synthetic random walk: only for checking arithmetic, never as market data."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = close * np.exp(rng.normal(0, 0.003, n))
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.01, n))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.01, n))
    return pd.DataFrame(
        {
            "symbol": symbol,
            "timestamp": pd.bdate_range("2015-01-02", periods=n, tz="UTC"),
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "volume": rng.uniform(1e6, 2e6, n),
        }
    )


def test_catalogue_has_contract_names_and_enough_features() -> None:
    technical = feature_names("technical")
    assert set(CONTRACT_NAMES) <= set(technical)
    assert len(MODEL_FEATURES) >= 55
    counts = {
        g: len(feature_names(g))
        for g in ("technical", "market", "sentiment", "temporal", "position")
    }
    assert counts["technical"] >= 20
    assert counts["market"] >= 15
    assert min(counts["sentiment"], counts["temporal"], counts["position"]) >= 5
    assert len(set(MODEL_FEATURES)) == len(MODEL_FEATURES)


def test_values_match_talib_and_definitions() -> None:
    bars = random_walk("AAA", 400)
    frame, found = technical_features(bars)
    assert found == []
    close, high, low = bars["close"].to_numpy(), bars["high"].to_numpy(), bars["low"].to_numpy()
    np.testing.assert_allclose(frame["rsi_14"], talib.RSI(close, 14), equal_nan=True)
    np.testing.assert_allclose(frame["atr_14"], talib.ATR(high, low, close, 14), equal_nan=True)
    np.testing.assert_allclose(
        frame["ema_200_dist"], close / talib.EMA(close, 200) - 1, equal_nan=True
    )
    prior_high = bars["high"].rolling(20).max().shift(1)
    np.testing.assert_allclose(frame["high_20_dist"], close / prior_high - 1, equal_nan=True)
    mean_volume = bars["volume"].rolling(20).mean()
    np.testing.assert_allclose(
        frame["volume_ratio_20"], bars["volume"] / mean_volume, rtol=1e-9, equal_nan=True
    )
    np.testing.assert_allclose(frame["return_5"], bars["close"].pct_change(5), equal_nan=True)
    assert frame["rsi_14"].iloc[:14].isna().all()
    assert frame["rsi_14"].iloc[14:].between(0, 100).all()
    assert frame["adx_14"].dropna().between(0, 100).all()
    assert frame["realized_vol_20"].dropna().between(0.05, 0.5).all()  # ~16% annualized walk


def wilder_rsi(closes: list[float], period: int = 14) -> list[float]:
    """RSI by hand, as Wilder defined it: the first averages are plain means of the first
    `period` gains and losses, later ones are smoothed as (previous * (n - 1) + new) / n."""
    changes = [after - before for before, after in itertools.pairwise(closes)]
    gains = [max(change, 0.0) for change in changes]
    losses = [max(-change, 0.0) for change in changes]
    average_gain = sum(gains[:period]) / period
    average_loss = sum(losses[:period]) / period
    values = [float("nan")] * period
    for i in range(period, len(closes)):
        if i > period:
            average_gain = (average_gain * (period - 1) + gains[i - 1]) / period
            average_loss = (average_loss * (period - 1) + losses[i - 1]) / period
        values.append(100.0 - 100.0 / (1.0 + average_gain / average_loss))
    return values


def test_rsi_is_wilders_rsi_on_real_closes() -> None:
    from trading.adapters.sample.data import SampleMarketData

    bars = SampleMarketData().history(["AAPL"], "2010-01-01", "2010-03-31")
    assert len(bars) == 61
    frame, _ = technical_features(bars)
    expected = wilder_rsi(bars["close"].tolist())
    np.testing.assert_allclose(frame["rsi_14"], expected, rtol=1e-9, equal_nan=True)
    assert frame["rsi_14"].iloc[:14].isna().all()
    # AAPL fell through late January 2010 and recovered in March: the RSI says so.
    assert frame["rsi_14"].iloc[20] < 40 < 60 < frame["rsi_14"].iloc[-1]


def test_bad_bars_give_nan_and_one_warning_per_symbol() -> None:
    good = random_walk("GOOD", 300, seed=2)
    bad = random_walk("BAD", 300, seed=3)
    bad.loc[150, "close"] = np.nan
    bad.loc[151, "high"] = bad.loc[151, "low"] / 2  # high below low
    short = random_walk("SHORT", 12, seed=4)
    bars = pd.concat([good, bad, short], ignore_index=True)
    original = bars.copy()
    with pytest.warns(FeatureDataWarning) as issued:
        compute_features(bars)
    result = compute_feature_set(bars)
    pd.testing.assert_frame_equal(bars, original)  # input untouched
    assert len(issued) == len(result.warnings)
    by_symbol = {w.symbol: w for w in result.warnings}
    assert {"BAD", "SHORT"} <= set(by_symbol)
    assert "GOOD" not in by_symbol
    frame = result.frame.set_index(["symbol", "timestamp"])
    bad_rows = frame.loc["BAD"].iloc[[150, 151]]
    assert bad_rows[feature_names("technical")].isna().all().all()
    # Indicators resume after the bad bars instead of staying NaN forever (TA-Lib would).
    assert np.isfinite(frame.loc["BAD"]["ema_200_dist"].iloc[-1])
    assert np.isfinite(frame.loc["BAD"]["rsi_14"].iloc[-1])
    short_rows = frame.loc["SHORT"]
    assert short_rows["ema_50_dist"].isna().all()
    assert np.isfinite(short_rows["return_1"].iloc[-1])


def test_duplicate_bars_are_a_clear_error() -> None:
    from core.errors import DataValidationError

    bars = random_walk("AAA", 30)
    with pytest.raises(DataValidationError, match="duplicate"):
        technical_features(pd.concat([bars, bars.tail(1)]))
