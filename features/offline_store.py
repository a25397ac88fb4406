"""The offline feature store: the feature files and what reads them.

`OfflineFiles` owns the files under `<data_dir>/feast/offline/`: `bar_features/<SYMBOL>.parquet`
(one per symbol, upserted atomically on (symbol, timestamp)) and `trades/trades.parquet`
(written by the trade collection). Each bar row carries `event_timestamp`, when its
features became known (the session close for daily bars, the bar time for intraday bars).

`OfflineStore` is what reads them for the two jobs Feast calls offline: point-in-time
training sets and materialization into the online store. Its back end is a type string
(`settings.feature_store.offline_store.type`):
- `duckdb` (default): ASOF JOIN over the parquet files for training sets, and the latest
  row per symbol for materialization. Two orders of magnitude faster than Feast's file
  store at 100k events (benchmarks/bench_features_training_set.py) and seconds instead of
  minutes to materialize the S&P 500 set (benchmarks/bench_features_online.py);
- `feast`: Feast's own file offline store (`get_historical_features`, `materialize`),
  which reads every row through dask; same answers (a test checks it)."""

from __future__ import annotations

import os
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Literal

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from core.errors import ConfigError, DataValidationError
from core.utc import utc_timestamp
from features.catalogue import BAR_FEATURES, MODEL_FEATURES
from features.feast_repo import FeastRepo
from features.online_store import OnlineStore
from features.outcomes import OUTCOME_COLUMNS
from features.technical import periods_per_year
from features.temporal import decision_times

EVENT_TIMESTAMP = "event_timestamp"
SCHEMA_FILE = "0000_schema.parquet"  # empty file that fixes the schema for readers
TRADE_FILE = "trades.parquet"
TRADE_TEXT_COLUMNS = ("trade_id", "symbol", "side", "strategy", "exit_reason")
TRADE_TIME_COLUMNS = ("entry_time", "exit_time", EVENT_TIMESTAMP)
TRADE_NUMBER_COLUMNS = ("qty", "entry_price", "exit_price", "commission", "holding_bars")
AsOf = Literal["event", "bar"]


def bar_schema() -> pa.Schema:
    stamp = pa.timestamp("ns", tz="UTC")
    return pa.schema(
        [("symbol", pa.string()), ("timestamp", stamp), (EVENT_TIMESTAMP, stamp)]
        + [(name, pa.float64()) for name in BAR_FEATURES]
    )


def trade_schema() -> pa.Schema:
    stamp = pa.timestamp("ns", tz="UTC")
    fields: list[tuple[str, pa.DataType]] = [(c, pa.string()) for c in TRADE_TEXT_COLUMNS]
    fields += [(c, stamp) for c in TRADE_TIME_COLUMNS]
    fields += [(c, pa.float64()) for c in TRADE_NUMBER_COLUMNS]
    fields += [(c, pa.float64()) for c in OUTCOME_COLUMNS if c != "trade_id"]
    fields += [(c, pa.float64()) for c in MODEL_FEATURES]
    return pa.schema(fields)


TEMP_PREFIX, TEMP_SUFFIX = ".tmp-", ".partial"


def atomic_write(table: pa.Table, path: Path) -> None:
    """Write to a temp file in the same folder, then rename: readers never see half a file.
    The temp file's name does not end in `.parquet`, so the folder's `*.parquet` globs
    never read one that a killed writer left behind (a complete one would duplicate rows,
    a torn one would break every read)."""
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=TEMP_PREFIX, suffix=TEMP_SUFFIX)
    os.close(handle)
    try:
        pq.write_table(table, temp)
        os.replace(temp, path)
    finally:
        if os.path.exists(temp):
            os.unlink(temp)


