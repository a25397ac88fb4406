"""Strategy optimization, the domain half: what is searched, how a candidate is judged,
and which windows it is judged on. The search itself (Optuna) and the proposal file are
the `optimize` flow's.

- The search space is the strategy config's own (`StrategyConfig.search_space`) plus the
  exits every strategy shares (`EXIT_SEARCH_SPACE`: the ATR multiples of the stop and the
  target, and the holding limit, all from the settings' risk section).
- A candidate is evaluated by a full replay of the engine (`trading.backtest.Replay`, the
  simulated broker and the rules client, ungated) on a window of a `ReplayMarket` whose
  features were computed once; only the strategy's signals are rebuilt per candidate.
- The objective is the annualised Sharpe ratio; with fewer than `min_trades` closed trades
  it is `-1 + trades / min_trades`, below any Sharpe worth having, so a candidate cannot
  win by barely trading.
- Windows: in-sample [start, boundary) and out-of-time [boundary, end]; without explicit
  dates the last `out_of_time_fraction` of the distinct bar times is out of time."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from core.errors import ConfigError, DataValidationError
from core.settings import Settings
from core.utc import utc_timestamp
from trading.backtest import Replay, ReplayMarket
from trading.journal import Journal
from trading.strategies import Strategy, build_strategy, strategy_type
from trading.strategies.search import FloatRange, IntRange, SearchParameter

EXIT_SEARCH_SPACE: tuple[SearchParameter, ...] = (
    FloatRange("stop_loss_atr", 1.0, 4.0),
    FloatRange("take_profit_atr", 1.0, 6.0),
    IntRange("max_holding_bars", 5, 40),
)
EXIT_FIELDS: tuple[str, ...] = tuple(parameter.name for parameter in EXIT_SEARCH_SPACE)
METRIC_KEYS: tuple[str, ...] = (
    "trades",
    "win_rate",
    "profit_factor",
    "sharpe",
    "max_drawdown",
    "total_return",
    "average_trade_return",
)
MIN_BAR_TIMES = 50


def search_space(strategy: str) -> tuple[SearchParameter, ...]:
    """The strategy's entry parameters, then the exits (the order a sampler draws them)."""
    return (*strategy_type(strategy).config_type.search_space, *EXIT_SEARCH_SPACE)


