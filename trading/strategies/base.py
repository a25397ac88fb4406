"""What every strategy is: a pure function from one or more symbols' bars merged with
features to entry signals. Strategies never call a broker, never read a clock and never
look ahead: the signal at bar t uses rows ≤ t and is filled at bar t+1's open at the
earliest (the matching engine enforces the second half)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np
import pandas as pd

from core.errors import DataValidationError
from core.types import Side, Signal
from trading.strategies.search import StrategyConfig

SIGNAL_COLUMNS: tuple[str, ...] = ("symbol", "timestamp", "side", "strategy", "price", "reason")


class Strategy(ABC):
    """A named entry rule. Subclasses implement `_conditions` (vectorized); `signals`
    and `signals_frame` are shared so the engine and label generation agree exactly."""

    name: ClassVar[str]
    required_columns: ClassVar[tuple[str, ...]]
    config_type: ClassVar[type[StrategyConfig]]  # its config, with its search space
    config: StrategyConfig

    def signals_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Signals for every row of `frame` (bars + features of one or more symbols,
        sorted by symbol then time): DataFrame[symbol, timestamp, side, strategy, price,
        reason]. A row gives at most one signal; the first bar of each condition only."""
        self._require(frame)
        if frame.empty:
            return _empty()
        symbols = frame["symbol"].to_numpy()
        new_symbol = np.ones(len(frame), dtype=bool)
        new_symbol[1:] = symbols[1:] != symbols[:-1]
        long_now, short_now, valid, long_reason, short_reason = self._conditions(frame)
        long_now = long_now & valid
        short_now = short_now & valid
        # Only the bar on which a condition becomes true, never its repetition; the bar
        # before must be of the same symbol and past its warm-up, so the first valid bar
        # of a series is not mistaken for a fresh cross.
        previous_valid = np.concatenate(([False], valid[:-1])) & ~new_symbol
        long_before = np.concatenate(([False], long_now[:-1]))
        short_before = np.concatenate(([False], short_now[:-1]))
        long_entry = long_now & previous_valid & ~long_before
        short_entry = short_now & previous_valid & ~short_before & ~long_entry
        picked = long_entry | short_entry
        if not picked.any():
            return _empty()
        rows = frame.loc[picked, ["symbol", "timestamp", "close"]]
        out = pd.DataFrame(
            {
                "symbol": rows["symbol"].to_numpy(),
                "timestamp": rows["timestamp"].to_numpy(dtype="datetime64[ns]"),
                "side": np.where(long_entry[picked], Side.BUY.value, Side.SELL.value),
                "strategy": self.name,
                "price": rows["close"].to_numpy(dtype=float),
                "reason": np.where(long_entry[picked], long_reason, short_reason),
            }
        )
        out["timestamp"] = pd.to_datetime(out["timestamp"], utc=True)
        return out

    def signals(self, frame: pd.DataFrame) -> list[Signal]:
        """The same signals as `signals_frame`, as `core.types.Signal` objects."""
        return frame_to_signals(self.signals_frame(frame))

    @abstractmethod
    def _conditions(
        self, frame: pd.DataFrame
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, str, str]:
        """Boolean arrays over the rows: long condition, short condition, inputs valid
        (past warm-up, no NaN); then the reason text of each side."""

    def _require(self, frame: pd.DataFrame) -> None:
        missing = [
            c for c in ("symbol", "timestamp", "close", *self.required_columns) if c not in frame
        ]
        if missing:
            raise DataValidationError(
                f"strategy {self.name} needs columns {missing}; merge features.compute output "
                "with the bars first",
                where=f"strategy {self.name}",
            )


def frame_to_signals(frame: pd.DataFrame) -> list[Signal]:
    """Rows of a signals frame as `Signal` objects."""
    return [
        Signal(
            symbol=str(symbol),
            side=Side(side),
            timestamp=timestamp.to_pydatetime(),
            strategy=str(strategy),
            price=float(price),
            reason=str(reason),
        )
        for symbol, timestamp, side, strategy, price, reason in frame[
            list(SIGNAL_COLUMNS)
        ].itertuples(index=False, name=None)
    ]


def _empty() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "symbol": pd.Series(dtype=object),
            "timestamp": pd.Series(dtype="datetime64[ns, UTC]"),
            "side": pd.Series(dtype=object),
            "strategy": pd.Series(dtype=object),
            "price": pd.Series(dtype=float),
            "reason": pd.Series(dtype=object),
        }
    )
