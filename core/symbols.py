"""The market-context symbols: which series describe the market rather than a stock, and
how a bar frame splits into tradable bars and market context.

- `SPX` (S&P 500 index), `COMP` (NASDAQ Composite) and `VIX` (volatility index) are
  context only: they are never traded.
- `SPY` is an ETF: tradable, and also market context when a frame contains it.
- The market index is the first of `INDEX_PREFERENCE` present; `VIX` is the volatility
  level when present.

Features, models and trading all ask these questions, so the answers live here, once."""

from __future__ import annotations

import pandas as pd

CONTEXT_ONLY_SYMBOLS: frozenset[str] = frozenset({"SPX", "COMP", "VIX"})
MARKET_CONTEXT_SYMBOLS: frozenset[str] = CONTEXT_ONLY_SYMBOLS | {"SPY"}
INDEX_PREFERENCE: tuple[str, ...] = ("SPX", "SPY", "COMP")
VOLATILITY_INDEX = "VIX"


def is_tradable(symbol: str) -> bool:
    """False for the context-only index series (SPX, COMP, VIX)."""
    return symbol not in CONTEXT_ONLY_SYMBOLS


def split_context(
    bars: pd.DataFrame, index_bars: pd.DataFrame | None = None
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """(tradable bars, market-context bars). The context is `index_bars` together with the
    context series found in `bars` (SPY included), deduplicated on (symbol, timestamp) and
    sorted; None when there is none. The tradable bars keep SPY and drop SPX, COMP, VIX."""
    symbols = bars["symbol"].astype(str)
    in_frame = bars[symbols.isin(MARKET_CONTEXT_SYMBOLS)]
    tradable = bars[~symbols.isin(CONTEXT_ONLY_SYMBOLS)].reset_index(drop=True)
    context = [frame for frame in (index_bars, in_frame) if frame is not None and len(frame)]
    if not context:
        return tradable, None
    merged = pd.concat(context, ignore_index=True)
    merged = merged.drop_duplicates(["symbol", "timestamp"]).sort_values(["symbol", "timestamp"])
    return tradable, merged.reset_index(drop=True)
