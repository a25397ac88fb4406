"""The one replay (`trading.backtest`): stepping equals one go, windows bound what is
traded, backtests and trade collection run the same replay. Real daily bars from the
embedded sample (AAPL, MSFT, the S&P 500 index)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from core.errors import ConfigError, DataValidationError
from core.settings import PathSettings, Settings, load_settings
from features.bar_store import BarStore
from trading.adapters.sample.data import SampleMarketData
from trading.backtest import Replay, ReplayMarket, ReplaySession, load_window_bars, run_backtest
from trading.closed_trades import trades_frame


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    return SampleMarketData().history(["AAPL", "MSFT", "SPX"], "2004-01-01", "2009-12-31")


@pytest.fixture(scope="module")
def market(bars: pd.DataFrame) -> ReplayMarket:
    return ReplayMarket.from_bars(bars)


@pytest.fixture(scope="module")
def settings() -> Settings:
    return load_settings()


def test_the_market_splits_context_and_computes_features_once(market: ReplayMarket) -> None:
    assert set(market.tradable["symbol"]) == {"AAPL", "MSFT"}
    assert market.context is not None
    assert set(market.context["symbol"]) == {"SPX"}
    assert {"rsi_14", "mkt_trend"} <= set(market.frame.columns)
    with pytest.raises(DataValidationError, match="nothing tradable"):
        ReplayMarket.from_bars(market.context)


def test_stepping_month_by_month_equals_one_go(market: ReplayMarket, settings: Settings) -> None:
    whole = Replay(market, settings, start="2006-01-01")
    whole.run_until(None)
    whole.finish()
    stepped = Replay(market, settings, start="2006-01-01")
    closed = 0
    for month in pd.date_range("2006-02-01", "2010-01-01", freq="MS", tz="UTC"):
        closed += stepped.run_until(month)
        assert stepped.now is None or stepped.now < month
    closed += stepped.run_until(None)
    stepped.finish()
    assert stepped.done
    assert closed == len(stepped.records) == len(whole.records) > 10
    pd.testing.assert_frame_equal(trades_frame(stepped.records), trades_frame(whole.records))
    pd.testing.assert_frame_equal(stepped.journal.equity(), whole.journal.equity())
    assert stepped.metrics() == whole.metrics()


def test_a_window_bounds_what_is_replayed(market: ReplayMarket, settings: Settings) -> None:
    stamps = market.frame["timestamp"]
    start = pd.Timestamp("2007-01-03", tz="UTC")
    end = stamps[stamps >= pd.Timestamp("2007-07-02", tz="UTC")].min()  # a session's bar
    window = Replay(market, settings, start=start, end=end, include_end=False)
    window.run_until(None)
    window.finish()
    assert window.first_timestamp >= start
    assert window.last_timestamp < end
    sessions = window.session_dates()
    assert len(sessions) == window.bars / 2  # two symbols, every session
    for record in window.records:
        assert start <= record.trade.entry_time <= record.trade.exit_time < end
    included = Replay(market, settings, start=start, end=end, include_end=True)
    assert included.bars == window.bars + 2  # the bars at `end` too
    with pytest.raises(DataValidationError, match="no bars"):
        Replay(market, settings, start="2030-01-01")


def test_a_backtest_is_the_same_replay(bars: pd.DataFrame, settings: Settings) -> None:
    result = run_backtest(bars, settings=settings, strategy="momentum")
    replay = Replay(ReplayMarket.from_bars(bars), settings, strategy="momentum")
    replay.run_until(None)
    replay.finish()
    assert result.metrics["trades"] == len(replay.records) > 0
    pd.testing.assert_frame_equal(result.trades, replay.journal.trades())
    assert result.metrics["strategy"] == "momentum"
    assert result.bars == len(replay.market.frame)


def test_trade_collection_loads_a_warm_window_from_the_store(
    tmp_path: Path, bars: pd.DataFrame
) -> None:
    settings = load_settings(paths=PathSettings(data_dir=tmp_path / "data").model_dump())
    BarStore(settings.paths.bars_dir).write(bars)
    stocks, index = load_window_bars(
        settings, ["AAPL", "SPX", "NOPE"], "2008-01-01", "2008-12-31", warmup_days=100
    )
    assert set(stocks["symbol"]) == {"AAPL"}
    assert index is not None
    assert set(index["symbol"]) == {"SPX"}
    assert stocks["timestamp"].min() >= pd.Timestamp("2007-09-23", tz="UTC")
    assert stocks["timestamp"].max() <= pd.Timestamp("2009-01-01", tz="UTC")
    session = ReplaySession(settings, stocks, index, "2008-01-01")
    assert session.first_timestamp >= pd.Timestamp("2008-01-01", tz="UTC")
    with pytest.raises(ConfigError, match="no stored bars"):
        load_window_bars(settings, ["NOPE"], None, None)
