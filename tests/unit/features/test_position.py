"""Position features from the portfolio at decision time."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from core.errors import DataValidationError
from features.catalogue import feature_names
from features.position import HeldPosition, PortfolioState, position_features, return_correlations


def test_position_features_from_portfolio_state() -> None:
    state = PortfolioState(
        equity=100_000.0,
        cash=40_000.0,
        buying_power=80_000.0,
        positions={
            "XOM": (100, 80.0, "Energy"),
            "CVX": HeldPosition(-50, 120.0, "Energy"),
            "AAPL": (10, 150.0, "Information Technology"),
        },
        symbol="COP",
        correlations={"XOM": 0.82, "CVX": 0.75, "AAPL": 0.3},
    )
    got = position_features(state)
    assert list(got) == feature_names("position")
    assert got["pos_open_positions"] == 3
    assert got["pos_exposure_pct"] == pytest.approx((8_000 + 6_000 + 1_500) / 100_000)
    assert got["pos_sector_exposure_pct"] == pytest.approx(14_000 / 100_000)  # COP is Energy
    assert got["pos_correlated_positions"] == 2
    assert got["pos_buying_power_pct"] == pytest.approx(0.8)
    assert got["pos_cash_pct"] == pytest.approx(0.4)
    assert got["pos_symbol_held"] == 0


def test_unknown_sector_is_nan_and_bad_equity_is_an_error() -> None:
    state = PortfolioState(equity=1_000.0, cash=1_000.0, buying_power=1_000.0, symbol="ZZZZ")
    assert math.isnan(position_features(state)["pos_sector_exposure_pct"])
    with pytest.raises(DataValidationError, match="equity"):
        position_features(PortfolioState(equity=0.0, cash=0.0, buying_power=0.0))


def test_return_correlations_on_real_bars(sp500_daily: pd.DataFrame) -> None:
    bars = sp500_daily.loc[sp500_daily["symbol"].isin(["XOM", "CVX", "AAPL"])]
    corr = return_correlations(bars, "XOM", ["CVX", "AAPL", "NOPE"])
    assert corr["CVX"] > 0.6 > corr["AAPL"]
    assert math.isnan(corr["NOPE"])
