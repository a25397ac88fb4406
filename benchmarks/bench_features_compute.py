"""Feature computation speed on the real S&P 500 file (../shared/data: 405 symbols,
496,240 daily bars, SPY as the index): bar-rows per second for the WHOLE catalogue
(technical, market, sentiment, temporal) and for the technical group alone, against the
pure-pandas `ta` library computing the same technical indicators in the same run.
Prints times and ratios; not run by pytest.

    .venv/bin/python benchmarks/bench_features_compute.py [--symbols N]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.types import BAR_COLUMNS  # noqa: E402
from features.compute import compute_feature_set  # noqa: E402
from features.technical import technical_features  # noqa: E402

DATA = ROOT.parent / "shared" / "data"


def timed(work: Callable[[], object]) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def ta_technicals(bars: pd.DataFrame) -> pd.DataFrame:
    """The same technical set with the pure-pandas `ta` library, per symbol."""
    import ta

    parts = []
    for _, g in bars.groupby("symbol", sort=False):
        c, h, lo, v, o = g["close"], g["high"], g["low"], g["volume"], g["open"]
        out = pd.DataFrame(index=g.index)
        for p in (9, 21, 50, 200):
            out[f"ema_{p}_dist"] = c / ta.trend.ema_indicator(c, p) - 1
        out["ema_9_21_spread"] = ta.trend.ema_indicator(c, 9) / ta.trend.ema_indicator(c, 21) - 1
        out["rsi_14"] = ta.momentum.rsi(c, 14)
        atr = ta.volatility.average_true_range(h, lo, c, 14)
        out["atr_14"], out["atr_14_pct"] = atr, atr / c
        macd = ta.trend.MACD(c, 26, 12, 9)
        out["macd_line"] = macd.macd() / c
        out["macd_signal"] = macd.macd_signal() / c
        out["macd_hist"] = macd.macd_diff() / c
        bb = ta.volatility.BollingerBands(c, 20, 2)
        out["bb_pct_b_20"], out["bb_width_20"] = bb.bollinger_pband(), bb.bollinger_wband()
        out["volume_ratio_20"] = v / v.rolling(20).mean()
        out["roc_10"] = ta.momentum.roc(c, 10)
        stoch = ta.momentum.StochasticOscillator(h, lo, c, 14, 3)
        out["stoch_k_14"], out["stoch_d_3"] = stoch.stoch(), stoch.stoch_signal()
        adx = ta.trend.ADXIndicator(h, lo, c, 14)
        out["adx_14"], out["plus_di_14"], out["minus_di_14"] = (
            adx.adx(),
            adx.adx_pos(),
            adx.adx_neg(),
        )
        out["cci_20"] = ta.trend.cci(h, lo, c, 20)
        out["willr_14"] = ta.momentum.williams_r(h, lo, c, 14)
        out["mfi_14"] = ta.volume.money_flow_index(h, lo, c, v, 14)
        obv = ta.volume.on_balance_volume(c, v)
        out["obv_slope_20"] = obv.diff(20) / 20 / v.rolling(20).mean()
        vwap = ta.volume.VolumeWeightedAveragePrice(h, lo, c, v, 20).volume_weighted_average_price()
        out["vwap_dist_20"] = c / vwap - 1
        for k in (1, 5, 20):
            out[f"return_{k}"] = c.pct_change(k)
        out["realized_vol_20"] = ta.others.daily_log_return(c).rolling(20).std() * (252**0.5) / 100
        out["high_20_dist"] = c / h.rolling(20).max().shift(1) - 1
        out["low_20_dist"] = c / lo.rolling(20).min().shift(1) - 1
        out["gap_1"] = o / c.shift(1) - 1
        out["range_pct_1"] = (h - lo) / c
        parts.append(out)
    return pd.concat(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--symbols", type=int, default=0, help="first N symbols (0 = all)")
    args = parser.parse_args()
    source = DATA / "sp500_daily_2013_2018.parquet"
    if not source.exists():
        print(f"skipped: {source.name} not found in ../shared/data (optional benchmark data)")
        return
    bars = pd.read_parquet(source)
    if args.symbols:
        bars = bars.loc[bars["symbol"].isin(sorted(bars["symbol"].unique())[: args.symbols])]
    spy = pd.read_parquet(DATA / "spy_daily_2008_2017.parquet").loc[:, list(BAR_COLUMNS)]
    rows = len(bars)
    warnings.simplefilter("ignore")
    compute_feature_set(bars.head(5_000), spy)  # warm caches (calendar, imports)
    whole = min(timed(lambda: compute_feature_set(bars, spy)) for _ in range(2))
    technical = min(timed(lambda: technical_features(bars)) for _ in range(2))
    peer = timed(lambda: ta_technicals(bars))
    count = len(compute_feature_set(bars.head(5_000), spy).frame.columns) - 2
    print(f"bars: {rows:,} rows, {bars['symbol'].nunique()} symbols (real S&P 500, daily)")
    print(
        f"tradewind whole catalogue ({count} features): {whole:7.2f} s  "
        f"{rows / whole:>12,.0f} rows/s"
    )
    print(
        f"tradewind technical group (TA-Lib, 33):     {technical:7.2f} s  "
        f"{rows / technical:>12,.0f} rows/s"
    )
    print(
        f"peer: `ta` (pure pandas), same 33 technicals: {peer:7.2f} s  {rows / peer:>12,.0f} rows/s"
    )
    print(f"ratio technical, tradewind vs ta:       {peer / technical:6.1f}x faster")
    print(f"ratio whole catalogue vs ta technicals:  {peer / whole:6.1f}x faster")


if __name__ == "__main__":
    main()
