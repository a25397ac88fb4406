"""`tradewind train --timeframe`'s data path on real minute bars: read as they are (no
daily session stamps), made coarser when asked, and one regime row per index bar."""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd
import pytest

from core.errors import DataValidationError
from core.settings import load_settings
from pipelines.training import TrainRequest, build_dataset, load_bars
from tests.conftest import shared_file


@pytest.fixture(scope="module")
def spy_minutes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    minutes = pd.read_parquet(shared_file("intraday/minute_2021.parquet"))
    week = minutes[(minutes["symbol"] == "SPY") & (minutes["timestamp"] < "2021-07-09")]
    path = tmp_path_factory.mktemp("minutes") / "spy.parquet"
    week.to_parquet(path)
    return path


@pytest.mark.parametrize(("timeframe", "spacing"), [("1Min", "1min"), ("5Min", "5min")])
def test_minute_files_are_read_at_the_asked_timeframe(
    spy_minutes: Path, timeframe: str, spacing: str
) -> None:
    request = TrainRequest(source=str(spy_minutes), symbols=("SPY",), timeframe=timeframe)
    stocks, index, _ = load_bars(request, load_settings())
    raw = pd.read_parquet(spy_minutes)
    step = stocks["timestamp"].diff().dropna().min()
    assert step == pd.Timedelta(spacing)
    assert len(stocks) <= len(raw)
    assert stocks["volume"].sum() == pytest.approx(raw["volume"].sum())
    assert index["symbol"].unique().tolist() == ["SPY"]  # SPY is the market context too


def test_one_regime_row_per_index_bar(spy_minutes: Path) -> None:
    request = TrainRequest(source=str(spy_minutes), symbols=("SPY",), timeframe="1Min")
    settings = load_settings()
    stocks, index, _ = load_bars(request, settings)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = build_dataset(stocks, index, settings)
    assert 0 < len(data.market) <= len(index)  # not one row per (bar, bar of its day)
    assert data.market["timestamp"].is_unique
    assert len(data.events) > 0
    assert (data.events["label_end"] > data.events["timestamp"]).all()


def test_bars_finer_than_the_file_are_refused(spy_minutes: Path) -> None:
    five = pd.read_parquet(spy_minutes)
    five = five[five["timestamp"].dt.minute % 5 == 0]
    path = spy_minutes.parent / "five.parquet"
    five.to_parquet(path)
    request = TrainRequest(source=str(path), symbols=("SPY",), timeframe="1Min")
    with pytest.raises(DataValidationError, match="1Min bars cannot be made"):
        load_bars(request, load_settings())
