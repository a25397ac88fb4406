"""A hand-written harness for engine tests: a scripted feed (features and signals per
bar), the real matching engine behind the real SimulatedBroker, an in-memory journal."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime

import numpy as np

from core.calendar import MarketCalendar
from core.clock import ReplayClock
from core.errors import ModelUnavailableError
from core.types import Bar, Decision, Regime, Side, Signal
from trading.adapters.simulated import MatchingEngine, SimulatedBroker, SimulatedExchangeConfig
from trading.closed_trades import ClosedTradeRecord
from trading.engine import EngineConfig, TradingEngine
from trading.journal import Journal
from trading.ports import OrderUpdate
from trading.risk import RiskConfig, RiskManager
from trading.rules_client import RulesModelClient
from trading.selector import StrategySelector
from trading.sizing import PositionSizer, SizingConfig

SESSIONS = [
    datetime(d.year, d.month, d.day, tzinfo=UTC)
    for d in MarketCalendar().sessions(date(2024, 1, 2), date(2024, 6, 28))
]


def session(n: int) -> datetime:
    return SESSIONS[n]


class ScriptedFeed:
    """Implements `MarketFeed` from what the test says each bar's features and signals are."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, datetime], dict[str, float]] = {}
        self.signal_map: dict[tuple[str, datetime], list[Signal]] = {}
        self.returns: dict[str, np.ndarray] = {}

    def observe(self, bar: Bar) -> None:
        pass

    def features(self, symbol: str, timestamp: datetime) -> Mapping[str, float] | None:
        return self.rows.get((symbol, timestamp))

    def signals(self, symbol: str, timestamp: datetime) -> Sequence[Signal]:
        return self.signal_map.get((symbol, timestamp), [])

    def trailing_returns(self, symbol: str, timestamp: datetime) -> np.ndarray | None:
        return self.returns.get(symbol)


class FixedModelClient:
    """A model client whose policy always answers the same verdict (or fails on demand)."""

    def __init__(
        self,
        win_probability: float,
        *,
        regime: Regime | None = None,
        action: str = "enter",
        reason: str = "",
        size_fraction: float | None = 0.05,
        out_of_distribution: bool = False,
    ) -> None:
        self.win_probability = win_probability
        self.regime = regime
        self.action = action
        self.reason = reason
        self.size_fraction = size_fraction
        self.out_of_distribution = out_of_distribution
        self.fail = False
        self.calls = 0
        self._rules = RulesModelClient()

    def decide(self, signal: Signal, features: Mapping[str, float]) -> Decision:
        self.calls += 1
        if self.fail:
            raise ModelUnavailableError("model service down (test)")
        base = self._rules.decide(signal, features)
        skip = self.action == "skip"
        return Decision(
            decision_id=f"m-{signal.signal_id}",
            signal=signal,
            win_probability=self.win_probability,
            stop_loss_price=base.stop_loss_price,
            take_profit_price=base.take_profit_price,
            regime=self.regime,
            expected_drawdown_pct=None,
            variant="challenger",
            model_versions={"signal_quality": "7", "exit_optimizer": "3"},
            out_of_distribution=self.out_of_distribution,
            source="inprocess",
            action=self.action,
            reason=self.reason,
            reason_detail=f"{self.reason} (test)" if skip else "",
            threshold=0.5,
            size_fraction=0.0 if skip else self.size_fraction,
        )


class Harness:
    def __init__(
        self,
        *,
        model: object | None = None,
        engine_config: EngineConfig | None = None,
        risk: RiskConfig | None = None,
        sizing: SizingConfig | None = None,
        starting_cash: float = 100_000.0,
        fallback: bool = False,
        sectors: Mapping[str, str] | None = None,
        strategy: str | None = "momentum",
    ) -> None:
        self.clock = ReplayClock(session(0))
        self.matching = MatchingEngine(
            SimulatedExchangeConfig(slippage_bps=0.0, starting_cash=starting_cash), self.clock
        )
        self.broker = SimulatedBroker(self.matching)
        self.feed = ScriptedFeed()
        self.journal = Journal("sqlite://")
        self.updates: deque[OrderUpdate] = deque()
        self.matching.subscribe(self.updates.append)
        self.sunk: list[ClosedTradeRecord] = []
        sector_map = dict(sectors or {})
        self.engine = TradingEngine(
            broker=self.broker,
            model_client=model or RulesModelClient(),  # type: ignore[arg-type]
            feed=self.feed,
            journal=self.journal,
            clock=self.clock,
            risk=RiskManager(risk or RiskConfig()),
            sizer=PositionSizer(sizing or SizingConfig()),
            selector=StrategySelector(fixed=strategy),
            config=engine_config or EngineConfig(),
            fallback_client=RulesModelClient(source="fallback") if fallback else None,
            trade_sink=self.sunk.append,
            sector_of=lambda s: sector_map.get(s, "unknown"),
        )

    def bar(
        self,
        n: int,
        o: float,
        h: float,
        low: float,
        c: float,
        *,
        symbol: str = "AAA",
        atr: float = 1.0,
        signal: Side | None = None,
        strategy: str = "momentum",
        features: Mapping[str, float] | None = None,
    ) -> None:
        ts = session(n)
        self.feed.rows[(symbol, ts)] = {"atr_14": atr, "rsi_14": 50.0, **(features or {})}
        if signal is not None:
            self.feed.signal_map[(symbol, ts)] = [Signal(symbol, signal, ts, strategy, c, "test")]
        self.clock.advance_to(ts)
        self.engine.advance(ts)
        self.matching.on_bar(Bar(symbol, ts, o, h, low, c, 1e6))
        self.drain()
        self.engine.on_bar(Bar(symbol, ts, o, h, low, c, 1e6))
        self.drain()

    def drain(self) -> None:
        while self.updates:
            self.engine.on_order_update(self.updates.popleft())
