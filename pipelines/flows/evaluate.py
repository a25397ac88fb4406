"""The `evaluate` flow: the decision policy's yardstick, walk-forward by calendar year
(`monitoring.evaluation` owns the rules; this is the wiring).

Per fold: the four models are trained through the one training entry point
(`pipelines.training`) on the development symbols with bars up to the fold's training end,
logged to the MLflow experiment `evaluation` and never registered (what serves does not
change); loaded from their runs into the in-process client (`serving.inprocess`, the
service's decision code); then the same engine (`trading.backtest.Replay`) trades the
held-out symbols over the fold's year twice, ungated (the rules client) and with the
policy. Features are computed once per run (they are causal) and shared by every fold."""

from __future__ import annotations

import time
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import ProcessPoolTaskRunner

from core.errors import ConfigError
from core.settings import Settings, load_settings
from core.universe import split_universe
from models.datasets import TrainingData
from monitoring.evaluation import (
    DEFAULT_YEARS,
    EXPERIMENT,
    ArmRun,
    EvaluationFold,
    ExperimentTracker,
    FoldResult,
    check_development_only,
    check_purged,
    data_section,
    false_alarm_rate,
    pooled_signal_scores,
    purge_events,
    regime_baseline,
    signal_scores,
    spread_sample,
    summarize,
    walk_forward_folds,
)
from pipelines.tasks import run_logger
from pipelines.training import TrainRequest, build_dataset, load_bars, train_models
from trading.backtest import Replay, ReplayMarket

BAR_VALUES = ["open", "high", "low", "close", "volume"]


