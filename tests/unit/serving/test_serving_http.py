"""The service's HTTP edge: malformed bodies, content types, sizes and methods get a 4xx
that says what is wrong and nothing about how the service is built; good requests reach
the service once."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from core.errors import ModelUnavailableError
from serving.http import MAX_BODY_BYTES, DecisionRoutes
from serving.schemas import DecideRequest

SIGNAL = {
    "symbol": "AAPL",
    "side": "buy",
    "strategy": "momentum",
    "timestamp": "2013-05-02T20:00:00Z",
    "price": 60.5,
}
GOOD = json.dumps({"signal": SIGNAL, "features": {"rsi_14": 50.0, "atr_14": 1.0}})


class Answer(BaseModel):
    endpoint: str
    features: dict[str, float | None]


class FakeService:
    def __init__(self, fail: Exception | None = None) -> None:
        self.requests: list[tuple[str, DecideRequest]] = []
        self.refusals: list[tuple[str, int]] = []
        self.reloads = 0
        self.fail = fail

    def respond(self, endpoint: str, request: DecideRequest) -> BaseModel:
        if self.fail is not None:
            raise self.fail
        self.requests.append((endpoint, request))
        return Answer(endpoint=endpoint, features=request.feature_values() or {})

    def refused(self, endpoint: str, status: int) -> None:
        self.refusals.append((endpoint, status))

    def reload_answer(self) -> dict[str, Any]:
        self.reloads += 1
        return {"reloaded": False, "champion": {}, "challenger": None, "error": None}

    def model_status(self) -> dict[str, Any]:
        return {"ready": True, "loaded_at": float("nan")}

    auth_required = True


async def _downstream(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 299, "headers": []})
    await send({"type": "http.response.body", "body": b"bentoml"})


def _client(service: FakeService) -> httpx.AsyncClient:
    app = DecisionRoutes(_downstream, service=lambda: service)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


def _no_internals(response: httpx.Response) -> None:
    text = response.text
    for leak in ("IODescriptor", "errors.pydantic.dev", "Traceback", "DecideRequest"):
        assert leak not in text, text


@pytest.mark.anyio
async def test_a_good_request_is_answered_by_the_service() -> None:
    service = FakeService()
    async with _client(service) as client:
        response = await client.post("/decide", content=GOOD,
                                     headers={"content-type": "application/json"})
    assert response.status_code == 200
    assert response.json() == {"endpoint": "decide",
                               "features": {"rsi_14": 50.0, "atr_14": 1.0}}
    assert [endpoint for endpoint, _ in service.requests] == ["decide"]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("body", "content_type", "status", "field"),
    [
        ("{not json", "application/json", 400, "body"),
        ("", "application/json", 400, "body"),
        ("[1, 2]", "application/json", 400, "body"),
        ('{"signal": {}}', "application/json", 400, "signal.symbol"),
        (json.dumps({"signal": {**SIGNAL, "price": "NaN"}}), "application/json", 400,
         "signal.price"),
        (json.dumps({"signal": SIGNAL, "features": {"zzz": 1}}), "application/json", 422,
         "features.zzz"),
        (GOOD, "multipart/form-data", 415, "headers.content-type"),
        (GOOD, "text/plain", 415, "headers.content-type"),
        ("x" * (MAX_BODY_BYTES + 1), "application/json", 413, "body"),
    ],
)
async def test_bad_requests_get_a_4xx_that_names_the_problem(
    body: str, content_type: str, status: int, field: str
) -> None:
    service = FakeService()
    async with _client(service) as client:
        response = await client.post("/decide", content=body,
                                     headers={"content-type": content_type})
    assert response.status_code == status, response.text
    assert response.json()["field"].startswith(field)
    _no_internals(response)
    assert service.requests == []
    assert service.refusals == [("decide", status)]


@pytest.mark.anyio
async def test_other_methods_get_405_and_other_paths_go_on_to_bentoml() -> None:
    async with _client(FakeService()) as client:
        wrong = await client.get("/decide")
        passed = await client.get("/readyz")
        models = await client.get("/models")
    assert wrong.status_code == 405
    assert wrong.headers["allow"] == "POST"
    assert passed.status_code == 299
    assert models.status_code == 200
    assert models.json()["loaded_at"] is None  # strict JSON: NaN is null


@pytest.mark.anyio
async def test_reload_ignores_whatever_body_comes_and_never_fails_on_it() -> None:
    service = FakeService()
    async with _client(service) as client:
        response = await client.post("/reload", content=b"--x\r\n",
                                     headers={"content-type": "multipart/form-data"})
    assert response.status_code == 200
    assert service.reloads == 1


@pytest.mark.anyio
async def test_domain_errors_keep_their_status_and_bugs_are_a_plain_500() -> None:
    async with _client(FakeService(ModelUnavailableError("no champion", where="models"))) as c:
        unavailable = await c.post("/decide", content=GOOD)
    assert unavailable.status_code == 503
    assert unavailable.json() == {"error": "no champion", "field": "models"}
    async with _client(FakeService(RuntimeError("secret internals"))) as client:
        broken = await client.post("/decide", content=GOOD)
    assert broken.status_code == 500
    assert "secret internals" not in broken.text


@pytest.mark.anyio
async def test_the_openapi_document_is_the_pydantic_models_with_every_refusal() -> None:
    async with _client(FakeService()) as client:
        document = (await client.get("/docs.json")).json()
    decide = document["paths"]["/decide"]["post"]
    assert {"200", "400", "401", "413", "415", "422", "503"} <= set(decide["responses"])
    assert decide["security"] == [{"bearer": []}]
    features = document["components"]["schemas"]["Features"]
    assert "rsi_14" in features["properties"]
    assert features["additionalProperties"] is False
    nullable = document["components"]["schemas"]["DecisionOut"]["properties"]["expected_value"]
    assert {"type": "null"} in nullable["anyOf"]
    assert "IODescriptor" not in json.dumps(document)
    # a real request as the example, one that the service's own parser accepts
    from serving.schemas import DecideRequest

    example = document["components"]["schemas"]["DecideRequest"]["examples"][0]
    assert DecideRequest.model_validate_json(json.dumps(example)).signal.symbol == "AAPL"
