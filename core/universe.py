"""The held-out symbols: the part of any universe that no training, tuning or threshold
choice ever sees, so the decision policy can be judged on symbols it never met.

A symbol is held out when `sha256(symbol) mod 5 == 0`: about a fifth of any universe,
decided by the symbol alone, so the split stays the same when the universe grows or
shrinks (a seeded random draw would reshuffle it). Of the vendored 405-symbol S&P 500
set, 73 are held out."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

HELD_OUT_MODULUS = 5  # one symbol in five


def is_held_out(symbol: str) -> bool:
    """True when `symbol` belongs to the held-out fifth (case-insensitive)."""
    digest = hashlib.sha256(symbol.upper().encode()).hexdigest()
    return int(digest, 16) % HELD_OUT_MODULUS == 0


def split_universe(symbols: Iterable[str]) -> tuple[list[str], list[str]]:
    """(development, held-out) symbols, each sorted and deduplicated."""
    unique = sorted({s.upper() for s in symbols})
    held_out = [s for s in unique if is_held_out(s)]
    development = [s for s in unique if not is_held_out(s)]
    return development, held_out
