"""Triple-barrier labels on hand-built bars: every exit path, costs, optimal exits, and
regime thresholds fitted on the training rows only."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.labels import (
    REGIME_HORIZON,
    RegimeThresholds,
    TripleBarrier,
    forward_regime_measures,
    trade_labels,
)

START = pd.Timestamp("2020-01-01", tz="UTC")


def _bars(rows: list[tuple[float, float, float, float]], symbol: str = "AAA") -> pd.DataFrame:
    stamps = pd.date_range(START, periods=len(rows), freq="D")
    frame = pd.DataFrame(rows, columns=["open", "high", "low", "close"])
    frame.insert(0, "timestamp", stamps)
    frame.insert(0, "symbol", symbol)
    frame["volume"] = 1000.0
    return frame


def _event(bars: pd.DataFrame, at: int = 0, atr: float = 1.0, side: str = "buy") -> pd.DataFrame:
    return pd.DataFrame({"symbol": [bars["symbol"].iloc[at]],
                         "timestamp": [bars["timestamp"].iloc[at]],
                         "side": [side], "strategy": ["test"], "atr_14": [atr]})


FREE = TripleBarrier(stop_loss_atr=2, take_profit_atr=3, max_holding_bars=4, slippage_bps=0)


def test_target_hit_exits_at_target() -> None:
    # signal bar, entry at 100, bar 2 reaches 103.5 (target 103)
    bars = _bars([(99, 100, 98, 100), (100, 101, 99.5, 100.5), (101, 103.5, 100.5, 103),
                  (103, 104, 102, 103), (103, 104, 102, 103)])
    labels, _ = trade_labels(bars, _event(bars), FREE)
    row = labels.iloc[0]
    assert row["exit_reason_4"] == "target"
    assert row["net_return_4"] == pytest.approx(0.03)
    assert row["won_4"] == 1
    assert row["label_end"] == bars["timestamp"].iloc[4]


def test_stop_wins_a_same_bar_tie_and_gap_fills_at_open() -> None:
    tie = _bars([(99, 100, 98, 100), (100, 104, 97, 100), (100, 101, 99, 100),
                 (100, 101, 99, 100), (100, 101, 99, 100)])
    labels, _ = trade_labels(tie, _event(tie), FREE)
    assert labels.iloc[0]["exit_reason_4"] == "stop"
    assert labels.iloc[0]["net_return_4"] == pytest.approx(-0.02)
    gap = _bars([(99, 100, 98, 100), (100, 100.5, 99.5, 100), (95, 96, 94, 95),
                 (95, 96, 94, 95), (95, 96, 94, 95)])
    labels, _ = trade_labels(gap, _event(gap), FREE)
    assert labels.iloc[0]["exit_reason_4"] == "stop"
    assert labels.iloc[0]["net_return_4"] == pytest.approx(-0.05)  # filled at the gap open


def test_time_limit_exit_and_costs_turn_a_small_gain_into_a_loss() -> None:
    bars = _bars([(99, 100, 98, 100), (100, 100.5, 99.5, 100), (100, 100.5, 99.5, 100),
                  (100, 100.5, 99.5, 100), (100, 100.5, 99.5, 100.05)])
    labels, _ = trade_labels(bars, _event(bars), FREE)
    assert labels.iloc[0]["exit_reason_4"] == "time"
    assert labels.iloc[0]["won_4"] == 1  # +0.05% gross, no costs
    costly = FREE.model_copy(update={"slippage_bps": 5.0, "commission_per_share": 0.01})
    labels, _ = trade_labels(bars, _event(bars), costly)
    assert labels.iloc[0]["won_4"] == 0  # 2 × 5 bps + 2 × 1 ct/share eat the gain


def test_short_side_and_optimal_exits() -> None:
    bars = _bars([(99, 100, 98, 100), (100, 101, 99, 100), (100, 101.5, 97, 98),
                  (98, 98.5, 96, 96.5), (97, 99, 96.5, 98)])
    labels, _ = trade_labels(bars, _event(bars, side="sell"), FREE)
    row = labels.iloc[0]
    # short from 100: best low 96 (MFE 4 ATR), worst high before it 101.5 (1.5 ATR)
    assert row["max_favorable_excursion_atr_4"] == pytest.approx(4.0)
    assert row["take_profit_atr_opt_4"] == pytest.approx(4.0)
    assert row["stop_loss_atr_opt_4"] == pytest.approx(1.5 + 0.25)
    assert row["max_adverse_excursion_pct_4"] == pytest.approx(0.015)
    assert row["exit_reason_4"] == "target"  # 100 - 3 = 97 reached on bar 2 (high 101.5 < stop 102)


def test_events_without_a_full_horizon_are_not_labelled() -> None:
    bars = _bars([(99, 100, 98, 100)] * 4)
    labels, paths = trade_labels(bars, _event(bars, at=1), FREE)
    assert labels.empty
    assert len(paths) == 0


def test_regime_thresholds_come_from_the_training_rows_only() -> None:
    rng = np.random.default_rng(3)
    calm = rng.normal(0, 0.003, 300)
    wild = rng.normal(0, 0.03, 300)
    close = 100 * np.exp(np.cumsum(np.concatenate([calm, wild])))
    index = _bars([(c, c, c, c) for c in close], symbol="SPX")
    measures = forward_regime_measures(index, 20)
    train = measures.iloc[:250]
    thresholds = RegimeThresholds(20).fit(train)
    refit = RegimeThresholds(20).fit(measures.dropna())
    assert thresholds.volatile_vol_ < refit.volatile_vol_  # later, wilder rows not seen
    classes = thresholds.classify(measures)
    # every row of the wild half is above the calm-period volatility cut-off
    assert (classes[320:560] == 2).mean() > 0.95
    assert (classes[-20:] == -1).all()  # no complete horizon at the end



def test_regime_labels_on_the_real_index_have_all_four_classes() -> None:
    """SPX 1999-2017 (the sample index series): thresholds fitted on 1999-2012 give every
    class in-window in the proportions the quantiles imply, and all four out of time."""
    from trading.adapters.sample.data import SampleMarketData

    spx = SampleMarketData().history(symbols=["SPX"], end="2017-12-31")
    measures = forward_regime_measures(spx, REGIME_HORIZON).dropna()
    before = measures["timestamp"] < pd.Timestamp("2013-01-01", tz="UTC")
    thresholds = RegimeThresholds().fit(measures[before])
    assert (thresholds.horizon, thresholds.volatile_quantile, thresholds.calm_quantile) == (
        10, 0.70, 0.30)
    inside = np.bincount(thresholds.classify(measures[before]), minlength=4) / before.sum()
    trending, ranging, volatile, calm = inside
    assert volatile == pytest.approx(0.30, abs=0.01)
    assert min(inside) > 0.10  # every class common enough to learn
    assert trending + ranging + calm == pytest.approx(0.70, abs=0.01)
    after = np.bincount(thresholds.classify(measures[~before]), minlength=4)
    assert (after > 0).all()
