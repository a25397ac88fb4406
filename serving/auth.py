"""Bearer-token auth for the model service, as ASGI middleware in front of BentoML.

When an API token is configured (`TRADEWIND_API_TOKEN`), `/decide`, the per-model
endpoints and `/reload` need `Authorization: Bearer <token>`; anything else gets a 401
before the request body is even read. Health, metrics and `/models` stay open so probes
and dashboards need no secret. The token is compared in constant time and never logged
or echoed."""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

PROTECTED_PATHS: frozenset[str] = frozenset(
    {"/decide", "/signal_quality", "/exit", "/regime", "/risk", "/reload"}
)

_UNAUTHORIZED = json.dumps(
    {"error": "missing or wrong bearer token", "field": "headers.authorization"}
).encode()


class BearerAuth:
    """Refuses protected paths without the right bearer token. `token=None` reads it from
    Tradewind's settings when the first request arrives (in the worker, not at import)."""

    def __init__(self, app: ASGIApp, token: str | None = None) -> None:
        self.app = app
        self._expected: bytes | None = token.encode() if token else None
        self._resolved = token is not None

    def _token(self) -> bytes | None:
        if not self._resolved:
            from core.settings import load_settings

            secret = load_settings().serving.api_token
            self._expected = secret.get_secret_value().encode() if secret else None
            self._resolved = True
        return self._expected

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path", "").rstrip("/") not in PROTECTED_PATHS:
            await self.app(scope, receive, send)
            return
        expected = self._token()
        if expected is None or _authorized(scope, expected):
            await self.app(scope, receive, send)
            return
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"www-authenticate", b'Bearer realm="tradewind"'),
                    (b"content-length", str(len(_UNAUTHORIZED)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": _UNAUTHORIZED})


def _authorized(scope: Scope, expected: bytes) -> bool:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            scheme, _, presented = bytes(value).partition(b" ")
            return scheme.lower() == b"bearer" and hmac.compare_digest(
                presented.strip(), expected
            )
    return False