def params_from_search(strategy: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """A sample of the search space as parameters: the config fields the search sets,
    then the exits."""
    config = strategy_type(strategy).config_type.from_search(values)
    return {**config.tuned(), **{name: values[name] for name in EXIT_FIELDS}}


def search_values(strategy: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """Parameters back in the search space's coordinates (momentum searches the gap)."""
    config_type = strategy_type(strategy).config_type
    config = config_type(**{k: v for k, v in params.items() if k in config_type.tuned_fields()})
    return {**config.search_values(), **{name: params[name] for name in EXIT_FIELDS}}


def entry_params(strategy: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """The part of `params` that configures the strategy's entries."""
    tuned = strategy_type(strategy).config_type.tuned_fields()
    return {key: value for key, value in params.items() if key in tuned}


def default_params(strategy: str, settings: Settings) -> dict[str, Any]:
    """The parameters in force today: the strategy's default config and the settings'
    exits."""
    return {
        **strategy_type(strategy)().config.tuned(),
        "stop_loss_atr": settings.risk.stop_loss_atr,
        "take_profit_atr": settings.risk.take_profit_atr,
        "max_holding_bars": settings.risk.max_holding_bars,
    }


def make_strategy(strategy: str, params: Mapping[str, Any]) -> Strategy:
    """The strategy configured with the entry part of `params`."""
    return build_strategy(strategy, entry_params(strategy, params))


def with_exits(settings: Settings, params: Mapping[str, Any]) -> Settings:
    """`settings` with the exits of `params` in its risk section."""
    risk = settings.risk.model_copy(
        update={
            "stop_loss_atr": float(params["stop_loss_atr"]),
            "take_profit_atr": float(params["take_profit_atr"]),
            "max_holding_bars": int(params["max_holding_bars"]),
        }
    )
    return settings.model_copy(update={"risk": risk})


def objective_value(metrics: Mapping[str, Any], min_trades: int) -> float:
    """Sharpe, or a penalty below any useful Sharpe when there are too few trades."""
    trades = int(metrics.get("trades") or 0)
    if trades < min_trades:
        return -1.0 + trades / max(min_trades, 1)
    sharpe = metrics.get("sharpe")
    return float(sharpe) if sharpe is not None and np.isfinite(sharpe) else -1.0


@dataclass(frozen=True)
class Window:
    in_sample: tuple[pd.Timestamp, pd.Timestamp]  # [start, end)
    out_of_time: tuple[pd.Timestamp, pd.Timestamp]  # [start, end]


def split_window(
    timestamps: pd.Series,
    *,
    train_start: str | None,
    train_end: str | None,
    test_end: str | None,
    out_of_time_fraction: float,
) -> Window:
    """In-sample and out-of-time windows. Without `train_end` the last
    `out_of_time_fraction` of the distinct bar times between the start and the end is out
    of time."""
    unique = pd.Series(pd.to_datetime(timestamps, utc=True).unique()).sort_values(
        ignore_index=True
    )
    if len(unique) < MIN_BAR_TIMES:
        raise DataValidationError(
            f"only {len(unique)} bar times; need at least {MIN_BAR_TIMES} to optimize",
            where="optimize",
        )
    start = utc_timestamp(train_start) if train_start else unique.iloc[0]
    end_all = utc_timestamp(test_end) if test_end else unique.iloc[-1]
    if train_end:
        boundary = utc_timestamp(train_end)
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


class CandidateEvaluator:
    """Replays windows of one market with candidate parameters; the features are
    computed once, each evaluation rebuilds the strategy's signals only."""

    def __init__(self, bars: pd.DataFrame, settings: Settings) -> None:
        self.settings = settings
        self.market = ReplayMarket.from_bars(bars)

    @property
    def symbols(self) -> list[str]:
        return sorted(self.market.tradable["symbol"].unique().tolist())

    def run(
        self,
        strategy: str,
        params: Mapping[str, Any],
        start: pd.Timestamp,
        end: pd.Timestamp,
        *,
        include_end: bool = False,
    ) -> dict[str, Any]:
        """The candidate's figures (`METRIC_KEYS`) on [start, end) ([start, end] with
        `include_end`)."""
        journal = Journal("sqlite://", batch_size=5_000)
        replay = Replay(
            self.market,
            with_exits(self.settings, params),
            strategy=strategy,
            strategies=[make_strategy(strategy, params)],
            start=start,
            end=end,
            include_end=include_end,
            journal=journal,
        )
        replay.run_until(None)
        replay.finish()
        metrics = replay.metrics(bars_per_year=252.0)
        journal.close()
        return {key: metrics.get(key) for key in METRIC_KEYS}


def _suggest(trial: Any, parameter: SearchParameter) -> Any:
    if isinstance(parameter, IntRange):
        return trial.suggest_int(parameter.name, parameter.low, parameter.high)
    return trial.suggest_float(parameter.name, parameter.low, parameter.high)


def search(
    strategy: str,
    evaluate: Callable[[list[dict[str, Any]]], list[dict[str, Any]]],
    *,
    trials: int,
    seed: int,
    min_trades: int,
    per_batch: int = 1,
    start_from: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """TPE search (Optuna, fixed seed) over the strategy's space: ask for `per_batch`
    candidates at a time, `evaluate` them together (a list of parameter sets in, their
    figures out, in order: the caller may run them at once, anywhere), then tell the
    study. The first trial is `start_from` (today's parameters) when given, so the result
    is never worse in sample than what runs now. With `per_batch=1` this is Optuna's own
    sequential loop; a batch's candidates are chosen without each other's results, so the
    outcome depends on `per_batch`, never on where the batch ran."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize",
                                sampler=optuna.samplers.TPESampler(seed=seed),
                                study_name=f"optimize-{strategy}")
    if start_from is not None:
        study.enqueue_trial(search_values(strategy, start_from), skip_if_exists=True)
    space = search_space(strategy)
    while len(study.trials) < trials:
        asked = [study.ask() for _ in range(min(per_batch, trials - len(study.trials)))]
        candidates = [params_from_search(strategy, {p.name: _suggest(trial, p) for p in space})
                      for trial in asked]
        for trial, params, metrics in zip(asked, candidates, evaluate(candidates),
                                          strict=True):
            trial.set_user_attr("params", params)
            trial.set_user_attr("metrics", metrics)
            study.tell(trial, objective_value(metrics, min_trades))
    best = study.best_trial
    history = [{"number": t.number, "value": t.value, **t.user_attrs.get("params", {})}
               for t in study.trials]
    return {"objective": float(study.best_value), "params": best.user_attrs["params"],
            "in_sample": best.user_attrs["metrics"], "history": history}
