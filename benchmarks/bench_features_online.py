"""Online feature read latency for one symbol (the engine's hot path): p50/p99 of
`FeatureStore.online_features(symbol)` (every bar feature) after materializing the real
S&P 500 features, on Feast's SQLite online store and on its Redis online store (a real
`redis-server` started here, registry in a PostgreSQL started here: `core.servers`),
against peers in the same run: Feast's raw `get_online_features` call (our wrapper's
overhead), and reading the latest row from the offline parquet files with DuckDB (what
you would do without an online store). Target on Redis: p99 <= 2 ms.
Also materialization (ours vs Feast's own, on a subset) and the incremental path:
`IncrementalFeatures.update` for one new bar.

    .venv/bin/python benchmarks/bench_features_online.py [--reads N] [--symbols N]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.servers import LocalPostgres, LocalRedis  # noqa: E402
from core.settings import FeatureStoreSettings, PathSettings, StoreBackend  # noqa: E402
from core.types import BAR_COLUMNS  # noqa: E402
from features.catalogue import BAR_FEATURES  # noqa: E402
from features.compute import compute_feature_set  # noqa: E402
from features.incremental import IncrementalFeatures  # noqa: E402
from features.repo.definitions import feature_refs  # noqa: E402
from features.store import FeatureStore  # noqa: E402

DATA = ROOT.parent / "shared" / "data"


def latencies(reads: int, symbols: list[str], call: Callable[[str], object]) -> np.ndarray:
    rng = np.random.default_rng(3)
    chosen = rng.choice(symbols, reads)
    for symbol in chosen[:20]:
        call(str(symbol))  # warm-up
    out = np.empty(reads)
    for i, symbol in enumerate(chosen):
        started = time.perf_counter()
        call(str(symbol))
        out[i] = time.perf_counter() - started
    return out * 1_000


def show(name: str, ms: np.ndarray) -> float:
    p50, p99 = np.percentile(ms, 50), np.percentile(ms, 99)
    print(f"{name:<44} p50 {p50:7.3f} ms   p99 {p99:7.3f} ms")
    return float(p50)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reads", type=int, default=2_000)
    parser.add_argument("--symbols", type=int, default=0, help="first N symbols (0 = all)")
    parser.add_argument("--materialize-symbols", type=int, default=20)
    args = parser.parse_args()
    source = DATA / "sp500_daily_2013_2018.parquet"
    if not source.exists():
        print(f"skipped: {source.name} not found in ../shared/data (optional benchmark data)")
        return
    warnings.simplefilter("ignore")
    bars = pd.read_parquet(source)
    if args.symbols:
        bars = bars.loc[bars["symbol"].isin(sorted(bars["symbol"].unique())[: args.symbols])]
    spy = pd.read_parquet(DATA / "spy_daily_2008_2017.parquet").loc[:, list(BAR_COLUMNS)]
    features = compute_feature_set(bars, spy).frame
    symbols = sorted(features["symbol"].unique())
    with tempfile.TemporaryDirectory() as tmp:
        store = FeatureStore(PathSettings(data_dir=Path(tmp) / "data"))
        store.apply()
        store.write_features(features)
        started = time.perf_counter()
        store.materialize()
        materialize_s = time.perf_counter() - started
        # Materialization peer: Feast's own (dask) path on a subset, ours on the same.
        subset = features.loc[features["symbol"].isin(symbols[: args.materialize_symbols])]
        small = FeatureStore(PathSettings(data_dir=Path(tmp) / "small"))
        small.apply()
        small.write_features(subset)
        started = time.perf_counter()
        small.materialize()
        small_ours_s = time.perf_counter() - started
        started = time.perf_counter()
        feast_offline = FeatureStoreSettings(offline_store=StoreBackend(type="feast"))
        FeatureStore(small.paths, feast_offline).materialize()
        small_feast_s = time.perf_counter() - started
        print(
            f"materialize {len(subset):,} rows ({args.materialize_symbols} symbols): "
            f"tradewind (DuckDB latest rows → Feast online write) {small_ours_s:.2f} s, "
            f"Feast materialize (dask) {small_feast_s:.2f} s → "
            f"{small_feast_s / small_ours_s:.0f}x"
        )
        feast = store.feast()
        refs = feature_refs(BAR_FEATURES)
        print(
            f"online store: {len(symbols)} symbols x {len(refs)} features, "
            f"materialized in {materialize_s:.1f} s; {args.reads:,} reads"
        )
        ours = show(
            "tradewind online_features(symbol), SQLite",
            latencies(args.reads, symbols, store.online_features),
        )
        with LocalRedis() as redis, LocalPostgres() as postgres:
            on_redis = FeatureStore(PathSettings(data_dir=Path(tmp) / "redis"),
                                    FeatureStoreSettings(
                online_store=StoreBackend(type="redis",
                                          connection_string=redis.connection_string()),
                registry=StoreBackend(type="sql",
                                      connection_string=postgres.create_database("registry"))))
            on_redis.apply()
            on_redis.write_features(features)
            started = time.perf_counter()
            on_redis.materialize()
            print(f"materialized into Redis in {time.perf_counter() - started:.1f} s")
            redis_ms = latencies(args.reads, symbols, on_redis.online_features)
            show("tradewind online_features(symbol), Redis", redis_ms)
            p99 = float(np.percentile(redis_ms, 99))
            print(f"Redis p99 {p99:.3f} ms: target <= 2 ms "
                  f"{'met' if p99 <= 2.0 else 'MISSED'}")
        raw = show(
            "Feast get_online_features (raw)",
            latencies(
                args.reads,
                symbols,
                lambda s: feast.get_online_features(
                    features=refs, entity_rows=[{"symbol": s}]
                ).to_dict(),
            ),
        )
        con = duckdb.connect()
        offline = show(
            "peer: latest row from parquet (DuckDB)",
            latencies(
                max(args.reads // 10, 50),
                symbols,
                lambda s: con.execute(
                    f"SELECT * FROM read_parquet('{store.bar_dir.as_posix()}/{s}.parquet') "
                    "ORDER BY timestamp DESC LIMIT 1"
                ).df(),
            ),
        )
    aapl = bars.loc[bars["symbol"] == bars["symbol"].iloc[0]]
    live = IncrementalFeatures(index_bars=spy)
    live.seed(aapl.iloc[:-50])
    rows = aapl.iloc[-50:]
    incremental = np.empty(len(rows))
    for i in range(len(rows)):
        started = time.perf_counter()
        live.update(rows.iloc[[i]])
        incremental[i] = (time.perf_counter() - started) * 1_000
    show("IncrementalFeatures.update (one new bar)", incremental)
    print(f"ratio wrapper vs raw Feast call: {ours / raw:5.2f}x (p50)")
    print(f"ratio online store vs offline latest-row read: {offline / ours:5.1f}x faster (p50)")


if __name__ == "__main__":
    main()
