"""Where alerts go: a JSON-lines file (the audit trail), the rich console, an optional
webhook (Slack's or Discord's incoming-webhook payload, or the plain alert JSON for a
PagerDuty bridge...) and optional email over SMTP, each a `monitoring.alerts.AlertSink`;
`AlertConfig` says which are on, and `dispatcher_for` builds the dispatcher that feeds
them."""

from __future__ import annotations

import json
import smtplib
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr
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


WebhookFormat = Literal["slack", "discord", "json"]

# Discord embed colours by priority (red, orange, yellow, grey).
_DISCORD_COLOUR = {
    Priority.CRITICAL: 0xD7263D,
    Priority.HIGH: 0xF46036,
    Priority.MEDIUM: 0xE2C044,
    Priority.LOW: 0x8B98A5,
}


def webhook_payload(alert: Alert, format: WebhookFormat = "slack") -> dict[str, Any]:
    """The body a webhook receives: Slack's incoming-webhook message (`text` plus the
    alert's fields, which Slack ignores), Discord's (`content` and one embed, within
    Discord's length limits), or the alert's JSON alone."""
    headline = f"[{alert.priority.label}] {alert.title}: {alert.message}"
    if format == "discord":
        return {
            "content": headline[:2000],
            "embeds": [
                {
                    "title": f"[{alert.priority.label}] {alert.title}"[:256],
                    "description": alert.message[:4096],
                    "color": _DISCORD_COLOUR[alert.priority],
                    "timestamp": alert.created_at.isoformat(),
                    "footer": {"text": f"{alert.source} · {alert.key}"[:2048]},
                }
            ],
            "allowed_mentions": {"parse": []},
        }
    payload = alert.to_json()
    if format == "slack":
        payload["text"] = headline
    return payload


class WebhookSink:
    """POSTs the alert as JSON to a URL (Slack or Discord incoming webhook, PagerDuty
    bridge...). Retries transport errors and 5xx answers; a 4xx is a configuration
    problem, not retried."""

    name = "webhook"

    def __init__(
        self,
        url: str,
        *,
        min_priority: Priority = Priority.HIGH,
        format: WebhookFormat = "slack",
        timeout_seconds: float = 5.0,
        retries: int = 2,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"webhook URL must be http(s), got {url!r}", where="alerts.webhook")
        self.url = url
        self.min_priority = min_priority
        self.format: WebhookFormat = format
        self.timeout_seconds = timeout_seconds
        self.retries = retries
        self._transport = transport

    def send(self, alert: Alert) -> None:
        payload = webhook_payload(alert, self.format)
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


class EmailConfig(BaseModel):
    """Email over SMTP: the server, who sends, who receives, and the least urgent
    priority mailed. The password comes from the environment (`TRADEWIND_SMTP_PASSWORD`)
    at the edge, never from a file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str
    port: int = Field(587, ge=1, le=65535)
    sender: str
    recipients: tuple[str, ...] = Field(min_length=1)
    starttls: bool = True
    username: str | None = None
    password: SecretStr | None = None
    timeout_seconds: float = Field(10.0, gt=0)
    min_priority: Priority = Priority.HIGH


class EmailSink:
    """Mails one alert per message over SMTP (STARTTLS when configured)."""

    name = "email"

    def __init__(self, config: EmailConfig) -> None:
        self.config = config
        self.min_priority = config.min_priority

    def message(self, alert: Alert) -> EmailMessage:
        mail = EmailMessage()
        mail["Subject"] = f"[Tradewind {alert.priority.label}] {alert.title}"
        mail["From"] = self.config.sender
        mail["To"] = ", ".join(self.config.recipients)
        details = json.dumps(alert.to_json(), indent=2, sort_keys=True)
        mail.set_content(
            f"{alert.title}\n\n{alert.message}\n\nsource: {alert.source}\nkey: {alert.key}\n"
            f"at: {alert.created_at.isoformat()}\n\n{details}\n"
        )
        return mail

    def send(self, alert: Alert) -> None:
        c = self.config
        with smtplib.SMTP(c.host, c.port, timeout=c.timeout_seconds) as smtp:
            if c.starttls:
                smtp.starttls()
            if c.username and c.password is not None:
                smtp.login(c.username, c.password.get_secret_value())
            smtp.send_message(self.message(alert))


class AlertConfig(BaseModel):
    """Where alerts go and how long a repeat is suppressed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    jsonl_path: Path = Path("data/monitoring/alerts.jsonl")
    state_path: Path = Path("data/monitoring/alert_state.json")
    console: bool = True
    webhook_url: str | None = None
    webhook_format: WebhookFormat = "slack"
    webhook_min_priority: Priority = Priority.HIGH
    email: EmailConfig | None = None
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
        sinks.append(
            WebhookSink(
                config.webhook_url,
                min_priority=config.webhook_min_priority,
                format=config.webhook_format,
            )
        )
    if config.email is not None:
        sinks.append(EmailSink(config.email))
    return AlertDispatcher(
        sinks,
        dedup_window=timedelta(minutes=config.dedup_window_minutes),
        state_path=config.state_path,
    )
