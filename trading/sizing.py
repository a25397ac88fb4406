"""Position sizing: how many shares an entry gets.

The size comes from the decision (`Decision.size_fraction`, the share of equity the
decision policy chose: normalised fractional Kelly, `models.policy`); a decision without
one (an older client) gets `default_size_fraction`, the ungated size. The engine then

- scales by the streak: × 0.5 after 3 consecutive losses, × 1.5 after 5 consecutive wins,
  compounding per full run, floored at 0.5× and capped at 2× (it scales, never vetoes);
- caps at `max_position_pct` of equity; whole shares, rounded down. Zero shares is the
  only way sizing refuses an entry (the `sizing` reason)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from core.settings import PolicySettings, RiskSettings


class SizingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    max_position_pct: float = Field(0.10, gt=0, le=1)
    # The size of a decision that names none: the ungated size of the policy settings.
    default_size_fraction: float = Field(PolicySettings().base_size_fraction, gt=0, le=1)
    loss_streak: int = Field(3, ge=1)
    loss_streak_factor: float = Field(0.5, gt=0, le=1)
    win_streak: int = Field(5, ge=1)
    win_streak_factor: float = Field(1.5, ge=1)
    streak_floor: float = Field(0.5, gt=0, le=1)
    streak_cap: float = Field(2.0, ge=1)

    @classmethod
    def from_risk(cls, risk: RiskSettings, **overrides: object) -> SizingConfig:
        values: dict[str, object] = {"max_position_pct": risk.max_position_pct}
        values.update(overrides)
        return cls.model_validate(values)


@dataclass(frozen=True, slots=True)
class SizeRequest:
    equity: float
    entry_price: float
    size_fraction: float | None = None  # of equity, from the decision


@dataclass(frozen=True, slots=True)
class SizeResult:
    qty: int
    fraction: float  # of equity, after the streak and the cap
    streak_multiplier: float
    reason: str = ""


class StreakTracker:
    """Consecutive wins or losses of closed trades, and the size multiplier they imply."""

    def __init__(self, config: SizingConfig) -> None:
        self._config = config
        self.wins = 0
        self.losses = 0

    def record(self, is_win: bool) -> None:
        if is_win:
            self.wins += 1
            self.losses = 0
        else:
            self.losses += 1
            self.wins = 0

    @property
    def multiplier(self) -> float:
        c = self._config
        factor = 1.0
        if self.losses >= c.loss_streak:
            factor = c.loss_streak_factor ** (self.losses // c.loss_streak)
        elif self.wins >= c.win_streak:
            factor = c.win_streak_factor ** (self.wins // c.win_streak)
        return min(c.streak_cap, max(c.streak_floor, factor))


class PositionSizer:
    def __init__(self, config: SizingConfig | None = None) -> None:
        self.config = config or SizingConfig()
        self.streak = StreakTracker(self.config)

    def size(self, request: SizeRequest) -> SizeResult:
        c = self.config
        streak = self.streak.multiplier
        if not (request.entry_price > 0 and request.equity > 0):
            return SizeResult(0, 0.0, streak, "price or equity not positive")
        base = request.size_fraction
        if base is None or math.isnan(base):
            base = c.default_size_fraction
        if not base > 0:
            return SizeResult(0, 0.0, streak, f"size fraction {base} is not positive")
        fraction = min(base * streak, c.max_position_pct)
        qty = math.floor(request.equity * fraction / request.entry_price)
        reason = "" if qty > 0 else (
            f"{fraction:.2%} of {request.equity:,.0f} rounds to zero shares at "
            f"{request.entry_price:,.2f}")
        return SizeResult(qty, fraction, streak, reason)
