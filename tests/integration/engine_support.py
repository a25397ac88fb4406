"""Helpers for the engine service's integration tests: `tradewind trade` as a real
subprocess against the `tradewind paper-exchange` subprocess, with its API on a free
port, and a headless Chromium (Debian's, driven by Playwright) for the dashboard."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.exchange_support import (
    KEY,
    SECRET,
    Exchange,
    Process,
    exchange_env,
    wait_for,
)

TOKEN = "engine-test-token-5d1c9e"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip
API_LINE = "engine API and dashboard on"


class Engine:
    """`tradewind trade` with its API, as a subprocess."""

    def __init__(
        self,
        exchange: Exchange,
        *,
        symbols: str = "AAPL,MSFT",
        env: dict[str, str] | None = None,
        args: tuple[str, ...] = (),
        token: str | None = TOKEN,
    ) -> None:
        self.exchange = exchange
        self.symbols = symbols
        self.env = env or {}
        self.args = args
        self.token = token
        self.process: Process | None = None
        self.url = ""
        self.runs = 0
        self._http = httpx.Client(timeout=15)

    def start(self) -> Engine:
        self.runs += 1
        extra = {"ALPACA_API_KEY": KEY, "ALPACA_SECRET_KEY": SECRET, **self.env}
        if self.token is not None:
            extra["TRADEWIND_API_TOKEN"] = self.token
        workdir = self.exchange.workdir
        self.process = Process(
            [
                "trade", "--broker", "paper-exchange", "--exchange-url", self.exchange.url,
                "--symbols", self.symbols, "--poll-seconds", "0.05", "--no-feature-store",
                "--status-file", str(workdir / "status.json"), "--api-port", "0", *self.args,
            ],
            workdir,
            exchange_env(workdir, **extra),
            f"trade-{self.runs}",
        )  # fmt: skip
        self.url = self.process.wait_line(API_LINE, timeout=120).rsplit(" ", 1)[-1]
        return self

    # ------------------------------------------------------------------ HTTP
    def get(self, path: str, **params: Any) -> Any:
        answer = self._http.get(self.url + path, params=params)
        answer.raise_for_status()
        return answer.json()

    def post(self, path: str, token: str | None = TOKEN, **body: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return self._http.post(self.url + path, json=body or None, headers=headers)

    def status(self) -> dict[str, Any]:
        result: dict[str, Any] = self.get("/api/status")
        return result

    def advance(self, steps: int = 1) -> str:
        """Bars at the exchange, one at a time; each traded by the engine before the next."""
        moment = ""
        for _ in range(steps):
            moment = self.exchange.advance(1)["timestamps"][0]
            wait_for(lambda m=moment: self.status()["last_bar"] == m, f"the engine at {moment}", 60)
        return moment

    def advance_until(self, condition: Any, what: str, limit: int = 40) -> str:
        for _ in range(limit):
            moment = self.advance()
            if condition():
                return moment
        raise AssertionError(f"{what} did not happen within {limit} bars")

    # ------------------------------------------------------------------ process
    def output(self) -> str:
        return "".join(self.process.output) if self.process else ""

    def logs(self) -> str:
        assert self.process is not None
        return self.output() + self.process.stderr()

    def stop(self) -> int:
        assert self.process is not None
        code = self.process.terminate()
        return code

    def close(self) -> None:
        if self.process is not None:
            self.process.close()
        self._http.close()


@contextmanager
def browser_page() -> Iterator[Any]:
    """A page of Debian's Chromium, headless, driven by Playwright (no browser download)."""
    if not CHROMIUM.exists():
        pytest.fail("chromium is missing: `make test` installs it (scripts/install-chromium.sh)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1600})
            yield page
        finally:
            browser.close()
