"""Entry strategies and their registry. Names are part of the cross-team contract:
`momentum`, `mean_reversion`, `breakout`."""

from core.errors import ConfigError
from trading.strategies.base import SIGNAL_COLUMNS, Strategy, frame_to_signals
from trading.strategies.breakout import BreakoutConfig, BreakoutStrategy
from trading.strategies.mean_reversion import MeanReversionConfig, MeanReversionStrategy
from trading.strategies.momentum import MomentumConfig, MomentumStrategy

STRATEGIES: dict[str, Strategy] = {
    MomentumStrategy.name: MomentumStrategy(),
    MeanReversionStrategy.name: MeanReversionStrategy(),
    BreakoutStrategy.name: BreakoutStrategy(),
}


def get_strategy(name: str) -> Strategy:
    """The registered strategy called `name`, or a ConfigError listing the names."""
    try:
        return STRATEGIES[name]
    except KeyError:
        raise ConfigError(
            f"unknown strategy '{name}'; known: {', '.join(sorted(STRATEGIES))}",
            where="strategies",
        ) from None


__all__ = [
    "SIGNAL_COLUMNS",
    "STRATEGIES",
    "BreakoutConfig",
    "BreakoutStrategy",
    "MeanReversionConfig",
    "MeanReversionStrategy",
    "MomentumConfig",
    "MomentumStrategy",
    "Strategy",
    "frame_to_signals",
    "get_strategy",
]
