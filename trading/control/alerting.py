"""The engine's alerts, through the monitor's sinks and dispatcher (`monitoring.sinks`,
`monitoring.alerts`): prioritised, deduplicated by key within the window, remembered
across restarts. Dispatching runs on its own thread, so a slow webhook or mail server
never holds up trading; the page reads the recent ones from memory.

What the engine raises, and how urgent it is:

| key | priority | when |
|---|---|---|
| `halt:<session>` | P1 critical | the daily-loss halt tripped |
| `model:breaker` | P2 high | the model client's circuit breaker opened |
| `model:down` | P2 high | the model service failed a decision; the fallback is in force |
| `broker:error` | P2 high | a trading step failed on the broker or its data |
| `heartbeat:stale` | P2 high | the trading loop has not come round for too long |
| `stream:reconnect` | P3 medium | the order-update stream reconnected |
| `retrain:<count>` | P3 medium | the retrain deployment was started on the trade count |
| `control:<n>` | P3 medium | an operator's control action |
| `model:up` | P4 low | the model service answers again |
| `fill:<id>`, `trade:<id>` | P4 low | a fill; a closed trade |
| `summary:<session>` | P4 low | the day's summary after the close |"""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections import deque
from datetime import datetime
from pathlib import Path
from typing import Any

from core.utc import utc_now
from monitoring.alerts import Alert, AlertDispatcher, Priority

log = logging.getLogger(__name__)

SOURCE = "engine"


def engine_alert(
    key: str,
    priority: Priority,
    title: str,
    message: str,
    *,
    at: datetime | None = None,
    details: dict[str, Any] | None = None,
) -> Alert:
    return Alert(
        key=key,
        priority=priority,
        title=title,
        message=message,
        source=SOURCE,
        created_at=at or utc_now(),
        details=details or {},
    )


class AlertOutbox:
    """Alerts queued by the engine, dispatched on a worker thread."""

    def __init__(
        self, dispatcher: AlertDispatcher, *, history: Path | None = None, keep: int = 200
    ) -> None:
        self._dispatcher = dispatcher
        self._queue: queue.Queue[Alert | None] = queue.Queue()
        self._recent: deque[dict[str, Any]] = deque(maxlen=keep)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.sent = 0
        self.suppressed = 0
        self.failures: list[tuple[str, str, str]] = []
        if history is not None and history.is_file():
            self._recent.extend(_tail(history, keep))

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="engine-alerts", daemon=True)
            self._thread.start()

    def raise_alert(self, alert: Alert) -> None:
        self._queue.put(alert)

    def recent(self, limit: int = 50) -> list[dict[str, Any]]:
        with self._lock:
            items = list(self._recent)
        return items[-limit:][::-1]

    def drain(self, timeout: float = 10.0) -> None:
        """Stop the worker once everything queued is out (shutdown)."""
        if self._thread is None:
            return
        self._queue.put(None)
        self._thread.join(timeout=timeout)
        self._thread = None

    def _work(self) -> None:
        while True:
            alert = self._queue.get()
            if alert is None:
                return
            try:
                report = self._dispatcher.dispatch([alert])
            except Exception:  # a broken state file must not end the alerts
                log.exception("alert %s could not be dispatched", alert.key)
                continue
            self.sent += len(report.sent)
            self.suppressed += len(report.suppressed)
            for failure in report.failures:
                self.failures.append(failure)
                log.warning("alert sink %s failed on %s: %s", *failure)
            with self._lock:
                for sent in report.sent:
                    self._recent.append(sent.to_json())


def _tail(path: Path, keep: int) -> list[dict[str, Any]]:
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()[-keep:]
    found = []
    for line in lines:
        try:
            item = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(item, dict) and item.get("source") == SOURCE:
            found.append(item)
    return found
