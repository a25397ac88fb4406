"""What the local paper exchange costs over the in-process matching engine it wraps:
the same limit orders submitted through `AlpacaBroker` (alpaca-py → HTTP → paper
exchange subprocess → MatchingEngine) and through `SimulatedBroker` (MatchingEngine in
process), plus one replayed bar step with those orders resting. Real AAPL/MSFT daily bars
from bokeh-sampledata.

    .venv/bin/python benchmarks/bench_exchange_orders.py [--orders 300]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.clock import ReplayClock
from core.settings import AlpacaCredentials
from core.types import Order, OrderType, Side, TimeInForce
from tests.integration.exchange_support import (
    KEY,
    SECRET,
    Exchange,
    sample_bars,
    write_store,
)
from trading.adapters.alpaca.execution import AlpacaBroker, AlpacaBrokerConfig
from trading.adapters.simulated import MatchingEngine, SimulatedBroker
from trading.adapters.simulated.config import SimulatedExchangeConfig


def orders(prefix: str, count: int) -> list[Order]:
    # Resting buy limits far below the market: they stay on the book.
    return [
        Order(
            f"{prefix}-{i}",
            "AAPL" if i % 2 else "MSFT",
            Side.BUY,
            1,
            type=OrderType.LIMIT,
            limit_price=1.0 + i / 1000,
            time_in_force=TimeInForce.GTC,
        )
        for i in range(count)
    ]


def timed(submit, batch: list[Order]) -> list[float]:  # type: ignore[no-untyped-def]
    latencies = []
    for order in batch:
        started = time.perf_counter()
        submit(order)
        latencies.append(time.perf_counter() - started)
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=300)
    count = parser.parse_args().orders
    bars = sample_bars(("AAPL", "MSFT"), days=250)

    engine = MatchingEngine(SimulatedExchangeConfig(), ReplayClock(bars["timestamp"].min()))
    in_process = timed(SimulatedBroker(engine).submit, orders("sim", count))

    with tempfile.TemporaryDirectory() as folder:
        workdir = Path(folder)
        write_store(workdir / "data", bars)
        exchange = Exchange(workdir).start()
        try:
            broker = AlpacaBroker(
                AlpacaBrokerConfig(url_override=exchange.url),
                AlpacaCredentials(ALPACA_API_KEY=KEY, ALPACA_SECRET_KEY=SECRET),
            )
            exchange.advance(1)
            over_http = timed(broker.submit, orders("http", count))
            steps = []
            for _ in range(20):
                started = time.perf_counter()
                exchange.advance(1)
                steps.append(time.perf_counter() - started)
        finally:
            exchange.close()

    def ms(values: list[float]) -> str:
        p50 = statistics.median(values) * 1e3
        p99 = sorted(values)[int(len(values) * 0.99) - 1] * 1e3
        return f"p50 {p50:7.3f} ms  p99 {p99:7.3f} ms"

    print(f"{count} resting limit orders submitted one at a time")
    print(f"  SimulatedBroker (in process)           {ms(in_process)}")
    print(f"  AlpacaBroker -> paper exchange (HTTP)  {ms(over_http)}")
    ratio = statistics.median(over_http) / statistics.median(in_process)
    print(f"  ratio HTTP / in-process (p50)          {ratio:,.0f}x")
    print(f"one replayed bar step with {count} orders resting: {ms(steps)}")


if __name__ == "__main__":
    main()
