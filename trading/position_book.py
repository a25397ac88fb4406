"""The position book: fills in, open positions and closed trades out. Pure bookkeeping:
no broker, no journal, no clock; the engine journals what the book reports.

- A fill on the side of the position (or with no position) adds to it at the
  quantity-weighted average entry price; a bracket entry's stop leg is remembered as the
  position's stop (`BracketLeg.STOP_LOSS`).
- A fill on the other side reduces it; back to zero it is a closed `Trade`, whose exit
  reason comes from the exit order: the take-profit leg, the stop leg (`trailing_stop`
  once the stop has been moved), else the reason the engine gave when it asked to exit.
- Each bar of an open position counts toward its holding time and moves its maximum
  favourable and adverse excursions (per share, from the bar's high and low)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

from core.types import (
    Bar,
    BracketLeg,
    Decision,
    Fill,
    Order,
    OrderClass,
    Position,
    Side,
    Trade,
)

FLAT = 1e-9  # quantities below this are no position (float noise of partial fills)


@dataclass(frozen=True, slots=True)
class EntryIntent:
    """What the engine meant by an entry order: who decided it, and on what features."""

    strategy: str
    decision: Decision | None
    features: dict[str, float] = field(default_factory=dict)


EXTERNAL = EntryIntent(strategy="external", decision=None)  # a fill no entry plan explains


@dataclass(slots=True)
class OpenPosition:
    symbol: str
    side: Side
    qty: float
    entry_price: float
    entry_time: datetime
    trade_id: str
    strategy: str
    decision: Decision | None
    features: dict[str, float]
    stop_order_id: str | None
    stop_price: float | None
    target_price: float | None = None  # the bracket's take-profit, when it has one
    entry_qty: float = 0.0
    commission: float = 0.0
    exit_qty: float = 0.0
    exit_value: float = 0.0
    bars_held: int = 0
    max_favorable: float = 0.0
    max_adverse: float = 0.0
    stop_moved: bool = False
    exit_reason: str | None = None  # set when an exit was asked for
    last_price: float = 0.0

    @property
    def signed_qty(self) -> float:
        return self.qty * self.side.sign

    def snapshot(self, market_price: float) -> Position:
        return Position(self.symbol, self.signed_qty, self.entry_price, market_price)


@dataclass(frozen=True, slots=True)
class ClosedPosition:
    """A position that went back to zero: its trade, and the position as it ended."""

    trade: Trade
    position: OpenPosition


@dataclass(frozen=True, slots=True)
class FillResult:
    """What one fill did: the symbol's position after it (flat when closed), whether it
    added to the position, and the closed trade when it closed one."""

    position: Position
    added: bool
    closed: ClosedPosition | None = None


class PositionBook:
    """Open positions by symbol, moved only by fills and bars."""

    def __init__(self) -> None:
        self._positions: dict[str, OpenPosition] = {}

    def get(self, symbol: str) -> OpenPosition | None:
        return self._positions.get(symbol)

    def __contains__(self, symbol: object) -> bool:
        return symbol in self._positions

    def __len__(self) -> int:
        return len(self._positions)

    def __iter__(self) -> Iterator[OpenPosition]:
        return iter(list(self._positions.values()))

    def signed_quantities(self) -> dict[str, float]:
        """symbol → quantity, positive long, negative short."""
        return {symbol: p.signed_qty for symbol, p in self._positions.items()}

    def adopt(self, position: OpenPosition) -> None:
        """Take over a position found elsewhere (the broker, at recovery)."""
        self._positions[position.symbol] = position

    def mark(self, bar: Bar) -> OpenPosition | None:
        """A bar of the symbol: holding time, last price and excursions move."""
        position = self._positions.get(bar.symbol)
        if position is None:
            return None
        position.bars_held += 1
        position.last_price = bar.close
        sign = position.side.sign
        favorable = ((bar.high if sign > 0 else bar.low) - position.entry_price) * sign
        adverse = (position.entry_price - (bar.low if sign > 0 else bar.high)) * sign
        if favorable > position.max_favorable:
            position.max_favorable = favorable
        if adverse > position.max_adverse:
            position.max_adverse = adverse
        return position

    def apply_fill(self, order: Order, fill: Fill, intent: EntryIntent | None) -> FillResult:
        """Book a fill of `order`. `intent` explains an entry order (None: a fill no
        plan explains, such as an order placed by hand); it is read only when the fill
        opens a position."""
        position = self._positions.get(fill.symbol)
        if position is None or position.side is fill.side:
            return self._add(position, order, fill, intent or EXTERNAL)
        return self._reduce(position, order, fill)

    def _add(
        self, position: OpenPosition | None, order: Order, fill: Fill, intent: EntryIntent
    ) -> FillResult:
        if position is None:
            position = OpenPosition(
                symbol=fill.symbol,
                side=fill.side,
                qty=0.0,
                entry_price=fill.price,
                entry_time=fill.timestamp,
                trade_id=order.client_order_id,
                strategy=intent.strategy,
                decision=intent.decision,
                features=intent.features,
                stop_order_id=(
                    BracketLeg.STOP_LOSS.leg_id(order.client_order_id)
                    if order.order_class is OrderClass.BRACKET
                    else None
                ),
                stop_price=order.stop_loss_price,
                target_price=order.take_profit_price,
                last_price=fill.price,
            )
            self._positions[fill.symbol] = position
        total = position.qty + fill.qty
        position.entry_price = (position.entry_price * position.qty + fill.price * fill.qty) / total
        position.qty = total
        position.entry_qty += fill.qty
        position.commission += fill.commission
        return FillResult(position.snapshot(fill.price), added=True)

    def _reduce(self, position: OpenPosition, order: Order, fill: Fill) -> FillResult:
        qty = min(fill.qty, position.qty)
        position.qty -= qty
        position.exit_qty += qty
        position.exit_value += qty * fill.price
        position.commission += fill.commission
        snapshot = position.snapshot(fill.price)
        if position.qty > FLAT:
            return FillResult(snapshot, added=False)
        del self._positions[fill.symbol]
        decision = position.decision
        trade = Trade(
            trade_id=position.trade_id,
            symbol=position.symbol,
            side=position.side,
            qty=position.exit_qty,
            entry_time=position.entry_time,
            entry_price=position.entry_price,
            exit_time=fill.timestamp,
            exit_price=position.exit_value / position.exit_qty,
            strategy=position.strategy,
            exit_reason=_exit_reason(order, position),
            commission=position.commission,
            max_favorable_excursion=position.max_favorable,
            max_adverse_excursion=position.max_adverse,
            decision_id=decision.decision_id if decision else None,
        )
        return FillResult(snapshot, added=False, closed=ClosedPosition(trade, position))


def _exit_reason(order: Order, position: OpenPosition) -> str:
    leg = BracketLeg.of(order.client_order_id)
    if leg is BracketLeg.TAKE_PROFIT:
        return "take_profit"
    if leg is BracketLeg.STOP_LOSS:
        return "trailing_stop" if position.stop_moved else "stop_loss"
    return position.exit_reason or "exit"
