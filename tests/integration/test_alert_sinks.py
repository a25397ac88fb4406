"""The alert sinks against real peers: email over SMTP to a real local SMTP server
(aiosmtpd on 127.0.0.1), and the Slack and Discord webhook payloads POSTed to a real
local HTTP server; through the dispatcher, so dedup and priority order apply."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from monitoring.alerts import Alert, Priority
from monitoring.sinks import AlertConfig, EmailConfig, dispatcher_for

pytestmark = pytest.mark.integration

AT = datetime(2026, 3, 2, 21, 5, tzinfo=UTC)


def alert(key: str, priority: Priority, title: str = "daily-loss halt") -> Alert:
    return Alert(key, priority, title, "equity down 2.1% from 101,335.46", "engine", AT)


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.original_content))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[str, int, Mailbox]]:
    from aiosmtpd.controller import Controller

    from tests.integration.serving.harness import free_port

    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield "127.0.0.1", port, mailbox
    finally:
        controller.stop()


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(json.loads(body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    finally:
        server.shutdown()


def test_email_over_smtp_deduplicated_and_most_urgent_first(
    smtp: tuple[str, int, Mailbox], tmp_path: Path
) -> None:
    host, port, mailbox = smtp
    config = AlertConfig(
        jsonl_path=tmp_path / "alerts.jsonl",
        state_path=tmp_path / "state.json",
        console=False,
        email=EmailConfig(host=host, port=port, sender="engine@tradewind.test",
                          recipients=("desk@tradewind.test",), starttls=False),
    )
    dispatcher = dispatcher_for(config)
    report = dispatcher.dispatch(
        [
            alert("model:down", Priority.HIGH, "model service down"),
            alert("halt:2026-03-02", Priority.CRITICAL),
            alert("fill:x", Priority.LOW, "fill"),  # below the email's HIGH: file only
        ]
    )
    assert report.failures == []
    subjects = [m["Subject"] for m in mailbox.messages]
    assert subjects == [
        "[Tradewind P1 critical] daily-loss halt",
        "[Tradewind P2 high] model service down",
    ]
    assert mailbox.messages[0]["To"] == "desk@tradewind.test"
    assert "equity down 2.1%" in mailbox.messages[0].get_payload()
    # The same alert again within the window is suppressed (state survives a restart).
    again = dispatcher_for(config).dispatch([alert("halt:2026-03-02", Priority.CRITICAL)])
    assert [a.key for a in again.suppressed] == ["halt:2026-03-02"]
    assert len(mailbox.messages) == 2
    assert len((tmp_path / "alerts.jsonl").read_text().splitlines()) == 3


def test_slack_and_discord_webhook_payloads(
    webhook: tuple[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    url, received = webhook
    for shape in ("slack", "discord"):
        config = AlertConfig(
            jsonl_path=tmp_path / f"{shape}.jsonl",
            state_path=tmp_path / f"{shape}.json",
            console=False,
            webhook_url=url,
            webhook_format=shape,
            dedup_window_minutes=timedelta(hours=4).total_seconds() / 60,
        )
        assert dispatcher_for(config).dispatch([alert("k", Priority.HIGH)]).failures == []
    slack, discord = received
    assert slack["text"] == "[P2 high] daily-loss halt: equity down 2.1% from 101,335.46"
    assert slack["key"] == "k"
    assert discord["content"].startswith("[P2 high] daily-loss halt")
    embed = discord["embeds"][0]
    assert embed["title"] == "[P2 high] daily-loss halt"
    assert embed["color"] == 0xF46036
    assert embed["timestamp"] == AT.isoformat()
    assert discord["allowed_mentions"] == {"parse": []}
