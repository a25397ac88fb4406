"""The model service's HTTP edge for its hot path: `POST /decide`, the per-model
endpoints, `POST /reload` and `GET /models`, answered by one ASGI middleware in front of
BentoML's request handling.

Why not BentoML's IO descriptors for these: per request they decode the body into Python
objects, validate them again as the API's generated `IODescriptor` model, hop to a worker
thread, and encode the answer through a second validation; around them the access log,
the OpenTelemetry spans and the per-request metrics middleware each cost their share. On a
decision that takes about a millisecond in process that doubled the latency. Here the body
is read once (with a size limit), parsed and validated in one step by pydantic-core
(`DecideRequest.model_validate_json`), decided on the event loop (the decision is CPU work
of about a millisecond; a thread would only add a hop), and the answer serialised straight
from its model. BentoML still runs the server, its workers, the probes, `/metrics`, the
OpenAPI document and graceful shutdown, and the `@bentoml.api` declarations stay the
schema of record (`/docs.json`).

Every refusal is a 4xx naming what is wrong and never how the service is built: a body that
is not JSON or not a request → 400 with `detail[].loc`; features outside the catalogue →
422; a body over `MAX_BODY_BYTES` → 413; a content type other than JSON → 415; another
method → 405. An unexpected failure is a 500 saying only that, logged with its traceback."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

import anyio
from pydantic import BaseModel, ValidationError

from core.errors import DataValidationError, TradewindError
from core.strict_json import dumps_strict
from serving.auth import ASGIApp, Receive, Scope, Send
from serving.openapi import openapi_document
from serving.schemas import DecideRequest, FeatureError, error_body

logger = logging.getLogger("tradewind.serving")

# A request names at most the catalogue's ~60 features: a few kilobytes. Anything much
# larger is not a request.
MAX_BODY_BYTES = 64 * 1024

DECISION_PATHS: frozenset[str] = frozenset(
    {"/decide", "/signal_quality", "/exit", "/regime", "/risk"}
)
JSON_TYPES = frozenset({"application/json", ""})


class Responder(Protocol):
    """What the edge needs from the running service (`serving.service.DecisionService`)."""

    def respond(self, endpoint: str, request: DecideRequest) -> BaseModel: ...

    def refused(self, endpoint: str, status: int) -> None: ...

    def reload_answer(self) -> dict[str, Any]: ...

    def model_status(self) -> dict[str, Any]: ...

    @property
    def auth_required(self) -> bool: ...


class HttpError(Exception):
    """A refusal at the edge: status and JSON body."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(body.get("error", ""))
        self.status = status
        self.body = body


def refusal(status: int, message: str, field: str = "request") -> HttpError:
    return HttpError(status, {"error": message, "field": field})


