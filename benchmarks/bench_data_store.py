"""Bar store speed on the real S&P 500 file (../shared/data, 405 symbols, 496k bars):
validation, a full write, an idempotent re-write, and reading a few symbols for one year,
against peers measured in the same run (pandas on one big parquet file with pyarrow
filters, and duckdb on the same file). Prints times and ratios; not run by pytest.

    .venv/bin/python benchmarks/bench_data_store.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.bars import validate_bars  # noqa: E402
from features.bar_store import BarStore  # noqa: E402

SOURCE = ROOT.parent / "shared" / "data" / "sp500_daily_2013_2018.parquet"
FEW = ["AAPL", "LNT", "BAX"]


def best_of(repeats: int, work: Callable[[], object]) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    if not SOURCE.exists():
        print(f"skipped: {SOURCE.name} not found in ../shared/data")
        return
    raw = pd.read_parquet(SOURCE)
    started = time.perf_counter()
    bars = validate_bars(raw, where="sp500", repair=True, timeframe="1Day").bars
    validate_seconds = time.perf_counter() - started
    print(f"validate+repair {len(raw):,} bars: {validate_seconds:.2f}s "
          f"({len(raw) / validate_seconds:,.0f} bars/s)")  # fmt: skip

    with tempfile.TemporaryDirectory() as folder:
        store = BarStore(Path(folder) / "bars")
        started = time.perf_counter()
        store.write(bars)
        print(f"first write, 405 partitions (fsync each): {time.perf_counter() - started:.2f}s")
        started = time.perf_counter()
        report = store.write(bars)
        seconds = time.perf_counter() - started
        print(f"idempotent re-write: {seconds:.2f}s ({report.rows_new} new rows, "
              f"{report.partitions_changed} files touched)")  # fmt: skip

        single = Path(folder) / "one_file.parquet"
        bars.to_parquet(single, index=False)
        start, end = pd.Timestamp("2016-01-01", tz="UTC"), pd.Timestamp("2016-12-31", tz="UTC")

        def ours() -> pd.DataFrame:
            return store.read(FEW, start="2016-01-01", end="2016-12-30")

        def pandas_peer() -> pd.DataFrame:
            return pd.read_parquet(
                single,
                filters=[
                    ("symbol", "in", FEW),
                    ("timestamp", ">=", start),
                    ("timestamp", "<=", end),
                ],
            )

        def duckdb_peer() -> pd.DataFrame:
            return duckdb.sql(
                f"SELECT * FROM read_parquet('{single}') WHERE symbol IN ('AAPL','LNT','BAX') "
                "AND timestamp BETWEEN '2016-01-01' AND '2016-12-31' ORDER BY symbol, timestamp"
            ).df()

        assert len(ours()) == len(pandas_peer()) == len(duckdb_peer())
        ours_s = best_of(20, ours)
        pandas_s = best_of(20, pandas_peer)
        duckdb_s = best_of(20, duckdb_peer)
        print(f"read {len(FEW)} of 405 symbols for 2016 ({len(ours())} bars):")
        print(f"  BarStore.read          {ours_s * 1000:7.1f} ms")
        for name, peer in (("pandas one file+filter", pandas_s), ("duckdb one file", duckdb_s)):
            print(f"  {name:<22} {peer * 1000:7.1f} ms  (BarStore is {peer / ours_s:.1f}x faster)")
        all_s = best_of(3, lambda: store.read())
        print(f"read all 405 symbols: {all_s:.2f}s; summary(): "
              f"{best_of(3, store.summary) * 1000:.0f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
