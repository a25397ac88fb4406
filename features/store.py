"""Tradewind's feature store: offline feature files, Feast (registry, SQLite online store,
materialization, push), point-in-time training sets and the trade collection.

Layout under `<data_dir>/feast/` (nothing in the repository): `feature_store.yaml`
(rendered from `features/repo/feature_store.yaml.template`), `registry.db`, `online.db`,
`offline/bar_features/<SYMBOL>.parquet` (one file per symbol, upserted atomically on
(symbol, timestamp)) and `offline/trades/trades.parquet` (upserted on trade_id).

Training sets: the point-in-time join runs in DuckDB (ASOF JOIN over the parquet files).
Feast's default file offline store gives the same answer (a test checks it) but is two
orders of magnitude slower at 100k events (see benchmarks/bench_features_training_set.py);
`training_set(..., engine="feast")` keeps it available. Feast serves the online store,
materialization and pushes.

Timestamps: `timestamp` is the bar's own stamp; `event_timestamp` is when the features
became known (the session close for daily bars, the bar time for intraday bars). Joins
for events use the availability time, so an event never sees a later value."""

from __future__ import annotations

import os
import string
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from core.errors import DataValidationError, NotFoundError
from core.settings import PathSettings
from core.utc import utc_timestamp
from features.catalogue import BAR_FEATURES, MODEL_FEATURES
from features.outcomes import OUTCOME_COLUMNS, check_trades, trade_outcomes
from features.technical import periods_per_year
from features.temporal import decision_times

if TYPE_CHECKING:
    import feast

    from features.repo.definitions import RepoObjects

EVENT_TIMESTAMP = "event_timestamp"
TEMPLATE = Path(__file__).parent / "repo" / "feature_store.yaml.template"
SCHEMA_FILE = "0000_schema.parquet"  # empty file that fixes the schema for readers
TRADE_FILE = "trades.parquet"
TRADE_TEXT_COLUMNS = ("trade_id", "symbol", "side", "strategy", "exit_reason")
TRADE_TIME_COLUMNS = ("entry_time", "exit_time", EVENT_TIMESTAMP)
TRADE_NUMBER_COLUMNS = ("qty", "entry_price", "exit_price", "commission", "holding_bars")


def _bar_schema() -> pa.Schema:
    stamp = pa.timestamp("ns", tz="UTC")
    return pa.schema(
        [("symbol", pa.string()), ("timestamp", stamp), (EVENT_TIMESTAMP, stamp)]
        + [(name, pa.float64()) for name in BAR_FEATURES]
    )


def _trade_schema() -> pa.Schema:
    stamp = pa.timestamp("ns", tz="UTC")
    fields: list[tuple[str, pa.DataType]] = [(c, pa.string()) for c in TRADE_TEXT_COLUMNS]
    fields += [(c, stamp) for c in TRADE_TIME_COLUMNS]
    fields += [(c, pa.float64()) for c in TRADE_NUMBER_COLUMNS]
    fields += [(c, pa.float64()) for c in OUTCOME_COLUMNS if c != "trade_id"]
    fields += [(c, pa.float64()) for c in MODEL_FEATURES]
    return pa.schema(fields)


def _atomic_write(table: pa.Table, path: Path) -> None:
    """Write to a temp file in the same folder, then rename: readers never see half a file."""
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".parquet")
    os.close(handle)
    try:
        pq.write_table(table, temp)
        os.replace(temp, path)
    finally:
        if os.path.exists(temp):
            os.unlink(temp)


def _conform(frame: pd.DataFrame, schema: pa.Schema) -> pa.Table:
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


