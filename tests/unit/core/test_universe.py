"""Held-out symbols: a stable fifth of any universe, decided by the symbol alone."""

from __future__ import annotations

import hashlib

from core.universe import is_held_out, split_universe
from trading.adapters.sp500.data import SP500MarketData


def test_the_rule_is_the_documented_hash() -> None:
    for symbol in ("AAPL", "MSFT", "XOM", "A", "ZTS"):
        expected = int(hashlib.sha256(symbol.encode()).hexdigest(), 16) % 5 == 0
        assert is_held_out(symbol) is expected
    assert is_held_out("aapl") is is_held_out("AAPL")


def test_the_split_of_the_vendored_set_is_a_fifth_and_disjoint() -> None:
    stocks = SP500MarketData().stocks()
    development, held_out = split_universe(stocks)
    assert len(held_out) == 73
    assert len(development) == 332
    assert not set(development) & set(held_out)


def test_the_split_does_not_move_when_the_universe_changes() -> None:
    stocks = SP500MarketData().stocks()
    _, held_all = split_universe(stocks)
    _, held_half = split_universe(stocks[::2])
    assert set(held_half) == set(held_all) & set(stocks[::2])
