"""Market-context features, bar by bar: the index's own state (one per index series,
shared by every symbol), the VIX level, the cross-section of the universe at a
timestamp (breadth, sector momentum), and each symbol's beta and correlation to the
index. The streaming twin of `features.market`, with the same values.

Order within a timestamp: the index bar first, then the symbols (as the batch join
reads the index bar at or before a symbol's bar). Cross-sectional features cover the
symbols already updated at that timestamp; feed a whole timestamp at once to get the
batch values."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from core.symbols import INDEX_PREFERENCE, MARKET_CONTEXT_SYMBOLS, VOLATILITY_INDEX
from features.market import (
    BETA_WINDOW,
    DRAWDOWN_MIN_BARS,
    DRAWDOWN_WINDOW,
    VOL_TREND_WINDOW,
    stale_after,
)
from features.streaming.indicators import (
    NAN,
    Correlation,
    Ema,
    RollingSum,
    RollingVariance,
    Rsi,
    stddev_from_variance,
)
from features.streaming.technical import is_bad_bar

DAY_NS = 86_400_000_000_000
_PARKINSON = 4 * math.log(2)


def join_key(timestamp_ns: int, daily: bool) -> int:
    """The scalar `features.market.join_key`: the UTC day for daily bars."""
    return timestamp_ns - timestamp_ns % DAY_NS if daily else timestamp_ns


def _ratio(a: float, b: float) -> float:
    if b == 0.0 or a != a or b != b:
        return NAN
    value = a / b
    return value if math.isfinite(value) else NAN


def _log(value: float) -> float:
    return math.log(value) if value == value and value > 0 else NAN


def _finite(value: float) -> float:
    return value if math.isfinite(value) else NAN


class IndexSeries:
    """One index series (SPX, SPY or COMP): its features at its latest bar."""

    def __init__(self, *, bars_per_year: float) -> None:
        self._bars_per_year = bars_per_year
        self._annualize = math.sqrt(bars_per_year)
        self._ema50, self._ema200 = Ema(50), Ema(200)
        self._rsi = Rsi(14)
        self._variances = {w: RollingVariance(w) for w in (5, 20, 60)}
        self._vol_trend = RollingSum(VOL_TREND_WINDOW)
        self._range_sq: deque[float] = deque(maxlen=20)
        self._closes: deque[float] = deque(maxlen=61)
        self._log_closes: deque[float] = deque(maxlen=61)
        self._peaks: deque[tuple[int, float]] = deque()  # (bar number, close), decreasing
        self.bars = 0
        self.key = -1
        self.values: dict[str, float] = {}

    def update(self, key: int, high: float, low: float, close: float) -> None:
        """A new bar at `key` (bars at a key already seen replace nothing: keep-last is
        the caller's job)."""
        closes = self._closes
        values: dict[str, float] = {}
        for horizon in (1, 5, 20, 60):
            before = closes[-horizon] if len(closes) >= horizon else NAN
            values[f"mkt_return_{horizon}"] = (
                NAN if before != before else (close - before) / before if before else 0.0
            )
        ema50, ema200 = self._ema50.update(close), self._ema200.update(close)
        values["mkt_ema_50_dist"] = _ratio(close, ema50) - 1.0
        values["mkt_ema_200_dist"] = _ratio(close, ema200) - 1.0
        values["mkt_trend"] = _ratio(ema50, ema200) - 1.0
        values["mkt_rsi_14"] = self._rsi.update(close)
        log_return = math.log(close / closes[-1]) if closes else 0.0
        realized = {}
        for window, variance in self._variances.items():
            deviation = stddev_from_variance(variance.update(log_return))
            realized[window] = deviation * self._annualize if self.bars >= window + 1 else NAN
        values["mkt_realized_vol_20"] = realized[20]
        trend_mean = self._vol_trend.mean(realized[20]) if realized[20] == realized[20] else NAN
        values["mkt_vol_proxy_trend"] = _ratio(realized[20], trend_mean) - 1.0
        values["mkt_realized_vol_5"] = realized[5]
        values["mkt_realized_vol_60"] = realized[60]
        values["mkt_log_vol_20"] = _log(realized[20])
        values["mkt_vol_ratio_5_60"] = _log(_ratio(realized[5], realized[60]))
        values["mkt_vol_ratio_20_60"] = _log(_ratio(realized[20], realized[60]))
        log_close = math.log(close)
        for window in (20, 60):
            move = (log_close - self._log_closes[-window]
                    if len(self._log_closes) >= window else NAN)
            noise = realized[window] / self._annualize * math.sqrt(window)
            values[f"mkt_trend_strength_{window}"] = _ratio(move, noise)
        values["mkt_abs_trend_strength_20"] = abs(values["mkt_trend_strength_20"])
        range_sq = math.log(high / low) ** 2
        self._range_sq.append(range_sq)
        values["mkt_parkinson_vol_20"] = (
            math.sqrt(math.fsum(self._range_sq) / 20 / _PARKINSON * self._bars_per_year)
            if len(self._range_sq) == 20 else NAN
        )
        peaks = self._peaks
        while peaks and peaks[-1][1] <= close:
            peaks.pop()
        peaks.append((self.bars, close))
        if peaks[0][0] <= self.bars - DRAWDOWN_WINDOW:
            peaks.popleft()
        values["mkt_drawdown_252"] = (
            _ratio(close, peaks[0][1]) - 1.0 if self.bars + 1 >= DRAWDOWN_MIN_BARS else NAN
        )
        closes.append(close)
        self._log_closes.append(log_close)
        self.bars += 1
        self.key = key
        self.values = {name: _finite(value) for name, value in values.items()}


class VolatilityIndex:
    """The VIX as the volatility level: close / 100 and its trend against its 20-bar
    mean, remembered for the last few keys (the index bar reads the VIX as of its key)."""

    def __init__(self) -> None:
        self._mean = RollingSum(VOL_TREND_WINDOW)
        self.recent: deque[tuple[int, float, float]] = deque(maxlen=8)

    def update(self, key: int, close: float) -> None:
        level = close / 100.0
        trend = _ratio(level, self._mean.mean(level)) - 1.0
        self.recent.append((key, level, trend))

    def as_of(self, key: int, tolerance_ns: int) -> tuple[float, float] | None:
        for seen, level, trend in reversed(self.recent):
            if seen <= key:
                return (level, trend) if key - seen <= tolerance_ns else None
        return None


@dataclass
class CrossSection:
    """Tallies of the symbols updated at one timestamp: breadth and sector sums."""

    timestamp_ns: int = -1
    breadth: list[float] = field(default_factory=lambda: [0.0] * 6)
    sectors: dict[int, list[float]] = field(default_factory=dict)

    def reset(self, timestamp_ns: int) -> None:
        self.timestamp_ns = timestamp_ns
        self.breadth = [0.0] * 6
        self.sectors = {}

    def add(
        self, symbol: str, sector: int, technical: dict[str, float], sign: float = 1.0
    ) -> None:
        """Count one symbol's bar in (`sign` -1: take it back out, for a corrected bar)."""
        if symbol not in MARKET_CONTEXT_SYMBOLS:
            tallies = self.breadth
            ret, ema, high = (technical["return_1"], technical["ema_50_dist"],
                              technical["high_20_dist"])
            if ret == ret:
                tallies[0] += sign * ((ret > 0) - (ret < 0))
                tallies[1] += sign
            if ema == ema:
                tallies[2] += sign * (ema > 0)
                tallies[3] += sign
            if high == high:
                tallies[4] += sign * (high > 0)
                tallies[5] += sign
        momentum = technical["return_20"]
        if sector != -1:
            total = self.sectors.setdefault(sector, [0.0, 0.0])
            if momentum == momentum:
                total[0] += sign * momentum
                total[1] += sign

    def features(self, sector: int, return_20: float) -> dict[str, float]:
        tallies = self.breadth
        out = {
            "mkt_advance_decline": tallies[0] / tallies[1] if tallies[1] else NAN,
            "mkt_pct_above_ema_50": tallies[2] / tallies[3] if tallies[3] else NAN,
            "mkt_pct_new_high_20": tallies[4] / tallies[5] if tallies[5] else NAN,
        }
        total = self.sectors.get(sector)
        momentum = total[0] / total[1] if sector != -1 and total and total[1] else NAN
        out["sector_momentum_20"] = momentum
        out["sector_relative_20"] = return_20 - momentum
        return out


class MarketContext:
    """Every index series seen, the VIX, and the index row a symbol's bar reads."""

    def __init__(self, *, bars_per_year: float, daily: bool) -> None:
        self._bars_per_year = bars_per_year
        self.daily = daily
        self._tolerance = int(stale_after(daily).value)
        self._series: dict[str, IndexSeries] = {}
        self._vix: VolatilityIndex | None = None

    def update(
        self, symbol: str, timestamp_ns: int, open_: float, high: float, low: float,
        close: float, volume: float,
    ) -> None:
        """An index bar (SPX, SPY, COMP or VIX); bad bars are skipped, as in the batch."""
        if is_bad_bar(open_, high, low, close, volume if volume == volume else 0.0):
            return
        key = join_key(timestamp_ns, self.daily)
        if symbol == VOLATILITY_INDEX:
            if self._vix is None:
                self._vix = VolatilityIndex()
            self._vix.update(key, close)
            return
        series = self._series.get(symbol)
        if series is None:
            series = self._series[symbol] = IndexSeries(bars_per_year=self._bars_per_year)
        if key <= series.key:
            return  # an index bar at a key already seen: the first one stands in streaming
        series.update(key, high, low, close)

    def index_symbol(self) -> str | None:
        chosen = next((name for name in INDEX_PREFERENCE if name in self._series), None)
        if chosen is None and self._series:
            chosen = sorted(self._series)[0]
        return chosen

    def index_features(self, timestamp_ns: int) -> dict[str, float] | None:
        """The index columns for a bar at `timestamp_ns`, or None (no index, or stale)."""
        name = self.index_symbol()
        if name is None:
            return None
        series = self._series[name]
        key = join_key(timestamp_ns, self.daily)
        if series.key < 0 or series.key > key or key - series.key > self._tolerance:
            return None
        values = dict(series.values)
        proxy_trend = values.pop("mkt_vol_proxy_trend")
        vix = self._vix.as_of(series.key, self._tolerance) if self._vix else None
        if vix is None:
            values["mkt_vol_level"] = values["mkt_realized_vol_20"]
            values["mkt_vol_trend"] = proxy_trend
            values["mkt_vol_is_vix"] = 0.0
        else:
            values["mkt_vol_level"], values["mkt_vol_trend"] = vix
            values["mkt_vol_is_vix"] = 1.0
        return values


class BetaCorrelation:
    """One symbol's rolling beta and correlation to the index over the bars where both
    one-bar returns exist (TA-Lib CORREL and STDDEV)."""

    def __init__(self) -> None:
        self._correlation = Correlation(BETA_WINDOW)
        self._stock = RollingVariance(BETA_WINDOW)
        self._market = RollingVariance(BETA_WINDOW)

    def update(self, stock_return: float, market_return: float) -> tuple[float, float]:
        if stock_return != stock_return or market_return != market_return:
            return NAN, NAN
        correlation = self._correlation.update(stock_return, market_return)
        stock_sd = stddev_from_variance(self._stock.update(stock_return))
        market_sd = stddev_from_variance(self._market.update(market_return))
        beta = correlation * _ratio(stock_sd, market_sd)
        return _finite(beta), _finite(correlation)

