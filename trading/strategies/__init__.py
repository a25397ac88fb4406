"""Entry strategies and their registry. Names are part of the cross-team contract:
`momentum`, `mean_reversion`, `breakout`. `STRATEGIES` holds each with its default
config; `build_strategy` makes one with another config (the optimizer's candidates)."""

from collections.abc import Mapping
from typing import Any

from core.errors import ConfigError
from trading.strategies.base import SIGNAL_COLUMNS, Strategy, frame_to_signals
from trading.strategies.breakout import BreakoutConfig, BreakoutStrategy
from trading.strategies.mean_reversion import MeanReversionConfig, MeanReversionStrategy
from trading.strategies.momentum import MomentumConfig, MomentumStrategy
from trading.strategies.search import StrategyConfig

STRATEGY_TYPES: dict[str, type[Strategy]] = {
    MomentumStrategy.name: MomentumStrategy,
    MeanReversionStrategy.name: MeanReversionStrategy,
    BreakoutStrategy.name: BreakoutStrategy,
}
STRATEGIES: dict[str, Strategy] = {name: kind() for name, kind in STRATEGY_TYPES.items()}


def get_strategy(name: str) -> Strategy:
    """The registered strategy called `name`, or a ConfigError listing the names."""
    try:
        return STRATEGIES[name]
    except KeyError:
        raise ConfigError(
            f"unknown strategy '{name}'; known: {', '.join(sorted(STRATEGIES))}",
            where="strategies",
        ) from None


def strategy_type(name: str) -> type[Strategy]:
    """The strategy class called `name`, or a ConfigError listing the names."""
    return type(get_strategy(name))


def build_strategy(name: str, config: Mapping[str, Any]) -> Strategy:
    """The strategy `name` with its config's fields set from `config` (others default)."""
    kind = strategy_type(name)
    return kind(kind.config_type(**config))  # type: ignore[call-arg]


__all__ = [
    "SIGNAL_COLUMNS",
    "STRATEGIES",
    "STRATEGY_TYPES",
    "BreakoutConfig",
    "BreakoutStrategy",
    "MeanReversionConfig",
    "MeanReversionStrategy",
    "MomentumConfig",
    "MomentumStrategy",
    "Strategy",
    "StrategyConfig",
    "build_strategy",
    "frame_to_signals",
    "get_strategy",
    "strategy_type",
]
