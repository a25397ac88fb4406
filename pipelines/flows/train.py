"""The `train` flow: the four models on a point-in-time training set, through MODELS'
one training template (walk-forward split with purge and embargo, MLflow logging,
registration). The first registered version of each model becomes `champion`.

The training set: every signal the ungated strategies produce over the window, joined to
the features known at its signal bar and labelled by the triple barrier on the bars after
it (`models.datasets.build_training_data`), plus the per-date market frame the regime
model learns from. Bars before the window only warm the indicators up.

`prepare_training_data` and `train_models` are shared with the `retrain` flow, which
trains the same way without registering and lets the comparison decide."""

from __future__ import annotations

import subprocess
import warnings
from pathlib import Path
from typing import Any

import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from core.errors import DataValidationError
from core.settings import Settings, load_settings

MODEL_ORDER: tuple[str, ...] = (
    "signal_quality",
    "exit_optimizer",
    "regime_classifier",
    "risk_predictor",
)


def trainable_models(names: list[str] | None = None) -> list[Any]:
    """The template's model objects, in a fixed order."""
    from models.exit_optimizer import ExitOptimizerModel
    from models.regime import RegimeModel
    from models.risk import RiskModel
    from models.signal_quality import SignalQualityModel

    every = {
        "signal_quality": SignalQualityModel(),
        "exit_optimizer": ExitOptimizerModel(),
        "regime_classifier": RegimeModel(),
        "risk_predictor": RiskModel(),
    }
    wanted = names or list(MODEL_ORDER)
    unknown = [n for n in wanted if n not in every]
    if unknown:
        raise DataValidationError(
            f"unknown model(s) {unknown}; choose from {', '.join(MODEL_ORDER)}", where="train"
        )
    return [every[n] for n in wanted]


def code_version() -> str:
    """The git commit the code runs from, or 'unknown' outside a checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
            cwd=Path(__file__).resolve().parent,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "unknown"


def build_training_set(
    settings: Settings, symbols: list[str], start: str | None, end: str | None
) -> Any:
    """`TrainingData` for [start, end] from the offline bar store and the feature store's
    closed trades, through MODELS' dataset builder (`pipelines.training`). Nothing after
    `end` is used: bars are read up to `end`, and only trades that closed by `end` join
    (the store may hold later trades from an earlier run)."""
    from pipelines.training import TrainRequest, build_dataset, load_bars, store_trades

    request = TrainRequest(source="store", symbols=tuple(symbols), start=start, end=end)
    stocks, index = load_bars(request, settings)
    trades = store_trades(settings)
    if trades is not None and end is not None:
        closed = pd.to_datetime(trades["exit_time"], utc=True) <= _utc_stamp(end)
        trades = trades.loc[closed] if closed.any() else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return build_dataset(stocks, index, settings, start=start, trades=trades)


def _utc_stamp(value: str) -> pd.Timestamp:
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


@task(cache_policy=NO_CACHE, task_run_name="training-set-{start}-{end}")
def prepare_training_data(
    symbols: list[str], start: str | None, end: str | None, overrides: dict[str, Any]
) -> Any:
    data = build_training_set(load_settings(**overrides), symbols, start, end)
    get_run_logger().info(
        "training set: %d signal events, %d market dates, %d dropped",
        len(data.events),
        len(data.market),
        data.dropped_events,
    )
    return data


@task(cache_policy=NO_CACHE, retries=1, retry_delay_seconds=5, task_run_name="train-{name}")
def train_one(
    name: str, data: Any, register: bool, overrides: dict[str, Any], source: str
) -> dict[str, Any]:
    """One model through the template; registered when `register`."""
    from models.registry import ModelRegistry
    from models.template import TrainingContext, train_model
    from models.tracker import MlflowTracker

    settings = load_settings(**overrides)
    tracking_uri = settings.paths.mlflow_tracking_uri
    (model,) = trainable_models([name])
    result = train_model(
        model,
        data,
        tracker=MlflowTracker(tracking_uri, settings.paths.mlflow_artifact_root),
        registry=ModelRegistry(tracking_uri) if register else None,
        context=TrainingContext(source=source, code_version=code_version(), seed=settings.seed),
    )
    get_run_logger().info("%s: run %s version %s", name, result.run_id, result.version or "-")
    return {
        "name": result.name,
        "version": result.version,
        "run_id": result.run_id,
        "metrics": {k: float(v) for k, v in result.metrics.items()},
        "aliases": result.aliases,
        "seconds": result.seconds,
        "window": list(result.window),
    }


def make_champions(
    tracking_uri: str, trained: dict[str, dict[str, Any]], reason: str
) -> dict[str, dict[str, str]]:
    """Make each freshly registered version the champion (old champion → previous), through
    the registry's own challenger → promote path so every move records its reason."""
    from models.registry import ModelRegistry

    registry = ModelRegistry(tracking_uri)
    moved: dict[str, dict[str, str]] = {}
    for name, info in trained.items():
        version = info.get("version")
        if not version or registry.aliases(name).get("champion") == version:
            moved[name] = registry.aliases(name) if version else {}
            continue
        registry.set_challenger(name, version, reason)
        moved[name] = registry.promote(name, reason)
    return moved


@flow(name="train", log_prints=True)
def train_flow(
    start: str | None = None,
    end: str | None = None,
    symbols: list[str] | None = None,
    models: list[str] | None = None,
    make_champion: bool = False,
    source: str = "sample",
    overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train and register the four models on [start, end]. The first version of a model
    becomes champion; `make_champion` also makes a re-trained version champion."""
    overrides = overrides or {}
    settings = load_settings(**overrides)
    wanted = list(symbols or settings.symbols)
    data: Any = prepare_training_data(wanted, start, end, overrides)
    trained: dict[str, dict[str, Any]] = {}
    for model in trainable_models(models):
        trained[model.name] = train_one(model.name, data, True, overrides, source)
    if make_champion:
        aliases = make_champions(
            settings.paths.mlflow_tracking_uri, trained, "freshly trained by the train flow"
        )
        for name, current in aliases.items():
            trained[name]["aliases"] = current
    return {"models": trained, "events": len(data.events), "window": [start, end]}
