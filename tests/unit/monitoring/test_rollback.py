"""The champion's floor (`monitoring.rollback`): only the recent window counts, each floor
can trigger alone, and a short or healthy record is never rolled back."""

from __future__ import annotations

import numpy as np

from monitoring.rollback import RollbackFloor, check_rollback


def _returns(win_rate: float, trades: int, *, seed: int = 0) -> np.ndarray:
    """Trades with an exact win rate (+2% wins, -1.5% losses), jittered and shuffled."""
    rng = np.random.default_rng(seed)
    wins = round(win_rate * trades)
    values = np.array([0.02] * wins + [-0.015] * (trades - wins)) * rng.uniform(0.8, 1.2, trades)
    return rng.permutation(values)


def test_degraded_champion_is_rolled_back() -> None:
    floor = RollbackFloor(min_trades=20, window_trades=30, min_win_rate=0.35, min_profit_factor=0.8)
    healthy_then_bad = np.concatenate([_returns(0.7, 100, seed=1), _returns(0.2, 30, seed=2)])
    verdict = check_rollback(healthy_then_bad, floor=floor)
    assert verdict.rollback
    assert verdict.champion.trades == 30  # only the recent window counts
    assert "win rate 0.200 < floor 0.350" in verdict.reason


def test_healthy_champion_and_short_history_are_not_rolled_back() -> None:
    floor = RollbackFloor()
    assert not check_rollback(_returns(0.6, 60), floor=floor).rollback
    assert not check_rollback(_returns(0.0, 10), floor=floor).rollback


def test_profit_factor_floor_alone_triggers_rollback() -> None:
    # 50% winners but losses twice the size of wins → PF 0.5
    returns = np.array([0.01, -0.02] * 20)
    verdict = check_rollback(returns, floor=RollbackFloor(min_win_rate=0.3))
    assert verdict.rollback
    assert "profit factor 0.500" in verdict.reason


def test_the_window_is_the_most_recent_trades_in_time_order() -> None:
    # bad early, healthy lately: the floor looks at the last 30 trades only
    bad_then_healthy = np.concatenate([_returns(0.1, 60, seed=3), _returns(0.7, 30, seed=4)])
    floor = RollbackFloor(min_trades=20, window_trades=30)
    verdict = check_rollback(bad_then_healthy, floor=floor)
    assert not verdict.rollback
    assert "healthy" in verdict.reason
    assert verdict.champion.win_rate > 0.6


def test_win_probabilities_follow_the_same_window() -> None:
    returns = np.array([0.01, -0.01] * 30)
    probability = [0.2] * 30 + [0.8] * 30
    verdict = check_rollback(
        returns, floor=RollbackFloor(window_trades=30), champion_win_probability=probability
    )
    assert verdict.champion.scored_trades == 30
    assert verdict.champion.log_loss > 0.6  # 0.8 on every trade, half of them lost
