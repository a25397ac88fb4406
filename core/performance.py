"""Performance figures of a trading run, one definition each, one sign convention:

- profit factor = gross gains / gross losses of the trades' P&L (or returns): NaN with no
  trades (nothing to judge), infinite when there are gains and no loss, NaN when there is
  neither (only flat trades). A flat trade counts on neither side.
- win rate = share of trades with P&L > 0 (0.0 with no trades).
- drawdown = how far equity sits below its running peak, as a POSITIVE fraction of that
  peak (0.0 at a new high, 0.25 a quarter below it); max drawdown is its largest value.
- Sharpe ratio = mean / sample standard deviation (ddof=1) of per-period returns, times
  the square root of the periods per year; risk-free rate 0; 0.0 when it is undefined
  (fewer than two returns, or no variation).

Pure numpy: arrays (or anything `np.asarray` takes) in, floats out. How a report shows an
infinite or missing figure (None, "inf") is the report's business, not these functions'."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TypeAlias

import numpy as np
import pandas as pd

TRADING_DAYS_PER_YEAR = 252.0
# The figures a run is summarized by, in reading order: report tables, optimization
# proposals, the learning loop's report and the demo's comparison.
HEADLINE_FIGURES: tuple[str, ...] = (
    "trades", "win_rate", "profit_factor", "sharpe", "max_drawdown", "total_return",
)

Numbers: TypeAlias = Sequence[float] | np.ndarray | pd.Series


def profit_factor(pnl: Numbers) -> float:
    """Gross gains / gross losses (see the module for NaN and infinity)."""
    values = np.asarray(pnl, dtype=float)
    if values.size == 0:
        return math.nan
    gains = float(values[values > 0].sum())
    losses = float(-values[values < 0].sum())
    if losses > 0:
        return gains / losses
    return math.inf if gains > 0 else math.nan


def win_rate(pnl: Numbers) -> float:
    """Share of trades with P&L > 0; 0.0 with no trades."""
    values = np.asarray(pnl, dtype=float)
    return float((values > 0).sum() / values.size) if values.size else 0.0


def equity_returns(equity: Numbers) -> np.ndarray:
    """Per-period simple returns of an equity curve (one fewer than its points)."""
    curve = np.asarray(equity, dtype=float)
    return curve[1:] / curve[:-1] - 1.0 if curve.size > 1 else np.array([])


def sharpe_ratio(returns: Numbers, periods_per_year: float = TRADING_DAYS_PER_YEAR) -> float:
    """Annualised Sharpe ratio of per-period returns (risk-free 0; 0.0 when undefined)."""
    values = np.asarray(returns, dtype=float)
    std = values.std(ddof=1) if values.size > 1 else 0.0
    return float(values.mean() / std * math.sqrt(periods_per_year)) if std > 0 else 0.0


def drawdowns(equity: Numbers) -> np.ndarray:
    """Each point's fall below the running peak, a positive fraction of the peak."""
    curve = np.asarray(equity, dtype=float)
    if curve.size == 0:
        return np.array([])
    return 1.0 - curve / np.maximum.accumulate(curve)


def max_drawdown(equity: Numbers) -> float:
    """The deepest fall below a running peak, a positive fraction (0.0 for no points)."""
    values = drawdowns(equity)
    return float(values.max()) if values.size else 0.0
