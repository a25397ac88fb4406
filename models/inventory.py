"""What the registry holds, read for the command line and the reports: every version of
each model with its aliases, provenance tags and out-of-time metrics (logged by its
training run as `oot_<metric>`), and the headline metrics shown per model."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from models.registry import ModelRegistry
from models.tracker import RunReader

HEADLINES: dict[str, tuple[str, ...]] = {
    "signal_quality": (
        "roc_auc",
        "accuracy",
        "majority_accuracy",
        "brier",
        "log_loss",
        "precision_at_gate",
        "coverage_at_gate",
        "win_rate_change_pts",
        "profit_factor_change_pct",
        "top_fifth_coverage",
        "top_fifth_win_rate_change_pts",
        "top_fifth_profit_factor_change_pct",
    ),
    "exit_optimizer": (
        "stop_loss_mae",
        "take_profit_mae",
        "model_profit_factor",
        "fixed_profit_factor",
        "profit_factor_change_pct",
    ),
    "regime_classifier": ("accuracy", "macro_f1", "majority_accuracy"),
    "risk_predictor": ("mae", "baseline_mae", "interval_coverage", "filtered_drawdown_change_pct"),
}


def out_of_time_metrics(runs: RunReader, run_id: str) -> dict[str, float]:
    """A training run's out-of-time metrics (finite ones), without the `oot_` prefix."""
    return {
        key.removeprefix("oot_"): value
        for key, value in runs.metrics(run_id).items()
        if key.startswith("oot_") and math.isfinite(value)
    }


def version_rows(tracking_uri: str) -> list[dict[str, Any]]:
    """One row per registered version: aliases, data window and source, creation time and
    the model's headline out-of-time metrics."""
    registry = ModelRegistry(tracking_uri)
    runs = RunReader(tracking_uri)
    rows = []
    for name in registry.names():
        for info in registry.versions(name):
            metrics: dict[str, float] = {}
            if info.run_id:
                logged = runs.metrics(info.run_id)
                metrics = {
                    key: logged[f"oot_{key}"]
                    for key in HEADLINES.get(name, ())
                    if f"oot_{key}" in logged
                }
            rows.append(
                {
                    "name": name,
                    "version": info.version,
                    "aliases": list(info.aliases),
                    "data_window": info.tags.get("data_window", ""),
                    "data_source": info.tags.get("data_source", ""),
                    "timeframe": info.timeframe,
                    "created_at": info.created_at.isoformat(),
                    "metrics": metrics,
                }
            )
    return rows


def model_summaries(
    tracking_uri: str, first_versions: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    """Per model of `first_versions` (name → the `train` flow's result for it): its aliases
    now, the champion's out-of-time metrics and data window, and every version from the
    first one on."""
    registry = ModelRegistry(tracking_uri)
    runs = RunReader(tracking_uri)
    out: dict[str, Any] = {}
    for name, first in first_versions.items():
        aliases = registry.aliases(name)
        champion = aliases.get("champion")
        metrics: dict[str, float] = {}
        window = None
        if champion is not None:
            run_id = registry.run_id(name, champion)
            metrics = out_of_time_metrics(runs, run_id)
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
