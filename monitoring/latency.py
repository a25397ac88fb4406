"""Service latency figures from the decision log's per-decision latencies."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from monitoring.samples import finite_values


def latency_summary(latencies_ms: Sequence[float] | np.ndarray | pd.Series) -> dict[str, float]:
    """p50/p95/p99/max service latency in milliseconds (NaN when nothing was logged)."""
    values = finite_values(latencies_ms)
    if values.size == 0:
        nan = float("nan")
        return {"requests": 0.0, "p50_ms": nan, "p95_ms": nan, "p99_ms": nan, "max_ms": nan}
    p50, p95, p99 = np.percentile(values, [50, 95, 99])
    return {
        "requests": float(values.size),
        "p50_ms": float(p50),
        "p95_ms": float(p95),
        "p99_ms": float(p99),
        "max_ms": float(values.max()),
    }
