"""The demo's report dict, gathered from what the run produced: the two replays, the
registry (`models.inventory`), the retrain and A/B summaries, the decision log, and the
final champion on the trading window's labelled signal events (permutation importance,
`models.importance`; calibration, `monitoring.calibration`). The sections and the JSON +
HTML writer are `monitoring.loop_report`'s."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from core.settings import Settings, load_settings
from monitoring.calibration import calibration_table
from monitoring.loop_report import ab_section, arm_section, decisions_per_arm, retraining_section
from pipelines.demo.narration import Narrator
from pipelines.demo.plan import DemoPlan


def champion_on_trading_window(
    tracking_uri: str, settings: Settings, plan: DemoPlan, top: int = 25
) -> tuple[dict[str, float], dict[str, Any]]:
    """The final champion signal_quality on the trading window's labelled signal events of
    the traded (held-out) symbols, out of time for every version trained before it:
    permutation importance and the calibration table of its win probability."""
    from models.loading import load_model_set
    from monitoring.calibration import signal_diagnostics
    from pipelines.training import build_training_set

    try:
        data = build_training_set(settings, plan.trade_symbols, plan.trade_start,
                                  plan.trade_end, include_held_out=True)
    except Exception:  # too few events in a tiny window: the report simply omits the plot
        return {}, {}
    won = data.events[data.labels["won"]].to_numpy(dtype=float)
    return signal_diagnostics(load_model_set(tracking_uri, "champion"),
                              data.events[list(data.signal_features)], won,
                              seed=settings.seed, top=top)


def build_report(
    plan: DemoPlan,
    overrides: dict[str, Any],
    baseline: dict[str, Any],
    loop: dict[str, Any],
    trained: dict[str, Any],
    evaluated: dict[str, Any],
    story: Narrator,
    demo_dir: Path,
    *,
    wall_seconds: float,
) -> dict[str, Any]:
    from features.catalogue import BAR_FEATURES, CATALOGUE
    from models.inventory import model_summaries
    from serving.decision_log import read_decisions

    settings = load_settings(**overrides)
    tracking_uri = settings.paths.mlflow_tracking_uri
    records = [r for r in loop["records"] if r.win_probability is not None]
    closed_calibration = calibration_table(
        [r.win_probability for r in records], [bool(r.trade.is_win) for r in records], bins=5
    )
    importance, calibration = champion_on_trading_window(tracking_uri, settings, plan)
    calibration["closed_trades"] = closed_calibration
    groups: dict[str, int] = {}
    for spec in CATALOGUE:
        groups[spec.group] = groups.get(spec.group, 0) + 1
    log_path = demo_dir / "decisions.db"
    logged = read_decisions(log_path) if log_path.exists() else pd.DataFrame()
    stats = loop["stats"]
    return {
        "run": {
            "symbols": list(plan.symbols),
            "trade_symbols": list(plan.trade_symbols),
            "source": plan.source,
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
        "baseline": arm_section(baseline["metrics"], baseline["equity"]),
        "ml": arm_section(loop["metrics"], loop["equity"]),
        "models": model_summaries(tracking_uri, trained["models"]),
        "retraining": retraining_section(loop["retrains"]),
        "ab": ab_section(
            loop["evaluations"],
            decisions_per_arm(logged, loop["decisions"]),
            story.timeline,
            plan.challenger_share,
        ),
        "features": {"count": len(CATALOGUE), "bar_features": len(BAR_FEATURES), "groups": groups},
        "calibration": calibration,
        "feature_importance": importance,
        "service_models_at_end": loop.get("models_at_end"),
        "evaluation": evaluated["evaluation"],
        "data": demo_data(settings, plan),
    }


def demo_data(settings: Settings, plan: DemoPlan) -> dict[str, Any]:
    """The report's `data`: every symbol of the run, how many are held out (traded, never
    trained on), their bars from the training start to the trading end, first and last."""
    from core.universe import is_held_out
    from monitoring.evaluation import data_section
    from trading.backtest import load_window_bars

    bars, _ = load_window_bars(settings, plan.all_symbols, plan.history_start, plan.trade_end,
                               warmup_days=0)
    held = bars["symbol"].map(is_held_out).astype(bool)
    return data_section(bars.loc[~held], bars.loc[held])
