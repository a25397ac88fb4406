"""End-to-end backtests: the CLI over the embedded sample data, and the engine over the
real S&P 500 daily set (50 symbols), with no-lookahead and determinism checks."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from core.errors import DataValidationError
from pipelines.cli import app
from trading.backtest import run_backtest
from trading.report import METRIC_KEYS


def test_cli_backtest_over_sample_data_writes_json_and_html(workdir: Path) -> None:
    result = CliRunner().invoke(
        app,
        [
            "backtest", "--source", "sample", "--symbols", "AAPL,MSFT,IBM",
            "--start", "2006-01-01", "--end", "2012-12-31", "--strategy", "momentum",
            "--json", "out/report.json", "--html", "out/report.html",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "win_rate" in result.output
    payload = json.loads((workdir / "out/report.json").read_text())
    assert set(METRIC_KEYS) <= set(payload)
    assert payload["trades"] > 10
    assert payload["symbols"] == 3
    assert 0 <= payload["max_drawdown"] < 1
    assert len(payload["equity_curve"]) > 1000
    assert "data:image/png;base64," in (workdir / "out/report.html").read_text()


def test_cli_rejects_bad_source(workdir: Path) -> None:
    result = CliRunner().invoke(app, ["backtest", "--source", "parquet"])
    assert result.exit_code != 0


def test_sp500_backtest_has_real_metrics_and_never_fills_on_the_signal_bar(
    sp500_50: pd.DataFrame,
) -> None:
    result = run_backtest(sp500_50, strategy=None, repair=True)
    metrics = result.metrics
    assert metrics["trades"] > 50
    assert metrics["symbols"] == 50
    for key in METRIC_KEYS:
        value = metrics[key]
        assert value is None or math.isfinite(value), key
    decisions = result.journal.decisions()
    entered = decisions[decisions["action"] == "entered"].set_index("client_order_id")
    trades = result.trades.set_index("trade_id")
    joined = trades.join(entered["signal_time"], how="inner")
    assert len(joined) == len(trades)
    assert (joined["entry_time"] > joined["signal_time"]).all()
    equity = result.equity
    assert equity["equity"].iloc[-1] == pytest.approx(metrics["final_equity"])
    # Positions at most 10% of equity each when entered (sizing and risk cap).
    entry_value = trades["qty"] * trades["entry_price"]
    assert (entry_value <= 0.10 * 1.05 * equity["equity"].max()).all()


def test_later_bars_do_not_change_earlier_trades(sp500_50: pd.DataFrame) -> None:
    cut = pd.Timestamp("2016-01-01", tz="UTC")
    base = run_backtest(sp500_50, strategy="momentum", repair=True).trades
    shocked = sp500_50.copy()
    later = shocked["timestamp"] > cut
    rng = np.random.default_rng(3)
    factor = rng.uniform(0.7, 1.3, later.sum())
    for column in ("open", "high", "low", "close"):
        shocked.loc[later, column] = shocked.loc[later, column] * factor
    shocked.loc[later, "high"] = shocked.loc[later, ["open", "high", "low", "close"]].max(axis=1)
    shocked.loc[later, "low"] = shocked.loc[later, ["open", "high", "low", "close"]].min(axis=1)
    other = run_backtest(shocked, strategy="momentum", repair=True).trades
    # A trade closed before the cut cannot have seen a bar after it.
    before = base[base["exit_time"] < cut].reset_index(drop=True)
    other_before = other[other["exit_time"] < cut].reset_index(drop=True)
    pd.testing.assert_frame_equal(before, other_before)
    assert len(before) > 20


def test_bad_bars_are_named_not_traded(sp500_50: pd.DataFrame) -> None:
    with pytest.raises(DataValidationError, match="AOS"):
        run_backtest(sp500_50[sp500_50["symbol"] == "AOS"])


def test_backtest_is_deterministic(sp500_50: pd.DataFrame) -> None:
    subset = sp500_50[sp500_50["symbol"].isin(sorted(sp500_50["symbol"].unique())[:10])]
    first = run_backtest(subset, strategy="breakout", repair=True)
    second = run_backtest(subset, strategy="breakout", repair=True)
    pd.testing.assert_frame_equal(first.trades, second.trades)
    assert first.metrics["total_return"] == second.metrics["total_return"]
