"""The trading engine: one decision pipeline per signal, and the management of open
positions bar by bar. The same object trades live and runs backtests: time comes from
the injected clock, orders go to the injected `Broker`, market knowledge comes from the
injected `MarketFeed`; there is no backtest mode in here.

Per signal: exit check (an opposite signal of the position's strategy closes it) →
features → `ModelClient` (the model service's decision policy, or the rules client's
pass-through) → the engine obeys: a `skip` is journaled with the policy's reason
category (`ev`, `gate`, `ood`, `regime`) → pre-trade risk checks (`risk`; `paused` when
the daily-loss breaker is on) → size from the decision's `size_fraction` (× the streak
multiplier, which never vetoes; capped; zero shares → `sizing`) → sized-order risk checks
(`risk`) → bracket order with a deterministic `client_order_id` (`tw-<signal_id>`) →
journal. The engine has no gate of its own: no probability threshold, no regime filter
(one place decides: `models.policy`). Every refusal is journaled with one category of
`core.types.REASONS` and its detail; model failures are `model_unavailable`.

Per bar of an open position: excursions, the time limit (`max_holding_bars`), then at
the bar's close the price rule (`_at_price`): a stop or target reached
(`trading.stops.exit_crossed`) exits at the market, else the ATR trailing stop moves
(replaces the broker's stop order when it tightens). When trades are streamed,
`on_trade` applies the same price rule at every print, so a stop is hit at the print
that crosses it, within the bar. None of this calls the
model service: exits never depend on it. When the model client fails, no entry is made
on a guess, unless `fallback="rules"` names the rules client as the fallback.

Order updates (from the broker's stream, or the replay) come in through
`on_order_update`: fills go to the `PositionBook`; a position back to zero is a closed
`Trade`, journaled and handed to the `TradeSink` (the feature store's trade collection).
Entries between submission and fill wait in `PendingEntries`; `reconcile` (start-up
recovery) is `trading.recovery`."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from core.bars import DAILY
from core.calendar import MarketCalendar
from core.clock import Clock
from core.errors import BrokerError, DataValidationError, ModelUnavailableError
from core.settings import Settings
from core.types import (
    REASONS,
    Bar,
    Decision,
    Fill,
    Order,
    OrderClass,
    OrderStatus,
    OrderType,
    Side,
    Signal,
    TimeInForce,
    Trade,
)
from trading.closed_trades import ClosedTradeRecord, TradeSink
from trading.feed import FeatureRow, MarketFeed
from trading.journal import DecisionRecord, Journal
from trading.pending_entries import EntryPlan, PendingEntries, entry_order_id
from trading.ports import Broker, ModelClient, OrderUpdate, TradePrint
from trading.position_book import ClosedPosition, OpenPosition, PositionBook
from trading.recovery import reconcile
from trading.risk import (
    HALT_RULE,
    PAUSE_RULE,
    Holding,
    Portfolio,
    Proposal,
    ReturnsLookup,
    RiskManager,
    Verdict,
)
from trading.selector import StrategySelector
from trading.session_rules import SessionRules, SessionWindows
from trading.sizing import PositionSizer, SizeRequest
from trading.stops import TrailingStop, exit_crossed

log = logging.getLogger(__name__)

ATR_FEATURE = "atr_14"
ENTERED, SKIPPED = "entered", "skipped"  # the journal's decision actions


class EngineConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # Obey the decision's `skip` and size (the policy). False enters every signal at the
    # ungated size whatever the model client says (a diagnostic; the ungated baseline is
    # the rules client).
    gate_enabled: bool = True
    fallback: Literal["no_entry", "rules"] = "no_entry"
    allow_short: bool = False
    max_holding_bars: int = Field(20, ge=1)
    trailing_stop_atr: float = Field(2.0, gt=0)
    exit_on_opposite_signal: bool = True
    entry_time_in_force: TimeInForce = TimeInForce.GTC
    session_rules: SessionRules = SessionRules()  # daily bars by default: no intraday rule

    @classmethod
    def from_settings(
        cls, settings: Settings, *, timeframe: str = DAILY, **overrides: object
    ) -> EngineConfig:
        values: dict[str, object] = {
            "fallback": settings.models.fallback,
            "allow_short": settings.risk.allow_short,
            "max_holding_bars": settings.risk.max_holding_bars,
            "trailing_stop_atr": settings.risk.trailing_stop_atr,
            "exit_on_opposite_signal": settings.risk.exit_on_opposite_signal,
            "session_rules": SessionRules.from_settings(settings.intraday, timeframe),
        }
        values.update(overrides)
        return cls.model_validate(values)


@dataclass(slots=True)
class EngineStats:
    bars: int = 0
    prints: int = 0  # trade prints seen (trades streamed)
    signals: int = 0
    entries: int = 0
    risk_rejected: int = 0
    model_failures: int = 0
    stop_moves: int = 0
    exits_requested: int = 0
    closed_trades: int = 0
    rejections_by_rule: dict[str, int] = field(default_factory=dict)
    refusals: dict[str, int] = field(default_factory=dict)  # reason category → count

    @property
    def gated(self) -> int:
        """Signals the policy's probability or expected-value gate refused."""
        return self.refusals.get("ev", 0) + self.refusals.get("gate", 0)

    @property
    def regime_skipped(self) -> int:
        return self.refusals.get("regime", 0)


