"""Incremental features for live trading: the newest bar's features without recomputing
the whole history.

Each symbol keeps a bounded trailing window of bars (and the index its own); a new bar
is appended, the window trimmed, and the batch code runs on the window only, so live and
batch share one implementation. Cross-sectional features (breadth, sector momentum) come
from the latest technical row of every tracked symbol at the same timestamp: feed all
symbols of a timestamp with `update_many` to get exactly the batch values.

Why a window equals the batch result: TA-Lib's recursive indicators (EMA, Wilder
smoothing) start from a seed, and a seed's influence decays geometrically; for EMA-200
by (199/201) per bar. With the default window of 2,600 bars the residual of the seed
is below 1e-10 relative, so incremental and batch agree to 1e-9. A shorter `window`
trades accuracy for speed: relative error at most about 0.5 x (199/201)^(window - 200)
on the 200-bar EMA features (1e-6 at 1,500 bars), far less on everything else. When the
history is shorter than the window, nothing is trimmed and the values are identical."""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.bars import BarInput, as_bar_frame
from core.errors import DataValidationError
from core.symbols import MARKET_CONTEXT_SYMBOLS
from core.types import BAR_COLUMNS
from features.catalogue import BAR_FEATURES
from features.compute import compute_feature_set
from features.data_quality import FeatureWarning
from features.market import _breadth
from features.sectors import sector_ids
from features.technical import sort_bars

DEFAULT_WINDOW = 2_600
MIN_WINDOW = 260  # longest lookback (200) + warm-up for the 60-bar beta and ADX
BREADTH_COLUMNS = ("mkt_advance_decline", "mkt_pct_above_ema_50", "mkt_pct_new_high_20")
SECTOR_COLUMNS = ("sector_momentum_20", "sector_relative_20")



