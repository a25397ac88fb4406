"""Calibration of the win probability: the expected calibration error with its reliability
table, by hand, and the report's compact reliability table."""

from __future__ import annotations

import numpy as np
import pytest

from core.errors import DataValidationError
from monitoring.calibration import calibration_table, expected_calibration_error


def test_ece_of_a_perfectly_calibrated_model_is_zero() -> None:
    # 10 trades at p=0.3 with 3 wins, 10 at p=0.8 with 8 wins
    probability = [0.3] * 10 + [0.8] * 10
    won = [1] * 3 + [0] * 7 + [1] * 8 + [0] * 2
    result = expected_calibration_error(probability, won)
    assert result.ece == pytest.approx(0.0, abs=1e-12)
    assert result.trades == 20
    assert result.table["trades"].sum() == 20


def test_ece_matches_the_hand_computed_value() -> None:
    # bin 0.9: 10 trades, 5 wins → gap 0.4; bin 0.2: 10 trades, 2 wins → gap 0
    probability = [0.9] * 10 + [0.2] * 10
    won = [1] * 5 + [0] * 5 + [1] * 2 + [0] * 8
    assert expected_calibration_error(probability, won).ece == pytest.approx(0.2)


def test_ece_skips_trades_without_a_probability_and_keeps_edges() -> None:
    result = expected_calibration_error([np.nan, 1.0, 0.0], [1, 1, 0])
    assert result.trades == 2
    assert result.ece == pytest.approx(0.0)
    assert result.table.loc[9, "trades"] == 1
    assert result.table.loc[0, "trades"] == 1


def test_ece_rejects_non_binary_outcomes() -> None:
    with pytest.raises(DataValidationError, match="0/1"):
        expected_calibration_error([0.5, 0.5], [1, 2])


def test_calibration_table_bins_and_error() -> None:
    table = calibration_table([0.1, 0.15, 0.9, 0.95], [False, False, True, False], bins=2)
    assert table["count"] == [2.0, 2.0]
    assert table["observed"] == [0.0, 0.5]
    assert table["expected_calibration_error"] == pytest.approx((2 * 0.125 + 2 * 0.425) / 4)
