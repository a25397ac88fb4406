"""Out-of-distribution detector: fitted on training rows, flags about its quantile of
them, flags far-away rows, ignores missing values, survives a JSON round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core.errors import DataValidationError
from models.ood import OutOfDistributionDetector


def test_detector_flags_outliers_not_training_rows() -> None:
    rng = np.random.default_rng(0)
    train = rng.normal(size=(2000, 6))
    detector = OutOfDistributionDetector(quantile=0.99).fit(train, list("abcdef"))
    assert detector.flags(train).mean() == pytest.approx(0.01, abs=0.01)
    fresh = rng.normal(size=(1000, 6))
    assert detector.flags(fresh).mean() < 0.05
    far = fresh[:5].copy()
    far[:, 2] = 40.0  # one feature far outside its training range
    assert detector.flags(far).all()
    missing = fresh[:5].copy()
    missing[:, :] = np.nan
    assert not detector.flags(missing).any()


def test_detector_round_trips_through_json() -> None:
    rng = np.random.default_rng(1)
    train = rng.normal(size=(500, 3))
    detector = OutOfDistributionDetector().fit(train, ["x", "y", "z"])
    restored = OutOfDistributionDetector.from_dict(json.loads(json.dumps(detector.to_dict())))
    probe = rng.normal(size=(200, 3)) * 3
    assert np.array_equal(detector.flags(probe), restored.flags(probe))
    assert restored.feature_names == ["x", "y", "z"]


def test_detector_rejects_bad_input() -> None:
    with pytest.raises(DataValidationError, match="feature columns"):
        OutOfDistributionDetector().fit(np.zeros((50, 2)), ["only_one"])
    with pytest.raises(DataValidationError, match="at least 10"):
        OutOfDistributionDetector().fit(np.zeros((3, 1)), ["a"])
