"""The `optimize` flow: Bayesian search (Optuna, TPE sampler with a fixed seed) over one
strategy's entry parameters and its exits, on the in-sample window, then ONE evaluation
of the best parameters (and of the current defaults, for comparison) on the out-of-time
window that the search never saw. The result is a proposal file under
`<reports_dir>/optimization/` that a user reads and accepts by hand (the settings keys and
strategy config to change are in it); nothing is applied automatically.

Each trial is a full replay of the trading engine (`trading.backtest.build_engine` with the
simulated broker and the rules client, ungated), so costs, risk limits and exits are the
ones live trading uses. Features are computed once over the whole history (warm
lookbacks); every trial only rebuilds the strategy's signals and replays the in-sample bars.

The in-sample window is the champion signal_quality model's training window when there is a
champion (its run tags), else all but the last `out_of_time_fraction` of the stored bars;
the out-of-time window runs from its end to the last bar.

Objective: the in-sample annualised Sharpe ratio of the equity curve. A trial with fewer
than `min_trades` closed trades scores `-1 + trades / min_trades` (below any real Sharpe
worth having), so the search cannot win by barely trading."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from core.errors import ConfigError, DataValidationError
from core.settings import Settings, load_settings

STRATEGY_NAMES = ("momentum", "mean_reversion", "breakout")
# Exit parameters searched for every strategy, as (low, high) of the settings' risk section.
EXIT_SPACE: dict[str, tuple[float, float]] = {
    "stop_loss_atr": (1.0, 4.0),
    "take_profit_atr": (1.0, 6.0),
}
HOLDING_SPACE = (5, 40)


@dataclass(frozen=True)
class Window:
    in_sample: tuple[pd.Timestamp, pd.Timestamp]  # [start, end)
    out_of_time: tuple[pd.Timestamp, pd.Timestamp]  # [start, end]


def _utc(value: str | pd.Timestamp) -> pd.Timestamp:
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def split_window(
    timestamps: pd.Series,
    *,
    train_start: str | None,
    train_end: str | None,
    test_end: str | None,
    out_of_time_fraction: float,
) -> Window:
    """In-sample and out-of-time windows. Without explicit dates the last
    `out_of_time_fraction` of the distinct bar times is out of time."""
    unique = pd.Series(pd.to_datetime(timestamps, utc=True).unique()).sort_values(
        ignore_index=True
    )
    if len(unique) < 50:
        raise DataValidationError(
            f"only {len(unique)} bar times; need at least 50 to optimize", where="optimize"
        )
    start = _utc(train_start) if train_start else unique.iloc[0]
    end_all = _utc(test_end) if test_end else unique.iloc[-1]
    if train_end:
        boundary = _utc(train_end)
    else:
        inside = unique[(unique >= start) & (unique <= end_all)]
        cut = int(len(inside) * (1 - out_of_time_fraction))
        if cut <= 0 or cut >= len(inside):
            raise DataValidationError("the window is too short to split", where="optimize")
        boundary = inside.iloc[cut]
    if not start < boundary <= end_all:
        raise ConfigError(
            f"windows out of order: train {start.date()}..{boundary.date()}, "
            f"test until {end_all.date()}",
            where="optimize",
        )
    return Window((start, boundary), (boundary, end_all))


def strategy_params(trial: Any, strategy: str) -> dict[str, Any]:
    """The search space: the strategy's entry parameters plus the exits."""
    params: dict[str, Any] = {}
    if strategy == "momentum":
        fast = trial.suggest_int("fast", 5, 20)
        params = {"fast": fast, "slow": fast + trial.suggest_int("slow_gap", 5, 40)}
    elif strategy == "mean_reversion":
        params = {
            "oversold": trial.suggest_float("oversold", 15.0, 40.0),
            "overbought": trial.suggest_float("overbought", 60.0, 85.0),
        }
    elif strategy == "breakout":
        params = {"volume_multiple": trial.suggest_float("volume_multiple", 1.0, 3.5)}
    else:
        raise ConfigError(
            f"unknown strategy '{strategy}'; choose one of {', '.join(STRATEGY_NAMES)}",
            where="optimize",
        )
    for name, (low, high) in EXIT_SPACE.items():
        params[name] = trial.suggest_float(name, low, high)
    params["max_holding_bars"] = trial.suggest_int("max_holding_bars", *HOLDING_SPACE)
    return params


def as_trial_values(strategy: str, params: dict[str, Any]) -> dict[str, Any]:
    """Parameters in the search space's own coordinates (momentum searches the gap)."""
    values = dict(params)
    if strategy == "momentum":
        values["slow_gap"] = values.pop("slow") - values["fast"]
    return values


