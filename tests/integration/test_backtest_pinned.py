"""The trades of a backtest on real bars, pinned: the run `benchmarks/bench_engine_backtrader.py`
times (50 S&P 500 symbols, daily 2013-2018, momentum) and the same bars with every strategy
under the regime selector. A speed-up of the replay, the matching engine, the feed or the
journal must leave every trade, fill, decision and equity point as it was; a change that
means to alter them updates these digests and says why.

Prices are rounded to 1e-6 and money to 1e-4 before hashing, so the digests hold across
platforms whose last floating-point bits differ, and still catch any real change."""

from __future__ import annotations

import hashlib

import pandas as pd
import pytest

from trading.backtest import BacktestResult, run_backtest

# (trades, final equity, digest of trades + fills + decisions + equity curve)
PINNED: dict[str, tuple[int, float, str]] = {
    "momentum": (
        868, 137498.9877, "b8987c7c11ce5a1a9190c0d8c58a1f6fd81d762a408af9b2f0d84e8299172fbf"
    ),
    "auto": (
        1105, 127460.7405, "420819e4bd6eacb39bafb6377117cf62248a0283ae140005355f7ddc98006bb8"
    ),
}

DECISION_COLUMNS = (
    "decision_id", "symbol", "side", "signal_time", "strategy", "action", "category", "reason",
    "qty", "client_order_id",
)


def _canonical(frame: pd.DataFrame, key: list[str], rounding: dict[str, int]) -> str:
    frame = frame.sort_values(key, ignore_index=True).copy()
    for column, digits in rounding.items():
        frame[column] = frame[column].astype(float).round(digits)
    for column in frame.columns:
        if isinstance(frame[column].dtype, pd.DatetimeTZDtype):
            frame[column] = frame[column].dt.strftime("%Y-%m-%dT%H:%M:%S.%f")
    return frame.to_csv(index=False, float_format="%.6f", lineterminator="\n")


def run_digest(result: BacktestResult) -> str:
    journal = result.journal
    prices = ("entry_price", "exit_price")
    money = ("pnl", "commission", "max_favorable_excursion", "max_adverse_excursion")
    parts = [
        _canonical(
            result.trades,
            ["trade_id"],
            {**dict.fromkeys(prices, 6), **dict.fromkeys(money, 4), "return_pct": 8, "qty": 4},
        ),
        _canonical(
            journal.fills(), ["fill_id"], {"price": 6, "qty": 4, "commission": 4}
        ),
        _canonical(
            journal.decisions()[list(DECISION_COLUMNS)], ["decision_id"], {"qty": 4}
        ),
        _canonical(
            result.equity,
            ["timestamp"],
            {"equity": 4, "cash": 4, "positions_value": 4},
        ),
    ]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


@pytest.mark.parametrize("strategy", ["momentum", "auto"])
def test_the_backtest_of_real_bars_trades_as_pinned(
    sp500_50: pd.DataFrame, strategy: str
) -> None:
    result = run_backtest(
        sp500_50, strategy=None if strategy == "auto" else strategy, repair=True
    )
    trades, final_equity, digest = PINNED[strategy]
    assert len(result.trades) == trades
    assert result.metrics["final_equity"] == pytest.approx(final_equity, abs=1e-4)
    assert run_digest(result) == digest
