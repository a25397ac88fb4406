"""The engine's Prometheus metrics (`GET /metrics`), on a registry of its own (no global
state): equity, open positions, decisions by action, order submission latency, stream
reconnects, alerts raised."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST as CONTENT_TYPE
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["CONTENT_TYPE", "EngineMetrics"]


class EngineMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.equity = Gauge(
            "tradewind_engine_equity", "Account equity (USD)", registry=self.registry
        )
        self.day_pnl = Gauge(
            "tradewind_engine_day_pnl", "Equity less the session's baseline (USD)",
            registry=self.registry,
        )
        self.positions = Gauge(
            "tradewind_engine_open_positions", "Open positions", registry=self.registry
        )
        self.halted = Gauge(
            "tradewind_engine_halted", "1 while the daily-loss halt is on", registry=self.registry
        )
        self.paused = Gauge(
            "tradewind_engine_paused", "1 while new entries are paused", registry=self.registry
        )
        self.decisions = Counter(
            "tradewind_engine_decisions", "Decisions journaled, by action and reason",
            ["action", "reason"], registry=self.registry,
        )
        self.order_latency = Histogram(
            "tradewind_engine_order_submit_seconds", "Time to submit an order to the broker",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
            registry=self.registry,
        )
        self.reconnects = Counter(
            "tradewind_engine_stream_reconnects", "Order-update stream reconnections",
            registry=self.registry,
        )
        self.closed_trades = Counter(
            "tradewind_engine_closed_trades", "Trades closed", registry=self.registry
        )
        self.alerts = Counter(
            "tradewind_engine_alerts", "Alerts raised, by priority", ["priority"],
            registry=self.registry,
        )

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