def default_params(strategy: str, settings: Settings) -> dict[str, Any]:
    """The parameters in force today (strategy defaults + the settings' exits)."""
    instance = make_strategy(strategy, {})
    config = instance.config.model_dump() if hasattr(instance, "config") else {}
    config = {k: v for k, v in config.items() if k in _ENTRY_KEYS[strategy]}
    return {
        **config,
        "stop_loss_atr": settings.risk.stop_loss_atr,
        "take_profit_atr": settings.risk.take_profit_atr,
        "max_holding_bars": settings.risk.max_holding_bars,
    }


_ENTRY_KEYS = {
    "momentum": ("fast", "slow"),
    "mean_reversion": ("oversold", "overbought"),
    "breakout": ("volume_multiple",),
}


def make_strategy(strategy: str, params: dict[str, Any]) -> Any:
    """A strategy instance configured with the entry part of `params`."""
    from trading.strategies import (
        BreakoutConfig,
        BreakoutStrategy,
        MeanReversionConfig,
        MeanReversionStrategy,
        MomentumConfig,
        MomentumStrategy,
    )

    entry = {k: v for k, v in params.items() if k in _ENTRY_KEYS.get(strategy, ())}
    if strategy == "momentum":
        return MomentumStrategy(MomentumConfig(**entry))
    if strategy == "mean_reversion":
        return MeanReversionStrategy(MeanReversionConfig(**entry))
    if strategy == "breakout":
        return BreakoutStrategy(BreakoutConfig(**entry))
    raise ConfigError(f"unknown strategy '{strategy}'", where="optimize")


def with_exits(settings: Settings, params: dict[str, Any]) -> Settings:
    risk = settings.risk.model_copy(
        update={
            "stop_loss_atr": float(params["stop_loss_atr"]),
            "take_profit_atr": float(params["take_profit_atr"]),
            "max_holding_bars": int(params["max_holding_bars"]),
        }
    )
    return settings.model_copy(update={"risk": risk})


class Replayer:
    """Replays a window of bars through the engine with given parameters. The feature
    frame is computed once; each call rebuilds the strategy's signals only."""

    def __init__(self, bars: pd.DataFrame, settings: Settings) -> None:
        from trading.backtest import split_context
        from trading.feed import compute_feature_frame

        self.settings = settings
        self.tradable, self.context = split_context(bars)
        if self.tradable.empty:
            raise DataValidationError("no tradable bars to optimize on", where="optimize")
        self.frame = compute_feature_frame(self.tradable, self.context)
        order = np.lexsort(
            (self.frame["symbol"].to_numpy(), self.frame["timestamp"].to_numpy())
        )
        self._ordered = self.frame.iloc[order].reset_index(drop=True)

    def run(
        self, strategy: str, params: dict[str, Any], start: pd.Timestamp, end: pd.Timestamp,
        *, include_end: bool = False,
    ) -> dict[str, Any]:
        from core.clock import ReplayClock
        from trading.backtest import build_engine, replay
        from trading.feed import PrecomputedFeed
        from trading.journal import Journal
        from trading.report import compute_metrics

        settings = with_exits(self.settings, params)
        feed = PrecomputedFeed(self.tradable, [make_strategy(strategy, params)], frame=self.frame)
        stamps = self._ordered["timestamp"]
        inside = (stamps >= start) & ((stamps <= end) if include_end else (stamps < end))
        rows = self._ordered[inside]
        if rows.empty:
            raise DataValidationError(
                f"no bars between {start.date()} and {end.date()}", where="optimize"
            )
        timestamps = [stamp.to_pydatetime() for stamp in rows["timestamp"]]
        clock = ReplayClock(timestamps[0])
        journal = Journal("sqlite://", batch_size=5_000)
        engine, matching = build_engine(
            settings=settings, clock=clock, feed=feed, strategy=strategy, model_client=None,
            journal=journal, gate_enabled=False, trade_sink=None, exchange=None,
        )
        columns = [rows[c].to_numpy(dtype=np.float64) for c in ("open", "high", "low", "close",
                                                                 "volume")]
        replay(engine, matching, clock, rows["symbol"].to_numpy(), timestamps, columns)
        metrics = compute_metrics(
            journal.equity(), journal.trades(), starting_equity=matching.config.starting_cash,
            bars_per_year=252.0,
        )
        journal.close()
        keep = ("trades", "win_rate", "profit_factor", "sharpe", "max_drawdown",
                "total_return", "average_trade_return")
        return {key: metrics.get(key) for key in keep}


def objective_value(metrics: dict[str, Any], min_trades: int) -> float:
    """Sharpe, or a penalty below any useful Sharpe when there are too few trades."""
    trades = int(metrics.get("trades") or 0)
    if trades < min_trades:
        return -1.0 + trades / max(min_trades, 1)
    sharpe = metrics.get("sharpe")
    return float(sharpe) if sharpe is not None and np.isfinite(sharpe) else -1.0


