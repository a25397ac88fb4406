"""`SP500MarketData`: the broad embedded default source, 405 S&P 500 constituents,
daily, 2013-02-08 → 2018-02-07 (Kaggle "S&P 500 stock data", CC0, sourced from IEX),
vendored in this folder in a compact lossless form (see README.md), plus the index
series of the sample source (`SPX`, `COMP` 1999–2018 and `VIX` 2014–2019 from `arch`)
as market context.

The compact file stores prices as integers in units of 1/10,000 of a dollar (every
price of the original is an exact multiple of that) with parquet's delta encoding:
5.7 MB instead of 7.1 MB, and `read_compact` gives back the original values exactly.
Every bar then passes `core.bars.validate_bars(repair=True)` like any other source: the
set's known quirks (20 missing prices, bad prints) are repaired and reported in
`load_check().repairs`, spin-off jumps kept as warnings."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from core.bars import DAILY, PRICE_COLUMNS, BarCheck, check_timeframe, validate_bars
from core.errors import DataSourceError, NotFoundError
from trading.adapters.sample.data import INDEXES, SampleMarketData

DATA_FILE = Path(__file__).with_name("sp500_daily_2013_2018.parquet")
PRICE_SCALE = 10_000  # prices are stored as integer 1/10,000 dollars
FIRST_SESSION = "2013-02-08"
LAST_SESSION = "2018-02-07"


def write_compact(bars: pd.DataFrame, path: Path) -> None:
    """Write bars (bar schema, prices on a 1/10,000 grid) in the compact vendored form.
    Refuses a price that the integer grid would round (the form must stay lossless)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    frame = bars.sort_values(["symbol", "timestamp"], kind="stable")
    columns: dict[str, pa.Array] = {
        "symbol": pa.array(frame["symbol"].astype(str)).dictionary_encode(),
        "timestamp": pa.array(
            frame["timestamp"].dt.tz_convert("UTC").dt.tz_localize(None)
            .to_numpy().astype("datetime64[s]")
        ),
    }
    for name in PRICE_COLUMNS:
        values = frame[name].to_numpy(dtype="float64")
        scaled = np.round(values * PRICE_SCALE)
        off_grid = ~np.isnan(values) & (np.abs(scaled / PRICE_SCALE - values) > 1e-9)
        if off_grid.any():
            raise DataSourceError(
                f"{int(off_grid.sum())} {name} prices are not multiples of "
                f"1/{PRICE_SCALE}; the compact form would round them",
                where=str(path),
            )
        mask = np.isnan(values)
        columns[name] = pa.array(np.where(mask, 0, scaled).astype("int64"), mask=mask)
    columns["volume"] = pa.array(frame["volume"].to_numpy(dtype="int64"))
    encoded = [name for name in columns if name != "symbol"]
    pq.write_table(
        pa.table(columns), path, compression="zstd", compression_level=19,
        use_dictionary=["symbol"],
        column_encoding=dict.fromkeys(encoded, "DELTA_BINARY_PACKED"),
        row_group_size=1_000_000,
    )


def read_compact(path: Path = DATA_FILE) -> pd.DataFrame:
    """The compact file back as a raw bar frame (the original values, not yet validated)."""
    if not path.is_file():
        raise DataSourceError(
            f"the vendored S&P 500 file is missing: {path.name}", where="sp500 data"
        )
    raw = pd.read_parquet(path)
    frame = pd.DataFrame({
        "symbol": raw["symbol"].astype(str),
        "timestamp": pd.to_datetime(raw["timestamp"]).dt.tz_localize("UTC"),
    })
    for name in PRICE_COLUMNS:
        frame[name] = raw[name].astype("float64") / PRICE_SCALE
    frame["volume"] = raw["volume"].astype("float64")
    return frame


class SP500MarketData:
    """The `MarketData` port over the vendored S&P 500 set and the sample index series."""

    def __init__(self, path: Path = DATA_FILE) -> None:
        self.path = path
        self._check: BarCheck | None = None
        self._stocks: tuple[str, ...] | None = None

    def stocks(self) -> list[str]:
        """The 405 constituents (index series excluded)."""
        if self._stocks is None:
            import pyarrow.parquet as pq

            column = pq.read_table(self.path, columns=["symbol"]).column("symbol")
            self._stocks = tuple(sorted(set(column.to_pylist())))
        return list(self._stocks)

    def symbols(self) -> list[str]:
        return sorted([*self.stocks(), *INDEXES])

    def load_check(self) -> BarCheck:
        """Every bar (stocks and indexes), validated and repaired once."""
        if self._check is None:
            stocks = validate_bars(read_compact(self.path), where="sp500 data", repair=True,
                                   timeframe=DAILY)
            indexes = SampleMarketData().history_check(symbols=INDEXES)
            bars = pd.concat([stocks.bars, indexes.bars], ignore_index=True)
            self._check = BarCheck(
                bars=bars.sort_values(["symbol", "timestamp"], kind="stable")
                .reset_index(drop=True),
                repairs=[*stocks.repairs, *indexes.repairs],
                warnings=[*stocks.warnings, *indexes.warnings],
            )
        return self._check

    def history_check(
        self,
        symbols: Sequence[str] | None = None,
        start: datetime | date | str | None = None,
        end: datetime | date | str | None = None,
        timeframe: str = DAILY,
    ) -> BarCheck:
        """Like `history`, with the repairs and warnings that concern the selection."""
        check_timeframe(timeframe)
        if timeframe != DAILY:
            raise DataSourceError(
                f"the S&P 500 set is daily only; asked for {timeframe}", where="sp500 data"
            )
        known = set(self.symbols())
        wanted = sorted(known) if symbols is None else [s.upper() for s in symbols]
        unknown = sorted(set(wanted) - known)
        if unknown:
            raise NotFoundError(
                f"no S&P 500 bars for {', '.join(unknown[:10])}"
                f"{' …' if len(unknown) > 10 else ''} (the set holds {len(known)} symbols, "
                f"e.g. {', '.join(sorted(known)[:5])}; trading/adapters/sp500/README.md)",
                where="sp500 data",
            )
        return self.load_check().select(wanted, start, end)

    def history(
        self,
        symbols: Sequence[str] | None = None,
        start: datetime | date | str | None = None,
        end: datetime | date | str | None = None,
        timeframe: str = DAILY,
    ) -> pd.DataFrame:
        """Daily bars of `symbols` (every stock and index when None), start/end inclusive."""
        return self.history_check(symbols, start, end, timeframe).bars
