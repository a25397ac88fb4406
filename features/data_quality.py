"""Data-quality findings of the feature computation. Bad bars (NaN or non-positive
prices, negative volume, high below low), gaps and symbols shorter than a lookback never
raise inside TA-Lib: the affected features are NaN and each symbol gets ONE warning that
lists its problems. The findings are returned as data (`FeatureWarning`) and also issued
through Python's `warnings` module (`FeatureDataWarning`)."""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass


class FeatureDataWarning(UserWarning):
    """Issued once per symbol whose bars made some features NaN."""


@dataclass(frozen=True, slots=True)
class FeatureWarning:
    symbol: str
    problems: tuple[str, ...]

    @property
    def message(self) -> str:
        return f"features for {self.symbol}: " + "; ".join(self.problems)


def merge_warnings(found: Iterable[FeatureWarning]) -> list[FeatureWarning]:
    """One warning per symbol, problems in the order they were found."""
    by_symbol: dict[str, list[str]] = {}
    for item in found:
        bucket = by_symbol.setdefault(item.symbol, [])
        bucket.extend(p for p in item.problems if p not in bucket)
    return [FeatureWarning(symbol, tuple(problems)) for symbol, problems in by_symbol.items()]


def issue(found: Iterable[FeatureWarning]) -> None:
    """Send each finding through `warnings.warn` (one per symbol)."""
    for item in found:
        warnings.warn(item.message, FeatureDataWarning, stacklevel=3)