def _champion_window(tracking_uri: str) -> dict[str, Any] | None:
    """The champion's training window (start, end of the fitted rows), or None without one."""
    from core.errors import NotFoundError
    from pipelines.tasks import champion_training_window

    try:
        return dict(champion_training_window.fn(tracking_uri))
    except NotFoundError:
        return None


@task(name="load-optimization-bars", retries=2, retry_delay_seconds=3)
def load_bars(symbols: list[str], timeframe: str, overrides: dict[str, Any]) -> pd.DataFrame:
    """Stored bars of the symbols plus the index series (market context)."""
    from features.bar_store import BarStore

    settings = load_settings(**overrides)
    store = BarStore(settings.paths.bars_dir)
    stored = set(store.symbols(timeframe))
    wanted = [s for s in symbols if s in stored]
    if not wanted:
        raise ConfigError(
            f"no stored bars for {', '.join(symbols)} ({timeframe}); run the ingest flow first",
            where="optimize",
        )
    context = sorted(stored & {"SPX", "COMP", "VIX"})
    return store.read(symbols=sorted(set(wanted) | set(context)), timeframe=timeframe)


@task(name="optuna-search", cache_policy=NO_CACHE)
def search(
    replayer: Replayer, strategy: str, window: Window, trials: int, seed: int, min_trades: int,
    start_from: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """TPE search on the in-sample window; the out-of-time window is not touched. The first
    trial is `start_from` (today's parameters) when given, so the proposal is never worse
    in sample than what runs now."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logger = get_run_logger()
    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        study_name=f"optimize-{strategy}",
    )
    if start_from is not None:
        study.enqueue_trial(as_trial_values(strategy, start_from), skip_if_exists=True)

    def objective(trial: optuna.Trial) -> float:
        params = strategy_params(trial, strategy)
        metrics = replayer.run(strategy, params, *window.in_sample)
        trial.set_user_attr("params", params)
        trial.set_user_attr("metrics", metrics)
        return objective_value(metrics, min_trades)

    study.optimize(objective, n_trials=trials)
    best = study.best_trial
    logger.info("best in-sample objective %.3f after %d trials", best.value, trials)
    history = [
        {"number": t.number, "value": t.value, **t.user_attrs.get("params", {})}
        for t in study.trials
    ]
    return {
        "objective": float(study.best_value),
        "params": best.user_attrs["params"],
        "in_sample": best.user_attrs["metrics"],
        "history": history,
    }


def _proposal_markdown(proposal: dict[str, Any]) -> str:
    rows = ["| metric | default in-sample | best in-sample | default out-of-time | "
            "best out-of-time |", "|---|---|---|---|---|"]
    for key in ("trades", "win_rate", "profit_factor", "sharpe", "max_drawdown", "total_return"):
        values = [
            proposal["baseline"]["in_sample"].get(key),
            proposal["in_sample"].get(key),
            proposal["baseline"]["out_of_time"].get(key),
            proposal["out_of_time"].get(key),
        ]
        cells = " | ".join("—" if v is None else f"{v:.4g}" for v in values)
        rows.append(f"| {key} | {cells} |")
    params = "\n".join(
        f"- `{k}`: {proposal['baseline']['params'].get(k)} → **{v}**"
        for k, v in proposal["params"].items()
    )
    return (
        f"## Optimization proposal: {proposal['strategy']}\n\n"
        f"{proposal['trials']} TPE trials (seed {proposal['seed']}) on "
        f"{proposal['windows']['in_sample'][0][:10]} → {proposal['windows']['in_sample'][1][:10]}"
        f"; evaluated once out of time on {proposal['windows']['out_of_time'][0][:10]} → "
        f"{proposal['windows']['out_of_time'][1][:10]}.\n\n{params}\n\n" + "\n".join(rows)
        + f"\n\nProposal file: `{proposal['path']}`. Nothing was applied."
    )


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float):
        return round(value, 6) if np.isfinite(value) else None
    return value


@flow(name="optimize", log_prints=True)
def optimize_flow(
    strategy: str = "momentum",
    trials: int = 30,
    seed: int | None = None,
    symbols: list[str] | None = None,
    timeframe: str = "1Day",
    train_start: str | None = None,
    train_end: str | None = None,
    test_end: str | None = None,
    out_of_time_fraction: float = 0.25,
    min_trades: int = 20,
    use_champion_window: bool = True,
    market_days_only: bool = False,
    overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Search, evaluate out of time once, write the proposal (see the module)."""
    import yaml
    from prefect.artifacts import create_markdown_artifact

    from pipelines.flows.gate import market_day_gate

    logger = get_run_logger()
    if strategy not in STRATEGY_NAMES:
        raise ConfigError(
            f"unknown strategy '{strategy}'; choose one of {', '.join(STRATEGY_NAMES)}",
            where="optimize",
        )
    if trials < 1:
        raise ConfigError("trials must be at least 1", where="optimize")
    if market_days_only:
        day = market_day_gate(None, flow_name="optimize")
        if not day.is_session:
            logger.info("skipped: %s", day.reason)
            return {"skipped": True, "reason": day.reason}
    overrides = overrides or {}
    settings = load_settings(**overrides)
    seed = settings.seed if seed is None else seed
    bars = load_bars(list(symbols or settings.symbols), timeframe, overrides)
    replayer = Replayer(bars, settings)
    window_source = "explicit dates" if train_start or train_end else (
        f"last {out_of_time_fraction:.0%} of the history out of time"
    )
    if use_champion_window and not (train_start or train_end):
        champion = _champion_window(settings.paths.mlflow_tracking_uri)
        if champion is not None:
            train_start, train_end = champion["start"], champion["end"]
            window_source = (
                f"the champion signal_quality v{champion['version']} training window"
            )
    window = split_window(
        replayer.frame["timestamp"], train_start=train_start, train_end=train_end,
        test_end=test_end, out_of_time_fraction=out_of_time_fraction,
    )
    baseline_params = default_params(strategy, settings)
    found = search(replayer, strategy, window, trials, seed, min_trades, baseline_params)
    best = found["params"]
    out_of_time = replayer.run(strategy, best, *window.out_of_time, include_end=True)
    baseline = {
        "params": baseline_params,
        "in_sample": replayer.run(strategy, baseline_params, *window.in_sample),
        "out_of_time": replayer.run(
            strategy, baseline_params, *window.out_of_time, include_end=True
        ),
    }
    proposed_sharpe = out_of_time.get("sharpe")
    default_sharpe = baseline["out_of_time"].get("sharpe")
    better_out_of_time = (
        proposed_sharpe is not None and default_sharpe is not None
        and proposed_sharpe > default_sharpe
    )
    created = datetime.now(UTC)
    folder = settings.paths.reports_dir / "optimization"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"proposal-{strategy}-{created:%Y%m%dT%H%M%S}.yaml"
    entry = {k: v for k, v in best.items() if k in _ENTRY_KEYS[strategy]}
    proposal: dict[str, Any] = _clean(
        {
            "strategy": strategy,
            "created_at": created.isoformat(),
            "status": "proposed (not applied)",
            "recommendation": (
                "consider accepting: better out-of-time Sharpe than the current parameters"
                if better_out_of_time
                else "keep the current parameters: the proposal does not beat them out of time"
            ),
            "objective": "in-sample annualised Sharpe; penalised below "
            f"{min_trades} closed trades",
            "sampler": "optuna TPESampler",
            "seed": seed,
            "trials": trials,
            "symbols": sorted(replayer.tradable["symbol"].unique().tolist()),
            "windows": {
                "source": window_source,
                "in_sample": [str(window.in_sample[0]), str(window.in_sample[1])],
                "out_of_time": [str(window.out_of_time[0]), str(window.out_of_time[1])],
            },
            "params": best,
            "in_sample": found["in_sample"],
            "out_of_time": out_of_time,
            "baseline": baseline,
            "accept": {
                "settings": {
                    "risk": {
                        "stop_loss_atr": best["stop_loss_atr"],
                        "take_profit_atr": best["take_profit_atr"],
                        "max_holding_bars": best["max_holding_bars"],
                    }
                },
                f"{strategy}_config": entry,
                "how": "copy the settings block into tradewind.yaml and the strategy config "
                "into the strategy's defaults after reviewing the out-of-time figures",
            },
            "history": found["history"],
        }
    )
    proposal["path"] = str(path)
    path.write_text(yaml.safe_dump(proposal, sort_keys=False), encoding="utf-8")
    create_markdown_artifact(
        key=f"optimization-{strategy.replace('_', '-')}",
        markdown=_proposal_markdown(proposal),
        description=f"optimization proposal for {strategy}",
    )
    logger.info("proposal written to %s", path)
    return {k: v for k, v in proposal.items() if k != "history"}


def read_proposal(path: str) -> dict[str, Any]:
    """A proposal file back as a dict (for review tooling and tests)."""
    import yaml

    with open(path, encoding="utf-8") as handle:
        loaded = yaml.safe_load(handle)
    if not isinstance(loaded, dict):
        raise DataValidationError(f"{path} is not an optimization proposal", where="optimize")
    return json.loads(json.dumps(loaded))
