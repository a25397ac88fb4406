"""Real daily bars (bokeh-sampledata AAPL and MSFT, first half of 2010) for the paper
exchange's unit tests."""

from __future__ import annotations

import pandas as pd
import pytest

from core.bars import validate_bars


def sample_bars(symbols: tuple[str, ...] = ("AAPL", "MSFT"), days: int = 60) -> pd.DataFrame:
    from bokeh_sampledata import stocks

    frames = []
    for symbol in symbols:
        raw = pd.DataFrame(getattr(stocks, symbol))
        frame = pd.DataFrame(
            {
                "symbol": symbol,
                "timestamp": pd.to_datetime(raw["date"]),
                "open": raw["open"].astype(float),
                "high": raw["high"].astype(float),
                "low": raw["low"].astype(float),
                "close": raw["close"].astype(float),
                "volume": raw["volume"].astype(float),
            }
        )
        frame = frame[frame["timestamp"] >= "2010-01-01"].head(days)
        frames.append(frame)
    return validate_bars(pd.concat(frames, ignore_index=True), where="sample bars").bars


@pytest.fixture(scope="session")
def bars() -> pd.DataFrame:
    return sample_bars()