class FeatureStore:
    """Offline files + Feast online store + point-in-time joins + trade collection."""

    project = "tradewind"

    def __init__(self, paths: PathSettings) -> None:
        self.paths = paths
        self.root = (paths.data_dir / "feast").resolve()
        self.bar_dir = self.root / "offline" / "bar_features"
        self.trade_dir = self.root / "offline" / "trades"
        self._feast: feast.FeatureStore | None = None
        self._objects: RepoObjects | None = None

    # --- Feast plumbing ----------------------------------------------------------------
    def render_config(self) -> Path:
        """Render feature_store.yaml for this data directory; returns its path."""
        self.root.mkdir(parents=True, exist_ok=True)
        text = string.Template(TEMPLATE.read_text()).substitute(
            registry_path=str(self.root / "registry.db"),
            online_path=str(self.root / "online.db"),
        )
        target = self.root / "feature_store.yaml"
        if not target.exists() or target.read_text() != text:
            target.write_text(text)
        return target

    def _ensure_layout(self) -> None:
        for folder, schema in ((self.bar_dir, _bar_schema()), (self.trade_dir, _trade_schema())):
            folder.mkdir(parents=True, exist_ok=True)
            marker = folder / SCHEMA_FILE
            if not any(folder.glob("*.parquet")):
                _atomic_write(schema.empty_table(), marker)

    def objects(self) -> RepoObjects:
        if self._objects is None:
            from features.repo.definitions import build

            self._objects = build(self.bar_dir, self.trade_dir)
        return self._objects

    def feast(self) -> feast.FeatureStore:
        """The Feast store for this data directory (created on first use)."""
        if self._feast is None:
            import feast

            self.render_config()
            self._ensure_layout()
            self._feast = feast.FeatureStore(repo_path=str(self.root))
        return self._feast

    def apply(self) -> None:
        """Register the entity, sources, push sources and feature views in the registry."""
        self._ensure_layout()
        self.feast().apply(self.objects().all())  # type: ignore[arg-type]

    # --- offline writes ----------------------------------------------------------------
    def write_features(self, frame: pd.DataFrame, *, daily: bool | None = None) -> int:
        """Upsert computed features (`symbol, timestamp` + bar features) into the offline
        files, one atomic file per symbol; writing the same rows twice changes nothing.
        `daily` says whether the rows are daily bars (their features become known at the
        session close); by default it is inferred from the bar spacing. Returns the
        number of rows written."""
        missing = [c for c in ("symbol", "timestamp") if c not in frame.columns]
        unknown = [c for c in BAR_FEATURES if c not in frame.columns]
        if missing or len(unknown) == len(BAR_FEATURES):
            raise DataValidationError(
                "feature frame needs symbol, timestamp and the catalogue's columns "
                f"(missing {', '.join(missing) or 'every feature column'})",
                where="FeatureStore.write_features",
            )
        self._ensure_layout()
        rows = self._with_availability(frame, daily)
        schema = _bar_schema()
        written = 0
        for symbol, group in rows.groupby("symbol", sort=False):
            name = str(symbol)
            if not name or "/" in name or name.startswith("."):
                raise DataValidationError(f"bad symbol {name!r}", where="write_features")
            path = self.bar_dir / f"{name}.parquet"
            new = _conform(group, schema)
            if path.exists():
                old = pq.read_table(path)
                keep = pc.invert(
                    pc.is_in(old["timestamp"], value_set=new["timestamp"])
                )
                new = pa.concat_tables([old.filter(keep), new])
            new = new.sort_by([("timestamp", "ascending")])
            _atomic_write(new, path)
            written += len(group)
        return written

    def _with_availability(self, frame: pd.DataFrame, daily: bool | None) -> pd.DataFrame:
        rows = frame.copy()
        rows["timestamp"] = pd.to_datetime(rows["timestamp"], utc=True)
        if EVENT_TIMESTAMP not in rows.columns:
            if daily is None:
                daily = periods_per_year(rows["timestamp"]) <= 252.0
            rows[EVENT_TIMESTAMP] = decision_times(rows["timestamp"], daily=daily)
        return rows

    def push(self, frame: pd.DataFrame, *, offline: bool = True, daily: bool | None = None) -> int:
        """Fresh values from the engine: online through Feast's push source and, when
        `offline`, into the offline files (idempotent). A single row cannot show its bar
        spacing: pass `daily=False` for intraday bars."""
        from feast.data_source import PushMode

        from features.repo.definitions import BAR_PUSH

        written = self.write_features(frame, daily=daily) if offline else 0
        rows = self._with_availability(frame, daily)
        table = _conform(rows, _bar_schema()).to_pandas()
        self.feast().push(BAR_PUSH, table, to=PushMode.ONLINE)
        return written or len(rows)

    def read_features(self, symbols: list[str] | None = None) -> pd.DataFrame:
        """The offline feature rows (all symbols, or the given ones)."""
        self._ensure_layout()
        files = [self.bar_dir / f"{s}.parquet" for s in symbols] if symbols else None
        if files is not None:
            files = [f for f in files if f.exists()]
            if not files:
                return _bar_schema().empty_table().to_pandas()
        with self._duckdb() as con:
            source = self._parquet_list(files) if files else self._bar_glob()
            return con.execute(f"SELECT * FROM {source} ORDER BY symbol, timestamp").df()

    # --- online ----------------------------------------------------------------------------
    def materialize(
        self, end: datetime | None = None, *, engine: Literal["duckdb", "feast"] = "duckdb"
    ) -> dict[str, int]:
        """Load each symbol's latest values up to `end` (default now) into the online
        store; returns rows written per feature view.

        The default engine selects the latest row per symbol with DuckDB and writes it
        through Feast's `write_to_online_store` (the same SQLite online store and
        registry; the same answer as Feast's materialization). `engine="feast"` runs
        Feast's own materialization, which reads every offline row through dask: 10 min
        for the 496k-row S&P 500 set here, against seconds (see
        benchmarks/bench_features_online.py)."""
        store = self.feast()
        end = end or datetime.now(UTC)
        if engine == "feast":
            return self._materialize_with_feast(end)
        from features.repo.definitions import (
            BAR_VIEW,
            BAR_VIEW_FEATURES,
            MARKET_VIEW,
            MARKET_VIEW_FEATURES,
            TRADE_OUTCOME_COLUMNS,
            TRADE_VIEW,
        )

        moment = utc_timestamp(end)
        latest_bars = self._latest_rows(self._bar_glob(), moment)
        trade_glob = f"read_parquet('{self.trade_dir.as_posix()}/*.parquet', union_by_name=true)"
        latest_trades = self._latest_rows(trade_glob, moment)
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
            frame = rows.loc[:, ["symbol", EVENT_TIMESTAMP, *names]]
            store.write_to_online_store(view, df=frame)
            written[view] = len(frame)
        return written

    def _latest_rows(self, source: str, moment: pd.Timestamp) -> pd.DataFrame:
        query = f"""
            SELECT * FROM {source}
            WHERE {EVENT_TIMESTAMP} <= ?
            QUALIFY row_number() OVER (PARTITION BY symbol ORDER BY {EVENT_TIMESTAMP} DESC) = 1
        """
        with self._duckdb() as con:
            return con.execute(query, [moment.to_pydatetime()]).df()

    def _materialize_with_feast(self, end: datetime) -> dict[str, int]:
        store = self.feast()
        views = store.list_feature_views()
        if views and all(view.materialization_intervals for view in views):
            store.materialize_incremental(end_date=end)
            return {view.name: -1 for view in views}
        # First run: Feast would start one year back for views without a TTL; start at
        # the oldest stored value instead so every symbol's latest row is loaded.
        with self._duckdb() as con:
            oldest = con.execute(
                f"SELECT min({EVENT_TIMESTAMP}) FROM {self._bar_glob()}"
            ).fetchone()
        start = pd.Timestamp(oldest[0]).to_pydatetime() if oldest and oldest[0] else end
        store.materialize(start_date=min(start, end), end_date=end)
        return {view.name: -1 for view in views}

    def online_features(self, symbol: str) -> dict[str, float]:
        """The latest bar and market features of a symbol, in one online read."""
        from features.repo.definitions import BAR_VIEW, MARKET_VIEW, MARKET_VIEW_FEATURES

        refs = self._online_refs(BAR_VIEW, MARKET_VIEW, MARKET_VIEW_FEATURES)
        result = self.feast().get_online_features(
            features=refs, entity_rows=[{"symbol": symbol}]
        ).to_dict()
        values = {name: result[name][0] for name in BAR_FEATURES}
        if all(value is None for value in values.values()):
            raise NotFoundError(
                f"no online features for {symbol}; write features and run "
                "`tradewind features materialize`",
                where="FeatureStore.online_features",
            )
        return {k: float("nan") if v is None else float(v) for k, v in values.items()}

    def _online_refs(
        self, bar_view: str, market_view: str, market_names: tuple[str, ...]
    ) -> list[str]:
        market = set(market_names)
        return [
            f"{market_view if name in market else bar_view}:{name}" for name in BAR_FEATURES
        ]

    # --- training sets ---------------------------------------------------------------------
    @contextmanager
    def _duckdb(self) -> Iterator[duckdb.DuckDBPyConnection]:
        con = duckdb.connect()
        try:
            con.execute("SET TimeZone = 'UTC'")
            yield con
        finally:
            con.close()

    def _bar_glob(self) -> str:
        return f"read_parquet('{self.bar_dir.as_posix()}/*.parquet')"

    @staticmethod
    def _parquet_list(files: list[Path]) -> str:
        quoted = ", ".join(f"'{f.as_posix()}'" for f in files)
        return f"read_parquet([{quoted}])"

    def training_set(
        self,
        events: pd.DataFrame,
        *,
        as_of: Literal["event", "bar"] = "event",
        engine: Literal["duckdb", "feast"] = "duckdb",
    ) -> pd.DataFrame:
        """The events (symbol, timestamp, ...labels) with every bar feature as it was known
        at each event: the latest feature row whose availability time (`event_timestamp`)
        is at or before the event's timestamp. With `as_of="bar"`, the event timestamps
        are bar stamps and each event gets the features of the bar at or before that stamp
        (for signals emitted at a bar's close). Unknown features are NaN; event order and
        columns are kept."""
        for column in ("symbol", "timestamp"):
            if column not in events.columns:
                raise DataValidationError(
                    f"events need a '{column}' column", where="FeatureStore.training_set"
                )
        self._ensure_layout()
        if engine == "feast":
            return self._training_set_feast(events)
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
                            FROM {self._bar_glob()}) f
              ON e.__symbol = f.symbol AND e.timestamp >= f.__known
            ORDER BY e.__row
        """
        with self._duckdb() as con:
            con.register("events", left)
            out = con.execute(query).df()
        out = out.drop(columns=["__row", "__symbol"])
        out["timestamp"] = pd.to_datetime(out["timestamp"], utc=True)
        out.index = events.index
        return out

    def _training_set_feast(self, events: pd.DataFrame) -> pd.DataFrame:
        from features.repo.definitions import BAR_VIEW, MARKET_VIEW, MARKET_VIEW_FEATURES

        entity = events.rename(columns={"timestamp": EVENT_TIMESTAMP}).copy()
        entity[EVENT_TIMESTAMP] = pd.to_datetime(entity[EVENT_TIMESTAMP], utc=True)
        entity["__row"] = np.arange(len(entity))
        refs = self._online_refs(BAR_VIEW, MARKET_VIEW, MARKET_VIEW_FEATURES)
        job = self.feast().get_historical_features(entity_df=entity, features=refs)
        out = job.to_df().sort_values("__row").drop(columns="__row")
        out = out.rename(columns={EVENT_TIMESTAMP: "timestamp"})
        out.index = events.index
        return out.loc[:, [*events.columns, *[c for c in BAR_FEATURES if c not in events]]]

    # --- trade collection ------------------------------------------------------------------
    def write_trades(self, trades: pd.DataFrame, bars: pd.DataFrame | None = None) -> int:
        """Store closed trades with their entry features and outcome labels; idempotent on
        trade_id (a rewritten trade replaces the stored one). Entry features missing from
        the frame are looked up point-in-time at the entry time. Returns the number of
        trades not stored before."""
        check_trades(trades)
        if trades["trade_id"].astype(str).duplicated().any():
            raise DataValidationError(
                "trade_id values repeat inside the frame", where="FeatureStore.write_trades"
            )
        self._ensure_layout()
        rows = trades.reset_index(drop=True).copy()
        for column in ("side",):
            rows[column] = rows[column].astype(str).str.lower().str.replace(
                "side.", "", regex=False
            )
        missing_features = [c for c in BAR_FEATURES if c not in rows.columns]
        if missing_features:
            lookup = self.training_set(
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
        fixed = _conform(rows, _trade_schema()).to_pandas()
        extras = [c for c in rows.columns if c not in fixed.columns]
        new = pd.concat([fixed, rows[extras].reset_index(drop=True)], axis=1)
        for column in extras:
            if new[column].dtype == object:
                new[column] = new[column].map(lambda v: None if v is None else str(v))
        path = self.trade_dir / TRADE_FILE
        new_count = len(new)
        if path.exists():
            old = pq.read_table(path).to_pandas()
            already = old["trade_id"].isin(new["trade_id"])
            new_count -= int(already.sum())
            kept = old.loc[~already]
            new = pd.concat([kept, new], ignore_index=True) if len(kept) else new
        new = new.sort_values(EVENT_TIMESTAMP, kind="stable").reset_index(drop=True)
        _atomic_write(pa.Table.from_pandas(new, preserve_index=False), path)
        marker = self.trade_dir / SCHEMA_FILE
        if marker.exists():  # readers of the folder now see one schema only
            marker.unlink()
        return new_count

    def read_trades(self) -> pd.DataFrame:
        """Every stored trade (entry features + labels), oldest exit first."""
        path = self.trade_dir / TRADE_FILE
        if not path.exists():
            return _trade_schema().empty_table().to_pandas()
        return pq.read_table(path).to_pandas()

    def summary(self) -> dict[str, Any]:
        """Counts for the command line."""
        files = [p for p in self.bar_dir.glob("*.parquet") if p.name != SCHEMA_FILE]
        rows = sum(pq.ParquetFile(p).metadata.num_rows for p in files)
        return {"symbols": len(files), "feature_rows": rows, "trades": len(self.read_trades())}
