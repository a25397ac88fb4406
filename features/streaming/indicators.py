"""TA-Lib's indicators, one bar at a time: each class keeps the state TA-Lib's batch loop
keeps between iterations and updates it with the same floating-point operations in the
same order, so a stream started on the same first bar gives TA-Lib's values (bit for bit
in practice; the tests hold them to 1e-9).

Work per bar does not grow with the history: recursive state (EMA, Wilder smoothing,
running sums) is O(1); the few indicators TA-Lib itself computes over their window each
bar (CCI's mean deviation, the regression slope, highest/lowest) walk a fixed window of
at most 20 values. `update` returns NaN until the indicator's lookback is filled.

TA-Lib conventions kept on purpose (the batch features have them too): `TA_IS_ZERO` is
|x| < 1e-14 (TA-Lib 0.8's `TA_EPSILON`), and a difference counts as zero within 1e-14 of
its operands' magnitude (`TA_IS_ZERO_SCALED`). Window variances (VAR, STDDEV, BBANDS,
CORREL) are computed two-pass over the fixed window: exact to rounding, which TA-Lib 0.8's
shifted, reseeded running sums also are (within 2e-10 by its design, far closer in
practice); the old `E[x²] - mean²` running sums drift on prices."""

from __future__ import annotations

import math
from collections import deque

NAN = math.nan
_EPSILON = 1e-14


def is_zero(value: float) -> bool:
    return -_EPSILON < value < _EPSILON


def is_zero_scaled(value: float, scale: float) -> bool:
    return abs(value) <= _EPSILON * scale


def per_to_k(period: int) -> float:
    return 2.0 / (period + 1)


class Ema:
    """TA-Lib EMA: seeded with the mean of the first `period` values."""

    __slots__ = ("_count", "_k", "_period", "_seed", "value")

    def __init__(self, period: int) -> None:
        self._period = period
        self._k = per_to_k(period)
        self._count = 0
        self._seed = 0.0
        self.value = NAN

    def update(self, x: float) -> float:
        self._count += 1
        if self._count < self._period:
            self._seed += x
            return NAN
        if self._count == self._period:
            self._seed += x
            self.value = self._seed / self._period
            return self.value
        self.value = ((x - self.value) * self._k) + self.value
        return self.value


class RollingSum:
    """TA-Lib SUM (and SMA as `total / period`): add the new value, read, then take out
    the value leaving the window."""

    __slots__ = ("_period", "_total", "_window")

    def __init__(self, period: int) -> None:
        self._period = period
        self._total = 0.0
        self._window: deque[float] = deque()

    def update(self, x: float) -> float:
        self._window.append(x)
        self._total += x
        if len(self._window) < self._period:
            return NAN
        value = self._total
        self._total -= self._window.popleft()
        return value

    def mean(self, x: float) -> float:
        return self.update(x) / self._period


def _variance(window: deque[float], mean: float) -> float:
    """Population variance around `mean`, two-pass over the fixed window (exact to
    rounding: TA-Lib 0.8's shifted, reseeded running sums are within 2e-10 of it)."""
    total = 0.0
    for value in window:
        deviation = value - mean
        total += deviation * deviation
    return total / len(window)


class RollingVariance:
    """TA-Lib VAR over the last `period` values."""

    __slots__ = ("_period", "_window")

    def __init__(self, period: int) -> None:
        self._period = period
        self._window: deque[float] = deque(maxlen=period)

    def update(self, x: float) -> float:
        window = self._window
        window.append(x)
        if len(window) < self._period:
            return NAN
        return _variance(window, math.fsum(window) / self._period)


def stddev_from_variance(variance: float) -> float:
    """TA-Lib STDDEV with a deviation multiplier of 1 (TA-Lib 0.8 keeps variances
    below its epsilon: a 9e-9 deviation of near-equal minute returns is real)."""
    if variance != variance:
        return NAN
    return math.sqrt(variance) if variance > 0.0 else 0.0


class BollingerWidth:
    """TA-Lib BBANDS(SMA): the SMA (TA-Lib's running sum, bit for bit) and the standard
    deviation of the window around it. Returns (middle, deviation)."""

    __slots__ = ("_period", "_sma", "_window")

    def __init__(self, period: int) -> None:
        self._period = period
        self._sma = RollingSum(period)
        self._window: deque[float] = deque(maxlen=period)

    def update(self, x: float) -> tuple[float, float]:
        middle = self._sma.mean(x)
        window = self._window
        window.append(x)
        if len(window) < self._period:
            return NAN, NAN
        variance = _variance(window, math.fsum(window) / self._period)
        return middle, math.sqrt(variance) if variance > 0.0 else 0.0


