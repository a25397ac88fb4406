"""The `evaluate` flow: the decision policy's yardstick, walk-forward by calendar year
(`monitoring.evaluation` owns the rules; this is the wiring).

Per fold: the four models are trained through the one training entry point
(`pipelines.training`) on the development symbols with bars up to the fold's training end,
logged to the MLflow experiment `evaluation` and never registered (what serves does not
change); loaded from their runs into the in-process client (`serving.inprocess`, the
service's decision code); then the same engine (`trading.backtest.Replay`) trades the
held-out symbols over the fold's year twice, ungated (the rules client) and with the
policy. Features are computed once per run (they are causal) and shared by every fold;
with `workers=2` two folds' models train at once, each in its own process.

On intraday bars (`timeframe` 1Min, 5Min, 15Min from a minute file) the folds are blocks
of sessions (`monitoring.evaluation.session_folds`) and there is no held-out symbol with
minute history: each fold's models train on every bar of the chosen development symbols
before it (through the training path `train --timeframe` uses) and the same engine
replays those symbols over the fold's sessions. Out of time only, and the report says so."""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import ProcessPoolTaskRunner

from core.bars import DAILY
from core.errors import ConfigError, DataValidationError
from core.settings import Settings, load_settings
from models.datasets import TrainingData
from models.registry import MODEL_NAMES
from monitoring import evaluation as yardstick
from monitoring.evaluation import ArmRun, EvaluationFold, FoldResult
from pipelines.tasks import run_logger
from pipelines.training import TrainRequest, build_dataset, load_bars, train_models
from trading.backtest import BAR_VALUES, Replay, ReplayMarket


@task(cache_policy=NO_CACHE, task_run_name="train-fold-{fold.name}")
def train_fold(fold: EvaluationFold, stocks: pd.DataFrame, index: pd.DataFrame,
               features: pd.DataFrame, settings: Settings, source: str,
               timeframe: str = DAILY) -> dict[str, Any]:
    """The four models on the development bars up to the fold's training end, logged to
    the `evaluation` experiment (not registered): run ids and out-of-time metrics."""
    from models.tracker import MlflowTracker

    def cut(frame: pd.DataFrame) -> pd.DataFrame:
        return frame.loc[frame["timestamp"] <= fold.train_end]

    data = yardstick.fold_training_data(
        build_dataset(cut(stocks), cut(index), settings, features=cut(features)), fold)
    paths = settings.paths
    tracker = yardstick.ExperimentTracker(
        MlflowTracker(paths.mlflow_tracking_uri, paths.mlflow_artifact_root),
        yardstick.EXPERIMENT, prefix=f"fold-{fold.name}/")
    results = train_models(data, MODEL_NAMES, settings, source=source, register=False,
                           tracker=tracker, timeframe=timeframe)
    run_logger().info("fold %s: %d training events", fold.name, len(data.events))
    return {"runs": {r.name: r.run_id for r in results},
            "metrics": {r.name: dict(r.metrics) for r in results}, "events": len(data.events)}


def replay_arm(market: ReplayMarket, settings: Settings, fold: EvaluationFold,
               client: Any | None) -> ArmRun:
    """The engine over the fold's held-out bars: ungated (the rules client) without a
    client, gated by the client's decisions with one. Intraday equity is judged per
    session (its last mark), as daily equity is."""
    replay = Replay(market, settings, start=fold.start, end=fold.end, model_client=client,
                    gate_enabled=client is not None)
    replay.run_until(None)
    replay.finish()
    journal = replay.journal
    equity = journal.equity() if fold.label is None else yardstick.session_closes(
        journal.equity())
    run = ArmRun(journal.trades(), equity, journal.decisions(),
                 replay.matching.config.starting_cash)
    journal.close()
    return run


