"""The champion's floor: when its last `floor.window_trades` closed trades (at least
`floor.min_trades`) show a win rate below `floor.min_win_rate` or a profit factor below
`floor.min_profit_factor`, it is rolled back to the `previous` version. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from monitoring.ab import ArmMetrics, arm_metrics, trade_returns


class RollbackFloor(BaseModel):
    """The live figures below which the champion is rolled back to `previous`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_trades: int = Field(20, ge=1)
    window_trades: int = Field(50, ge=1)
    min_win_rate: float = Field(0.35, ge=0, le=1)
    min_profit_factor: float = Field(0.8, ge=0)


@dataclass(frozen=True, slots=True)
class RollbackVerdict:
    rollback: bool
    reason: str
    champion: ArmMetrics


def check_rollback(
    champion_returns: Sequence[float] | np.ndarray,
    *,
    floor: RollbackFloor,
    champion_win_probability: Sequence[float | None] | np.ndarray | None = None,
) -> RollbackVerdict:
    """Whether the champion's most recent live trades (in time order) fell below the floor."""
    values = trade_returns(champion_returns, "champion returns")[-floor.window_trades :]
    probability = None
    if champion_win_probability is not None:
        probability = list(champion_win_probability)[-floor.window_trades :]
    champion = arm_metrics("champion", values, probability)
    if champion.trades < floor.min_trades:
        return RollbackVerdict(
            False,
            f"champion has {champion.trades} recent trades; the floor needs {floor.min_trades}",
            champion,
        )
    problems = []
    if champion.win_rate < floor.min_win_rate:
        problems.append(f"win rate {champion.win_rate:.3f} < floor {floor.min_win_rate:.3f}")
    if champion.profit_factor < floor.min_profit_factor:
        problems.append(
            f"profit factor {champion.profit_factor:.3f} < floor {floor.min_profit_factor:.3f}"
        )
    if problems:
        return RollbackVerdict(
            True,
            f"champion degraded over its last {champion.trades} trades: " + "; ".join(problems),
            champion,
        )
    return RollbackVerdict(
        False,
        f"champion healthy over its last {champion.trades} trades (win rate "
        f"{champion.win_rate:.3f}, profit factor {champion.profit_factor:.3f})",
        champion,
    )
