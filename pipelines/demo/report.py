"""Assembling the demo's report dict from what the run produced: the two replays'
journals, the registry and the training runs, the retrain and A/B outcomes, the decision
log, and the champion on the trading window's labelled signal events (permutation
importance, `models.importance`; calibration, `monitoring.calibration`).
`pipelines.demo.page` turns the dict into JSON and HTML."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from core.settings import load_settings
from monitoring.calibration import calibration_table

REPORT_FIGURES = ("trades", "win_rate", "profit_factor", "sharpe", "max_drawdown", "total_return")


def arm_section(run: dict[str, Any]) -> dict[str, Any]:
    """Headline figures (as `tradewind backtest` computes them) plus the equity curve."""
    metrics = run["metrics"]
    section: dict[str, Any] = {key: metrics.get(key) for key in REPORT_FIGURES}
    for key in ("net_pnl", "final_equity", "exposure", "average_trade_return"):
        if key in metrics:
            section[key] = metrics[key]
    equity: pd.DataFrame = run["equity"]
    section["equity_curve"] = [
        [pd.Timestamp(t).isoformat(), float(v)]
        for t, v in zip(equity["timestamp"], equity["equity"], strict=True)
    ]
    return section


def model_section(tracking_uri: str, trained: dict[str, Any]) -> dict[str, Any]:
    """Per model: aliases at the end, the champion's out-of-time metrics and every version
    this run registered."""
    from models.registry import ModelRegistry
    from models.tracker import RunReader

    registry = ModelRegistry(tracking_uri)
    runs = RunReader(tracking_uri)
    out: dict[str, Any] = {}
    for name, first in trained["models"].items():
        aliases = registry.aliases(name)
        champion = aliases.get("champion")
        metrics: dict[str, float] = {}
        window = None
        if champion is not None:
            run_id = registry.run_id(name, champion)
            metrics = {
                k.removeprefix("oot_"): v
                for k, v in runs.metrics(run_id).items()
                if k.startswith("oot_") and math.isfinite(v)
            }
            window = runs.tags(run_id).get("data_window")
        versions = [
            {
                "version": v.version,
                "aliases": list(v.aliases),
                "origin": v.tags.get("origin", "train"),
                "data_window": v.tags.get("data_window"),
            }
            for v in registry.versions(name)
            if int(v.version) >= int(first["version"] or 0)
        ]
        out[name] = {
            "champion_version": champion,
            "aliases": aliases,
            "metrics": metrics,
            "data_window": window,
            "first_version_this_run": first["version"],
            "first_version_metrics": first["metrics"],
            "versions": versions,
        }
    return out


def decisions_per_arm(decision_log: Path, journal_decisions: pd.DataFrame) -> dict[str, Any]:
    """Decisions per A/B arm: the service's decision log (every /decide answer) and the
    journal's view (what the engine did with them)."""
    from serving.decision_log import read_decisions

    logged = read_decisions(decision_log) if decision_log.exists() else pd.DataFrame()
    service = (
        {str(k): int(v) for k, v in logged["variant"].value_counts().items()}
        if not logged.empty
        else {}
    )
    engine: dict[str, dict[str, int]] = {}
    if not journal_decisions.empty:
        grouped = journal_decisions.groupby(["variant", "action"]).size()
        for (variant, action), count in grouped.items():
            engine.setdefault(str(variant), {})[str(action)] = int(count)
    return {"service": service, "engine": engine}


def champion_on_trading_window(
    tracking_uri: str, settings: Any, plan: Any, top: int = 25
) -> tuple[dict[str, float], dict[str, Any]]:
    """The final champion signal_quality on the trading window's labelled signal events
    (out of time for every version trained before it): permutation importance and the
    calibration table of its win probability."""
    from models.importance import permutation_importance
    from models.loading import load_model_set
    from pipelines.training import build_training_set

    try:
        data = build_training_set(settings, plan.symbols, plan.trade_start, plan.trade_end)
    except Exception:  # too few events in a tiny window: the report simply omits the plot
        return {}, {}
    model_set = load_model_set(tracking_uri, "champion")
    won = data.events[data.labels["won"]].to_numpy(dtype=float)
    events = data.events[list(data.signal_features)]
    if len(events) < 10:
        return {}, {}

    importance = permutation_importance(model_set, events, won, seed=settings.seed, top=top)
    calibration: dict[str, Any] = dict(
        calibration_table(
            model_set.win_probability(events).tolist(), won.astype(bool).tolist(), bins=8
        )
    )
    calibration["events"] = len(events)
    return importance, calibration


