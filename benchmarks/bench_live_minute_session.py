"""The live path on one session of 1-minute bars for 500 symbols: per bar time, every
symbol's bar through the simulated exchange, the streaming features and the strategies
(`RollingFeed.observe_many`), the engine's decisions (rules client, risk, sizing) and
its orders. Prints p50/p99 of the whole bar time, target p99 <= 1 s, and the same step
with the per-symbol `observe` (one strategy pass per symbol) as the peer, same run.

Bars: SYNTHETIC scale-up of real bars. The 1-minute bars of AAPL, MSFT, GLD and TLT
(../shared/data/intraday/minute_2021.parquet) for 2021-08-23 (warm-up) and 2021-08-24
(timed) are copied to `--symbols` names, each copy's prices scaled by its own factor
(volumes unchanged), so every series has real minute-bar shapes.

    .venv/bin/python benchmarks/bench_live_minute_session.py [--symbols 500] [--minutes 390]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import deque
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.clock import ReplayClock  # noqa: E402
from core.settings import Settings  # noqa: E402
from core.types import BAR_COLUMNS, Bar  # noqa: E402
from trading.backtest import build_engine  # noqa: E402
from trading.feed import RollingFeed  # noqa: E402
from trading.journal import Journal  # noqa: E402
from trading.strategies import STRATEGIES  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "intraday" / "minute_2021.parquet"
REAL = ("AAPL", "MSFT", "GLD", "TLT")
WARM_UP, SESSION = "2021-08-23", "2021-08-24"


def scaled_universe(count: int) -> pd.DataFrame:
    """`count` synthetic symbols, each a price-scaled copy of one of the real series."""
    if not DATA.exists():
        sys.exit(f"real minute bars not found: {DATA.relative_to(ROOT.parent)}")
    real = pd.read_parquet(DATA).loc[:, list(BAR_COLUMNS)]
    real = real.loc[real["symbol"].isin(REAL) & (real["timestamp"] < "2021-08-25")]
    copies = []
    for i in range(count):
        copy = real.loc[real["symbol"] == REAL[i % len(REAL)]].copy()
        factor = 0.5 + (i * 0.618_033_988) % 1.5
        copy[["open", "high", "low", "close"]] *= factor
        copy["symbol"] = f"S{i:03d}"
        copies.append(copy)
    return pd.concat(copies, ignore_index=True).sort_values(["timestamp", "symbol"])


def run(bars: pd.DataFrame, minutes: int, *, batched: bool) -> tuple[np.ndarray, int]:
    """Seconds per bar time over the session's first `minutes`, and the orders placed."""
    warm = bars.loc[bars["timestamp"] < SESSION]
    live = bars.loc[bars["timestamp"] >= SESSION]
    times = sorted(live["timestamp"].unique())[:minutes]
    clock = ReplayClock(pd.Timestamp(times[0]).to_pydatetime())
    feed = RollingFeed(list(STRATEGIES.values()), bars_per_year=98_280.0)
    feed.seed(warm)
    engine, matching = build_engine(
        settings=Settings(),
        clock=clock,
        feed=feed,  # type: ignore[arg-type]  # the live feed behind the same engine
        strategy=None,
        model_client=None,
        journal=Journal("sqlite://", batch_size=5_000),
        gate_enabled=False,
        trade_sink=None,
        exchange=None,
        timeframe="1Min",
    )
    updates: deque = deque()
    matching.subscribe(updates.append)
    seconds = []
    grouped = dict(tuple(live.groupby("timestamp")))
    for moment in times:
        group = grouped[moment]
        stamp = pd.Timestamp(moment).to_pydatetime()
        frame_bars = [
            Bar(s, stamp, o, h, low, c, v)
            for s, o, h, low, c, v in zip(
                group["symbol"], group["open"], group["high"], group["low"], group["close"],
                group["volume"], strict=True,
            )
        ]
        started = time.perf_counter()
        clock.advance_to(stamp)
        engine.advance(stamp)
        for bar in frame_bars:
            matching.on_bar(bar)
        while updates:
            engine.on_order_update(updates.popleft())
        if batched:
            feed.observe_many(frame_bars)
        for bar in frame_bars:
            engine.on_bar(bar)
            while updates:
                engine.on_order_update(updates.popleft())
        seconds.append(time.perf_counter() - started)
    engine.finish()
    return np.array(seconds), len(engine.journal.frame("orders"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--minutes", type=int, default=390)
    parser.add_argument("--peer-minutes", type=int, default=30,
                        help="bar times for the per-symbol peer (slow)")
    args = parser.parse_args()
    bars = scaled_universe(args.symbols)
    print(f"SYNTHETIC: {args.symbols} price-scaled copies of real 1-minute bars of "
          f"{', '.join(REAL)}; warm-up {WARM_UP}, timed {SESSION}")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    ours, orders = run(bars, args.minutes, batched=True)
    peer, _ = run(bars, args.peer_minutes, batched=False)
    for name, values in (("ours: observe_many per bar time", ours),
                         ("peer: observe per symbol", peer)):
        print(f"  {name:<34} {len(values):>4} bar times  p50 {np.percentile(values, 50):7.3f} s"
              f"  p99 {np.percentile(values, 99):7.3f} s")
    print(f"  orders placed by the engine in the timed session: {orders}")
    print(f"ratio peer / ours, p50: {np.percentile(peer, 50) / np.percentile(ours, 50):.1f}x")
    p99 = float(np.percentile(ours, 99))
    print(f"target p99 per bar time for all {args.symbols} symbols <= 1 s: {p99:.3f} s, "
          f"{'meets' if p99 <= 1.0 else 'MISSES'} it")


if __name__ == "__main__":
    main()
