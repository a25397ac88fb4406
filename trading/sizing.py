"""Position sizing: how much of the equity one entry gets.

Fractional Kelly on the trade's odds: with win probability p and the payoff ratio
b = (target distance) / (stop distance), the Kelly fraction is f* = p − (1 − p) / b. We
allocate `kelly_fraction × f*` of equity to the position (the common "fraction of
equity" reading of Kelly), then

- scale down by the risk model's expected drawdown: × min(1, tolerable / expected),
  floored at `min_drawdown_scale`;
- scale by the streak: × 0.5 after 3 consecutive losses, × 1.5 after 5 consecutive wins,
  compounding per full run, floored at 0.5× and capped at 2×;
- scale by the regime's activity factor (the selector's "calm → reduced activity");
- cap at `max_position_pct` of equity; whole shares, rounded down.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from core.settings import RiskSettings


class SizingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kelly_fraction: float = Field(0.5, gt=0, le=1)
    max_position_pct: float = Field(0.10, gt=0, le=1)
    # Win probability assumed when the decision has none (the rules client).
    default_win_probability: float = Field(0.5, gt=0, lt=1)
    tolerable_drawdown_pct: float = Field(5.0, gt=0)  # percent, like expected_drawdown_pct
    min_drawdown_scale: float = Field(0.25, gt=0, le=1)
    loss_streak: int = Field(3, ge=1)
    loss_streak_factor: float = Field(0.5, gt=0, le=1)
    win_streak: int = Field(5, ge=1)
    win_streak_factor: float = Field(1.5, ge=1)
    streak_floor: float = Field(0.5, gt=0, le=1)
    streak_cap: float = Field(2.0, ge=1)

    @classmethod
    def from_risk(cls, risk: RiskSettings, **overrides: object) -> SizingConfig:
        values: dict[str, object] = {
            "kelly_fraction": risk.kelly_fraction,
            "max_position_pct": risk.max_position_pct,
        }
        values.update(overrides)
        return cls.model_validate(values)


@dataclass(frozen=True, slots=True)
class SizeRequest:
    equity: float
    entry_price: float
    stop_loss_price: float
    take_profit_price: float
    win_probability: float | None = None
    expected_drawdown_pct: float | None = None
    activity_scale: float = 1.0


@dataclass(frozen=True, slots=True)
class SizeResult:
    qty: int
    fraction: float  # of equity, after every scale and the cap
    kelly: float  # raw Kelly fraction f*
    streak_multiplier: float
    drawdown_scale: float
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

    def kelly(self, win_probability: float, payoff_ratio: float) -> float:
        """f* = p − (1 − p) / b (may be negative: no edge)."""
        return win_probability - (1.0 - win_probability) / payoff_ratio

    def drawdown_scale(self, expected_drawdown_pct: float | None) -> float:
        if expected_drawdown_pct is None or not expected_drawdown_pct > 0:
            return 1.0
        scale = self.config.tolerable_drawdown_pct / expected_drawdown_pct
        return max(self.config.min_drawdown_scale, min(1.0, scale))

    def size(self, request: SizeRequest) -> SizeResult:
        c = self.config
        risk = abs(request.entry_price - request.stop_loss_price)
        reward = abs(request.take_profit_price - request.entry_price)
        streak = self.streak.multiplier
        if not (risk > 0 and reward > 0 and request.entry_price > 0 and request.equity > 0):
            return SizeResult(0, 0.0, 0.0, streak, 1.0, "stop, target, price or equity invalid")
        p = request.win_probability
        if p is None or math.isnan(p):
            p = c.default_win_probability
        kelly = self.kelly(p, reward / risk)
        drawdown = self.drawdown_scale(request.expected_drawdown_pct)
        if kelly <= 0:
            return SizeResult(0, 0.0, kelly, streak, drawdown, f"no edge: kelly {kelly:.3f}")
        fraction = c.kelly_fraction * kelly * drawdown * streak * request.activity_scale
        fraction = min(fraction, c.max_position_pct)
        qty = math.floor(request.equity * fraction / request.entry_price)
        reason = "" if qty > 0 else "position rounds to zero shares"
        return SizeResult(qty, fraction, kelly, streak, drawdown, reason)
