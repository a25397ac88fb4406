"""The pre-market screener: rank the universe on its last completed session and pick the
day's watchlist. Pure: daily bars in, a ranked table out (the flow that runs it before
the open and writes the watchlist is wiring in `pipelines/`).

Measures, per symbol, at its last session before `as_of` (nothing of `as_of` itself):
- `dollar_volume_20`: mean close x volume of the last 20 sessions (liquidity: a filter,
  and a score part);
- `atr_pct`: ATR(14) / close (the catalogue's `atr_14_pct`);
- `relative_volume`: the session's volume / its 20-session mean (`volume_ratio_20`);
- `gap`: |open / previous close - 1| of the session (`gap_1`);
- `relative_strength`: the 20-session return minus the index's
  (`mkt_relative_strength_20`; the symbol's own `return_20` without an index).
The score is the mean of the measures' percentile ranks across the symbols that pass the
filters; the watchlist is the `top` highest scores."""

from __future__ import annotations

import warnings
from datetime import datetime

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from core.errors import DataValidationError
from core.symbols import split_context
from core.utc import utc_timestamp
from features.compute import compute_features

MEASURES: tuple[str, ...] = (
    "dollar_volume_20", "atr_pct", "relative_volume", "gap", "relative_strength",
)
HISTORY_SESSIONS = 60  # enough for every measure (20-session windows, ATR 14)


class ScreenerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    top: int = Field(20, ge=1)
    min_price: float = Field(5.0, ge=0)
    min_dollar_volume: float = Field(10_000_000.0, ge=0)


def screen(
    bars: pd.DataFrame, as_of: datetime | str, config: ScreenerConfig | None = None
) -> pd.DataFrame:
    """The ranked universe: `symbol, session, <MEASURES>, score, rank, on_watchlist`,
    best first. `bars` are daily bars (index series SPX/SPY/COMP are context)."""
    config = config or ScreenerConfig()
    cutoff = utc_timestamp(as_of)
    if cutoff is None:
        raise DataValidationError("the screener needs an as-of date", where="screener")
    cutoff = cutoff.normalize()
    known = bars.loc[pd.to_datetime(bars["timestamp"], utc=True) < cutoff]
    if known.empty:
        raise DataValidationError(
            f"no bars before {cutoff.date().isoformat()} to screen", where="screener"
        )
    tradable, index = split_context(known)
    recent = tradable.sort_values(["symbol", "timestamp"]).groupby("symbol").tail(
        HISTORY_SESSIONS
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # short or gappy histories give NaN, as intended
        features = compute_features(recent, index)
    merged = recent.merge(features, on=["symbol", "timestamp"], how="inner")
    merged["dollar_volume"] = merged["close"] * merged["volume"]
    merged["dollar_volume_20"] = merged.groupby("symbol")["dollar_volume"].transform(
        lambda values: values.rolling(20, min_periods=20).mean()
    )
    last = merged.groupby("symbol").tail(1).reset_index(drop=True)
    strength = last["mkt_relative_strength_20"].where(
        last["mkt_relative_strength_20"].notna(), last["return_20"]
    )
    table = pd.DataFrame(
        {
            "symbol": last["symbol"],
            "session": last["timestamp"],
            "close": last["close"],
            "dollar_volume_20": last["dollar_volume_20"],
            "atr_pct": last["atr_14_pct"],
            "relative_volume": last["volume_ratio_20"],
            "gap": last["gap_1"].abs(),
            "relative_strength": strength,
        }
    )
    eligible = (
        (table["close"] >= config.min_price)
        & (table["dollar_volume_20"] >= config.min_dollar_volume)
        & table[list(MEASURES)].notna().all(axis=1)
    )
    table = table.loc[eligible].reset_index(drop=True)
    if table.empty:
        table["score"] = pd.Series(dtype=np.float64)
    else:
        table["score"] = table[list(MEASURES)].rank(pct=True).mean(axis=1)
    table = table.sort_values(["score", "symbol"], ascending=[False, True], ignore_index=True)
    table["rank"] = np.arange(1, len(table) + 1)
    table["on_watchlist"] = table["rank"] <= config.top
    return table.drop(columns=["close"])
