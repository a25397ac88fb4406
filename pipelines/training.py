"""Training composition: bars (sample data, the bar store or files) → features
(`features.compute`) → ungated signals of every strategy (`trading.strategies`) → labels
and the training frame (`models.datasets`) → the training template for each model
(`models.template`), tracked in MLflow and registered.

The first trained version of a model becomes its champion; later versions are
registered without an alias (promotion is a decision: `tradewind models promote`, or the
retrain flow's challenger rule)."""

from __future__ import annotations

import subprocess
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from core.errors import ConfigError, DataValidationError
from core.settings import Settings
from core.symbols import MARKET_CONTEXT_SYMBOLS
from models.datasets import TrainingData, build_training_data
from models.labels import TripleBarrier
from models.registry import MODEL_NAMES, ModelRegistry
from models.template import TrainableModel, TrainingContext, TrainingResult, WalkForwardSplit
from models.tracker import MlflowTracker

TARGETS: dict[str, str] = {
    "signal accuracy": "> 70%",
    "win rate change (gated vs ungated)": "+10%",
    "profit factor change": "+20%",
    "drawdown change": "-20%",
    "prediction latency": "< 50 ms",
}


class TrainRequest(BaseModel):
    """What `tradewind train` asks for."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    models: tuple[str, ...] = MODEL_NAMES
    source: str = "sample"  # sample | store | a parquet/CSV file or folder
    index_source: str | None = None  # where the index series come from, if elsewhere
    symbols: tuple[str, ...] | None = None
    max_symbols: int | None = Field(None, ge=1)
    start: str | None = None
    end: str | None = None
    regime_horizon: int = Field(20, ge=2)
    include_store_trades: bool = True


@dataclass(frozen=True)
class TrainingReport:
    results: list[TrainingResult]
    data: TrainingData
    source: str


def model_for(name: str) -> TrainableModel:
    from models.exit_optimizer import ExitOptimizerModel
    from models.regime import RegimeModel
    from models.risk import RiskModel
    from models.signal_quality import SignalQualityModel

    builders: dict[str, Callable[[], TrainableModel]] = {
        "signal_quality": SignalQualityModel,
        "exit_optimizer": ExitOptimizerModel,
        "regime_classifier": RegimeModel,
        "risk_predictor": RiskModel,
    }
    if name not in builders:
        raise ConfigError(
            f"unknown model '{name}'; choose from all, {', '.join(MODEL_NAMES)}", where="train"
        )
    return builders[name]()


def code_version() -> str:
    """The git commit of the working tree (with `-dirty` when it has changes), if any."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{sha}-dirty" if dirty else sha


