"""`StoreMarketData`: the `MarketData` port over the offline bar store (partitioned
parquet under `<data_dir>/bars`, written by the ingest). Bars were validated on the way
in, so a read has nothing to repair."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path

import pandas as pd

from core.bars import DAILY, BarCheck
from features.bar_store import BarStore


class StoreMarketData:
    """The `MarketData` port on a `BarStore`."""

    def __init__(self, bars_dir: Path) -> None:
        self.store = BarStore(bars_dir)

    def symbols(self, timeframe: str = DAILY) -> list[str]:
        return self.store.symbols(timeframe)

    def history_check(
        self,
        symbols: Sequence[str] | None = None,
        start: datetime | date | str | None = None,
        end: datetime | date | str | None = None,
        timeframe: str = DAILY,
    ) -> BarCheck:
        """Stored bars of `symbols` (all when None), start/end inclusive; no repairs."""
        return BarCheck(bars=self.history(symbols, start, end, timeframe))

    def history(
        self,
        symbols: Sequence[str] | None = None,
        start: datetime | date | str | None = None,
        end: datetime | date | str | None = None,
        timeframe: str = DAILY,
    ) -> pd.DataFrame:
        return self.store.read(symbols=symbols, start=start, end=end, timeframe=timeframe)
