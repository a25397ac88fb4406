"""Service latency figures from the decision log's latencies."""

from __future__ import annotations

import math

import numpy as np
import pytest

from monitoring.latency import latency_summary


def test_latency_summary() -> None:
    summary = latency_summary(list(range(1, 101)))
    assert summary["requests"] == 100
    assert summary["p50_ms"] == pytest.approx(50.5)
    assert summary["max_ms"] == 100
    assert math.isnan(latency_summary([])["p99_ms"])


def test_latency_summary_ignores_missing_values() -> None:
    summary = latency_summary(np.array([np.nan, 2.0, 4.0, np.inf]))
    assert summary["requests"] == 2.0
    assert summary["max_ms"] == 4.0
    assert summary["p50_ms"] == pytest.approx(3.0)
