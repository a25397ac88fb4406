"""The `retrain` flow: candidates on the newest data, candidate vs champion on the SAME
out-of-time window, and a candidate that is better by the configured margin (default 5%)
registered as `challenger` for the A/B arm. Every decision, taken or not, is recorded in
MLflow (experiment `retrain`: one parent run per retrain, one nested run per model and
arm with `mlflow.models.evaluate`'s metrics, the verdict and its reason as tags).

Triggers:
- `trigger="trades"` (the engine's loop): runs only when at least `every_trades` (default
  `models.retrain_every_trades`, 100) trades closed in the journal since the last
  retrain of that journal; otherwise it returns `skipped` with the count.
- `trigger="schedule"` (the after-close deployment) and `force=True`: always run.

Windows: the candidate trains on the data up to `as_of` through the training template,
whose final model is fitted on everything before its out-of-time window (the newest 20%
of the dates) and evaluated on it. The champion is evaluated on exactly those rows. The
regime labels of the window use thresholds fitted on the candidate's training rows only,
the same labels for both. The per-model metric and direction are in
`pipelines/flows/comparison.py`."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from core.errors import DataValidationError, NotFoundError
from core.settings import Settings, load_settings
from pipelines.flows.comparison import (
    COMPARISON_METRICS,
    Comparison,
    evaluate_and_validate,
    prediction_frame,
)
from pipelines.flows.train import MODEL_ORDER, prepare_training_data, train_one

RETRAIN_EXPERIMENT = "retrain"


# ----------------------------------------------------------------------------- trigger


def state_path(settings: Settings) -> Path:
    return settings.paths.data_dir / "loop" / "retrain_state.json"


def read_state(settings: Settings, journal_url: str) -> dict[str, Any]:
    path = state_path(settings)
    if not path.is_file():
        return {}
    try:
        states = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    state = states.get(journal_url, {})
    return state if isinstance(state, dict) else {}


def write_state(settings: Settings, journal_url: str, state: dict[str, Any]) -> None:
    path = state_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    states: dict[str, Any] = {}
    if path.is_file():
        try:
            states = json.loads(path.read_text())
        except (OSError, ValueError):
            states = {}
    states[journal_url] = state
    temp = path.with_suffix(".tmp")
    temp.write_text(json.dumps(states, indent=2))
    temp.replace(path)


@task(retries=2, retry_delay_seconds=3, task_run_name="count-closed-trades")
def count_closed_trades(journal_url: str, since: str | None, as_of: str | None) -> int:
    """Trades in the journal that closed after `since` and no later than `as_of`."""
    from trading.journal import Journal

    trades = Journal(journal_url).trades()
    if trades.empty:
        return 0
    exits = pd.to_datetime(trades["exit_time"], utc=True)
    mask = pd.Series(True, index=trades.index)
    if since:
        mask &= exits > pd.Timestamp(since)
    if as_of:
        mask &= exits <= pd.Timestamp(as_of)
    return int(mask.sum())


# ----------------------------------------------------------------------------- loading


def logged_model_uri(tracking_uri: str, run_id: str) -> str:
    """The `models:/m-…` URI of the model a training run logged."""
    from mlflow import MlflowClient

    run = MlflowClient(tracking_uri=tracking_uri).get_run(run_id)
    outputs = run.outputs.model_outputs if run.outputs else []
    if not outputs:
        raise NotFoundError(f"training run {run_id} logged no model", where="retrain")
    return f"models:/{outputs[-1].model_id}"


def load_logged_set(tracking_uri: str, runs: dict[str, str]) -> Any:
    """A `ModelSet` of logged (not necessarily registered) models, one run per model:
    the candidates, loaded with the same trusted loaders the service uses."""
    import mlflow.artifacts
    from mlflow import MlflowClient

    from models import loading

    loaders = {
        "signal_quality": loading._signal_quality,
        "exit_optimizer": loading._exit_optimizer,
        "regime_classifier": loading._regime_classifier,
        "risk_predictor": loading._risk_predictor,
    }
    models: dict[str, Any] = {}
    versions: dict[str, str] = {}
    for name, run_id in runs.items():
        model_id = logged_model_uri(tracking_uri, run_id).removeprefix("models:/")
        # The logged model's own artifact location: resolving `models:/m-…` would ask
        # the process-wide tracking URI, not this store.
        location = MlflowClient(tracking_uri=tracking_uri).get_logged_model(model_id)
        folder = Path(
            mlflow.artifacts.download_artifacts(
                artifact_uri=location.artifact_location, tracking_uri=tracking_uri
            )
        )
        inputs = loading._signature_inputs(folder, name)
        predict, runtime = loaders[name](folder, f"run-{run_id[:8]}", inputs)
        models[name] = loading._LoadedModel(name, f"run-{run_id[:8]}", inputs, predict, runtime)
        versions[name] = f"run-{run_id[:8]}"
    return loading.ModelSet(
        versions=versions,
        feature_names=sorted({n for m in models.values() for n in m.inputs}),
        loaded_at=datetime.now(tz=UTC),
        alias="candidate",
        _models=models,
    )


# ----------------------------------------------------------------------------- windows


def out_of_time_rows(
    name: str, data: Any, oot_start: pd.Timestamp
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(X, labels) of the model's rows on the out-of-time window, with the label columns
    `prediction_frame` expects (`win`, `stop_loss_atr`, `take_profit_atr`, `regime`,
    `drawdown_pct`)."""
    from models.labels import RegimeThresholds
    from models.schema import REGIME_COLUMNS

    if name == "regime_classifier":
        rows = data.market.sort_values("timestamp").reset_index(drop=True)
        before = rows[rows["timestamp"] < oot_start]
        window = rows[rows["timestamp"] >= oot_start].reset_index(drop=True)
        thresholds = RegimeThresholds(data.regime_horizon).fit(before)
        codes = thresholds.classify(window)
        labels = pd.DataFrame({"regime": [REGIME_COLUMNS[c] if c >= 0 else None for c in codes]})
        # Only the numeric model inputs: the loaders convert the whole frame to floats.
        return window[list(data.market_features)], labels
    names = data.labels
    rows = data.events
    window = rows[rows["timestamp"] >= oot_start].reset_index(drop=True)
    labels = pd.DataFrame(
        {
            "win": window[names["won"]].astype(float),
            "stop_loss_atr": window[names["stop_opt"]].astype(float),
            "take_profit_atr": window[names["target_opt"]].astype(float),
            "drawdown_pct": window[names["drawdown"]].astype(float),
        }
    )
    # Only the numeric model inputs: the loaders convert the whole frame to floats.
    return window[list(data.signal_features)], labels


