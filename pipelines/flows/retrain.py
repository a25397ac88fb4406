"""The `retrain` flow: candidates on the newest data, candidate vs champion on the SAME
out-of-time window, and a candidate that is better by the configured margin (default 5%)
registered as `challenger` for the A/B arm. Every decision, taken or not, is recorded in
MLflow (experiment `retrain`: one parent run per retrain, one nested run per model and
arm with `mlflow.models.evaluate`'s metrics, the verdict and its reason as tags).

Triggers (`monitoring.trigger`):
- `trigger="trades"` (the engine's loop): runs only when at least `every_trades` (default
  `models.retrain_every_trades`, 100) trades closed in the journal since the last
  retrain of that journal; otherwise it returns `skipped` with the count.
- `trigger="schedule"` (the after-close deployment) and `force=True`: always run.

Windows: the candidate trains on the data up to `as_of` through the training template,
whose final model is fitted on everything before its out-of-time window (the newest 20%
of the dates) and evaluated on it. The champion is evaluated on exactly those rows; each
model class says how (`comparison_frame`) and by which metric (`models.comparison`)."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from core.errors import NotFoundError
from core.settings import load_settings
from core.utc import utc_now, utc_timestamp
from monitoring.trigger import RetrainStateFile, check_trigger, retrain_due
from pipelines.tasks import prepare_training_data, train_one


@task(retries=2, retry_delay_seconds=3, task_run_name="count-closed-trades")
def count_closed_trades(journal_url: str, since: str | None, as_of: str | None) -> int:
    """Trades in the journal that closed after `since` and no later than `as_of`."""
    from monitoring.trigger import closed_between
    from trading.journal import Journal

    return closed_between(
        Journal(journal_url).trades(),
        utc_timestamp(since) if since else None,
        utc_timestamp(as_of) if as_of else None,
    )


@task(cache_policy=NO_CACHE, task_run_name="compare-candidates")
def compare_candidates(
    data: Any,
    candidates: dict[str, dict[str, Any]],
    margin: float,
    context: dict[str, str],
    overrides: dict[str, Any],
) -> dict[str, Any]:
    """Candidate vs champion per model on the candidate's out-of-time window, in one
    MLflow parent run of the `retrain` experiment."""
    from models.loading import load_logged_set, load_model_set
    from models.retraining import compare_candidates as compare
    from models.tracker import MlflowTracker, RunReader

    settings = load_settings(**overrides)
    tracking_uri = settings.paths.mlflow_tracking_uri
    runs = {name: info["run_id"] for name, info in candidates.items()}
    try:
        champion = load_model_set(tracking_uri, "champion")
    except NotFoundError:
        champion = None
    compared = compare(
        data,
        runs,
        candidates=load_logged_set(tracking_uri, runs),
        champion=champion,
        margin=margin,
        context=context,
        tracker=MlflowTracker(tracking_uri, settings.paths.mlflow_artifact_root),
        runs=RunReader(tracking_uri),
    )
    return {
        "run_id": compared.run_id,
        "comparisons": {name: r.as_dict() for name, r in compared.comparisons.items()},
        "windows": compared.windows,
        "champion_versions": compared.champion_versions,
    }


@task(retries=2, retry_delay_seconds=3, task_run_name="register-challengers")
def register_challengers(
    candidates: dict[str, dict[str, Any]],
    comparisons: dict[str, dict[str, Any]],
    overrides: dict[str, Any],
) -> dict[str, dict[str, Any]]:
    """Register each passing candidate as its model's challenger (`models.retraining`)."""
    from models.registry import ModelRegistry
    from models.retraining import register_challengers as register
    from models.tracker import RunReader

    tracking_uri = load_settings(**overrides).paths.mlflow_tracking_uri
    runs = {name: info["run_id"] for name, info in candidates.items()}
    return register(ModelRegistry(tracking_uri), RunReader(tracking_uri), runs, comparisons)


@flow(name="retrain", log_prints=True)
def retrain_flow(
    as_of: str | None = None,
    trigger: str = "schedule",
    force: bool = False,
    train_start: str | None = None,
    symbols: list[str] | None = None,
    models: list[str] | None = None,
    margin: float | None = None,
    every_trades: int | None = None,
    journal_url: str | None = None,
    source: str = "sample",
    overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Retrain when due, compare with the champion on the same window, and put a
    candidate that is better by `margin` into the A/B arm as challenger."""
    from models.registry import MODEL_NAMES

    logger = get_run_logger()
    overrides = overrides or {}
    settings = load_settings(**overrides)
    check_trigger(trigger)
    journal = journal_url or settings.paths.journal_url
    margin = settings.models.promotion_margin if margin is None else margin
    every = every_trades or settings.models.retrain_every_trades
    state = RetrainStateFile.under(settings.paths.data_dir).read(journal)
    closed = count_closed_trades(journal, state.get("last_as_of"), as_of)
    summary: dict[str, Any] = {
        "trigger": trigger,
        "as_of": as_of,
        "closed_trades_since_last": closed,
        "every_trades": every,
        "margin": margin,
    }
    if not retrain_due(trigger, closed, every, force=force):
        summary.update(
            action="skipped", reason=f"{closed} trades closed since the last retrain (< {every})"
        )
        logger.info(summary["reason"])
        return summary

    data = prepare_training_data(list(symbols or settings.symbols), train_start, as_of, overrides)
    candidates: dict[str, dict[str, Any]] = {}
    failed: dict[str, str] = {}
    for name in models or MODEL_NAMES:
        # A model that cannot be trained on this window (e.g. too few wins for its
        # calibration folds) is recorded and skipped; the other candidates still compete.
        outcome: Any = train_one(name, data, False, overrides, source, return_state=True)
        if outcome.is_completed():
            candidates[name] = outcome.result()
        else:
            failed[name] = str(outcome.message or outcome.name)[:500]
            logger.warning("%s: candidate not trained: %s", name, failed[name])
    if not candidates:
        summary.update(action="failed", reason="no candidate could be trained", failed=failed)
        return summary
    context = {
        "trigger": trigger,
        "as_of": as_of or utc_now().isoformat(),
        "closed_trades": str(closed),
        "journal": journal,
    }
    compared = compare_candidates(data, candidates, margin, context, overrides)
    registered = register_challengers(candidates, compared["comparisons"], overrides)
    RetrainStateFile.under(settings.paths.data_dir).write(
        journal, {"last_as_of": as_of or context["as_of"], "mlflow_run_id": compared["run_id"]}
    )
    for name, why in failed.items():
        registered[name] = {"registered": False, "reason": f"candidate not trained: {why}"}
    challengers = {n: r["version"] for n, r in registered.items() if r.get("registered")}
    summary.update(
        failed=failed,
        action="challenger" if challengers else "not_registered",
        challengers=challengers,
        comparisons=compared["comparisons"],
        windows=compared["windows"],
        champion_versions=compared["champion_versions"],
        registered=registered,
        mlflow_run_id=compared["run_id"],
        candidates={
            n: {"run_id": c["run_id"], "metrics": c["metrics"]} for n, c in candidates.items()
        },
    )
    for name, outcome in registered.items():
        logger.info("%s: %s", name, outcome["reason"])
    return summary
