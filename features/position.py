"""Position features: the engine's portfolio at decision time, as seen by the models.
They are not bar-derived, so `compute_features` does not produce them; the engine builds
a `PortfolioState` when a signal arrives and calls `position_features(state)`.

`correlated open positions` needs the return correlation between the candidate and
each held symbol; `return_correlations` computes it from bars (pure), and the engine
passes the result in `PortfolioState.correlations`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from core.errors import DataValidationError
from features.catalogue import feature_names
from features.sectors import UNKNOWN, sector_of

POSITION_COLUMNS: tuple[str, ...] = tuple(feature_names("position"))
CORRELATION_WINDOW = 60


@dataclass(frozen=True, slots=True)
class HeldPosition:
    qty: float  # signed: positive long, negative short
    price: float  # latest market price
    sector: str = UNKNOWN


@dataclass(frozen=True)
class PortfolioState:
    """The portfolio when a decision is made. `positions` maps a symbol to a
    `HeldPosition` or a plain `(qty, price, sector)` tuple; `symbol` is the candidate the
    decision is about (its sector defaults to the committed sector map)."""

    equity: float
    cash: float
    buying_power: float
    positions: Mapping[str, HeldPosition | tuple[float, float, str]] = field(
        default_factory=dict
    )
    symbol: str | None = None
    sector: str | None = None
    correlations: Mapping[str, float] = field(default_factory=dict)
    correlation_threshold: float = 0.70

    def held(self) -> dict[str, HeldPosition]:
        out: dict[str, HeldPosition] = {}
        for name, value in self.positions.items():
            out[name] = value if isinstance(value, HeldPosition) else HeldPosition(*value)
        return out


def position_features(state: PortfolioState) -> dict[str, float]:
    """The `pos_*` features. Equity must be positive: ratios of a zero or negative
    equity are meaningless, so that is a DataValidationError, not a silent number."""
    if not np.isfinite(state.equity) or state.equity <= 0:
        raise DataValidationError(
            f"portfolio equity must be positive to compute exposure, got {state.equity}",
            where="features.position",
        )
    held = {name: pos for name, pos in state.held().items() if pos.qty != 0}
    gross = sum(abs(pos.qty * pos.price) for pos in held.values())
    candidate_sector = state.sector or (sector_of(state.symbol) if state.symbol else UNKNOWN)
    if candidate_sector == UNKNOWN:
        sector_exposure = float("nan")
    else:
        sector_exposure = sum(
            abs(pos.qty * pos.price) for pos in held.values() if pos.sector == candidate_sector
        ) / state.equity
    correlated = sum(
        1
        for name in held
        if name != state.symbol
        and abs(state.correlations.get(name, 0.0)) >= state.correlation_threshold
    )
    return {
        "pos_open_positions": float(len(held)),
        "pos_exposure_pct": gross / state.equity,
        "pos_sector_exposure_pct": sector_exposure,
        "pos_correlated_positions": float(correlated),
        "pos_buying_power_pct": state.buying_power / state.equity,
        "pos_cash_pct": state.cash / state.equity,
        "pos_symbol_held": float(state.symbol in held) if state.symbol else 0.0,
    }


def return_correlations(
    bars: pd.DataFrame,
    symbol: str,
    others: Sequence[str],
    *,
    window: int = CORRELATION_WINDOW,
) -> dict[str, float]:
    """Correlation of one-bar returns between `symbol` and each of `others` over the last
    `window` common bars (NaN when fewer than `window` common bars exist)."""
    wanted = [symbol, *[o for o in others if o != symbol]]
    subset = bars.loc[bars["symbol"].isin(wanted), ["symbol", "timestamp", "close"]]
    closes = subset.pivot_table(index="timestamp", columns="symbol", values="close")
    returns = closes.sort_index().pct_change(fill_method=None)
    out: dict[str, float] = {}
    for other in others:
        if other == symbol or symbol not in returns or other not in returns:
            out[other] = float("nan")
            continue
        pair = returns[[symbol, other]].dropna().tail(window)
        out[other] = float(pair[symbol].corr(pair[other])) if len(pair) >= window else float(
            "nan"
        )
    return out
