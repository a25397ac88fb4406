"""What the A/B and monitor flows publish, built from the domain results: the A/B summary
record (stored in MLflow and the outcome store, returned by the flow), its tags and the
markdown verdict shown in Prefect, and the monitor's markdown summary."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from monitoring.ab import ABConfig
from monitoring.alerts import DispatchReport
from monitoring.calibration import CalibrationResult
from monitoring.checks import MonitorFindings
from monitoring.lifecycle import Aliases, LiveEvaluation
from monitoring.rollback import RollbackFloor
from monitoring.store import ABOutcome


def ab_summary(
    evaluation: LiveEvaluation,
    *,
    aliases: Aliases,
    config: ABConfig,
    floor: RollbackFloor,
    applied: bool,
    dry_run: bool,
    evaluated_at: datetime,
    moves: dict[str, dict[str, str]],
) -> dict[str, Any]:
    """The evaluation as one JSON-ready record (per-arm figures, tests, metrics, params)."""
    arms: dict[str, dict[str, Any]] = {}
    metrics: dict[str, float] = {}
    tests: list[dict[str, Any]] = []
    verdict = evaluation.verdict
    if verdict is not None:
        for arm in (verdict.champion, verdict.challenger):
            arms[arm.arm] = {
                "trades": arm.trades,
                "win_rate": arm.win_rate,
                "profit_factor": min(arm.profit_factor, 1e6),
                "mean_return": arm.mean_return,
                "log_loss": arm.log_loss,
            }
            metrics.update(arm.to_metrics(arm.arm))
        tests = verdict.to_dict()["tests"]
        for test in verdict.tests:
            metrics[f"{test.name}_pvalue"] = test.pvalue
            metrics[f"{test.name}_statistic"] = test.statistic
    if evaluation.rollback is not None:
        metrics.update(evaluation.rollback.champion.to_metrics("champion_recent"))
    return {
        "action": evaluation.action.value,
        "reason": evaluation.reason,
        "applied": applied,
        "dry_run": dry_run,
        "evaluated_at": evaluated_at.isoformat(),
        "aliases": {alias: dict(versions) for alias, versions in aliases.items()},
        "counts": evaluation.counts,
        "arms": arms,
        "tests": tests,
        "moves": moves,
        "metrics": metrics,
        "params": {
            "alpha": config.alpha,
            "min_trades_per_arm": config.min_trades_per_arm,
            "max_trades_per_arm": config.max_trades_per_arm,
            "floor_min_trades": floor.min_trades,
            "floor_window_trades": floor.window_trades,
            "floor_min_win_rate": floor.min_win_rate,
            "floor_min_profit_factor": floor.min_profit_factor,
        },
    }


def ab_run_tags(summary: dict[str, Any]) -> dict[str, str]:
    """Tags of the evaluation's run in the tracker (searchable in the MLflow UI)."""
    return {
        "verdict": summary["action"],
        "reason": summary["reason"][:4000],
        "applied": str(summary["applied"]),
        "champion_versions": json.dumps(summary["aliases"].get("champion", {}), sort_keys=True),
        "challenger_versions": json.dumps(
            summary["aliases"].get("challenger", {}), sort_keys=True
        ),
    }


def ab_outcome(summary: dict[str, Any], mlflow_run_id: str | None) -> ABOutcome:
    """The summary as a row of the outcome store."""
    counts = summary["counts"]
    return ABOutcome(
        evaluated_at=datetime.fromisoformat(summary["evaluated_at"]),
        verdict=summary["action"],
        reason=summary["reason"],
        applied=bool(summary["applied"]),
        champion_versions=summary["aliases"].get("champion", {}),
        challenger_versions=summary["aliases"].get("challenger", {}),
        champion_trades=int(counts.get("champion_same_period", counts["champion_all"])),
        challenger_trades=int(counts["challenger"]),
        details=summary,
        mlflow_run_id=mlflow_run_id,
    )


