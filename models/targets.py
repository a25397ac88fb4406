"""The original plan's targets for the models, next to what was measured out of time:
the rows `tradewind train` prints after training."""

from __future__ import annotations

import math
from collections.abc import Mapping


def figure(value: float | None) -> str:
    """A metric as the tables show it: three decimals, `n/a` when missing or not finite."""
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.3f}"


def _pct(value: float | None) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:+.1f}%"


def seed_targets(
    metrics: Mapping[str, Mapping[str, float]], latency: Mapping[str, float] | None
) -> list[tuple[str, str, str]]:
    """(target, plan, measured) rows from each model's out-of-time metrics (model name →
    metrics) and the single-row latency, when it was measured."""
    signal = metrics.get("signal_quality", {})
    exits = metrics.get("exit_optimizer", {})
    risk = metrics.get("risk_predictor", {})
    rows = [
        (
            "signal accuracy",
            "> 70%",
            "n/a"
            if "accuracy" not in signal
            else f"{signal['accuracy'] * 100:.1f}% "
            f"(majority class {signal.get('majority_accuracy', float('nan')) * 100:.1f}%)",
        ),
        (
            "win rate, gated vs ungated",
            "+10%",
            _pct(signal.get("win_rate_change_pts")).replace("%", " pts")
            + f" (coverage {figure(signal.get('coverage_at_gate'))})",
        ),
        ("profit factor, gated vs ungated", "+20%", _pct(signal.get("profit_factor_change_pct"))),
        (
            "profit factor, model vs fixed exits",
            "+20%",
            _pct(exits.get("profit_factor_change_pct")),
        ),
        (
            "win rate, top-fifth gate vs ungated",
            "+10%",
            _pct(signal.get("top_fifth_win_rate_change_pts")).replace("%", " pts")
            + f" (coverage {figure(signal.get('top_fifth_coverage'))})",
        ),
        (
            "profit factor, top-fifth gate vs ungated",
            "+20%",
            _pct(signal.get("top_fifth_profit_factor_change_pct")),
        ),
        ("drawdown, gated vs ungated", "-20%", _pct(signal.get("drawdown_change_pct"))),
        (
            "drawdown, top-fifth gate vs ungated",
            "-20%",
            _pct(signal.get("top_fifth_drawdown_change_pct")),
        ),
        ("drawdown, risk-filtered vs all", "-20%", _pct(risk.get("filtered_drawdown_change_pct"))),
        (
            "prediction latency (4 models, 1 row)",
            "< 50 ms",
            "n/a"
            if latency is None
            else f"p50 {latency['p50_ms']:.2f} ms, p99 {latency['p99_ms']:.2f} ms",
        ),
    ]
    return rows