class IncrementalFeatures:
    """Per-symbol trailing windows and the latest cross-sectional state."""

    def __init__(
        self,
        *,
        window: int = DEFAULT_WINDOW,
        index_bars: pd.DataFrame | None = None,
        news: pd.DataFrame | None = None,
        earnings: pd.DataFrame | None = None,
        calendar: str = "XNYS",
        bars_per_year: float | None = None,
    ) -> None:
        if window < MIN_WINDOW:
            raise DataValidationError(
                f"window {window} is shorter than the {MIN_WINDOW} bars the catalogue needs",
                where="IncrementalFeatures",
            )
        self.window = window
        self.news = news
        self.earnings = earnings
        self.calendar = calendar
        self.bars_per_year = bars_per_year
        self._bars: dict[str, pd.DataFrame] = {}
        self._index: pd.DataFrame | None = None
        self._latest: dict[str, pd.Series] = {}
        self.warnings: dict[str, FeatureWarning] = {}
        if index_bars is not None:
            self.update_index(index_bars)

    # --- state -----------------------------------------------------------------------
    def _append(self, current: pd.DataFrame | None, new: pd.DataFrame) -> pd.DataFrame:
        if current is None or current.empty:
            merged = new
        else:
            last = current["timestamp"].iloc[-1]
            if (new["timestamp"] < last).any():
                raise DataValidationError(
                    f"bar at {new['timestamp'].min().isoformat()} is older than the latest "
                    f"kept bar {last.isoformat()} for {new['symbol'].iloc[0]}",
                    where="IncrementalFeatures.update",
                )
            # A bar repeated at the latest timestamp is a correction: it replaces the old one.
            kept = current.loc[current["timestamp"] < new["timestamp"].min()]
            merged = pd.concat([kept, new], ignore_index=True)
        return merged.tail(self.window).reset_index(drop=True)

    def seed(self, bars: pd.DataFrame) -> None:
        """Load history (any number of symbols); only the trailing window is kept. Index
        series (SPY, SPX, COMP, VIX) in the frame also become the index window."""
        frame = sort_bars(bars, "IncrementalFeatures.seed")
        index_rows = frame["symbol"].isin(MARKET_CONTEXT_SYMBOLS)
        if index_rows.any() and self._index is None:
            self.update_index(frame.loc[index_rows])
        for symbol, group in frame.groupby("symbol", sort=False):
            self._bars[str(symbol)] = self._append(
                self._bars.get(str(symbol)), group.reset_index(drop=True)
            )

    def update_index(self, bars: pd.DataFrame) -> None:
        """Append index bars (SPY/SPX/COMP/VIX); each index symbol keeps its window."""
        frame = sort_bars(bars, "IncrementalFeatures.update_index")
        parts = []
        for symbol, group in frame.groupby("symbol", sort=False):
            current = None
            if self._index is not None:
                current = self._index.loc[self._index["symbol"] == symbol].reset_index(drop=True)
            parts.append(self._append(current, group.reset_index(drop=True)))
        if self._index is not None:
            untouched = self._index.loc[~self._index["symbol"].isin(frame["symbol"].unique())]
            parts.append(untouched)
        self._index = pd.concat(parts, ignore_index=True).sort_values(
            ["symbol", "timestamp"], kind="stable"
        ).reset_index(drop=True)

    def history(self, symbol: str) -> pd.DataFrame:
        """The trailing window kept for a symbol (a copy)."""
        return self._bars.get(symbol, pd.DataFrame(columns=list(BAR_COLUMNS))).copy()

    # --- features ----------------------------------------------------------------------
    def _row_for(self, symbol: str) -> pd.Series:
        result = compute_feature_set(
            self._bars[symbol],
            self._index if self._index is not None else pd.DataFrame(columns=list(BAR_COLUMNS)),
            news=self.news,
            earnings=self.earnings,
            calendar=self.calendar,
            bars_per_year=self.bars_per_year,
        )
        for item in result.warnings:
            self.warnings[item.symbol] = item
        return result.frame.iloc[-1]

    def _cross_section(self, row: pd.Series) -> pd.Series:
        """Breadth and sector momentum over the tracked symbols' latest rows at this time."""
        peers = [r for r in self._latest.values() if r["timestamp"] == row["timestamp"]]
        table = pd.DataFrame(peers).reset_index(drop=True)
        for column in ("return_1", "ema_50_dist", "high_20_dist", "return_20"):
            table[column] = table[column].astype(np.float64)
        breadth = _breadth(table)
        out = row.copy()
        for column in BREADTH_COLUMNS:
            out[column] = float(breadth[column].iloc[0]) if len(breadth) else np.nan
        codes = sector_ids(table["symbol"])
        own = int(sector_ids(pd.Series([row["symbol"]]))[0])
        if own == -1:
            out["sector_momentum_20"] = np.nan
        else:
            out["sector_momentum_20"] = float(table.loc[codes == own, "return_20"].mean())
        out["sector_relative_20"] = row["return_20"] - out["sector_momentum_20"]
        return out

    def _features(self, row: pd.Series) -> dict[str, float]:
        return {name: float(row[name]) for name in BAR_FEATURES}

    def update(self, bars: BarInput) -> dict[str, float]:
        """Append the newest bar(s) of ONE symbol and return the features of its newest
        bar. Cross-sectional features cover the symbols already updated at this time."""
        frame = sort_bars(as_bar_frame(bars), "IncrementalFeatures.update")
        symbols = frame["symbol"].unique()
        if len(symbols) != 1:
            raise DataValidationError(
                f"update takes bars of one symbol, got {', '.join(map(str, symbols))}; "
                "use update_many for a cross-section",
                where="IncrementalFeatures.update",
            )
        symbol = str(symbols[0])
        self._bars[symbol] = self._append(self._bars.get(symbol), frame)
        self._latest[symbol] = self._row_for(symbol)
        return self._features(self._cross_section(self._latest[symbol]))

    def update_many(self, bars: pd.DataFrame) -> dict[str, dict[str, float]]:
        """Append the newest bars of several symbols (one timestamp) and return each
        symbol's features; breadth and sector momentum then equal the batch values for
        the same universe."""
        frame = sort_bars(bars, "IncrementalFeatures.update_many")
        symbols = [str(s) for s in frame["symbol"].unique()]
        for symbol in symbols:
            rows = frame.loc[frame["symbol"] == symbol].reset_index(drop=True)
            self._bars[symbol] = self._append(self._bars.get(symbol), rows)
            self._latest[symbol] = self._row_for(symbol)
        return {s: self._features(self._cross_section(self._latest[s])) for s in symbols}