def verdict_markdown(summary: dict[str, Any]) -> str:
    lines = [
        f"## A/B verdict: **{summary['action']}**",
        "",
        summary["reason"],
        "",
        f"Applied: {summary['applied']} · evaluated at {summary['evaluated_at']}",
        "",
    ]
    arms = summary.get("arms") or {}
    if arms:
        lines += [
            "| arm | versions | trades | win rate | profit factor | mean return | log loss |",
            "|---|---|---|---|---|---|---|",
        ]
        for arm, figures in arms.items():
            versions = ", ".join(
                f"{k} v{v}" for k, v in summary["aliases"].get(arm, {}).items()
            )
            lines.append(
                f"| {arm} | {versions} | {figures['trades']} | {figures['win_rate']:.3f} | "
                f"{figures['profit_factor']:.3f} | {figures['mean_return']:.4f} | "
                f"{figures['log_loss']:.4f} |"
            )
    tests = summary.get("tests") or []
    if tests:
        lines += ["", "| test | statistic | p-value | favours |", "|---|---|---|---|"]
        for test in tests:
            lines.append(
                f"| {test['name']} | {test['statistic']:.4f} | {test['pvalue']:.4g} | "
                f"{test['favours'] or '—'} |"
            )
        lines.append(f"\nα = {summary['params']['alpha']} (Bonferroni: α/2 per test)")
    if summary.get("moves"):
        lines += ["", "Registry moves:"]
        lines += [f"- {name}: {moved}" for name, moved in summary["moves"].items()]
    return "\n".join(lines)


def monitor_markdown(report: dict[str, Any], drift: pd.DataFrame) -> str:
    counts = drift["status"].value_counts().to_dict() if not drift.empty else {}
    lines = [
        "## Monitor",
        "",
        f"Champion signal_quality v{report['champion']['version']}, trained on "
        f"{report['reference_window'][0]} → {report['reference_window'][1]}; "
        f"current window {report['current_window'][0][:10]} → {report['current_window'][1][:10]}.",
        "",
        "Feature drift: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())),
        "",
        "| check | figure |",
        "|---|---|",
    ]
    for label, result in report["prediction_drift"].items():
        lines.append(f"| prediction drift ({label}) | PSI {result['psi']}, {result['status']} |")
    calibration = report["calibration"]
    lines.append(f"| calibration (ECE, {calibration['trades']} trades) | {calibration['ece']} |")
    latency = report["latency"]
    lines.append(f"| decision latency p50 / p99 | {latency['p50_ms']} / {latency['p99_ms']} ms |")
    lines.append(
        f"| alerts sent / suppressed | {report['alerts']['sent']} / "
        f"{report['alerts']['suppressed']} |"
    )
    return "\n".join(lines)


def rounded(value: float | None) -> float | None:
    """A figure for a JSON report: four decimals, None when missing or not finite."""
    return None if value is None or not np.isfinite(value) else round(float(value), 4)


def table_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """A table as JSON records, rounded to four decimals (NaN becomes null)."""
    return list(json.loads(frame.round(4).to_json(orient="records")))


def calibration_summary(result: CalibrationResult) -> dict[str, Any]:
    return {
        "ece": rounded(result.ece),
        "trades": result.trades,
        "table": table_records(result.table),
    }


def monitor_report(
    findings: MonitorFindings,
    *,
    champion: Mapping[str, Any],
    reference_window: tuple[str, str],
    current_window: tuple[str, str],
    symbols: list[str],
    dispatched: DispatchReport,
) -> dict[str, Any]:
    """One monitor run as the JSON report written under `<reports_dir>/monitoring/`."""
    drift = findings.drift
    return {
        "champion": {k: champion[k] for k in ("version", "run_id")},
        "reference_window": list(reference_window),
        "current_window": list(current_window),
        "symbols": symbols,
        "features_monitored": len(findings.monitored),
        "features_not_monitored": findings.not_monitored,
        "drift": table_records(drift),
        "drift_counts": drift["status"].value_counts().to_dict(),
        "prediction_drift": {
            label: {k: (rounded(v) if isinstance(v, float) else v) for k, v in result.items()}
            for label, result in findings.prediction.items()
        },
        "calibration": calibration_summary(findings.calibration),
        "latency": {k: rounded(v) for k, v in findings.latency.items()},
        "alerts": {
            **dispatched.summary(),
            "keys": [alert.key for alert in dispatched.sent],
            "failures": [list(failure) for failure in dispatched.failures],
        },
    }
