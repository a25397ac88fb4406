"""The retrain decision for trained candidates: each candidate against the champion on the
candidate's own out-of-time window (`models.comparison`), recorded as one parent run of
the `retrain` experiment (one nested run per model and arm, the verdict and its reason as
tags), then the candidates that passed registered and put in the A/B arm as challenger.

A model whose A/B test is still running keeps its current challenger: the better candidate
is not registered, and the reason says so."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from core.errors import NotFoundError
from models.catalogue import model_for
from models.comparison import Comparison, evaluate_and_validate
from models.datasets import TrainingData
from models.loading import ModelSet
from models.registry import ModelRegistry
from models.tracker import RunReader, Tracker

RETRAIN_EXPERIMENT = "retrain"


@dataclass(frozen=True)
class RetrainComparison:
    """Every candidate's comparison, in one parent run of the `retrain` experiment."""

    run_id: str
    comparisons: dict[str, Comparison]
    windows: dict[str, str]  # model → out-of-time start (date)
    champion_versions: dict[str, str] = field(default_factory=dict)


def out_of_time_start(runs: RunReader, run_id: str) -> pd.Timestamp:
    """Where a training run's out-of-time window starts (its `out_of_time_start` tag)."""
    tag = runs.tags(run_id).get("out_of_time_start")
    if not tag:
        raise NotFoundError(f"run {run_id} has no out_of_time_start tag", where="retrain")
    return pd.Timestamp(tag, tz="UTC")


def compare_candidates(
    data: TrainingData,
    candidate_runs: Mapping[str, str],
    *,
    candidates: ModelSet,
    champion: ModelSet | None,
    margin: float,
    context: Mapping[str, str],
    tracker: Tracker,
    runs: RunReader,
) -> RetrainComparison:
    """Candidate vs champion per model (`candidate_runs`: model → training run id) on the
    candidate's out-of-time window, both scored by the model class's comparison metric."""
    tags = {f"tradewind.{key}": value for key, value in context.items()}
    results: dict[str, Comparison] = {}
    windows: dict[str, str] = {}
    run_name = f"retrain-{context.get('as_of', 'now')[:10]}"
    with tracker.run(RETRAIN_EXPERIMENT, run_name, tags) as parent:
        parent.log_params({"margin": margin})
        for name, run_id in candidate_runs.items():
            model = model_for(name)
            start = out_of_time_start(runs, run_id)
            windows[name] = str(start.date())
            candidate_frame = model.comparison_frame(candidates, data, start)
            champion_frame = (
                model.comparison_frame(champion, data, start) if champion is not None else None
            )
            result = evaluate_and_validate(model, candidate_frame, champion_frame, margin=margin)
            results[name] = result
            metric = model.comparison_metric.name
            parent.log_metrics(
                {
                    f"{name}.candidate_{metric}": result.candidate,
                    **(
                        {f"{name}.champion_{metric}": result.champion}
                        if result.champion is not None
                        else {}
                    ),
                }
            )
            parent.set_tags(
                {
                    f"{name}.verdict": "challenger" if result.passed else "not_registered",
                    f"{name}.reason": result.reason[:4000],
                    f"{name}.out_of_time_start": windows[name],
                    f"{name}.candidate_run_id": run_id,
                }
            )
        parent_id = parent.run_id
    return RetrainComparison(
        run_id=parent_id,
        comparisons=results,
        windows=windows,
        champion_versions=dict(champion.versions) if champion is not None else {},
    )


def register_challengers(
    registry: ModelRegistry,
    runs: RunReader,
    candidate_runs: Mapping[str, str],
    comparisons: Mapping[str, Mapping[str, Any]],
) -> dict[str, dict[str, Any]]:
    """Register each candidate that passed and make it the model's challenger; per model,
    whether it was registered, as which version, and why."""
    outcome: dict[str, dict[str, Any]] = {}
    for name, comparison in comparisons.items():
        if not comparison["passed"]:
            outcome[name] = {"registered": False, "reason": comparison["reason"]}
            continue
        current = registry.aliases(name) if name in registry.names() else {}
        if "challenger" in current:
            outcome[name] = {
                "registered": False,
                "reason": f"challenger v{current['challenger']} is still in A/B; "
                f"better candidate not registered ({comparison['reason']})",
            }
            continue
        run_id = candidate_runs[name]
        card = (
            f"# {name} (retrained candidate)\n\nRegistered as challenger by the retrain "
            f"flow: {comparison['reason']}.\n\nOut-of-time rows: {comparison['rows']}."
        )
        version = registry.register(
            name,
            runs.logged_model_uri(run_id),
            run_id=run_id,
            model_card=card,
            tags={"origin": "retrain", "comparison": comparison["reason"][:500]},
        )
        aliases = registry.aliases(name)
        if aliases.get("champion") != version:  # not the first version of a new model
            aliases = registry.set_challenger(name, version, comparison["reason"])
        outcome[name] = {
            "registered": True,
            "version": version,
            "aliases": aliases,
            "reason": comparison["reason"],
        }
    return outcome
