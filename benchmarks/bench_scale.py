"""Scaling figures (issue 14), all in one run on this machine.

1. The broad S&P set (the vendored `sp500` source: 405 symbols, daily 2013-2018) through
   three stages, in ONE process against a `distributed.LocalCluster` of TWO worker
   processes (what `TRADEWIND_COMPUTE__DASK_ADDRESS` points the flows at), the work cut
   the same way (symbol shards; one task per fold):
   - features: the technical group per symbol shard, then the cross-sectional rest
     (`features.compute`, as the ingest flow does);
   - trade collection: the ungated engine (`trading.backtest.ReplaySession`) over 2017, one
     account per shard (as the collect_trades flow does);
   - walk-forward folds: the same engine over each fold's held-out year (2016, 2017), one
     task per fold.
2. Cost growth with the universe: SYNTHETIC scale-ups of the real bars (every real symbol
   copied k times under new names, prices scaled by a per-copy factor; labelled
   synthetic): wall time and peak memory (max RSS of a fresh process per stage) of the
   feature computation at 1x, 10x, 50x the symbols and of trade collection over one
   quarter at 1x and 10x; each stage in a child process capped at `--memory-gb` of
   address space, so a stage that does not fit fails there ("breaks") instead of
   taking the machine down.

    .venv/bin/python benchmarks/bench_scale.py [--shard 50] [--memory-gb 12] [--quick]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.settings import load_settings  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
SYNTHETIC_NOTE = "SYNTHETIC: real bars copied under new names, prices scaled per copy"


def sp500_bars() -> tuple[pd.DataFrame, pd.DataFrame]:
    """(stock bars, index bars) of the vendored S&P set."""
    from trading.adapters.registry import market_data

    bars = market_data("sp500").history(None, None, None)
    index = bars["symbol"].isin(["SPX", "SPY", "COMP", "VIX"])
    return bars.loc[~index].reset_index(drop=True), bars.loc[index].reset_index(drop=True)


def shards(symbols: list[str], size: int) -> list[list[str]]:
    from pipelines.compute import symbol_shards

    return symbol_shards(symbols, size)


# -- stage functions (run in this process or on a Dask worker) -------------------------
def technical(bars: pd.DataFrame) -> Any:
    from features.compute import bar_frequency, technical_feature_set

    warnings.simplefilter("ignore")
    return technical_feature_set(bars, bar_frequency(bars))


def complete(parts: list[Any], index: pd.DataFrame) -> pd.DataFrame:
    from features.compute import FeatureSet, bar_frequency, complete_feature_set

    warnings.simplefilter("ignore")
    frame = pd.concat([p.frame for p in parts], ignore_index=True)
    return complete_feature_set(FeatureSet(frame, []), index,
                                bars_per_year=bar_frequency(frame)).frame


def replay(bars: pd.DataFrame, index: pd.DataFrame, start: str, end: str) -> int:
    """Closed trades of the ungated engine on `bars` over [start, end)."""
    from trading.backtest import ReplaySession

    warnings.simplefilter("ignore")
    window = bars.loc[bars["timestamp"] < pd.Timestamp(end, tz="UTC")]
    session = ReplaySession(load_settings(), window, index, pd.Timestamp(start, tz="UTC"))
    session.run_until(None)
    session.finish()
    return len(session.journal.trades())


def timed(call: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = call()
    return time.perf_counter() - started, result


# -- 1. one process against a 2-worker LocalCluster ------------------------------------
# As in the flows, a task gets symbol names and reads its bars from the bar store (shared
# storage), so only names go out and results come back.
def read_bars(store: str, symbols: list[str]) -> pd.DataFrame:
    from features.bar_store import BarStore

    return BarStore(Path(store)).read(symbols=symbols)


def technical_task(store: str, symbols: list[str]) -> Any:
    return technical(read_bars(store, symbols))


def replay_task(store: str, symbols: list[str], indices: list[str], start: str, end: str,
                warmup_from: str) -> int:
    bars = read_bars(store, symbols)
    bars = bars.loc[bars["timestamp"] >= pd.Timestamp(warmup_from, tz="UTC")]
    return replay(bars, read_bars(store, indices), start, end)


def cluster_comparison(shard_size: int, workdir: Path) -> None:
    import os

    from distributed import Client, LocalCluster

    from features.bar_store import BarStore

    stocks, index = sp500_bars()
    store = str(workdir / "bars")
    BarStore(Path(store), durable=False).write(pd.concat([stocks, index], ignore_index=True))
    symbols = sorted(stocks["symbol"].unique())
    indices = sorted(index["symbol"].unique())
    cut = shards(symbols, shard_size)
    folds = [("2016-01-01", "2017-01-01", "2015-06-01"), ("2017-01-01", "2018-01-01",
                                                         "2016-06-01")]
    held_out = symbols[::4]
    print(f"S&P set: {len(symbols)} symbols, {len(stocks):,} daily bars; "
          f"{len(cut)} shards of <= {shard_size} symbols; load average before: "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")

    def stages(run: Callable[..., list[Any]]) -> tuple[dict[str, float], int]:
        index_bars = read_bars(store, indices)
        times: dict[str, float] = {}
        times["features"], _ = timed(lambda: complete(
            run(technical_task, [(store, shard) for shard in cut]), index_bars))
        times["trade collection (2017)"], trades = timed(lambda: sum(run(
            replay_task, [(store, shard, indices, "2017-01-01", "2018-01-01", "2016-07-01")
                          for shard in cut])))
        times["walk-forward folds (2)"], _ = timed(lambda: run(
            replay_task, [(store, held_out, indices, a, z, w) for a, z, w in folds]))
        return times, trades

    one, trades_one = stages(lambda call, calls: [call(*args) for args in calls])
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        client.run(lambda: __import__("trading.backtest"))  # imports before timing
        client.run(lambda: __import__("features.compute"))
        two, trades_two = stages(lambda call, calls: client.gather(
            [client.submit(call, *args, pure=False) for args in calls]))
    assert trades_one == trades_two, (trades_one, trades_two)
    print(f"{'stage':<28}{'one process':>14}{'LocalCluster x2':>18}{'speed-up':>10}")
    for stage in one:
        print(f"{stage:<28}{one[stage]:>12.1f} s{two[stage]:>16.1f} s"
              f"{one[stage] / two[stage]:>9.2f}x")
    print(f"(same closed trades on both: {trades_one}; load average after: "
          f"{os.getloadavg()[0]:.1f})")


# -- 2. synthetic scale-ups, one child process per stage --------------------------------
def synthetic(stocks: pd.DataFrame, factor: int) -> pd.DataFrame:
    """SYNTHETIC: `factor` copies of every real symbol (copy 0 is the real one)."""
    copies = []
    for copy in range(factor):
        scale = 1.0 + 0.01 * copy
        frame = stocks.copy()
        if copy:
            frame["symbol"] = frame["symbol"] + f".S{copy}"
            for column in ("open", "high", "low", "close"):
                frame[column] = frame[column] * scale
        copies.append(frame)
    return pd.concat(copies, ignore_index=True)


def child(stage: str, factor: int) -> dict[str, Any]:
    stocks, index = sp500_bars()
    bars = synthetic(stocks, factor)
    started = time.perf_counter()
    if stage == "features":
        rows = len(complete([technical(bars)], index))
    else:  # the quarter's bars, with half a year before it to warm the features up
        bars = bars.loc[bars["timestamp"] >= pd.Timestamp("2017-07-01", tz="UTC")]
        rows = replay(bars, index, "2018-01-01", "2018-04-01")
    seconds = time.perf_counter() - started
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    return {"symbols": int(bars["symbol"].nunique()), "bars": len(bars), "rows": rows,
            "seconds": seconds, "peak_gb": peak_gb}


def run_child(stage: str, factor: int, memory_gb: float, timeout: float) -> dict[str, Any]:
    limit = int(memory_gb * 1024**3)

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    try:
        done = subprocess.run([sys.executable, __file__, "--child", stage, str(factor)],
                              capture_output=True, text=True, timeout=timeout,
                              preexec_fn=cap, check=False)
    except subprocess.TimeoutExpired:
        return {"broke": f"over {timeout:.0f} s"}
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["?"])[-1]
        return {"broke": "MemoryError" if "MemoryError" in done.stderr else tail[:60]}
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def scale_ups(memory_gb: float, quick: bool) -> None:
    plan = [("features", 1), ("features", 10), ("trade collection, 1 quarter", 1),
            ("trade collection, 1 quarter", 10)]
    if not quick:
        plan.insert(2, ("features", 50))
    print(f"\nScale-ups ({SYNTHETIC_NOTE}); each stage in a fresh process capped at "
          f"{memory_gb:.0f} GB of address space")
    print(f"{'stage':<30}{'x':>4}{'symbols':>9}{'bars':>12}{'time':>10}{'peak RSS':>10}")
    for stage, factor in plan:
        kind = "features" if stage == "features" else "trades"
        found = run_child(kind, factor, memory_gb, timeout=1_800)
        if "broke" in found:
            print(f"{stage:<30}{factor:>4}   breaks: {found['broke']}")
            continue
        print(f"{stage:<30}{factor:>4}{found['symbols']:>9,}{found['bars']:>12,}"
              f"{found['seconds']:>8.1f} s{found['peak_gb']:>7.2f} GB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shard", type=int, default=50, help="symbols per shard")
    parser.add_argument("--memory-gb", type=float, default=12.0)
    parser.add_argument("--quick", action="store_true", help="skip the 50x features stage")
    parser.add_argument("--cluster-only", action="store_true", help="skip the scale-ups")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], int(args.child[1]))))
        return
    if not (ROOT / "trading" / "adapters" / "sp500").exists():
        print("skipped: the vendored sp500 source is missing")
        return
    import tempfile

    with tempfile.TemporaryDirectory(prefix="bench-scale-") as workdir:
        cluster_comparison(args.shard, Path(workdir))
    if not args.cluster_only:
        scale_ups(args.memory_gb, args.quick)


if __name__ == "__main__":
    main()