def conform(frame: pd.DataFrame, schema: pa.Schema) -> pa.Table:
    """`frame` with the schema's columns and types (missing numbers are NaN)."""
    columns = {}
    for field in schema:
        if field.name in frame.columns:
            columns[field.name] = frame[field.name]
        else:
            columns[field.name] = pd.Series(np.nan, index=frame.index, dtype=np.float64)
    out = pd.DataFrame(columns, index=frame.index)
    for field in schema:
        if pa.types.is_timestamp(field.type):
            out[field.name] = pd.to_datetime(out[field.name], utc=True).astype(
                "datetime64[ns, UTC]"
            )
        elif pa.types.is_floating(field.type):
            out[field.name] = pd.to_numeric(out[field.name], errors="coerce").astype(np.float64)
        else:
            out[field.name] = out[field.name].astype(str)
    return pa.Table.from_pandas(out, schema=schema, preserve_index=False)


@contextmanager
def duckdb_connection() -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        yield con
    finally:
        con.close()


def parquet_list(files: list[Path]) -> str:
    quoted = ", ".join(f"'{f.as_posix()}'" for f in files)
    return f"read_parquet([{quoted}])"


class OfflineFiles:
    """The offline feature files: idempotent writes, reads, the latest rows."""

    def __init__(self, root: Path) -> None:
        self.bar_dir = root / "offline" / "bar_features"
        self.trade_dir = root / "offline" / "trades"

    def ensure_layout(self) -> None:
        """Both folders exist and hold at least a schema file (readers need one)."""
        for folder, schema in ((self.bar_dir, bar_schema()), (self.trade_dir, trade_schema())):
            folder.mkdir(parents=True, exist_ok=True)
            marker = folder / SCHEMA_FILE
            if not any(folder.glob("*.parquet")):
                atomic_write(schema.empty_table(), marker)

    def bar_glob(self) -> str:
        return f"read_parquet('{self.bar_dir.as_posix()}/*.parquet')"

    def trade_glob(self) -> str:
        return f"read_parquet('{self.trade_dir.as_posix()}/*.parquet', union_by_name=true)"

    def with_availability(self, frame: pd.DataFrame, daily: bool | None) -> pd.DataFrame:
        """The rows with `event_timestamp` (when their features became known) added."""
        rows = frame.copy()
        rows["timestamp"] = pd.to_datetime(rows["timestamp"], utc=True)
        if EVENT_TIMESTAMP not in rows.columns:
            if daily is None:
                daily = periods_per_year(rows["timestamp"]) <= 252.0
            rows[EVENT_TIMESTAMP] = decision_times(rows["timestamp"], daily=daily)
        return rows

    def write_features(
        self, frame: pd.DataFrame, *, daily: bool | None = None, overwrite_missing: bool = False
    ) -> int:
        """Upsert computed features (`symbol, timestamp` + bar features), one atomic file
        per symbol; writing the same rows twice changes nothing. `daily` says whether the
        rows are daily bars (their features become known at the session close); by
        default it is inferred from the bar spacing. A stored value is never replaced by a
        missing one (e.g. market features computed without an index series) unless
        `overwrite_missing`: the write is refused before any file changes. Returns the
        number of rows written."""
        missing = [c for c in ("symbol", "timestamp") if c not in frame.columns]
        unknown = [c for c in BAR_FEATURES if c not in frame.columns]
        if missing or len(unknown) == len(BAR_FEATURES):
            raise DataValidationError(
                "feature frame needs symbol, timestamp and the catalogue's columns "
                f"(missing {', '.join(missing) or 'every feature column'})",
                where="FeatureStore.write_features",
            )
        self.ensure_layout()
        rows = self.with_availability(frame, daily)
        schema = bar_schema()
        tables: list[tuple[Path, pa.Table, int]] = []
        lost = _LostValues()
        for symbol, group in rows.groupby("symbol", sort=False):
            name = str(symbol)
            if not name or "/" in name or name.startswith("."):
                raise DataValidationError(f"bad symbol {name!r}", where="write_features")
            path = self.bar_dir / f"{name}.parquet"
            new = conform(group, schema)
            if path.exists():
                old = pq.read_table(path)
                replaced = pc.is_in(old["timestamp"], value_set=new["timestamp"])
                if not overwrite_missing:
                    lost.add(name, old.filter(replaced), new)
                new = pa.concat_tables([old.filter(pc.invert(replaced)), new])
            tables.append((path, new.sort_by([("timestamp", "ascending")]), len(group)))
        lost.refuse()
        written = 0
        for path, table, count in tables:
            atomic_write(table, path)
            written += count
        return written

    def read_features(self, symbols: list[str] | None = None) -> pd.DataFrame:
        """The offline feature rows (all symbols, or the given ones)."""
        self.ensure_layout()
        files = [self.bar_dir / f"{s}.parquet" for s in symbols] if symbols else None
        if files is not None:
            files = [f for f in files if f.exists()]
            if not files:
                return bar_schema().empty_table().to_pandas()
        with duckdb_connection() as con:
            source = parquet_list(files) if files else self.bar_glob()
            return con.execute(f"SELECT * FROM {source} ORDER BY symbol, timestamp").df()

    def latest_rows(self, source: str, moment: pd.Timestamp) -> pd.DataFrame:
        """Each symbol's latest row of `source` known at `moment`."""
        query = f"""
            SELECT * FROM {source}
            WHERE {EVENT_TIMESTAMP} <= ?
            QUALIFY row_number() OVER (PARTITION BY symbol ORDER BY {EVENT_TIMESTAMP} DESC) = 1
        """
        with duckdb_connection() as con:
            return con.execute(query, [moment.to_pydatetime()]).df()

    def oldest_event(self) -> datetime | None:
        with duckdb_connection() as con:
            oldest = con.execute(f"SELECT min({EVENT_TIMESTAMP}) FROM {self.bar_glob()}").fetchone()
        return pd.Timestamp(oldest[0]).to_pydatetime() if oldest and oldest[0] else None


