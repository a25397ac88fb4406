"""ATR trailing stops tighten and never loosen."""

from __future__ import annotations

import pytest

from core.types import Side
from trading.stops import TrailingStop


def test_long_stop_rises_with_price_and_never_falls() -> None:
    trail = TrailingStop(2.0)
    assert trail.tighten(Side.BUY, 98.0, 102.0, 1.0) == pytest.approx(100.0)
    assert trail.tighten(Side.BUY, 100.0, 101.0, 1.0) is None  # 99 < 100: would loosen
    assert trail.tighten(Side.BUY, 100.0, 104.0, 3.0) is None  # wider ATR: 98 < 100


def test_short_stop_falls_with_price_and_never_rises() -> None:
    trail = TrailingStop(2.0)
    assert trail.tighten(Side.SELL, 102.0, 98.0, 1.0) == pytest.approx(100.0)
    assert trail.tighten(Side.SELL, 100.0, 99.0, 1.0) is None


def test_bad_atr_never_moves_the_stop() -> None:
    trail = TrailingStop(2.0)
    assert trail.tighten(Side.BUY, 98.0, 102.0, float("nan")) is None
    assert trail.tighten(Side.BUY, 98.0, 102.0, 0.0) is None
