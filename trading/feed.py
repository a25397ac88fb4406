"""What the engine knows about the market at a bar: the features of the bar's row (from
`features.compute.compute_features`), the strategies' signals on it, and the symbol's
trailing returns (for the correlation limit).

Two implementations of one `MarketFeed` port, both built on the same feature and
strategy code:
- `PrecomputedFeed` computes everything vectorized once per replay (backtests, the
  benchmark): the per-bar loop then only looks rows up. Features are causal, so a row
  computed from the whole history equals the row computed at that bar.
- `RollingFeed` updates per-symbol indicator state with each new bar in constant time
  (live trading): `features.streaming`, equal to the batch features. Live, it also takes
  headlines from a news stream (`observe_news`: the sentiment columns of later bars count
  them) and revised bars (`correct`: the latest bar of a symbol replaced, its features
  and signals recomputed).
"""

from __future__ import annotations

import warnings
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Protocol

import numpy as np
import pandas as pd

from core.errors import DataValidationError
from core.symbols import CONTEXT_ONLY_SYMBOLS, MARKET_CONTEXT_SYMBOLS
from core.types import BAR_COLUMNS, Bar, Signal
from trading.strategies import Strategy, frame_to_signals


class MarketFeed(Protocol):
    def observe(self, bar: Bar) -> None:
        """A new bar arrived (before the engine asks about it)."""
        ...

    def features(self, symbol: str, timestamp: datetime) -> Mapping[str, float] | None: ...

    def signals(self, symbol: str, timestamp: datetime) -> Sequence[Signal]: ...

    def trailing_returns(self, symbol: str, timestamp: datetime) -> np.ndarray | None: ...


class FeatureRow(Mapping[str, float]):
    """One row of the feature matrix, read lazily (no dict built per bar)."""

    __slots__ = ("_columns", "_row")

    def __init__(self, columns: Mapping[str, int], row: np.ndarray) -> None:
        self._columns = columns
        self._row = row

    def __getitem__(self, name: str) -> float:
        return float(self._row[self._columns[name]])

    def __contains__(self, name: object) -> bool:
        return name in self._columns  # no value read (Mapping's default reads it)

    def __iter__(self) -> Iterator[str]:
        return iter(self._columns)

    def __len__(self) -> int:
        return len(self._columns)

    def to_dict(self) -> dict[str, float]:
        values = self._row.tolist()  # Python floats, converted in one call
        return {name: values[i] for name, i in self._columns.items()}


