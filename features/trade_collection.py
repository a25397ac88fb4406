"""The trade collection: closed trades with the features they had at entry and their
outcome labels (`features.outcomes`), kept in `offline/trades/trades.parquet` and
upserted on `trade_id` (a rewritten trade replaces the stored one). Entry features the
caller did not send are looked up point-in-time at the entry time, through the offline
store's join; model context the caller sends (variant, win probability, decision id,
model versions) is kept as it is."""

from __future__ import annotations

from typing import Protocol

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from core.errors import DataValidationError
from features.catalogue import BAR_FEATURES
from features.offline_store import (
    EVENT_TIMESTAMP,
    SCHEMA_FILE,
    TRADE_FILE,
    OfflineFiles,
    atomic_write,
    conform,
    trade_schema,
)
from features.outcomes import OUTCOME_COLUMNS, check_trades, trade_outcomes


class PointInTimeLookup(Protocol):
    def training_set(self, events: pd.DataFrame) -> pd.DataFrame: ...


class TradeCollection:
    def __init__(self, files: OfflineFiles, lookup: PointInTimeLookup) -> None:
        self.files = files
        self.lookup = lookup

    def write(self, trades: pd.DataFrame, bars: pd.DataFrame | None = None) -> int:
        """Store closed trades (see the module); returns the number of trades not stored
        before. `bars` lets the labels use the bars each trade lived through."""
        check_trades(trades)
        if trades["trade_id"].astype(str).duplicated().any():
            raise DataValidationError(
                "trade_id values repeat inside the frame", where="FeatureStore.write_trades"
            )
        self.files.ensure_layout()
        rows = trades.reset_index(drop=True).copy()
        rows["side"] = rows["side"].astype(str).str.lower().str.replace("side.", "", regex=False)
        missing_features = [c for c in BAR_FEATURES if c not in rows.columns]
        if missing_features:
            lookup = self.lookup.training_set(
                pd.DataFrame({"symbol": rows["symbol"], "timestamp": rows["entry_time"]})
            )
            for column in missing_features:
                rows[column] = lookup[column].to_numpy()
        outcomes = trade_outcomes(rows, bars)
        for column in OUTCOME_COLUMNS:
            rows[column] = outcomes[column].to_numpy()
        rows[EVENT_TIMESTAMP] = pd.to_datetime(rows["exit_time"], utc=True)
        # The schema's columns get fixed types; any other column the caller sends (model
        # context such as variant, win_probability, decision_id) is kept as it is.
        fixed = conform(rows, trade_schema()).to_pandas()
        extras = [c for c in rows.columns if c not in fixed.columns]
        new = pd.concat([fixed, rows[extras].reset_index(drop=True)], axis=1)
        for column in extras:
            if new[column].dtype == object:
                new[column] = new[column].map(lambda v: None if v is None else str(v))
        path = self.files.trade_dir / TRADE_FILE
        new_count = len(new)
        if path.exists():
            old = pq.read_table(path).to_pandas()
            already = old["trade_id"].isin(new["trade_id"])
            new_count -= int(already.sum())
            kept = old.loc[~already]
            new = pd.concat([kept, new], ignore_index=True) if len(kept) else new
        new = new.sort_values(EVENT_TIMESTAMP, kind="stable").reset_index(drop=True)
        atomic_write(pa.Table.from_pandas(new, preserve_index=False), path)
        marker = self.files.trade_dir / SCHEMA_FILE
        if marker.exists():  # readers of the folder now see one schema only
            marker.unlink()
        return new_count

    def read(self) -> pd.DataFrame:
        """Every stored trade (entry features + labels), oldest exit first."""
        path = self.files.trade_dir / TRADE_FILE
        if not path.exists():
            return trade_schema().empty_table().to_pandas()
        return pq.read_table(path).to_pandas()
