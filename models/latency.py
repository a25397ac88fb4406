"""Single-row inference latency of a loaded model set: the serving hot path measured
in-process, all four models plus the out-of-distribution flag on one row."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

from models.loading import ModelSet


def measure_latency(model_set: ModelSet, calls: int = 200) -> dict[str, Any]:
    """p50/p99 in milliseconds of one row of zeros through every model, and what ran each
    model; the first 20 calls warm caches up and are not counted."""
    row = pd.DataFrame(np.zeros((1, len(model_set.feature_names))),
                       columns=model_set.feature_names)
    timings = []
    for call in range(calls + 20):
        started = time.perf_counter()
        model_set.win_probability(row)
        model_set.exits(row)
        model_set.regime_probabilities(row)
        model_set.drawdown(row)
        model_set.out_of_distribution(row)
        if call >= 20:
            timings.append((time.perf_counter() - started) * 1000)
    return {
        "p50_ms": float(np.percentile(timings, 50)),
        "p99_ms": float(np.percentile(timings, 99)),
        "runtimes": model_set.runtimes,
    }
