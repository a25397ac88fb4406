"""The engine's control plane at run time: the observer the live runner reports to
(heartbeat, bars done, lag, failed steps), the live state the API serves (a snapshot of
the broker's account, orders, positions and clock, read at most every
`status_refresh_seconds`), the halt and the daily summary after each bar time, the
heartbeat watchdog, and the model-service probe (health and versions per A/B arm)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from datetime import UTC, date, datetime
from typing import Any

from core.calendar import MarketCalendar
from core.errors import BrokerError, ModelUnavailableError
from core.types import MarketClock, Order, Position
from core.utc import utc_now
from trading.control.actions import EngineControls
from trading.control.alerting import AlertOutbox
from trading.control.config import EngineApiConfig
from trading.control.events import EventHub
from trading.control.ledger import JournalSessionLedger
from trading.control.observed import ObservedBroker, ObservedModelClient
from trading.control.reads import JournalReads
from trading.control.retrain import RetrainOnTrades
from trading.control.store import ControlStore
from trading.ports import Account
from trading.service import TradingService

log = logging.getLogger(__name__)

MODEL_PROBE_SECONDS = 5.0


class EngineControlPlane:
    def __init__(
        self,
        *,
        config: EngineApiConfig,
        service: TradingService,
        broker: ObservedBroker,
        store: ControlStore,
        hub: EventHub,
        ledger: JournalSessionLedger | None,
        retrain: RetrainOnTrades,
        model: ObservedModelClient | None = None,
        decides: str = "fixed rules",
        outbox: AlertOutbox | None = None,
    ) -> None:
        self.config = config
        self.service = service
        self.engine = service.engine
        self.broker = broker
        self.store = store
        self.hub = hub
        self.ledger = ledger
        self.retrain = retrain
        self.model = model
        self.decides = decides
        self.outbox = outbox
        self.reads = JournalReads(self.engine.journal.engine)
        self.controls = EngineControls(self.engine, broker, store, hub, service)
        self.calendar = MarketCalendar()
        self.api_url: str | None = None
        self.model_status: dict[str, Any] | None = None
        self._heartbeat = time.monotonic()
        self._stale_told = False
        self._account: Account | None = None
        self._orders: list[Order] = []
        self._positions: list[Position] = []
        self._market: MarketClock | None = None
        self._read_at = -float("inf")
        self._read_error: str | None = None
        self._halt_told: date | None = None
        self._summarised: date | None = None
        self._watchdog: threading.Thread | None = None
        self._stopping = threading.Event()
        hub.on_trade_closed(lambda _trade: self.retrain.check())

    # ================================================================ the runner's observer
    def polled(self) -> None:
        self._heartbeat = time.monotonic()
        self._stale_told = False
        self.broker.check_stream()
        self.refresh()
        if self.engine.risk.session is None and self.service.last_bar_time is not None:
            self._resume_session(self.service.last_bar_time)

    def _resume_session(self, last_bar: datetime) -> None:
        """After a restart, the session of the last bar traded is the breaker's at once
        (its persisted baseline and halt), not only when the next bar comes."""
        if self._account is None:
            return
        self.engine.risk.start_session(self.calendar.session_date(last_bar), self._account.equity)
        self.check_halt()

    def lag(self, bars: int) -> None:
        self.hub.lag(bars)

    def step_failed(self, error: str) -> None:
        self.hub.step_failed(error)

    def bar_done(self, at: datetime) -> None:
        self.hub.bar_done(at)
        session = self.calendar.session_date(at)
        try:
            account = self.broker.account()
            market = self.broker.market_clock()
        except BrokerError as exc:
            self.hub.step_failed(exc.message)
            return
        self.engine.risk.update_equity(account.equity)
        self.check_halt()
        self.refresh(force=True)  # the API shows the bar's outcome at once
        if self.ledger is not None and self.calendar.session_date(market.timestamp) == session:
            self.ledger.observe_close(session, account.equity)
        if self.service.config.timeframe.endswith("Day"):
            self._summary(session, account)  # a daily bar is final only after the close
        elif self._summarised is not None and session != self._summarised:
            self._summary(self._summarised, account)
        if not self.service.config.timeframe.endswith("Day"):
            self._summarised = session

    def check_halt(self) -> None:
        risk = self.engine.risk
        if risk.halted and risk.session is not None and self._halt_told != risk.session:
            self._halt_told = risk.session
            self.hub.halted(risk.session, risk.halt_reason or "daily loss limit")

    def _summary(self, session: date, account: Account) -> None:
        if self._summarised == session and self.service.config.timeframe.endswith("Day"):
            return
        self._summarised = session
        # Bars carry their session's date (a daily bar is stamped at its midnight).
        start = datetime(session.year, session.month, session.day, tzinfo=UTC)
        day_trades = self.reads.trades(since=start, limit=10_000)
        entries, refusals = self.reads.day_decisions(start)
        baseline = self.engine.risk.session_start_equity
        self.hub.daily_summary(
            session,
            {
                "equity": account.equity,
                "day_pnl": account.equity - baseline if baseline else 0.0,
                "trades": len(day_trades),
                "trades_pnl": float(sum(t["pnl"] or 0.0 for t in day_trades)),
                "entries": entries,
                "refusals": refusals,
                "halted": self.engine.risk.halted,
            },
        )

    # ================================================================ companions
    def start_watchdog(self) -> None:
        """A thread (not a task: it must see a loop that is stuck) that raises the stale
        heartbeat alert once per stall."""

        def watch() -> None:
            while not self._stopping.wait(1.0):
                age = time.monotonic() - self._heartbeat
                if age > self._heartbeat_allowance() and not self._stale_told:
                    self._stale_told = True
                    self.hub.stale(age)

        self._watchdog = threading.Thread(target=watch, name="engine-watchdog", daemon=True)
        self._watchdog.start()

    def _heartbeat_allowance(self) -> float:
        """How long the loop may stay away: outside sessions it naps for minutes."""
        closed = self._market is not None and not self._market.is_open
        nap = self.service.config.max_sleep_seconds if closed else self.service.config.poll_seconds
        return self.config.stale_heartbeat_seconds + nap

    def stop(self) -> None:
        self._stopping.set()

    async def probe_models(self, stop: asyncio.Event) -> None:
        """Ask the model service for its state now and then (health and versions per arm):
        a dead service is noticed even when no signal comes."""
        if self.model is None or self.model.endpoint is None:
            return
        while not stop.is_set():
            try:
                self.model_status = await asyncio.to_thread(self.model.models)
                self.hub.model_ok()
            except ModelUnavailableError as exc:
                self.hub.model_failed(exc.message, fallback=self.model.fallback)
            except Exception as exc:  # a probe must never end the engine
                log.warning("model probe failed: %s", exc)
            self.hub.breaker(self.model.breaker_state())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=MODEL_PROBE_SECONDS)

    # ================================================================ the live snapshot
    def refresh(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._read_at < self.config.status_refresh_seconds:
            return
        self._read_at = now
        try:
            self._account = self.broker.account()
            self._orders = self.broker.open_orders()
            self._positions = self.broker.positions()
            self._market = self.broker.market_clock()
            self._read_error = None
        except BrokerError as exc:
            self._read_error = exc.message

    def status(self) -> dict[str, Any]:
        account, market, risk = self._account, self._market, self.engine.risk
        baseline = risk.session_start_equity
        equity = account.equity if account else None
        day_pnl = equity - baseline if equity is not None and baseline else None
        state = self.service.state
        if state == "running" and risk.halted:
            state = "halted"
        elif state == "running" and risk.paused is not None:
            state = "paused"
        session = risk.session
        arms = {}
        if self.model_status:
            for arm in ("champion", "challenger"):
                described = self.model_status.get(arm)
                arms[arm] = described.get("versions") if isinstance(described, dict) else None
        return {
            "state": state,
            "decides": self.decides,
            "broker": self.service.broker_name,
            "symbols": list(self.service.config.symbols),
            "exchange": None
            if market is None
            else {
                "clock": market.timestamp.isoformat(),
                "session": self.calendar.session_date(market.timestamp).isoformat(),
                "is_open": market.is_open,
                "next_open": market.next_open.isoformat() if market.next_open else None,
            },
            "broker_error": self._read_error,
            "engine_time": self.engine.clock.now().isoformat(),
            "last_bar": self.service.last_bar_time.isoformat()
            if self.service.last_bar_time
            else None,
            "lag_bars": self.service.lag_bars,
            "halted": risk.halted,
            "halt_reason": risk.halt_reason,
            "paused": risk.paused is not None,
            "pause_reason": risk.paused,
            "session": session.isoformat() if session else None,
            "equity": equity,
            "cash": account.cash if account else None,
            "buying_power": account.buying_power if account else None,
            "baseline_equity": baseline,
            "baseline_source": self.ledger.sources.get(session) if self.ledger and session
            else None,
            "day_pnl": day_pnl,
            "day_pnl_pct": day_pnl / baseline if day_pnl is not None and baseline else None,
            "daily_loss_limit_pct": risk.config.daily_loss_halt_pct,
            "heartbeat_age_seconds": round(time.monotonic() - self._heartbeat, 3),
            "model_service": {
                "endpoint": self.model.endpoint if self.model else None,
                "healthy": self.hub.model_down_since is None,
                "down_since": self.hub.model_down_since.isoformat()
                if self.hub.model_down_since
                else None,
                "breaker": self.model.breaker_state() if self.model else "none",
                "fallback": self.model.fallback if self.model else None,
                "fallback_in_force": self.hub.model_down_since is not None,
                "last_error": self.hub.last_model_error,
                "arms": arms,
                "challenger_share": (self.model_status or {}).get("ab", {}).get(
                    "challenger_share"
                ),
            },
            "open_positions": len(self._positions),
            "open_orders": len(self._orders),
            "closed_trades": self.reads.closed_trade_count(),
            "alerts": {
                "sent": self.outbox.sent if self.outbox else 0,
                "suppressed": self.outbox.suppressed if self.outbox else 0,
                "failures": len(self.outbox.failures) if self.outbox else 0,
            },
            "started_at": self.service.started_at.isoformat(),
            "pid": os.getpid(),
            "written_at": utc_now().isoformat(),
        }

    def positions(self) -> list[dict[str, Any]]:
        held = {p.symbol: p for p in self._positions}
        rows = []
        for position in self.engine.book:
            broker_side = held.pop(position.symbol, None)
            last = (
                broker_side.market_price
                if broker_side is not None and broker_side.market_price
                else position.last_price or position.entry_price
            )
            unrealized = (last - position.entry_price) * position.signed_qty
            decision = position.decision
            rows.append(
                {
                    "symbol": position.symbol,
                    "side": position.side.value,
                    "qty": position.qty,
                    "entry_price": position.entry_price,
                    "entry_time": position.entry_time.isoformat(),
                    "last_price": last,
                    "stop_price": position.stop_price,
                    "take_profit_price": decision.take_profit_price if decision else None,
                    "unrealized_pnl": unrealized,
                    "unrealized_pct": unrealized / (position.entry_price * position.qty)
                    if position.entry_price and position.qty
                    else None,
                    "strategy": position.strategy,
                    "bars_held": position.bars_held,
                    "exiting": position.exit_reason,
                    "entry_decision": None
                    if decision is None
                    else {
                        "decision_id": decision.decision_id,
                        "win_probability": decision.win_probability,
                        "arm": decision.variant,
                        "source": decision.source,
                        "model_versions": dict(decision.model_versions),
                    },
                }
            )
        for symbol, other in held.items():  # held at the broker, unknown to the engine
            rows.append(
                {
                    "symbol": symbol,
                    "side": "buy" if other.qty > 0 else "sell",
                    "qty": abs(other.qty),
                    "entry_price": other.avg_entry_price,
                    "last_price": other.market_price,
                    "stop_price": None,
                    "take_profit_price": None,
                    "unrealized_pnl": (other.market_price - other.avg_entry_price) * other.qty
                    if other.market_price
                    else None,
                    "strategy": None,
                    "entry_decision": None,
                    "unmanaged": True,
                }
            )
        return rows

    def orders(self) -> list[dict[str, Any]]:
        return [
            {
                "client_order_id": order.client_order_id,
                "symbol": order.symbol,
                "side": order.side.value,
                "qty": order.qty,
                "type": order.type.value,
                "order_class": order.order_class.value,
                "status": order.status.value,
                "limit_price": order.limit_price,
                "stop_price": order.stop_price,
                "filled_qty": order.filled_qty,
                "parent": order.parent_client_order_id,
                "created_at": order.created_at.isoformat() if order.created_at else None,
            }
            for order in self._orders
        ]

    def lifecycle(self) -> dict[str, Any]:
        """Model lifecycle as the engine sees it: retrain runs it started, the versions
        each arm serves, and the model service's reload history."""
        status = self.model_status or {}
        return {
            "retrain": self.retrain.status(),
            "served": {
                "swapped_at": status.get("swapped_at"),
                "reloads": status.get("reloads"),
                "last_reload_error": status.get("last_reload_error"),
                "registry_aliases": status.get("registry_aliases"),
            },
            "events": self.hub.recent(
                20, {"model_down", "model_up", "breaker", "retrain", "halt"}
            ),
        }

    def dashboard(self) -> dict[str, Any]:
        """Everything the page shows, in one answer (what its updates carry)."""
        from core.strict_json import json_safe

        return json_safe(
            {
                "status": self.status(),
                "positions": self.positions(),
                "orders": self.orders(),
                "decisions": self.reads.decisions(limit=25),
                "performance": self.reads.performance(),
                "ab": self.reads.ab(),
                "equity": self.reads.equity(limit=1_000),
                "alerts": self.outbox.recent(20) if self.outbox else [],
                "events": self.hub.recent(30),
                "lifecycle": self.lifecycle(),
                "controls": [a.as_dict() for a in self.store.actions(10)],
            }
        )
