"""The training frame: signal events + the features known at each event's signal bar
(point-in-time) + the labels of what happened after, and the per-date market frame the
regime model learns from. Pure: frames in, `TrainingData` out. `add_trade_events` adds the
closed trades the engine collected as events of their own.

Signal models also see the signal's strategy as one-hot columns (`strategy_<name>`,
`models.schema.strategy_indicators`): one pooled model over every strategy, which the
research found better than a model per strategy. The regime model learns from the index's
own history (`index_features`: one row per index date, as far back as the index goes),
on `REGIME_FEATURES`.

Point in time: an event at bar t gets the feature row of (symbol, t), which
`features.compute` builds from bars ≤ t only; its trade is entered at bar t+1's open at
the earliest. Events whose feature row is missing are dropped (and counted)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.bars import DAILY, normalize_bars, timeframe_of
from core.errors import DataValidationError
from core.symbols import INDEX_PREFERENCE
from core.symbols import MARKET_CONTEXT_SYMBOLS as INDEX_SYMBOLS
from features.catalogue import MODEL_FEATURES, feature_names
from features.market import REGIME_INDEX_COLUMNS
from models.labels import (
    REGIME_HORIZON,
    ForwardPaths,
    TripleBarrier,
    forward_regime_measures,
    regime_measure_names,
    trade_label_names,
)
from models.labels import trade_labels as make_trade_labels
from models.schema import strategy_column, strategy_indicators

# Price-unit features differ by orders of magnitude between symbols (a $500 stock's ATR
# vs a $20 one); their scale-free twins (atr_14_pct) carry the information instead.
# The index-state features made for the regime model stay out of the signal models (the
# signal inputs the research validated).
EXCLUDED_FEATURES: frozenset[str] = frozenset({"atr_14", *REGIME_INDEX_COLUMNS})
# The regime model's causal index features: volatility level, ratio and range, returns,
# trend strength, distance to the EMAs, drawdown from the 252-bar high.
REGIME_FEATURES: tuple[str, ...] = (
    "mkt_realized_vol_5", "mkt_realized_vol_20", "mkt_realized_vol_60", "mkt_log_vol_20",
    "mkt_vol_ratio_5_60", "mkt_vol_ratio_20_60", "mkt_return_5", "mkt_return_20",
    "mkt_return_60", "mkt_trend_strength_20", "mkt_abs_trend_strength_20",
    "mkt_trend_strength_60", "mkt_ema_50_dist", "mkt_ema_200_dist", "mkt_parkinson_vol_20",
    "mkt_drawdown_252",
)
# Market features that are per symbol rather than per date (not a regime input).
PER_SYMBOL_MARKET: frozenset[str] = frozenset({"mkt_relative_strength_20"})


@dataclass(frozen=True)
class TrainingData:
    """Everything the four models train on, with its provenance."""

    events: pd.DataFrame  # one row per labelled signal; `path_row` indexes `paths`
    paths: ForwardPaths
    market: pd.DataFrame  # one row per index date with a complete regime horizon
    signal_features: list[str]
    market_features: list[str]
    barrier: TripleBarrier
    regime_horizon: int
    index_symbol: str | None
    dropped_events: int

    @property
    def labels(self) -> dict[str, str]:
        return trade_label_names(self.barrier.max_holding_bars)

    def events_from(self, start: pd.Timestamp) -> pd.DataFrame:
        """The signal events on or after `start` (an out-of-time window), renumbered."""
        return self.events[self.events["timestamp"] >= start].reset_index(drop=True)

    @property
    def window(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        stamps = pd.concat([self.events["timestamp"], self.market["timestamp"]])
        return stamps.min(), stamps.max()


def training_universe(
    bars: pd.DataFrame,
    index: pd.DataFrame,
    *,
    symbols: Sequence[str] | None = None,
    max_symbols: int | None = None,
    source: str = "the bars",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(stock bars, index bars) to train on: every stock of `bars` (index series are market
    context, not trade candidates, unless asked for by name), or exactly `symbols`; the
    first `max_symbols` of them; the index series of `index`. Both in the bar schema."""
    names = sorted(set(bars["symbol"].unique()) - INDEX_SYMBOLS)
    if symbols:
        wanted = [s.upper() for s in symbols]
        unknown = sorted(set(wanted) - set(bars["symbol"].unique()))
        if unknown:
            raise DataValidationError(f"no bars for {', '.join(unknown)} in {source}",
                                      where="train")
        names = wanted
    if max_symbols:
        names = names[:max_symbols]
    stocks = bars.loc[bars["symbol"].isin(names)]
    if stocks.empty:
        raise DataValidationError(f"no stock bars in {source}", where="train")
    return normalize_bars(stocks), normalize_bars(index.loc[index["symbol"].isin(INDEX_SYMBOLS)])


def signal_feature_columns(features: pd.DataFrame) -> list[str]:
    """Model inputs for signal-level models: the catalogue's model features present in
    the frame (position features only exist at decision time), in catalogue order."""
    return [n for n in MODEL_FEATURES if n in features.columns and n not in EXCLUDED_FEATURES]


def market_feature_columns(features: pd.DataFrame) -> list[str]:
    """The regime model's inputs present in the frame (`REGIME_FEATURES`), else (a frame
    computed before they existed) every per-date market feature."""
    regime = [n for n in REGIME_FEATURES if n in features.columns]
    if len(regime) == len(REGIME_FEATURES):
        return regime
    return [
        n for n in feature_names("market")
        if n.startswith("mkt_") and n in features.columns and n not in PER_SYMBOL_MARKET
    ]


