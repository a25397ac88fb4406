"""Which strategy may trade now: the market regime picks it.

trending → momentum, ranging → mean reversion, volatile → breakout, calm → reduced
activity (mean reversion at a smaller size). The regime comes from the regime model
through the `ModelClient` decision when one answered recently; until then (or when the
model is down) from rules on the market features of the signal's row:

- volatile: `mkt_vol_level` (VIX/100, or the index's realized volatility) ≥ 0.25;
- trending: |`mkt_trend`| (index EMA50/EMA200 − 1) ≥ 3%, or, without an index, breadth
  (`mkt_pct_above_ema_50`) ≥ 75% or ≤ 25%;
- calm: `mkt_vol_level` ≤ 0.11;
- ranging: otherwise. No market features at all → no regime → every strategy may trade.

With a fixed strategy (`tradewind backtest --strategy momentum`) the regime is ignored.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field

from core.errors import ConfigError
from core.types import Regime


class SelectorConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    trending: tuple[str, ...] = ("momentum",)
    ranging: tuple[str, ...] = ("mean_reversion",)
    volatile: tuple[str, ...] = ("breakout",)
    calm: tuple[str, ...] = ("mean_reversion",)
    calm_activity: float = Field(0.5, gt=0, le=1)  # size scale in calm markets
    volatile_level: float = Field(0.25, gt=0)
    calm_level: float = Field(0.11, gt=0)
    trend_level: float = Field(0.03, gt=0)
    breadth_trend_level: float = Field(0.75, gt=0.5, le=1)
    model_regime_max_age_hours: float = Field(96.0, gt=0)


@dataclass(frozen=True, slots=True)
class Selection:
    allowed: bool
    activity_scale: float
    regime: Regime | None


def rule_regime(
    features: Mapping[str, float], config: SelectorConfig | None = None
) -> Regime | None:
    """The rule-based market regime from one row's market features (see module doc)."""
    c = config or SelectorConfig()
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


class StrategySelector:
    def __init__(self, config: SelectorConfig | None = None, *, fixed: str | None = None) -> None:
        self.config = config or SelectorConfig()
        self.fixed = fixed
        self._model_regime: Regime | None = None
        self._model_regime_at: datetime | None = None
        self._by_regime: dict[Regime, tuple[str, ...]] = {
            Regime.TRENDING: self.config.trending,
            Regime.RANGING: self.config.ranging,
            Regime.VOLATILE: self.config.volatile,
            Regime.CALM: self.config.calm,
        }

    @classmethod
    def for_strategy(cls, strategy: str | None, known: set[str] | None = None) -> StrategySelector:
        if strategy is not None and known is not None and strategy not in known:
            raise ConfigError(
                f"unknown strategy '{strategy}'; known: {', '.join(sorted(known))}",
                where="selector",
            )
        return cls(fixed=strategy)

    def observe_model_regime(self, at: datetime, regime: Regime) -> None:
        """Remember the regime model's latest answer (it is market-wide)."""
        self._model_regime = regime
        self._model_regime_at = at

    def regime(self, at: datetime, features: Mapping[str, float]) -> Regime | None:
        """The model's regime if it answered recently, else the rule-based one."""
        if self._model_regime is not None and self._model_regime_at is not None:
            age = at - self._model_regime_at
            if timedelta(0) <= age <= timedelta(hours=self.config.model_regime_max_age_hours):
                return self._model_regime
        return rule_regime(features, self.config)

    def select(self, strategy: str, regime: Regime | None) -> Selection:
        """May `strategy` enter in `regime`, and at what size scale."""
        if self.fixed is not None:
            return Selection(strategy == self.fixed, 1.0, regime)
        if regime is None:
            return Selection(True, 1.0, None)
        allowed = strategy in self._by_regime[regime]
        scale = self.config.calm_activity if regime is Regime.CALM else 1.0
        return Selection(allowed, scale, regime)


def _finite(value: float | None) -> float | None:
    if value is None or math.isnan(value):
        return None
    return float(value)
