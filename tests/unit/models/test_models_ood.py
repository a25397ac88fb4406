"""Out-of-distribution detector: a split-conformal test whose false-alarm rate is the
stated alpha on rows it did not fit, on synthetic and on real in-distribution rows (the
vendored S&P 500 set); it flags far-away rows, ignores missing values and survives a JSON
round trip."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from core.errors import DataValidationError
from core.universe import split_universe
from features.catalogue import feature_names
from features.compute import compute_features
from models.ood import OutOfDistributionDetector, ood_features
from models.template import utc_naive
from trading.adapters.sp500.data import SP500MarketData


def test_conformal_threshold_holds_alpha_on_fresh_rows() -> None:
    rng = np.random.default_rng(0)
    train = rng.standard_t(df=4, size=(8000, 6))  # heavy tails: no normal quantile helps
    detector = OutOfDistributionDetector(alpha=0.01).fit(train, list("abcdef"))
    assert detector.calibration_rate_ <= 0.011
    assert detector.held_out_calibration_
    fresh = rng.standard_t(df=4, size=(20000, 6))
    assert detector.flags(fresh).mean() == pytest.approx(0.01, abs=0.004)
    loose = OutOfDistributionDetector(alpha=0.05).fit(train, list("abcdef"))
    assert loose.flags(fresh).mean() == pytest.approx(0.05, abs=0.01)
    far = fresh[:5].copy()
    far[:, 2] = 40.0  # one feature far outside its training range
    assert detector.flags(far).all()
    missing = fresh[:5].copy()
    missing[:, :] = np.nan
    assert not detector.flags(missing).any()


def test_the_threshold_comes_from_later_dates_than_the_fit() -> None:
    rng = np.random.default_rng(3)
    early, late = rng.normal(size=(750, 2)), rng.normal(size=(250, 2)) * 3
    dates = np.concatenate([np.arange(750), 750 + np.arange(250)])
    detector = OutOfDistributionDetector().fit(np.vstack([early, late]), ["a", "b"], dates)
    # the wider later rows set the threshold: the early rows are almost never flagged
    assert detector.flags(early).mean() < 0.002
    assert detector.flags(late).mean() == pytest.approx(0.01, abs=0.01)


def test_detector_round_trips_through_json() -> None:
    rng = np.random.default_rng(1)
    train = rng.normal(size=(500, 3))
    detector = OutOfDistributionDetector().fit(train, ["x", "y", "z"])
    restored = OutOfDistributionDetector.from_dict(json.loads(json.dumps(detector.to_dict())))
    probe = rng.normal(size=(200, 3)) * 3
    assert np.array_equal(detector.flags(probe), restored.flags(probe))
    assert restored.feature_names == ["x", "y", "z"]
    assert restored.calibration_rate_ == detector.calibration_rate_
    with pytest.raises(DataValidationError, match="older format"):
        OutOfDistributionDetector.from_dict({"threshold": 1.0})


def test_detector_rejects_bad_input() -> None:
    with pytest.raises(DataValidationError, match="feature columns"):
        OutOfDistributionDetector().fit(np.zeros((50, 2)), ["only_one"])
    with pytest.raises(DataValidationError, match="at least 10"):
        OutOfDistributionDetector().fit(np.zeros((3, 1)), ["a"])


def test_inputs_are_the_per_symbol_technicals() -> None:
    names = ood_features(feature_names("technical"), feature_names())
    assert "atr_14" not in names  # price units
    assert {"beta_60", "corr_60", "sector_relative_20"} <= set(names)
    assert not any(n.startswith("mkt_") for n in names)
    assert not {"dow", "sector_id", "days_to_month_end"} & set(names)


@pytest.fixture(scope="module")
def sp500_features() -> pd.DataFrame:
    source = SP500MarketData()
    development, held_out = split_universe(source.stocks())
    symbols = development[::8] + held_out[::2]
    bars = source.history(symbols=[*symbols, "SPX", "VIX"], end="2015-12-31")
    index = bars["symbol"].isin(["SPX", "VIX"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        features = compute_features(bars[~index], bars[index])
    features = features.dropna(subset=["ema_200_dist"])  # a full history behind each row
    return features.assign(held_out=features["symbol"].isin(held_out))


def test_false_alarms_hold_on_real_in_distribution_rows(sp500_features: pd.DataFrame) -> None:
    """Fitted on development symbols up to 2014: about 1% of the held-back dates, at most
    3% of other symbols' ordinary bars of the same window and 5% of the next year's."""
    f = sp500_features
    names = ood_features(feature_names("technical"), list(f.columns))
    window = f["timestamp"] < pd.Timestamp("2015-01-01", tz="UTC")
    train = f[window & ~f["held_out"]]
    detector = OutOfDistributionDetector(alpha=0.01).fit(
        train[names].to_numpy(dtype=float), names, utc_naive(train["timestamp"]))
    assert detector.calibration_rate_ <= 0.011
    same_window = f[window & f["held_out"]]
    next_year = f[~window & f["held_out"]]
    assert detector.flags(same_window[names].to_numpy(dtype=float)).mean() <= 0.03
    assert detector.flags(next_year[names].to_numpy(dtype=float)).mean() <= 0.05
