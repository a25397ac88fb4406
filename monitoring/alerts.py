"""Alerts raised by the monitor and A/B flows: the alert record and its priority, the sink
interface, and the dispatcher that sends the most urgent first and drops repeats of the
same alert within a deduplication window. The sinks themselves (a JSON-lines file, the
rich console, an optional webhook) are in `monitoring.sinks`; which findings become
alerts, at which priority, is `monitoring.policy`.

Deduplication is keyed by `Alert.key` (e.g. ``drift:rsi_14``) and remembered in a small
JSON state file, so two monitor runs an hour apart do not page twice for the same drift.
A repeat at a *higher* priority than the one already sent is an escalation and goes out."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import IntEnum
from pathlib import Path
from typing import Any, Protocol

from core.strict_json import json_safe
from core.utc import utc_now


class Priority(IntEnum):
    """Lower number = more urgent (P1 pages someone, P4 is informational)."""

    CRITICAL = 1
    HIGH = 2
    MEDIUM = 3
    LOW = 4

    @property
    def label(self) -> str:
        return f"P{self.value} {self.name.lower()}"


@dataclass(frozen=True, slots=True)
class Alert:
    key: str  # dedup identity: the same condition on the same subject
    priority: Priority
    title: str
    message: str
    source: str  # which flow/check raised it: monitor.drift, monitor.latency, ab.rollback...
    created_at: datetime
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "priority": self.priority.name.lower(),
            "priority_level": int(self.priority),
            "title": self.title,
            "message": self.message,
            "source": self.source,
            "created_at": self.created_at.isoformat(),
            "details": json_safe(self.details),
        }


class AlertSink(Protocol):
    name: str
    min_priority: Priority

    def send(self, alert: Alert) -> None:
        """Deliver one alert; raise on failure (the dispatcher records it)."""
        ...


@dataclass(frozen=True, slots=True)
class DispatchReport:
    sent: list[Alert]
    suppressed: list[Alert]
    failures: list[tuple[str, str, str]]  # (sink, alert key, error)

    def summary(self) -> dict[str, int]:
        return {
            "sent": len(self.sent),
            "suppressed": len(self.suppressed),
            "failures": len(self.failures),
        }


class AlertDispatcher:
    """Sorts alerts by priority, suppresses repeats within the window, fans out to sinks."""

    def __init__(
        self,
        sinks: Sequence[AlertSink],
        *,
        dedup_window: timedelta,
        state_path: Path | None = None,
        now: Callable[[], datetime] = utc_now,
    ) -> None:
        self.sinks = list(sinks)
        self.dedup_window = dedup_window
        self.state_path = state_path
        self._now = now
        self._memory: dict[str, tuple[datetime, int]] = {}

    def _load_state(self) -> dict[str, tuple[datetime, int]]:
        state = dict(self._memory)
        if self.state_path is not None and self.state_path.is_file():
            try:
                raw = json.loads(self.state_path.read_text(encoding="utf-8"))
            except json.JSONDecodeError:
                raw = {}  # a torn state file only costs one duplicate alert
            for key, entry in raw.items():
                state[key] = (datetime.fromisoformat(entry["sent_at"]), int(entry["priority"]))
        return state

    def _save_state(self, state: dict[str, tuple[datetime, int]]) -> None:
        self._memory = dict(state)
        if self.state_path is None:
            return
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            key: {"sent_at": sent_at.isoformat(), "priority": priority}
            for key, (sent_at, priority) in state.items()
        }
        temporary = self.state_path.with_suffix(".tmp")
        temporary.write_text(json.dumps(payload, sort_keys=True), encoding="utf-8")
        temporary.replace(self.state_path)

    def dispatch(self, alerts: Iterable[Alert]) -> DispatchReport:
        now = self._now()
        state = {
            key: entry
            for key, entry in self._load_state().items()
            if now - entry[0] < self.dedup_window
        }
        # Most urgent first; within a run only the most urgent copy of a key goes out.
        ordered = sorted(alerts, key=lambda alert: (int(alert.priority), alert.created_at))
        sent: list[Alert] = []
        suppressed: list[Alert] = []
        failures: list[tuple[str, str, str]] = []
        for alert in ordered:
            previous = state.get(alert.key)
            if previous is not None and int(alert.priority) >= previous[1]:
                suppressed.append(alert)
                continue
            for sink in self.sinks:
                if alert.priority > sink.min_priority:
                    continue
                try:
                    sink.send(alert)
                except Exception as exc:  # one broken sink must not silence the others
                    failures.append((sink.name, alert.key, str(exc)))
            state[alert.key] = (now, int(alert.priority))
            sent.append(alert)
        self._save_state(state)
        return DispatchReport(sent=sent, suppressed=suppressed, failures=failures)
