"""The one training entry point, for `tradewind train` and the train/retrain flows alike:
bars (sample data, the bar store or files) → features (`features.compute`) → ungated
signals of every strategy (`trading.strategies`) → labels and the training frame
(`models.datasets`) → the training template for each model (`models.template`), tracked
in MLflow and, unless asked not to, registered.

Held-out symbols (`core.universe`) are left out of training unless the request includes
them (`--include-held-out`, for production use): they are what the evaluation and the
demo trade. The first trained version of a model becomes its champion; later versions are
registered without an alias (promotion is a decision: `tradewind models promote`, the
train flow's `make_champion`, or the retrain flow's challenger rule). Every run is tagged
with `models.provenance.code_version()`."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator

from core.bars import DAILY, bars_at_timeframe, check_timeframe
from core.errors import ConfigError
from core.settings import Settings
from core.utc import utc_timestamp
from models.datasets import (
    TrainingData,
    add_trade_events,
    build_training_data,
    training_universe,
)
from models.labels import REGIME_HORIZON, TripleBarrier
from models.registry import MODEL_NAMES
from models.template import TrainingResult, WalkForwardSplit
from models.tracker import Tracker

TRAINING_SOURCES: tuple[str, ...] = ("sp500", "sample", "store")


class TrainRequest(BaseModel):
    """What `tradewind train` asks for."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    models: tuple[str, ...] = MODEL_NAMES
    source: str = "sp500"  # sp500 | sample | store | a parquet/CSV file or folder
    index_source: str | None = None  # where the index series come from, if elsewhere
    symbols: tuple[str, ...] | None = None
    max_symbols: int | None = Field(None, ge=1)
    start: str | None = None
    end: str | None = None
    regime_horizon: int = Field(REGIME_HORIZON, ge=2)
    include_store_trades: bool = True
    include_held_out: bool = False  # train on the held-out symbols too (production use)
    # The bars to learn from: 1Day, or intraday bars from an intraday file (coarser ones
    # made of finer bars); recorded with every registered version.
    timeframe: str = DAILY

    @field_validator("timeframe")
    @classmethod
    def _known_timeframe(cls, value: str) -> str:
        return check_timeframe(value)


@dataclass(frozen=True)
class TrainingReport:
    results: list[TrainingResult]
    data: TrainingData
    source: str
    held_out_left_out: int = 0


def load_bars(
    request: TrainRequest, settings: Settings
) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """(stock bars, index bars, the held-out symbols left out) from the requested
    source(s), up to `end`. Held-out symbols are left out unless the request includes
    them; naming only held-out symbols is then an error."""
    from core.symbols import CONTEXT_ONLY_SYMBOLS
    from core.universe import split_universe

    bars = _read_source(request.source, settings, request.end, request.timeframe)
    index = bars if request.index_source is None else _read_source(
        request.index_source, settings, request.end, request.timeframe
    )
    symbols, left_out = request.symbols, list[str]()
    if not request.include_held_out:
        development, left_out = split_universe(
            request.symbols or set(bars["symbol"]) - CONTEXT_ONLY_SYMBOLS)
        if left_out and not development:
            raise ConfigError(f"every requested symbol is held out ({', '.join(left_out[:5])})"
                              "; --include-held-out trains on them anyway", where="train")
        bars = bars.loc[~bars["symbol"].isin(left_out)]
        symbols = tuple(development) if request.symbols else None
    stocks, index = training_universe(bars, index, symbols=symbols,
                                      max_symbols=request.max_symbols, source=request.source)
    return stocks, index, left_out


def _read_source(
    source: str, settings: Settings, end: str | None, timeframe: str = DAILY
) -> pd.DataFrame:
    """Bars of `timeframe` up to `end` from `source`: an embedded source (`sp500`,
    `sample`: daily only), the offline bar store (`store`), or a bar file/folder
    (repaired; intraday files read as they are, then made coarser if asked)."""
    from trading.adapters.registry import SourceContext, market_data

    if source in TRAINING_SOURCES:
        config: dict[str, object] = {"type": source}
    elif Path(source).exists():
        config = {"type": "files", "path": Path(source), "repair": True}
    else:
        raise ConfigError(
            f"--source must be one of {', '.join(TRAINING_SOURCES)} or an existing "
            f"file/folder; got {source}",
            where="train",
        )
    data = market_data(config, SourceContext.from_settings(settings))
    if timeframe == DAILY or source in TRAINING_SOURCES:
        return data.history(end=end, timeframe=timeframe)
    # Intraday files: read without daily session stamps, at their own spacing.
    bars = data.history(end=end, timeframe="1Min")
    return bars_at_timeframe(bars, timeframe, where=f"--timeframe {timeframe} of {source}")


