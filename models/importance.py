"""Which inputs the win probability leans on: permutation importance of the
signal_quality model on labelled signal events (how much its log loss grows when one
input column is shuffled), with a seeded shuffle so the ranking is reproducible."""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.loading import ModelSet
from models.metrics import log_loss
from models.schema import SIGNAL_QUALITY


def permutation_importance(
    model_set: ModelSet, events: pd.DataFrame, won: np.ndarray, *, seed: int, top: int = 25
) -> dict[str, float]:
    """The `top` inputs by log-loss increase when shuffled, largest first."""

    def loss(frame: pd.DataFrame) -> float:
        return log_loss(model_set.win_probability(frame), won)

    base = loss(events)
    rng = np.random.default_rng(seed)
    scores: dict[str, float] = {}
    for name in model_set.inputs(SIGNAL_QUALITY):
        shuffled = events.copy()
        shuffled[name] = rng.permutation(shuffled[name].to_numpy())
        scores[name] = loss(shuffled) - base
    ranked = sorted(scores.items(), key=lambda item: item[1], reverse=True)[:top]
    return {name: float(value) for name, value in ranked}
