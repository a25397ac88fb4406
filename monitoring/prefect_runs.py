"""Starting a deployment's flow run through Prefect's REST API (the server of
`tradewind ui` / `tradewind deploy`, or any other): the engine's retrain trigger uses it,
so the engine process needs no Prefect client, only the API's URL.

`POST /deployments/{id}/create_flow_run` creates the run in the Scheduled state; the
server's workers (`tradewind deploy` serves the deployments) pick it up."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from core.errors import ConfigError, DataSourceError, NotFoundError


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
    ) -> None:
        if "/" not in deployment:
            raise ConfigError(
                f"deployment {deployment!r} must read <flow>/<deployment>", where="retrain"
            )
        self.api_url = api_url.rstrip("/")
        self.deployment = deployment
        self.tags = tags
        self._client = httpx.Client(timeout=timeout_seconds, transport=transport)

    def launch(self, parameters: dict[str, Any]) -> StartedRun:
        flow, name = self.deployment.split("/", 1)
        found = self._request("GET", f"/deployments/name/{flow}/{name}")
        run = self._request(
            "POST",
            f"/deployments/{found['id']}/create_flow_run",
            {"parameters": parameters, "tags": list(self.tags)},
        )
        state = (run.get("state") or {}).get("name") or "Scheduled"
        ui = self.api_url.removesuffix("/api")
        return StartedRun(str(run["id"]), str(state), f"{ui}/runs/flow-run/{run['id']}")

    def close(self) -> None:
        self._client.close()

    def _request(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        where = f"Prefect API {self.api_url}"
        try:
            response = self._client.request(method, self.api_url + path, json=body)
        except httpx.HTTPError as exc:
            raise DataSourceError(f"cannot reach it ({type(exc).__name__})", where=where) from None
        if response.status_code == 404:
            raise NotFoundError(f"no deployment {self.deployment}", where=where)
        if response.status_code >= 400:
            raise DataSourceError(
                f"{method} {path} answered HTTP {response.status_code}: {response.text[:200]}",
                where=where,
            )
        answer: dict[str, Any] = response.json()
        return answer