def load_bars(request: TrainRequest, settings: Settings) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(stock bars, index bars) from the requested source(s), up to `end`."""
    bars = _read_source(request.source, settings, request.end)
    if request.index_source is not None:
        index = _read_source(request.index_source, settings, request.end)
        index = index.loc[index["symbol"].isin(MARKET_CONTEXT_SYMBOLS)]
    else:
        index = bars.loc[bars["symbol"].isin(MARKET_CONTEXT_SYMBOLS)]
    # Index series are market context, not trade candidates (unless asked for by name).
    names = sorted(set(bars["symbol"].unique()) - MARKET_CONTEXT_SYMBOLS)
    if request.symbols:
        wanted = [s.upper() for s in request.symbols]
        unknown = sorted(set(wanted) - set(bars["symbol"].unique()))
        if unknown:
            raise DataValidationError(f"no bars for {', '.join(unknown)} in {request.source}",
                                      where="train")
        names = wanted
    if request.max_symbols:
        names = names[: request.max_symbols]
    stocks = bars.loc[bars["symbol"].isin(names)]
    if stocks.empty:
        raise DataValidationError(f"no stock bars in {request.source}", where="train")
    return _float_bars(stocks), _float_bars(index)


def _read_source(source: str, settings: Settings, end: str | None) -> pd.DataFrame:
    """Bars up to `end` from `source`: `sample`, `store`, or a bar file/folder (repaired)."""
    from trading.adapters.registry import SourceContext, market_data

    if source not in ("sample", "store") and not Path(source).exists():
        raise ConfigError(
            f"--source must be 'sample', 'store' or an existing file/folder; got {source}",
            where="train",
        )
    config = {"type": source} if source in ("sample", "store") else {
        "type": "files", "path": Path(source), "repair": True
    }
    return market_data(config, SourceContext.from_settings(settings)).history(end=end)


def _float_bars(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame[["symbol", "timestamp", "open", "high", "low", "close", "volume"]].copy()
    for column in ("open", "high", "low", "close", "volume"):
        out[column] = out[column].astype("float64")
    return out.sort_values(["symbol", "timestamp"], kind="stable").reset_index(drop=True)


def build_dataset(
    stocks: pd.DataFrame,
    index: pd.DataFrame,
    settings: Settings,
    *,
    start: str | None = None,
    regime_horizon: int = 20,
    trades: pd.DataFrame | None = None,
) -> TrainingData:
    """Features → ungated signals (+ the entries of closed trades the engine collected)
    → labelled training data."""
    from features.compute import compute_features
    from trading.strategies import STRATEGIES

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # data-quality warnings are the ingest's report
        features = compute_features(stocks, index if len(index) else None)
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
    barrier = TripleBarrier(
        stop_loss_atr=settings.risk.stop_loss_atr,
        take_profit_atr=settings.risk.take_profit_atr,
        max_holding_bars=settings.risk.max_holding_bars,
        commission_per_share=settings.broker.commission_per_share,
        slippage_bps=settings.broker.slippage_bps,
    )
    return build_training_data(stocks, features, signals, index_bars=index, barrier=barrier,
                               regime_horizon=regime_horizon)


def add_trade_events(
    signals: pd.DataFrame, trades: pd.DataFrame, bars: pd.DataFrame
) -> pd.DataFrame:
    """The signals plus one event per closed trade of the feature store: its signal bar is
    the last bar before the entry fill. Trades are relabelled with the same triple barrier
    on the bars (one label definition for every row); a trade whose signal is already
    among the strategy signals is not counted twice."""
    known = trades.loc[trades["symbol"].isin(set(bars["symbol"]))]
    if known.empty:
        return signals
    entries = pd.DataFrame({
        "symbol": known["symbol"].astype(str).to_numpy(),
        "entry_time": pd.to_datetime(known["entry_time"], utc=True).to_numpy(),
        "side": known["side"].astype(str).str.lower().to_numpy(),
        "strategy": known["strategy"].astype(str).to_numpy(),
    }).sort_values("entry_time")
    stamps = bars[["symbol", "timestamp"]].sort_values("timestamp")
    located = pd.merge_asof(
        entries, stamps.rename(columns={"timestamp": "signal_time"}),
        left_on="entry_time", right_on="signal_time", by="symbol",
        allow_exact_matches=False, direction="backward",
    ).dropna(subset=["signal_time"])
    events = pd.DataFrame({
        "symbol": located["symbol"], "timestamp": located["signal_time"],
        "side": located["side"], "strategy": located["strategy"],
        "price": float("nan"), "reason": "closed trade",
    })
    combined = pd.concat([signals, events], ignore_index=True)
    return combined.drop_duplicates(subset=["symbol", "timestamp", "side", "strategy"])


def store_trades(settings: Settings) -> pd.DataFrame | None:
    """Closed trades collected in the feature store, if any."""
    from features.store import FeatureStore

    trades = FeatureStore(settings.paths, settings.feature_store).read_trades()
    return trades if len(trades) else None


def train_models(
    data: TrainingData,
    names: Sequence[str],
    settings: Settings,
    *,
    source: str,
    tracking_uri: str | None = None,
    artifact_root: Path | None = None,
    split: WalkForwardSplit | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[TrainingResult]:
    """Train, log and register each named model on the same training data."""
    uri = tracking_uri or settings.paths.mlflow_tracking_uri
    tracker = MlflowTracker(uri, artifact_root or settings.paths.mlflow_artifact_root)
    registry = ModelRegistry(uri)
    context = TrainingContext(source=source, code_version=code_version(), seed=settings.seed,
                              split=split or WalkForwardSplit())
    return [
        train_model_named(name, data, tracker, registry, context, progress) for name in names
    ]


def train_model_named(
    name: str,
    data: TrainingData,
    tracker: MlflowTracker,
    registry: ModelRegistry,
    context: TrainingContext,
    progress: Callable[[str], None] | None,
) -> TrainingResult:
    from models.template import train_model

    return train_model(model_for(name), data, tracker=tracker, registry=registry,
                       context=context, progress=progress)


def run_training(
    request: TrainRequest,
    settings: Settings,
    progress: Callable[[str], None] | None = None,
) -> TrainingReport:
    """The whole `tradewind train`: load, build, train every requested model."""
    for name in request.models:
        model_for(name)  # fail on a bad name before any work
    say = progress or (lambda _message: None)
    say(f"loading bars from {request.source}")
    stocks, index = load_bars(request, settings)
    say(f"computing features and signals for {stocks['symbol'].nunique()} symbols")
    trades = store_trades(settings) if request.include_store_trades else None
    if trades is not None:
        say(f"{len(trades)} closed trades from the feature store")
    data = build_dataset(stocks, index, settings, start=request.start,
                         regime_horizon=request.regime_horizon, trades=trades)
    say(f"{len(data.events)} labelled signals, {len(data.market)} market days "
        f"(index {data.index_symbol})")
    results = train_models(data, request.models, settings, source=request.source,
                           progress=progress)
    return TrainingReport(results=results, data=data, source=request.source)


def measure_latency(
    tracking_uri: str, alias: str = "champion", calls: int = 200
) -> dict[str, Any]:
    """Single-row latency of all four models plus the OOD flag through `ModelSet`
    (in-process, one row of zeros): p50/p99 in milliseconds and what ran each model."""
    import time

    import numpy as np

    from models.loading import load_model_set

    model_set = load_model_set(tracking_uri, alias)
    row = pd.DataFrame(np.zeros((1, len(model_set.feature_names))),
                       columns=model_set.feature_names)
    timings = []
    for call in range(calls + 20):
        started = time.perf_counter()
        model_set.win_probability(row)
        model_set.exits(row)
        model_set.regime_probabilities(row)
        model_set.drawdown(row)
        model_set.out_of_distribution(row)
        if call >= 20:  # the first calls warm caches up
            timings.append((time.perf_counter() - started) * 1000)
    return {
        "p50_ms": float(np.percentile(timings, 50)),
        "p99_ms": float(np.percentile(timings, 99)),
        "runtimes": model_set.runtimes,
    }
