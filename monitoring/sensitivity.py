"""How much the model leans on each input, without labels: the mean absolute change of
the win probability when one input column is shuffled (a seeded permutation) on rows of
the training window. The monitor ranks drifting features by it: drift in an input the
model barely uses is not worth anyone's night."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

Predict = Callable[[pd.DataFrame], np.ndarray]


def prediction_sensitivity(
    predict: Predict,
    rows: pd.DataFrame,
    features: Sequence[str],
    *,
    seed: int = 0,
    max_rows: int = 2_000,
) -> dict[str, float]:
    """Feature → mean |Δ win probability| when that feature alone is shuffled, largest
    first. Features missing from `rows` are skipped; the other inputs stay as they are."""
    sample = rows if len(rows) <= max_rows else rows.sample(max_rows, random_state=seed)
    sample = sample.reset_index(drop=True)
    if sample.empty:
        return {}
    base = np.asarray(predict(sample), dtype=float)
    rng = np.random.default_rng(seed)
    scores: dict[str, float] = {}
    for name in features:
        if name not in sample.columns:
            continue
        shuffled = sample.copy()
        shuffled[name] = rng.permutation(shuffled[name].to_numpy())
        changed = np.asarray(predict(shuffled), dtype=float)
        scores[name] = float(np.nanmean(np.abs(changed - base)))
    return dict(sorted(scores.items(), key=lambda item: item[1], reverse=True))
