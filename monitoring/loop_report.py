"""The learning loop's report: the same engine over the same bars ungated (baseline) and
model-gated, the models' versions and out-of-time figures, what retraining decided, the
A/B history, calibration and feature importance; written as machine-readable JSON
(`report.json`) next to a self-contained HTML page (`report.html`, `monitoring.report_page`).

The sections are built here from plain results (metrics dicts, equity frames, the flows'
summaries), so the report is tested without running anything; the demo gathers the
results and fills in the run's own details."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from core.errors import DataValidationError
from core.performance import HEADLINE_FIGURES
from core.strict_json import json_safe
from monitoring.report_page import render_html

REQUIRED_KEYS = ("baseline", "ml", "models", "ab", "features")
EXTRA_FIGURES = ("net_pnl", "final_equity", "exposure", "average_trade_return")
APPLIED_ACTIONS = {"promote": "promotions", "retire": "retired", "rollback": "rollbacks"}


def lifecycle_event(
    at: datetime | pd.Timestamp, action: str, model: str, detail: str
) -> dict[str, str]:
    """One point of the lifecycle timeline (`champion`, `retrain`, `challenger`,
    `not_registered`, `promote`, `retire`, `rollback`: the lanes the page plots)."""
    return {"at": pd.Timestamp(at).isoformat(), "action": action, "model": model, "detail": detail}


def retrain_events(
    result: Mapping[str, Any], at: datetime | pd.Timestamp, trigger: str, closed_since: int
) -> list[dict[str, str]]:
    """The retrain and, per compared model, whether its candidate became challenger."""
    events = [lifecycle_event(at, "retrain", "", f"{trigger}: {closed_since} trades")]
    for name in result.get("comparisons", {}):
        registered = result["registered"][name]
        action = "challenger" if registered.get("registered") else "not_registered"
        events.append(lifecycle_event(at, action, name, registered["reason"][:160]))
    return events


def verdict_event(summary: Mapping[str, Any], at: datetime | pd.Timestamp) -> dict[str, str]:
    """An A/B evaluation that moved (or would move) the registry."""
    moved = ",".join(summary.get("moves", {})) or "all"
    return lifecycle_event(at, summary["action"], moved, summary["reason"][:200])


def arm_section(metrics: Mapping[str, Any], equity: pd.DataFrame) -> dict[str, Any]:
    """One engine's headline figures (as `tradewind backtest` computes them) and its
    equity curve."""
    section: dict[str, Any] = {key: metrics.get(key) for key in HEADLINE_FIGURES}
    for key in EXTRA_FIGURES:
        if key in metrics:
            section[key] = metrics[key]
    section["equity_curve"] = [
        [pd.Timestamp(t).isoformat(), float(v)]
        for t, v in zip(equity["timestamp"], equity["equity"], strict=True)
    ]
    return section


def decisions_per_arm(logged: pd.DataFrame, journal_decisions: pd.DataFrame) -> dict[str, Any]:
    """Decisions per A/B arm: the service's decision log (every /decide answer) and the
    journal's view (what the engine did with them, per action)."""
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


def ab_section(
    evaluations: Sequence[Mapping[str, Any]],
    decisions: Mapping[str, Any],
    timeline: list[dict[str, Any]],
    challenger_share: float,
) -> dict[str, Any]:
    """The A/B history: every evaluation (the `evaluate_ab` summaries, each with its `at`),
    the applied promotions, retirements and rollbacks, the decisions per arm and the
    lifecycle timeline."""
    section: dict[str, Any] = {
        "decisions": decisions["service"],
        "decisions_detail": dict(decisions),
        "evaluations": [
            {k: e.get(k) for k in ("at", "action", "reason", "applied", "counts", "arms", "moves")}
            for e in evaluations
        ],
    }
    applied = [e for e in evaluations if e.get("applied")]
    for action, key in APPLIED_ACTIONS.items():
        section[key] = [
            {"at": e["at"], "moves": e.get("moves"), "reason": e["reason"]}
            for e in applied
            if e["action"] == action
        ]
    section["timeline"] = timeline
    section["challenger_share"] = challenger_share
    return section


def retraining_section(retrains: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """What each retrain (the `retrain` flow summaries, each with its `at`) decided."""
    return [
        {
            "at": r["at"],
            "trigger": r["trigger"],
            "action": r.get("action"),
            "closed_trades_since_last": r.get("closed_trades_since_last"),
            "comparisons": r.get("comparisons", {}),
            "challengers": r.get("challengers", {}),
            "mlflow_run_id": r.get("mlflow_run_id"),
        }
        for r in retrains
    ]


def check_report(report: Mapping[str, Any]) -> None:
    """Raise DataValidationError naming every missing key of the report's contract."""
    missing = [key for key in REQUIRED_KEYS if key not in report]
    for arm in ("baseline", "ml"):
        section = report.get(arm, {})
        missing += [f"{arm}.{key}" for key in HEADLINE_FIGURES if key not in section]
    if "count" not in report.get("features", {}):
        missing.append("features.count")
    if missing:
        raise DataValidationError(f"report lacks {', '.join(missing)}", where="loop report")


def write_report(report: Mapping[str, Any], out_dir: Path) -> tuple[Path, Path]:
    """Write `report.json` and `report.html` into `out_dir`; returns both paths."""
    check_report(report)
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / "report.json"
    html_path = out_dir / "report.html"
    safe = json_safe(report, infinity_as_text=True)  # a profit factor without losses
    tmp = json_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(safe, indent=2, sort_keys=False))
    tmp.replace(json_path)
    html_tmp = html_path.with_suffix(".html.tmp")
    html_tmp.write_text(render_html(safe))
    html_tmp.replace(html_path)
    return json_path, html_path
