"""Market-context features: the index's trend, EMAs, returns and RSI; the volatility
level and trend (the VIX when the data has it, else the index's realized volatility,
flagged by `mkt_vol_is_vix`); breadth across the universe (advance/decline, share above
the 50-bar EMA, share at a new 20-bar high); the symbol's sector and its momentum; the
symbol's beta and correlation to the index.

No lookahead: index values are joined as of the bar (the latest index bar at or before
it), breadth and sector momentum use only the bars of the same timestamp, and beta and
correlation use trailing windows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import talib

from core.symbols import INDEX_PREFERENCE, MARKET_CONTEXT_SYMBOLS, VOLATILITY_INDEX
from features.catalogue import feature_names
from features.data_quality import FeatureWarning
from features.sectors import sector_ids
from features.technical import bad_bar_mask, symbol_slices

MARKET_COLUMNS: tuple[str, ...] = tuple(feature_names("market"))
BETA_WINDOW = 60
VOL_TREND_WINDOW = 20

# The index's volatility, trend and drawdown state the regime model reads (with
# mkt_return_5/20 and mkt_ema_50/200_dist); all trailing windows of the index's own bars.
REGIME_INDEX_COLUMNS: tuple[str, ...] = (
    "mkt_realized_vol_5",
    "mkt_realized_vol_60",
    "mkt_log_vol_20",
    "mkt_vol_ratio_5_60",
    "mkt_vol_ratio_20_60",
    "mkt_return_60",
    "mkt_trend_strength_20",
    "mkt_abs_trend_strength_20",
    "mkt_trend_strength_60",
    "mkt_parkinson_vol_20",
    "mkt_drawdown_252",
)
DRAWDOWN_WINDOW = 252
DRAWDOWN_MIN_BARS = 60

_INDEX_COLUMNS = (
    "mkt_return_1",
    "mkt_return_5",
    "mkt_return_20",
    "mkt_ema_50_dist",
    "mkt_ema_200_dist",
    "mkt_trend",
    "mkt_rsi_14",
    "mkt_realized_vol_20",
    "mkt_vol_level",
    "mkt_vol_trend",
    "mkt_vol_is_vix",
    *REGIME_INDEX_COLUMNS,
)
INDEX_WARNING_SYMBOL = "(market index)"


def join_key(timestamps: pd.Series, daily: bool) -> pd.Series:
    """The key bars are aligned on: the UTC date for daily bars (sources stamp a session at
    00:00, 04:00/05:00 or the close, all on the session's UTC date), the instant otherwise."""
    key = timestamps.dt.floor("D") if daily else timestamps
    return key.astype("datetime64[ns, UTC]")


def stale_after(daily: bool) -> pd.Timedelta:
    """How old the latest index bar may be and still describe a bar: a long weekend
    for daily bars, an hour for intraday bars."""
    return pd.Timedelta(days=5) if daily else pd.Timedelta(hours=1)


def pick_index(index_bars: pd.DataFrame) -> tuple[str | None, bool]:
    """The symbol used as the market index, and whether a VIX series is present."""
    present = set(index_bars["symbol"].astype(str).unique())
    chosen = next((name for name in INDEX_PREFERENCE if name in present), None)
    if chosen is None:
        others = sorted(present - {VOLATILITY_INDEX})
        chosen = others[0] if others else None
    return chosen, VOLATILITY_INDEX in present


def _clean_series(index_bars: pd.DataFrame, symbol: str, daily: bool) -> pd.DataFrame:
    rows = index_bars.loc[index_bars["symbol"].astype(str) == symbol].copy()
    rows["timestamp"] = pd.to_datetime(rows["timestamp"], utc=True)
    for column in ("open", "high", "low", "close", "volume"):
        rows[column] = pd.to_numeric(rows[column], errors="coerce").astype(np.float64)
    rows = rows.loc[~bad_bar_mask(rows.fillna({"volume": 0.0}))]
    rows["key"] = join_key(rows["timestamp"], daily)
    rows = rows.sort_values("key").drop_duplicates("key", keep="last")
    return rows.reset_index(drop=True)


def _ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        out = a / b
    out[~np.isfinite(out)] = np.nan
    return out


def index_table(
    index_bars: pd.DataFrame, *, daily: bool, bars_per_year: float
) -> tuple[pd.DataFrame | None, list[FeatureWarning]]:
    """`key` + the index features on the index's own timeline, or None without an index."""
    symbol, has_vix = pick_index(index_bars)
    if symbol is None:
        return None, [
            FeatureWarning(
                INDEX_WARNING_SYMBOL,
                ("no index series (SPX, SPY or COMP) given; index features, beta and "
                 "correlation are NaN",),
            )
        ]
    series = _clean_series(index_bars, symbol, daily)
    close = series["close"].to_numpy(dtype=np.float64)
    ema50, ema200 = talib.EMA(close, 50), talib.EMA(close, 200)
    table = pd.DataFrame({"key": series["key"]})
    table["mkt_return_1"] = talib.ROCP(close, 1)
    table["mkt_return_5"] = talib.ROCP(close, 5)
    table["mkt_return_20"] = talib.ROCP(close, 20)
    table["mkt_ema_50_dist"] = _ratio(close, ema50) - 1.0
    table["mkt_ema_200_dist"] = _ratio(close, ema200) - 1.0
    table["mkt_trend"] = _ratio(ema50, ema200) - 1.0
    table["mkt_rsi_14"] = talib.RSI(close, 14)
    log_return = np.zeros_like(close)
    log_return[1:] = np.log(close[1:] / close[:-1])
    realized = talib.STDDEV(log_return, 20, 1.0) * np.sqrt(bars_per_year)
    realized[:21] = np.nan
    table["mkt_realized_vol_20"] = realized
    table = _regime_columns(table, series, log_return, realized, bars_per_year)
    proxy_trend = _ratio(realized, talib.SMA(realized, VOL_TREND_WINDOW)) - 1.0
    level, trend = realized.copy(), proxy_trend
    is_vix = np.zeros(len(close))
    if has_vix:
        vix = _clean_series(index_bars, VOLATILITY_INDEX, daily)
        vix_close = vix["close"].to_numpy(dtype=np.float64) / 100.0
        vix_trend = _ratio(vix_close, talib.SMA(vix_close, VOL_TREND_WINDOW)) - 1.0
        vix_table = pd.DataFrame({"key": vix["key"], "vix": vix_close, "vix_trend": vix_trend})
        joined = pd.merge_asof(
            table[["key"]], vix_table, on="key", direction="backward",
            tolerance=stale_after(daily),
        )
        covered = joined["vix"].notna().to_numpy()
        level = np.where(covered, joined["vix"].to_numpy(), realized)
        trend = np.where(covered, joined["vix_trend"].to_numpy(), proxy_trend)
        is_vix = covered.astype(np.float64)
    table["mkt_vol_level"] = level
    table["mkt_vol_trend"] = trend
    table["mkt_vol_is_vix"] = is_vix
    found: list[FeatureWarning] = []
    if len(series) < 201:
        found.append(
            FeatureWarning(
                INDEX_WARNING_SYMBOL,
                (f"index {symbol} has only {len(series)} usable bar(s); its 200-bar EMA "
                 "features are NaN",),
            )
        )
    return table, found


def _realized_vol(log_return: np.ndarray, window: int, bars_per_year: float) -> np.ndarray:
    """Annualized std of the last `window` one-bar log returns (NaN until a full window
    of returns exists: the first bar has none)."""
    realized = talib.STDDEV(log_return, window, 1.0) * np.sqrt(bars_per_year)
    realized[: window + 1] = np.nan
    return realized


def _regime_columns(
    table: pd.DataFrame,
    series: pd.DataFrame,
    log_return: np.ndarray,
    realized_20: np.ndarray,
    bars_per_year: float,
) -> pd.DataFrame:
    """The regime model's index features (`REGIME_INDEX_COLUMNS`), trailing only."""
    close = series["close"].to_numpy(dtype=np.float64)
    realized_5 = _realized_vol(log_return, 5, bars_per_year)
    realized_60 = _realized_vol(log_return, 60, bars_per_year)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_close = np.log(close)
        log_20 = np.log(realized_20)
        ratio_5_60 = np.log(realized_5 / realized_60)
        ratio_20_60 = np.log(realized_20 / realized_60)

    def strength(window: int, realized: np.ndarray) -> np.ndarray:
        move = np.full(len(close), np.nan)
        move[window:] = log_close[window:] - log_close[:-window]
        # the move in units of its own noise: daily sigma times sqrt(window)
        return _ratio(move, realized / np.sqrt(bars_per_year) * np.sqrt(window))

    high = series["high"].to_numpy(dtype=np.float64)
    low = series["low"].to_numpy(dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        range_sq = np.log(high / low) ** 2
    parkinson = np.sqrt(
        pd.Series(range_sq).rolling(20).mean().to_numpy() / (4 * np.log(2)) * bars_per_year
    )
    peak = pd.Series(close).rolling(DRAWDOWN_WINDOW, min_periods=DRAWDOWN_MIN_BARS).max()
    trend_20 = strength(20, realized_20)
    columns = {
        "mkt_realized_vol_5": realized_5,
        "mkt_realized_vol_60": realized_60,
        "mkt_log_vol_20": log_20,
        "mkt_vol_ratio_5_60": ratio_5_60,
        "mkt_vol_ratio_20_60": ratio_20_60,
        "mkt_return_60": talib.ROCP(close, 60),
        "mkt_trend_strength_20": trend_20,
        "mkt_abs_trend_strength_20": np.abs(trend_20),
        "mkt_trend_strength_60": strength(60, realized_60),
        "mkt_parkinson_vol_20": parkinson,
        "mkt_drawdown_252": _ratio(close, peak.to_numpy()) - 1.0,
    }
    for name, values in columns.items():
        values = np.asarray(values, dtype=np.float64)
        values[~np.isfinite(values)] = np.nan
        table[name] = values
    return table


def _group_mean(keys: np.ndarray, values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Per-row sum(values) / sum(weights) over the rows sharing the row's key."""
    positions, distinct = pd.factorize(keys, sort=False)
    size = len(distinct)
    total = np.bincount(positions, weights=values, minlength=size)
    count = np.bincount(positions, weights=weights, minlength=size)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, total / count, np.nan)
    return mean[positions]


def _breadth(technical: pd.DataFrame) -> pd.DataFrame:
    """Breadth per timestamp over the universe (index series excluded): one row per
    distinct timestamp, indexed by it."""
    universe = technical.loc[~technical["symbol"].isin(MARKET_CONTEXT_SYMBOLS)]
    stamps = np.asarray(universe["timestamp"].array.asi8)
    positions, distinct = pd.factorize(stamps, sort=False)
    size = len(distinct)

    def share(flags: np.ndarray, known: np.ndarray) -> np.ndarray:
        total = np.bincount(positions, weights=flags, minlength=size)
        count = np.bincount(positions, weights=known, minlength=size)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(count > 0, total / count, np.nan)

    ret = universe["return_1"].to_numpy(dtype=np.float64)
    ema = universe["ema_50_dist"].to_numpy(dtype=np.float64)
    high = universe["high_20_dist"].to_numpy(dtype=np.float64)
    has_ret, has_ema, has_high = np.isfinite(ret), np.isfinite(ema), np.isfinite(high)
    return pd.DataFrame(
        {
            "mkt_advance_decline": share(np.where(has_ret, np.sign(ret), 0.0), has_ret * 1.0),
            "mkt_pct_above_ema_50": share((has_ema & (ema > 0)) * 1.0, has_ema * 1.0),
            "mkt_pct_new_high_20": share((has_high & (high > 0)) * 1.0, has_high * 1.0),
        },
        index=pd.DatetimeIndex(pd.to_datetime(distinct, utc=True)),
    )


def _beta_correlation(
    symbols: np.ndarray, stock: np.ndarray, market: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Rolling beta and correlation of one-bar returns per symbol (symbol-sorted rows),
    on the rows where both returns exist."""
    beta = np.full(len(stock), np.nan)
    corr = np.full(len(stock), np.nan)
    usable = np.isfinite(stock) & np.isfinite(market)
    for _, start, stop in symbol_slices(symbols):
        rows = np.flatnonzero(usable[start:stop]) + start
        if len(rows) < BETA_WINDOW:
            continue
        s, m = np.ascontiguousarray(stock[rows]), np.ascontiguousarray(market[rows])
        correlation = talib.CORREL(s, m, BETA_WINDOW)
        sd_stock = talib.STDDEV(s, BETA_WINDOW, 1.0)
        sd_market = talib.STDDEV(m, BETA_WINDOW, 1.0)
        corr[rows] = correlation
        beta[rows] = correlation * _ratio(sd_stock, sd_market)
    corr[~np.isfinite(corr)] = np.nan
    beta[~np.isfinite(beta)] = np.nan
    return beta, corr


def market_features(
    technical: pd.DataFrame,
    index_bars: pd.DataFrame | None,
    *,
    daily: bool,
    bars_per_year: float,
) -> tuple[pd.DataFrame, list[FeatureWarning]]:
    """Market columns for the rows of `technical` (symbol-sorted output of
    `technical_features`), in the same row order."""
    n = len(technical)
    out = pd.DataFrame(index=technical.index)
    found: list[FeatureWarning] = []
    table = None
    if index_bars is None or len(index_bars) == 0:
        found.append(
            FeatureWarning(
                INDEX_WARNING_SYMBOL,
                ("no index series given (pass index bars, or include SPY in the bar file); "
                 "index features, beta and correlation are NaN",),
            )
        )
    else:
        table, found = index_table(index_bars, daily=daily, bars_per_year=bars_per_year)
    if table is not None:
        keys = pd.DataFrame({"key": join_key(technical["timestamp"], daily), "row": np.arange(n)})
        keys = keys.sort_values("key", kind="stable")
        # A stale index value is a wrong value: beyond the tolerance the row gets NaN.
        positions = pd.DataFrame({"key": table["key"], "pos": np.arange(len(table))})
        joined = pd.merge_asof(
            keys, positions, on="key", direction="backward", tolerance=stale_after(daily)
        )
        pos = np.full(n, -1, dtype=np.int64)
        found_pos = joined["pos"].to_numpy(dtype=np.float64)
        pos[joined["row"].to_numpy()] = np.where(np.isnan(found_pos), -1, found_pos)
        for column in _INDEX_COLUMNS:
            values = table[column].to_numpy(dtype=np.float64)
            out[column] = np.where(pos >= 0, values[np.maximum(pos, 0)], np.nan)
    else:
        for column in _INDEX_COLUMNS:
            out[column] = np.nan
    breadth = _breadth(technical)
    aligned = breadth.reindex(technical["timestamp"])
    for column in breadth.columns:
        out[column] = aligned[column].to_numpy(dtype=np.float64)
    out["mkt_relative_strength_20"] = technical["return_20"] - out["mkt_return_20"]
    codes = sector_ids(technical["symbol"])
    out["sector_id"] = codes.astype(np.float64)
    known = codes != -1
    return_20 = technical["return_20"].to_numpy(dtype=np.float64)
    usable = known & np.isfinite(return_20)
    stamp_ns = technical["timestamp"].array.asi8
    # One key per (timestamp, sector): the sector code fits in the low bits of a shifted key.
    keys = (stamp_ns // 1_000) * 16 + (codes + 1)
    momentum = _group_mean(keys, np.where(usable, return_20, 0.0), usable * 1.0)
    out["sector_momentum_20"] = np.where(known, momentum, np.nan)
    out["sector_relative_20"] = technical["return_20"] - out["sector_momentum_20"]
    beta, corr = _beta_correlation(
        technical["symbol"].to_numpy(),
        technical["return_1"].to_numpy(dtype=np.float64),
        out["mkt_return_1"].to_numpy(dtype=np.float64),
    )
    out["beta_60"] = beta
    out["corr_60"] = corr
    return out.loc[:, list(MARKET_COLUMNS)], found
