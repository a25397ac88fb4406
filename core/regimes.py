"""Market regimes and the strategies they select, and the rule-based regime: the one
definition the decision policy (`models.policy`) and reports share.

trending → momentum, ranging → mean reversion, volatile → breakout, calm → mean reversion
at reduced size. The rule-based regime, from one row's market features:

- volatile: `mkt_vol_level` (VIX/100, or the index's realized volatility) ≥ 0.25;
- trending: |`mkt_trend`| (index EMA50/EMA200 − 1) ≥ 3%, or, without an index, breadth
  (`mkt_pct_above_ema_50`) ≥ 75% or ≤ 25%;
- calm: `mkt_vol_level` ≤ 0.11;
- ranging: otherwise. No market features at all → no regime (nothing to say).

The policy uses it when the regime model did not beat its majority baseline out of
time."""

from __future__ import annotations

import math
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field

from core.types import Regime

# Which strategies each regime selects.
REGIME_STRATEGIES: dict[Regime, frozenset[str]] = {
    Regime.TRENDING: frozenset({"momentum"}),
    Regime.RANGING: frozenset({"mean_reversion"}),
    Regime.VOLATILE: frozenset({"breakout"}),
    Regime.CALM: frozenset({"mean_reversion"}),
}

# The market features the rules read.
RULE_FEATURES: tuple[str, ...] = ("mkt_vol_level", "mkt_trend", "mkt_pct_above_ema_50")


class RegimeRules(BaseModel):
    """The rule-based regime's cut-offs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    volatile_level: float = Field(0.25, gt=0)
    calm_level: float = Field(0.11, gt=0)
    trend_level: float = Field(0.03, gt=0)
    breadth_trend_level: float = Field(0.75, gt=0.5, le=1)


def selects(regime: Regime, strategy: str) -> bool:
    """Does `regime` select `strategy`?"""
    return strategy in REGIME_STRATEGIES[regime]


def rule_regime(
    features: Mapping[str, float | None], rules: RegimeRules | None = None
) -> Regime | None:
    """The rule-based market regime from one row's market features (see module doc)."""
    c = rules or RegimeRules()
    vol = _finite(features.get("mkt_vol_level"))
    trend = _finite(features.get("mkt_trend"))
    breadth = _finite(features.get("mkt_pct_above_ema_50"))
    if vol is not None and vol >= c.volatile_level:
        return Regime.VOLATILE
    if trend is not None:
        if abs(trend) >= c.trend_level:
            return Regime.TRENDING
    elif breadth is not None and (
        breadth >= c.breadth_trend_level or breadth <= 1 - c.breadth_trend_level
    ):
        return Regime.TRENDING
    if vol is not None and vol <= c.calm_level:
        return Regime.CALM
    if vol is None and trend is None and breadth is None:
        return None
    return Regime.RANGING


def _finite(value: float | None) -> float | None:
    if value is None or math.isnan(value):
        return None
    return float(value)
