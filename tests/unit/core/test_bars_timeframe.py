"""Bars of a timeframe: coarser intraday bars made of finer ones, the rest refused."""

from __future__ import annotations

import pandas as pd
import pytest

from core.bars import bars_at_timeframe
from core.errors import DataValidationError


def _minutes(count: int = 12) -> pd.DataFrame:
    stamps = pd.date_range("2021-08-10 13:30", periods=count, freq="1min", tz="UTC")
    close = [100.0 + i for i in range(count)]
    return pd.DataFrame({
        "symbol": "SPY", "timestamp": stamps, "open": [c - 0.5 for c in close],
        "high": [c + 1.0 for c in close], "low": [c - 1.0 for c in close], "close": close,
        "volume": [10.0] * count,
    })


def test_five_minute_bars_are_made_of_one_minute_bars() -> None:
    five = bars_at_timeframe(_minutes(), "5Min")
    assert list(five["timestamp"].dt.strftime("%H:%M")) == ["13:30", "13:35", "13:40"]
    first = five.iloc[0]
    assert (first["open"], first["high"], first["low"], first["close"], first["volume"]) == (
        99.5, 105.0, 99.0, 104.0, 50.0)
    assert five.iloc[-1]["volume"] == 20.0  # the last, partial bucket: two minutes


def test_the_bars_own_timeframe_is_kept_as_is() -> None:
    minutes = _minutes()
    assert bars_at_timeframe(minutes, "1Min") is minutes


@pytest.mark.parametrize("timeframe", ["1Day", "1Min"])
def test_what_cannot_be_made_is_refused_by_name(timeframe: str) -> None:
    five = bars_at_timeframe(_minutes(), "5Min")
    source = five if timeframe == "1Min" else _minutes()
    with pytest.raises(DataValidationError, match=f"{timeframe} bars cannot be made"):
        bars_at_timeframe(source, timeframe, where="test")
