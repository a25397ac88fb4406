"""The bearer-token middleware in front of the model service, driven as the ASGI server
drives it: protected paths need the exact token (any other answer is one 401 that names
no secret), open paths and non-HTTP traffic pass untouched, no token configured means
open (the service then listens on loopback only: `tradewind serve`)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from serving.auth import PROTECTED_PATHS, BearerAuth

TOKEN = "s3cret-token"


class App:
    """The service behind the middleware: answers 200 and remembers what reached it."""

    def __init__(self) -> None:
        self.reached: list[str] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert (await receive())["body"] == b"{}"  # the request body reaches the service
        self.reached.append(scope.get("path", scope["type"]))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


def call(middleware: BearerAuth, path: str | None, authorization: bytes | None = None,
         kind: str = "http", *, with_headers: bool = True) -> list[dict[str, Any]]:
    headers = [(b"content-type", b"application/json")]
    if authorization is not None:
        headers.append((b"authorization", authorization))
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope: dict[str, Any] = {"type": kind}
    if path is not None:
        scope["path"] = path
    if with_headers:
        scope["headers"] = headers
    asyncio.run(middleware(scope, receive, send))
    return sent


def status(sent: list[dict[str, Any]]) -> int:
    assert [message["type"] for message in sent] == ["http.response.start",
                                                      "http.response.body"]
    return int(sent[0]["status"])


def test_the_protected_paths() -> None:
    assert frozenset({"/decide", "/signal_quality", "/exit", "/regime", "/risk",
                      "/reload"}) == PROTECTED_PATHS


@pytest.mark.parametrize("path", [*sorted(PROTECTED_PATHS), "/decide/"])
def test_a_protected_path_needs_the_exact_bearer_token(path: str) -> None:
    app = App()
    auth = BearerAuth(app, token=TOKEN)
    assert status(call(auth, path, f"Bearer {TOKEN}".encode())) == 200
    assert status(call(auth, path, f"bearer {TOKEN}".encode())) == 200  # scheme: any case
    assert status(call(auth, path, f"Bearer  {TOKEN} ".encode())) == 200  # spaces around
    for wrong in (None, b"", TOKEN.encode(), f"Bearer {TOKEN}x".encode(),
                  f"Bearer {TOKEN[:-1]}".encode(), f"Basic {TOKEN}".encode(), b"Bearer "):
        sent = call(auth, path, wrong)
        assert status(sent) == 401, wrong
        headers = dict(sent[0]["headers"])
        assert headers[b"www-authenticate"] == b'Bearer realm="tradewind"'
        assert headers[b"content-type"] == b"application/json"
        body = sent[1]["body"]
        assert int(headers[b"content-length"]) == len(body)
        assert json.loads(body) == {"error": "missing or wrong bearer token",
                                    "field": "headers.authorization"}
        assert TOKEN.encode() not in body
    assert status(call(auth, path, with_headers=False)) == 401
    assert len(app.reached) == 3


@pytest.mark.parametrize("path", ["/models", "/readyz", "/livez", "/metrics", "/docs.json",
                                  "/decideX", "/reloadX/", "/", ""])
def test_open_paths_need_no_token(path: str) -> None:
    app = App()
    assert status(call(BearerAuth(app, token=TOKEN), path)) == 200
    assert app.reached == [path]


def test_non_http_traffic_and_scopes_without_a_path_pass() -> None:
    app = App()
    call(BearerAuth(app, token=TOKEN), "/decide", kind="lifespan")
    assert app.reached == ["/decide"]
    assert status(call(BearerAuth(app, token=TOKEN), None)) == 200
    assert app.reached == ["/decide", "http"]


def test_without_a_token_everything_is_open(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("TRADEWIND_API_TOKEN", "TRADEWIND_SERVING__API_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    app = App()
    assert status(call(BearerAuth(app), "/reload")) == 200
    assert app.reached == ["/reload"]


def test_the_token_is_read_from_the_settings_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADEWIND_API_TOKEN", TOKEN)
    auth = BearerAuth(App())
    assert status(call(auth, "/decide")) == 401
    assert status(call(auth, "/decide", f"Bearer {TOKEN}".encode())) == 200
    monkeypatch.setenv("TRADEWIND_API_TOKEN", "another")
    assert status(call(auth, "/decide", f"Bearer {TOKEN}".encode())) == 200  # resolved once
