"""What the four models say about one feature row, and how their raw outputs become
prices the engine can act on.

- signal quality → `win_probability` (probability the trade closes a winner);
- exit optimizer → stop and target as ATR multiples, turned into prices with the `atr_14`
  feature, side-aware (a buy's stop sits below the price, a sell's above);
- regime classifier → probabilities of trending/ranging/volatile/calm and the likeliest;
- risk predictor → expected drawdown (and its 10th/90th percentiles), in percent;
- out-of-distribution flag from the detector `ModelSet` fitted on the training window.

What to do with them is the decision policy's (`serving.decision`, `models.policy`).

`ModelSetLike` is the contract of `models.loading.ModelSet`, restated as a protocol so
this module (and its tests) depend on the shape, not on how models are loaded."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Protocol

import numpy as np
import pandas as pd

from core.errors import ModelUnavailableError
from core.types import Side
from models.policy import FittedPolicy

REGIME_COLUMNS: tuple[str, ...] = ("trending", "ranging", "volatile", "calm")
# A stop can never be placed at or below zero; the floor keeps a long's stop a real price.
_MIN_PRICE_FRACTION = 0.01


class ModelSetLike(Protocol):
    versions: dict[str, str]
    feature_names: list[str]
    loaded_at: datetime
    policy: FittedPolicy | None  # fitted with the signal model; None: pass-through
    regime_skilled: bool  # the regime model beat its majority baseline out of time
    timeframe: str  # the bars the models were trained on (`core.bars.TIMEFRAMES`)

    def win_probability(self, X: pd.DataFrame) -> np.ndarray: ...

    def exits(self, X: pd.DataFrame) -> pd.DataFrame: ...

    def regime_probabilities(self, X: pd.DataFrame) -> pd.DataFrame: ...

    def drawdown(self, X: pd.DataFrame) -> pd.DataFrame: ...

    def out_of_distribution(self, X: pd.DataFrame) -> np.ndarray: ...


@dataclass(frozen=True, slots=True)
class ExitLevels:
    stop_loss_atr: float
    take_profit_atr: float
    stop_loss_price: float
    take_profit_price: float


@dataclass(frozen=True, slots=True)
class RegimeCall:
    regime: str
    regime_probabilities: dict[str, float]


@dataclass(frozen=True, slots=True)
class DrawdownCall:
    expected_drawdown_pct: float
    drawdown_p10_pct: float
    drawdown_p90_pct: float


@dataclass(frozen=True, slots=True)
class ModelOutputs:
    """All four models' answers for one signal."""

    win_probability: float
    exits: ExitLevels
    regime: RegimeCall
    drawdown: DrawdownCall
    out_of_distribution: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "win_probability": self.win_probability,
            **asdict(self.exits),
            **asdict(self.regime),
            **asdict(self.drawdown),
            "out_of_distribution": self.out_of_distribution,
        }


def feature_frame(model_set: ModelSetLike, values: Sequence[float]) -> pd.DataFrame:
    """One-row frame in the models' column order (values already ordered)."""
    return pd.DataFrame(
        np.asarray(values, dtype=np.float64).reshape(1, -1), columns=_columns(model_set)
    )


# One columns Index per served model set: pandas keeps its hash table on the Index object,
# so reusing it makes each model's column lookup on the one-row frame a cache hit instead
# of a rebuild (about 0.1 ms per model per request).
_COLUMN_CACHE: dict[int, tuple[ModelSetLike, pd.Index]] = {}


def _columns(model_set: ModelSetLike) -> pd.Index:
    cached = _COLUMN_CACHE.get(id(model_set))
    if cached is not None and cached[0] is model_set:
        return cached[1]
    if len(_COLUMN_CACHE) > 16:  # old sets after many reloads
        _COLUMN_CACHE.clear()
    columns = pd.Index(model_set.feature_names)
    _COLUMN_CACHE[id(model_set)] = (model_set, columns)
    return columns


def win_probability(model_set: ModelSetLike, X: pd.DataFrame) -> float:
    return _finite(float(np.asarray(model_set.win_probability(X))[0]), "signal_quality")


def exit_levels(
    model_set: ModelSetLike, X: pd.DataFrame, *, side: Side, price: float, atr: float
) -> ExitLevels:
    row = model_set.exits(X).iloc[0]
    stop_atr = _finite(float(row["stop_loss_atr"]), "exit_optimizer")
    target_atr = _finite(float(row["take_profit_atr"]), "exit_optimizer")
    return exit_prices(side, price, atr, stop_atr, target_atr)


def exit_prices(
    side: Side, price: float, atr: float, stop_loss_atr: float, take_profit_atr: float
) -> ExitLevels:
    """Stop and target prices from ATR multiples, on the right side of the price."""
    stop = price - side.sign * stop_loss_atr * atr
    target = price + side.sign * take_profit_atr * atr
    floor = price * _MIN_PRICE_FRACTION
    return ExitLevels(
        stop_loss_atr=stop_loss_atr,
        take_profit_atr=take_profit_atr,
        stop_loss_price=max(stop, floor),
        take_profit_price=max(target, floor),
    )


def regime_call(model_set: ModelSetLike, X: pd.DataFrame) -> RegimeCall:
    row = model_set.regime_probabilities(X).iloc[0]
    probabilities = {
        name: _finite(float(row[name]), "regime_classifier") for name in REGIME_COLUMNS
    }
    return RegimeCall(
        regime=max(probabilities, key=probabilities.__getitem__),
        regime_probabilities=probabilities,
    )


def drawdown_call(model_set: ModelSetLike, X: pd.DataFrame) -> DrawdownCall:
    row = model_set.drawdown(X).iloc[0]
    return DrawdownCall(
        expected_drawdown_pct=_finite(float(row["expected_drawdown_pct"]), "risk_predictor"),
        drawdown_p10_pct=_finite(float(row["drawdown_p10_pct"]), "risk_predictor"),
        drawdown_p90_pct=_finite(float(row["drawdown_p90_pct"]), "risk_predictor"),
    )


def out_of_distribution(model_set: ModelSetLike, X: pd.DataFrame) -> bool:
    return bool(np.asarray(model_set.out_of_distribution(X))[0])


def predict_all(
    model_set: ModelSetLike, X: pd.DataFrame, *, side: Side, price: float, atr: float
) -> ModelOutputs:
    """The four predicts (and the OOD detector) on one row."""
    return ModelOutputs(
        win_probability=win_probability(model_set, X),
        exits=exit_levels(model_set, X, side=side, price=price, atr=atr),
        regime=regime_call(model_set, X),
        drawdown=drawdown_call(model_set, X),
        out_of_distribution=out_of_distribution(model_set, X),
    )


def _finite(value: float, model: str) -> float:
    # A model answering NaN is a broken model, not a number to trade on.
    if not math.isfinite(value):
        raise ModelUnavailableError(f"model '{model}' returned {value}", where=model)
    return value
