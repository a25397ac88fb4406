"""Shared by the serving integration tests: tiny real models trained once into a
temporary MLflow store, and a real `bentoml serve` subprocess on a free port."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SERVICE = "serving.service:TradewindService"
TOKEN = "integration-test-token-7f3a"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(condition: Any, *, timeout: float, what: str, interval: float = 0.1) -> Any:
    """Poll `condition()` until it returns something truthy, or fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)  # polling a condition with a deadline, not a fixed wait
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@dataclass
class Server:
    """One `bentoml serve` of the Tradewind service."""

    tracking_uri: str
    workdir: Path
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def decision_log(self) -> Path:
        return self.workdir / "decisions.db"

    @property
    def log_file(self) -> Path:
        return self.workdir / f"bentoml-{self.port}.log"

    def start(self, *, ready_timeout: float = 120.0) -> Server:
        self.workdir.mkdir(parents=True, exist_ok=True)
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("TRADEWIND_", "ALPACA_"))
        }
        env.update(
            {
                "BENTOML_DO_NOT_TRACK": "true",
                "BENTOML_HOME": str(self.workdir / "bentoml"),
                "TRADEWIND_PATHS__MLFLOW_TRACKING_URI": self.tracking_uri,
                "TRADEWIND_PATHS__DATA_DIR": str(self.workdir / "data"),
                "TRADEWIND_DECISION_LOG": str(self.decision_log),
                "PYTHONPATH": str(PROJECT_ROOT),
                **self.env,
            }
        )
        with self.log_file.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bentoml", "serve", SERVICE, "--host", "127.0.0.1",
                 "--port", str(self.port), "--working-dir", str(PROJECT_ROOT)],
                stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.workdir,
                start_new_session=True,
            )

        def ready() -> bool:
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(
                    f"bentoml serve exited with {self.process.returncode}:\n{self.output()[-3000:]}"
                )
            with contextlib.suppress(httpx.HTTPError):
                return httpx.get(f"{self.url}/readyz", timeout=1.0).status_code == 200
            return False

        wait_for(ready, timeout=ready_timeout, what="the model service to be ready", interval=0.2)
        return self

    def stop(self) -> int | None:
        """Graceful stop (SIGTERM to the server's process group); returns the exit code."""
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        self.process = None
        return process.returncode

    def output(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    @contextlib.contextmanager
    def running(self) -> Iterator[Server]:
        self.start()
        try:
            yield self
        finally:
            self.stop()