@task(cache_policy=NO_CACHE, task_run_name="judge-fold-{fold.name}")
def judge_fold(fold: EvaluationFold, trained: dict[str, Any], market: ReplayMarket,
               held_out: TrainingData, settings: Settings
               ) -> tuple[FoldResult, np.ndarray, np.ndarray]:
    """Signal scores and false alarms on the fold's held-out year, and both arms."""
    from models.loading import load_logged_set
    from models.policy import PolicyConfig
    from serving.inprocess import InProcessModelClient

    model_set = load_logged_set(settings.paths.mlflow_tracking_uri, trained["runs"])
    predicted, won = yardstick.held_out_predictions(model_set, held_out, fold)
    ordinary = yardstick.ordinary_rows(market.frame, fold, BAR_VALUES)
    result = FoldResult(
        fold=fold,
        ungated=replay_arm(market, settings, fold, None),
        policy=replay_arm(market, settings, fold, InProcessModelClient(
            model_set, policy=PolicyConfig.from_settings(settings))),
        scores=yardstick.signal_scores(predicted, won),
        ood_false_alarm_rate=yardstick.false_alarm_rate(
            model_set.out_of_distribution(ordinary)),
        regime=yardstick.regime_figures(trained["metrics"].get("regime_classifier", {})),
    )
    run_logger().info("fold %s: AUC %.3f; trades ungated %d, policy %d", fold.name,
                      result.scores["auc"], len(result.ungated.trades),
                      len(result.policy.trades))
    return result, predicted, won


def log_evaluation(settings: Settings, payload: dict[str, Any], files: tuple[Path, Path]) -> str:
    """One MLflow run in the `evaluation` experiment: the figures, the JSON and the page."""
    from models.tracker import MlflowTracker

    folds = ",".join(yardstick.fold_name(f) for f in payload["evaluation"]["folds"])
    tracker = MlflowTracker(settings.paths.mlflow_tracking_uri,
                            settings.paths.mlflow_artifact_root)
    run = payload["run"]
    tags = {"source": run["source"], "folds": folds}
    if "timeframe" in run:  # intraday: out of time on the same symbols
        tags |= {"timeframe": run["timeframe"], "out_of_time_only": "true"}
    with tracker.run(yardstick.EXPERIMENT, f"evaluation-{folds}", tags) as tracked:
        tracked.log_params({"source": run["source"], "folds": folds, **payload["data"],
                            "embargo_bars": run["embargo_bars"], "seed": settings.seed})
        tracked.log_metrics(yardstick.evaluation_metrics(payload["evaluation"]))
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
    timeframe: str = DAILY,
    fold_sessions: int = yardstick.FOLD_SESSIONS,
    fold_starts: list[str] | None = None,
) -> dict[str, Any]:
    """Walk-forward evaluation of the decision policy against the ungated engine on the
    held-out symbols; writes JSON + HTML (default `<reports>/evaluation/`) and an MLflow
    run. Returns the payload (`evaluation`, `data`, `run`). An intraday `timeframe` needs
    a minute file as `source` and folds by sessions (`fold_sessions` each, first sessions
    `fold_starts` or the last three blocks); `years` and `max_training_symbols` are for
    daily bars."""
    from features.compute import compute_features
    from models.tracker import MlflowTracker
    from monitoring.evaluation_page import write_evaluation

    started = time.perf_counter()
    settings = load_settings(**(overrides or {}))
    intraday = timeframe != DAILY
    if intraday:
        development, index, folds = intraday_folds(
            source, timeframe, symbols, fold_sessions, fold_starts, embargo_bars, settings)
        held_bars = development
        print(f"evaluating {timeframe} folds {', '.join(f.name for f in folds)} "
              f"({fold_sessions} sessions each) on {', '.join(development['symbol'].unique())}"
              f": {yardstick.OUT_OF_TIME_NOTE}")
    else:
        stocks, index, _ = load_bars(TrainRequest(source=source, include_held_out=True,
                                                  symbols=tuple(symbols) if symbols else None),
                                     settings)
        development, held_bars = yardstick.split_for_evaluation(stocks, max_training_symbols)
        folds = yardstick.walk_forward_folds(
            held_bars["timestamp"], years or yardstick.DEFAULT_YEARS, embargo_bars=embargo_bars)
        print(f"evaluating {', '.join(f.name for f in folds)}: "
              f"{development['symbol'].nunique()} development symbols train, "
              f"{held_bars['symbol'].nunique()} held-out symbols trade")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # data-quality warnings are the ingest's report
        features = compute_features(development, index)
    market = ReplayMarket.from_bars(held_bars, index)
    held_out = build_dataset(held_bars, index, settings,
                             features=market.frame.drop(columns=list(BAR_VALUES)))
    inputs = [(fold, development, index, features, settings, source, timeframe)
              for fold in folds]
    if workers > 1 and len(folds) > 1:
        # The store and experiment exist before two processes write to them at once.
        MlflowTracker(settings.paths.mlflow_tracking_uri,
                      settings.paths.mlflow_artifact_root).experiment_id(yardstick.EXPERIMENT)
        trainings = [future.result() for future in
                     [train_fold.submit(*arguments) for arguments in inputs]]
    else:
        trainings = [train_fold(*arguments) for arguments in inputs]
    judged = [judge_fold(fold, trained, market, held_out, settings)
              for fold, trained in zip(folds, trainings, strict=True)]
    pooled = yardstick.pooled_signal_scores([p for _, p, _ in judged], [w for _, _, w in judged])
    blocks = {"block_sessions": yardstick.INTRADAY_BLOCK_SESSIONS} if intraday else {}
    evaluation = yardstick.summarize([result for result, _, _ in judged], seed=settings.seed,
                                     pooled_scores=pooled, **blocks)
    runs = {fold.name: trained["runs"] | {"training_events": trained["events"]}
            for fold, trained in zip(folds, trainings, strict=True)}
    run: dict[str, Any] = {"source": source, "embargo_bars": embargo_bars, "workers": workers,
                           "fold_runs": runs, "seconds": time.perf_counter() - started}
    data = yardstick.data_section(development, held_bars)
    if intraday:
        evaluation |= {"timeframe": timeframe, "note": yardstick.OUT_OF_TIME_NOTE}
        run |= {"timeframe": timeframe, "fold_sessions": fold_sessions}
        data = yardstick.out_of_time_data_section(development, timeframe)
    payload = {"evaluation": evaluation, "data": data, "run": run}
    files = write_evaluation(payload, Path(json_path) if json_path else
                             settings.paths.reports_dir / "evaluation" / "evaluation.json")
    run.update(mlflow_run_id=log_evaluation(settings, payload, files), json=str(files[0]),
               html=str(files[1]))
    return payload


