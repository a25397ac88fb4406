"""The service's own Prometheus metrics, exposed on BentoML's `/metrics` next to its
built-in request metrics: decisions per endpoint and arm, decision latency, the share of
out-of-distribution decisions, shadow predictions, refused requests and model reloads.

`prometheus_client` is imported when the metrics are built (in the worker, after BentoML
has set `PROMETHEUS_MULTIPROC_DIR`), never at import time: imported earlier it would run
in single-process mode and its samples would never reach `/metrics`."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

# Single-row decisions take about a millisecond; the buckets resolve 0.25-100 ms.
LATENCY_BUCKETS = (0.00025, 0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.02, 0.05, 0.1)


class ServiceMetrics:
    """Implements `serving.decision.DecisionObserver` over Prometheus collectors."""

    def __init__(self, collectors: dict[str, Any]) -> None:
        self._c = collectors

    def decided(self, endpoint: str, variant: str, latency_s: float, ood: bool) -> None:
        self._c["decisions"].labels(endpoint=endpoint, variant=variant).inc()
        self._c["latency"].labels(endpoint=endpoint, variant=variant).observe(latency_s)
        if ood:
            self._c["ood"].labels(endpoint=endpoint, variant=variant).inc()

    def shadowed(self, ok: bool) -> None:
        self._c["shadow"].labels(outcome="ok" if ok else "error").inc()

    def refused(self, endpoint: str, status: int) -> None:
        self._c["refused"].labels(endpoint=endpoint, status=str(status)).inc()

    def reloaded(self, outcome: str) -> None:
        self._c["reloads"].labels(outcome=outcome).inc()


@lru_cache(maxsize=1)
def service_metrics() -> ServiceMetrics:
    """The process's metrics (built once: Prometheus refuses duplicate names)."""
    from prometheus_client import Counter, Histogram

    return ServiceMetrics(
        {
            "decisions": Counter(
                "tradewind_decisions_total",
                "Model answers given, by endpoint and A/B arm",
                ["endpoint", "variant"],
            ),
            "latency": Histogram(
                "tradewind_decision_latency_seconds",
                "Time from a checked request to the models' answer (server side)",
                ["endpoint", "variant"],
                buckets=LATENCY_BUCKETS,
            ),
            "ood": Counter(
                "tradewind_out_of_distribution_total",
                "Answers flagged out of distribution (OOD rate = this / decisions)",
                ["endpoint", "variant"],
            ),
            "shadow": Counter(
                "tradewind_shadow_predictions_total",
                "Challenger predictions made in shadow mode",
                ["outcome"],
            ),
            "refused": Counter(
                "tradewind_refused_requests_total",
                "Requests refused before any model ran (bad input, auth, no models)",
                ["endpoint", "status"],
            ),
            "reloads": Counter(
                "tradewind_model_reloads_total",
                "Model set swaps and failed reloads (polled or POST /reload), by outcome",
                ["outcome"],
            ),
        }
    )
