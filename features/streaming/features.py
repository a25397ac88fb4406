"""Streaming features for live trading: every bar-derived feature of the catalogue for a
new bar, from per-symbol indicator state updated in constant time (no window is
recomputed). Values equal `features.compute.compute_features` over the same history
(the tests hold every column to 1e-9 on real daily and minute bars).

Feed bars in time order: per timestamp the index bars (SPX, SPY, COMP, VIX) first, then
the symbols; `update_many` does that for a whole timestamp and then gives breadth and
sector momentum over the full cross-section, as the batch does. `update` of one symbol
sees the symbols already updated at its timestamp."""

from __future__ import annotations

import math
import pickle
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np
import pandas as pd

from core.bars import BarInput, as_bar_frame
from core.errors import DataValidationError
from core.symbols import CONTEXT_ONLY_SYMBOLS, MARKET_CONTEXT_SYMBOLS
from core.types import Bar
from features.catalogue import BAR_FEATURES
from features.market import MARKET_COLUMNS
from features.sectors import sector_ids
from features.streaming.calendar import SessionClock
from features.streaming.market import BetaCorrelation, CrossSection, MarketContext
from features.streaming.news import EarningsIndex, NewsIndex
from features.streaming.technical import SymbolTechnicals
from features.technical import (
    TRADING_DAYS_PER_YEAR,
    periods_per_year,
    require_bar_columns,
    sort_bars,
)

NAN = math.nan
_INDEX_COLUMNS = tuple(
    name for name in MARKET_COLUMNS
    if name.startswith("mkt_") and name not in {
        "mkt_advance_decline", "mkt_pct_above_ema_50", "mkt_pct_new_high_20",
        "mkt_relative_strength_20",
    }
)
_CROSS_SECTIONS_KEPT = 4  # timestamps whose tallies stay open for late symbols


def _nanoseconds(timestamps: pd.Series) -> np.ndarray:
    """UTC nanoseconds of a timestamp column (naive means UTC)."""
    if isinstance(timestamps.dtype, pd.DatetimeTZDtype):
        return np.asarray(timestamps.array.asi8)
    return np.asarray(pd.DatetimeIndex(pd.to_datetime(timestamps, utc=True)).asi8)


def _rows(
    frame: pd.DataFrame, timestamp_ns: int | None
) -> list[tuple[str, int, float, float, float, float, float]]:
    """(symbol, timestamp ns, open, high, low, close, volume) per bar, no pandas per row."""
    stamps = (
        [timestamp_ns] * len(frame) if timestamp_ns is not None
        else pd.DatetimeIndex(frame["timestamp"]).asi8.tolist()
    )
    prices = frame[["open", "high", "low", "close", "volume"]].to_numpy(dtype=np.float64)
    symbols = frame["symbol"].astype(str).tolist()
    return [(symbol, stamp, *map(float, values))
            for symbol, stamp, values in zip(symbols, stamps, prices.tolist(), strict=True)]


class _Symbol:
    __slots__ = ("beta", "last_ns", "sector", "technicals")

    def __init__(self, symbol: str, bars_per_year: float) -> None:
        self.technicals = SymbolTechnicals(bars_per_year=bars_per_year)
        self.beta = BetaCorrelation()
        self.sector = int(sector_ids(pd.Series([symbol]))[0])
        self.last_ns = -1


