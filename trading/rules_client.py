"""`RulesModelClient`: the rule-based decision used until models exist, and the
documented fallback when the model service cannot answer (`models.fallback: rules`).

The pass-through policy, the ungated baseline the decision policy is judged against:
every signal enters at a fixed size (`size_fraction`, the policy settings'
`base_size_fraction`, 1/12 of equity by default), with fixed exits: stop at
`stop_loss_atr` × ATR(14) (2 by default), target at `take_profit_atr` × ATR(14) (3 by
default) from the signal price. No win probability, no regime, no drawdown estimate."""

from __future__ import annotations

import math
from collections.abc import Mapping

from core.errors import DataValidationError
from core.settings import PolicySettings, RiskSettings, Settings
from core.types import ENTER, Decision, Signal

ATR_FEATURE = "atr_14"


class RulesModelClient:
    """Implements `trading.ports.ModelClient` without any model."""

    def __init__(
        self,
        risk: RiskSettings | None = None,
        *,
        source: str = "rules",
        size_fraction: float | None = None,
    ) -> None:
        risk = risk or RiskSettings()
        self.stop_loss_atr = risk.stop_loss_atr
        self.take_profit_atr = risk.take_profit_atr
        self.source = source
        self.size_fraction = (
            PolicySettings().base_size_fraction if size_fraction is None else size_fraction
        )

    @classmethod
    def from_settings(cls, settings: Settings, *, source: str = "rules") -> RulesModelClient:
        return cls(settings.risk, source=source,
                   size_fraction=settings.models.policy.base_size_fraction)

    def decide(self, signal: Signal, features: Mapping[str, float]) -> Decision:
        atr = features.get(ATR_FEATURE)
        if atr is None or math.isnan(atr) or not atr > 0:
            raise DataValidationError(
                f"{ATR_FEATURE} is missing or not positive ({atr}) for {signal.symbol} at "
                f"{signal.timestamp.isoformat()}; the rules need it for stop and target",
                where="RulesModelClient",
            )
        sign = signal.side.sign
        return Decision(
            decision_id=f"{self.source}-{signal.signal_id}",
            signal=signal,
            win_probability=None,
            stop_loss_price=signal.price - sign * self.stop_loss_atr * atr,
            take_profit_price=signal.price + sign * self.take_profit_atr * atr,
            regime=None,
            expected_drawdown_pct=None,
            variant="rules",
            model_versions={},
            source=self.source,
            action=ENTER,
            reason_detail="pass-through",
            size_fraction=self.size_fraction,
        )
