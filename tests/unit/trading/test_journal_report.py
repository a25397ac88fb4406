"""The journal's idempotent writes and WAL mode; the report's metrics and files."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import text

from core.types import Decision, Fill, Order, OrderStatus, Side, Signal, Trade
from trading.journal import DecisionRecord, Journal
from trading.report import METRIC_KEYS, compute_metrics, write_html, write_json

T = datetime(2024, 1, 2, tzinfo=UTC)


def trade(trade_id: str, pnl_sign: int) -> Trade:
    return Trade(trade_id, "AAA", Side.BUY, 10, T, 100.0, T + timedelta(days=3),
                 100.0 + pnl_sign, "momentum", "take_profit")  # fmt: skip


def test_writes_are_idempotent_and_survive_reopening(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'journal.db'}"
    journal = Journal(url)
    order = Order("tw-1", "AAA", Side.BUY, 10, created_at=T)
    for _ in range(2):  # a replay after a crash writes the same events again
        journal.record_order(order, decision_id="d-1", at=T)
        journal.record_fill(Fill("tw-1-1", "tw-1", "AAA", Side.BUY, 10, 100.0, T))
        journal.record_trade(trade("tw-1", 1))
        journal.record_rejection(signal_id="s", symbol="AAA", strategy="momentum",
                                 rule="max_positions", reason="full", at=T)  # fmt: skip
    journal.record_order(
        Order("tw-1", "AAA", Side.BUY, 10, status=OrderStatus.FILLED, filled_qty=10, created_at=T),
        at=T + timedelta(days=1),
    )
    journal.close()
    reopened = Journal(url)
    orders = reopened.orders()
    assert len(orders) == 1
    assert orders.loc[0, "status"] == "filled"  # latest state wins
    assert orders.loc[0, "decision_id"] == "d-1"  # the link made at placement is kept
    assert len(reopened.fills()) == 1
    assert len(reopened.trades()) == 1
    assert len(reopened.rejections()) == 1
    assert reopened.trades().loc[0, "entry_time"] == pd.Timestamp(T)
    with reopened.engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"


def test_decision_rows_keep_versions_and_arm() -> None:
    journal = Journal("sqlite://", batch_size=100)
    signal = Signal("AAA", Side.BUY, T, "momentum", 100.0)
    decision = Decision("d-9", signal, 0.7, 98.0, 103.0, None, 2.0, variant="champion",
                        model_versions={"signal_quality": "4"}, source="http")  # fmt: skip
    record = DecisionRecord(
        signal.signal_id, "AAA", "buy", T, "momentum", 100.0, "entered", "", T, decision, 10, "tw-x"
    )
    journal.record_decision(record)
    rows = journal.decisions()  # reading flushes the buffer
    assert rows.loc[0, "variant"] == "champion"
    assert json.loads(rows.loc[0, "model_versions"]) == {"signal_quality": "4"}
    assert rows.loc[0, "win_probability"] == 0.7


def test_metrics_and_report_files(tmp_path: Path) -> None:
    times = pd.date_range("2024-01-02", periods=5, freq="D", tz="UTC")
    equity = pd.DataFrame({"timestamp": times, "equity": [100.0, 110.0, 99.0, 104.5, 121.0],
                           "positions_value": [0.0, 50.0, 50.0, 0.0, 0.0]})  # fmt: skip
    trades = pd.DataFrame({"pnl": [30.0, -10.0, 1.0], "return_pct": [0.3, -0.1, 0.01],
                           "exit_reason": ["take_profit", "stop_loss", "time_limit"]})  # fmt: skip
    metrics = compute_metrics(equity, trades, starting_equity=100.0)
    assert metrics["trades"] == 3
    assert metrics["win_rate"] == pytest.approx(2 / 3)
    assert metrics["profit_factor"] == pytest.approx(3.1)
    assert metrics["max_drawdown"] == pytest.approx(0.1)
    assert metrics["total_return"] == pytest.approx(0.21)
    assert metrics["exposure"] == pytest.approx((0.5 / 1.1 + 0.5 / 0.99) / 5)
    assert metrics["sharpe"] > 0
    out = write_json(tmp_path / "r.json", metrics, equity)
    payload = json.loads(out.read_text())
    assert set(METRIC_KEYS) <= set(payload)
    assert len(payload["equity_curve"]) == 5
    trades_full = trades.assign(symbol="AAA", side="buy", entry_time=times[:3],
                                exit_time=times[1:4], strategy="momentum")  # fmt: skip
    page = write_html(tmp_path / "r.html", metrics, equity, trades_full, "test").read_text()
    assert "data:image/png;base64," in page
    assert "profit_factor" in page
