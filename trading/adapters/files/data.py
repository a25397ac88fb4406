"""`FileMarketData`: bars from a user's parquet or CSV files (one file, or every
`*.parquet` / `*.csv` / `*.csv.gz` file in a folder, recursively).

Each file is validated with `core.bars.validate_bars` under its own name, so a message
points at the file and the 0-based data row (for a CSV, line = row + 2). Then the files
are checked together (the same bar in two files is a duplicate). With `repair=True`
bad rows are dropped or fixed and every touched row is reported (`history_check`).

Friendly to common exports, and documented rather than guessed per file: column names
are matched case-insensitively; `date`/`datetime`/`time` stand for `timestamp` and
`ticker` for `symbol`; a file without a symbol column takes its symbol from the file
name (`AAPL.csv` → `AAPL`). With `timeframe="1Day"` bars are stamped at the session's
midnight New York (Alpaca's convention, see `core.bars`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path

import pandas as pd

from core.bars import DAILY, BarCheck, check_timeframe, time_bound, validate_bars
from core.errors import DataValidationError, NotFoundError

SUFFIXES: tuple[str, ...] = (".parquet", ".csv", ".csv.gz")
_ALIASES = {"date": "timestamp", "datetime": "timestamp", "time": "timestamp", "ticker": "symbol"}


class FileMarketData:
    """The `MarketData` port over parquet/CSV files."""

    def __init__(
        self, path: Path | str, repair: bool = False, formats: Sequence[str] = ("parquet", "csv")
    ) -> None:
        self.path = Path(path)
        self.repair = repair
        unknown = sorted(set(formats) - {"parquet", "csv"})
        if unknown:
            raise DataValidationError(f"unknown file format(s) {unknown}", where="files")
        self.suffixes = tuple(s for s in SUFFIXES if s.lstrip(".").split(".")[0] in formats)

    def files(self) -> list[Path]:
        if not self.path.exists():
            raise NotFoundError(f"no such file or folder: {self.path}", where="files")
        if self.path.is_file():
            if not _is_bar_file(self.path, self.suffixes):
                raise DataValidationError(
                    f"{self.path.name} is not a bar file; use {', '.join(self.suffixes)}",
                    where=str(self.path),
                )
            return [self.path]
        found = sorted(
            p for p in self.path.rglob("*") if p.is_file() and _is_bar_file(p, self.suffixes)
        )
        if not found:
            raise NotFoundError(
                f"no {', '.join(self.suffixes)} files in the folder {self.path}", where="files"
            )
        return found

    def history_check(
        self,
        symbols: Sequence[str] | None = None,
        start: datetime | date | str | None = None,
        end: datetime | date | str | None = None,
        timeframe: str = DAILY,
    ) -> BarCheck:
        """Validated bars of `symbols` (all when None), start/end inclusive, with what
        repair touched and the jump warnings."""
        check_timeframe(timeframe)
        checks = [
            validate_bars(_read(path), where=str(path), repair=self.repair, timeframe=timeframe)
            for path in self.files()
        ]
        combined = checks[0]
        if len(checks) > 1:
            # Each file is sorted already; a stable sort keeps file order among equal
            # keys, so only bars present in two files remain to be judged.
            together = pd.concat([c.bars for c in checks], ignore_index=True)
            together = together.sort_values(["symbol", "timestamp"], kind="stable")
            merged = validate_bars(
                together,
                where=f"{self.path} (all files together)",
                repair=self.repair,
                timeframe=timeframe,
            )
            combined = BarCheck(
                bars=merged.bars,
                repairs=[r for c in checks for r in c.repairs] + merged.repairs,
                warnings=merged.warnings,
            )
        bars = combined.bars
        keep = pd.Series(True, index=bars.index)
        if symbols is not None:
            keep &= bars["symbol"].isin([s.upper() for s in symbols] + list(symbols))
        lower, upper = time_bound(start), time_bound(end, end=True)
        if lower is not None:
            keep &= bars["timestamp"] >= lower
        if upper is not None:
            keep &= bars["timestamp"] <= upper
        chosen = set(bars.loc[keep, "symbol"])
        return BarCheck(
            bars=bars[keep].reset_index(drop=True),
            repairs=[r for r in combined.repairs if symbols is None or r.symbol in chosen],
            warnings=[w for w in combined.warnings if w.symbol in chosen],
        )

    def history(
        self,
        symbols: Sequence[str] | None = None,
        start: datetime | date | str | None = None,
        end: datetime | date | str | None = None,
        timeframe: str = DAILY,
    ) -> pd.DataFrame:
        return self.history_check(symbols, start, end, timeframe).bars


def _is_bar_file(path: Path, suffixes: tuple[str, ...]) -> bool:
    return path.name.lower().endswith(suffixes) and not path.name.startswith(".")


def _read(path: Path) -> pd.DataFrame:
    try:
        if path.name.lower().endswith(".parquet"):
            frame = pd.read_parquet(path)
        else:
            # Strings stay strings: validation parses them and names what it cannot.
            frame = pd.read_csv(path, dtype={"symbol": str, "ticker": str}, keep_default_na=True)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise DataValidationError(f"cannot read the file: {exc}", where=str(path)) from exc
    frame = frame.rename(columns=lambda name: str(name).strip().lower())
    for alias, name in _ALIASES.items():
        if name not in frame.columns and alias in frame.columns:
            frame = frame.rename(columns={alias: name})
    if "symbol" not in frame.columns and "timestamp" in frame.columns:
        stem = path.name.split(".")[0]
        frame.insert(0, "symbol", stem.upper())
    return frame
