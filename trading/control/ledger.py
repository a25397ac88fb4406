"""The daily-loss halt's memory, live: each session's baseline equity and its halt,
persisted in the journal's database (`ControlStore`), so a restart neither resets the
baseline nor lifts a halt.

The baseline of a session is, in this order:
1. the one recorded when the session started (a restart reuses it);
2. the broker's `last_equity` (Alpaca: the equity at the previous session's close),
   when the broker's clock is in that session (a broker already in a later session
   reports a later close);
3. the last equity the engine saw during an earlier session (the journal's last mark);
4. the journal's equity curve, its last point before the session;
5. the equity seen now (a first session with no history at all)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date, datetime

import pandas as pd
from sqlalchemy import Engine, select

from core.calendar import MarketCalendar
from trading.control.store import ControlStore
from trading.journal import equity_curve
from trading.ports import Account

log = logging.getLogger(__name__)


class JournalSessionLedger:
    """`trading.risk.SessionLedger` on the control store and the broker's account."""

    def __init__(
        self,
        store: ControlStore,
        journal_engine: Engine,
        *,
        account: Callable[[], Account],
        broker_time: Callable[[], datetime],
        calendar: MarketCalendar | None = None,
    ) -> None:
        self._store = store
        self._journal = journal_engine
        self._account = account
        self._broker_time = broker_time
        self._calendar = calendar or MarketCalendar()
        self.sources: dict[date, str] = {}

    def opening_equity(self, session: date, observed: float) -> float:
        mark = self._store.session_mark(session)
        if mark is not None and mark.get("baseline_equity") is not None:
            self.sources[session] = str(mark["baseline_source"])
            return float(mark["baseline_equity"])
        equity, source = self._best_baseline(session, observed)
        self._store.save_baseline(session, equity, source)
        self.sources[session] = source
        log.info("session %s baseline %.2f from %s", session, equity, source)
        return equity

    def halt_of(self, session: date) -> str | None:
        mark = self._store.session_mark(session)
        return None if mark is None or mark.get("halted_at") is None else str(mark["halt_reason"])

    def record_halt(self, session: date, reason: str) -> None:
        self._store.save_halt(session, reason)

    def observe_close(self, session: date, equity: float) -> None:
        """The latest equity seen in `session` (its close, once the session is over)."""
        self._store.save_close(session, equity)

    def broker_session(self) -> date:
        return self._calendar.session_date(self._broker_time())

    # ------------------------------------------------------------------ sources
    def _best_baseline(self, session: date, observed: float) -> tuple[float, str]:
        try:
            in_session = self.broker_session() == session
            last_equity = self._account().last_equity if in_session else None
        except Exception as exc:  # the broker is one source among several
            log.warning("no last_equity from the broker for %s: %s", session, exc)
            last_equity = None
        if last_equity is not None and last_equity > 0:
            return float(last_equity), "broker_last_equity"
        earlier = self._store.last_close_before(session)
        if earlier is not None:
            return earlier[1], "journal_last_mark"
        curve = self._journal_mark_before(session)
        if curve is not None:
            return curve, "journal_equity_curve"
        return observed, "observed"

    def _journal_mark_before(self, session: date) -> float | None:
        start = pd.Timestamp(session, tz="UTC")
        query = (
            select(equity_curve.c.equity)
            .where(equity_curve.c.timestamp < start.to_pydatetime())
            .order_by(equity_curve.c.timestamp.desc())
            .limit(1)
        )
        with self._journal.connect() as connection:
            row = connection.execute(query).first()
        return None if row is None else float(row[0])
