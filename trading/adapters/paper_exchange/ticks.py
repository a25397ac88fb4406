"""Trades and quotes derived from a replayed bar, for the stock stream's `trades` and
`quotes` channels when the exchange has no tick data (it never has: it replays bars).

Deterministic, and documented in docs/PAPER-EXCHANGE.md: a bar starting at `t` with
spacing `step` becomes four trade prints at `t`, `t + step/4`, `t + step/2` and
`t + 3·step/4`: the open, the two extremes (low first on a bar that closed at or above
its open, high first otherwise) and the close, each with a quarter of the bar's volume
(the remainder on the close). Each print comes with a quote around it: bid and ask half
a spread below and above the print (spread: one basis point of the price, at least a
cent), 1 round lot a side. Trade ids count up per symbol and bar:
`epoch-seconds × 4 + k`.

By default a step's prints go out together, just before its bar (the matching engine
has matched the whole bar). With `intrabar_prints` the venue replays the four prints
one by one (`POST /admin/advance {"prints": n}`) and matches orders AT each print, so
an order sent after one print fills at the next, within the bar."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import msgpack

from core.types import Bar

PRINTS_PER_BAR = 4
EXCHANGE_CODE = "V"  # IEX, as Alpaca's iex feed reports it


def price_path(bar: Bar) -> tuple[float, float, float, float]:
    """open, first extreme, second extreme, close."""
    if bar.close >= bar.open:
        return bar.open, bar.low, bar.high, bar.close
    return bar.open, bar.high, bar.low, bar.close


def print_sizes(volume: float) -> list[int]:
    total = max(int(volume), 0)
    quarter = total // PRINTS_PER_BAR
    return [quarter] * (PRINTS_PER_BAR - 1) + [total - quarter * (PRINTS_PER_BAR - 1)]


def print_time(bar: Bar, step: timedelta, phase: int) -> datetime:
    """When print `phase` (0..3) of `bar` happens."""
    return bar.timestamp + step * phase / PRINTS_PER_BAR


def tick_messages(
    bar: Bar, step: timedelta, phase: int, *, trades: bool, quotes: bool
) -> list[dict[str, Any]]:
    """Print `phase` of the bar: its quote (`T: q`) and/or trade (`T: t`)."""
    out: list[dict[str, Any]] = []
    price, size = price_path(bar)[phase], print_sizes(bar.volume)[phase]
    stamp = msgpack.Timestamp.from_datetime(print_time(bar, step, phase))
    if quotes:
        half = max(0.01, round(price * 1e-4, 2)) / 2
        out.append({"T": "q", "S": bar.symbol, "bx": EXCHANGE_CODE,
                    "bp": round(price - half, 4), "bs": 1, "ax": EXCHANGE_CODE,
                    "ap": round(price + half, 4), "as": 1, "c": ["R"], "t": stamp, "z": "C"})
    if trades:
        trade_id = int(bar.timestamp.timestamp()) * PRINTS_PER_BAR + phase
        out.append({"T": "t", "S": bar.symbol, "i": trade_id, "x": EXCHANGE_CODE,
                    "p": price, "s": size, "c": ["@"], "t": stamp, "z": "C"})
    return out
