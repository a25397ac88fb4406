"""A hand-written model set with the `models.loading.ModelSet` shape: simple, known
formulas of the features, so the decision logic can be checked number by number."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd

from models.policy import FittedPolicy, PolicyConfig, StrategyPayoff

FEATURES = ["atr_14", "rsi_14", "return_5", "sent_mean_1d"]


def hand_policy(
    config: PolicyConfig | None = None,
    *,
    threshold: float = 0.55,
    guard_seed: dict[str, list[tuple[str, float]]] | None = None,
    exits: tuple[float, float] | None = None,
) -> FittedPolicy:
    """A policy fitted by hand: every strategy wins 6% and loses 4% (break-even 0.40),
    threshold 0.55, Kelly multiplier 1."""
    payoff = StrategyPayoff(avg_win=0.06, avg_loss=0.04, threshold=threshold, coverage=0.5,
                            signals=100)
    return FittedPolicy(
        config=config or PolicyConfig(),
        payoffs={"momentum": payoff, "mean_reversion": payoff, "breakout": payoff},
        pooled=payoff,
        size_norm=1.0,
        tolerable_drawdown_pct=5.0,
        guard_seed=guard_seed or {},
        exits=exits,
    )


class FormulaModelSet:
    def __init__(
        self,
        version: str = "1",
        *,
        features: list[str] | None = None,
        stop_atr: float = 2.0,
        target_atr: float = 3.0,
        broken: bool = False,
        policy: FittedPolicy | None = None,
        regime_skilled: bool = False,
        timeframe: str = "1Day",
    ) -> None:
        self.versions = {
            name: version
            for name in ("signal_quality", "exit_optimizer", "regime_classifier", "risk_predictor")
        }
        self.feature_names = list(features or FEATURES)
        self.loaded_at = datetime.now(UTC)
        self.stop_atr = stop_atr
        self.target_atr = target_atr
        self.broken = broken
        self.calls = 0
        self.policy = policy
        self.regime_skilled = regime_skilled
        self.timeframe = timeframe

    def win_probability(self, X: pd.DataFrame) -> np.ndarray:
        self.calls += 1
        if self.broken:
            return np.array([np.nan])
        return (X["rsi_14"].to_numpy() / 100.0).clip(0, 1)

    def exits(self, X: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "stop_loss_atr": [self.stop_atr] * len(X),
                "take_profit_atr": [self.target_atr] * len(X),
            }
        )

    def regime_probabilities(self, X: pd.DataFrame) -> pd.DataFrame:
        trending = float(X["return_5"].iloc[0] > 0)
        return pd.DataFrame(
            {"trending": [0.1 + 0.6 * trending], "ranging": [0.7 - 0.6 * trending],
             "volatile": [0.1], "calm": [0.1]}
        )

    def drawdown(self, X: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "expected_drawdown_pct": [0.02],
                "drawdown_p10_pct": [0.01],
                "drawdown_p90_pct": [0.05],
            }
        )

    def out_of_distribution(self, X: pd.DataFrame) -> np.ndarray:
        return (X["rsi_14"].to_numpy() > 99).astype(bool)


def features(**overrides: float | None) -> dict[str, float | None]:
    row: dict[str, float | None] = {
        "atr_14": 2.0, "rsi_14": 70.0, "return_5": 0.01, "sent_mean_1d": None,
    }
    row.update(overrides)
    return row