class Rsi:
    """TA-Lib RSI (Wilder smoothing, classic seed: the mean gain/loss of the first
    `period` changes)."""

    __slots__ = ("_count", "_gain", "_loss", "_period", "_previous")

    def __init__(self, period: int) -> None:
        self._period = period
        self._count = 0
        self._gain = 0.0
        self._loss = 0.0
        self._previous = NAN

    def update(self, x: float) -> float:
        self._count += 1
        if self._count == 1:
            self._previous = x
            return NAN
        change = x - self._previous
        self._previous = x
        period = self._period
        if self._count <= period + 1:
            if change < 0.0:
                self._loss -= change
            else:
                self._gain += change
            if self._count < period + 1:
                return NAN
            self._loss /= period
            self._gain /= period
        else:
            self._loss *= period - 1
            self._gain *= period - 1
            if change < 0.0:
                self._loss -= change
            else:
                self._gain += change
            self._loss /= period
            self._gain /= period
        total = self._gain + self._loss
        return 100.0 * (self._gain / total) if not is_zero(total) else 0.0


def true_range(high: float, low: float, previous_close: float) -> float:
    greatest = high - low
    upper = abs(previous_close - high)
    if upper > greatest:
        greatest = upper
    lower = abs(low - previous_close)
    if lower > greatest:
        greatest = lower
    return greatest


class Atr:
    """TA-Lib ATR: the mean of the first `period` true ranges, then Wilder smoothing."""

    __slots__ = ("_count", "_period", "_previous_close", "_seed", "value")

    def __init__(self, period: int) -> None:
        self._period = period
        self._count = 0
        self._seed = RollingSum(period)
        self._previous_close = NAN
        self.value = NAN

    def update(self, high: float, low: float, close: float) -> float:
        self._count += 1
        previous, self._previous_close = self._previous_close, close
        if self._count == 1:
            return NAN
        bar_range = true_range(high, low, previous)
        if self._count <= self._period + 1:
            self.value = self._seed.mean(bar_range)
            return self.value
        value = self.value * (self._period - 1)
        value += bar_range
        self.value = value / self._period
        return self.value


class DirectionalMovement:
    """TA-Lib PLUS_DI, MINUS_DI and ADX from one shared state. Returns (plus_di,
    minus_di, adx)."""

    __slots__ = (
        "_close",
        "_count",
        "_dx_sum",
        "_high",
        "_low",
        "_minus_dm",
        "_period",
        "_plus_dm",
        "_range",
        "adx",
    )

    def __init__(self, period: int) -> None:
        self._period = period
        self._count = 0
        self._high = self._low = self._close = NAN
        self._minus_dm = self._plus_dm = self._range = 0.0
        self._dx_sum = 0.0
        self.adx = NAN

    def update(self, high: float, low: float, close: float) -> tuple[float, float, float]:
        self._count += 1
        period = self._period
        if self._count == 1:
            self._high, self._low, self._close = high, low, close
            return NAN, NAN, NAN
        up = high - self._high
        down = self._low - low
        bar_range = true_range(high, low, self._close)
        self._high, self._low, self._close = high, low, close
        smoothing = self._count > period
        if smoothing:
            self._minus_dm -= self._minus_dm / period
            self._plus_dm -= self._plus_dm / period
        if down > 0 and up < down:
            self._minus_dm += down
        elif up > 0 and up > down:
            self._plus_dm += up
        if not smoothing:
            self._range += bar_range
            return NAN, NAN, NAN
        self._range = self._range - self._range / period + bar_range
        plus_di = minus_di = 0.0
        dx = NAN
        if not is_zero(self._range):
            minus_di = 100.0 * (self._minus_dm / self._range)
            plus_di = 100.0 * (self._plus_dm / self._range)
            total = minus_di + plus_di
            if not is_zero(total):
                dx = 100.0 * (abs(minus_di - plus_di) / total)
        if self._count < 2 * period:
            if dx == dx:
                self._dx_sum += dx
            return plus_di, minus_di, NAN
        if self._count == 2 * period:
            if dx == dx:
                self._dx_sum += dx
            self.adx = self._dx_sum / period
        elif dx == dx:
            self.adx = (self.adx * (period - 1) + dx) / period
        return plus_di, minus_di, self.adx


class Macd:
    """TA-Lib MACD: the slow EMA seeded on the first `slow` closes, the fast EMA seeded
    on the `fast` closes ending at the same bar, the signal an EMA of the line from
    there. Returns (line, signal, histogram)."""

    __slots__ = ("_count", "_fast", "_fast_start", "_signal", "_slow")

    def __init__(self, fast: int, slow: int, signal: int) -> None:
        self._fast = Ema(fast)
        self._slow = Ema(slow)
        self._signal = Ema(signal)
        self._fast_start = slow - fast
        self._count = 0

    def update(self, x: float) -> tuple[float, float, float]:
        self._count += 1
        slow = self._slow.update(x)
        if self._count <= self._fast_start:
            return NAN, NAN, NAN
        fast = self._fast.update(x)
        if slow != slow:
            return NAN, NAN, NAN
        line = fast - slow
        signal = self._signal.update(line)
        if signal != signal:
            return NAN, NAN, NAN
        return line, signal, line - signal


