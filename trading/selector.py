"""Which strategies the engine trades: every one, or the one fixed for a run
(`tradewind backtest --strategy momentum`). Which strategy suits the market regime is the
decision policy's business (`models.policy` with `core.regimes`): the engine keeps no
regime gate of its own."""

from __future__ import annotations

from core.errors import ConfigError


class StrategySelector:
    def __init__(self, *, fixed: str | None = None) -> None:
        self.fixed = fixed

    @classmethod
    def for_strategy(cls, strategy: str | None, known: set[str] | None = None) -> StrategySelector:
        if strategy is not None and known is not None and strategy not in known:
            raise ConfigError(
                f"unknown strategy '{strategy}'; known: {', '.join(sorted(known))}",
                where="selector",
            )
        return cls(fixed=strategy)

    def allows(self, strategy: str) -> bool:
        """May `strategy`'s signals be considered at all."""
        return self.fixed is None or strategy == self.fixed
