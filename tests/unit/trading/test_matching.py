"""The matching engine's fill rules: no lookahead, gaps, OCO brackets (stop first when a
bar reaches both legs), slippage, commission, buying power, partial fills, DAY expiry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.clock import ReplayClock
from core.errors import BrokerError, DataValidationError
from core.types import Bar, Order, OrderClass, OrderStatus, OrderType, Side, TimeInForce
from trading.adapters.simulated import MatchingEngine, SimulatedBroker, SimulatedExchangeConfig

T0 = datetime(2024, 1, 2, tzinfo=UTC)


def day(n: int) -> datetime:
    return T0 + timedelta(days=n)


def bar(n: int, o: float, h: float, low: float, c: float, volume: float = 1e6) -> Bar:
    return Bar("AAA", day(n), o, h, low, c, volume)


def make(**config: object) -> tuple[MatchingEngine, ReplayClock]:
    clock = ReplayClock(day(0))
    defaults: dict[str, object] = {"slippage_bps": 0.0, "starting_cash": 100_000.0}
    defaults.update(config)
    return MatchingEngine(SimulatedExchangeConfig.model_validate(defaults), clock), clock


def step(engine: MatchingEngine, clock: ReplayClock, b: Bar) -> list[str]:
    clock.advance_to(b.timestamp)
    return [u.event for u in engine.on_bar(b)]


def buy_bracket(qty: float = 10, tp: float = 110.0, sl: float = 95.0) -> Order:
    return Order(
        "b1", "AAA", Side.BUY, qty, order_class=OrderClass.BRACKET,
        take_profit_price=tp, stop_loss_price=sl, time_in_force=TimeInForce.GTC,
    )  # fmt: skip


def test_market_order_fills_at_next_bar_open_with_slippage_never_the_signal_bar() -> None:
    engine, clock = make(slippage_bps=10.0)
    step(engine, clock, bar(0, 100, 101, 99, 100))
    engine.submit(Order("m1", "AAA", Side.BUY, 10))
    # A bar with the same timestamp as the submission does not fill it (that bar's close
    # produced the signal).
    assert engine.on_bar(bar(0, 100, 101, 99, 100)) == []
    updates = engine.on_bar(bar(1, 102, 103, 101, 102))
    assert [u.event for u in updates] == ["fill"]
    assert updates[0].fill is not None
    assert updates[0].fill.price == pytest.approx(102 * 1.001)
    assert engine.account().cash == pytest.approx(100_000 - 10 * 102 * 1.001)
    assert engine.positions()[0].qty == 10


def test_submit_is_idempotent_on_client_order_id() -> None:
    engine, _ = make()
    first = engine.submit(Order("same", "AAA", Side.BUY, 5))
    second = engine.submit(Order("same", "AAA", Side.BUY, 500))
    assert second == first
    assert len(engine.open_orders()) == 1


def test_limit_buy_fills_at_limit_or_better_open_on_gap() -> None:
    engine, clock = make()
    engine.submit(
        Order(
            "l1",
            "AAA",
            Side.BUY,
            1,
            type=OrderType.LIMIT,
            limit_price=98.0,
            time_in_force=TimeInForce.GTC,
        )
    )
    engine.submit(Order("l2", "AAA", Side.BUY, 1, type=OrderType.LIMIT, limit_price=99.5))
    assert step(engine, clock, bar(1, 100, 101, 99, 100)) == ["fill"]
    assert engine.get_order("l2").filled_avg_price == 99.5  # type: ignore[union-attr]
    assert engine.get_order("l1").status is OrderStatus.NEW  # type: ignore[union-attr]
    step(engine, clock, bar(2, 97, 98, 96, 97))  # gapped below the limit: the open
    assert engine.get_order("l1").filled_avg_price == 97.0  # type: ignore[union-attr]


def test_stop_gap_through_fills_at_the_open_not_the_stop() -> None:
    engine, clock = make()
    engine.submit(Order("e", "AAA", Side.BUY, 10))
    step(engine, clock, bar(1, 100, 101, 99, 100))
    engine.submit(Order("s", "AAA", Side.SELL, 10, type=OrderType.STOP, stop_price=95.0))
    step(engine, clock, bar(2, 90, 92, 88, 91))
    assert engine.get_order("s").filled_avg_price == 90.0  # type: ignore[union-attr]


def test_bracket_children_take_profit_cancels_stop() -> None:
    engine, clock = make()
    engine.submit(buy_bracket())
    assert step(engine, clock, bar(1, 100, 102, 99, 101)) == ["fill", "new", "new"]
    legs = engine.legs("b1")
    assert legs is not None
    assert [leg.client_order_id for leg in legs] == ["b1-tp", "b1-sl"]
    events = step(engine, clock, bar(2, 105, 112, 104, 111))
    assert events == ["fill", "canceled"]
    assert engine.get_order("b1-tp").filled_avg_price == 110.0  # type: ignore[union-attr]
    assert engine.get_order("b1-sl").status is OrderStatus.CANCELED  # type: ignore[union-attr]
    assert engine.positions() == []
    assert engine.account().equity == pytest.approx(100_000 + 10 * 10)


def test_bar_reaching_both_legs_assumes_the_stop() -> None:
    engine, clock = make()
    engine.submit(buy_bracket())
    step(engine, clock, bar(1, 100, 102, 99, 101))
    step(engine, clock, bar(2, 100, 115, 90, 100))
    assert engine.get_order("b1-sl").status is OrderStatus.FILLED  # type: ignore[union-attr]
    assert engine.get_order("b1-tp").status is OrderStatus.CANCELED  # type: ignore[union-attr]


def test_gap_above_target_fills_take_profit_at_open_even_if_bar_later_hits_stop() -> None:
    engine, clock = make()
    engine.submit(buy_bracket())
    step(engine, clock, bar(1, 100, 102, 99, 101))
    step(engine, clock, bar(2, 112, 113, 90, 95))
    assert engine.get_order("b1-tp").filled_avg_price == 112.0  # type: ignore[union-attr]


def test_children_can_fill_in_the_entry_bar_after_an_open_fill() -> None:
    engine, clock = make()
    engine.submit(buy_bracket())
    step(engine, clock, bar(1, 100, 101, 94, 96))
    assert engine.get_order("b1-sl").status is OrderStatus.FILLED  # type: ignore[union-attr]
    assert engine.get_order("b1-sl").filled_avg_price == 95.0  # type: ignore[union-attr]


def test_replace_stop_moves_the_resting_stop() -> None:
    engine, clock = make()
    engine.submit(buy_bracket())
    step(engine, clock, bar(1, 100, 101, 99, 100))
    moved = engine.replace_stop("b1-sl", 99.5)
    assert moved.stop_price == 99.5
    step(engine, clock, bar(2, 100, 100.5, 99, 99.8))
    assert engine.get_order("b1-sl").filled_avg_price == 99.5  # type: ignore[union-attr]
    with pytest.raises(BrokerError):
        engine.replace_stop("b1-sl", 98.0)  # filled: nothing to move


def test_buying_power_rejects_oversized_buy_counting_open_orders() -> None:
    engine, clock = make(starting_cash=10_000.0)
    step(engine, clock, bar(0, 100, 100, 100, 100))
    assert engine.submit(Order("a", "AAA", Side.BUY, 60)).status is OrderStatus.NEW
    rejected = engine.submit(Order("b", "AAA", Side.BUY, 60))
    assert rejected.status is OrderStatus.REJECTED
    assert "buying power" in (engine.rejection_reason("b") or "")


def test_no_short_sell_without_a_position() -> None:
    engine, _ = make()
    assert engine.submit(Order("s", "AAA", Side.SELL, 1)).status is OrderStatus.REJECTED


def test_commission_per_share_is_charged() -> None:
    engine, _clock = make(commission_per_share=0.01)
    engine.submit(Order("m", "AAA", Side.BUY, 100))
    updates = engine.on_bar(bar(1, 10, 10, 10, 10))
    assert updates[0].fill is not None
    assert updates[0].fill.commission == pytest.approx(1.0)
    assert engine.account().cash == pytest.approx(100_000 - 1000 - 1)


def test_partial_fills_by_volume_share() -> None:
    engine, clock = make(max_volume_fraction=0.1)
    engine.submit(Order("m", "AAA", Side.BUY, 150))
    assert step(engine, clock, bar(1, 10, 10, 10, 10, volume=1000)) == ["partial_fill"]
    assert step(engine, clock, bar(2, 10, 10, 10, 10, volume=1000)) == ["fill"]
    assert engine.positions()[0].qty == 150


def test_day_limit_expires_after_its_session() -> None:
    engine, clock = make()
    engine.submit(Order("l", "AAA", Side.BUY, 1, type=OrderType.LIMIT, limit_price=50.0))
    step(engine, clock, bar(1, 100, 101, 99, 100))
    assert step(engine, clock, bar(2, 100, 101, 99, 100)) == ["expired"]


def test_invalid_orders_raise_with_reason() -> None:
    engine, _ = make()
    with pytest.raises(DataValidationError, match="limit_price"):
        engine.submit(Order("x", "AAA", Side.BUY, 1, type=OrderType.LIMIT))
    with pytest.raises(DataValidationError, match="stop_loss"):
        engine.submit(buy_bracket(tp=90.0, sl=95.0))


def test_simulated_broker_close_position_cancels_legs_and_flattens() -> None:
    engine, clock = make()
    broker = SimulatedBroker(engine)
    broker.submit(buy_bracket())
    step(engine, clock, bar(1, 100, 101, 99, 100))
    closing = broker.close_position("AAA")
    assert closing is not None
    assert broker.open_orders() == [closing]
    step(engine, clock, bar(2, 101, 101, 100, 100))
    assert broker.positions() == []
    assert broker.market_clock().is_open


def test_simulated_broker_streams_updates() -> None:
    import asyncio

    engine, _clock = make()
    broker = SimulatedBroker(engine)

    async def collect() -> list[str]:
        stream = broker.updates()
        task = asyncio.ensure_future(stream.__anext__())
        await asyncio.sleep(0)  # let the stream subscribe
        broker.submit(Order("m", "AAA", Side.BUY, 1))
        first = await asyncio.wait_for(task, 5)
        await stream.aclose()  # type: ignore[attr-defined]
        return [first.event]

    assert asyncio.run(collect()) == ["new"]


def test_partial_bracket_entry_sizes_its_legs_to_the_filled_qty() -> None:
    engine, clock = make(max_volume_fraction=0.1)
    engine.submit(buy_bracket(qty=150, tp=200.0, sl=50.0))
    step(engine, clock, bar(1, 100, 101, 99, 100, volume=1000))
    legs = engine.legs("b1")
    assert legs is not None
    assert [leg.qty for leg in legs] == [100, 100]
    step(engine, clock, bar(2, 100, 101, 99, 100, volume=1000))
    legs = engine.legs("b1")
    assert legs is not None
    assert [leg.qty for leg in legs] == [150, 150]
    assert engine.positions()[0].qty == 150


def test_short_bracket_assumes_the_stop_when_both_legs_are_reached() -> None:
    engine, clock = make(allow_short=True)
    engine.submit(
        Order("s1", "AAA", Side.SELL, 10, order_class=OrderClass.BRACKET,
              take_profit_price=90.0, stop_loss_price=105.0, time_in_force=TimeInForce.GTC)
    )  # fmt: skip
    step(engine, clock, bar(1, 100, 101, 99, 100))
    assert engine.positions()[0].qty == -10
    step(engine, clock, bar(2, 100, 106, 89, 100))
    stop = engine.get_order("s1-sl")
    assert stop is not None
    assert stop.status is OrderStatus.FILLED
    assert stop.filled_avg_price == 105.0
    assert engine.positions() == []
    assert engine.account().equity == pytest.approx(100_000 - 50)


def test_legs_of_a_limit_entry_filled_inside_the_bar_start_on_the_next_bar() -> None:
    """The bar cannot tell whether its low came before or after the limit fill."""
    engine, clock = make()
    entry = Order(
        "b1", "AAA", Side.BUY, 10, type=OrderType.LIMIT, limit_price=100.0,
        order_class=OrderClass.BRACKET, take_profit_price=110.0, stop_loss_price=95.0,
        time_in_force=TimeInForce.GTC,
    )  # fmt: skip
    engine.submit(entry)
    # Opens above the limit, trades down through it and through the stop, then up
    # through the target: only the entry fills.
    assert step(engine, clock, bar(1, 102, 112, 94, 101)) == ["fill", "new", "new"]
    assert engine.get_order("b1").filled_avg_price == 100.0  # type: ignore[union-attr]
    for leg in ("b1-sl", "b1-tp"):
        assert engine.get_order(leg).status is OrderStatus.NEW  # type: ignore[union-attr]
    assert engine.positions()[0].qty == 10
    assert step(engine, clock, bar(2, 96, 97, 94, 95)) == ["fill", "canceled"]
    assert engine.get_order("b1-sl").filled_avg_price == 95.0  # type: ignore[union-attr]