class OfflineStore(ABC):
    """Point-in-time training sets and materialization over the offline files."""

    def __init__(self, files: OfflineFiles, repo: FeastRepo) -> None:
        self.files = files
        self.repo = repo

    @abstractmethod
    def training_set(self, events: pd.DataFrame, *, as_of: AsOf = "event") -> pd.DataFrame:
        """The events (symbol, timestamp, ...labels) with every bar feature as it was known
        at each event: the latest feature row whose availability time (`event_timestamp`)
        is at or before the event's timestamp. With `as_of="bar"`, the event timestamps
        are bar stamps and each event gets the features of the bar at or before that stamp
        (for signals emitted at a bar's close). Unknown features are NaN; event order and
        columns are kept."""

    @abstractmethod
    def materialize(self, online: OnlineStore, end: datetime) -> dict[str, int]:
        """Load each symbol's latest values up to `end` into `online`; rows written per
        feature view (-1 when the back end does not count them)."""


class DuckDBOfflineStore(OfflineStore):
    def training_set(self, events: pd.DataFrame, *, as_of: AsOf = "event") -> pd.DataFrame:
        clash = [c for c in BAR_FEATURES if c in events.columns]
        left = events.drop(columns=clash).copy()
        left["timestamp"] = pd.to_datetime(left["timestamp"], utc=True)
        left["__row"] = np.arange(len(left))
        left["__symbol"] = left["symbol"].astype(str)
        feature_time = EVENT_TIMESTAMP if as_of == "event" else "timestamp"
        selected = ", ".join(f'f."{name}"' for name in BAR_FEATURES)
        query = f"""
            SELECT e.*, {selected}
            FROM events e
            ASOF LEFT JOIN (SELECT symbol, {feature_time} AS __known, * EXCLUDE (symbol)
                            FROM {self.files.bar_glob()}) f
              ON e.__symbol = f.symbol AND e.timestamp >= f.__known
            ORDER BY e.__row
        """
        with duckdb_connection() as con:
            con.register("events", left)
            out = con.execute(query).df()
        out = out.drop(columns=["__row", "__symbol"])
        out["timestamp"] = pd.to_datetime(out["timestamp"], utc=True)
        out.index = events.index
        return out

    def materialize(self, online: OnlineStore, end: datetime) -> dict[str, int]:
        from features.repo.definitions import (
            BAR_VIEW,
            BAR_VIEW_FEATURES,
            MARKET_VIEW,
            MARKET_VIEW_FEATURES,
            TRADE_OUTCOME_COLUMNS,
            TRADE_VIEW,
        )

        moment = utc_timestamp(end)
        latest_bars = self.files.latest_rows(self.files.bar_glob(), moment)
        latest_trades = self.files.latest_rows(self.files.trade_glob(), moment)
        written: dict[str, int] = {}
        plan = (
            (BAR_VIEW, latest_bars, BAR_VIEW_FEATURES),
            (MARKET_VIEW, latest_bars, MARKET_VIEW_FEATURES),
            (TRADE_VIEW, latest_trades, ("trade_id", *TRADE_OUTCOME_COLUMNS)),
        )
        for view, rows, names in plan:
            if rows.empty:
                written[view] = 0
                continue
            written[view] = online.write(view, rows.loc[:, ["symbol", EVENT_TIMESTAMP, *names]])
        return written


