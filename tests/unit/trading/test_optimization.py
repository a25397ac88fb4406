"""Optimization's domain half: each strategy's own search space, parameters and back,
the windows, the objective, and candidates replayed on real sample bars."""

from __future__ import annotations

import pandas as pd
import pytest

from core.errors import ConfigError, DataValidationError
from core.settings import load_settings
from trading.adapters.sample.data import SampleMarketData
from trading.optimization import (
    EXIT_FIELDS,
    CandidateEvaluator,
    default_params,
    entry_params,
    make_strategy,
    objective_value,
    params_from_search,
    search_space,
    search_values,
    split_window,
)
from trading.strategies import STRATEGIES, MomentumConfig
from trading.strategies.search import FloatRange, IntRange

EXITS = {"stop_loss_atr": 2.5, "take_profit_atr": 4.0, "max_holding_bars": 12}


def test_each_strategy_declares_its_space_and_the_exits_follow() -> None:
    names = {name: [p.name for p in search_space(name)] for name in STRATEGIES}
    assert names == {
        "momentum": ["fast", "slow_gap", *EXIT_FIELDS],
        "mean_reversion": ["oversold", "overbought", *EXIT_FIELDS],
        "breakout": ["volume_multiple", *EXIT_FIELDS],
    }
    assert MomentumConfig.search_space == (IntRange("fast", 5, 20), IntRange("slow_gap", 5, 40))
    assert search_space("breakout")[0] == FloatRange("volume_multiple", 1.0, 3.5)
    with pytest.raises(ConfigError, match="unknown strategy"):
        search_space("nope")


@pytest.mark.parametrize(
    ("strategy", "sample", "entry"),
    [
        ("momentum", {"fast": 7, "slow_gap": 10}, {"fast": 7, "slow": 17}),
        ("mean_reversion", {"oversold": 25.0, "overbought": 75.0},
         {"oversold": 25.0, "overbought": 75.0}),
        ("breakout", {"volume_multiple": 1.5}, {"volume_multiple": 1.5}),
    ],
)  # fmt: skip
def test_samples_become_parameters_and_back(
    strategy: str, sample: dict[str, float], entry: dict[str, float]
) -> None:
    params = params_from_search(strategy, {**sample, **EXITS})
    assert params == {**entry, **EXITS}
    assert search_values(strategy, params) == {**sample, **EXITS}
    assert entry_params(strategy, params) == entry
    built = make_strategy(strategy, params)
    assert built.name == strategy
    assert built.config.tuned() == entry


def test_todays_parameters_are_the_defaults_and_the_settings_exits() -> None:
    settings = load_settings()
    assert default_params("momentum", settings) == {
        "fast": 9, "slow": 21, "stop_loss_atr": settings.risk.stop_loss_atr,
        "take_profit_atr": settings.risk.take_profit_atr,
        "max_holding_bars": settings.risk.max_holding_bars,
    }  # fmt: skip


def test_windows_split_the_distinct_bar_times() -> None:
    stamps = pd.Series(pd.bdate_range("2020-01-01", periods=100, tz="UTC").repeat(2))
    window = split_window(
        stamps, train_start=None, train_end=None, test_end=None, out_of_time_fraction=0.25
    )
    assert window.in_sample == (stamps.iloc[0], stamps.unique()[75])
    assert window.out_of_time == (stamps.unique()[75], stamps.iloc[-1])
    explicit = split_window(
        stamps, train_start="2020-01-10", train_end="2020-03-02", test_end=None,
        out_of_time_fraction=0.25,
    )  # fmt: skip
    assert explicit.in_sample == (
        pd.Timestamp("2020-01-10", tz="UTC"), pd.Timestamp("2020-03-02", tz="UTC"),
    )  # fmt: skip
    with pytest.raises(ConfigError, match="out of order"):
        split_window(stamps, train_start="2020-03-02", train_end="2020-01-10", test_end=None,
                     out_of_time_fraction=0.25)  # fmt: skip
    with pytest.raises(DataValidationError, match="at least 50"):
        split_window(stamps.head(40), train_start=None, train_end=None, test_end=None,
                     out_of_time_fraction=0.25)  # fmt: skip


def test_few_trades_score_below_any_useful_sharpe() -> None:
    assert objective_value({"trades": 30, "sharpe": 0.8}, 20) == 0.8
    assert objective_value({"trades": 5, "sharpe": 3.0}, 20) == pytest.approx(-0.75)
    assert objective_value({"trades": 30, "sharpe": None}, 20) == -1.0
    assert objective_value({"trades": 30, "sharpe": float("nan")}, 20) == -1.0


def test_candidates_replay_the_window_deterministically() -> None:
    bars = SampleMarketData().history(["AAPL", "MSFT", "SPX"], "2004-01-01", "2008-12-31")
    evaluator = CandidateEvaluator(bars, load_settings())
    assert evaluator.symbols == ["AAPL", "MSFT"]
    start, end = pd.Timestamp("2006-01-03", tz="UTC"), pd.Timestamp("2008-01-02", tz="UTC")
    today = default_params("momentum", load_settings())
    first = evaluator.run("momentum", today, start, end)
    assert first == evaluator.run("momentum", today, start, end)
    assert set(first) >= {"trades", "win_rate", "profit_factor", "sharpe", "max_drawdown"}
    assert first["trades"] > 5
    slower = evaluator.run("momentum", {**today, "fast": 20, "slow": 60}, start, end)
    assert slower["trades"] < first["trades"]  # a slower crossover trades less
    shorter = evaluator.run("momentum", today, start, pd.Timestamp("2006-06-01", tz="UTC"))
    assert shorter["trades"] < first["trades"]