class Extremes:
    """Highest and lowest value over the last `period` values (TA-Lib MAX/MIN)."""

    __slots__ = ("_highs", "_lows", "_period")

    def __init__(self, period: int) -> None:
        self._period = period
        self._highs: deque[float] = deque(maxlen=period)
        self._lows: deque[float] = deque(maxlen=period)

    def update(self, high: float, low: float) -> tuple[float, float]:
        self._highs.append(high)
        self._lows.append(low)
        if len(self._highs) < self._period:
            return NAN, NAN
        return max(self._highs), min(self._lows)


class Cci:
    """TA-Lib CCI: the typical price against its mean and mean absolute deviation,
    summed in the ring's storage order as TA-Lib does."""

    __slots__ = ("_count", "_period", "_ring")

    def __init__(self, period: int) -> None:
        self._period = period
        self._ring = [0.0] * period
        self._count = 0

    def update(self, high: float, low: float, close: float) -> float:
        period = self._period
        last = (high + low + close) / 3
        self._ring[self._count % period] = last
        self._count += 1
        if self._count < period:
            return NAN
        total = 0.0
        for value in self._ring:
            total += value
        average = total / period
        deviation = 0.0
        for value in self._ring:
            deviation += abs(value - average)
        distance = last - average
        if distance != 0.0 and deviation != 0.0:
            return distance / (0.015 * (deviation / period))
        return 0.0


class MoneyFlowIndex:
    """TA-Lib MFI: positive and negative money flow over `period` bars, running sums; a
    typical price that did not move (within the scaled epsilon) carries no flow, and a
    whole window without flow resets the sums to exactly zero."""

    __slots__ = ("_count", "_empty_run", "_flows", "_negative", "_period", "_positive",
                 "_previous")

    def __init__(self, period: int) -> None:
        self._period = period
        self._count = 0
        self._previous = NAN
        self._positive = 0.0
        self._negative = 0.0
        self._empty_run = 0
        self._flows: deque[tuple[float, float]] = deque()

    def update(self, high: float, low: float, close: float, volume: float) -> float:
        self._count += 1
        typical = (high + low + close) / 3.0
        previous, self._previous = self._previous, typical
        if self._count == 1:
            return NAN
        period = self._period
        if self._count > period + 1:
            positive, negative = self._flows.popleft()
            self._positive -= positive
            self._negative -= negative
        change = typical - previous
        scale = abs(typical) + abs(previous)
        flow = 0.0 if is_zero_scaled(change, scale) else typical * volume
        positive, negative = (0.0, flow) if change < 0.0 else (flow, 0.0)
        self._flows.append((positive, negative))
        self._positive += positive
        self._negative += negative
        self._empty_run = self._empty_run + 1 if flow == 0.0 else 0
        if self._empty_run >= period:
            self._empty_run = period
            self._positive = 0.0
            self._negative = 0.0
        if self._count <= period:
            return NAN
        total = self._positive + self._negative
        clamped = 0.0 if self._positive < 0.0 else min(self._positive, total)
        return 0.0 if total <= 0.0 else 100.0 * (clamped / total)


class ObvSlope:
    """TA-Lib OBV (starting at the first bar's volume) and the LINEARREG_SLOPE of its
    last `period` values."""

    __slots__ = ("_divisor", "_obv", "_period", "_previous", "_sum_x", "_window")

    def __init__(self, period: int) -> None:
        self._period = period
        self._obv = NAN
        self._previous = NAN
        self._window: deque[float] = deque(maxlen=period)
        self._sum_x = period * (period - 1) * 0.5
        sum_x_sq = period * (period - 1) * (2 * period - 1) / 6
        self._divisor = self._sum_x * self._sum_x - period * sum_x_sq

    def update(self, close: float, volume: float) -> float:
        if self._obv != self._obv:
            self._obv = volume
        elif close > self._previous:
            self._obv += volume
        elif close < self._previous:
            self._obv -= volume
        self._previous = close
        self._window.append(self._obv)
        period = self._period
        if len(self._window) < period:
            return NAN
        sum_xy = 0.0
        sum_y = 0.0
        steps_back = period
        for value in self._window:
            steps_back -= 1
            sum_y += value
            sum_xy += steps_back * value
        return (period * sum_xy - self._sum_x * sum_y) / self._divisor


class Correlation:
    """TA-Lib CORREL over `period` pairs, from the pairs' deviations around their means
    (two-pass over the fixed window)."""

    __slots__ = ("_period", "_xs", "_ys")

    def __init__(self, period: int) -> None:
        self._period = period
        self._xs: deque[float] = deque(maxlen=period)
        self._ys: deque[float] = deque(maxlen=period)

    def update(self, x: float, y: float) -> float:
        xs, ys = self._xs, self._ys
        xs.append(x)
        ys.append(y)
        if len(xs) < self._period:
            return NAN
        mean_x = math.fsum(xs) / self._period
        mean_y = math.fsum(ys) / self._period
        sxx = syy = sxy = 0.0
        for a, b in zip(xs, ys, strict=True):
            da, db = a - mean_x, b - mean_y
            sxx += da * da
            syy += db * db
            sxy += da * db
        spread = sxx * syy
        if spread <= 0.0:
            return 0.0
        return sxy / math.sqrt(spread)
