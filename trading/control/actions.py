"""The operator's controls: pause and resume new entries, flatten, close one position,
cancel orders. Each is safe to repeat (a second pause changes nothing and says so) and
journaled (what, when, from where, with what outcome) in `control_actions`.

They run on the engine's own event loop, between two trading steps, so a control never
interleaves with a decision. Exits always go through the engine (`request_exit`), so the
closed trade is journaled with its reason (`flatten`, `operator_close`); a position the
engine does not know is closed at the broker directly. Pausing touches entries only: the
risk manager refuses them under the `paused` rule; exits and stops keep working."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from core.errors import BrokerError, ConfigError, NotFoundError
from core.utc import utc_now
from monitoring.alerts import Priority
from trading.control.events import EventHub
from trading.control.store import ControlAction, ControlStore
from trading.engine import TradingEngine
from trading.ports import Broker
from trading.service import TradingService

PAUSED_FLAG = "paused"


@dataclass(frozen=True, slots=True)
class ActionResult:
    action: str
    outcome: str  # done | already | partial
    detail: str
    affected: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "outcome": self.outcome,
            "detail": self.detail,
            "affected": self.affected,
        }


class EngineControls:
    def __init__(
        self,
        engine: TradingEngine,
        broker: Broker,
        store: ControlStore,
        hub: EventHub,
        service: TradingService | None = None,
    ) -> None:
        self.engine = engine
        self.broker = broker
        self.store = store
        self.hub = hub
        self.service = service  # the live runner: its watchlist

    def restore(self) -> None:
        """A pause survives a restart: the engine comes back paused if it was."""
        paused = self.store.flag(PAUSED_FLAG)
        if paused:
            self.engine.risk.pause(str(paused.get("reason", "paused before a restart")))
            self.hub.tell("control", f"entries stay PAUSED ({paused.get('reason')})")

    # ------------------------------------------------------------------ entries
    def pause(self, origin: str, reason: str = "") -> ActionResult:
        why = reason or f"paused by {origin}"
        if self.engine.risk.paused is not None:
            return self._done("pause", "", origin, "already", "entries were already paused")
        self.engine.risk.pause(why)
        self.store.set_flag(PAUSED_FLAG, {"reason": why, "at": utc_now().isoformat()})
        return self._done("pause", "", origin, "done", f"new entries paused ({why})")

    def resume(self, origin: str) -> ActionResult:
        if self.engine.risk.paused is None:
            return self._done("resume", "", origin, "already", "entries were not paused")
        self.engine.risk.resume()
        self.store.set_flag(PAUSED_FLAG, None)
        return self._done("resume", "", origin, "done", "new entries allowed again")

    # ------------------------------------------------------------------ exits and orders
    def flatten(self, origin: str) -> ActionResult:
        """Cancel every open order, then close every position (at the market)."""
        canceled, failed = self._cancel(order.client_order_id for order in self._open_orders())
        closing: list[str] = []
        for position in self.broker.positions():
            if abs(position.qty) < 1e-12:
                continue
            if self._close(position.symbol, "flatten"):
                closing.append(position.symbol)
        outcome = "partial" if failed else ("done" if canceled or closing else "already")
        detail = (
            f"canceled {len(canceled)} order(s), closing {', '.join(closing) or 'nothing'}"
            + (f"; failed: {'; '.join(failed)}" if failed else "")
        )
        return self._done("flatten", "all", origin, outcome, detail, canceled + closing)

    def close(self, symbol: str, origin: str) -> ActionResult:
        symbol = symbol.upper()
        held = {p.symbol for p in self.broker.positions() if abs(p.qty) > 1e-12}
        if symbol not in held and self.engine.book.get(symbol) is None:
            raise NotFoundError(f"no open position in {symbol}", where="close")
        if self._close(symbol, "operator_close"):
            return self._done("close", symbol, origin, "done", f"closing {symbol} at the market",
                              [symbol])  # fmt: skip
        return self._done("close", symbol, origin, "already", f"{symbol} is already closing")

    def cancel_orders(self, origin: str, client_order_ids: list[str] | None = None) -> ActionResult:
        open_ids = [order.client_order_id for order in self._open_orders()]
        wanted = [i for i in client_order_ids if i in open_ids] if client_order_ids else open_ids
        canceled, failed = self._cancel(wanted)
        outcome = "partial" if failed else ("done" if canceled else "already")
        detail = f"canceled {len(canceled)} order(s)" + (
            f"; failed: {'; '.join(failed)}" if failed else ""
        )
        return self._done("cancel_orders", "all" if not client_order_ids else ",".join(
            client_order_ids), origin, outcome, detail, canceled)  # fmt: skip

    # ------------------------------------------------------------------ the watchlist
    def watchlist(self) -> dict[str, Any]:
        """The symbols traded now (the watchlist's and any still held), the watchlist
        itself, where it came from and when it last changed."""
        service = self._service()
        changed = service.watchlist_changed_at
        path = service.config.watchlist_path
        return {
            "symbols": list(service.symbols),
            "watchlist": list(service.watchlist),
            "source": service.watchlist_source,
            "path": str(path) if path is not None else None,
            "changed_at": changed.isoformat() if changed is not None else None,
        }

    def set_watchlist(self, symbols: list[str], origin: str) -> ActionResult:
        """Replace the watchlist: it takes effect as a change of the watchlist file does
        (new symbols warmed up, held ones kept until their exits)."""
        service = self._service()
        before = service.symbols
        changed = service.replace_watchlist(symbols)
        after = service.symbols
        added = [s for s in after if s not in before]
        removed = [s for s in before if s not in after]
        detail = f"trading {', '.join(after)}"
        if added or removed:
            detail += (
                f" (added {', '.join(added) or 'none'}; removed {', '.join(removed) or 'none'})"
            )
        if service.config.watchlist_path is not None:
            detail += f"; written to {service.config.watchlist_path.name}"
        return self._done("watchlist", "", origin, "done" if changed else "already", detail,
                          list(after))  # fmt: skip

    def _service(self) -> TradingService:
        if self.service is None:
            raise ConfigError("this engine has no live runner: no watchlist to read or change",
                              where="watchlist")  # fmt: skip
        return self.service

    # ------------------------------------------------------------------ helpers
    def _open_orders(self) -> list[Any]:
        return list(self.broker.open_orders())

    def _cancel(self, client_order_ids: Any) -> tuple[list[str], list[str]]:
        canceled, failed = [], []
        for client_order_id in client_order_ids:
            try:
                self.broker.cancel(client_order_id)
                canceled.append(client_order_id)
            except BrokerError as exc:
                failed.append(f"{client_order_id}: {exc.message}")
        return canceled, failed

    def _close(self, symbol: str, reason: str) -> bool:
        """Close through the engine when it holds the position, else at the broker."""
        position = self.engine.book.get(symbol)
        if position is not None:
            if position.exit_reason is not None:
                return False  # already on its way out
            return self.engine.request_exit(symbol, reason) is not None
        return self.broker.close_position(symbol) is not None

    def _done(
        self,
        action: str,
        target: str,
        origin: str,
        outcome: str,
        detail: str,
        affected: list[str] | None = None,
    ) -> ActionResult:
        self.store.record_action(ControlAction(utc_now(), action, target, origin, outcome, detail))
        self.hub.tell("control", f"CONTROL {action}{f' {target}' if target else ''} from "
                      f"{origin}: {detail}")  # fmt: skip
        if outcome != "already":
            self.hub.alert(
                f"control:{action}:{target}:{utc_now().isoformat()}",
                Priority.MEDIUM,
                f"operator {action}",
                f"{detail} (from {origin})",
            )
        return ActionResult(action, outcome, detail, list(affected or []))