class FeastOfflineStore(OfflineStore):
    """Feast's file offline store: its joins, and its materialization into its own
    (SQLite) online store."""

    def training_set(self, events: pd.DataFrame, *, as_of: AsOf = "event") -> pd.DataFrame:
        if as_of != "event":
            raise ConfigError(
                "Feast's offline store joins on availability times only (as_of='event')",
                where="FeastOfflineStore.training_set",
            )
        from features.repo.definitions import feature_refs

        entity = events.rename(columns={"timestamp": EVENT_TIMESTAMP}).copy()
        entity[EVENT_TIMESTAMP] = pd.to_datetime(entity[EVENT_TIMESTAMP], utc=True)
        entity["__row"] = np.arange(len(entity))
        job = self.repo.store().get_historical_features(
            entity_df=entity, features=feature_refs(BAR_FEATURES)
        )
        out = job.to_df().sort_values("__row").drop(columns="__row")
        out = out.rename(columns={EVENT_TIMESTAMP: "timestamp"})
        out.index = events.index
        return out.loc[:, [*events.columns, *[c for c in BAR_FEATURES if c not in events]]]

    def materialize(self, online: OnlineStore, end: datetime) -> dict[str, int]:
        if not online.is_feast_store:
            raise ConfigError(
                "Feast's materialization writes only into Feast's own online store; "
                "use the sqlite online store with the feast offline store",
                where="FeastOfflineStore.materialize",
            )
        store = self.repo.store()
        views = store.list_feature_views()
        if views and all(view.materialization_intervals for view in views):
            store.materialize_incremental(end_date=end)
            return {view.name: -1 for view in views}
        # First run: Feast would start one year back for views without a TTL; start at
        # the oldest stored value instead so every symbol's latest row is loaded.
        start = self.files.oldest_event() or end
        store.materialize(start_date=min(start, end), end_date=end)
        return {view.name: -1 for view in views}


OFFLINE_STORES: dict[str, type[OfflineStore]] = {
    "duckdb": DuckDBOfflineStore,
    "feast": FeastOfflineStore,
}


class _LostValues:
    """Stored feature values a write would replace with missing ones, per feature."""

    def __init__(self) -> None:
        self.count = 0
        self.features: set[str] = set()
        self.symbols: list[str] = []

    def add(self, symbol: str, old: pa.Table, new: pa.Table) -> None:
        if old.num_rows == 0:
            return
        before = old.to_pandas().set_index("timestamp")
        after = new.to_pandas().set_index("timestamp").reindex(before.index)
        columns = [c for c in BAR_FEATURES if c in before.columns and c in after.columns]
        gone = before[columns].notna() & after[columns].isna()
        count = int(gone.to_numpy().sum())
        if count:
            self.count += count
            self.features.update(gone.columns[gone.any()].tolist())
            self.symbols.append(symbol)

    def refuse(self) -> None:
        if not self.count:
            return
        features = sorted(self.features)
        named = ", ".join(features[:5]) + (f" and {len(features) - 5} more" if len(features) > 5
                                           else "")
        raise DataValidationError(
            f"the write would replace {self.count:,} stored values with missing ones ({named} "
            f"of {', '.join(self.symbols[:5])}{' ...' if len(self.symbols) > 5 else ''}); "
            "nothing was written: compute with the index series (--index), or pass "
            "--overwrite-missing to store the gaps",
            where="write_features",
        )
