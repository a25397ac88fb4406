"""The policy's win-probability gates at their boundaries, whatever the regime: the
expected-value gate needs p strictly above its threshold, the probability gate p at
least the seed's gate (each test fails when a comparison is loosened or tightened, or
when a regime lets a signal skip the gate)."""

from __future__ import annotations

import pytest

from core.types import Regime
from models.policy import FittedPolicy, PolicyConfig, SignalView, StrategyPayoff

REGIMES = [None, *Regime]
THRESHOLD = 0.55


def _policy(**config: object) -> FittedPolicy:
    payoff = StrategyPayoff(avg_win=0.04, avg_loss=0.03, threshold=THRESHOLD, coverage=0.5,
                            signals=1000)
    return FittedPolicy(
        config=PolicyConfig.model_validate(config),
        payoffs={"momentum": payoff},
        pooled=payoff,
        size_norm=1.0,
        tolerable_drawdown_pct=0.05,
    )


@pytest.mark.parametrize("regime", REGIMES)
@pytest.mark.parametrize("regime_mode", ["off", "size", "gate"])
def test_the_expected_value_gate_holds_in_every_regime(
    regime: Regime | None, regime_mode: str
) -> None:
    policy = _policy(regime_mode=regime_mode)
    for p in (0.10, THRESHOLD - 1e-9, THRESHOLD):
        decision = policy.decide(SignalView("momentum", p, regime=regime))
        assert (decision.action, decision.reason) == ("skip", "ev"), p
        assert decision.size_fraction == 0.0
        assert decision.threshold == THRESHOLD
    above = policy.decide(SignalView("momentum", THRESHOLD + 1e-9, regime=regime))
    assert above.reason in ("", "regime")  # only the regime gate may refuse above it


@pytest.mark.parametrize("regime", REGIMES)
def test_the_probability_gate_holds_in_every_regime(regime: Regime | None) -> None:
    policy = _policy(mode="probability", win_probability_gate=0.65, regime_mode="size")
    for p in (0.10, 0.65 - 1e-9):
        decision = policy.decide(SignalView("momentum", p, regime=regime))
        assert (decision.action, decision.reason, decision.threshold) == ("skip", "gate", 0.65)
    at_gate = policy.decide(SignalView("momentum", 0.65, regime=regime))
    assert at_gate.enter
    assert at_gate.size_fraction > 0


def test_the_default_gate_settings_are_pinned() -> None:
    config = PolicyConfig()
    assert (config.mode, config.win_probability_gate, config.regime_mode) == (
        "expected_value", 0.65, "size")
    assert (config.ood_action, config.regime_scale) == ("half_size", 0.5)
