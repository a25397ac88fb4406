"""Fractional Kelly, the drawdown scale and the streak multiplier (each test fails when
its rule is removed)."""

from __future__ import annotations

import pytest

from trading.sizing import PositionSizer, SizeRequest, SizingConfig


def request(
    p: float | None = 0.6, dd: float | None = None, equity: float = 100_000.0
) -> SizeRequest:
    # Stop 2 below, target 3 above: payoff ratio 1.5.
    return SizeRequest(equity, 100.0, 98.0, 103.0, p, dd)


def sizer(**config: object) -> PositionSizer:
    values: dict[str, object] = {"max_position_pct": 1.0}
    values.update(config)
    return PositionSizer(SizingConfig.model_validate(values))


def test_fractional_kelly_from_probability_and_payoff() -> None:
    s = sizer(kelly_fraction=0.5)
    result = s.size(request(0.6))
    kelly = 0.6 - 0.4 / 1.5
    assert result.kelly == pytest.approx(kelly)
    assert result.fraction == pytest.approx(0.5 * kelly)
    assert result.qty == int(100_000 * 0.5 * kelly / 100.0)


def test_no_edge_means_no_position() -> None:
    result = sizer().size(request(0.35))
    assert result.qty == 0
    assert "no edge" in result.reason


def test_capped_at_max_position_pct() -> None:
    result = sizer(max_position_pct=0.10).size(request(0.9))
    assert result.fraction == pytest.approx(0.10)
    assert result.qty == 100


def test_expected_drawdown_scales_down() -> None:
    s = sizer(tolerable_drawdown_pct=5.0)
    plain = s.size(request(0.6, dd=None)).fraction
    assert s.size(request(0.6, dd=2.0)).fraction == pytest.approx(plain)  # below tolerance
    assert s.size(request(0.6, dd=10.0)).fraction == pytest.approx(plain * 0.5)
    assert s.size(request(0.6, dd=100.0)).fraction == pytest.approx(plain * 0.25)  # floor


def test_streak_halves_after_three_losses_floored() -> None:
    s = sizer()
    plain = s.size(request()).fraction
    for _ in range(2):
        s.streak.record(False)
    assert s.size(request()).fraction == pytest.approx(plain)
    s.streak.record(False)
    assert s.streak.multiplier == 0.5
    assert s.size(request()).fraction == pytest.approx(plain * 0.5)
    for _ in range(6):
        s.streak.record(False)
    assert s.streak.multiplier == 0.5  # floored, not 0.125


def test_streak_one_and_a_half_after_five_wins_capped_at_two() -> None:
    s = sizer()
    plain = s.size(request()).fraction
    for _ in range(4):
        s.streak.record(True)
    assert s.streak.multiplier == 1.0
    s.streak.record(True)
    assert s.size(request()).fraction == pytest.approx(plain * 1.5)
    for _ in range(5):
        s.streak.record(True)
    assert s.streak.multiplier == 2.0  # 1.5² = 2.25 capped
    s.streak.record(False)  # a loss resets the winning streak
    assert s.streak.multiplier == 1.0


def test_rules_client_probability_default_and_invalid_inputs() -> None:
    s = sizer(default_win_probability=0.5)
    assert s.size(request(None)).kelly == pytest.approx(0.5 - 0.5 / 1.5)
    assert s.size(SizeRequest(100_000.0, 100.0, 100.0, 103.0, 0.6)).qty == 0
