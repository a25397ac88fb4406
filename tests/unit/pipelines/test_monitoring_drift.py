"""PSI, KS, prediction drift and calibration error on constructed data with known answers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from core.errors import DataValidationError
from pipelines.monitoring.drift import (
    DriftStatus,
    expected_calibration_error,
    feature_drift,
    ks_two_sample,
    latency_summary,
    prediction_drift,
    psi,
)

REFERENCE = np.arange(1000, dtype=float)  # deciles: 0-99, 100-199, ...


def _sample_with_shares(shares: list[float], total: int = 1000) -> np.ndarray:
    """Values placed in the reference's decile bins in the given proportions."""
    values = []
    for decile, share in enumerate(shares):
        values += [decile * 100 + 50.0] * round(share * total)
    return np.array(values)


def test_psi_is_zero_for_the_same_distribution() -> None:
    assert psi(REFERENCE, REFERENCE) == pytest.approx(0.0, abs=1e-12)


def test_psi_matches_the_hand_computed_value() -> None:
    shares = [0.2, 0.2, 0.05, 0.05, 0.1, 0.1, 0.1, 0.1, 0.05, 0.05]
    # 2 bins: (0.2-0.1)ln2 each; 4 bins: (0.05-0.1)ln(0.5) each → 0.4·ln 2
    assert psi(REFERENCE, _sample_with_shares(shares)) == pytest.approx(0.4 * math.log(2), rel=1e-9)


def test_psi_of_everything_in_one_bin_uses_the_floor() -> None:
    shares = [1.0] + [0.0] * 9
    expected = (1 - 0.1) * math.log(1 / 0.1) + 9 * (1e-4 - 0.1) * math.log(1e-4 / 0.1)
    assert psi(REFERENCE, _sample_with_shares(shares)) == pytest.approx(expected, rel=1e-9)


def test_psi_puts_values_beyond_the_training_range_in_the_outer_bins() -> None:
    far_right = np.full(500, 10_000.0)
    # all mass in the top decile
    expected = (1 - 0.1) * math.log(10) + 9 * (1e-4 - 0.1) * math.log(1e-4 / 0.1)
    assert psi(REFERENCE, far_right) == pytest.approx(expected, rel=1e-9)


def test_psi_handles_a_binary_feature() -> None:
    reference = np.array([0.0] * 700 + [1.0] * 300)
    current = np.array([0.0] * 300 + [1.0] * 700)
    expected = (0.3 - 0.7) * math.log(0.3 / 0.7) + (0.7 - 0.3) * math.log(0.7 / 0.3)
    assert psi(reference, current) == pytest.approx(expected, rel=1e-9)


def test_psi_rejects_empty_input() -> None:
    with pytest.raises(DataValidationError, match="finite values"):
        psi(REFERENCE, [np.nan, np.nan])


@pytest.mark.parametrize("shift", [0.0, 0.1, 0.5, 2.0])
def test_ks_matches_scipy(shift: float) -> None:
    rng = np.random.default_rng(7)
    first = rng.normal(size=400)
    second = rng.normal(loc=shift, size=250)
    ours = ks_two_sample(first, second)
    theirs = stats.ks_2samp(first, second, method="asymp")
    assert ours.statistic == pytest.approx(theirs.statistic, abs=1e-12)
    assert ours.pvalue == pytest.approx(theirs.pvalue, rel=1e-6, abs=1e-12)


def test_ks_with_ties_matches_scipy() -> None:
    first = np.array([1, 1, 2, 2, 2, 3, 4, 4, 5, 5] * 10, dtype=float)
    second = np.array([2, 2, 3, 3, 4, 4, 5, 5, 6, 6] * 8, dtype=float)
    theirs = stats.ks_2samp(first, second, method="asymp")
    assert ks_two_sample(first, second).statistic == pytest.approx(theirs.statistic)


def test_feature_drift_flags_the_shifted_feature_only() -> None:
    rng = np.random.default_rng(1)
    reference = pd.DataFrame(
        {"rsi_14": rng.normal(50, 10, 2000), "atr_14_pct": rng.gamma(2, 0.01, 2000)}
    )
    current = pd.DataFrame(
        {"rsi_14": rng.normal(65, 10, 500), "atr_14_pct": rng.gamma(2, 0.01, 500)}
    )
    table = feature_drift(reference, current, ["rsi_14", "atr_14_pct"])
    by_feature = table.set_index("feature")
    assert list(table["feature"]) == ["rsi_14", "atr_14_pct"]  # largest PSI first
    assert by_feature.loc["rsi_14", "status"] == DriftStatus.MAJOR
    assert by_feature.loc["atr_14_pct", "status"] == DriftStatus.STABLE
    assert by_feature.loc["rsi_14", "reference_n"] == 2000


def test_feature_drift_reports_too_few_values() -> None:
    reference = pd.DataFrame({"x": np.arange(100.0)})
    current = pd.DataFrame({"x": [1.0, 2.0, np.nan]})
    table = feature_drift(reference, current, ["x"])
    assert table.loc[0, "status"] == DriftStatus.INSUFFICIENT
    assert table.loc[0, "current_n"] == 2


def test_feature_drift_names_a_missing_column() -> None:
    frame = pd.DataFrame({"x": np.arange(100.0)})
    with pytest.raises(DataValidationError, match=r"current frame lacks.*'y'"):
        feature_drift(frame.assign(y=1.0), frame, ["x", "y"])


def test_prediction_drift_detects_a_shifted_probability() -> None:
    rng = np.random.default_rng(3)
    reference = rng.beta(2, 3, 3000)
    same = prediction_drift(reference, rng.beta(2, 3, 800))
    shifted = prediction_drift(reference, rng.beta(5, 2, 800))
    assert same.status == DriftStatus.STABLE
    assert shifted.status == DriftStatus.MAJOR
    assert shifted.psi > 0.25 > same.psi


def test_prediction_drift_rejects_probabilities_outside_unit_interval() -> None:
    with pytest.raises(DataValidationError, match=r"\[0, 1\]"):
        prediction_drift([0.1] * 40, [1.4] * 40)


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


def test_latency_summary() -> None:
    summary = latency_summary(list(range(1, 101)))
    assert summary["requests"] == 100
    assert summary["p50_ms"] == pytest.approx(50.5)
    assert summary["max_ms"] == 100
    assert math.isnan(latency_summary([])["p99_ms"])