def pick_index(index_bars: pd.DataFrame | None) -> tuple[str | None, pd.DataFrame | None]:
    """The index series regime labels come from: SPX, else SPY, else COMP."""
    if index_bars is None or index_bars.empty:
        return None, None
    present = set(index_bars["symbol"].astype(str))
    for symbol in INDEX_PREFERENCE:
        if symbol in present:
            return symbol, index_bars.loc[index_bars["symbol"] == symbol]
    return None, None


def build_training_data(
    bars: pd.DataFrame,
    features: pd.DataFrame,
    signals: pd.DataFrame,
    *,
    index_bars: pd.DataFrame | None = None,
    barrier: TripleBarrier | None = None,
    regime_horizon: int = REGIME_HORIZON,
    index_features: pd.DataFrame | None = None,
) -> TrainingData:
    """Join signals with their point-in-time features and label them. `index_features`
    (`timestamp` + market columns, one row per index date) gives the regime model the
    index's whole history; without it the market rows are the dates of `features`."""
    barrier = barrier or TripleBarrier()
    for name, frame, needed in (
        ("bars", bars, ("symbol", "timestamp", "open", "high", "low", "close")),
        ("features", features, ("symbol", "timestamp", "atr_14")),
        ("signals", signals, ("symbol", "timestamp", "side", "strategy")),
    ):
        missing = [c for c in needed if c not in frame.columns]
        if missing:
            raise DataValidationError(f"{name} lack columns {missing}", where="models.datasets")
    bar_features = signal_feature_columns(features)
    keep = ["symbol", "timestamp", "atr_14", *bar_features]
    joined = signals.merge(features[keep], on=["symbol", "timestamp"], how="inner",
                           validate="many_to_one")
    strategies = sorted(joined["strategy"].astype(str).unique())
    indicators = pd.DataFrame(
        [strategy_indicators(s, strategies) for s in joined["strategy"].astype(str)],
        columns=[strategy_column(s) for s in strategies], index=joined.index, dtype=float,
    )
    joined = pd.concat([joined, indicators], axis=1)
    signal_features = [*bar_features, *indicators.columns]
    labelled, paths = make_trade_labels(bars, joined, barrier)
    dropped = len(signals) - len(labelled)
    labelled["path_row"] = np.arange(len(labelled))
    labelled = labelled.sort_values(["timestamp", "symbol", "strategy"], kind="stable")
    labelled = labelled.reset_index(drop=True)

    index_symbol, index_series = pick_index(index_bars)
    history = features if index_features is None else index_features
    market_features = market_feature_columns(history)
    market = _market_frame(history, market_features, index_series, regime_horizon)
    return TrainingData(
        events=labelled,
        paths=paths,
        market=market,
        signal_features=signal_features,
        market_features=market_features,
        barrier=barrier,
        regime_horizon=regime_horizon,
        index_symbol=index_symbol,
        dropped_events=dropped,
    )


def _market_frame(
    features: pd.DataFrame,
    market_features: list[str],
    index_series: pd.DataFrame | None,
    horizon: int,
) -> pd.DataFrame:
    vol_name, trend_name = regime_measure_names(horizon)
    columns = ["timestamp", "label_end", *market_features, vol_name, trend_name]
    if index_series is None or not market_features:
        return pd.DataFrame({c: pd.Series(dtype=float) for c in columns})
    # Market features are the same for every symbol on a date: one row per date. Dates
    # are matched by session day (sources stamp a session at 00:00 or 04:00/05:00 UTC).
    per_date = features.groupby("timestamp", sort=True)[market_features].first().reset_index()
    measures = forward_regime_measures(index_series, horizon)
    if timeframe_of(per_date["timestamp"]) != DAILY:
        # Intraday bars: one row per index bar, matched on its own time.
        market = per_date.merge(measures, on="timestamp", how="inner")
        market = market.dropna(subset=[vol_name, trend_name]).reset_index(drop=True)
        return market[columns]
    per_date["day"] = _day(per_date["timestamp"])
    measures = measures.assign(day=_day(measures["timestamp"])).drop(columns="timestamp")
    market = per_date.merge(measures, on="day", how="inner").drop(columns="day")
    market = market.dropna(subset=[vol_name, trend_name]).reset_index(drop=True)
    return market[columns]


def _day(stamps: pd.Series) -> pd.Series:
    return pd.to_datetime(stamps, utc=True).dt.floor("D")


def add_trade_events(
    signals: pd.DataFrame, trades: pd.DataFrame, bars: pd.DataFrame
) -> pd.DataFrame:
    """The signals plus one event per closed trade of the feature store: its signal bar is
    the last bar before the entry fill. Trades are relabelled with the same triple barrier
    on the bars (one label definition for every row); a trade whose signal is already
    among the strategy signals is not counted twice."""
    known = trades.loc[trades["symbol"].isin(set(bars["symbol"]))]
    if known.empty:
        return signals
    entries = pd.DataFrame({
        "symbol": known["symbol"].astype(str).to_numpy(),
        "entry_time": pd.to_datetime(known["entry_time"], utc=True).to_numpy(),
        "side": known["side"].astype(str).str.lower().to_numpy(),
        "strategy": known["strategy"].astype(str).to_numpy(),
    }).sort_values("entry_time")
    stamps = bars[["symbol", "timestamp"]].sort_values("timestamp")
    located = pd.merge_asof(
        entries, stamps.rename(columns={"timestamp": "signal_time"}),
        left_on="entry_time", right_on="signal_time", by="symbol",
        allow_exact_matches=False, direction="backward",
    ).dropna(subset=["signal_time"])
    events = pd.DataFrame({
        "symbol": located["symbol"], "timestamp": located["signal_time"],
        "side": located["side"], "strategy": located["strategy"],
        "price": float("nan"), "reason": "closed trade",
    })
    combined = pd.concat([signals, events], ignore_index=True)
    return combined.drop_duplicates(subset=["symbol", "timestamp", "side", "strategy"])
