"""Sentiment features, bar by bar: the streaming twin of `features.sentiment`. Headlines
and earnings dates are indexed once per symbol (sorted times, cumulative scores); a bar
then costs two binary searches per window. Without a source the columns are NaN and the
`*_available` flags 0, exactly as in the batch. Live, a news stream makes the index a
source (`go_live`) and adds each headline as it arrives (`add`, scored by the same
`features.sentiment.score_headlines`)."""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right

import numpy as np
import pandas as pd

from features.sentiment import WINDOWS, score_headlines

NAN = math.nan
DAY_NS = 86_400_000_000_000
_WINDOWS_NS = {name: int(span.value) for name, span in WINDOWS.items()}


class NewsIndex:
    """Headlines per symbol, scored once with VADER."""

    def __init__(self, news: pd.DataFrame | None) -> None:
        self.available = news is not None
        self._by_symbol: dict[str, tuple[list[int], list[float]]] = {}
        if news is None or news.empty:
            return
        frame = pd.DataFrame(
            {
                "symbol": news["symbol"].astype(str).str.upper(),
                "timestamp": pd.to_datetime(news["timestamp"], utc=True),
                "score": score_headlines(news["headline"]),
            }
        ).sort_values(["symbol", "timestamp"], kind="stable")
        for symbol, group in frame.groupby("symbol", sort=False):
            times = group["timestamp"].to_numpy(dtype="datetime64[ns]").astype(np.int64)
            cumulative = np.concatenate(([0.0], np.cumsum(group["score"].to_numpy())))
            self._by_symbol[str(symbol)] = (times.tolist(), cumulative.tolist())

    def go_live(self) -> None:
        """A news source is connected from now on: counts are real (0 is a count)."""
        self.available = True

    def add(self, symbol: str, timestamp_ns: int, headline: str) -> float:
        """One headline as it arrives (any order); returns its score."""
        score = float(score_headlines(pd.Series([headline]))[0])
        times, cumulative = self._by_symbol.setdefault(symbol.upper(), ([], [0.0]))
        at = bisect_right(times, timestamp_ns)
        times.insert(at, timestamp_ns)
        cumulative[at + 1 :] = [total + score for total in cumulative[at:]]
        return score

    def features(self, symbol: str, decided_ns: int) -> dict[str, float]:
        if not self.available:
            return {"news_count_1d": NAN, "news_count_5d": NAN, "sent_mean_1d": NAN,
                    "sent_mean_5d": NAN, "sent_available": 0.0}
        out: dict[str, float] = {}
        found = self._by_symbol.get(symbol.upper())
        for name, span in _WINDOWS_NS.items():
            if found is None:
                out[f"news_count_{name}"], out[f"sent_mean_{name}"] = 0.0, NAN
                continue
            times, cumulative = found
            upto = bisect_right(times, decided_ns)
            since = bisect_right(times, decided_ns - span)
            count = float(upto - since)
            out[f"news_count_{name}"] = count
            out[f"sent_mean_{name}"] = (
                (cumulative[upto] - cumulative[since]) / count if count > 0 else NAN
            )
        out["sent_available"] = 1.0
        return out


class EarningsIndex:
    """Earnings dates per symbol (UTC days)."""

    def __init__(self, earnings: pd.DataFrame | None) -> None:
        self.available = earnings is not None
        self._by_symbol: dict[str, list[int]] = {}
        if earnings is None or earnings.empty:
            return
        dates = pd.to_datetime(earnings["date"], utc=True).dt.floor("D")
        table = pd.DataFrame({"symbol": earnings["symbol"].astype(str).str.upper(),
                              "date": dates})
        for symbol, group in table.groupby("symbol", sort=False):
            days = np.unique(group["date"].to_numpy(dtype="datetime64[ns]").astype(np.int64))
            self._by_symbol[str(symbol)] = days.tolist()

    def features(self, symbol: str, decided_ns: int) -> dict[str, float]:
        if not self.available:
            return {"earnings_days_to": NAN, "earnings_days_since": NAN,
                    "earnings_available": 0.0}
        days_to = days_since = NAN
        known = self._by_symbol.get(symbol.upper())
        if known:
            day = decided_ns - decided_ns % DAY_NS
            position = bisect_left(known, day)
            if position < len(known):
                days_to = (known[position] - day) / DAY_NS
            if position > 0:
                days_since = (day - known[position - 1]) / DAY_NS
        return {"earnings_days_to": days_to, "earnings_days_since": days_since,
                "earnings_available": 1.0}