def build_dataset(
    stocks: pd.DataFrame,
    index: pd.DataFrame,
    settings: Settings,
    *,
    start: str | None = None,
    regime_horizon: int = REGIME_HORIZON,
    trades: pd.DataFrame | None = None,
    features: pd.DataFrame | None = None,
) -> TrainingData:
    """Features → ungated signals (+ the entries of closed trades the engine collected)
    → labelled training data. `features` may come precomputed over a longer history
    (they are causal: a row depends on bars up to its own only); rows past the last bar
    of `stocks` are cut off."""
    from features.compute import compute_features
    from trading.strategies import STRATEGIES

    if features is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # data-quality warnings are the ingest's report
            features = compute_features(stocks, index if len(index) else None)
    else:
        inside = features["symbol"].isin(set(stocks["symbol"])) & (
            features["timestamp"] <= stocks["timestamp"].max())
        features = features.loc[inside]
    history = _index_history(index) if len(index) else None  # the regime model's rows
    merged = stocks.merge(features, on=["symbol", "timestamp"], how="inner")
    signals = pd.concat(
        [strategy.signals_frame(merged) for strategy in STRATEGIES.values()], ignore_index=True
    )
    sides = {"buy", "sell"} if settings.risk.allow_short else {"buy"}
    signals = signals.loc[signals["side"].isin(sides)]
    if trades is not None and len(trades):
        signals = add_trade_events(signals, trades, stocks)
    if start is not None:
        signals = signals.loc[signals["timestamp"] >= pd.Timestamp(start, tz="UTC")]
        index = index.loc[index["timestamp"] >= pd.Timestamp(start, tz="UTC")]
        features = features.loc[features["timestamp"] >= pd.Timestamp(start, tz="UTC")]
        if history is not None:
            history = history.loc[history["timestamp"] >= pd.Timestamp(start, tz="UTC")]
    return build_training_data(stocks, features, signals, index_bars=index,
                               barrier=TripleBarrier.from_settings(settings),
                               regime_horizon=regime_horizon, index_features=history)


def _index_history(index: pd.DataFrame) -> pd.DataFrame:
    """The index's market features per index bar: per session for daily bars, per bar
    (annualised by the bars' own frequency) for intraday ones."""
    from features.compute import bar_frequency, index_features
    from features.technical import TRADING_DAYS_PER_YEAR

    yearly = bar_frequency(index)
    if yearly > 1.5 * TRADING_DAYS_PER_YEAR:
        return index_features(index, bars_per_year=yearly, daily=False)
    return index_features(index)


def store_trades(settings: Settings) -> pd.DataFrame | None:
    """Closed trades collected in the feature store, if any."""
    from features.store import FeatureStore

    trades = FeatureStore(settings.paths, settings.feature_store).read_trades()
    return trades if len(trades) else None


def build_training_set(
    settings: Settings, symbols: list[str], start: str | None, end: str | None,
    *, include_held_out: bool = False,
) -> TrainingData:
    """`TrainingData` for [start, end] from the offline bar store and the feature store's
    closed trades. Nothing after `end` is used: bars are read up to `end`, and only trades
    that closed by `end` join (the store may hold later trades from an earlier run).
    Held-out symbols are left out unless `include_held_out` (labelled events to judge a
    model on, not to train it)."""
    request = TrainRequest(source="store", symbols=tuple(symbols), start=start, end=end,
                           include_held_out=include_held_out)
    stocks, index, _ = load_bars(request, settings)
    trades = store_trades(settings)
    if trades is not None and end is not None:
        closed = pd.to_datetime(trades["exit_time"], utc=True) <= utc_timestamp(end)
        trades = trades.loc[closed] if closed.any() else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return build_dataset(stocks, index, settings, start=start, trades=trades)


def train_models(
    data: TrainingData,
    names: list[str] | tuple[str, ...],
    settings: Settings,
    *,
    source: str,
    register: bool = True,
    split: WalkForwardSplit | None = None,
    progress: Callable[[str], None] | None = None,
    tracker: Tracker | None = None,
    timeframe: str = DAILY,
) -> list[TrainingResult]:
    """Train and log each named model on the same training data through the template,
    registering each new version when `register`. `tracker` replaces the default (one
    experiment per model in the settings' MLflow store)."""
    from models.catalogue import models_for
    from models.provenance import code_version
    from models.registry import ModelRegistry
    from models.template import TrainingContext, train_model
    from models.tracker import MlflowTracker

    uri = settings.paths.mlflow_tracking_uri
    tracker = tracker or MlflowTracker(uri, settings.paths.mlflow_artifact_root)
    registry = ModelRegistry(uri) if register else None
    context = TrainingContext(source=source, code_version=code_version(), seed=settings.seed,
                              split=split or WalkForwardSplit(), timeframe=timeframe)
    return [
        train_model(model, data, tracker=tracker, registry=registry, context=context,
                    progress=progress)
        for model in models_for(names, settings)
    ]


def run_training(
    request: TrainRequest,
    settings: Settings,
    progress: Callable[[str], None] | None = None,
) -> TrainingReport:
    """The whole `tradewind train`: load, build, train every requested model."""
    from models.catalogue import models_for

    models_for(request.models)  # fail on a bad name before any work
    say = progress or (lambda _message: None)
    say(f"loading {request.timeframe} bars from {request.source}")
    stocks, index, left_out = load_bars(request, settings)
    if left_out:
        say(f"left out {len(left_out)} held-out symbols (kept for evaluation; "
            "--include-held-out trains on them)")
    say(f"computing features and signals for {stocks['symbol'].nunique()} symbols")
    trades = store_trades(settings) if request.include_store_trades else None
    if trades is not None:
        say(f"{len(trades)} closed trades from the feature store")
    data = build_dataset(stocks, index, settings, start=request.start,
                         regime_horizon=request.regime_horizon, trades=trades)
    say(f"{len(data.events)} labelled signals, {len(data.market)} market rows "
        f"(index {data.index_symbol})")
    results = train_models(data, request.models, settings, source=request.source,
                           progress=progress, timeframe=request.timeframe)
    return TrainingReport(results=results, data=data, source=request.source,
                          held_out_left_out=len(left_out))
