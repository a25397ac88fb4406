"""The offline bar store: validated bar frames kept as partitioned parquet.

Layout under `root` (normally `settings.paths.bars_dir`, i.e. `<data_dir>/bars`):

    timeframe=1Day/symbol=AAPL/all.parquet          daily: one file per symbol
    timeframe=1Min/symbol=SPY/year=2021.parquet     intraday: one file per symbol and year

Guarantees:
- Idempotent upsert on (symbol, timestamp): writing an overlapping range again never
  duplicates a bar; a re-written bar replaces the stored one (the newer value wins).
- Crash-safe: each partition file is written to a hidden temp file in the same folder,
  flushed to disk, then moved over the old one with `os.replace` (atomic on POSIX). An
  ingest killed half-way leaves every partition either old or new, never torn; readers
  skip temp files; the next write of a partition removes its stale temp files; re-running
  the ingest completes it. One writer at a time is assumed.
- Only valid bars get in: `write` runs strict `core.bars.validate_bars` (daily bars are
  stamped at midnight New York, see `core.bars`).
- Reading a few symbols opens only their partitions; time bounds are pushed down to
  parquet (row-group statistics), so a few symbols out of hundreds read in milliseconds.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from core.bars import DAILY, check_timeframe, empty_bars, time_bound, validate_bars
from core.errors import DataValidationError
from core.types import BAR_COLUMNS
from core.utc import utc_timestamp

_SYMBOL = re.compile(r"^[A-Za-z0-9^][A-Za-z0-9._\-^=]{0,31}$")
SCHEMA = pa.schema(
    [
        ("symbol", pa.string()),
        ("timestamp", pa.timestamp("ns", tz="UTC")),
        *[(name, pa.float64()) for name in BAR_COLUMNS[2:]],
    ]
)
SUMMARY_COLUMNS = ("symbol", "timeframe", "bars", "first", "last")


@dataclass(frozen=True, slots=True)
class BarWriteReport:
    rows_written: int  # rows in the frame handed to `write`
    rows_new: int  # rows that were not in the store before
    symbols: list[str] = field(default_factory=list)
    partitions_changed: int = 0


def partition_name(timeframe: str, year: int) -> str:
    return "all.parquet" if timeframe == DAILY else f"year={year}.parquet"


class BarStore:
    """Partitioned parquet bar store; see the module docstring."""

    def __init__(self, root: Path, *, durable: bool = True) -> None:
        """`durable=False` skips the fsync of each file: still atomic when the process is
        killed, but not across a power cut (for scratch stores and tests)."""
        self.root = Path(root)
        self.durable = durable

    # ------------------------------------------------------------------ writing
    def write(
        self,
        frame: pd.DataFrame,
        timeframe: str = DAILY,
        *,
        on_partition: Callable[[str, int], None] | None = None,
    ) -> BarWriteReport:
        """Upsert a bar frame. `on_partition(symbol, rows_new)` is called after each
        partition is safely on disk (progress bars, tests)."""
        check_timeframe(timeframe)
        bars = validate_bars(frame, where="bar store write", timeframe=timeframe).bars
        symbols = sorted(bars["symbol"].unique().tolist())
        for symbol in symbols:
            _check_symbol(symbol)
        rows_new = changed = 0
        if bars.empty:
            return BarWriteReport(0, 0, [], 0)
        for symbol, year, part in _partitions(bars, timeframe):
            path = self._partition(timeframe, symbol) / partition_name(timeframe, year)
            added, wrote = self._upsert(path, part)
            rows_new += added
            changed += int(wrote)
            if on_partition is not None:
                on_partition(symbol, added)
        return BarWriteReport(len(bars), rows_new, symbols, changed)

    def _upsert(self, path: Path, incoming: pd.DataFrame) -> tuple[int, bool]:
        path.parent.mkdir(parents=True, exist_ok=True)
        for stale in path.parent.glob(f".{path.name}.*.tmp"):
            stale.unlink(missing_ok=True)  # left by a writer that was killed
        existing = _read_file(path) if path.exists() else empty_bars()
        incoming = incoming.reset_index(drop=True)
        if existing.equals(incoming):
            return 0, False  # the common re-ingest: nothing to do
        merged = pd.concat([existing, incoming], ignore_index=True)
        merged = merged.drop_duplicates(["symbol", "timestamp"], keep="last")
        merged = merged.sort_values("timestamp", ignore_index=True)
        added = len(merged) - len(existing)
        if added == 0 and merged.equals(existing):
            return 0, False  # nothing new: leave the file alone
        _atomic_write(merged, path, durable=self.durable)
        return added, True

    # ------------------------------------------------------------------ reading
    def read(
        self,
        symbols: Sequence[str] | None = None,
        start: datetime | date | str | None = None,
        end: datetime | date | str | None = None,
        timeframe: str = DAILY,
    ) -> pd.DataFrame:
        """Bars of `symbols` (all when None) with start <= timestamp <= end, as a bar
        frame. Both bounds are inclusive; naive times are UTC; a bare date means that
        whole New York day (so `end="2015-12-31"` includes that day's bar)."""
        check_timeframe(timeframe)
        lower, upper = time_bound(start), time_bound(end, end=True)
        names = self.symbols(timeframe) if symbols is None else list(dict.fromkeys(symbols))
        files = [f for name in names for f in self._files(timeframe, name, lower, upper)]
        if not files:
            return empty_bars()
        condition = None
        stamp = ds.field("timestamp")
        if lower is not None:
            condition = stamp >= pa.scalar(lower.value, pa.timestamp("ns", "UTC"))
        if upper is not None:
            below = stamp <= pa.scalar(upper.value, pa.timestamp("ns", "UTC"))
            condition = below if condition is None else condition & below
        table = ds.dataset([str(f) for f in files], schema=SCHEMA, format="parquet").to_table(
            filter=condition
        )
        frame = table.to_pandas()
        frame["symbol"] = frame["symbol"].astype(object)
        return frame.sort_values(["symbol", "timestamp"], kind="stable", ignore_index=True)

    def symbols(self, timeframe: str = DAILY) -> list[str]:
        folder = self.root / f"timeframe={timeframe}"
        if not folder.is_dir():
            return []
        return sorted(
            p.name.removeprefix("symbol=")
            for p in folder.iterdir()
            if p.is_dir() and p.name.startswith("symbol=") and any(_data_files(p))
        )

    def timeframes(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(
            p.name.removeprefix("timeframe=")
            for p in self.root.iterdir()
            if p.is_dir() and p.name.startswith("timeframe=")
        )

    def summary(self) -> pd.DataFrame:
        """One row per (symbol, timeframe): bar count and first/last timestamp, taken from
        parquet metadata (no bar is read)."""
        rows = []
        for timeframe in self.timeframes():
            for symbol in self.symbols(timeframe):
                count, first, last = 0, None, None
                for path in self._files(timeframe, symbol, None, None):
                    file_count, file_first, file_last = _file_extent(path)
                    count += file_count
                    first = file_first if first is None else min(first, file_first)
                    last = file_last if last is None else max(last, file_last)
                rows.append((symbol, timeframe, count, first, last))
        summary = pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))
        summary["bars"] = summary["bars"].astype("int64")
        for name in ("first", "last"):
            summary[name] = pd.to_datetime(summary[name], utc=True)
        return summary

    # ------------------------------------------------------------------ paths
    def _partition(self, timeframe: str, symbol: str) -> Path:
        return self.root / f"timeframe={timeframe}" / f"symbol={symbol}"

    def _files(
        self, timeframe: str, symbol: str, lower: pd.Timestamp | None, upper: pd.Timestamp | None
    ) -> list[Path]:
        _check_symbol(symbol)
        files = sorted(_data_files(self._partition(timeframe, symbol)))
        if timeframe == DAILY:
            return files
        return [f for f in files if _year_overlaps(f, lower, upper)]


