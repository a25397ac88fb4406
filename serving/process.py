"""The model service run as a child process by whoever needs one (the demo, a test): started
from the command line it is given (the composition root knows which: `tradewind serve`),
waited for until `/readyz` answers, asked to reload or what it serves, and stopped
gracefully (SIGTERM to its process group until it exits, then SIGKILL to what is left of
its tree, workers included).
`request_reload` asks any running service, child or not, to reload now.

`launch` starts the process without waiting, so a caller can start the service before
its models exist (its imports and start-up overlap the training) and later
`wait_ready(reload=True)`: the live service is asked to reload until a champion serves."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path

import httpx
import psutil

from core.errors import ModelUnavailableError
from core.process_tree import kill_all, process_tree, still_running


class ServiceProcess:
    """The model service as a child process: started, waited for, reloaded, stopped."""

    def __init__(
        self,
        command: list[str],
        port: int,
        *,
        log_path: Path,
        env: dict[str, str] | None = None,
        ready_timeout: float = 180.0,
        stop_timeout: float = 30.0,
    ) -> None:
        self.command = command
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log_path
        self.env = env or {}
        self.ready_timeout = ready_timeout
        self.stop_timeout = stop_timeout
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.launch()
        self.wait_ready()

    def launch(self) -> None:
        """Start the process (once) without waiting for it."""
        if self._process is not None:
            return
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **self.env}
        log = self.log_path.open("ab")
        self._process = subprocess.Popen(
            self.command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        log.close()

    def wait_ready(self, *, reload: bool = False) -> None:
        """Wait until `/readyz` answers 200. With `reload` (a service launched before its
        models were registered, or while older ones were champions), the live service is
        first asked to reload, so it serves the aliases as they are now."""
        deadline = time.monotonic() + self.ready_timeout
        reloaded = not reload
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise ModelUnavailableError(
                    f"model service exited with code {self._process.returncode}; see "
                    f"{self.log_path}",
                    where="model service",
                )
            with contextlib.suppress(httpx.HTTPError):
                if not reloaded:
                    answer = httpx.post(f"{self.url}/reload", json={}, timeout=120.0)
                    reloaded = answer.status_code < 400
                    if reloaded and (error := answer.json().get("error")):
                        raise ModelUnavailableError(
                            f"reload failed: {error}; see {self.log_path}",
                            where="model service",
                        )
                if reloaded and httpx.get(f"{self.url}/readyz", timeout=2.0).status_code == 200:
                    return
            time.sleep(0.5)  # polling a child process for readiness, with a deadline
        raise ModelUnavailableError(
            f"model service not ready after {self.ready_timeout:.0f} s; see {self.log_path}",
            where="model service",
        )

    def reload(self) -> dict[str, object]:
        """Ask the service to pick up alias changes now (hot reload)."""
        response = httpx.post(f"{self.url}/reload", json={}, timeout=120.0)
        if response.status_code >= 400:
            raise ModelUnavailableError(
                f"reload answered {response.status_code}: {response.text[:200]}",
                where="model service",
            )
        payload = response.json()
        return payload if isinstance(payload, dict) else {"answer": payload}

    def models(self) -> dict[str, object]:
        payload = httpx.get(f"{self.url}/models", timeout=10.0).json()
        return payload if isinstance(payload, dict) else {"answer": payload}

    @property
    def exit_code(self) -> int | None:
        """The process's exit code once it has ended (negative: the signal that ended it)."""
        return None if self._process is None else self._process.poll()

    def stop(self) -> None:
        """SIGTERM to the service's process group, sent again every second while it has
        not exited (circus drops a stop request that lands while it is still starting its
        workers), then SIGKILL to every process of its tree still alive: its workers run in
        sessions of their own, so the group's signal does not reach them. An interrupt while
        waiting (a second Ctrl-C, a second SIGTERM) goes straight to the SIGKILL, then on."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        tree = process_tree(process.pid)
        try:
            deadline = time.monotonic() + self.stop_timeout
            while process.poll() is None and time.monotonic() < deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=1.0)
                tree.update(process_tree(process.pid))  # workers started meanwhile
            # Exited: its workers end with it (a moment's grace). Not exited: SIGKILL now.
            alive = still_running(tree.values(), wait=5.0 if process.poll() is not None else 0)
        except BaseException:
            _kill(process, tree.values())
            raise
        if alive:
            _kill(process, alive)

    def __enter__(self) -> ServiceProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _kill(process: subprocess.Popen[bytes], tree: Iterable[psutil.Process]) -> None:
    """SIGKILL to the group and to each process of the tree still alive, then wait for
    them to end."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)
    kill_all(tree)


def request_reload(endpoint: str | None, token: str | None) -> str:
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
