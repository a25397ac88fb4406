"""Mean reversion: RSI oversold with the close below the lower Bollinger band is a long
entry; RSI overbought above the upper band a short entry."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd
from pydantic import Field

from trading.strategies.base import Strategy
from trading.strategies.search import FloatRange, SearchParameter, StrategyConfig


class MeanReversionConfig(StrategyConfig):
    oversold: float = Field(30.0, ge=0, le=100)
    overbought: float = Field(70.0, ge=0, le=100)
    # %B below this is "below the lower band" (0 = on the band).
    lower_band_pct_b: float = 0.0
    upper_band_pct_b: float = 1.0

    search_space: ClassVar[tuple[SearchParameter, ...]] = (
        FloatRange("oversold", 15.0, 40.0),
        FloatRange("overbought", 60.0, 85.0),
    )


class MeanReversionStrategy(Strategy):
    name: ClassVar[str] = "mean_reversion"
    config_type: ClassVar[type[StrategyConfig]] = MeanReversionConfig
    config: MeanReversionConfig
    required_columns: ClassVar[tuple[str, ...]] = ("rsi_14", "bb_pct_b_20")

    def __init__(self, config: MeanReversionConfig | None = None) -> None:
        self.config = config or MeanReversionConfig()

    def _conditions(
        self, frame: pd.DataFrame
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, str, str]:
        rsi = frame["rsi_14"].to_numpy(dtype=float)
        pct_b = frame["bb_pct_b_20"].to_numpy(dtype=float)
        c = self.config
        with np.errstate(invalid="ignore"):
            long_now = (rsi < c.oversold) & (pct_b < c.lower_band_pct_b)
            short_now = (rsi > c.overbought) & (pct_b > c.upper_band_pct_b)
        return (
            long_now,
            short_now,
            ~(np.isnan(rsi) | np.isnan(pct_b)),
            f"rsi14 < {c.oversold:g} and close below the lower Bollinger band",
            f"rsi14 > {c.overbought:g} and close above the upper Bollinger band",
        )