def build_report(
    plan: Any,
    overrides: dict[str, Any],
    baseline: dict[str, Any],
    loop: dict[str, Any],
    trained: dict[str, Any],
    story: Any,
    demo_dir: Path,
    *,
    wall_seconds: float,
) -> dict[str, Any]:
    from features.catalogue import BAR_FEATURES, CATALOGUE

    settings = load_settings(**overrides)
    tracking_uri = settings.paths.mlflow_tracking_uri
    evaluations = loop["evaluations"]
    applied = [e for e in evaluations if e.get("applied")]
    records = [r for r in loop["records"] if r.win_probability is not None]
    closed_calibration = calibration_table(
        [r.win_probability for r in records], [bool(r.trade.is_win) for r in records], bins=5
    )
    importance, calibration = champion_on_trading_window(tracking_uri, settings, plan)
    calibration["closed_trades"] = closed_calibration
    groups: dict[str, int] = {}
    for spec in CATALOGUE:
        groups[spec.group] = groups.get(spec.group, 0) + 1
    ab = {
        "decisions": decisions_per_arm(demo_dir / "decisions.db", loop["decisions"])["service"],
        "decisions_detail": decisions_per_arm(demo_dir / "decisions.db", loop["decisions"]),
        "evaluations": [
            {k: e.get(k) for k in ("at", "action", "reason", "applied", "counts", "arms", "moves")}
            for e in evaluations
        ],
        "promotions": [
            {"at": e["at"], "moves": e.get("moves"), "reason": e["reason"]}
            for e in applied
            if e["action"] == "promote"
        ],
        "retired": [
            {"at": e["at"], "moves": e.get("moves"), "reason": e["reason"]}
            for e in applied
            if e["action"] == "retire"
        ],
        "rollbacks": [
            {"at": e["at"], "moves": e.get("moves"), "reason": e["reason"]}
            for e in applied
            if e["action"] == "rollback"
        ],
        "timeline": story.timeline,
        "challenger_share": plan.challenger_share,
    }
    stats = loop["stats"]
    return {
        "run": {
            "symbols": list(plan.symbols),
            "train_window": f"{plan.history_start}..{plan.train_end}",
            "trade_window": f"{plan.trade_start}..{plan.trade_end}",
            "wall_seconds": wall_seconds,
            "stage_seconds": dict(story.stage_seconds),
            "plan": plan.model_dump(),
            "engine": {
                "signals": stats.signals,
                "entries": stats.entries,
                "gated": stats.gated,
                "regime_skipped": stats.regime_skipped,
                "risk_rejected": stats.risk_rejected,
                "model_failures": stats.model_failures,
            },
        },
        "baseline": arm_section(baseline),
        "ml": arm_section(loop),
        "models": model_section(tracking_uri, trained),
        "retraining": [
            {
                "at": r["at"],
                "trigger": r["trigger"],
                "action": r.get("action"),
                "closed_trades_since_last": r.get("closed_trades_since_last"),
                "comparisons": r.get("comparisons", {}),
                "challengers": r.get("challengers", {}),
                "mlflow_run_id": r.get("mlflow_run_id"),
            }
            for r in loop["retrains"]
        ],
        "ab": ab,
        "features": {"count": len(CATALOGUE), "bar_features": len(BAR_FEATURES), "groups": groups},
        "calibration": calibration,
        "feature_importance": importance,
        "service_models_at_end": loop.get("models_at_end"),
    }