@task(cache_policy=NO_CACHE, task_run_name="load-{source}")
def load_universe(
    source: str, symbols: list[str] | None, max_training_symbols: int | None,
    settings: Settings,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(development bars, held-out bars, index bars) of the source."""
    request = TrainRequest(source=source, symbols=tuple(symbols) if symbols else None,
                           include_held_out=True)
    stocks, index, _ = load_bars(request, settings)
    development, held_out = split_universe(stocks["symbol"].unique())
    development = spread_sample(development, max_training_symbols)
    if not development or not held_out:
        raise ConfigError(
            f"the evaluation needs development and held-out symbols; {source} has "
            f"{len(development)} and {len(held_out)}",
            where="evaluate",
        )
    return (stocks.loc[stocks["symbol"].isin(development)],
            stocks.loc[stocks["symbol"].isin(held_out)], index)


@task(cache_policy=NO_CACHE, task_run_name="train-fold-{fold.name}")
def train_fold(
    fold: EvaluationFold, stocks: pd.DataFrame, index: pd.DataFrame,
    features: pd.DataFrame, settings: Settings, source: str,
) -> dict[str, Any]:
    """The four models on the development bars up to the fold's training end, logged to
    the `evaluation` experiment (not registered). Returns each model's run id and
    out-of-time metrics."""
    cut = stocks.loc[stocks["timestamp"] <= fold.train_end]
    data = build_dataset(cut, index.loc[index["timestamp"] <= fold.train_end], settings,
                         features=features.loc[features["timestamp"] <= fold.train_end])
    data = replace(data, events=purge_events(data.events, fold))
    check_purged(data.events, fold)
    check_development_only(data.events["symbol"].unique())
    from models.tracker import MlflowTracker

    tracker = ExperimentTracker(
        MlflowTracker(settings.paths.mlflow_tracking_uri, settings.paths.mlflow_artifact_root),
        EXPERIMENT, prefix=f"fold-{fold.name}/",
    )
    results = train_models(data, _model_names(), settings, source=source, register=False,
                           tracker=tracker)
    run_logger().info("fold %s: %d training events up to %s", fold.name, len(data.events),
                      fold.train_end.date())
    return {"runs": {r.name: r.run_id for r in results},
            "metrics": {r.name: dict(r.metrics) for r in results},
            "events": len(data.events)}


def _model_names() -> tuple[str, ...]:
    from models.registry import MODEL_NAMES

    return MODEL_NAMES


def replay_arm(
    market: ReplayMarket, settings: Settings, fold: EvaluationFold, client: Any | None
) -> ArmRun:
    """The engine over the fold's held-out bars: ungated (rules client) without a client,
    gated by the client's decisions with one."""
    replay = Replay(market, settings, start=fold.start, end=fold.end, model_client=client,
                    gate_enabled=client is not None)
    replay.run_until(None)
    replay.finish()
    journal = replay.journal
    run = ArmRun(journal.trades(), journal.equity(), journal.decisions(),
                 replay.matching.config.starting_cash)
    journal.close()
    return run


def logged_model_set(tracking_uri: str, runs: dict[str, str]) -> Any:
    """The fold's four models as the service loads them. `models.loading.load_logged_set`
    leaves the signal model's out-of-distribution detector out (`load_model_set` reads
    it), so the policy arm would never refuse a signal as out of distribution; until it
    loads it, it is attached here from the logged model's files."""
    import json
    from dataclasses import replace as with_fields
    from urllib.parse import unquote, urlparse

    from models.loading import load_logged_set
    from models.ood import OutOfDistributionDetector
    from models.schema import OOD_FILE, SIGNAL_QUALITY
    from models.tracker import RunReader

    model_set = load_logged_set(tracking_uri, runs)
    if getattr(model_set, "_ood", None) is not None or SIGNAL_QUALITY not in runs:
        return model_set
    location = RunReader(tracking_uri).logged_model_location(runs[SIGNAL_QUALITY])
    path = Path(unquote(urlparse(location).path)) / "extra_files" / OOD_FILE
    if not path.is_file():
        return model_set
    detector = OutOfDistributionDetector.from_dict(json.loads(path.read_text()))
    names = model_set.feature_names + [n for n in detector.feature_names
                                       if n not in model_set.feature_names]
    return with_fields(model_set, feature_names=names, _ood=detector)


@task(cache_policy=NO_CACHE, task_run_name="judge-fold-{fold.name}")
def judge_fold(
    fold: EvaluationFold, trained: dict[str, Any], market: ReplayMarket,
    held_out: TrainingData, settings: Settings,
) -> tuple[FoldResult, np.ndarray, np.ndarray]:
    """Signal scores and false alarms on the fold's held-out year, and both arms."""
    from models.catalogue import model_for
    from serving.inprocess import InProcessModelClient

    model_set = logged_model_set(settings.paths.mlflow_tracking_uri, trained["runs"])
    stamps = held_out.events["timestamp"]
    year = held_out.events.loc[(stamps >= fold.start) & (stamps <= fold.end)]
    scored = model_for("signal_quality").comparison_frame(
        model_set, replace(held_out, events=year.reset_index(drop=True)), fold.start)
    predictions = scored["prediction"].to_numpy(dtype=float)
    outcomes = scored["target"].to_numpy(dtype=float)
    frame = market.frame
    bars = frame.loc[(frame["timestamp"] >= fold.start) & (frame["timestamp"] <= fold.end)]
    features = bars.drop(columns=BAR_VALUES).select_dtypes("number")  # the loaders take floats
    alarms = false_alarm_rate(model_set.out_of_distribution(features))
    regime = trained["metrics"].get("regime_classifier", {})
    result = FoldResult(
        fold=fold,
        ungated=replay_arm(market, settings, fold, None),
        policy=replay_arm(market, settings, fold, InProcessModelClient(model_set)),
        scores=signal_scores(predictions, outcomes),
        ood_false_alarm_rate=alarms,
        regime={"macro_f1": regime.get("macro_f1", float("nan")),
                "majority_macro_f1": regime_baseline(regime.get("majority_accuracy", 0.0))},
    )
    section = result.section()
    run_logger().info(
        "fold %s: AUC %.3f; trades ungated %d, policy %d; PF ratio %s", fold.name,
        section["auc"], section["ungated"]["trades"], section["policy"]["trades"],
        section["pf_ratio"],
    )
    return result, predictions, outcomes


def log_evaluation(
    settings: Settings, payload: dict[str, Any], files: tuple[Path, Path]
) -> str:
    """One MLflow run in the `evaluation` experiment: the pooled and per-fold figures,
    the JSON and the HTML page as artifacts. Returns the run id."""
    from models.tracker import MlflowTracker

    evaluation = payload["evaluation"]
    metrics: dict[str, Any] = {}
    for key in ("pf_ratio", "dd_ratio", "kept_ratio", "auc", "brier", "coverage",
                "ood_false_alarm_rate"):
        metrics[key] = evaluation.get(key)
    for key in ("pf_ratio_ci", "dd_ratio_ci"):
        bounds = evaluation.get(key) or (None, None)
        metrics[f"{key}_low"], metrics[f"{key}_high"] = bounds
    for fold in evaluation["folds"]:
        prefix = f"fold_{fold['year']}_"
        for key in ("auc", "brier", "pf_ratio", "dd_ratio", "kept_ratio", "coverage",
                    "ood_false_alarm_rate"):
            metrics[prefix + key] = fold.get(key)
        for arm in ("ungated", "policy"):
            for key, value in fold[arm].items():
                metrics[f"{prefix}{arm}_{key}"] = value
    tracker = MlflowTracker(settings.paths.mlflow_tracking_uri, settings.paths.mlflow_artifact_root)
    run = payload["run"]
    tags = {"source": run["source"], "folds": ",".join(str(f["year"]) for f in evaluation["folds"])}
    with tracker.run(EXPERIMENT, f"evaluation-{tags['folds']}", tags) as tracked:
        tracked.log_params({"source": run["source"], "folds": tags["folds"],
                            "symbols": payload["data"]["symbols"],
                            "held_out_symbols": payload["data"]["held_out_symbols"],
                            "embargo_bars": run["embargo_bars"], "seed": settings.seed})
        tracked.log_metrics({k: float(v) for k, v in metrics.items()
                             if isinstance(v, int | float) and not isinstance(v, bool)})
        for path in files:
            tracked.log_file(path)
        return tracked.run_id


@flow(name="evaluate", log_prints=True,
      task_runner=ProcessPoolTaskRunner(max_workers=2))  # type: ignore[arg-type]  # stubs
def evaluate_flow(
    source: str = "sp500",
    years: list[int] | None = None,
    symbols: list[str] | None = None,
    max_training_symbols: int | None = None,
    embargo_bars: int = 5,
    json_path: str | None = None,
    workers: int = 1,
    overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Walk-forward evaluation of the decision policy against the ungated engine on the
    held-out symbols; writes JSON + HTML (default `<reports>/evaluation/`) and an MLflow
    run. Returns the payload (`evaluation`, `data`, `run`). With `workers` 2 the folds'
    models train in two processes at once (each single-threaded estimators; the replays
    stay in this process)."""
    from features.compute import compute_features

    started = time.perf_counter()
    settings = load_settings(**(overrides or {}))
    development, held_bars, index = load_universe(source, symbols, max_training_symbols,
                                                  settings)
    folds = walk_forward_folds(held_bars["timestamp"], years or DEFAULT_YEARS,
                               embargo_bars=embargo_bars)
    print(f"evaluating {', '.join(f.name for f in folds)}: "
          f"{development['symbol'].nunique()} development symbols train, "
          f"{held_bars['symbol'].nunique()} held-out symbols trade")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # data-quality warnings are the ingest's report
        features = compute_features(development, index)
    market = ReplayMarket.from_bars(held_bars, index)
    held_out = build_dataset(held_bars, index, settings,
                             features=market.frame.drop(columns=BAR_VALUES))
    inputs = [(fold, development.loc[development["timestamp"] <= fold.train_end], index,
               features.loc[features["timestamp"] <= fold.train_end], settings, source)
              for fold in folds]
    if workers > 1 and len(folds) > 1:  # each fold's training in its own process
        futures = [train_fold.submit(*arguments) for arguments in inputs]
        trainings = [future.result() for future in futures]
    else:
        trainings = [train_fold(*arguments) for arguments in inputs]
    results, predictions, outcomes, runs = [], [], [], {}
    for fold, trained in zip(folds, trainings, strict=True):
        result, predicted, won = judge_fold(fold, trained, market, held_out, settings)
        results.append(result)
        predictions.append(predicted)
        outcomes.append(won)
        runs[fold.name] = trained["runs"] | {"training_events": trained["events"]}
    evaluation = summarize(results, pooled_scores=pooled_signal_scores(predictions, outcomes),
                           seed=settings.seed)
    payload = {
        "evaluation": evaluation,
        "data": data_section(development, held_bars),
        "run": {"source": source, "embargo_bars": embargo_bars, "workers": workers,
                "fold_runs": runs},
    }
    from monitoring.evaluation_page import write_evaluation

    target = Path(json_path) if json_path else (
        settings.paths.reports_dir / "evaluation" / "evaluation.json")
    payload["run"]["seconds"] = time.perf_counter() - started
    files = write_evaluation(payload, target)
    payload["run"]["mlflow_run_id"] = log_evaluation(settings, payload, files)
    payload["run"]["json"], payload["run"]["html"] = str(files[0]), str(files[1])
    return payload
