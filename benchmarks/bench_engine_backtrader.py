"""Engine speed against backtrader on the real S&P 500 daily set (../shared/data,
first N symbols alphabetically, default 50), both running an EMA(9/21) crossover on the
same bars in the same run.

Tradewind runs its full engine (the one `tradewind trade` runs): strategy signals,
regime selector, pre-trade risk (positions, sector, correlation, circuit breaker),
rules decision, Kelly sizing, bracket orders through the matching engine, ATR trailing
stops, time exits, and a SQLite journal of every order, fill, decision and equity point.
backtrader runs a plain crossover (buy on the cross up, close on the cross down) with
market orders. Prints bars/s of each and the ratio; not run by pytest. The trades of
Tradewind's run are pinned by tests/integration/test_backtest_pinned.py, so a speed-up
cannot change them. Figures and the machine's load: docs/CAPACITY.md.

    .venv/bin/python benchmarks/bench_engine_backtrader.py [--symbols 50] [--repeats 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from trading.backtest import run_backtest  # noqa: E402

SOURCE = ROOT.parent / "shared" / "data" / "sp500_daily_2013_2018.parquet"


def load(symbols: int) -> pd.DataFrame:
    bars = pd.read_parquet(SOURCE)
    chosen = sorted(bars["symbol"].unique())[:symbols]
    bars = bars[bars["symbol"].isin(chosen)].dropna(subset=["open", "high", "low", "close"])
    bars = bars.astype({"volume": "float64"})
    return bars.sort_values(["symbol", "timestamp"]).reset_index(drop=True)


def run_tradewind(bars: pd.DataFrame) -> tuple[float, float, float, int]:
    """(whole run seconds, replay seconds, feature seconds, trades)."""
    started = time.perf_counter()
    result = run_backtest(bars, strategy="momentum", repair=True)
    total = time.perf_counter() - started
    return total, result.replay_seconds, result.feature_seconds, int(result.metrics["trades"])


def run_backtrader(bars: pd.DataFrame) -> tuple[float, float, int]:
    """(whole run seconds incl. feed setup, cerebro.run seconds, orders filled)."""
    import backtrader as bt

    class EmaCross(bt.Strategy):  # type: ignore[misc]
        def __init__(self) -> None:
            self.crosses = {
                data: bt.indicators.CrossOver(
                    bt.indicators.EMA(data.close, period=9),
                    bt.indicators.EMA(data.close, period=21),
                )
                for data in self.datas
            }
            self.filled = 0

        def notify_order(self, order: bt.Order) -> None:
            if order.status == order.Completed:
                self.filled += 1

        def next(self) -> None:
            equity = self.broker.getvalue()
            for data, cross in self.crosses.items():
                if not self.getposition(data).size and cross[0] > 0:
                    self.buy(data=data, size=int(equity * 0.05 / data.close[0]))
                elif self.getposition(data).size and cross[0] < 0:
                    self.close(data=data)

    started = time.perf_counter()
    cerebro = bt.Cerebro(stdstats=False)
    cerebro.broker.setcash(100_000.0)
    for symbol, rows in bars.groupby("symbol", sort=True):
        frame = rows.set_index(rows["timestamp"].dt.tz_convert(None))[
            ["open", "high", "low", "close", "volume"]
        ]
        cerebro.adddata(bt.feeds.PandasData(dataname=frame), name=str(symbol))
    cerebro.addstrategy(EmaCross)
    run_started = time.perf_counter()
    strategy = cerebro.run()[0]
    finished = time.perf_counter()
    return finished - started, finished - run_started, strategy.filled


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if not SOURCE.exists():
        sys.exit(f"{SOURCE.name} not found in ../shared/data; the benchmark needs it")
    bars = load(args.symbols)
    n = len(bars)
    print(f"S&P 500 daily, {bars['symbol'].nunique()} symbols, {n:,} bars, EMA(9/21) crossover")

    tradewind = min((run_tradewind(bars) for _ in range(args.repeats)), key=lambda r: r[0])
    peer = min((run_backtrader(bars) for _ in range(args.repeats)), key=lambda r: r[0])
    total, replay, features, trades = tradewind
    bt_total, bt_run, bt_fills = peer
    print(
        f"tradewind engine : {n / total:>10,.0f} bars/s whole run ({total:.2f}s: features "
        f"{features:.2f}s, replay {replay:.2f}s = {n / replay:,.0f} bars/s), {trades} trades"
    )
    print(
        f"backtrader       : {n / bt_total:>10,.0f} bars/s whole run ({bt_total:.2f}s; "
        f"cerebro.run {bt_run:.2f}s = {n / bt_run:,.0f} bars/s), {bt_fills} fills"
    )
    print(f"ratio (whole run, tradewind / backtrader): {bt_total / total:.1f}x")
    print(f"ratio (replay loop vs cerebro.run)       : {bt_run / replay:.1f}x")


if __name__ == "__main__":
    main()