def compute_feature_frame(
    bars: pd.DataFrame, index_bars: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Bars merged with their features (one row per bar), sorted by symbol and time.
    Feature data warnings (e.g. no index) are expected here and not re-issued."""
    from features.compute import compute_features

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        features = compute_features(bars, index_bars)
    base = bars.loc[:, list(BAR_COLUMNS)]
    if _same_rows(base, features):
        # The usual case (bars sorted by symbol and time, every bar kept): the features
        # are the bars' own rows in the same order, so the prices are added to them as
        # columns (the hash join and the sort after it cost more than the features
        # themselves; a concat would copy every feature into one block with the prices).
        frame = features  # computed here, for this frame only: no copy
        frame.index = pd.RangeIndex(len(frame))
        for position, name in enumerate(BAR_COLUMNS[2:], start=2):
            frame.insert(position, name, base[name].to_numpy())
        return frame
    merged = base.merge(features, on=["symbol", "timestamp"], how="inner", validate="one_to_one")
    return merged.sort_values(["symbol", "timestamp"], kind="stable", ignore_index=True)


def _same_rows(bars: pd.DataFrame, features: pd.DataFrame) -> bool:
    """Whether `features` (sorted by symbol then time) has exactly `bars`' keys, row by
    row, with the same key dtypes: then `bars` is sorted and unique on them as well."""
    if len(bars) != len(features) or bars["symbol"].dtype != features["symbol"].dtype:
        return False
    stamps, feature_stamps = bars["timestamp"], features["timestamp"]
    if stamps.dtype != feature_stamps.dtype or not pd.api.types.is_datetime64_any_dtype(stamps):
        return False
    if not np.array_equal(bars["symbol"].to_numpy(), features["symbol"].to_numpy()):
        return False
    return bool(np.array_equal(stamps.array.asi8, feature_stamps.array.asi8))


def shared_datetimes(stamps: pd.DatetimeIndex) -> np.ndarray:
    """`stamps` as `datetime` objects, one object per distinct time shared by its rows:
    converted once per time, and each time hashed once as a dict key."""
    _, first, where = np.unique(stamps.asi8, return_index=True, return_inverse=True)
    return stamps[first].to_pydatetime()[where.reshape(-1)]


def feature_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c not in BAR_COLUMNS]


class PrecomputedFeed:
    """Features, signals and returns for a whole replay, computed up front."""

    def __init__(
        self,
        bars: pd.DataFrame,
        strategies: Sequence[Strategy],
        index_bars: pd.DataFrame | None = None,
        *,
        returns_window: int = 60,
        frame: pd.DataFrame | None = None,
    ) -> None:
        merged = frame if frame is not None else compute_feature_frame(bars, index_bars)
        if merged.empty:
            raise DataValidationError("no bars to replay", where="PrecomputedFeed")
        self.frame = merged
        names = feature_columns(merged)
        self._columns = {name: i for i, name in enumerate(names)}
        # Filled column by column (selecting the columns as a frame would first copy them
        # all into one block); column-major, so each column is one contiguous copy.
        self._values = np.empty((len(merged), len(names)), dtype=np.float64, order="F")
        for position, name in enumerate(names):
            self._values[:, position] = merged[name].to_numpy(dtype=np.float64)
        timestamps = shared_datetimes(pd.DatetimeIndex(merged["timestamp"]))
        symbols = merged["symbol"].to_numpy()
        keys = zip(symbols.tolist(), timestamps.tolist(), strict=True)
        self._row: dict[tuple[str, datetime], int] = dict(
            zip(keys, range(len(merged)), strict=True)
        )
        self._returns_window = returns_window
        close = merged["close"].to_numpy(dtype=np.float64)
        returns = np.full(len(close), np.nan)
        returns[1:] = close[1:] / close[:-1] - 1.0
        starts = np.concatenate(([True], symbols[1:] != symbols[:-1]))
        returns[starts] = np.nan
        self._returns = returns
        self._symbol_start: dict[str, int] = {
            str(symbols[i]): int(i) for i in np.flatnonzero(starts)
        }
        self._signals: dict[tuple[str, datetime], list[Signal]] = {}
        frames = [strategy.signals_frame(merged) for strategy in strategies]
        frames = [f for f in frames if not f.empty]
        if frames:
            for signal in frame_to_signals(pd.concat(frames, ignore_index=True)):
                self._signals.setdefault((signal.symbol, signal.timestamp), []).append(signal)

    @property
    def signal_count(self) -> int:
        return sum(len(v) for v in self._signals.values())

    def observe(self, bar: Bar) -> None:
        """Nothing to do: every row is known already."""

    def features(self, symbol: str, timestamp: datetime) -> FeatureRow | None:
        row = self._row.get((symbol, timestamp))
        if row is None:
            return None
        return FeatureRow(self._columns, self._values[row])

    def signals(self, symbol: str, timestamp: datetime) -> Sequence[Signal]:
        return self._signals.get((symbol, timestamp), ())

    def trailing_returns(self, symbol: str, timestamp: datetime) -> np.ndarray | None:
        row = self._row.get((symbol, timestamp))
        if row is None:
            return None
        start = max(self._symbol_start[symbol], row - self._returns_window + 1)
        return self._returns[start : row + 1]


class RollingFeed:
    """Live feed: `features.streaming.StreamingFeatures` updates each symbol's indicator
    state with the new bar in constant time (values equal the batch computation), and
    the strategies run on the symbol's last two rows, which is all a signal depends on
    (the condition now, not on the row before). Index bars (SPX, COMP, VIX; SPY too)
    update the market context; feed a timestamp's index bars before its symbols."""

    def __init__(
        self,
        strategies: Sequence[Strategy],
        *,
        bars_per_year: float | None = None,
        index_bars: pd.DataFrame | None = None,
        returns_window: int = 60,
        corrections: bool = False,
    ) -> None:
        from features.streaming import StreamingFeatures

        self._strategies = list(strategies)
        self._streaming = StreamingFeatures(
            bars_per_year=bars_per_year, index_bars=index_bars, corrections=corrections
        )
        self._returns_window = returns_window
        self._recent: dict[str, deque[dict[str, object]]] = {}
        self._closes: dict[str, deque[float]] = {}
        self._latest: dict[str, tuple[datetime, dict[str, float], list[Signal]]] = {}

    def seed(self, bars: pd.DataFrame) -> None:
        """Load history before going live: the indicator state, the trailing closes, and
        the last row of each symbol (so the first live bar can already signal)."""
        if bars.empty:
            return
        self._streaming.seed(bars)
        tradable = bars[~bars["symbol"].isin(CONTEXT_ONLY_SYMBOLS)]
        if tradable.empty:
            return
        index = bars[bars["symbol"].isin(MARKET_CONTEXT_SYMBOLS)]
        merged = compute_feature_frame(tradable, index if len(index) else None)
        names = feature_columns(merged)
        for symbol, rows in merged.groupby("symbol", sort=False):
            name = str(symbol)
            last = rows.iloc[-1].to_dict()
            self._recent[name] = deque([last], maxlen=2)
            self._closes[name] = deque(
                rows["close"].to_numpy(dtype=np.float64)[-(self._returns_window + 1) :],
                maxlen=self._returns_window + 1,
            )
            stamp = pd.Timestamp(last["timestamp"]).to_pydatetime()
            self._latest[name] = (stamp, {n: float(last[n]) for n in names}, [])

    def set_index_bars(self, index_bars: pd.DataFrame | None) -> None:
        if index_bars is not None and len(index_bars):
            self._streaming.update_index(index_bars)

    def observe(self, bar: Bar) -> None:
        """One bar (cross-sectional features cover the symbols already seen at its time;
        `observe_many` gives the whole cross-section)."""
        stamp = int(pd.Timestamp(bar.timestamp).value)
        values = (bar.open, bar.high, bar.low, bar.close, bar.volume)
        if bar.symbol in MARKET_CONTEXT_SYMBOLS:
            self._streaming.update_index_bar(bar.symbol, stamp, *values)
            if bar.symbol in CONTEXT_ONLY_SYMBOLS:
                return
        if self._is_old(bar):
            return
        features = self._streaming.update_bar(bar.symbol, stamp, *values)
        self._conclude(bar.timestamp, {bar.symbol: (bar, features)})

    def observe_many(self, bars: Sequence[Bar]) -> None:
        """Every bar of one time at once (the live service): the features over the whole
        cross-section, then each strategy once over all the symbols' last two rows."""
        fresh = [bar for bar in bars if bar.symbol in CONTEXT_ONLY_SYMBOLS or not self._is_old(bar)]
        if not fresh:
            return
        features = self._streaming.update_time(fresh)
        by_symbol = {b.symbol: b for b in fresh}
        self._conclude(fresh[0].timestamp, {s: (by_symbol[s], f) for s, f in features.items()})

    def news_live(self) -> None:
        """A news stream feeds this feed from now on: `sent_available` is 1 and the news
        counts are real; without one they stay NaN with `sent_available` 0."""
        self._streaming.news_live()

    def observe_news(self, symbol: str, timestamp: datetime, headline: str) -> float:
        """A headline as it arrives (scored as the offline features score it); it counts
        in the features of the symbol's bars decided at or after `timestamp`."""
        return self._streaming.add_news(symbol, int(pd.Timestamp(timestamp).value), headline)

    def correct(self, bar: Bar) -> bool:
        """A revised bar: when it is the symbol's latest, its features and signals are
        recomputed from the revised values; False when it is not (nothing changes)."""
        latest = self._latest.get(bar.symbol)
        if latest is None or latest[0] != bar.timestamp:
            return False
        features = self._streaming.correct_bar(
            bar.symbol, int(pd.Timestamp(bar.timestamp).value), bar.open, bar.high, bar.low,
            bar.close, bar.volume,
        )
        if features is None:
            return False
        self._recent[bar.symbol].pop()
        self._closes[bar.symbol].pop()
        self._conclude(bar.timestamp, {bar.symbol: (bar, features)})
        return True

    def _is_old(self, bar: Bar) -> bool:
        latest = self._latest.get(bar.symbol)
        return latest is not None and latest[0] >= bar.timestamp  # repeated or late

    def _conclude(
        self, timestamp: datetime, updated: Mapping[str, tuple[Bar, dict[str, float]]]
    ) -> None:
        """Record the new rows, run the strategies on each symbol's last two rows."""
        for symbol, (bar, features) in updated.items():
            row: dict[str, object] = {
                "symbol": symbol,
                "timestamp": pd.Timestamp(bar.timestamp),
                "open": bar.open,
                "high": bar.high,
                "low": bar.low,
                "close": bar.close,
                "volume": bar.volume,
            }
            row.update(features)
            self._recent.setdefault(symbol, deque(maxlen=2)).append(row)
            closes = self._closes.setdefault(symbol, deque(maxlen=self._returns_window + 1))
            closes.append(bar.close)
        rows = [row for symbol in sorted(updated) for row in self._recent[symbol]]
        frame = pd.DataFrame(rows)
        frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
        found: dict[str, list[Signal]] = {symbol: [] for symbol in updated}
        for strategy in self._strategies:
            for signal in frame_to_signals(strategy.signals_frame(frame)):
                if signal.timestamp == timestamp and signal.symbol in found:
                    found[signal.symbol].append(signal)
        for symbol, (_, features) in updated.items():
            self._latest[symbol] = (timestamp, features, found[symbol])

    def features(self, symbol: str, timestamp: datetime) -> Mapping[str, float] | None:
        latest = self._latest.get(symbol)
        return latest[1] if latest is not None and latest[0] == timestamp else None

    def signals(self, symbol: str, timestamp: datetime) -> Sequence[Signal]:
        latest = self._latest.get(symbol)
        return latest[2] if latest is not None and latest[0] == timestamp else ()

    def trailing_returns(self, symbol: str, timestamp: datetime) -> np.ndarray | None:
        closes = self._closes.get(symbol)
        if closes is None or len(closes) < 2:
            return None
        values = np.fromiter(closes, dtype=np.float64)
        return values[1:] / values[:-1] - 1.0

