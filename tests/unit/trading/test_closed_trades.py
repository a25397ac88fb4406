"""The one closed-trade → row conversion (what the trade collection stores)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pandas as pd
import pytest

from core.types import Side, Trade
from trading.closed_trades import ClosedTradeRecord, trades_frame

TRADE = Trade(
    trade_id="tw-1", symbol="AAA", side=Side.SELL, qty=10.0,
    entry_time=datetime(2024, 1, 2, 15, tzinfo=UTC), entry_price=100.0,
    exit_time=datetime(2024, 1, 5, 20, tzinfo=UTC), exit_price=95.0, strategy="breakout",
    exit_reason="take_profit", commission=1.0, max_favorable_excursion=6.0,
    max_adverse_excursion=1.5, decision_id="d-1",
)  # fmt: skip


def record(**changes: object) -> ClosedTradeRecord:
    values: dict[str, object] = {
        "trade": TRADE,
        "entry_features": {"rsi_14": 71.0, "atr_14": 2.0},
        "variant": "challenger",
        "model_versions": {"signal_quality": "3", "exit_optimizer": "2"},
        "win_probability": 0.68,
        "regime": "volatile",
    }
    values.update(changes)
    return ClosedTradeRecord(**values)  # type: ignore[arg-type]


def test_a_row_has_features_trade_outcome_and_decision_context() -> None:
    row = record().to_row()
    assert row["rsi_14"] == 71.0
    assert row["side"] == "sell"
    assert row["pnl"] == pytest.approx(49.0)  # short: (100 - 95) * 10 - 1
    assert row["return_pct"] == pytest.approx(0.05 - 0.001)
    assert row["exit_reason"] == "take_profit"
    assert json.loads(str(row["model_versions"])) == {"exit_optimizer": "2", "signal_quality": "3"}
    context = (row["variant"], row["win_probability"], row["regime"])
    assert context == ("challenger", 0.68, "volatile")


def test_the_frame_has_one_row_per_trade_with_utc_times() -> None:
    frame = trades_frame([record(), record(variant="champion", win_probability=None)])
    assert len(frame) == 2
    assert isinstance(frame["entry_time"].dtype, pd.DatetimeTZDtype)
    assert str(frame["exit_time"].dt.tz) == "UTC"
    assert list(frame["variant"]) == ["challenger", "champion"]
    assert trades_frame([]).empty
