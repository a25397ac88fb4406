"""Configuration of the simulated exchange: starting cash, the slippage and commission
model, and optional partial fills. Shared by the in-process `SimulatedBroker` and the
local Alpaca-compatible paper exchange, which run the same `MatchingEngine`."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from core.settings import BrokerSettings


class SimulatedExchangeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    starting_cash: float = Field(100_000.0, gt=0)
    # Adverse price move applied to every market and stop fill, in basis points of price.
    slippage_bps: float = Field(2.0, ge=0)
    commission_per_share: float = Field(0.0, ge=0)
    # When set, one bar fills at most this fraction of the bar's volume per order; the rest
    # stays open (partial fills). None fills any size in full.
    max_volume_fraction: float | None = Field(None, gt=0, le=1)
    allow_short: bool = False
    # Cash account by default: buying power is cash. 2.0 models a Reg-T margin account.
    margin_multiplier: float = Field(1.0, ge=1, le=4)

    @classmethod
    def from_settings(cls, broker: BrokerSettings, **overrides: object) -> SimulatedExchangeConfig:
        """The exchange as `settings.broker` describes it."""
        values: dict[str, object] = {
            "starting_cash": broker.starting_cash,
            "slippage_bps": broker.slippage_bps,
            "commission_per_share": broker.commission_per_share,
        }
        values.update(overrides)
        return cls.model_validate(values)
