"""A client of the engine's API: what `tradewind ctl` and the MCP server speak. Errors
come back as the project's own (`core.errors`), by the HTTP status the API answered."""

from __future__ import annotations

from typing import Any

import httpx

from core.errors import (
    AuthenticationError,
    ConfigError,
    DataSourceError,
    DataValidationError,
    NotFoundError,
    TradewindError,
)
from trading.control.api import CLIENT_HEADER

_BY_STATUS: dict[int, type[TradewindError]] = {
    400: ConfigError,
    401: AuthenticationError,
    404: NotFoundError,
    422: DataValidationError,
}


class EngineApiClient:
    def __init__(
        self,
        url: str,
        token: str | None,
        *,
        client_name: str = "ctl",
        timeout_seconds: float = 15.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        headers = {CLIENT_HEADER: client_name}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.Client(
            base_url=self.url, headers=headers, timeout=timeout_seconds, transport=transport
        )

    def get(self, path: str, **params: Any) -> Any:
        return self._send("GET", path, params={k: v for k, v in params.items() if v is not None})

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        return self._send("POST", path, json=body or {})

    def put(self, path: str, body: dict[str, Any]) -> Any:
        return self._send("PUT", path, json=body)

    def close(self) -> None:
        self._http.close()

    def _send(self, method: str, path: str, **options: Any) -> Any:
        where = f"engine API {self.url}"
        try:
            response = self._http.request(method, path, **options)
        except httpx.HTTPError as exc:
            raise DataSourceError(
                f"cannot reach it ({type(exc).__name__}); is `tradewind trade` running?",
                where=where,
            ) from None
        if response.status_code >= 400:
            try:
                body = response.json()
                message = body.get("message") or str(body.get("detail"))
            except ValueError:
                message = response.text[:300]
            error = _BY_STATUS.get(response.status_code, DataSourceError)
            raise error(f"{method} {path}: HTTP {response.status_code}: {message}", where=where)
        if response.headers.get("content-type", "").startswith("application/json"):
            return response.json()
        return response.text
