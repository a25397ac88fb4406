"""Where alerts go: a JSON-lines file (the audit trail), the rich console, and an optional
webhook (Slack-style incoming webhook, PagerDuty bridge...), each a
`monitoring.alerts.AlertSink`; `AlertConfig` says which are on, and `dispatcher_for`
builds the dispatcher that feeds them."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field
from rich.console import Console

from core.errors import ConfigError
from monitoring.alerts import Alert, AlertDispatcher, AlertSink, Priority


class JsonLinesSink:
    """Appends one JSON object per alert to a file (the audit trail of every alert)."""

    name = "file"

    def __init__(self, path: Path, *, min_priority: Priority = Priority.LOW) -> None:
        self.path = path
        self.min_priority = min_priority

    def send(self, alert: Alert) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(alert.to_json(), sort_keys=True) + "\n")


_STYLE = {
    Priority.CRITICAL: "bold white on red",
    Priority.HIGH: "bold red",
    Priority.MEDIUM: "yellow",
    Priority.LOW: "cyan",
}


class ConsoleSink:
    """Prints alerts with rich, coloured by priority."""

    name = "console"

    def __init__(
        self, console: Console | None = None, *, min_priority: Priority = Priority.LOW
    ) -> None:
        self.console = console or Console(stderr=True)
        self.min_priority = min_priority

    def send(self, alert: Alert) -> None:
        self.console.print(
            f"[{_STYLE[alert.priority]}][{alert.priority.label}][/] "
            f"[bold]{alert.title}[/] — {alert.message} [dim]({alert.source})[/]",
            highlight=False,
        )


class WebhookSink:
    """POSTs the alert as JSON to a URL (Slack-style incoming webhook, PagerDuty bridge...).
    Retries transport errors and 5xx answers; a 4xx is a configuration problem, not retried."""

    name = "webhook"

    def __init__(
        self,
        url: str,
        *,
        min_priority: Priority = Priority.HIGH,
        timeout_seconds: float = 5.0,
        retries: int = 2,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"webhook URL must be http(s), got {url!r}", where="alerts.webhook")
        self.url = url
        self.min_priority = min_priority
        self.timeout_seconds = timeout_seconds
        self.retries = retries
        self._transport = transport

    def send(self, alert: Alert) -> None:
        payload = alert.to_json()
        payload["text"] = f"[{alert.priority.label}] {alert.title}: {alert.message}"
        last_error: Exception | None = None
        with httpx.Client(timeout=self.timeout_seconds, transport=self._transport) as client:
            for _ in range(self.retries + 1):
                try:
                    response = client.post(self.url, json=payload)
                except httpx.TransportError as exc:
                    last_error = exc
                    continue
                if response.status_code < 400:
                    return
                last_error = RuntimeError(f"webhook answered HTTP {response.status_code}")
                if response.status_code < 500:
                    break
        raise RuntimeError(f"webhook {self.url} failed: {last_error}")


class AlertConfig(BaseModel):
    """Where alerts go and how long a repeat is suppressed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    jsonl_path: Path = Path("data/monitoring/alerts.jsonl")
    state_path: Path = Path("data/monitoring/alert_state.json")
    console: bool = True
    webhook_url: str | None = None
    webhook_min_priority: Priority = Priority.HIGH
    dedup_window_minutes: float = Field(240.0, ge=0)

    @classmethod
    def under(cls, data_dir: Path, **overrides: Any) -> AlertConfig:
        """The default layout below a data directory."""
        values: dict[str, Any] = {
            "jsonl_path": data_dir / "monitoring" / "alerts.jsonl",
            "state_path": data_dir / "monitoring" / "alert_state.json",
        }
        values.update(overrides)
        return cls.model_validate(values)


def dispatcher_for(config: AlertConfig, *, console: Console | None = None) -> AlertDispatcher:
    """The dispatcher over the configured sinks, remembering what it sent in the state file."""
    sinks: list[AlertSink] = [JsonLinesSink(config.jsonl_path)]
    if config.console:
        sinks.append(ConsoleSink(console))
    if config.webhook_url:
        sinks.append(WebhookSink(config.webhook_url, min_priority=config.webhook_min_priority))
    return AlertDispatcher(
        sinks,
        dedup_window=timedelta(minutes=config.dedup_window_minutes),
        state_path=config.state_path,
    )
