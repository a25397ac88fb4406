"""Starting a deployment's flow run through Prefect's REST API (the server of
`tradewind ui` / `tradewind deploy`, or any other): the engine's retrain trigger uses it,
so the engine process needs no Prefect client, only the API's URL.

`POST /deployments/{id}/create_flow_run` creates the run in the Scheduled state; the
server's workers (`tradewind deploy` serves the deployments) pick it up.

Prefect answers 503 when its SQLite database is locked by its own background services
(it marks that answer retryable, and its own client retries it): the launcher retries
503, 502, 504 and 429 a few times, within about two seconds, honouring `Retry-After`. An
idempotency key makes the retried create safe: Prefect returns the run the key already
made instead of a second one."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from core.errors import ConfigError, DataSourceError, NotFoundError

RETRYABLE = frozenset({429, 502, 503, 504})
BACKOFF_SECONDS = (0.25, 0.5, 1.0)


@dataclass(frozen=True, slots=True)
class StartedRun:
    run_id: str
    state: str
    url: str | None = None


class PrefectRunLauncher:
    """Starts `deployment` ("<flow>/<deployment>") on the Prefect API at `api_url`."""

    def __init__(
        self,
        api_url: str,
        deployment: str = "retrain/after-close",
        *,
        tags: tuple[str, ...] = ("engine", "trade-count"),
        timeout_seconds: float = 10.0,
        transport: httpx.BaseTransport | None = None,
        backoff_seconds: tuple[float, ...] = BACKOFF_SECONDS,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if "/" not in deployment:
            raise ConfigError(
                f"deployment {deployment!r} must read <flow>/<deployment>", where="retrain"
            )
        self.api_url = api_url.rstrip("/")
        self.deployment = deployment
        self.tags = tags
        self.backoff_seconds = backoff_seconds
        self._sleep = sleep
        self._client = httpx.Client(timeout=timeout_seconds, transport=transport)

    def launch(
        self, parameters: dict[str, Any], *, idempotency_key: str | None = None
    ) -> StartedRun:
        """Create a run; with `idempotency_key`, a second launch under the same key
        returns the first run (a retried request, or a caller that crashed before it
        recorded the run)."""
        flow, name = self.deployment.split("/", 1)
        found = self._request("GET", f"/deployments/name/{flow}/{name}")
        body: dict[str, Any] = {"parameters": parameters, "tags": list(self.tags)}
        if idempotency_key is not None:
            body["idempotency_key"] = idempotency_key
        run = self._request("POST", f"/deployments/{found['id']}/create_flow_run", body)
        state = (run.get("state") or {}).get("name") or "Scheduled"
        ui = self.api_url.removesuffix("/api")
        return StartedRun(str(run["id"]), str(state), f"{ui}/runs/flow-run/{run['id']}")

    def close(self) -> None:
        self._client.close()

    def _request(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        where = f"Prefect API {self.api_url}"
        waits = iter(self.backoff_seconds)
        while True:
            try:
                response = self._client.request(method, self.api_url + path, json=body)
            except httpx.TransportError as exc:
                wait = next(waits, None)
                if wait is None:
                    raise DataSourceError(
                        f"cannot reach it ({type(exc).__name__})", where=where
                    ) from None
                self._sleep(wait)
                continue
            if response.status_code not in RETRYABLE:
                break
            wait = next(waits, None)
            if wait is None:
                break
            self._sleep(_retry_after(response, wait))
        if response.status_code == 404:
            raise NotFoundError(f"no deployment {self.deployment}", where=where)
        if response.status_code >= 400:
            raise DataSourceError(
                f"{method} {path} answered HTTP {response.status_code}: {response.text[:200]}",
                where=where,
            )
        answer: dict[str, Any] = response.json()
        return answer


def _retry_after(response: httpx.Response, default: float) -> float:
    """The server's `Retry-After` in seconds (capped at 2), else `default`."""
    try:
        return min(2.0, max(0.0, float(response.headers.get("retry-after", default))))
    except ValueError:
        return default
