"""The decision policy: fitting on a training window (payoffs, break-even, thresholds with
their coverage, Kelly normalisation, the guard's seed), each gate (fails when removed),
no starvation with an uninformative model, the skill check, the evaluator, JSON."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from core.performance import profit_factor
from core.types import Regime
from models.policy import (
    FittedPolicy,
    PolicyConfig,
    SignalView,
    evaluate_decisions,
    fit_policy,
    replay_policy,
    session_numbers,
    skill_check,
)

STRATEGIES = ("momentum", "mean_reversion", "breakout")


def _sessions(start: str, periods: int) -> pd.DatetimeIndex:
    days = pd.bdate_range(start, periods=periods * 2, tz="America/New_York")
    numbers = session_numbers(pd.Series(days))
    keep = np.r_[True, np.diff(numbers) > 0]  # one timestamp per trading session
    return days[keep][:periods].tz_convert("UTC")


def _window(
    rows: int = 3000, *, skill: float = 0.0, shift: float = 0.0, seed: int = 0,
    start: str = "2014-01-02",
) -> pd.DataFrame:
    """Labelled signals over consecutive sessions: win probability p (uniform around 0.45,
    moved by `shift`); a trade wins with probability 0.45 + skill·(p − 0.45); winners
    make 4%, losers lose 3%, exits 5 sessions later."""
    rng = np.random.default_rng(seed)
    days = _sessions(start, rows // 10)
    stamps = np.repeat(days, 10)[:rows]
    p = np.clip(rng.uniform(0.30, 0.60, rows) + shift, 0.01, 0.99)
    won = rng.uniform(size=rows) < 0.45 + skill * (p - shift - 0.45)
    exits = pd.Series(np.repeat(days, 10)[:rows]).shift(-50).bfill()
    return pd.DataFrame({
        "timestamp": stamps,
        "exit_time": exits.to_numpy(),
        "strategy": rng.choice(STRATEGIES, rows),
        "win_probability": p,
        "net_return": np.where(won, 0.04, -0.03),
        "drawdown": rng.uniform(0.0, 0.05, rows),
    })


def _fit(window: pd.DataFrame, config: PolicyConfig | None = None) -> FittedPolicy:
    return fit_policy(
        config or PolicyConfig(),
        strategy=window["strategy"],
        net_return=window["net_return"],
        drawdown_pct=window["drawdown"],
        calibrated_strategy=window["strategy"],
        calibrated_probability=window["win_probability"],
        calibrated_timestamp=window["timestamp"],
    )


def test_payoffs_break_even_threshold_and_coverage_come_from_the_window() -> None:
    window = _window()
    policy = _fit(window)
    for name in STRATEGIES:
        payoff = policy.payoffs[name]
        assert payoff.avg_win == pytest.approx(0.04)
        assert payoff.avg_loss == pytest.approx(0.03)
        assert payoff.break_even == pytest.approx(0.03 / 0.07)
        p = window.loc[window["strategy"] == name, "win_probability"]
        assert payoff.threshold == pytest.approx(max(0.03 / 0.07, float(p.median())))
        assert 0.25 <= payoff.coverage <= 0.75
        assert payoff.coverage == pytest.approx(float((p > payoff.threshold).mean()))


def test_a_break_even_above_every_probability_is_clipped_to_the_coverage_floor() -> None:
    window = _window().assign(net_return=lambda w: np.where(w["net_return"] > 0, 0.01, -0.09))
    policy = _fit(window)
    for payoff in policy.payoffs.values():
        assert payoff.break_even == pytest.approx(0.9)
        assert payoff.coverage >= 0.25  # not starved in-window
        assert payoff.coverage == pytest.approx(0.25, abs=0.01)


def test_kelly_sizes_average_the_ungated_size_in_window_and_never_veto() -> None:
    window = _window()
    config = PolicyConfig()
    policy = _fit(window, config)
    entered = [
        policy.size_fraction(p, s) for p, s in zip(window["win_probability"],
                                                   window["strategy"], strict=True)
        if p > policy.payoffs[s].threshold
    ]
    assert np.mean(entered) == pytest.approx(config.base_size_fraction, rel=1e-3)
    assert min(entered) >= config.min_size_fraction
    assert max(entered) <= config.max_size_fraction
    # an entered signal with no Kelly edge still gets the floor
    assert policy.size_fraction(0.05, "momentum") == pytest.approx(config.min_size_fraction)


def test_the_json_artifact_round_trips() -> None:
    window = _window()
    policy = _fit(window)
    policy = policy.with_skill(skill_check(policy, _window(seed=1, start="2016-01-04")))
    restored = FittedPolicy.from_dict(json.loads(json.dumps(policy.to_dict())))
    assert restored == policy
    view = SignalView("breakout", 0.58, recent=np.linspace(0.3, 0.6, 40))
    assert restored.decide(view) == policy.decide(view)


def test_expected_value_gate() -> None:
    policy = _fit(_window())
    threshold = policy.payoffs["momentum"].threshold
    below = policy.decide(SignalView("momentum", threshold - 0.01))
    above = policy.decide(SignalView("momentum", threshold + 0.01))
    assert (below.action, below.reason) == ("skip", "ev")
    assert above.enter
    assert below.expected_value == pytest.approx(
        (threshold - 0.01) * 0.04 - (1 - threshold + 0.01) * 0.03)


def test_probability_gate_is_the_seeds_absolute_threshold() -> None:
    policy = _fit(_window(), PolicyConfig(mode="probability", win_probability_gate=0.65))
    skipped = policy.decide(SignalView("momentum", 0.64, recent=np.full(50, 0.2)))
    assert (skipped.action, skipped.reason, skipped.threshold) == ("skip", "gate", 0.65)
    assert policy.decide(SignalView("momentum", 0.66)).enter


def test_ood_and_regime_gates() -> None:
    base = _fit(_window())
    p = base.payoffs["momentum"].threshold + 0.05
    skip_ood = base.with_config(PolicyConfig(ood_action="skip"))
    assert skip_ood.decide(SignalView("momentum", p, out_of_distribution=True)).reason == "ood"
    assert skip_ood.decide(SignalView("momentum", p)).enter
    half = base.with_config(PolicyConfig(ood_action="half_size"))
    full = half.decide(SignalView("momentum", p)).size_fraction
    assert half.decide(SignalView("momentum", p, out_of_distribution=True)).size_fraction == (
        pytest.approx(full / 2))
    gate = base.with_config(PolicyConfig(regime_mode="gate"))
    assert gate.decide(SignalView("momentum", p, regime=Regime.RANGING)).reason == "regime"
    assert gate.decide(SignalView("momentum", p, regime=Regime.TRENDING)).enter
    size = base.with_config(PolicyConfig(regime_mode="size"))
    assert size.decide(SignalView("momentum", p, regime=Regime.RANGING)).size_fraction == (
        pytest.approx(full / 2))
    assert size.decide(SignalView("momentum", p, regime=Regime.TRENDING)).size_fraction == (
        pytest.approx(full))


def test_an_uninformative_model_keeps_its_coverage_when_probabilities_drift_down() -> None:
    """No starvation: the next year's probabilities all sit below the in-window threshold
    (a calm year); once the guard's lookback has passed into it the engine trades about
    the configured share again."""
    config = PolicyConfig()
    policy = _fit(_window(skill=0.0), config)
    next_year = _window(skill=0.0, shift=-0.15, seed=3, start="2015-01-02")
    static = [policy.payoffs[s].threshold for s in next_year["strategy"]]
    assert (next_year["win_probability"] > static).mean() < 0.02  # would starve
    entered = np.array([d.enter for d in replay_policy(policy, next_year)])
    sessions = session_numbers(next_year["timestamp"])
    settled = sessions >= sessions.min() + config.guard_lookback_days
    # thresholds clipped to [Q25, Q60] of the recent probabilities: 40%..75% enter
    low, high = 1 - config.guard_upper_quantile, 1 - config.guard_lower_quantile
    assert low - 0.05 <= entered[settled].mean() <= high + 0.05
    assert entered.mean() >= config.min_coverage


def test_sizing_follows_the_guard_when_probabilities_drift() -> None:
    """With `size_follows_guard`: a year whose probabilities all sit 0.15 lower, the guard
    lowers the threshold to keep entering, and the sizes follow it (sized as the same
    signal before the drift) instead of every entry sitting at the floor, as they do with
    the setting off (the default)."""
    assert not PolicyConfig().size_follows_guard
    config = PolicyConfig(size_follows_guard=True)
    policy = _fit(_window(skill=0.0), config)
    recent = _window(skill=0.0, shift=-0.15, seed=3)["win_probability"].to_numpy()[:600]
    fitted = policy.payoffs["momentum"].threshold
    view = SignalView("momentum", fitted - 0.15 + 0.05, recent=recent)
    guarded = policy.decide(view)
    moved = policy.threshold(view) - fitted
    assert guarded.enter
    assert moved < -0.05  # the guard moved the threshold down
    assert guarded.size_fraction == pytest.approx(
        policy.size_fraction(view.win_probability - moved, "momentum"))
    assert guarded.size_fraction > config.min_size_fraction
    raw = policy.with_config(PolicyConfig(size_follows_guard=False)).decide(view)
    assert raw.enter
    assert raw.size_fraction == pytest.approx(config.min_size_fraction)
    # no drift, no guard: the same size either way
    plain = SignalView("momentum", fitted + 0.05)
    assert policy.decide(plain).size_fraction == pytest.approx(
        policy.with_config(PolicyConfig(size_follows_guard=False)).decide(plain).size_fraction)


def test_the_guard_only_reads_earlier_sessions() -> None:
    policy = _fit(_window())
    window = _window(seed=5, start="2015-01-02").iloc[:400]
    forward = replay_policy(policy, window)
    backward = replay_policy(policy, window.iloc[::-1].reset_index(drop=True))
    assert [d.threshold for d in forward] == [d.threshold for d in backward][::-1]


def test_skill_check_switches_a_policy_that_loses_out_of_time_to_pass_through() -> None:
    config = PolicyConfig()
    skilled_policy = _fit(_window(skill=1.5), config)
    skilled = skilled_policy.with_skill(skill_check(
        skilled_policy, _window(skill=1.5, seed=9, start="2016-01-04")))
    assert skilled.skill is not None
    assert skilled.skill.pf_ratio > 1.1
    assert skilled.active
    assert skilled.decide(SignalView("momentum", 0.01)).reason == "ev"
    # the same policy judged on a slice where its ranking is backwards
    losing = skilled_policy.with_skill(skill_check(
        skilled_policy, _window(skill=-1.5, seed=9, start="2016-01-04")))
    assert losing.skill is not None
    assert losing.skill.pf_ratio <= config.min_skill_pf_ratio
    assert not losing.active
    decision = losing.decide(SignalView("momentum", 0.01))
    assert decision.enter
    assert decision.size_fraction == pytest.approx(config.base_size_fraction)
    assert "inactive" in decision.detail


def test_evaluate_decisions_books_pnl_on_exit_sessions() -> None:
    stamps = pd.Series(pd.to_datetime(["2024-01-02", "2024-01-03", "2024-01-04"], utc=True))
    exits = pd.Series(pd.to_datetime(["2024-01-05", "2024-01-08", "2024-01-09"], utc=True))
    returns = np.array([0.04, -0.02, 0.03])
    result = evaluate_decisions(returns, [0.1, 0.1, 0.0], stamps, exits)
    assert result.trades == 2
    assert result.win_rate == pytest.approx(0.5)
    assert result.profit_factor == pytest.approx(profit_factor([0.004, -0.002]))
    assert result.total_return == pytest.approx(0.002)
    assert result.max_drawdown == pytest.approx(0.002 / 1.004)
    empty = evaluate_decisions(returns, [0.0, 0.0, 0.0], stamps, exits)
    assert empty.trades == 0
    assert math.isnan(empty.profit_factor)
