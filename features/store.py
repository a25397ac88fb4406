"""Tradewind's feature store: the offline store, the online store and the trade
collection of one data directory, behind one object. Each part is its own module with a
small interface; the back ends are picked by type strings in the settings
(`feature_store.offline_store.type`: `duckdb` | `feast`; `feature_store.online_store.type`:
`sqlite` | `redis` | `memory`; `feature_store.registry.type`: `file` | `sql`), as Feast
picks its own.

- `features.feast_repo`: the Feast repository (config, registry, objects) under
  `<data_dir>/feast/`; nothing of it lives in the source tree;
- `features.offline_store`: the offline feature files, point-in-time training sets and
  materialization;
- `features.online_store`: each symbol's latest values (the online-feature reader);
- `features.trade_collection`: closed trades with entry features and outcome labels.

Timestamps: `timestamp` is the bar's own stamp; `event_timestamp` is when the features
became known (the session close for daily bars, the bar time for intraday bars). Joins
for events use the availability time, so an event never sees a later value."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow.parquet as pq

from core.errors import ConfigError, DataValidationError
from core.settings import FeatureStoreSettings, PathSettings
from core.utc import utc_datetime, utc_now
from features.feast_repo import FeastRepo
from features.offline_store import (
    OFFLINE_STORES,
    SCHEMA_FILE,
    AsOf,
    OfflineFiles,
    OfflineStore,
    bar_schema,
    conform,
)
from features.online_redis import RedisOnlineStore
from features.online_store import FeastOnlineStore, MemoryOnlineStore, OnlineStore
from features.trade_collection import TradeCollection

ONLINE_STORES: dict[str, type[OnlineStore]] = {
    "sqlite": FeastOnlineStore,
    "redis": RedisOnlineStore,
    "memory": MemoryOnlineStore,
}

if TYPE_CHECKING:
    import feast

    from features.repo.definitions import RepoObjects


def _backend(kind: str, choices: dict[str, Any], part: str) -> Any:
    try:
        return choices[kind]
    except KeyError:
        raise ConfigError(
            f"unknown {part} type {kind!r}; choose one of {', '.join(choices)}",
            where="feature_store",
        ) from None


class FeatureStore:
    """The offline store, the online store and the trade collection of a data directory."""

    def __init__(self, paths: PathSettings, config: FeatureStoreSettings | None = None) -> None:
        self.paths = paths
        self.config = config or FeatureStoreSettings()
        self.root = (paths.data_dir / "feast").resolve()
        self.files = OfflineFiles(self.root)
        online_type = _backend(self.config.online_store.type, ONLINE_STORES, "online store")
        self.repo = FeastRepo(
            self.root, self.files.bar_dir, self.files.trade_dir, prepare=self.files.ensure_layout,
            online=self.config.online_store, registry=self.config.registry,
        )
        offline_type = _backend(self.config.offline_store.type, OFFLINE_STORES, "offline store")
        self.offline: OfflineStore = offline_type(self.files, self.repo)
        self.online: OnlineStore = online_type(self.repo)
        self.trades = TradeCollection(self.files, self)

    @property
    def bar_dir(self) -> Path:
        return self.files.bar_dir

    @property
    def trade_dir(self) -> Path:
        return self.files.trade_dir

    # --- Feast ---------------------------------------------------------------------------
    def render_config(self) -> Path:
        return self.repo.render_config()

    def objects(self) -> RepoObjects:
        return self.repo.objects()

    def feast(self) -> feast.FeatureStore:
        """The Feast store for this data directory (created on first use)."""
        return self.repo.store()

    def apply(self) -> None:
        """Register the entity, sources, push sources and feature views in the registry."""
        self.repo.apply()

    # --- offline -------------------------------------------------------------------------
    def write_features(
        self, frame: pd.DataFrame, *, daily: bool | None = None, overwrite_missing: bool = False
    ) -> int:
        """Upsert computed features into the offline files (`OfflineFiles.write_features`):
        a stored value is not replaced by a missing one unless `overwrite_missing`."""
        return self.files.write_features(frame, daily=daily, overwrite_missing=overwrite_missing)

    def read_features(self, symbols: list[str] | None = None) -> pd.DataFrame:
        """The offline feature rows (all symbols, or the given ones)."""
        return self.files.read_features(symbols)

    def training_set(self, events: pd.DataFrame, *, as_of: AsOf = "event") -> pd.DataFrame:
        """Events with every bar feature as known at each (`OfflineStore.training_set`)."""
        for column in ("symbol", "timestamp"):
            if column not in events.columns:
                raise DataValidationError(
                    f"events need a '{column}' column", where="FeatureStore.training_set"
                )
        self.files.ensure_layout()
        return self.offline.training_set(events, as_of=as_of)

    # --- online --------------------------------------------------------------------------
    def materialize(self, end: datetime | None = None) -> dict[str, int]:
        """Load each symbol's latest values up to `end` (default now; naive means UTC)
        into the online store; returns rows written per feature view."""
        self.files.ensure_layout()
        if self.online.is_feast_store:
            self.repo.store()  # the online store's config and registry exist first
        return self.offline.materialize(self.online, utc_datetime(end) if end else utc_now())

    def push(self, frame: pd.DataFrame, *, offline: bool = True, daily: bool | None = None) -> int:
        """Fresh values from the engine: online and, when `offline`, into the offline files
        (idempotent). A single row cannot show its bar spacing: pass `daily=False` for
        intraday bars."""
        # The engine's fresh row is the newest truth for its bar, gaps included.
        written = (
            self.files.write_features(frame, daily=daily, overwrite_missing=True) if offline else 0
        )
        rows = self.files.with_availability(frame, daily)
        self.online.push(conform(rows, bar_schema()).to_pandas())
        return written or len(rows)

    def online_features(self, symbol: str) -> dict[str, float]:
        """The latest bar and market features of a symbol, in one online read."""
        return self.online.online_features(symbol)

    def online_row(self, symbol: str) -> tuple[dict[str, float], datetime | None]:
        """`online_features` and when the symbol's bar-feature row became known."""
        return self.online.online_row(symbol)

    # --- trade collection ----------------------------------------------------------------
    def write_trades(self, trades: pd.DataFrame, bars: pd.DataFrame | None = None) -> int:
        """Store closed trades (`TradeCollection.write`); idempotent on trade_id."""
        return self.trades.write(trades, bars)

    def read_trades(self) -> pd.DataFrame:
        """Every stored trade (entry features + labels), oldest exit first."""
        return self.trades.read()

    def summary(self) -> dict[str, Any]:
        """Counts for the command line."""
        files = [p for p in self.files.bar_dir.glob("*.parquet") if p.name != SCHEMA_FILE]
        rows = sum(pq.ParquetFile(p).metadata.num_rows for p in files)
        return {"symbols": len(files), "feature_rows": rows, "trades": len(self.read_trades())}
