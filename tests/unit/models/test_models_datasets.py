"""What the training set is drawn from: the training universe of a bar frame (stocks, not
index series; the requested symbols), the triple barrier from the engine's settings, the
out-of-time events, and the code version every run is tagged with."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from core.errors import DataValidationError
from core.settings import load_settings
from models.datasets import training_universe
from models.labels import TripleBarrier
from models.provenance import code_version


def _bars(*symbols: str) -> pd.DataFrame:
    stamps = pd.date_range("2020-01-01", periods=2, freq="D", tz="UTC")
    return pd.DataFrame(
        [
            {"symbol": s, "timestamp": t, "open": 1, "high": 2, "low": 0.5, "close": 1.5,
             "volume": 10}
            for s in symbols
            for t in stamps
        ]
    )


def test_training_universe_keeps_index_series_as_context() -> None:
    bars = _bars("MSFT", "SPX", "AAPL", "VIX")
    stocks, index = training_universe(bars, bars)
    assert sorted(stocks["symbol"].unique()) == ["AAPL", "MSFT"]
    assert sorted(index["symbol"].unique()) == ["SPX", "VIX"]
    assert stocks["volume"].dtype == "float64"
    assert list(stocks["symbol"]) == ["AAPL", "AAPL", "MSFT", "MSFT"]  # bar-schema order


def test_training_universe_takes_named_symbols_and_a_cap() -> None:
    bars = _bars("MSFT", "AAPL", "IBM", "SPY")
    stocks, _ = training_universe(bars, bars, symbols=["spy"])
    assert list(stocks["symbol"].unique()) == ["SPY"]  # an index by name is a stock
    stocks, _ = training_universe(bars, bars, max_symbols=2)
    assert sorted(stocks["symbol"].unique()) == ["AAPL", "IBM"]
    with pytest.raises(DataValidationError, match="no bars for ZZZ in files"):
        training_universe(bars, bars, symbols=["ZZZ"], source="files")
    with pytest.raises(DataValidationError, match="no stock bars"):
        training_universe(_bars("SPX"), _bars("SPX"))


def test_triple_barrier_follows_the_engine_settings() -> None:
    settings = load_settings(risk={"stop_loss_atr": 1.5, "max_holding_bars": 10},
                             broker={"slippage_bps": 5.0})
    barrier = TripleBarrier.from_settings(settings)
    assert (barrier.stop_loss_atr, barrier.take_profit_atr) == (1.5, 3.0)
    assert (barrier.max_holding_bars, barrier.slippage_bps) == (10, 5.0)


def test_code_version_names_a_commit() -> None:
    assert re.fullmatch(r"[0-9a-f]{40}(-dirty)?|unknown", code_version())