class DecisionRoutes:
    """ASGI middleware answering the service's own endpoints; everything else (probes,
    metrics, docs) goes on to BentoML. `service` finds the running service (BentoML's
    `get_current_service`, or a test's instance)."""

    def __init__(self, app: ASGIApp, service: Callable[[], Responder] | None = None) -> None:
        self.app = app
        self._service = service

    def _current(self) -> Responder:
        if self._service is not None:
            return self._service()
        import bentoml

        found: Responder = bentoml.get_current_service()
        return found

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "").rstrip("/") or "/"
        method = scope.get("method", "GET")
        if path in DECISION_PATHS:
            await self._decision(path[1:], method, scope, receive, send)
        elif path == "/reload":
            await self._reload(method, scope, receive, send)
        elif path in ("/models", "/docs.json") and method not in ("GET", "HEAD"):
            error = refusal(405, f"use GET for {path}", "method")
            await _respond(send, 405, dumps(error.body), allow="GET, HEAD")
        elif path == "/models":
            await _respond(send, 200, dumps(self._current().model_status()))
        elif path == "/docs.json":
            document = openapi_document(self._current().auth_required)
            await _respond(send, 200, dumps(document))
        else:
            await self.app(scope, receive, send)

    async def _decision(
        self, endpoint: str, method: str, scope: Scope, receive: Receive, send: Send
    ) -> None:
        service = self._current()
        try:
            if method != "POST":
                raise refusal(405, f"use POST for /{endpoint}", "method")
            _check_content_type(scope)
            body = await read_body(scope, receive)
            request = parse_request(body)
            answer = service.respond(endpoint, request)
        except HttpError as exc:
            if exc.status != 405:
                service.refused(endpoint, exc.status)
            await _respond(send, exc.status, dumps(exc.body), allow="POST")
            return
        except (FeatureError, DataValidationError) as exc:
            service.refused(endpoint, exc.http_status)
            await _respond(send, exc.http_status, dumps(error_body(exc)))
            return
        except TradewindError as exc:
            service.refused(endpoint, exc.http_status)
            await _respond(send, exc.http_status, dumps({"error": exc.message, "field": exc.where}))
            return
        except Exception:
            logger.exception("/%s failed", endpoint)
            service.refused(endpoint, 500)
            await _respond(send, 500, dumps({"error": "internal error; see the service log"}))
            return
        await _respond(send, 200, answer.model_dump_json().encode())

    async def _reload(self, method: str, scope: Scope, receive: Receive, send: Send) -> None:
        service = self._current()
        try:
            if method != "POST":
                raise refusal(405, "use POST for /reload", "method")
            # No body is needed; whatever comes is read (bounded) and ignored.
            await read_body(scope, receive)
        except HttpError as exc:
            await _respond(send, exc.status, dumps(exc.body), allow="POST")
            return
        # Loading models takes seconds: off the event loop, so decisions go on meanwhile.
        answer = await anyio.to_thread.run_sync(service.reload_answer)
        await _respond(send, 200, dumps(answer))


def _check_content_type(scope: Scope) -> None:
    for name, value in scope.get("headers", []):
        if name == b"content-type":
            media = bytes(value).split(b";")[0].strip().lower().decode("latin-1")
            if media not in JSON_TYPES and not media.endswith("+json"):
                raise refusal(
                    415, f"content type '{media[:60]}' is not supported; send application/json",
                    "headers.content-type",
                )
            return


async def read_body(scope: Scope, receive: Receive, limit: int = MAX_BODY_BYTES) -> bytes:
    """The request body, or a 413 once it passes `limit` bytes (announced or sent)."""
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                announced = int(value)
            except ValueError:
                raise refusal(400, "content-length is not a number", "headers") from None
            if announced > limit:
                raise refusal(413, f"request body over {limit} bytes", "body")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise refusal(400, "the client went away", "body")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise refusal(413, f"request body over {limit} bytes", "body")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def parse_request(body: bytes) -> DecideRequest:
    """The request, or a 4xx listing every problem by field (pydantic's messages, without
    its internal model names, inputs or documentation links)."""
    if not body.strip():
        raise refusal(400, "the request body is empty; send {\"signal\": {...}}", "body")
    try:
        return DecideRequest.model_validate_json(body)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_context=False, include_input=False)
        detail = [
            {"loc": [str(part) for part in error["loc"]], "msg": error["msg"],
             "type": error["type"]}
            for error in errors
        ]
        unknown = [d for d in detail if d["type"] == "extra_forbidden" and
                   d["loc"][:1] == ["features"]]
        if unknown and len(unknown) == len(detail):
            for d in unknown:
                d["type"] = "unknown"
                d["msg"] = f"feature '{d['loc'][-1]}' is not in the feature catalogue"
            status = 422
        else:
            status = 400
        first = detail[0] if detail else {"loc": ["body"], "msg": "invalid request"}
        field = ".".join(first["loc"]) or "body"
        message = "; ".join(f"{'.'.join(d['loc']) or 'body'}: {d['msg']}" for d in detail[:10])
        raise HttpError(status, {"error": message, "field": field, "detail": detail}) from None


def dumps(value: Any) -> bytes:
    return dumps_strict(value).encode()


async def _respond(send: Send, status: int, body: bytes, *, allow: str | None = None) -> None:
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if status == 405 and allow:
        headers.append((b"allow", allow.encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