def _run_oot_start(tracking_uri: str, run_id: str) -> pd.Timestamp:
    from mlflow import MlflowClient

    tag = MlflowClient(tracking_uri=tracking_uri).get_run(run_id).data.tags.get("out_of_time_start")
    if not tag:
        raise NotFoundError(f"run {run_id} has no out_of_time_start tag", where="retrain")
    return pd.Timestamp(tag, tz="UTC")


# ----------------------------------------------------------------------------- tasks


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
    import mlflow

    from models.loading import load_model_set
    from models.tracker import prepare_store

    settings = load_settings(**overrides)
    tracking_uri = settings.paths.mlflow_tracking_uri
    prepare_store(tracking_uri)
    candidate_set = load_logged_set(
        tracking_uri, {name: info["run_id"] for name, info in candidates.items()}
    )
    try:
        champion_set = load_model_set(tracking_uri, "champion")
    except NotFoundError:
        champion_set = None
    mlflow.set_tracking_uri(tracking_uri)
    experiment = mlflow.get_experiment_by_name(RETRAIN_EXPERIMENT)
    if experiment is None:
        artifacts = (settings.paths.mlflow_artifact_root / RETRAIN_EXPERIMENT).resolve()
        mlflow.create_experiment(RETRAIN_EXPERIMENT, artifact_location=artifacts.as_uri())
    mlflow.set_experiment(RETRAIN_EXPERIMENT)
    results: dict[str, Comparison] = {}
    windows: dict[str, str] = {}
    with mlflow.start_run(run_name=f"retrain-{context.get('as_of', 'now')[:10]}") as parent:
        mlflow.set_tags({f"tradewind.{k}": v for k, v in context.items()})
        mlflow.log_param("margin", margin)
        for name in candidates:
            oot_start = _run_oot_start(tracking_uri, candidates[name]["run_id"])
            windows[name] = str(oot_start.date())
            X, labels = out_of_time_rows(name, data, oot_start)
            candidate_frame = prediction_frame(name, candidate_set, X, labels)
            champion_frame = (
                prediction_frame(name, champion_set, X, labels) if champion_set else None
            )
            result = evaluate_and_validate(name, candidate_frame, champion_frame, margin=margin)
            results[name] = result
            spec = COMPARISON_METRICS[name]
            mlflow.log_metrics(
                {
                    f"{name}.candidate_{spec.name}": result.candidate,
                    **(
                        {f"{name}.champion_{spec.name}": result.champion}
                        if result.champion is not None
                        else {}
                    ),
                }
            )
            mlflow.set_tags(
                {
                    f"{name}.verdict": "challenger" if result.passed else "not_registered",
                    f"{name}.reason": result.reason[:4000],
                    f"{name}.out_of_time_start": windows[name],
                    f"{name}.candidate_run_id": candidates[name]["run_id"],
                }
            )
        parent_id = parent.info.run_id
    return {
        "run_id": parent_id,
        "comparisons": {name: r.as_dict() for name, r in results.items()},
        "windows": windows,
        "champion_versions": champion_set.versions if champion_set else {},
    }


