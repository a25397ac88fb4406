"""Process-level plumbing the loop's flows and the demo share: the persistent local Prefect
database under the data dir (so flow runs outlive the process and show in `tradewind ui`),
and the model service as a subprocess (`tradewind serve`) with a readiness wait.

Prefect reads its settings when it is first imported, so `prefect_environment` must be
applied to `os.environ` before anything imports prefect in this process; `use_prefect_home`
also enters `temporary_settings` for the case where prefect was imported already."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from core.errors import ModelUnavailableError


def prefect_home(data_dir: Path) -> Path:
    """Where the local Prefect API database lives: `<data_dir>/prefect`."""
    return (data_dir / "prefect").resolve()


def prefect_environment(data_dir: Path) -> dict[str, str]:
    """The Prefect settings that point flow runs at the persistent local database
    `<data_dir>/prefect/prefect.db` (the one `tradewind ui` serves)."""
    home = prefect_home(data_dir)
    return {
        "PREFECT_HOME": str(home),
        "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{home / 'prefect.db'}",
        # Flows run against a temporary in-process API server on that database.
        "PREFECT_SERVER_ALLOW_EPHEMERAL_MODE": "true",
        # Offline machine: no telemetry (its failed sends also contend for the database).
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }


@contextlib.contextmanager
def use_prefect_home(data_dir: Path, *, console_level: str | None = None) -> Iterator[None]:
    """Run the block with Prefect recording into `<data_dir>/prefect/prefect.db`."""
    env = prefect_environment(data_dir)
    if console_level:
        env["PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL"] = console_level
    prefect_home(data_dir).mkdir(parents=True, exist_ok=True)
    os.environ.update(env)
    if os.environ.get("PREFECT_API_URL"):
        # A running Prefect server was chosen explicitly: record there instead.
        yield
        return
    from prefect.settings import (
        PREFECT_API_DATABASE_CONNECTION_URL,
        PREFECT_HOME,
        temporary_settings,
    )

    with temporary_settings(
        updates={
            PREFECT_HOME: env["PREFECT_HOME"],
            PREFECT_API_DATABASE_CONNECTION_URL: env["PREFECT_API_DATABASE_CONNECTION_URL"],
        }
    ):
        yield


def free_port() -> int:
    """A TCP port nobody listens on right now (127.0.0.1)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ModelService:
    """`tradewind serve` as a child process: started, waited for, reloaded, stopped."""

    def __init__(
        self,
        port: int,
        *,
        log_path: Path,
        env: dict[str, str] | None = None,
        ready_timeout: float = 180.0,
    ) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log_path
        self.env = env or {}
        self.ready_timeout = ready_timeout
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **self.env}
        command = [
            sys.executable,
            "-c",
            "from pipelines.cli import main; main()",
            "serve",
            "--port",
            str(self.port),
        ]
        log = self.log_path.open("ab")
        self._process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        log.close()
        self.wait_ready()

    def wait_ready(self) -> None:
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise ModelUnavailableError(
                    f"model service exited with code {self._process.returncode}; see "
                    f"{self.log_path}",
                    where="demo service",
                )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/readyz", timeout=2.0).status_code == 200:
                    return
            time.sleep(0.5)  # polling a child process for readiness, with a deadline
        raise ModelUnavailableError(
            f"model service not ready after {self.ready_timeout:.0f} s; see {self.log_path}",
            where="demo service",
        )

    def reload(self) -> dict[str, object]:
        """Ask the service to pick up alias changes now (hot reload)."""
        response = httpx.post(f"{self.url}/reload", json={}, timeout=120.0)
        if response.status_code >= 400:
            raise ModelUnavailableError(
                f"reload answered {response.status_code}: {response.text[:200]}",
                where="demo service",
            )
        payload = response.json()
        return payload if isinstance(payload, dict) else {"answer": payload}

    def models(self) -> dict[str, object]:
        payload = httpx.get(f"{self.url}/models", timeout=10.0).json()
        return payload if isinstance(payload, dict) else {"answer": payload}

    def stop(self) -> None:
        process = self._process
        if process is None or process.poll() is not None:
            return
        # SIGTERM to the service's own process group (it has workers), then wait.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, 15)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, 9)
            process.wait(timeout=10)

    def __enter__(self) -> ModelService:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def reload_service(endpoint: str | None, token: str | None) -> str:
    """Ask a running model service to pick up the new aliases now (it also polls); says
    what happened."""
    if not endpoint:
        return "no service endpoint configured; the service picks up aliases when it polls"
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        response = httpx.post(f"{endpoint.rstrip('/')}/reload", headers=headers, timeout=30.0)
    except httpx.HTTPError as exc:
        return f"service reload failed: {exc}"
    return f"service reload answered HTTP {response.status_code}"
