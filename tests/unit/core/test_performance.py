"""The one definition of profit factor, win rate, Sharpe and drawdown, and its conventions."""

from __future__ import annotations

import math

import numpy as np
import pytest

from core.performance import (
    drawdowns,
    equity_returns,
    max_drawdown,
    profit_factor,
    sharpe_ratio,
    win_rate,
)


def test_profit_factor_is_gross_gains_over_gross_losses() -> None:
    assert profit_factor([30.0, -10.0, 20.0, -15.0]) == pytest.approx(50.0 / 25.0)
    assert profit_factor(np.array([0.02, -0.01, 0.0])) == pytest.approx(2.0)  # flat: neither


def test_profit_factor_without_trades_losses_or_gains() -> None:
    assert math.isnan(profit_factor([]))
    assert profit_factor([5.0, 1.0]) == math.inf
    assert math.isnan(profit_factor([0.0, 0.0]))
    assert profit_factor([-5.0]) == 0.0


def test_win_rate_counts_strict_gains() -> None:
    assert win_rate([1.0, -1.0, 0.0, 2.0]) == 0.5
    assert win_rate([]) == 0.0


def test_drawdown_is_a_positive_fraction_of_the_running_peak() -> None:
    curve = [100.0, 110.0, 99.0, 121.0, 108.9]
    assert drawdowns(curve) == pytest.approx([0.0, 0.0, 0.1, 0.0, 0.1])
    assert max_drawdown(curve) == pytest.approx(0.1)
    assert max_drawdown([100.0, 101.0, 102.0]) == 0.0
    assert max_drawdown([]) == 0.0


def test_sharpe_of_known_returns_and_when_it_is_undefined() -> None:
    returns = equity_returns([100.0, 101.0, 100.0, 102.0])
    assert returns == pytest.approx([0.01, -1 / 101, 0.02])
    expected = np.mean(returns) / np.std(returns, ddof=1) * math.sqrt(252)
    assert sharpe_ratio(returns) == pytest.approx(expected)
    assert sharpe_ratio(returns, periods_per_year=12) == pytest.approx(
        expected * math.sqrt(12 / 252)
    )
    assert sharpe_ratio([0.01]) == 0.0
    assert sharpe_ratio([0.01, 0.01, 0.01]) == 0.0
    assert equity_returns([100.0]).size == 0
