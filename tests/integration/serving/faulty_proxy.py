"""A real HTTP proxy in front of the real model service that misbehaves when told to:
each `POST /decide` is passed on, or answered slowly (past the client's timeout), with
garbage (HTML), with JSON that is no decision, or not at all (the connection closed).
What a signal meets is chosen by `fault(signal_time, n)`, so a replay meets the same
faults at the same bars on every run."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

FAULTS = ("slow", "garbage", "nonsense", "down")
Fault = Callable[[str, int], str | None]  # (signal time, n-th decide) -> fault or None


class FaultyProxy:
    def __init__(self, upstream: str, fault: Fault, *, slow_seconds: float = 2.0) -> None:
        self.upstream = upstream.rstrip("/")
        self.fault = fault
        self.slow_seconds = slow_seconds
        self.decides = 0  # POST /decide requests that reached the proxy
        self.faulted: dict[str, int] = dict.fromkeys(FAULTS, 0)
        self._lock = threading.Lock()
        self._http = httpx.Client(timeout=60)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> FaultyProxy:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._http.close()

    def _choose(self, body: bytes) -> str | None:
        try:
            moment = str(json.loads(body)["signal"]["timestamp"])
        except (ValueError, KeyError, TypeError):
            return None  # not a decision request (the pre-run check): passed on
        with self._lock:
            self.decides += 1
            chosen = self.fault(moment, self.decides)
            if chosen is not None:
                self.faulted[chosen] += 1
        return chosen

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_: object) -> None:  # quiet test output
                return None

            def do_GET(self) -> None:
                self._forward(b"")

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                chosen = proxy._choose(body) if self.path == "/decide" else None
                if chosen == "down":
                    self.close_connection = True
                    self.connection.close()
                    return
                if chosen == "slow":
                    time.sleep(proxy.slow_seconds)
                if chosen == "garbage":
                    self._answer(200, b"<html>502 upstream gone</html>", "text/html")
                    return
                if chosen == "nonsense":
                    self._answer(200, b'{"hello": "world"}', "application/json")
                    return
                self._forward(body)

            def _forward(self, body: bytes) -> None:
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() in ("authorization", "content-type")}
                try:
                    answer = proxy._http.request(
                        self.command, proxy.upstream + self.path, content=body or None,
                        headers=headers,
                    )
                except (httpx.HTTPError, RuntimeError):  # the upstream, or a closed proxy
                    self._answer(502, b'{"error": "upstream"}', "application/json")
                    return
                self._answer(answer.status_code, answer.content,
                             answer.headers.get("content-type", "application/json"))

            def _answer(self, status: int, body: bytes, content_type: str) -> None:
                try:
                    self.send_response(status)
                    self.send_header("content-type", content_type)
                    self.send_header("content-length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting (the slow fault)

        return Handler
