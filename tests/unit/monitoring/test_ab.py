"""A/B statistics: per-arm figures by hand, the tests against scipy, and each branch of the
decision rule (`monitoring.ab.evaluate`) on constructed trade outcomes."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from core.errors import DataValidationError
from monitoring.ab import (
    ABConfig,
    ABVerdict,
    Verdict,
    arm_metrics,
    evaluate,
    returns_test,
    win_rate_test,
)

CONFIG = ABConfig(min_trades_per_arm=30, max_trades_per_arm=200, alpha=0.05)


def _returns(
    win_rate: float, trades: int, *, win: float = 0.02, loss: float = -0.015, seed: int = 0
) -> np.ndarray:
    """Trades with an exact win rate; returns jittered so ranks are untied."""
    rng = np.random.default_rng(seed)
    wins = round(win_rate * trades)
    values = np.array([win] * wins + [loss] * (trades - wins))
    values = values * rng.uniform(0.8, 1.2, trades)
    return rng.permutation(values)


def test_arm_metrics_by_hand() -> None:
    metrics = arm_metrics("champion", [0.02, -0.01, 0.03, -0.02], [0.8, 0.3, None, 0.5])
    assert metrics.trades == 4
    assert metrics.wins == 2
    assert metrics.win_rate == 0.5
    assert metrics.profit_factor == pytest.approx(0.05 / 0.03)
    assert metrics.total_return == pytest.approx(0.02)
    expected_log_loss = -(math.log(0.8) + math.log(0.7) + math.log(0.5)) / 3
    assert metrics.log_loss == pytest.approx(expected_log_loss)
    assert metrics.scored_trades == 3


def test_profit_factor_without_losses_is_infinite_but_logged_finite() -> None:
    metrics = arm_metrics("challenger", [0.01, 0.02])
    assert metrics.profit_factor == math.inf
    assert math.isnan(metrics.log_loss)
    logged = metrics.to_metrics("challenger")
    assert logged["challenger_profit_factor"] == 1e6
    assert "challenger_log_loss" not in logged


def test_arm_metrics_rejects_nan_returns_and_bad_probabilities() -> None:
    with pytest.raises(DataValidationError, match="NaN"):
        arm_metrics("champion", [0.01, float("nan")])
    with pytest.raises(DataValidationError, match=r"\[0, 1\]"):
        arm_metrics("champion", [0.01], [1.5])


def test_z_test_matches_the_textbook_formula() -> None:
    result = win_rate_test(40, 100, 60, 100, alpha=0.05)
    pooled = 0.5
    z = 0.2 / math.sqrt(pooled * (1 - pooled) * (2 / 100))
    assert result.name == "two_proportion_z_win_rate"
    assert result.statistic == pytest.approx(z)
    assert result.pvalue == pytest.approx(2 * stats.norm.sf(z))
    assert result.favours == "challenger"


def test_small_counts_use_fisher_exact() -> None:
    result = win_rate_test(1, 10, 8, 10, alpha=0.05)
    assert result.name == "fisher_exact_win_rate"
    assert result.pvalue == pytest.approx(stats.fisher_exact([[8, 2], [1, 9]])[1])
    assert result.favours == "challenger"


def test_returns_test_matches_scipy_and_gives_direction() -> None:
    champion = _returns(0.4, 60, seed=1)
    challenger = _returns(0.7, 60, seed=2)
    result = returns_test(champion, challenger, alpha=0.05)
    scipy_result = stats.mannwhitneyu(challenger, champion, alternative="two-sided")
    assert result.pvalue == pytest.approx(scipy_result.pvalue)
    assert result.statistic == pytest.approx(scipy_result.statistic / 3600)
    assert result.statistic > 0.5
    assert result.favours == "challenger"


def test_clearly_better_challenger_is_promoted() -> None:
    verdict = evaluate(_returns(0.40, 80, seed=1), _returns(0.75, 60, seed=2), config=CONFIG)
    assert isinstance(verdict, ABVerdict)
    assert verdict.verdict is Verdict.PROMOTE
    assert all(test.favours == "challenger" for test in verdict.tests)
    assert verdict.challenger.win_rate == pytest.approx(0.75)


def test_clearly_worse_challenger_is_retired() -> None:
    verdict = evaluate(_returns(0.65, 80, seed=1), _returns(0.25, 60, seed=2), config=CONFIG)
    assert verdict.verdict is Verdict.RETIRE
    assert "worse" in verdict.reason


def test_too_few_trades_keeps_collecting_whatever_the_figures() -> None:
    verdict = evaluate(_returns(0.2, 100), _returns(1.0, 29), config=CONFIG)
    assert verdict.verdict is Verdict.KEEP_COLLECTING
    assert verdict.tests == []
    assert "29" in verdict.reason


def test_no_difference_keeps_collecting_then_retires_at_the_cap() -> None:
    early = evaluate(_returns(0.5, 60, seed=1), _returns(0.5, 60, seed=2), config=CONFIG)
    assert early.verdict is Verdict.KEEP_COLLECTING
    late = evaluate(_returns(0.5, 220, seed=1), _returns(0.5, 210, seed=2), config=CONFIG)
    assert late.verdict is Verdict.RETIRE
    assert "no significant difference" in late.reason


def test_bonferroni_split_is_applied() -> None:
    # p ≈ 0.035 on win rate: significant at 0.05 but not at the per-test 0.025
    champion = np.array([0.01] * 50 + [-0.01] * 50)
    challenger = np.array([0.01] * 65 + [-0.01] * 35)
    z_only = win_rate_test(50, 100, 65, 100, alpha=0.05)
    assert z_only.pvalue < 0.05
    assert z_only.favours == "challenger"
    verdict = evaluate(champion, challenger, config=CONFIG)
    assert verdict.tests[0].pvalue > 0.025
    assert verdict.verdict is Verdict.KEEP_COLLECTING


def test_log_loss_is_reported_per_arm() -> None:
    champion = _returns(0.5, 40)
    verdict = evaluate(
        champion,
        champion,
        config=CONFIG,
        champion_win_probability=np.where(champion > 0, 0.9, 0.1),
        challenger_win_probability=np.full(40, 0.5),
    )
    assert verdict.champion.log_loss == pytest.approx(-math.log(0.9))
    assert verdict.challenger.log_loss == pytest.approx(math.log(2))
    assert verdict.to_dict()["champion"]["log_loss"] == pytest.approx(-math.log(0.9))


def test_config_rejects_inverted_bounds() -> None:
    with pytest.raises(ValueError, match="max_trades_per_arm"):
        ABConfig(min_trades_per_arm=50, max_trades_per_arm=10)