def _partitions(bars: pd.DataFrame, timeframe: str) -> Iterable[tuple[str, int, pd.DataFrame]]:
    if timeframe == DAILY:
        for symbol, part in bars.groupby("symbol", sort=True):
            yield str(symbol), 0, part
        return
    years = bars["timestamp"].dt.year.rename("year")
    for (symbol, year), part in bars.groupby([bars["symbol"], years], sort=True):
        yield str(symbol), int(year), part


def _check_symbol(symbol: str) -> None:
    if not _SYMBOL.match(symbol):
        raise DataValidationError(
            f"symbol {symbol!r} cannot name a store partition (letters, digits, . _ - ^ =)",
            where="bar store",
        )


def _data_files(folder: Path) -> Iterable[Path]:
    if not folder.is_dir():
        return []
    return (p for p in folder.iterdir() if p.suffix == ".parquet" and not p.name.startswith("."))


def _year_overlaps(path: Path, lower: pd.Timestamp | None, upper: pd.Timestamp | None) -> bool:
    match = re.fullmatch(r"year=(\d{4})\.parquet", path.name)
    if match is None:
        return True
    year = int(match.group(1))
    return (lower is None or year >= lower.year) and (upper is None or year <= upper.year)


def _read_file(path: Path) -> pd.DataFrame:
    frame = pq.read_table(path).to_pandas()
    frame["symbol"] = frame["symbol"].astype(object)
    return frame


def _file_extent(path: Path) -> tuple[int, pd.Timestamp | None, pd.Timestamp | None]:
    metadata = pq.ParquetFile(path).metadata
    column = metadata.schema.names.index("timestamp")
    first: pd.Timestamp | None = None
    last: pd.Timestamp | None = None
    for index in range(metadata.num_row_groups):
        stats = metadata.row_group(index).column(column).statistics
        if stats is None or not stats.has_min_max:
            table = pq.read_table(path, columns=["timestamp"])
            stamps = table.column("timestamp").to_pandas()
            return len(stamps), stamps.min(), stamps.max()
        low, high = utc_timestamp(stats.min), utc_timestamp(stats.max)
        first = low if first is None else min(first, low)
        last = high if last is None else max(last, high)
    return metadata.num_rows, first, last


def _atomic_write(frame: pd.DataFrame, path: Path, *, durable: bool) -> None:
    table = pa.Table.from_pandas(
        frame.loc[:, list(BAR_COLUMNS)], schema=SCHEMA, preserve_index=False, nthreads=1
    )
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(temp, "wb") as handle:
        pq.write_table(table, handle, compression="zstd")
        if durable:
            handle.flush()
            os.fsync(handle.fileno())  # the bytes are on disk before the name points at them
    os.replace(temp, path)
