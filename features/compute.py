"""The batch feature computation: a bar frame in, `symbol, timestamp` + every bar-derived
feature (technical, market, sentiment, temporal) out. Pure: no I/O, the inputs are not
modified, and a value at bar t depends only on data at or before t.

The market index comes from `index_bars`, or, when that is None, from the index series
found in `bars` itself (SPY, SPX, COMP; VIX for the volatility level). SPX, COMP and VIX
rows are context only and are dropped from the output; SPY is also a tradable ETF and
keeps its rows. Data problems never raise: they give NaN and one warning per symbol,
returned in `FeatureSet.warnings` and issued through `warnings.warn`."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from core.symbols import CONTEXT_ONLY_SYMBOLS, MARKET_CONTEXT_SYMBOLS
from features.catalogue import BAR_FEATURES
from features.data_quality import FeatureWarning, issue, merge_warnings
from features.market import index_table, market_features
from features.sentiment import sentiment_features
from features.technical import (
    TRADING_DAYS_PER_YEAR,
    periods_per_year,
    require_bar_columns,
    technical_features,
)
from features.temporal import decision_times, temporal_features


@dataclass(frozen=True)
class FeatureSet:
    frame: pd.DataFrame
    warnings: list[FeatureWarning] = field(default_factory=list)


def split_index(bars: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """(tradable bars, index bars found in the same frame or None)."""
    symbols = bars["symbol"].astype(str)
    index_rows = symbols.isin(MARKET_CONTEXT_SYMBOLS)
    if not index_rows.any():
        return bars, None
    tradable = bars.loc[~symbols.isin(CONTEXT_ONLY_SYMBOLS)]
    return tradable, bars.loc[index_rows]


def compute_feature_set(
    bars: pd.DataFrame,
    index_bars: pd.DataFrame | None = None,
    *,
    news: pd.DataFrame | None = None,
    earnings: pd.DataFrame | None = None,
    calendar: str = "XNYS",
    bars_per_year: float | None = None,
) -> FeatureSet:
    """Every bar-derived feature and the data-quality findings (not issued)."""
    require_bar_columns(bars, "features.compute")
    if index_bars is None:
        bars, index_bars = split_index(bars)
    yearly = bars_per_year if bars_per_year is not None else bar_frequency(bars)
    return complete_feature_set(technical_feature_set(bars, yearly), index_bars, news=news,
                                earnings=earnings, calendar=calendar, bars_per_year=yearly)


def bar_frequency(bars: pd.DataFrame) -> float:
    """Bars per year, from the spacing of the bars' timestamps."""
    timestamps = bars["timestamp"]
    if not isinstance(timestamps.dtype, pd.DatetimeTZDtype):  # already a time: no parsing
        timestamps = pd.to_datetime(timestamps, utc=True)
    return periods_per_year(timestamps)


def technical_feature_set(bars: pd.DataFrame, bars_per_year: float) -> FeatureSet:
    """The technical group alone. Each symbol's values depend on its own bars only, so
    shards of the symbols can be computed apart (in other processes) and concatenated
    in symbol order before `complete_feature_set`."""
    require_bar_columns(bars, "features.compute")
    technical, found = technical_features(bars, bars_per_year=bars_per_year)
    return FeatureSet(technical, found)


def complete_feature_set(
    technical: FeatureSet,
    index_bars: pd.DataFrame | None,
    *,
    news: pd.DataFrame | None = None,
    earnings: pd.DataFrame | None = None,
    calendar: str = "XNYS",
    bars_per_year: float,
) -> FeatureSet:
    """The rest on top of the technical group of the WHOLE universe: market features
    (breadth and sector momentum are cross-sectional), sentiment and temporal ones."""
    if index_bars is not None:
        require_bar_columns(index_bars, "features.compute index_bars")
    frame = technical.frame
    daily = bars_per_year <= TRADING_DAYS_PER_YEAR
    market, market_found = market_features(
        frame, index_bars, daily=daily, bars_per_year=bars_per_year
    )
    timestamps = frame["timestamp"]
    decided = decision_times(timestamps, daily=daily, calendar=calendar)
    sentiment = sentiment_features(frame["symbol"], decided, news=news, earnings=earnings)
    temporal = temporal_features(timestamps, daily=daily, calendar=calendar)
    columns: dict[str, object] = {"symbol": frame["symbol"], "timestamp": timestamps}
    for part in (frame, market, sentiment, temporal):
        for name in part.columns:
            if name not in columns:
                columns[name] = part[name].to_numpy(dtype=np.float64)
    result = pd.DataFrame({name: columns[name] for name in ("symbol", "timestamp",
                                                            *BAR_FEATURES)})
    return FeatureSet(result, merge_warnings([*technical.warnings, *market_found]))


def compute_features(
    bars: pd.DataFrame,
    index_bars: pd.DataFrame | None = None,
    *,
    news: pd.DataFrame | None = None,
    earnings: pd.DataFrame | None = None,
    calendar: str = "XNYS",
    bars_per_year: float | None = None,
) -> pd.DataFrame:
    """`symbol, timestamp` + every bar-derived feature, sorted by (symbol, timestamp).
    Data problems are issued as `FeatureDataWarning`s (one per symbol); use
    `compute_feature_set` to get them as data."""
    result = compute_feature_set(
        bars,
        index_bars,
        news=news,
        earnings=earnings,
        calendar=calendar,
        bars_per_year=bars_per_year,
    )
    issue(result.warnings)
    return result.frame


def index_features(
    index_bars: pd.DataFrame, *, bars_per_year: float = TRADING_DAYS_PER_YEAR,
    daily: bool = True,
) -> pd.DataFrame:
    """The index's market features on its own (daily) timeline, over its whole history:
    `timestamp` (the session day, UTC midnight) + the index columns of `features.market`
    (the same values `compute_features` joins to every symbol's bar of that day). Empty
    without an index series. The regime model learns from these rows. `daily=False`:
    intraday index bars, one row per bar (as `compute_features` joins them)."""
    table, _ = index_table(index_bars, daily=daily, bars_per_year=bars_per_year)
    if table is None:
        return pd.DataFrame({"timestamp": pd.Series(dtype="datetime64[ns, UTC]")})
    return table.rename(columns={"key": "timestamp"}).reset_index(drop=True)
