"""A closed trade with what the learning loop learns from it, and the one conversion of
closed trades into rows: the frame the feature store's trade collection stores
(`FeatureStore.write_trades` derives the outcome labels from it)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import pandas as pd

from core.types import Trade

TIME_COLUMNS: tuple[str, ...] = ("entry_time", "exit_time")


@dataclass(frozen=True, slots=True)
class ClosedTradeRecord:
    """A closed trade, the features it had at entry and the models that decided it."""

    trade: Trade
    entry_features: dict[str, float]
    variant: str
    model_versions: dict[str, str]
    win_probability: float | None
    regime: str | None

    def to_row(self) -> dict[str, object]:
        """One flat row: the entry features by name, then the trade, its P&L and return,
        and the decision's context (variant, model versions as a JSON object text, win
        probability, regime)."""
        trade = self.trade
        row: dict[str, object] = dict(self.entry_features)
        row.update(
            {
                "trade_id": trade.trade_id,
                "symbol": trade.symbol,
                "side": trade.side.value,
                "qty": trade.qty,
                "entry_time": trade.entry_time,
                "entry_price": trade.entry_price,
                "exit_time": trade.exit_time,
                "exit_price": trade.exit_price,
                "strategy": trade.strategy,
                "exit_reason": trade.exit_reason,
                "commission": trade.commission,
                "max_favorable_excursion": trade.max_favorable_excursion,
                "max_adverse_excursion": trade.max_adverse_excursion,
                "pnl": trade.pnl,
                "return_pct": trade.return_pct,
                "decision_id": trade.decision_id,
                "variant": self.variant,
                "model_versions": json.dumps(dict(sorted(self.model_versions.items()))),
                "win_probability": self.win_probability,
                "regime": self.regime,
            }
        )
        return row


def trades_frame(records: Sequence[ClosedTradeRecord]) -> pd.DataFrame:
    """Closed-trade records as one frame, one row per trade (`ClosedTradeRecord.to_row`),
    entry and exit times as tz-aware UTC timestamps."""
    frame = pd.DataFrame([record.to_row() for record in records])
    for column in TIME_COLUMNS:
        if column in frame:
            frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame


class TradeSink(Protocol):
    """Where closed trades go besides the journal (the feature store's trade collection)."""

    def __call__(self, record: ClosedTradeRecord, /) -> None: ...
