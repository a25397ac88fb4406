"""What happened to the engine, told once: the terminal's story (one line per event that
matters: entries, exits with P&L and reason, refusals summarised per bar, reconnects,
model service down and back, the halt, lag starting and ending, control actions), the
alerts (`alerting.py`), the metrics, and the recent events the page shows.

The engine is not edited to say any of this: `observed.py` wraps its journal, broker and
model client, and the live runner (`trading.service`) reports bars, steps and polls."""

from __future__ import annotations

import logging
from collections import Counter, deque
from collections.abc import Callable
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from core.types import Fill, Trade
from core.utc import utc_now
from monitoring.alerts import Priority
from trading.control.alerting import AlertOutbox, engine_alert
from trading.control.metrics import EngineMetrics
from trading.control.reasons import ENTERED, reason_category
from trading.journal import DecisionRecord

log = logging.getLogger(__name__)

NEW_YORK = ZoneInfo("America/New_York")

Writer = Callable[[str], None]
TradeListener = Callable[[Trade], object]


class EventHub:
    def __init__(
        self,
        *,
        story: Writer | None = None,
        outbox: AlertOutbox | None = None,
        metrics: EngineMetrics | None = None,
        keep: int = 200,
    ) -> None:
        self._story = story or (lambda line: None)
        self.outbox = outbox
        self.metrics = metrics or EngineMetrics()
        self._refusals: Counter[str] = Counter()
        self._events: deque[dict[str, Any]] = deque(maxlen=keep)
        self._trade_listeners: list[TradeListener] = []
        self.model_down_since: datetime | None = None
        self.breaker_state = "closed"
        self.fallback_in_force = False
        self.last_model_error: str | None = None
        self.lagging = False

    # ------------------------------------------------------------------ plumbing
    def tell(self, kind: str, line: str, **details: Any) -> None:
        """One line of the terminal's story, kept for the page too."""
        self._story(line)
        self._events.append(
            {"at": utc_now().isoformat(), "kind": kind, "message": line, "details": details}
        )

    def alert(
        self,
        key: str,
        priority: Priority,
        title: str,
        message: str,
        *,
        at: datetime | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        self.metrics.alerts.labels(priority=priority.name.lower()).inc()
        if self.outbox is not None:
            self.outbox.raise_alert(
                engine_alert(key, priority, title, message, at=at, details=details)
            )

    def recent(self, limit: int = 50, kinds: set[str] | None = None) -> list[dict[str, Any]]:
        items = [e for e in self._events if kinds is None or e["kind"] in kinds]
        return items[-limit:][::-1]

    def on_trade_closed(self, listener: TradeListener) -> None:
        self._trade_listeners.append(listener)

    # ------------------------------------------------------------------ the engine
    def decision(self, record: DecisionRecord) -> None:
        category = reason_category(record.action, record.reason, getattr(record, "category", ""))
        self.metrics.decisions.labels(action=record.action, reason=category or "-").inc()
        if record.action != ENTERED:
            self._refusals[category] += 1
            return
        decision = record.decision
        p = decision.win_probability if decision is not None else None
        exits = (
            f", stop {decision.stop_loss_price:.2f}, target {decision.take_profit_price:.2f}"
            if decision is not None
            else ""
        )
        source = f", {decision.source}" if decision is not None else ""
        self.tell(
            "entry",
            f"{_when(record.signal_time)} ENTRY {record.side} {record.qty or 0:g} {record.symbol} "
            f"@ ~{record.price:.2f} ({record.strategy}"
            f"{f', win p {p:.2f}' if p is not None else ''}{source}{exits})",
            symbol=record.symbol,
        )

    def fill(self, fill: Fill) -> None:
        self.alert(
            f"fill:{fill.fill_id}",
            Priority.LOW,
            f"fill {fill.side.value} {fill.qty:g} {fill.symbol}",
            f"{fill.side.value} {fill.qty:g} {fill.symbol} at {fill.price:.2f}",
            at=fill.timestamp,
            details={"client_order_id": fill.client_order_id},
        )

    def trade_closed(self, trade: Trade) -> None:
        self.metrics.closed_trades.inc()
        sign = "+" if trade.pnl >= 0 else "-"
        self.tell(
            "exit",
            f"{_when(trade.exit_time)} EXIT {trade.symbol} {sign}${abs(trade.pnl):,.2f} "
            f"({trade.return_pct:+.2%}) by {trade.exit_reason} after "
            f"{_held(trade)}; {trade.strategy}",
            symbol=trade.symbol,
            pnl=trade.pnl,
        )
        self.alert(
            f"trade:{trade.trade_id}",
            Priority.LOW,
            f"closed {trade.symbol} {sign}${abs(trade.pnl):,.2f}",
            f"{trade.symbol} {trade.side.value} {trade.qty:g}: {trade.entry_price:.2f} → "
            f"{trade.exit_price:.2f} by {trade.exit_reason}, P&L {trade.pnl:,.2f}",
            at=trade.exit_time,
        )
        for listener in self._trade_listeners:
            try:
                listener(trade)
            except Exception:  # a listener (the retrain trigger) must not stop trading
                log.exception("closed-trade listener failed")

    def bar_done(self, at: datetime) -> None:
        """The end of one bar time: the refusals of the bar in one line."""
        if not self._refusals:
            return
        total = sum(self._refusals.values())
        parts = ", ".join(f"{reason} {count}" for reason, count in self._refusals.most_common())
        self.tell("refusals", f"{_when(at)} refused {total} signal(s): {parts}")
        self._refusals.clear()

    # ------------------------------------------------------------------ the model service
    def model_failed(self, error: str, *, fallback: str) -> None:
        self.last_model_error = error
        self.fallback_in_force = fallback == "rules"
        if self.model_down_since is not None:
            return
        self.model_down_since = utc_now()
        what = "the rules decide" if fallback == "rules" else "no entries until it is back"
        self.tell("model_down", f"MODEL SERVICE DOWN: {error}; fallback in force: {what}")
        self.alert(
            "model:down",
            Priority.HIGH,
            "model service down, fallback in force",
            f"{error}; {what}",
            details={"fallback": fallback},
        )

    def model_ok(self) -> None:
        if self.model_down_since is None:
            return
        down_for = (utc_now() - self.model_down_since).total_seconds()
        self.model_down_since = None
        self.fallback_in_force = False
        self.tell("model_up", f"model service answers again after {down_for:.0f} s")
        self.alert(
            "model:up", Priority.LOW, "model service back", f"answering after {down_for:.0f} s"
        )

    def breaker(self, state: str) -> None:
        if state == self.breaker_state:
            return
        previous, self.breaker_state = self.breaker_state, state
        if state == "open":
            self.tell("breaker", "model client circuit breaker OPEN: calls are short-circuited")
            self.alert(
                "model:breaker",
                Priority.HIGH,
                "model client circuit breaker open",
                "consecutive failures opened the circuit; decisions use the fallback",
            )
        elif previous == "open" and state == "closed":
            self.tell("breaker", "model client circuit breaker closed")

    # ------------------------------------------------------------------ the runner
    def halted(self, session: date, reason: str) -> None:
        self.tell("halt", f"DAILY-LOSS HALT for {session}: {reason}; exits keep working")
        self.alert(
            f"halt:{session}",
            Priority.CRITICAL,
            "daily-loss halt",
            f"{session}: {reason}; no new entries until the next session",
        )

    def step_failed(self, error: str) -> None:
        self.tell("broker_error", f"trading step failed, retrying: {error}")
        self.alert("broker:error", Priority.HIGH, "broker or data error", error)

    def reconnected(self, count: int) -> None:
        self.metrics.reconnects.inc()
        self.tell("reconnect", f"order-update stream reconnected (connection {count})")
        self.alert(
            "stream:reconnect",
            Priority.MEDIUM,
            "order-update stream reconnected",
            f"connection {count}; missed updates were caught up over REST",
        )

    def lag(self, bars: int) -> None:
        """Warn once when the broker's clock gets ahead, once when the engine catches up."""
        if bars > 0 and not self.lagging:
            self.lagging = True
            self.tell(
                "lag",
                f"the broker's clock is {bars} bar(s) ahead of the engine; entries decided on "
                "them fill at later prices (replay the paper exchange slower)",
            )
        elif bars == 0 and self.lagging:
            self.lagging = False
            self.tell("lag", "caught up with the broker's clock")

    def stale(self, seconds: float) -> None:
        self.tell("heartbeat", f"HEARTBEAT STALE: the loop last came round {seconds:.0f} s ago")
        self.alert(
            "heartbeat:stale",
            Priority.HIGH,
            "engine heartbeat stale",
            f"the trading loop last came round {seconds:.0f} s ago",
        )

    def daily_summary(self, session: date, summary: dict[str, Any]) -> None:
        line = (
            f"{session} closed: equity {summary['equity']:,.2f}, day P&L "
            f"{summary['day_pnl']:+,.2f}, {summary['trades']} trade(s) closed "
            f"(P&L {summary['trades_pnl']:+,.2f}), {summary['entries']} entr(y/ies), "
            f"{summary['refusals']} refusal(s)"
        )
        if summary["trades"] or summary["entries"] or summary["refusals"] or summary["halted"]:
            self.tell("summary", line, **summary)  # quiet days only go to the alerts
        self.alert(f"summary:{session}", Priority.LOW, f"daily summary {session}", line,
                   details=summary)  # fmt: skip


def _when(moment: datetime) -> str:
    """A bar's time as a trader reads it: the day for a daily bar (stamped at midnight,
    UTC or New York), else New York time."""
    if moment.tzinfo is None or (moment.hour, moment.minute) == (0, 0):
        return moment.strftime("%Y-%m-%d")
    local = moment.astimezone(NEW_YORK)
    return local.strftime("%Y-%m-%d") if (local.hour, local.minute) == (0, 0) else (
        local.strftime("%Y-%m-%d %H:%M")
    )


def _held(trade: Trade) -> str:
    days = trade.holding_seconds / 86_400
    return f"{days:.0f} day(s)" if days >= 1 else f"{trade.holding_seconds / 60:.0f} min"
