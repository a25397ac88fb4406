"""Technical features: per-symbol indicators from the symbol's own bars, computed with
TA-Lib (every indicator TA-Lib has is taken from it, not re-implemented).

TA-Lib propagates a NaN forever through recursive indicators, so each symbol's bad bars
(NaN or non-positive prices, negative volume, high < low) are set aside first: the
indicators run on the clean bars, the bad rows get NaN, and the symbol gets one warning.
Symbols shorter than a lookback get NaN for the features that need more bars."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np
import pandas as pd
import talib

from core.bars import timeframe_step
from core.errors import DataValidationError
from core.types import BAR_COLUMNS
from features.catalogue import feature_names
from features.data_quality import FeatureWarning

TECHNICAL_COLUMNS: tuple[str, ...] = tuple(feature_names("technical"))
LONGEST_TECHNICAL_LOOKBACK = 200  # EMA(200)
TRADING_DAYS_PER_YEAR = 252.0
REGULAR_MINUTES_PER_DAY = 390.0

Array = np.ndarray


def _safe(call: Callable[[], Array], n: int) -> Array:
    """TA-Lib output, or NaN when TA-Lib refuses the input (it never should on clean bars)."""
    try:
        return np.asarray(call(), dtype=np.float64)
    except Exception:  # TA-Lib raises bare Exception on degenerate input; NaN is the answer
        return np.full(n, np.nan)


def _safe_many(call: Callable[[], tuple[Array, ...]], n: int, count: int) -> list[Array]:
    """The outputs of a multi-output TA-Lib function, or NaN arrays."""
    try:
        return [np.asarray(values, dtype=np.float64) for values in call()]
    except Exception:  # see _safe
        return [np.full(n, np.nan) for _ in range(count)]


def _ratio(numerator: Array, denominator: Array) -> Array:
    with np.errstate(divide="ignore", invalid="ignore"):
        out = numerator / denominator
    out[~np.isfinite(out)] = np.nan
    return out


def _shift(values: Array, periods: int = 1) -> Array:
    out = np.full_like(values, np.nan)
    if periods < len(values):
        out[periods:] = values[: len(values) - periods]
    return out


def periods_per_year(timestamps: pd.Series) -> float:
    """Bars per year from the median bar spacing: 252 for daily bars, 252 x 390 / minutes
    for intraday bars (regular session)."""
    if len(timestamps) < 2:
        return TRADING_DAYS_PER_YEAR
    spacing = pd.Series(timestamps.unique()).sort_values().diff().median()
    if pd.isna(spacing) or spacing >= pd.Timedelta(hours=20):
        return TRADING_DAYS_PER_YEAR
    minutes = max(spacing / pd.Timedelta(minutes=1), 1.0)
    return TRADING_DAYS_PER_YEAR * REGULAR_MINUTES_PER_DAY / minutes


def timeframe_bars_per_year(timeframe: str) -> float:
    """Bars per year of a bar timeframe (`core.bars.TIMEFRAMES`), on the same basis as
    `periods_per_year`: 252 sessions of 390 regular minutes."""
    step = timeframe_step(timeframe)
    if step >= pd.Timedelta(days=1):
        return TRADING_DAYS_PER_YEAR
    return TRADING_DAYS_PER_YEAR * REGULAR_MINUTES_PER_DAY / (step / pd.Timedelta(minutes=1))


def symbol_technicals(
    open_: Array,
    high: Array,
    low: Array,
    close: Array,
    volume: Array,
    *,
    bars_per_year: float = TRADING_DAYS_PER_YEAR,
) -> dict[str, Array]:
    """Every technical feature for ONE symbol's clean bars (float64, oldest first, no NaN).
    Each value at bar i depends on bars <= i only."""
    n = len(close)
    out: dict[str, Array] = {}
    ema = {p: _safe(partial(talib.EMA, close, p), n) for p in (9, 21, 50, 200)}
    for period, values in ema.items():
        out[f"ema_{period}_dist"] = _ratio(close, values) - 1.0
    out["ema_9_21_spread"] = _ratio(ema[9], ema[21]) - 1.0
    out["rsi_14"] = _safe(lambda: talib.RSI(close, 14), n)
    atr = _safe(lambda: talib.ATR(high, low, close, 14), n)
    out["atr_14"] = atr
    out["atr_14_pct"] = _ratio(atr, close)
    macd = _safe_many(lambda: talib.MACD(close, 12, 26, 9), n, 3)
    out["macd_line"] = _ratio(macd[0], close)
    out["macd_signal"] = _ratio(macd[1], close)
    out["macd_hist"] = _ratio(macd[2], close)
    upper, middle, lower = _safe_many(
        lambda: talib.BBANDS(close, 20, 2.0, 2.0, talib.MA_Type.SMA), n, 3
    )
    out["bb_pct_b_20"] = _ratio(close - lower, upper - lower)
    out["bb_width_20"] = _ratio(upper - lower, middle)
    mean_volume = _safe(lambda: talib.SMA(volume, 20), n)
    out["volume_ratio_20"] = _ratio(volume, mean_volume)
    out["roc_10"] = _safe(lambda: talib.ROC(close, 10), n)
    out["stoch_k_14"], out["stoch_d_3"] = _safe_many(
        lambda: talib.STOCHF(high, low, close, 14, 3, talib.MA_Type.SMA), n, 2
    )
    out["adx_14"] = _safe(lambda: talib.ADX(high, low, close, 14), n)
    out["plus_di_14"] = _safe(lambda: talib.PLUS_DI(high, low, close, 14), n)
    out["minus_di_14"] = _safe(lambda: talib.MINUS_DI(high, low, close, 14), n)
    out["cci_20"] = _safe(lambda: talib.CCI(high, low, close, 20), n)
    out["willr_14"] = _safe(lambda: talib.WILLR(high, low, close, 14), n)
    out["mfi_14"] = _safe(lambda: talib.MFI(high, low, close, volume, 14), n)
    # OBV's level depends on where the history starts; its slope does not.
    obv_slope = _safe(lambda: talib.LINEARREG_SLOPE(talib.OBV(close, volume), 20), n)
    out["obv_slope_20"] = _ratio(obv_slope, mean_volume)
    typical = _safe(lambda: talib.TYPPRICE(high, low, close), n)
    value_traded = _safe(lambda: talib.SUM(typical * volume, 20), n)
    volume_traded = _safe(lambda: talib.SUM(volume, 20), n)
    out["vwap_dist_20"] = _ratio(close, _ratio(value_traded, volume_traded)) - 1.0
    for horizon in (1, 5, 20):
        out[f"return_{horizon}"] = _safe(partial(talib.ROCP, close, horizon), n)
    log_return = np.log(_ratio(close, _shift(close)))
    log_return[0:1] = 0.0  # STDDEV needs a leading value; the first 20 outputs are NaN anyway
    realized = _safe(lambda: talib.STDDEV(log_return, 20, 1.0), n) * np.sqrt(bars_per_year)
    realized[:21] = np.nan
    out["realized_vol_20"] = realized
    prior_high = _shift(_safe(lambda: talib.MAX(high, 20), n))
    prior_low = _shift(_safe(lambda: talib.MIN(low, 20), n))
    out["high_20_dist"] = _ratio(close, prior_high) - 1.0
    out["low_20_dist"] = _ratio(close, prior_low) - 1.0
    out["gap_1"] = _ratio(open_, _shift(close)) - 1.0
    out["range_pct_1"] = _ratio(high - low, close)
    for values in out.values():
        values[~np.isfinite(values)] = np.nan
    return out


def bad_bar_mask(frame: pd.DataFrame) -> np.ndarray:
    """True where a bar cannot feed an indicator: a missing or non-positive price, a
    missing or negative volume, high below low, or open/close outside [low, high]."""
    prices = frame[["open", "high", "low", "close"]].to_numpy(dtype=np.float64)
    volume = frame["volume"].to_numpy(dtype=np.float64)
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(prices).all(axis=1) | (prices <= 0).any(axis=1)
        bad |= ~np.isfinite(volume) | (volume < 0)
        # high below low, or open/close outside the bar's range: the bar contradicts itself
        bad |= prices[:, 1] < prices[:, 2]
        bad |= (prices[:, [0, 3]] > prices[:, [1]]).any(axis=1)
        bad |= (prices[:, [0, 3]] < prices[:, [2]]).any(axis=1)
    return bad


def require_bar_columns(bars: pd.DataFrame, where: str) -> None:
    missing = [column for column in BAR_COLUMNS if column not in bars.columns]
    if missing:
        raise DataValidationError(
            f"bar frame lacks column(s) {', '.join(missing)}; expected {', '.join(BAR_COLUMNS)}",
            where=where,
        )


def sort_bars(bars: pd.DataFrame, where: str) -> pd.DataFrame:
    """A sorted copy with float prices and UTC timestamps; duplicates are an error."""
    require_bar_columns(bars, where)
    frame = bars.loc[:, list(BAR_COLUMNS)].copy()
    frame["symbol"] = frame["symbol"].astype(str)
    timestamps = pd.to_datetime(frame["timestamp"], utc=True)
    frame["timestamp"] = timestamps.astype("datetime64[ns, UTC]")
    for column in ("open", "high", "low", "close", "volume"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(np.float64)
    frame = frame.sort_values(["symbol", "timestamp"], kind="stable").reset_index(drop=True)
    duplicated = frame.duplicated(["symbol", "timestamp"])
    if duplicated.any():
        first = frame.loc[duplicated].iloc[0]
        raise DataValidationError(
            f"{int(duplicated.sum())} duplicate (symbol, timestamp) bar(s), first "
            f"{first['symbol']} at {first['timestamp'].isoformat()}",
            where=where,
        )
    return frame


def symbol_slices(symbols: np.ndarray) -> list[tuple[str, int, int]]:
    """(symbol, start, stop) of each run in a symbol-sorted array."""
    if len(symbols) == 0:
        return []
    change = np.flatnonzero(symbols[1:] != symbols[:-1]) + 1
    starts = np.concatenate(([0], change))
    stops = np.concatenate((change, [len(symbols)]))
    return [(str(symbols[a]), int(a), int(b)) for a, b in zip(starts, stops, strict=True)]


def _gap_problem(timestamps_ns: np.ndarray, daily: bool) -> str | None:
    if len(timestamps_ns) < 3:
        return None
    spacing = np.diff(timestamps_ns) // 1_000_000_000
    typical = float(np.median(spacing))
    # Daily bars: more than a week without a bar (holidays and weekends are at most 4 days).
    limit = 7 * 86_400 if daily else max(typical * 30, 3 * 86_400)
    big = np.flatnonzero(spacing > limit)
    if len(big) == 0:
        return None
    first = pd.Timestamp(int(timestamps_ns[big[0]]), tz="UTC")
    days = spacing[big[0]] / 86_400
    return (
        f"{len(big)} gap(s) in the bars, the first {days:.1f} days after "
        f"{first.date().isoformat()}; indicators treat the bars around a gap as consecutive"
    )


def _bad_print_problem(close: np.ndarray, stamps_ns: np.ndarray) -> str | None:
    """A close that jumps 30%+ and comes straight back is most likely a bad print (a
    spin-off or split jumps once and stays). Only reported: flagging it in the features
    would need the next bar, which is lookahead; repair it upstream
    (`core.bars.validate_bars(repair=True)`)."""
    if len(close) < 3:
        return None
    moves = np.log(close[1:] / close[:-1])
    spikes = np.flatnonzero(
        (np.abs(moves[:-1]) > 0.3) & (np.abs(moves[1:]) > 0.3) & (moves[:-1] * moves[1:] < 0)
    )
    if len(spikes) == 0:
        return None
    first = pd.Timestamp(int(stamps_ns[spikes[0] + 1]), tz="UTC")
    return (
        f"{len(spikes)} probable bad print(s) (a 30%+ move reversed on the next bar), the "
        f"first at {first.isoformat()}; features around it use the printed price"
    )


def technical_features(
    bars: pd.DataFrame, *, bars_per_year: float | None = None
) -> tuple[pd.DataFrame, list[FeatureWarning]]:
    """`symbol, timestamp` + every technical column for a bar frame (any number of
    symbols), and the data-quality findings. The input is not modified."""
    frame = sort_bars(bars, "features.technical")
    yearly = bars_per_year if bars_per_year is not None else periods_per_year(frame["timestamp"])
    daily = yearly <= TRADING_DAYS_PER_YEAR
    n = len(frame)
    columns = {name: np.full(n, np.nan) for name in TECHNICAL_COLUMNS}
    bad = bad_bar_mask(frame)
    arrays = {c: frame[c].to_numpy(dtype=np.float64) for c in ("open", "high", "low", "close",
                                                               "volume")}
    stamps = np.asarray(frame["timestamp"].array.asi8)
    found: list[FeatureWarning] = []
    for symbol, start, stop in symbol_slices(frame["symbol"].to_numpy()):
        problems: list[str] = []
        bad_here = bad[start:stop]
        rows = np.flatnonzero(~bad_here) + start
        if bad_here.any():
            first_bad = pd.Timestamp(int(stamps[start + int(np.argmax(bad_here))]), tz="UTC")
            problems.append(
                f"{int(bad_here.sum())} bad bar(s) (missing/non-positive price, negative "
                "volume, or open/close outside low..high), the first at "
                f"{first_bad.isoformat()}; their features are NaN and indicators skip them"
            )
        if len(rows) < LONGEST_TECHNICAL_LOOKBACK + 1:
            problems.append(
                f"only {len(rows)} usable bar(s), fewer than the longest lookback "
                f"({LONGEST_TECHNICAL_LOOKBACK}); features needing more history are NaN"
            )
        gap = _gap_problem(stamps[rows], daily)
        if gap:
            problems.append(gap)
        spike = _bad_print_problem(arrays["close"][rows], stamps[rows])
        if spike:
            problems.append(spike)
        if problems:
            found.append(FeatureWarning(symbol, tuple(problems)))
        if len(rows) == 0:
            continue
        values = symbol_technicals(
            *(np.ascontiguousarray(arrays[c][rows]) for c in ("open", "high", "low", "close",
                                                                "volume")),
            bars_per_year=yearly,
        )
        for name, column in values.items():
            columns[name][rows] = column
    result = pd.DataFrame(
        {"symbol": frame["symbol"], "timestamp": frame["timestamp"], **columns}, copy=False
    )
    return result, found
