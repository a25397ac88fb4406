"""Feast objects of the Tradewind feature store.

- entity `symbol`;
- `bar_features` (technical, sentiment, temporal) and `market_context` (market group),
  both from the offline bar-feature files; `trade_outcomes` from the trade collection;
- push sources `bar_features_push` and `trade_outcomes_push` so the engine can write
  fresh values (online through Feast, offline through the store's idempotent writer).

Event timestamps are AVAILABILITY times (`event_timestamp`): the bar's close for daily
bars, the bar's time for intraday bars, the exit time for trades, so a point-in-time join
never hands out a value before it could have been known."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from feast import Entity, FeatureView, Field, FileSource, PushSource
from feast.types import Float64, String
from feast.value_type import ValueType

from features.catalogue import feature_names

BAR_VIEW = "bar_features"
MARKET_VIEW = "market_context"
TRADE_VIEW = "trade_outcomes"
BAR_PUSH = "bar_features_push"
TRADE_PUSH = "trade_outcomes_push"
EVENT_TIMESTAMP = "event_timestamp"
TRADE_OUTCOME_COLUMNS: tuple[str, ...] = (
    "win",
    "return_pct",
    "holding_seconds",
    "mfe_price",
    "mae_price",
    "mfe_atr",
    "mae_atr",
    "max_drawdown_pct",
)
BAR_VIEW_FEATURES: tuple[str, ...] = tuple(
    feature_names("technical") + feature_names("sentiment") + feature_names("temporal")
)
MARKET_VIEW_FEATURES: tuple[str, ...] = tuple(feature_names("market"))


def feature_refs(names: tuple[str, ...] | list[str]) -> list[str]:
    """Feast references (`view:feature`) of bar features: market features live in the
    market view, every other bar feature in the bar view."""
    market = set(MARKET_VIEW_FEATURES)
    return [f"{MARKET_VIEW if name in market else BAR_VIEW}:{name}" for name in names]


@dataclass(frozen=True)
class RepoObjects:
    symbol: Entity
    bar_source: FileSource
    trade_source: FileSource
    bar_push: PushSource
    trade_push: PushSource
    bar_view: FeatureView
    market_view: FeatureView
    trade_view: FeatureView

    def all(self) -> list[object]:
        return [
            self.symbol,
            self.bar_source,
            self.trade_source,
            self.bar_push,
            self.trade_push,
            self.bar_view,
            self.market_view,
            self.trade_view,
        ]

    @property
    def views(self) -> list[FeatureView]:
        return [self.bar_view, self.market_view, self.trade_view]


def build(bar_dir: Path, trade_dir: Path) -> RepoObjects:
    """The repository's objects, with offline files in the given directories."""
    symbol = Entity(
        name="symbol",
        join_keys=["symbol"],
        value_type=ValueType.STRING,
        description="Ticker of a US equity or ETF",
    )
    bar_source = FileSource(
        name="bar_features_source",
        path=str(bar_dir),
        timestamp_field=EVENT_TIMESTAMP,
        description="Bar-derived features, one parquet file per symbol",
    )
    trade_source = FileSource(
        name="trade_outcomes_source",
        path=str(trade_dir),
        timestamp_field=EVENT_TIMESTAMP,
        description="Closed trades: entry features and outcome labels",
    )
    bar_push = PushSource(name=BAR_PUSH, batch_source=bar_source)
    trade_push = PushSource(name=TRADE_PUSH, batch_source=trade_source)
    bar_view = FeatureView(
        name=BAR_VIEW,
        entities=[symbol],
        ttl=timedelta(0),
        schema=[Field(name=n, dtype=Float64) for n in BAR_VIEW_FEATURES],
        source=bar_push,
        online=True,
        description="Technical, sentiment and temporal features per symbol and bar",
    )
    market_view = FeatureView(
        name=MARKET_VIEW,
        entities=[symbol],
        ttl=timedelta(0),
        schema=[Field(name=n, dtype=Float64) for n in MARKET_VIEW_FEATURES],
        source=bar_push,
        online=True,
        description="Index trend, volatility, breadth, sector, beta and correlation",
    )
    trade_view = FeatureView(
        name=TRADE_VIEW,
        entities=[symbol],
        ttl=timedelta(0),
        schema=[Field(name="trade_id", dtype=String)]
        + [Field(name=n, dtype=Float64) for n in TRADE_OUTCOME_COLUMNS],
        source=trade_push,
        online=True,
        description="Outcome of the symbol's latest closed trade",
    )
    return RepoObjects(
        symbol, bar_source, trade_source, bar_push, trade_push, bar_view, market_view, trade_view
    )
