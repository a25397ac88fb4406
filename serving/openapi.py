"""The model service's OpenAPI document (`GET /docs.json`), written from the same pydantic
models that parse the requests and build the answers, so a fuzzer or a client generator
gets exactly what the service does: the request's features as one optional property per
catalogue feature, nullable fields as nullable, every refusal status with its error body,
and the bearer token on the endpoints that need it. (BentoML's generated document flattens
nullable numbers and leaves out the refusals and `GET /models`.)"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import models_json_schema

from serving.schemas import (
    DecideRequest,
    DecisionOut,
    ExitOut,
    RegimeOut,
    ReloadOut,
    RiskOut,
    SignalQualityOut,
    decide_example,
)


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="forbid")

    loc: list[str | int]
    msg: str
    type: str


class ErrorOut(BaseModel):
    """Every refusal: what is wrong, the field it is about, and each problem."""

    model_config = ConfigDict(extra="forbid")

    error: str
    field: str | None = None
    detail: list[ErrorDetail] = Field(default_factory=list)


_DECISION_ENDPOINTS: dict[str, tuple[type[BaseModel], str]] = {
    "/decide": (DecisionOut, "All four models for one signal and the policy's decision"),
    "/signal_quality": (SignalQualityOut, "The win probability and the OOD flag"),
    "/exit": (ExitOut, "The exit model's stop and target"),
    "/regime": (RegimeOut, "The market regime"),
    "/risk": (RiskOut, "The expected drawdown with p10/p90"),
}
_REFUSALS = {
    "400": "Not a request: bad JSON, a wrong type, NaN/infinity, a bad side, price or time",
    "401": "Missing or wrong bearer token",
    "404": "No online features for the symbol (the request left its features out)",
    "405": "Only POST",
    "409": "A timeframe other than the served models' (`GET /models` -> `timeframe`)",
    "413": "Body too large",
    "415": "Not JSON",
    "422": "Features that do not fit the served models (missing, unknown, atr_14 <= 0)",
    "503": "No models loaded, or a model failed",
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


@lru_cache(maxsize=2)
def openapi_document(auth_required: bool) -> dict[str, Any]:
    models: list[tuple[type[BaseModel], Any]] = [
        (DecideRequest, "validation"),
        *[(model, "serialization") for model, _ in _DECISION_ENDPOINTS.values()],
        (ReloadOut, "serialization"),
        (ErrorOut, "serialization"),
    ]
    _, schemas = models_json_schema(models, ref_template="#/components/schemas/{model}")
    # The example lives here, not in the model's config: BentoML builds its own schema of
    # the service's IO models, and its OpenAPI 3.0 `Schema` has no `examples`.
    schemas["$defs"]["DecideRequest"]["examples"] = [decide_example()]
    security: list[dict[str, list[str]]] = [{"bearer": []}] if auth_required else []
    errors = {status: {"description": text, "content": _json(_ref("ErrorOut"))}
              for status, text in _REFUSALS.items()}
    if not auth_required:
        errors.pop("401")
    paths: dict[str, Any] = {}
    for path, (answer, summary) in _DECISION_ENDPOINTS.items():
        paths[path] = {"post": {
            "summary": summary,
            "operationId": path.strip("/"),
            "security": security,
            "requestBody": {"required": True, "content": _json(_ref("DecideRequest"))},
            "responses": {"200": {"description": "The answer",
                                  "content": _json(_ref(answer.__name__))}, **errors},
        }}
    reload_errors = {k: v for k, v in errors.items() if k in ("401", "405", "413", "415")}
    paths["/reload"] = {"post": {
        "summary": "Check the registry now; swap in changed models",
        "operationId": "reload",
        "security": security,
        "responses": {"200": {"description": "What is serving now",
                              "content": _json(_ref("ReloadOut"))}, **reload_errors},
    }}
    paths["/models"] = {"get": {
        "summary": "Versions, aliases, timeframe, A/B share, reloads, accepted features",
        "operationId": "models",
        "responses": {"200": {"description": "The served models",
                              "content": _json({"type": "object"})}},
    }}
    text = {"text/plain": {"schema": {"type": "string"}}}
    paths["/livez"] = {"get": {"operationId": "livez", "responses": {
        "200": {"description": "Alive", "content": text}}}}
    paths["/readyz"] = {"get": {"operationId": "readyz", "responses": {
        "200": {"description": "Ready: a champion is loaded", "content": text},
        "503": {"description": "Not ready yet", "content": text}}}}
    paths["/metrics"] = {"get": {"operationId": "metrics", "responses": {
        "200": {"description": "Prometheus metrics", "content": text}}}}
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": "Tradewind model service", "version": "1"},
        "paths": paths,
        "components": {"schemas": schemas["$defs"]},
    }
    if auth_required:
        document["components"]["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer"}
        }
    return document