class TradingEngine:
    def __init__(
        self,
        *,
        broker: Broker,
        model_client: ModelClient,
        feed: MarketFeed,
        journal: Journal,
        clock: Clock,
        risk: RiskManager | None = None,
        sizer: PositionSizer | None = None,
        selector: StrategySelector | None = None,
        config: EngineConfig | None = None,
        fallback_client: ModelClient | None = None,
        trade_sink: TradeSink | None = None,
        calendar: MarketCalendar | None = None,
        sector_of: Callable[[str], str] | None = None,
    ) -> None:
        self.broker = broker
        self.model_client = model_client
        self.feed = feed
        self.journal = journal
        self.clock = clock
        self.risk = risk or RiskManager()
        self.sizer = sizer or PositionSizer()
        self.selector = selector or StrategySelector()
        self.config = config or EngineConfig()
        self.fallback_client = fallback_client
        self.trade_sink = trade_sink
        self.calendar = calendar or MarketCalendar()
        self._sector_of = sector_of or (lambda _symbol: "unknown")
        self.trailing = TrailingStop(self.config.trailing_stop_atr)
        self.session_windows = SessionWindows(self.config.session_rules, self.calendar)
        self.stats = EngineStats()
        self.book = PositionBook()
        self.pending = PendingEntries()
        self._last_price: dict[str, float] = {}
        self._current: datetime | None = None
        self._session: date | None = None
        self.last_decision: DecisionRecord | None = None
        self.closed_trades: list[Trade] = []

    # ================================================================== the bar loop
    def on_bar(self, bar: Bar) -> None:
        """One bar of one symbol, after the broker has seen it (its fills are in)."""
        symbol, timestamp = bar.symbol, bar.timestamp
        if timestamp is not self._current and timestamp != self._current:
            self.advance(timestamp)
        self.stats.bars += 1
        self.feed.observe(bar)
        self._last_price[symbol] = bar.close
        position = self.book.mark(bar)
        if position is not None:
            if self.session_windows.flatten_due(timestamp):
                self.request_exit(symbol, "session_close")
            else:
                self._manage(position, bar)
        for signal in self.feed.signals(symbol, timestamp):
            self.on_signal(signal)

    def finish(self) -> None:
        """Mark the last timestamp's equity and write the journal (end of a replay, or
        shutdown)."""
        if self._current is not None:
            self._mark_equity(self._current)
        self.journal.flush()

    def advance(self, timestamp: datetime) -> None:
        """Time moved on: mark the equity of the previous timestamp and open a new
        session for the circuit breaker when the session date changes. Called by
        `on_bar`; a driver may call it first so the mark precedes the new bar's fills."""
        if timestamp == self._current:
            return
        if self._current is not None:
            self._mark_equity(self._current)
        self._current = timestamp
        session = self.calendar.session_date(timestamp)
        if session != self._session:
            self._session = session
            self.risk.start_session(session, self.broker.account().equity)

    def _mark_equity(self, at: datetime) -> None:
        account = self.broker.account()
        self.risk.update_equity(account.equity)
        self.journal.record_equity(
            at,
            equity=account.equity,
            cash=account.cash,
            positions_value=account.equity - account.cash,
            open_positions=len(self.book),
            halted=self.risk.halted,
        )

    # ================================================================== open positions
    def _manage(self, position: OpenPosition, bar: Bar) -> None:
        """Exits of an open position the book has marked with this bar."""
        if position.exit_reason is not None:
            return  # an exit is on its way
        if position.bars_held >= self.config.max_holding_bars:
            self.request_exit(position.symbol, "time_limit")
            return
        self._at_price(position, bar.close, bar.timestamp)

    def on_trade(self, trade: TradePrint) -> None:
        """A trade print (trades streamed): an open position's stop and target are
        checked at its price, by the same rule as at a bar's close."""
        self.stats.prints += 1
        position = self.book.get(trade.symbol)
        if position is None or position.exit_reason is not None:
            return
        self._last_price[trade.symbol] = trade.price
        self._at_price(position, trade.price, trade.timestamp)

    def _at_price(self, position: OpenPosition, price: float, at: datetime) -> None:
        """The price rule of an open position: a stop or target reached exits at the
        market; else the trailing stop follows `price` (ATR of the latest bar)."""
        reached = exit_crossed(position.side, position.stop_price, position.target_price, price)
        if reached is not None:
            trailed = reached == "stop_loss" and position.stop_moved
            self.request_exit(position.symbol, "trailing_stop" if trailed else reached)
            return
        if position.stop_order_id is None or position.stop_price is None:
            return
        latest = self._current
        features = self.feed.features(position.symbol, latest) if latest else None
        if features is None or ATR_FEATURE not in features:
            return
        new_stop = self.trailing.tighten(
            position.side, position.stop_price, price, features[ATR_FEATURE]
        )
        if new_stop is None:
            return
        try:
            moved = self.broker.replace_stop(position.stop_order_id, new_stop)
        except BrokerError as exc:
            log.warning("trailing stop for %s not moved: %s", position.symbol, exc)
            return
        position.stop_price = new_stop
        position.stop_moved = True
        self.stats.stop_moves += 1
        self.journal.record_order(moved, at=at)

    def request_exit(self, symbol: str, reason: str) -> Order | None:
        """Flatten a position at the market (its bracket legs are canceled first)."""
        position = self.book.get(symbol)
        if position is None or position.exit_reason is not None:
            return None
        try:
            order = self.broker.close_position(symbol)
        except BrokerError as exc:
            log.warning("exit of %s (%s) failed: %s", symbol, reason, exc)
            return None
        position.exit_reason = reason
        self.stats.exits_requested += 1
        if order is not None:
            self.journal.record_order(order, at=self.clock.now())
        return order

    # ================================================================== signals
    def on_signal(self, signal: Signal) -> None:
        self.stats.signals += 1
        now = self.clock.now()
        position = self.book.get(signal.symbol)
        if position is not None:
            if (
                self.config.exit_on_opposite_signal
                and signal.side is not position.side
                and signal.strategy == position.strategy
            ):
                self.request_exit(signal.symbol, "signal_exit")
            return
        if signal.side is Side.SELL and not self.config.allow_short:
            return
        if not self.selector.allows(signal.strategy):
            return
        outside = self.session_windows.entry_refusal(signal.timestamp)
        if outside is not None:
            self._refuse(signal, "session", outside, now)
            return
        features = self.feed.features(signal.symbol, signal.timestamp)
        if features is None:
            self._refuse(signal, "model_unavailable", "no feature row for the signal's bar", now)
            return
        # The policy sees every candidate signal (its coverage guard learns from them all),
        # then the risk limits apply to what it lets through.
        decision = self._decide(signal, features, now)
        if decision is None:
            return
        if self.config.gate_enabled and not decision.enter:
            category = decision.reason if decision.reason in REASONS else "model_unavailable"
            self._refuse(signal, category, decision.reason_detail, now, decision)
            return

        account = self.broker.account()
        portfolio = self._portfolio(account.equity, account.buying_power)
        sector = self._sector_of(signal.symbol)
        verdict = self.risk.pre_trade(
            signal.symbol, sector, portfolio, self._returns_lookup(signal.timestamp)
        )
        if not verdict.accepted:
            self._reject(signal, verdict, decision, now)
            return
        problem = _exit_problem(signal, decision)
        if problem:
            self._refuse(signal, "model_unavailable", f"invalid exits: {problem}", now, decision)
            return
        fraction = decision.size_fraction if self.config.gate_enabled else None
        size = self.sizer.size(SizeRequest(account.equity, signal.price, fraction))
        if size.qty <= 0:
            self._reject(signal, Verdict(False, "sizing", size.reason), decision, now)
            return
        verdict = self.risk.check_order(
            Proposal(signal.symbol, signal.side, size.qty, signal.price, sector), portfolio
        )
        if not verdict.accepted:
            self._reject(signal, verdict, decision, now)
            return
        self._enter(signal, decision, features, size.qty, now)

    def _decide(
        self, signal: Signal, features: Mapping[str, float], now: datetime
    ) -> Decision | None:
        """The model client's decision; on failure the rules fallback's (when configured),
        else None with the refusal journaled as `model_unavailable`."""
        try:
            return self.model_client.decide(signal, features)
        except ModelUnavailableError as exc:
            self.stats.model_failures += 1
            if self.config.fallback == "rules" and self.fallback_client is not None:
                try:
                    return self.fallback_client.decide(signal, features)
                except (ModelUnavailableError, DataValidationError) as fallback_exc:
                    exc = ModelUnavailableError(f"{exc}; fallback failed: {fallback_exc}")
            self._refuse(signal, "model_unavailable", f"no entry on a guess: {exc}", now)
        except DataValidationError as exc:
            self._refuse(signal, "model_unavailable", f"invalid features: {exc}", now)
        except Exception as exc:
            # A broken client (a bug, an unwrapped transport error) must cost one entry,
            # never the engine: open positions still need their stops managed.
            self.stats.model_failures += 1
            log.exception("model client failed on %s", signal.symbol)
            self._refuse(signal, "model_unavailable", f"{type(exc).__name__}: {exc}", now)
        return None

    def _enter(
        self,
        signal: Signal,
        decision: Decision,
        features: Mapping[str, float],
        qty: float,
        now: datetime,
    ) -> None:
        client_order_id = entry_order_id(signal)
        order = Order(
            client_order_id=client_order_id,
            symbol=signal.symbol,
            side=signal.side,
            qty=float(qty),
            type=OrderType.MARKET,
            time_in_force=self.config.entry_time_in_force,
            order_class=OrderClass.BRACKET,
            take_profit_price=round(decision.take_profit_price, 2),
            stop_loss_price=round(decision.stop_loss_price, 2),
            created_at=now,
        )
        snapshot = features.to_dict() if isinstance(features, FeatureRow) else dict(features)
        self.pending.add(client_order_id, EntryPlan(signal, decision, snapshot, float(qty)))
        # Intent first: a crash after the submit finds the order in the journal, and the
        # deterministic client_order_id makes the resubmission a no-op at the broker.
        record = self._record(
            signal, ENTERED, decision.reason_detail, now, decision, qty=float(qty),
            client_order_id=client_order_id,
        )
        self.journal.record_order(order, decision_id=record.decision_id, at=now)
        try:
            placed = self.broker.submit(order)
        except BrokerError as exc:
            self.pending.forget(client_order_id)
            self._reject(signal, Verdict(False, "broker", str(exc)), decision, now, record)
            return
        self.journal.record_order(placed, decision_id=record.decision_id, at=now)
        if placed.status is OrderStatus.REJECTED:
            self.pending.forget(client_order_id)
            self._reject(
                signal, Verdict(False, "broker", "the broker rejected the order"), decision,
                now, record,
            )
            return
        self.stats.entries += 1

    # ================================================================== order updates
    def on_order_update(self, update: OrderUpdate) -> None:
        """A broker event: journal the order's state; fills move positions."""
        order = update.order
        self.journal.record_order(order, at=update.timestamp or self.clock.now())
        if update.fill is not None:
            self._apply_fill(order, update.fill)
            return
        if update.status in (OrderStatus.CANCELED, OrderStatus.REJECTED, OrderStatus.EXPIRED):
            if self.pending.is_waiting(order.symbol, order.client_order_id):
                self.pending.forget(order.client_order_id)
            position = self.book.get(order.symbol)
            if position is not None and order.client_order_id == position.stop_order_id:
                position.stop_order_id = None

    def _apply_fill(self, order: Order, fill: Fill) -> None:
        self.journal.record_fill(fill)
        plan = self.pending.plan(order.client_order_id)
        result = self.book.apply_fill(order, fill, plan.intent if plan else None)
        if result.added and order.status is OrderStatus.FILLED:
            self.pending.filled(fill.symbol, order.client_order_id)
        self.journal.record_position(result.position, fill.timestamp)
        if result.closed is not None:
            self._closed(result.closed)

    def _closed(self, closed: ClosedPosition) -> None:
        trade, decision = closed.trade, closed.position.decision
        self.closed_trades.append(trade)
        self.stats.closed_trades += 1
        self.sizer.streak.record(trade.is_win)
        self.journal.record_trade(trade)
        if self.trade_sink is not None:
            self.trade_sink(
                ClosedTradeRecord(
                    trade=trade,
                    entry_features=closed.position.features,
                    variant=decision.variant if decision else "none",
                    model_versions=dict(decision.model_versions) if decision else {},
                    win_probability=decision.win_probability if decision else None,
                    regime=decision.regime.value if decision and decision.regime else None,
                )
            )

    # ================================================================== recovery
    def reconcile(self, symbols: frozenset[str] | None = None) -> dict[str, list[str]]:
        """Align the engine with the broker at start-up (`trading.recovery.reconcile`):
        adopted positions, re-registered pending entries, vanished orders; with
        `symbols`, only theirs. Submits nothing."""
        return reconcile(
            broker=self.broker,
            journal=self.journal,
            book=self.book,
            pending=self.pending,
            now=self.clock.now(),
            symbols=symbols,
        ).as_dict()

    # ================================================================== helpers
    def _portfolio(self, equity: float, buying_power: float) -> Portfolio:
        holdings = {
            p.symbol: Holding(
                p.symbol,
                p.signed_qty,
                self._last_price.get(p.symbol, p.entry_price),
                self._sector_of(p.symbol),
            )
            for p in self.book
        }
        pending = {
            symbol: Holding(symbol, plan.qty, plan.signal.price, self._sector_of(symbol))
            for symbol, plan in self.pending.waiting()
        }
        return Portfolio(equity, buying_power, holdings, pending)

    def _returns_lookup(self, at: datetime) -> ReturnsLookup:
        feed = self.feed

        def lookup(symbol: str) -> np.ndarray | None:
            return feed.trailing_returns(symbol, at)

        return lookup

    def _reject(
        self, signal: Signal, verdict: Verdict, decision: Decision | None, now: datetime,
        entered: DecisionRecord | None = None,
    ) -> None:
        """A risk or sizing rule said no: journaled as a rejection and a refusal. With
        `entered` (the broker refused an entry already journaled as entered), that
        decision's record becomes the refusal."""
        self.stats.risk_rejected += 1
        self.stats.rejections_by_rule[verdict.rule] = (
            self.stats.rejections_by_rule.get(verdict.rule, 0) + 1
        )
        self.journal.record_rejection(
            signal_id=signal.signal_id,
            symbol=signal.symbol,
            strategy=signal.strategy,
            rule=verdict.rule,
            reason=verdict.reason,
            at=now,
        )
        category = (
            # the breaker and the operator's pause both stop new entries: `paused`
            "paused" if verdict.rule in (HALT_RULE, PAUSE_RULE)
            else "sizing" if verdict.rule == "sizing" else "risk"
        )
        self._refuse(signal, category, f"{verdict.rule}: {verdict.reason}", now, decision,
                     entered)

    def _refuse(
        self, signal: Signal, category: str, detail: str, now: datetime,
        decision: Decision | None = None, entered: DecisionRecord | None = None,
    ) -> None:
        self.stats.refusals[category] = self.stats.refusals.get(category, 0) + 1
        if entered is None:
            self._record(signal, SKIPPED, detail, now, decision, category=category)
            return
        self.journal.amend_decision(
            entered.decision_id, action=SKIPPED, category=category, reason=detail
        )
        self.last_decision = replace(entered, action=SKIPPED, category=category, reason=detail)

    def _record(
        self,
        signal: Signal,
        action: str,
        reason: str,
        now: datetime,
        decision: Decision | None = None,
        *,
        category: str = "",
        qty: float | None = None,
        client_order_id: str | None = None,
    ) -> DecisionRecord:
        record = DecisionRecord(
            signal_id=signal.signal_id,
            symbol=signal.symbol,
            side=signal.side.value,
            signal_time=signal.timestamp,
            strategy=signal.strategy,
            price=signal.price,
            action=action,
            reason=reason,
            decided_at=now,
            decision=decision,
            qty=qty,
            client_order_id=client_order_id,
            category=category,
        )
        self.journal.record_decision(record)
        self.last_decision = record
        return record

    # ================================================================== status
    def status(self) -> dict[str, object]:
        """Positions, P&L, open orders, last decision and breaker state (status file)."""
        account = self.broker.account()
        start = self.risk.session_start_equity
        return {
            "timestamp": self.clock.now().isoformat(),
            "equity": account.equity,
            "cash": account.cash,
            "day_pnl": None if start is None else account.equity - start,
            "halted": self.risk.halted,
            "positions": [
                {
                    "symbol": p.symbol,
                    "side": p.side.value,
                    "qty": p.qty,
                    "entry_price": p.entry_price,
                    "last_price": self._last_price.get(p.symbol, p.last_price),
                    "stop_price": p.stop_price,
                    "strategy": p.strategy,
                    "bars_held": p.bars_held,
                }
                for p in self.book
            ],
            "open_orders": [o.client_order_id for o in self.broker.open_orders()],
            "last_decision": None
            if self.last_decision is None
            else {
                "symbol": self.last_decision.symbol,
                "strategy": self.last_decision.strategy,
                "action": self.last_decision.action,
                "reason": self.last_decision.reason,
                "at": self.last_decision.decided_at.isoformat(),
            },
            "closed_trades": self.stats.closed_trades,
        }

    @property
    def open_positions(self) -> dict[str, float]:
        return self.book.signed_quantities()


def _exit_problem(signal: Signal, decision: Decision) -> str:
    stop, target, price = decision.stop_loss_price, decision.take_profit_price, signal.price
    if signal.side is Side.BUY and not (0 < stop < price < target):
        return f"long needs 0 < stop {stop:.4f} < price {price:.4f} < target {target:.4f}"
    if signal.side is Side.SELL and not (0 < target < price < stop):
        return f"short needs 0 < target {target:.4f} < price {price:.4f} < stop {stop:.4f}"
    return ""
