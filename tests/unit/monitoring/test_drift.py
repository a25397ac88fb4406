"""PSI, KS, prediction drift and calibration error on constructed data with known answers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from core.errors import DataValidationError
from monitoring.drift import (
    DriftStatus,
    feature_drift,
    ks_two_sample,
    prediction_drift,
    psi,
    split_windows,
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


def test_prediction_drift_summary_names_its_figures() -> None:
    rng = np.random.default_rng(5)
    result = prediction_drift(rng.uniform(0.3, 0.6, 400), rng.uniform(0.5, 0.9, 300))
    summary = result.summary()
    assert summary["status"] == "major"
    assert summary["current_n"] == 300
    assert summary["psi"] == result.psi
    assert set(summary) == {"psi", "ks", "pvalue", "status", "current_n"}


def test_split_windows_reference_is_half_open_and_current_ends_at_as_of() -> None:
    stamps = pd.date_range("2020-01-01", periods=100, freq="D", tz="UTC")
    features = pd.DataFrame({"timestamp": stamps, "rsi_14": np.arange(100.0)})
    reference, current, (start, end) = split_windows(
        features, (stamps[0], stamps[10]), 5, as_of=stamps[49]
    )
    assert list(reference["rsi_14"]) == list(np.arange(10.0))  # [start, end)
    assert list(current["rsi_14"]) == [45.0, 46.0, 47.0, 48.0, 49.0]  # (as_of - 5 days, as_of]
    assert (start, end) == (stamps[44], stamps[49])
    _, latest, (_, newest) = split_windows(features, (stamps[0], stamps[10]), 3)
    assert newest == stamps[-1]
    assert len(latest) == 3


def test_benjamini_hochberg_matches_the_step_up_rule() -> None:
    from monitoring.drift import benjamini_hochberg

    p = np.array([0.01, 0.04, 0.03, 0.005, np.nan, 0.9])
    q = benjamini_hochberg(p)
    # 5 tests (NaN is not one): sorted p 0.005 0.01 0.03 0.04 0.9 → ×5/rank, running min.
    expected = [0.025, 0.05, 0.05, 0.025, np.nan, 0.9]
    np.testing.assert_allclose(q, expected, equal_nan=True)
    assert np.isnan(benjamini_hochberg([np.nan])).all()
