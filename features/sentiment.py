"""Sentiment features: news count and headline sentiment per symbol, scored with VADER
(vaderSentiment's compound score, -1..1), and earnings proximity.

Pure: the news and the earnings calendar come in as frames (the Alpaca adapter
`trading.adapters.alpaca.news` fetches headlines). A headline counts for a bar when it
was published at or before the bar's decision time (the session close for daily bars)
and within the window (24 h, 5 days). Without a news source the news columns are NaN and
`sent_available` is 0; without an earnings calendar the earnings columns are NaN and
`earnings_available` is 0. Numbers are never invented."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from core.errors import DataValidationError
from features.catalogue import feature_names

SENTIMENT_COLUMNS: tuple[str, ...] = tuple(feature_names("sentiment"))
NEWS_COLUMNS: tuple[str, ...] = ("symbol", "timestamp", "headline")
EARNINGS_COLUMNS: tuple[str, ...] = ("symbol", "date")
WINDOWS: dict[str, pd.Timedelta] = {"1d": pd.Timedelta(days=1), "5d": pd.Timedelta(days=5)}


@lru_cache(maxsize=1)
def _analyzer() -> SentimentIntensityAnalyzer:
    return SentimentIntensityAnalyzer()


def score_headlines(headlines: pd.Series) -> np.ndarray:
    """VADER compound score of each headline (each distinct text scored once)."""
    texts = headlines.fillna("").astype(str)
    analyzer = _analyzer()
    scores = {text: analyzer.polarity_scores(text)["compound"] for text in texts.unique()}
    return texts.map(scores).to_numpy(dtype=np.float64)


def _require(frame: pd.DataFrame, columns: tuple[str, ...], where: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataValidationError(
            f"frame lacks column(s) {', '.join(missing)}; expected {', '.join(columns)}",
            where=where,
        )


def _news_columns(
    symbols: pd.Series, decided: pd.Series, news: pd.DataFrame
) -> dict[str, np.ndarray]:
    _require(news, NEWS_COLUMNS, "features.sentiment news")
    items = pd.DataFrame(
        {
            "symbol": news["symbol"].astype(str).str.upper(),
            "timestamp": pd.to_datetime(news["timestamp"], utc=True),
            "score": score_headlines(news["headline"]),
        }
    ).sort_values(["symbol", "timestamp"], kind="stable")
    n = len(symbols)
    out = {f"news_count_{w}": np.zeros(n) for w in WINDOWS}
    out.update({f"sent_mean_{w}": np.full(n, np.nan) for w in WINDOWS})
    decided_ns = decided.to_numpy(dtype="datetime64[ns]").astype(np.int64)
    keys = symbols.astype(str).str.upper().to_numpy()
    for symbol, group in items.groupby("symbol", sort=False):
        rows = np.flatnonzero(keys == symbol)
        if len(rows) == 0:
            continue
        times = group["timestamp"].to_numpy(dtype="datetime64[ns]").astype(np.int64)
        cumulative = np.concatenate(([0.0], np.cumsum(group["score"].to_numpy())))
        upto = np.searchsorted(times, decided_ns[rows], side="right")
        for name, span in WINDOWS.items():
            since = np.searchsorted(times, decided_ns[rows] - span.value, side="right")
            count = (upto - since).astype(np.float64)
            with np.errstate(invalid="ignore", divide="ignore"):
                mean = (cumulative[upto] - cumulative[since]) / count
            out[f"news_count_{name}"][rows] = count
            out[f"sent_mean_{name}"][rows] = np.where(count > 0, mean, np.nan)
    return out


def _earnings_columns(
    symbols: pd.Series, decided: pd.Series, earnings: pd.DataFrame
) -> dict[str, np.ndarray]:
    _require(earnings, EARNINGS_COLUMNS, "features.sentiment earnings")
    n = len(symbols)
    days_to, days_since = np.full(n, np.nan), np.full(n, np.nan)
    dates = pd.to_datetime(earnings["date"], utc=True).dt.floor("D")
    table = pd.DataFrame({"symbol": earnings["symbol"].astype(str).str.upper(), "date": dates})
    day_of = decided.dt.floor("D").to_numpy(dtype="datetime64[ns]").astype(np.int64)
    keys = symbols.astype(str).str.upper().to_numpy()
    one_day = pd.Timedelta(days=1).value
    for symbol, group in table.groupby("symbol", sort=False):
        rows = np.flatnonzero(keys == symbol)
        if len(rows) == 0:
            continue
        known = np.unique(group["date"].to_numpy(dtype="datetime64[ns]").astype(np.int64))
        nxt = np.searchsorted(known, day_of[rows], side="left")
        prv = np.searchsorted(known, day_of[rows], side="left") - 1
        has_next = nxt < len(known)
        has_prev = prv >= 0
        days_to[rows[has_next]] = (known[nxt[has_next]] - day_of[rows][has_next]) / one_day
        days_since[rows[has_prev]] = (day_of[rows][has_prev] - known[prv[has_prev]]) / one_day
    return {"earnings_days_to": days_to, "earnings_days_since": days_since}


def sentiment_features(
    symbols: pd.Series,
    decided: pd.Series,
    *,
    news: pd.DataFrame | None = None,
    earnings: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Sentiment columns for rows given by their symbol and decision time (UTC)."""
    n = len(symbols)
    columns: dict[str, np.ndarray] = {}
    if news is None:
        for name in ("news_count_1d", "news_count_5d", "sent_mean_1d", "sent_mean_5d"):
            columns[name] = np.full(n, np.nan)
        columns["sent_available"] = np.zeros(n)
    else:
        columns.update(_news_columns(symbols, decided, news))
        columns["sent_available"] = np.ones(n)
    if earnings is None:
        columns["earnings_days_to"] = np.full(n, np.nan)
        columns["earnings_days_since"] = np.full(n, np.nan)
        columns["earnings_available"] = np.zeros(n)
    else:
        columns.update(_earnings_columns(symbols, decided, earnings))
        columns["earnings_available"] = np.ones(n)
    return pd.DataFrame(columns, index=symbols.index).loc[:, list(SENTIMENT_COLUMNS)]
