"""Point-in-time training-set build: 100,000 events x every bar feature, on the real S&P
500 features (405 symbols, 496k rows computed from ../shared/data), three ways in the
same run:

- Tradewind's store: DuckDB ASOF JOIN over the per-symbol parquet files (the default);
- pandas `merge_asof` over the same files (a plain-file offline path, no DuckDB);
- Feast 0.67's default `file` offline store (`get_historical_features`). It is far slower,
  so it runs on two small event counts (`--feast-events`, default 100,400); its time is
  fitted as fixed + per-event cost and projected to 100k (the output says so), and the
  ratio at the same event count is also given, measured. Feast's own `duckdb` offline store
  needs the `ibis` package, which is not installed here.

    .venv/bin/python benchmarks/bench_features_training_set.py [--events N] [--feast-events N,M]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.settings import FeatureStoreSettings, PathSettings, StoreBackend  # noqa: E402
from core.types import BAR_COLUMNS  # noqa: E402
from features.catalogue import BAR_FEATURES  # noqa: E402
from features.compute import compute_feature_set  # noqa: E402
from features.store import FeatureStore  # noqa: E402

DATA = ROOT.parent / "shared" / "data"


def events_between_features(stored: pd.DataFrame, count: int, seed: int) -> pd.DataFrame:
    """Events at random times between real feature timestamps (so the join matters)."""
    rng = np.random.default_rng(seed)
    picks = stored.iloc[rng.integers(0, len(stored), count)].reset_index(drop=True)
    offsets = pd.to_timedelta(rng.integers(0, 3 * 86_400, count), unit="s")
    return pd.DataFrame(
        {
            "symbol": picks["symbol"].to_numpy(),
            "timestamp": (picks["event_timestamp"] + offsets).to_numpy(),
            "label": rng.integers(0, 2, count),
        }
    ).assign(timestamp=lambda e: pd.to_datetime(e["timestamp"], utc=True))


def pandas_asof(store: FeatureStore, events: pd.DataFrame) -> pd.DataFrame:
    files = [p for p in store.bar_dir.glob("*.parquet") if not p.name.startswith("0000")]
    features = pd.concat([pd.read_parquet(p) for p in files], ignore_index=True)
    features = features.sort_values("event_timestamp")
    left = events.assign(__row=np.arange(len(events))).sort_values("timestamp")
    joined = pd.merge_asof(
        left,
        features.drop(columns="timestamp"),
        left_on="timestamp",
        right_on="event_timestamp",
        by="symbol",
        direction="backward",
    )
    return joined.sort_values("__row").drop(columns=["__row", "event_timestamp"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument(
        "--feast-events", default="100,400", help="two event counts to time Feast at"
    )
    args = parser.parse_args()
    source = DATA / "sp500_daily_2013_2018.parquet"
    if not source.exists():
        print(f"skipped: {source.name} not found in ../shared/data (optional benchmark data)")
        return
    warnings.simplefilter("ignore")
    bars = pd.read_parquet(source)
    spy = pd.read_parquet(DATA / "spy_daily_2008_2017.parquet").loc[:, list(BAR_COLUMNS)]
    features = compute_feature_set(bars, spy).frame
    with tempfile.TemporaryDirectory() as tmp:
        store = FeatureStore(PathSettings(data_dir=Path(tmp) / "data"))
        started = time.perf_counter()
        store.write_features(features)
        write_s = time.perf_counter() - started
        stored = store.read_features()
        events = events_between_features(stored, args.events, seed=1)

        started = time.perf_counter()
        ours = store.training_set(events)
        ours_s = time.perf_counter() - started
        started = time.perf_counter()
        plain = pandas_asof(store, events)
        plain_s = time.perf_counter() - started
        same = np.allclose(
            ours[list(BAR_FEATURES)].to_numpy(dtype=float),
            plain[list(BAR_FEATURES)].to_numpy(dtype=float),
            equal_nan=True,
        )

        store.apply()
        small, large = (int(n) for n in str(args.feast_events).split(","))
        feast_times: dict[int, float] = {}
        feast_offline = FeatureStoreSettings(offline_store=StoreBackend(type="feast"))
        feast_store = FeatureStore(store.paths, feast_offline)
        for count in (small, large):
            started = time.perf_counter()
            feast = feast_store.training_set(events.head(count))
            feast_times[count] = time.perf_counter() - started
        feast_same = np.allclose(
            feast[list(BAR_FEATURES)].to_numpy(dtype=float),
            ours.head(large)[list(BAR_FEATURES)].to_numpy(dtype=float),
            equal_nan=True,
        )
        # Feast's time = a fixed part (reading every offline row) + a part per event:
        # fitted on the two measured sizes, then projected to the full event count.
        per_event = max((feast_times[large] - feast_times[small]) / (large - small), 0.0)
        fixed = max(feast_times[small] - per_event * small, 0.0)
        feast_full = fixed + per_event * args.events
        started = time.perf_counter()
        store.training_set(events.head(large))
        ours_few_s = time.perf_counter() - started

    width = len(BAR_FEATURES)
    print(
        f"offline store: {len(stored):,} feature rows, {stored['symbol'].nunique()} symbols, "
        f"{width} features (real S&P 500); written in {write_s:.1f} s"
    )
    print(f"events: {args.events:,} at random times between feature timestamps")
    print(
        f"tradewind (DuckDB ASOF JOIN):      {ours_s:8.2f} s   "
        f"{args.events / ours_s:>10,.0f} events/s"
    )
    print(
        f"pandas merge_asof on the files:    {plain_s:8.2f} s   "
        f"{args.events / plain_s:>10,.0f} events/s   same values: {same}"
    )
    print(
        f"Feast file offline store:          {feast_times[small]:8.2f} s for {small:,} events, "
        f"{feast_times[large]:.2f} s for {large:,} (measured; same values: {feast_same})"
    )
    print(
        f"  fitted {fixed:.1f} s fixed + {per_event * 1000:.1f} ms/event → "
        f"{feast_full:,.0f} s projected for {args.events:,} events (not run)"
    )
    print(f"ratio DuckDB vs pandas merge_asof: {plain_s / ours_s:6.1f}x faster")
    print(
        f"ratio DuckDB vs Feast file store:  {feast_full / ours_s:6.0f}x faster at "
        f"{args.events:,} events (Feast projected); {feast_times[large] / ours_few_s:6.0f}x "
        f"at {large:,} events (both measured)"
    )


if __name__ == "__main__":
    main()
