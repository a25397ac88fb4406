"""Sizing from the decision's size fraction, the cap and the streak multiplier (each test
fails when its rule is removed); sizing never vetoes except at zero shares."""

from __future__ import annotations

import pytest

from trading.sizing import PositionSizer, SizeRequest, SizingConfig


def request(fraction: float | None = 0.05, equity: float = 100_000.0) -> SizeRequest:
    return SizeRequest(equity, 100.0, fraction)


def sizer(**config: object) -> PositionSizer:
    values: dict[str, object] = {"max_position_pct": 1.0}
    values.update(config)
    return PositionSizer(SizingConfig.model_validate(values))


def test_size_is_the_decisions_fraction_of_equity() -> None:
    result = sizer().size(request(0.05))
    assert result.fraction == pytest.approx(0.05)
    assert result.qty == 50


def test_a_decision_without_a_size_gets_the_ungated_size() -> None:
    result = sizer(default_size_fraction=1 / 12).size(request(None))
    assert result.fraction == pytest.approx(1 / 12)
    assert result.qty == 83


def test_capped_at_max_position_pct() -> None:
    result = sizer(max_position_pct=0.10).size(request(0.9))
    assert result.fraction == pytest.approx(0.10)
    assert result.qty == 100


def test_zero_shares_is_the_only_veto() -> None:
    result = sizer().size(request(0.0005, equity=10_000.0))
    assert result.qty == 0
    assert "rounds to zero shares" in result.reason
    assert sizer().size(request(0.0)).qty == 0
    assert sizer().size(SizeRequest(100_000.0, 0.0, 0.05)).qty == 0


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
    assert s.size(request()).qty > 0  # it scales, never vetoes


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
