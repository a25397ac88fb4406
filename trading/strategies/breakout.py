"""Breakout: the close breaks above the highest high of the previous 20 bars on volume at
least twice its 20-bar average (long); the mirror image below the 20-bar low (short)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd
from pydantic import Field

from trading.strategies.base import Strategy
from trading.strategies.search import FloatRange, SearchParameter, StrategyConfig


class BreakoutConfig(StrategyConfig):
    volume_multiple: float = Field(2.0, gt=0)

    search_space: ClassVar[tuple[SearchParameter, ...]] = (
        FloatRange("volume_multiple", 1.0, 3.5),
    )


class BreakoutStrategy(Strategy):
    name: ClassVar[str] = "breakout"
    config_type: ClassVar[type[StrategyConfig]] = BreakoutConfig
    config: BreakoutConfig
    required_columns: ClassVar[tuple[str, ...]] = (
        "high_20_dist",
        "low_20_dist",
        "volume_ratio_20",
    )

    def __init__(self, config: BreakoutConfig | None = None) -> None:
        self.config = config or BreakoutConfig()

    def _conditions(
        self, frame: pd.DataFrame
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, str, str]:
        # high_20_dist = close / max(high of the 20 bars BEFORE this one) − 1: > 0 is a break.
        above = frame["high_20_dist"].to_numpy(dtype=float)
        below = frame["low_20_dist"].to_numpy(dtype=float)
        volume = frame["volume_ratio_20"].to_numpy(dtype=float)
        multiple = self.config.volume_multiple
        with np.errstate(invalid="ignore"):
            heavy = volume >= multiple
            long_now = (above > 0) & heavy
            short_now = (below < 0) & heavy
        return (
            long_now,
            short_now,
            ~(np.isnan(above) | np.isnan(below) | np.isnan(volume)),
            f"close above the 20-bar high on volume >= {multiple:g}x average",
            f"close below the 20-bar low on volume >= {multiple:g}x average",
        )
