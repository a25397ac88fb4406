"""The engine's decision pipeline and position management, against the real matching
engine through the SimulatedBroker (no mocks of the broker)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core.errors import BrokerError
from core.types import Order, Side
from trading.closed_trades import trades_frame
from trading.engine import EngineConfig
from trading.risk import RiskConfig
from trading.sizing import SizingConfig

from .helpers import FixedModelClient, Harness, session


def test_signal_on_close_fills_at_next_open_with_deterministic_id() -> None:
    h = Harness()
    h.bar(0, 100, 101, 99, 100, signal=Side.BUY)
    orders = h.broker.open_orders()
    assert len(orders) == 1
    entry = orders[0]
    assert entry.client_order_id.startswith("tw-")
    assert entry.stop_loss_price == pytest.approx(98.0)  # 2 x ATR
    assert entry.take_profit_price == pytest.approx(103.0)  # 3 x ATR
    assert h.broker.positions() == []  # never filled on the signal bar's close
    h.bar(1, 100.5, 101, 100, 100.8)
    position = h.broker.positions()[0]
    assert position.avg_entry_price == pytest.approx(100.5)
    # The same signal again submits nothing new (idempotent client_order_id).
    h.engine.on_signal(h.feed.signal_map[("AAA", session(0))][0])
    assert len(h.matching.orders()) == 3  # the entry and its two legs


def test_take_profit_closes_the_trade_into_journal_and_sink() -> None:
    h = Harness()
    h.bar(0, 100, 101, 99, 100, signal=Side.BUY)
    h.bar(1, 100, 101, 99.5, 100.5)
    h.bar(2, 101, 104, 100.5, 103.5)
    trades = h.journal.trades()
    assert len(trades) == 1
    assert trades.loc[0, "exit_reason"] == "take_profit"
    assert trades.loc[0, "exit_price"] == pytest.approx(103.0)
    assert len(h.sunk) == 1
    assert h.sunk[0].entry_features["atr_14"] == 1.0
    frame = trades_frame(h.sunk)  # what the feature store's trade collection takes
    assert frame.loc[0, "trade_id"] == trades.loc[0, "trade_id"]
    assert frame.loc[0, "atr_14"] == 1.0
    assert frame.loc[0, "exit_reason"] == "take_profit"
    assert h.broker.positions() == []


@pytest.mark.parametrize("reason", ["ev", "gate", "ood", "regime"])
def test_a_skip_is_obeyed_and_journaled_with_its_category_versions_and_arm(
    reason: str,
) -> None:
    model = FixedModelClient(0.90, action="skip", reason=reason,
                             out_of_distribution=reason == "ood")
    h = Harness(model=model)
    h.bar(0, 100, 101, 99, 100, signal=Side.BUY)
    assert h.broker.open_orders() == []
    decisions = h.journal.decisions()
    assert list(decisions["action"]) == ["skipped"]
    assert list(decisions["category"]) == [reason]
    assert decisions.loc[0, "reason"] == f"{reason} (test)"
    assert bool(decisions.loc[0, "out_of_distribution"]) is (reason == "ood")
    assert decisions.loc[0, "variant"] == "challenger"
    assert json.loads(decisions.loc[0, "model_versions"]) == {
        "exit_optimizer": "3",
        "signal_quality": "7",
    }
    assert h.engine.stats.refusals == {reason: 1}


def test_the_engine_keeps_no_gate_of_its_own() -> None:
    """A low probability in a regime that does not select the strategy still enters
    when the policy says enter: one place decides."""
    from core.types import Regime

    model = FixedModelClient(0.10, regime=Regime.RANGING, size_fraction=0.05,
                             out_of_distribution=True)
    h = Harness(model=model, strategy=None)
    h.bar(0, 100, 101, 99, 100, signal=Side.BUY, strategy="momentum")
    assert len(h.broker.open_orders()) == 1
    decisions = h.journal.decisions()
    assert list(decisions["action"]) == ["entered"]
    assert bool(decisions.loc[0, "out_of_distribution"])  # the true flag, though entered


def test_entry_size_comes_from_the_decision() -> None:
    h = Harness(model=FixedModelClient(0.70, size_fraction=0.05))
    h.bar(0, 100, 101, 99, 100, signal=Side.BUY)
    (entry,) = [o for o in h.broker.open_orders() if o.client_order_id.startswith("tw-")
                and not o.client_order_id.endswith(("-sl", "-tp"))]
    assert entry.qty == 50  # 5% of 100,000 at 100
    assert list(h.journal.decisions()["action"]) == ["entered"]
    assert h.journal.decisions().loc[0, "size_fraction"] == pytest.approx(0.05)


def test_a_size_that_rounds_to_zero_shares_is_a_sizing_refusal() -> None:
    h = Harness(model=FixedModelClient(0.70, size_fraction=0.0005), starting_cash=10_000.0)
    h.bar(0, 100, 101, 99, 100, signal=Side.BUY)
    assert h.broker.open_orders() == []
    assert list(h.journal.decisions()["category"]) == ["sizing"]


def test_model_failure_means_no_entry_unless_rules_fallback() -> None:
    model = FixedModelClient(0.9)
    model.fail = True
    h = Harness(model=model)
    h.bar(0, 100, 101, 99, 100, signal=Side.BUY)
    assert h.broker.open_orders() == []
    assert list(h.journal.decisions()["category"]) == ["model_unavailable"]

    h2 = Harness(model=model, engine_config=EngineConfig(fallback="rules"), fallback=True)
    h2.bar(0, 100, 101, 99, 100, signal=Side.BUY)
    assert len(h2.broker.open_orders()) == 1
    assert h2.journal.decisions().loc[0, "source"] == "fallback"


def test_a_crashing_model_client_costs_the_entry_not_the_engine() -> None:
    class Broken:
        def decide(self, signal: object, features: object) -> object:
            raise RuntimeError("bug in a client")

    h = Harness(model=Broken())
    h.bar(0, 100, 101, 99, 100, signal=Side.BUY)
    h.bar(1, 100, 101, 99, 100)
    assert list(h.journal.decisions()["category"]) == ["model_unavailable"]
    assert "RuntimeError" in h.journal.decisions().loc[0, "reason"]
    assert h.broker.open_orders() == []


def test_exits_and_trailing_stops_work_while_the_model_is_down() -> None:
    model = FixedModelClient(0.9)
    h = Harness(model=model)
    h.bar(0, 100, 101, 99, 100, signal=Side.BUY)
    h.bar(1, 100, 101, 99.5, 100.5)
    model.fail = True
    calls = model.calls
    # Price climbs: the trailing stop (close - 2 ATR) rises and is replaced at the broker.
    h.bar(2, 100.5, 102.5, 100.4, 102.4)
    stop = h.broker.get_order(h.broker.open_orders()[1].client_order_id)
    assert stop is not None
    assert stop.stop_price == pytest.approx(100.4)
    h.bar(3, 102, 102.2, 99.0, 99.5)  # falls through the raised stop
    trades = h.journal.trades()
    assert list(trades["exit_reason"]) == ["trailing_stop"]
    assert trades.loc[0, "exit_price"] == pytest.approx(100.4)
    assert model.calls == calls  # no exit asked the model anything


def test_trailing_stop_never_loosens_at_the_broker() -> None:
    h = Harness()
    h.bar(0, 100, 101, 99, 100, signal=Side.BUY)
    h.bar(1, 100, 101, 99.5, 100.0)
    h.bar(2, 100, 102.6, 99.9, 102.5)  # stop -> 100.5
    h.bar(3, 102, 102.1, 101.0, 101.0, atr=0.5)  # wider ATR would be lower: ignored
    sl = next(o for o in h.broker.open_orders() if o.client_order_id.endswith("-sl"))
    assert sl.stop_price == pytest.approx(100.5)
    h.bar(4, 101, 101.5, 100.9, 101.0, atr=3.0)  # close - 6 = 95: looser, ignored
    again = h.broker.get_order(sl.client_order_id)
    assert again is not None
    assert again.stop_price == pytest.approx(100.5)


def test_time_limit_closes_the_position() -> None:
    h = Harness(engine_config=EngineConfig(max_holding_bars=3))
    h.bar(0, 100, 101, 99, 100, signal=Side.BUY)
    for n in range(1, 6):
        h.bar(n, 100, 100.4, 99.8, 100.0)
    trades = h.journal.trades()
    assert list(trades["exit_reason"]) == ["time_limit"]


def test_opposite_signal_of_the_same_strategy_exits() -> None:
    h = Harness()
    h.bar(0, 100, 101, 99, 100, signal=Side.BUY)
    h.bar(1, 100, 100.5, 99.5, 100.2, signal=Side.SELL)
    h.bar(2, 100.1, 100.5, 99.8, 100.0)
    assert list(h.journal.trades()["exit_reason"]) == ["signal_exit"]
    assert h.broker.positions() == []


def test_daily_loss_halt_blocks_entries_but_not_exits() -> None:
    h = Harness(
        risk=RiskConfig(daily_loss_halt_pct=0.02, max_position_pct=1.0, max_sector_pct=1.0),
        sizing=SizingConfig(max_position_pct=1.0),
        model=FixedModelClient(0.9, size_fraction=0.9),
        engine_config=EngineConfig(max_holding_bars=50),
    )
    # A big position in AAA, then a crash inside one session trips the breaker.
    h.bar(0, 100, 101, 99, 100, signal=Side.BUY, atr=10.0)
    h.bar(1, 100, 100, 100, 100, atr=10.0)
    assert h.broker.positions()[0].qty > 0
    h.bar(2, 100, 100, 90, 91, atr=10.0)  # -9% on a large position: equity down > 2%
    h.bar(2, 91, 91, 91, 91, symbol="BBB", signal=Side.BUY)  # same session: blocked
    rejections = h.journal.rejections()
    assert list(rejections["rule"]) == ["daily_loss_halt"]
    assert h.journal.decisions().set_index("symbol").loc["BBB", "category"] == "paused"
    # The exit still works: the stop order fills while halted.
    h.bar(3, 89, 89, 75, 76, atr=10.0)
    assert "AAA" not in {p.symbol for p in h.broker.positions()}
    # Next session: the halt is lifted.
    h.bar(4, 50, 51, 49, 50, symbol="CCC", signal=Side.BUY)
    assert any(o.symbol == "CCC" for o in h.broker.open_orders())


def test_risk_rejections_are_journaled_with_rule_and_reason() -> None:
    h = Harness(risk=RiskConfig(max_positions=1))
    h.bar(0, 100, 101, 99, 100, signal=Side.BUY)
    h.bar(0, 50, 51, 49, 50, symbol="BBB", signal=Side.BUY)
    rejections = h.journal.rejections()
    assert list(rejections["rule"]) == ["max_positions"]
    assert "limit 1" in rejections.loc[0, "reason"]
    decisions = h.journal.decisions().set_index("symbol")
    assert decisions.loc["BBB", "action"] == "skipped"
    assert decisions.loc["BBB", "category"] == "risk"
    assert decisions.loc["BBB", "reason"].startswith("max_positions: ")


def test_correlated_candidate_is_rejected() -> None:
    h = Harness()
    rng = np.random.default_rng(7)
    base = rng.normal(0, 0.01, 60)
    h.feed.returns = {"AAA": base, "BBB": base + rng.normal(0, 0.001, 60)}
    h.bar(0, 100, 101, 99, 100, signal=Side.BUY)
    h.bar(1, 100, 101, 99.5, 100.5)
    h.bar(1, 50, 51, 49, 50, symbol="BBB", signal=Side.BUY)
    assert list(h.journal.rejections()["rule"]) == ["correlation"]


def test_broker_error_clears_the_pending_entry_and_is_journaled() -> None:
    h = Harness()
    real_submit = h.broker.submit

    def refuse(order: Order) -> Order:
        raise BrokerError("connection reset (test)")

    h.broker.submit = refuse  # type: ignore[method-assign]
    h.bar(0, 100, 101, 99, 100, signal=Side.BUY)
    assert list(h.journal.rejections()["rule"]) == ["broker"]
    assert h.engine.status()["positions"] == []
    h.broker.submit = real_submit  # type: ignore[method-assign]
    h.bar(1, 100, 101, 99, 100, signal=Side.BUY)  # a new signal may enter again
    assert len(h.broker.open_orders()) == 1


def test_reconcile_adopts_unknown_positions_and_pending_entries() -> None:
    h = Harness()
    h.bar(0, 100, 101, 99, 100, signal=Side.BUY)
    h.bar(1, 100, 101, 99.5, 100.5)
    fresh = Harness()
    fresh.matching = h.matching
    fresh.engine.broker = h.broker
    fresh.engine.journal = h.journal
    report = fresh.engine.reconcile()
    assert report["adopted"] == ["AAA"]
    assert fresh.engine.open_positions == {"AAA": h.broker.positions()[0].qty}


def test_status_reports_positions_and_breaker() -> None:
    h = Harness()
    h.bar(0, 100, 101, 99, 100, signal=Side.BUY)
    h.bar(1, 100, 101, 99.5, 100.5)
    status = h.engine.status()
    assert status["halted"] is False
    assert status["positions"][0]["symbol"] == "AAA"  # type: ignore[index]
    assert status["last_decision"]["action"] == "entered"  # type: ignore[index]
