"""Retraining on the trade count, live: every `every` closed trades (counted in the
journal, so the count survives restarts) the engine service starts the `retrain`
deployment through a `RunLauncher` (Prefect's API, `monitoring.prefect_runs`). The last
count that started a run is an engine flag, written only once the run exists: a launcher
that is down is asked again on the next closed trade, at most once a minute. Each count's
run carries an idempotency key made of this journal's own id and the count, so an engine
killed between creating the run and writing the flag finds the same run on restart
instead of starting a second."""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any, Protocol

from monitoring.alerts import Priority
from monitoring.prefect_runs import StartedRun
from trading.control.events import EventHub
from trading.control.reads import JournalReads
from trading.control.store import ControlStore

log = logging.getLogger(__name__)

FLAG = "retrain_trigger"
JOURNAL_ID = "retrain_journal_id"


class RunLauncher(Protocol):
    deployment: str

    def launch(
        self, parameters: dict[str, Any], *, idempotency_key: str | None = None
    ) -> StartedRun: ...


class RetrainOnTrades:
    def __init__(
        self,
        *,
        every: int,
        reads: JournalReads,
        store: ControlStore,
        hub: EventHub,
        launcher: RunLauncher | None,
        retry_seconds: float = 60.0,
    ) -> None:
        self.every = every
        self.reads = reads
        self.store = store
        self.hub = hub
        self.launcher = launcher
        self.retry_seconds = retry_seconds
        self.last_error: str | None = None
        self._last_try = -float("inf")

    @property
    def last_count(self) -> int:
        """The closed-trade count that started the last run (0: none yet)."""
        flag = self.store.flag(FLAG)
        return int(flag["count"]) if flag else 0

    def _run_key(self, closed: int) -> str:
        """`<journal id>:trades-<count>`: one run per count per journal, whoever asks."""
        journal_id = self.store.flag(JOURNAL_ID)
        if journal_id is None:
            journal_id = uuid.uuid4().hex
            self.store.set_flag(JOURNAL_ID, journal_id)
        return f"{journal_id}:trades-{closed}"

    def status(self) -> dict[str, Any]:
        closed = self.reads.closed_trade_count()
        last = self.last_count
        return {
            "every": self.every,
            "closed_trades": closed,
            "since_last": closed - last,
            "next_at": last + self.every,
            "deployment": self.launcher.deployment if self.launcher else None,
            "runs": self.store.runs(),
            "last_error": self.last_error,
        }

    def check(self) -> StartedRun | None:
        """Start a run when `every` trades closed since the last one (a closed-trade
        listener of the hub)."""
        closed = self.reads.closed_trade_count()
        if closed - self.last_count < self.every or self.launcher is None:
            return None
        now = time.monotonic()
        if now - self._last_try < self.retry_seconds:
            return None
        self._last_try = now
        parameters = {"trigger": "trades", "force": True}
        try:
            run = self.launcher.launch(parameters, idempotency_key=self._run_key(closed))
        except Exception as exc:  # Prefect down: trading goes on, asked again later
            self.last_error = str(exc)
            self.hub.tell("retrain", f"retrain not started ({closed} closed trades): {exc}")
            return None
        self.last_error = None
        self.store.record_run(
            run.run_id,
            closed_trades=closed,
            deployment=self.launcher.deployment,
            state=run.state,
            url=run.url,
        )
        self.store.set_flag(FLAG, {"count": closed, "run_id": run.run_id})
        self.hub.tell(
            "retrain",
            f"RETRAIN started after {closed} closed trades: {self.launcher.deployment} run "
            f"{run.run_id}",
        )
        self.hub.alert(
            f"retrain:{closed}",
            Priority.MEDIUM,
            "retrain started",
            f"{closed} closed trades: {self.launcher.deployment} run {run.run_id}",
            details={"run_id": run.run_id, "url": run.url},
        )
        return run
