"""`SampleMarketData`: the embedded default source, real daily bars that ship inside PyPI
packages, so Tradewind works offline on a fresh machine.

- `bokeh-sampledata` `stocks` (Quandl WIKI, public domain): AAPL, MSFT, IBM
  2000-03-01 → 2013-03-01, GOOG 2004-08-19 → 2013-03-01, FB 2012-05-18 → 2013-03-01.
  Its OHLCV is unadjusted: AAPL's 2:1 splits (2000-06-21, 2005-02-28) and MSFT's
  (2003-02-18) show as one-day halvings. By default (`adjustment="all"`) prices are
  scaled by the source's `adj_close / close` factor (splits and dividends) and volume
  by its inverse (dollar volume unchanged), which removes those false crashes; use
  `adjustment="raw"` for the printed prices.
- `arch` `sp500` and `nasdaq` (1999-01-04 → 2018-12-31) as index series `SPX` and
  `COMP` (full OHLCV), and `vix` (2014-01-03 → 2019-01-03) as `VIX`: close only, so
  open = high = low = close and volume = 0. Its 46 missing days are dropped and
  reported as repairs.

Every bar is stamped like Alpaca's daily bars: the session date at midnight New York,
in UTC (see `core.bars`). Everything passes `core.bars.validate_bars`; what the
loading had to fix is kept in `load_check().repairs` and its jump warnings (AAPL's
real 2000-09-29 crash, VIX spikes) in `.warnings`.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from core.bars import DAILY, BarCheck, check_timeframe, validate_bars
from core.errors import DataSourceError, NotFoundError
from core.symbols import CONTEXT_ONLY_SYMBOLS

STOCKS: tuple[str, ...] = ("AAPL", "FB", "GOOG", "IBM", "MSFT")
INDEXES: tuple[str, ...] = tuple(sorted(CONTEXT_ONLY_SYMBOLS))  # what the arch files give
SYMBOLS: tuple[str, ...] = STOCKS + INDEXES


class SampleMarketData:
    """The `MarketData` port over the embedded sample bars (daily only)."""

    def __init__(self, adjustment: Literal["all", "raw"] = "all") -> None:
        self.adjustment = adjustment
        self._check: BarCheck | None = None

    def symbols(self) -> list[str]:
        return sorted(SYMBOLS)

    def load_check(self) -> BarCheck:
        """Every sample bar, validated, with the repairs and warnings (loaded once)."""
        if self._check is None:
            frame = pd.concat([_stocks(self.adjustment), _indexes()], ignore_index=True)
            self._check = validate_bars(frame, where="sample data", repair=True, timeframe=DAILY)
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
                f"the sample data is daily only; asked for {timeframe}", where="sample data"
            )
        wanted = self.symbols() if symbols is None else [s.upper() for s in symbols]
        unknown = sorted(set(wanted) - set(SYMBOLS))
        if unknown:
            raise NotFoundError(
                f"no sample bars for {', '.join(unknown)}; the sample symbols are "
                f"{', '.join(self.symbols())}",
                where="sample data",
            )
        return self.load_check().select(wanted, start, end)

    def history(
        self,
        symbols: Sequence[str] | None = None,
        start: datetime | date | str | None = None,
        end: datetime | date | str | None = None,
        timeframe: str = DAILY,
    ) -> pd.DataFrame:
        """Daily bars of `symbols` (all sample symbols when None), start/end inclusive."""
        return self.history_check(symbols, start, end, timeframe).bars


def _stocks(adjustment: str) -> pd.DataFrame:
    from bokeh_sampledata import stocks  # parses its CSV on import: load lazily

    raw = stocks.data
    frame = pd.DataFrame(
        {
            "symbol": raw["ticker"].astype(str),
            "timestamp": raw["date"].dt.strftime("%Y-%m-%d"),
            "open": raw["open"].astype("float64"),
            "high": raw["high"].astype("float64"),
            "low": raw["low"].astype("float64"),
            "close": raw["close"].astype("float64"),
            "volume": raw["volume"].astype("float64"),
        }
    )
    if adjustment == "all":
        # One factor per row, applied to every price the same way: multiplying by the
        # same positive float keeps low <= open, close <= high exactly (using the
        # source's own adj_close instead breaks that by rounding on 13 rows).
        factor = (raw["adj_close"] / raw["close"]).to_numpy(dtype="float64")
        for name in ("open", "high", "low", "close"):
            frame[name] = frame[name].to_numpy() * factor
        frame["volume"] = np.round(frame["volume"].to_numpy() / factor)
    return frame


def _arch_file(name: str) -> pd.DataFrame:
    """One of arch's bundled CSVs, read directly: importing `arch` itself pulls in
    statsmodels and takes seconds, for three small files."""
    spec = importlib.util.find_spec("arch")
    if spec is None or spec.origin is None:
        raise DataSourceError("the arch package is not installed", where="sample data")
    path = Path(spec.origin).parent / "data" / name / f"{name}.csv.gz"
    raw = pd.read_csv(path)
    # The files spell dates US-style (1/4/1999).
    raw["Date"] = pd.to_datetime(raw["Date"], format="%m/%d/%Y").dt.strftime("%Y-%m-%d")
    return raw


def _indexes() -> pd.DataFrame:
    frames = []
    for symbol, name in (("SPX", "sp500"), ("COMP", "nasdaq")):
        raw = _arch_file(name)
        frames.append(
            pd.DataFrame(
                {
                    "symbol": symbol,
                    "timestamp": raw["Date"],
                    "open": pd.to_numeric(raw["Open"], errors="coerce"),
                    "high": pd.to_numeric(raw["High"], errors="coerce"),
                    "low": pd.to_numeric(raw["Low"], errors="coerce"),
                    "close": pd.to_numeric(raw["Close"], errors="coerce"),
                    "volume": pd.to_numeric(raw["Volume"], errors="coerce"),
                }
            )
        )
    raw_vix = _arch_file("vix")
    close = pd.to_numeric(raw_vix["vix"], errors="coerce").to_numpy(dtype="float64")
    frames.append(
        pd.DataFrame(
            {
                "symbol": "VIX",
                "timestamp": raw_vix["Date"],
                "open": close,
                "high": close,
                "low": close,
                "close": close,
                "volume": 0.0,
            }
        )
    )
    return pd.concat(frames, ignore_index=True)
