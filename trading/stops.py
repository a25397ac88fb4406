"""Stops and targets: `exit_crossed`, the one rule for whether a price has reached a
position's stop or target (the engine applies it at each bar's close and, when trades
are streamed, at each trade print); and ATR trailing stops: the stop follows the price
at `atr_multiple` × ATR and never loosens. The engine replaces the broker's stop order
whenever the level moves."""

from __future__ import annotations

import math

from core.types import Side


class TrailingStop:
    def __init__(self, atr_multiple: float = 2.0, min_move_fraction: float = 0.0005) -> None:
        self.atr_multiple = atr_multiple
        # Ignore moves smaller than this share of the price: each move is a broker call.
        self.min_move_fraction = min_move_fraction

    def level(self, side: Side, price: float, atr: float) -> float:
        """Where the stop would sit for a position of `side` at `price`."""
        return price - side.sign * self.atr_multiple * atr

    def tighten(self, side: Side, current_stop: float, price: float, atr: float) -> float | None:
        """The new stop if it is tighter than `current_stop` by a meaningful amount, else
        None. A long's stop only rises, a short's only falls: it never loosens."""
        if not (atr > 0 and price > 0) or math.isnan(atr):
            return None
        candidate = self.level(side, price, atr)
        if candidate <= 0:
            return None
        moved = (candidate - current_stop) * side.sign
        if moved <= price * self.min_move_fraction:
            return None
        return candidate


def exit_crossed(
    side: Side, stop_price: float | None, target_price: float | None, price: float
) -> str | None:
    """`stop_loss` when `price` is at or through the stop of a position of `side`,
    `take_profit` when at or through its target, else None (the stop wins a tie)."""
    if stop_price is not None and (price - stop_price) * side.sign <= 0:
        return "stop_loss"
    if target_price is not None and (price - target_price) * side.sign >= 0:
        return "take_profit"
    return None
