"""Momentum: the fast EMA crossing the slow EMA (9/21 by default). A cross up is a long
entry, a cross down a short entry (taken only when shorting is allowed)."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from trading.strategies.base import Strategy
from trading.strategies.search import IntRange, SearchParameter, StrategyConfig


class MomentumConfig(StrategyConfig):
    fast: int = Field(9, ge=2)
    slow: int = Field(21, ge=3)

    # The gap, not `slow`, is searched: every sample then has fast < slow.
    search_space: ClassVar[tuple[SearchParameter, ...]] = (
        IntRange("fast", 5, 20),
        IntRange("slow_gap", 5, 40),
    )

    @classmethod
    def tuned_fields(cls) -> tuple[str, ...]:
        return ("fast", "slow")

    @classmethod
    def from_search(cls, values: Mapping[str, Any]) -> Self:
        fast = values["fast"]
        return cls(fast=fast, slow=fast + values["slow_gap"])

    def search_values(self) -> dict[str, Any]:
        return {"fast": self.fast, "slow_gap": self.slow - self.fast}

    @model_validator(mode="after")
    def _fast_below_slow(self) -> MomentumConfig:
        if self.fast >= self.slow:
            raise ValueError(f"fast EMA ({self.fast}) must be shorter than slow ({self.slow})")
        return self


class MomentumStrategy(Strategy):
    name: ClassVar[str] = "momentum"
    config_type: ClassVar[type[StrategyConfig]] = MomentumConfig
    config: MomentumConfig
    required_columns: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: MomentumConfig | None = None) -> None:
        self.config = config or MomentumConfig()

    def _conditions(
        self, frame: pd.DataFrame
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, str, str]:
        close = frame["close"].to_numpy(dtype=float)
        fast = _ema(frame, close, self.config.fast)
        slow = _ema(frame, close, self.config.slow)
        valid = ~(np.isnan(fast) | np.isnan(slow))
        with np.errstate(invalid="ignore"):
            above = fast > slow
            below = fast < slow
        fast_label, slow_label = f"ema{self.config.fast}", f"ema{self.config.slow}"
        return (
            above,
            below,
            valid,
            f"{fast_label} crossed above {slow_label}",
            f"{fast_label} crossed below {slow_label}",
        )


def _ema(frame: pd.DataFrame, close: np.ndarray, period: int) -> np.ndarray:
    """The EMA level, from the feature `ema_<n>_dist` (close/ema − 1) when the features
    carry it, else computed per symbol with TA-Lib."""
    column = f"ema_{period}_dist"
    if column in frame:
        return close / (1.0 + frame[column].to_numpy(dtype=float))
    import talib

    out = np.full(len(close), np.nan)
    symbols = frame["symbol"].to_numpy()
    bounds = np.flatnonzero(np.concatenate(([True], symbols[1:] != symbols[:-1], [True])))
    for start, end in itertools.pairwise(bounds):
        if end - start >= period:
            out[start:end] = talib.EMA(close[start:end], timeperiod=period)
    return out