class StreamingFeatures:
    """Per-symbol and market state; each bar updates it in O(1) and returns its row."""

    def __init__(
        self,
        *,
        bars_per_year: float | None = None,
        index_bars: pd.DataFrame | None = None,
        news: pd.DataFrame | None = None,
        earnings: pd.DataFrame | None = None,
        calendar: str = "XNYS",
        corrections: bool = False,
    ) -> None:
        self.bars_per_year = bars_per_year
        self._calendar = calendar
        self._news = NewsIndex(news)
        self._earnings = EarningsIndex(earnings)
        self._symbols: dict[str, _Symbol] = {}
        self._cross: OrderedDict[int, CrossSection] = OrderedDict()
        self._context: MarketContext | None = None
        self._clock: SessionClock | None = None
        # Index history given up front enters the state as time reaches each bar.
        self._pending: list[tuple[str, int, float, float, float, float, float]] = []
        self._pending_at = 0
        # With `corrections`, each symbol's state before its latest bar (pickled: it costs
        # several times a bar's update), so a revised latest bar can replace it.
        self._undo: dict[str, tuple[bytes, int, int, dict[str, float]]] | None = (
            {} if corrections else None
        )
        if index_bars is not None and len(index_bars):
            frame = sort_bars(index_bars, "StreamingFeatures index_bars")
            frame = frame.sort_values("timestamp", kind="stable")
            self._pending = [
                (str(r.symbol), int(r.timestamp.value), float(r.open), float(r.high),
                 float(r.low), float(r.close), float(r.volume))
                for r in frame.itertuples(index=False)
            ]

    # --- set-up ------------------------------------------------------------------------
    def _ready(self, stamps: pd.Series | None = None) -> None:
        if self._context is not None:
            return
        if self.bars_per_year is None:
            if stamps is None or len(stamps) < 2:
                raise DataValidationError(
                    "bars_per_year is unknown: pass it (the bar timeframe) or seed history "
                    "first",
                    where="StreamingFeatures",
                )
            self.bars_per_year = periods_per_year(stamps)
        daily = self.bars_per_year <= TRADING_DAYS_PER_YEAR
        self._context = MarketContext(bars_per_year=self.bars_per_year, daily=daily)
        self._clock = SessionClock(daily=daily, calendar=self._calendar)

    def seed(self, bars: pd.DataFrame) -> None:
        """Replay history (any symbols; index series included) through the state, in
        time order with each timestamp's index bars first."""
        frame = sort_bars(bars, "StreamingFeatures.seed")
        self._ready(frame.loc[~frame["symbol"].isin(MARKET_CONTEXT_SYMBOLS), "timestamp"]
                    if (~frame["symbol"].isin(MARKET_CONTEXT_SYMBOLS)).any()
                    else frame["timestamp"])
        stamps = frame["timestamp"].array.asi8
        order = np.argsort(stamps, kind="stable")
        rows = _rows(frame.iloc[order], None)
        start = 0
        for stop in range(1, len(rows) + 1):
            if stop == len(rows) or rows[stop][1] != rows[start][1]:
                self._replay(rows[start:stop], compute=False)
                start = stop
        if rows and self._clock is not None:
            self._clock.features(rows[-1][1])  # the calendar year loads now, not on a live bar

    def update_index(self, bars: BarInput) -> None:
        """Index bars (SPX, SPY, COMP, VIX), oldest first."""
        frame = sort_bars(as_bar_frame(bars), "StreamingFeatures.update_index")
        self._ready(frame["timestamp"])
        context = self._context
        assert context is not None
        for row in frame.sort_values("timestamp", kind="stable").itertuples(index=False):
            self._flush_index(int(row.timestamp.value))
            context.update(str(row.symbol), int(row.timestamp.value), float(row.open),
                           float(row.high), float(row.low), float(row.close),
                           float(row.volume))

    def update_index_bar(
        self, symbol: str, timestamp_ns: int, open_: float, high: float, low: float,
        close: float, volume: float,
    ) -> None:
        """One index bar (SPX, SPY, COMP or VIX), the hot path's form of `update_index`.
        SPY is also tradable: its own features come from `update_bar`."""
        if self._context is None:
            self._ready()
        self._flush_index(timestamp_ns)
        assert self._context is not None
        self._context.update(symbol, timestamp_ns, open_, high, low, close, volume)

    # --- updates -------------------------------------------------------------------------
    def update(self, bars: BarInput) -> dict[str, float]:
        """The newest bar of ONE tradable symbol → its features."""
        if isinstance(bars, Bar):
            return self.update_bar(bars.symbol, int(pd.Timestamp(bars.timestamp).value),
                                   bars.open, bars.high, bars.low, bars.close, bars.volume)
        frame = sort_bars(as_bar_frame(bars), "StreamingFeatures.update")
        symbols = frame["symbol"].unique()
        if len(symbols) != 1:
            raise DataValidationError(
                f"update takes bars of one symbol, got {', '.join(map(str, symbols))}; use "
                "update_many for a cross-section",
                where="StreamingFeatures.update",
            )
        out: dict[str, float] = {}
        for row in frame.itertuples(index=False):
            out = self.update_bar(str(row.symbol), int(row.timestamp.value), float(row.open),
                                  float(row.high), float(row.low), float(row.close),
                                  float(row.volume))
        return out

    def update_bar(
        self, symbol: str, timestamp_ns: int, open_: float, high: float, low: float,
        close: float, volume: float,
    ) -> dict[str, float]:
        """One bar of one tradable symbol → its features (the hot path: no pandas)."""
        state, technical = self._technicals(symbol, timestamp_ns, open_, high, low, close,
                                            volume)
        return self._row(symbol, state, timestamp_ns, technical)

    def update_time(self, bars: Sequence[Bar]) -> dict[str, dict[str, float]]:
        """`update_many` for `Bar`s of one timestamp, without pandas (the live path)."""
        if not bars:
            return {}
        stamp = int(pd.Timestamp(bars[0].timestamp).value)
        rows = [(b.symbol, stamp, b.open, b.high, b.low, b.close, b.volume) for b in bars]
        if any(int(pd.Timestamp(b.timestamp).value) != stamp for b in bars):
            raise DataValidationError(
                "update_time takes the bars of one timestamp", where="StreamingFeatures"
            )
        if self._context is None:
            self._ready()
        return self._replay(rows, compute=True)

    def update_many(self, bars: pd.DataFrame) -> dict[str, dict[str, float]]:
        """All bars of one timestamp (index series included) → each tradable symbol's
        features, breadth and sector momentum over the whole cross-section."""
        require_bar_columns(bars, "StreamingFeatures.update_many")
        if len(bars) == 0:
            return {}
        stamps = _nanoseconds(bars["timestamp"])
        if (stamps != stamps[0]).any():
            raise DataValidationError(
                f"update_many takes the bars of one timestamp, got {len(np.unique(stamps))}",
                where="StreamingFeatures.update_many",
            )
        if self._context is None:
            self._ready(pd.Series(pd.to_datetime(stamps[:1], utc=True)))
        return self._replay(_rows(bars, int(stamps[0])), compute=True)

    def _replay(
        self, rows: list[tuple[str, int, float, float, float, float, float]], *, compute: bool
    ) -> dict[str, dict[str, float]]:
        """Bars of one timestamp: index series first, then the tradable symbols."""
        context = self._context
        assert context is not None
        self._flush_index(rows[0][1])
        rows = sorted(rows, key=lambda row: (row[0] not in MARKET_CONTEXT_SYMBOLS, row[0]))
        done: list[tuple[str, _Symbol, int, dict[str, float]]] = []
        for symbol, stamp, *values in rows:
            if symbol in MARKET_CONTEXT_SYMBOLS:
                context.update(symbol, stamp, *values)
                if symbol in CONTEXT_ONLY_SYMBOLS:
                    continue
            state, technical = self._technicals(symbol, stamp, *values)
            done.append((symbol, state, stamp, technical))
        if not compute:
            for _, state, stamp, technical in done:
                self._beta(state, stamp, technical)
            return {}
        return {symbol: self._row(symbol, state, stamp, technical)
                for symbol, state, stamp, technical in done}

    # --- parts -----------------------------------------------------------------------------
    def _technicals(
        self, symbol: str, timestamp_ns: int, open_: float, high: float, low: float,
        close: float, volume: float,
    ) -> tuple[_Symbol, dict[str, float]]:
        if self._context is None:
            self._ready()
        if self._pending_at < len(self._pending):
            self._flush_index(timestamp_ns)
        state = self._symbols.get(symbol)
        if state is None:
            assert self.bars_per_year is not None
            state = self._symbols[symbol] = _Symbol(symbol, self.bars_per_year)
        if timestamp_ns <= state.last_ns:
            raise DataValidationError(
                f"bar at {pd.Timestamp(timestamp_ns, tz='UTC').isoformat()} is not newer than "
                f"the latest bar {pd.Timestamp(state.last_ns, tz='UTC').isoformat()} of {symbol}",
                where="StreamingFeatures.update",
            )
        before = (
            pickle.dumps((state.technicals, state.beta), protocol=5)
            if self._undo is not None else b""
        )
        previous_ns, state.last_ns = state.last_ns, timestamp_ns
        technical = state.technicals.update(open_, high, low, close, volume)
        self._cross_section(timestamp_ns).add(symbol, state.sector, technical)
        if self._undo is not None:
            self._undo[symbol] = (before, previous_ns, timestamp_ns, technical)
        return state, technical

    # --- news and corrections (live) ------------------------------------------------------
    def news_live(self) -> None:
        """A news stream is connected: the sentiment columns count its headlines."""
        self._news.go_live()

    def add_news(self, symbol: str, timestamp_ns: int, headline: str) -> float:
        """One headline as it arrives; it counts for decisions at or after its time."""
        return self._news.add(symbol, timestamp_ns, headline)

    def correct_bar(
        self, symbol: str, timestamp_ns: int, open_: float, high: float, low: float,
        close: float, volume: float,
    ) -> dict[str, float] | None:
        """Replace the symbol's LATEST bar with revised values (Alpaca's `updatedBars`)
        and return its recomputed features; None when that bar is not the latest one, or
        corrections were not asked for at construction (the state cannot go back further)."""
        undo = self._undo.get(symbol) if self._undo is not None else None
        state = self._symbols.get(symbol)
        if undo is None or state is None or undo[2] != timestamp_ns:
            return None
        if symbol in MARKET_CONTEXT_SYMBOLS:
            return None  # the market context has no undo: an index bar stays as sent
        before, previous_ns, _, old = undo
        found = self._cross.get(timestamp_ns)
        if found is not None:
            found.add(symbol, state.sector, old, sign=-1.0)
        state.technicals, state.beta = pickle.loads(before)
        state.last_ns = previous_ns
        state, technical = self._technicals(symbol, timestamp_ns, open_, high, low, close,
                                            volume)
        return self._row(symbol, state, timestamp_ns, technical)

    def _flush_index(self, timestamp_ns: int) -> None:
        """Index bars given up front, up to and including `timestamp_ns`."""
        context = self._context
        assert context is not None
        pending = self._pending
        while self._pending_at < len(pending) and pending[self._pending_at][1] <= timestamp_ns:
            context.update(*pending[self._pending_at])
            self._pending_at += 1

    def _cross_section(self, timestamp_ns: int) -> CrossSection:
        found = self._cross.get(timestamp_ns)
        if found is None:
            found = self._cross[timestamp_ns] = CrossSection(timestamp_ns)
            while len(self._cross) > _CROSS_SECTIONS_KEPT:
                self._cross.popitem(last=False)
        return found

    def _beta(
        self, state: _Symbol, timestamp_ns: int, technical: dict[str, float]
    ) -> tuple[dict[str, float] | None, float, float]:
        context = self._context
        assert context is not None
        index = context.index_features(timestamp_ns)
        market_return = index["mkt_return_1"] if index is not None else NAN
        beta, correlation = state.beta.update(technical["return_1"], market_return)
        return index, beta, correlation

    def _row(
        self, symbol: str, state: _Symbol, timestamp_ns: int, technical: dict[str, float]
    ) -> dict[str, float]:
        clock = self._clock
        assert clock is not None
        index, beta, correlation = self._beta(state, timestamp_ns, technical)
        row = dict(technical)
        if index is None:
            row.update(dict.fromkeys(_INDEX_COLUMNS, NAN))
        else:
            row.update(index)
        return_20 = technical["return_20"]
        row.update(self._cross_section(timestamp_ns).features(state.sector, return_20))
        row["mkt_relative_strength_20"] = return_20 - row["mkt_return_20"]
        row["sector_id"] = float(state.sector)
        row["beta_60"] = beta
        row["corr_60"] = correlation
        decided = clock.decision_ns(timestamp_ns)
        row.update(self._news.features(symbol, decided))
        row.update(self._earnings.features(symbol, decided))
        row.update(clock.features(timestamp_ns))
        return {name: row[name] for name in BAR_FEATURES}