@task(retries=2, retry_delay_seconds=3, task_run_name="register-challengers")
def register_challengers(
    candidates: dict[str, dict[str, Any]],
    comparisons: dict[str, dict[str, Any]],
    overrides: dict[str, Any],
) -> dict[str, dict[str, Any]]:
    """Register each passing candidate and make it the model's challenger. A model whose
    A/B test is still running keeps its current challenger (recorded as the reason)."""
    from models.registry import ModelRegistry

    settings = load_settings(**overrides)
    tracking_uri = settings.paths.mlflow_tracking_uri
    registry = ModelRegistry(tracking_uri)
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
        run_id = candidates[name]["run_id"]
        card = (
            f"# {name} (retrained candidate)\n\nRegistered as challenger by the retrain "
            f"flow: {comparison['reason']}.\n\nOut-of-time rows: {comparison['rows']}."
        )
        version = registry.register(
            name,
            logged_model_uri(tracking_uri, run_id),
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


# ----------------------------------------------------------------------------- flow


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
    logger = get_run_logger()
    overrides = overrides or {}
    settings = load_settings(**overrides)
    if trigger not in ("trades", "schedule"):
        raise DataValidationError(
            f"trigger must be 'trades' or 'schedule', got {trigger!r}", where="retrain"
        )
    journal = journal_url or settings.paths.journal_url
    margin = settings.models.promotion_margin if margin is None else margin
    every = every_trades or settings.models.retrain_every_trades
    state = read_state(settings, journal)
    closed = count_closed_trades(journal, state.get("last_as_of"), as_of)
    summary: dict[str, Any] = {
        "trigger": trigger,
        "as_of": as_of,
        "closed_trades_since_last": closed,
        "every_trades": every,
        "margin": margin,
    }
    if trigger == "trades" and not force and closed < every:
        summary.update(
            action="skipped", reason=f"{closed} trades closed since the last retrain (< {every})"
        )
        logger.info(summary["reason"])
        return summary

    wanted = list(symbols or settings.symbols)
    data = prepare_training_data(wanted, train_start, as_of, overrides)
    names = list(models or MODEL_ORDER)
    candidates: dict[str, dict[str, Any]] = {}
    failed: dict[str, str] = {}
    for name in names:
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
        "as_of": as_of or datetime.now(tz=UTC).isoformat(),
        "closed_trades": str(closed),
        "journal": journal,
    }
    compared = compare_candidates(data, candidates, margin, context, overrides)
    registered = register_challengers(candidates, compared["comparisons"], overrides)
    write_state(
        settings,
        journal,
        {"last_as_of": as_of or context["as_of"], "mlflow_run_id": compared["run_id"]},
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
