"""Alert sinks, priority order and deduplication; the webhook is POSTed to a real HTTP
server on 127.0.0.1."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import StringIO
from pathlib import Path

import pytest
from rich.console import Console

from core.errors import ConfigError
from monitoring.alerts import Alert, AlertDispatcher, Priority
from monitoring.sinks import AlertConfig, ConsoleSink, JsonLinesSink, WebhookSink, dispatcher_for

START = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


class _Clock:
    def __init__(self) -> None:
        self.moment = START

    def __call__(self) -> datetime:
        return self.moment


def _alert(key: str, priority: Priority, title: str = "t") -> Alert:
    return Alert(key, priority, title, "message", "test", START, {"psi": 0.3, "nan": float("nan")})


class _Receiver:
    """A tiny webhook endpoint: records JSON bodies; answers with a configurable status."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, object]] = []
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                receiver.bodies.append(json.loads(self.rfile.read(length)))
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[_Receiver]:
    server = _Receiver()
    yield server
    server.close()


def test_dispatch_sends_most_urgent_first_to_every_sink(
    tmp_path: Path, receiver: _Receiver
) -> None:
    buffer = StringIO()
    path = tmp_path / "alerts.jsonl"
    dispatcher = AlertDispatcher(
        [
            JsonLinesSink(path),
            ConsoleSink(Console(file=buffer, width=200)),
            WebhookSink(receiver.url, min_priority=Priority.HIGH),
        ],
        dedup_window=timedelta(hours=1),
    )
    report = dispatcher.dispatch(
        [_alert("latency", Priority.LOW), _alert("drift:rsi_14", Priority.CRITICAL, "Drift")]
    )
    assert [a.key for a in report.sent] == ["drift:rsi_14", "latency"]
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["priority"] for line in lines] == ["critical", "low"]
    assert lines[0]["details"] == {"psi": 0.3, "nan": None}
    # the webhook only takes HIGH and above
    assert [body["key"] for body in receiver.bodies] == ["drift:rsi_14"]
    assert "P1 critical" in str(receiver.bodies[0]["text"])
    assert "Drift" in buffer.getvalue()
    assert "P4 low" in buffer.getvalue()


def test_repeats_are_suppressed_within_the_window_and_survive_a_restart(tmp_path: Path) -> None:
    clock = _Clock()
    state = tmp_path / "state.json"
    path = tmp_path / "alerts.jsonl"

    def dispatcher() -> AlertDispatcher:
        return AlertDispatcher(
            [JsonLinesSink(path)], dedup_window=timedelta(hours=1), state_path=state, now=clock
        )

    first = dispatcher().dispatch(
        [_alert("drift:x", Priority.MEDIUM), _alert("drift:x", Priority.MEDIUM)]
    )
    assert first.summary() == {"sent": 1, "suppressed": 1, "failures": 0}
    clock.moment = START + timedelta(minutes=30)
    second = dispatcher().dispatch([_alert("drift:x", Priority.MEDIUM)])  # new process, same state
    assert second.summary()["suppressed"] == 1
    escalated = dispatcher().dispatch([_alert("drift:x", Priority.CRITICAL)])
    assert escalated.summary()["sent"] == 1
    clock.moment = START + timedelta(minutes=95)
    after_window = dispatcher().dispatch([_alert("drift:x", Priority.MEDIUM)])
    assert after_window.summary()["sent"] == 1
    assert len(path.read_text().splitlines()) == 3


def test_a_failing_webhook_is_reported_and_does_not_stop_other_sinks(
    tmp_path: Path, receiver: _Receiver
) -> None:
    receiver.status = 503
    path = tmp_path / "alerts.jsonl"
    dispatcher = AlertDispatcher(
        [WebhookSink(receiver.url, retries=1), JsonLinesSink(path)], dedup_window=timedelta(0)
    )
    report = dispatcher.dispatch([_alert("rollback", Priority.CRITICAL)])
    assert len(receiver.bodies) == 2  # first try + one retry
    assert report.failures
    assert report.failures[0][0] == "webhook"
    assert "503" in report.failures[0][2]
    assert path.read_text().count("rollback") == 1


def test_a_client_error_is_not_retried(receiver: _Receiver) -> None:
    receiver.status = 404
    with pytest.raises(RuntimeError, match="404"):
        WebhookSink(receiver.url, retries=3).send(_alert("x", Priority.HIGH))
    assert len(receiver.bodies) == 1


def test_webhook_url_must_be_http() -> None:
    with pytest.raises(ConfigError, match="http"):
        WebhookSink("ftp://example")


def test_config_builds_the_sinks_under_the_data_dir(tmp_path: Path) -> None:
    config = AlertConfig.under(tmp_path, console=False, webhook_url="http://127.0.0.1:9/x")
    dispatcher = dispatcher_for(config)
    assert [sink.name for sink in dispatcher.sinks] == ["file", "webhook"]
    assert config.jsonl_path == tmp_path / "monitoring" / "alerts.jsonl"
    with pytest.raises(ValueError, match="extra"):
        AlertConfig.model_validate({"unknown": 1})
