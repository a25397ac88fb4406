"""One symbol's technical features, bar by bar: the streaming twin of
`features.technical.symbol_technicals`, with the same names and the same values.

A bad bar (see `features.technical.bad_bar_mask`) gets NaN features and leaves the
state untouched, as the batch code sets bad bars aside before its indicators run."""

from __future__ import annotations

import math

from features.streaming.indicators import (
    NAN,
    Atr,
    BollingerWidth,
    Cci,
    DirectionalMovement,
    Ema,
    Extremes,
    Macd,
    MoneyFlowIndex,
    ObvSlope,
    RollingSum,
    RollingVariance,
    Rsi,
    stddev_from_variance,
)
from features.technical import TECHNICAL_COLUMNS

EMA_PERIODS = (9, 21, 50, 200)
RETURN_HORIZONS = (1, 5, 20)
_HISTORY = 21  # closes kept: return_20 needs the close 20 bars back


def is_bad_bar(open_: float, high: float, low: float, close: float, volume: float) -> bool:
    """The scalar form of `features.technical.bad_bar_mask`."""
    for price in (open_, high, low, close):
        if not math.isfinite(price) or price <= 0:
            return True
    if not math.isfinite(volume) or volume < 0 or high < low:
        return True
    return not (low <= open_ <= high and low <= close <= high)


def _ratio(numerator: float, denominator: float) -> float:
    if denominator == 0.0 or denominator != denominator or numerator != numerator:
        return NAN
    value = numerator / denominator
    return value if math.isfinite(value) else NAN


def _change(now: float, before: float) -> float:
    """TA-Lib ROCP: (now - before) / before, 0 when before is 0."""
    if before != before:
        return NAN
    return (now - before) / before if before != 0.0 else 0.0


class SymbolTechnicals:
    """Indicator state of one symbol; `update` returns the bar's technical features."""

    def __init__(self, *, bars_per_year: float) -> None:
        self._annualize = math.sqrt(bars_per_year)
        self._emas = tuple(Ema(period) for period in EMA_PERIODS)
        self._rsi = Rsi(14)
        self._atr = Atr(14)
        self._macd = Macd(12, 26, 9)
        self._bands = BollingerWidth(20)
        self._mean_volume = RollingSum(20)
        self._stoch_range = Extremes(14)
        self._stoch_d = RollingSum(3)
        self._directional = DirectionalMovement(14)
        self._cci = Cci(20)
        self._mfi = MoneyFlowIndex(14)
        self._obv = ObvSlope(20)
        self._value_traded = RollingSum(20)
        self._volume_traded = RollingSum(20)
        self._log_variance = RollingVariance(20)
        self._prior_range = Extremes(20)
        self._prior_extremes = (NAN, NAN)  # highest high, lowest low of the 20 bars before
        self._closes: list[float] = []
        self.bars = 0  # clean bars seen

    def update(
        self, open_: float, high: float, low: float, close: float, volume: float
    ) -> dict[str, float]:
        if is_bad_bar(open_, high, low, close, volume):
            return dict.fromkeys(TECHNICAL_COLUMNS, NAN)
        out: dict[str, float] = {}
        emas = [ema.update(close) for ema in self._emas]
        for period, value in zip(EMA_PERIODS, emas, strict=True):
            out[f"ema_{period}_dist"] = _ratio(close, value) - 1.0
        out["ema_9_21_spread"] = _ratio(emas[0], emas[1]) - 1.0
        out["rsi_14"] = self._rsi.update(close)
        atr = self._atr.update(high, low, close)
        out["atr_14"] = atr
        out["atr_14_pct"] = _ratio(atr, close)
        line, signal, histogram = self._macd.update(close)
        out["macd_line"] = _ratio(line, close)
        out["macd_signal"] = _ratio(signal, close)
        out["macd_hist"] = _ratio(histogram, close)
        middle, deviation = self._bands.update(close)
        upper = middle + deviation * 2.0
        lower = middle - deviation * 2.0
        out["bb_pct_b_20"] = _ratio(close - lower, upper - lower)
        out["bb_width_20"] = _ratio(upper - lower, middle)
        mean_volume = self._mean_volume.mean(volume)
        out["volume_ratio_20"] = _ratio(volume, mean_volume)
        closes = self._closes
        before_10 = closes[-10] if len(closes) >= 10 else NAN
        out["roc_10"] = (
            NAN if before_10 != before_10
            else ((close / before_10) - 1.0) * 100.0 if before_10 != 0.0 else 0.0
        )
        self._stochastics(out, high, low, close)
        plus_di, minus_di, adx = self._directional.update(high, low, close)
        out["adx_14"] = adx
        out["plus_di_14"] = plus_di
        out["minus_di_14"] = minus_di
        out["cci_20"] = self._cci.update(high, low, close)
        out["mfi_14"] = self._mfi.update(high, low, close, volume)
        out["obv_slope_20"] = _ratio(self._obv.update(close, volume), mean_volume)
        typical = (high + low + close) / 3
        value_traded = self._value_traded.update(typical * volume)
        volume_traded = self._volume_traded.update(volume)
        out["vwap_dist_20"] = _ratio(close, _ratio(value_traded, volume_traded)) - 1.0
        for horizon in RETURN_HORIZONS:
            before = closes[-horizon] if len(closes) >= horizon else NAN
            out[f"return_{horizon}"] = _change(close, before)
        previous = closes[-1] if closes else NAN
        log_return = 0.0 if not closes else math.log(_ratio(close, previous))
        realized = stddev_from_variance(self._log_variance.update(log_return))
        out["realized_vol_20"] = realized * self._annualize if self.bars >= 21 else NAN
        prior_high, prior_low = self._prior_extremes
        self._prior_extremes = self._prior_range.update(high, low)
        out["high_20_dist"] = _ratio(close, prior_high) - 1.0
        out["low_20_dist"] = _ratio(close, prior_low) - 1.0
        out["gap_1"] = _ratio(open_, previous) - 1.0
        out["range_pct_1"] = _ratio(high - low, close)
        closes.append(close)
        if len(closes) > _HISTORY:
            del closes[0]
        self.bars += 1
        for name, value in out.items():
            if not math.isfinite(value):
                out[name] = NAN
        return {name: out[name] for name in TECHNICAL_COLUMNS}

    def _stochastics(self, out: dict[str, float], high: float, low: float, close: float) -> None:
        highest, lowest = self._stoch_range.update(high, low)
        if highest != highest:
            out["stoch_k_14"] = out["stoch_d_3"] = out["willr_14"] = NAN
            return
        diff = (highest - lowest) / 100.0
        fast_k = (close - lowest) / diff if diff != 0.0 else 0.0
        fast_d = self._stoch_d.mean(fast_k)
        out["stoch_k_14"] = fast_k if fast_d == fast_d else NAN
        out["stoch_d_3"] = fast_d
        diff = (highest - lowest) * (-0.01)
        out["willr_14"] = (highest - close) / diff if diff != 0.0 else 0.0