def intraday_folds(
    source: str, timeframe: str, symbols: list[str] | None, fold_sessions: int,
    fold_starts: list[str] | None, embargo_bars: int, settings: Settings,
) -> tuple[pd.DataFrame, pd.DataFrame, list[EvaluationFold]]:
    """(bars of the development symbols, index bars, session folds) of a minute file, read
    as `train --timeframe` reads it. Held-out symbols are left out (they are never
    trained on, and these folds train on what they trade)."""
    if not Path(source).exists():
        raise ConfigError(f"--timeframe {timeframe} needs --source a minute-bar parquet/CSV "
                          f"file or folder; got {source}", where="evaluate")
    try:
        stocks, index, left_out = load_bars(
            TrainRequest(source=source, timeframe=timeframe,
                         symbols=tuple(symbols) if symbols else None), settings)
    except DataValidationError as error:
        if symbols or "no stock bars" not in str(error):
            raise
        raise ConfigError(f"{source} holds no stock bars of its own; SPY is read as the "
                          "market context unless named: add --symbols SPY",
                          where="evaluate") from None
    if left_out:
        print(f"left out held-out symbols {', '.join(left_out)}: they are never trained on, "
              "and intraday folds train on the symbols they trade")
    folds = yardstick.session_folds(stocks["timestamp"], fold_sessions=fold_sessions,
                                    starts=fold_starts, embargo_bars=embargo_bars)
    return stocks, index, folds
