"""The entry the engine sends: a bracket priced in cents from the decision's exits,
stamped with the decision time, journaled before and after the broker saw it; a broker
that rejects it leaves no pending entry and a `broker` refusal."""

from __future__ import annotations

import pytest

from core.errors import ConfigError
from core.types import OrderStatus, Side
from serving.router import bucket
from trading.engine import EngineConfig

from .helpers import FixedModelClient, Harness, session


def test_the_bracket_is_priced_in_cents_and_stamped_with_the_decision_time() -> None:
    h = Harness(model=FixedModelClient(0.9, size_fraction=0.05))
    h.bar(0, 100, 101, 99, 100, signal=Side.BUY, atr=1.23456)
    (entry,) = [o for o in h.broker.open_orders() if not o.client_order_id.endswith(("-tp",
                                                                                      "-sl"))]
    assert entry.stop_loss_price == 97.53  # 100 - 2 x 1.23456, in cents
    assert entry.take_profit_price == 103.70  # 100 + 3 x 1.23456
    assert entry.created_at == session(0)
    journaled = h.journal.orders()
    assert list(journaled["client_order_id"]) == [entry.client_order_id]
    assert journaled.loc[0, "stop_loss_price"] == pytest.approx(97.53)


def test_a_broker_rejection_is_a_broker_refusal_and_leaves_nothing_pending() -> None:
    # The engine may short; this exchange may not: the broker rejects the sell.
    h = Harness(model=FixedModelClient(0.9, size_fraction=0.05),
                engine_config=EngineConfig(allow_short=True))
    h.bar(0, 100, 101, 99, 100, signal=Side.SELL)
    assert h.engine.stats.entries == 0
    assert not h.engine.pending.is_waiting("AAA", "")
    assert list(h.journal.rejections()["rule"]) == ["broker"]
    assert "the broker rejected the order" in h.journal.rejections().loc[0, "reason"]
    assert h.engine.stats.refusals == {"risk": 1}
    assert h.engine.stats.rejections_by_rule == {"broker": 1}
    assert list(h.journal.orders()["status"]) == [OrderStatus.REJECTED.value]
    # The decision journaled as entered before the submit now says what happened.
    (row,) = h.journal.decisions().to_dict("records")
    assert (row["action"], row["category"]) == ("skipped", "risk")
    assert row["reason"] == "broker: the broker rejected the order"
    assert row["client_order_id"] == h.journal.orders().loc[0, "client_order_id"]
    assert h.engine.last_decision is not None
    assert h.engine.last_decision.action == "skipped"
    h.bar(1, 100, 101, 99, 100)  # no entry waits for a fill that will never come
    assert dict(h.engine.pending.waiting()) == {}


def test_a_refused_entry_already_written_is_amended_in_the_store() -> None:
    """The journal flushes between the entered record and the broker's refusal: the
    stored row is amended, not left as entered beside a dropped skip."""
    h = Harness(model=FixedModelClient(0.9, size_fraction=0.05),
                engine_config=EngineConfig(allow_short=True))
    submit = h.broker.submit

    def flushed_then_submit(order):  # type: ignore[no-untyped-def]
        h.journal.flush()
        return submit(order)

    h.broker.submit = flushed_then_submit  # type: ignore[method-assign]
    h.bar(0, 100, 101, 99, 100, signal=Side.SELL)
    (row,) = h.journal.decisions().to_dict("records")
    assert (row["action"], row["category"]) == ("skipped", "risk")


def test_the_router_refuses_a_signal_without_an_id() -> None:
    with pytest.raises(ConfigError) as refused:
        bucket("")
    assert refused.value.message == "cannot route a signal without an id"
    assert 0 <= bucket("tw-1") < 1


@pytest.mark.parametrize(
    ("side", "stop", "target", "valid"),
    [
        (Side.BUY, 98.0, 103.0, True), (Side.BUY, 100.0, 103.0, False),
        (Side.BUY, 98.0, 100.0, False), (Side.BUY, 0.0, 103.0, False),
        (Side.BUY, 0.5, 103.0, True),
        (Side.SELL, 102.0, 97.0, True), (Side.SELL, 100.0, 97.0, False),
        (Side.SELL, 102.0, 100.0, False), (Side.SELL, 102.0, 0.0, False),
        (Side.SELL, 102.0, 0.5, True),
    ],
)
def test_exits_on_the_wrong_side_of_the_price_are_refused(
    side: Side, stop: float, target: float, valid: bool
) -> None:
    from dataclasses import replace

    from core.types import Signal
    from trading.engine import _exit_problem

    signal = Signal("AAA", side, session(0), "momentum", 100.0, "test")
    decision = replace(FixedModelClient(0.9).decide(signal, {"atr_14": 1.0}),
                       stop_loss_price=stop, take_profit_price=target)
    problem = _exit_problem(signal, decision)
    assert (problem == "") is valid
    if not valid:
        kind = "long needs 0 < stop" if side is Side.BUY else "short needs 0 < target"
        assert problem.startswith(kind)
