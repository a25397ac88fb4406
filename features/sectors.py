"""The symbol → GICS sector map for every symbol Tradewind ships data for (the sample
symbols and the S&P 500 constituents of the shared data set). The map lives in
`features/sectors.csv` (symbol,sector; maintained by hand, GICS sectors as of the 2018
reclassification that created Communication Services). Symbols not in the map, and the
index series themselves, are `unknown`."""

from __future__ import annotations

import csv
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from core.errors import ConfigError

UNKNOWN = "unknown"

# Fixed order: the position in this tuple is the `sector_id` feature (unknown is -1).
SECTORS: tuple[str, ...] = (
    "Communication Services",
    "Consumer Discretionary",
    "Consumer Staples",
    "Energy",
    "Financials",
    "Health Care",
    "Industrials",
    "Information Technology",
    "Materials",
    "Real Estate",
    "Utilities",
)

_MAP_FILE = Path(__file__).with_name("sectors.csv")


@lru_cache(maxsize=1)
def sector_map() -> dict[str, str]:
    """symbol → sector, read once from the committed CSV."""
    mapping: dict[str, str] = {}
    with _MAP_FILE.open(newline="") as handle:
        for row_number, row in enumerate(csv.DictReader(handle), start=2):
            sector = row["sector"].strip()
            if sector not in SECTORS:
                raise ConfigError(
                    f"line {row_number}: '{sector}' is not a GICS sector ({', '.join(SECTORS)})",
                    where=str(_MAP_FILE.name),
                )
            mapping[row["symbol"].strip().upper()] = sector
    return mapping


def sector_of(symbol: str) -> str:
    """The symbol's sector, or `unknown`."""
    return sector_map().get(symbol.upper(), UNKNOWN)


def sector_id(sector: str) -> int:
    """Position of the sector in SECTORS; -1 for unknown."""
    try:
        return SECTORS.index(sector)
    except ValueError:
        return -1


def sector_ids(symbols: pd.Series) -> np.ndarray:
    """Vectorized `sector_id(sector_of(symbol))` for a column of symbols."""
    codes = {symbol: sector_id(sector) for symbol, sector in sector_map().items()}
    # Map each distinct symbol once, then broadcast (a column has few distinct symbols).
    positions, distinct = pd.factorize(symbols.astype(str), sort=False)
    per_symbol = np.array([codes.get(s.upper(), -1) for s in distinct], dtype=np.int64)
    return per_symbol[positions] if len(distinct) else np.zeros(0, dtype=np.int64)
