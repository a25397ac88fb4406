"""The docs as tests (issue 16): the shell blocks of README.md and docs/ marked
`<!-- runnable: NAME -->` run as written, in a fresh working directory, with only their
ports moved to free ones. `/decide`'s example runs against the serving tests' service
(`tests/integration/serving/test_docs_decide.py`)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.docs_blocks import on_ports, run_block, runnable, shell_env
from tests.integration.exchange_support import Exchange, sample_bars, write_store
from tests.integration.serving.harness import free_port, wait_for

pytestmark = pytest.mark.integration


def test_the_paper_exchange_admin_example_runs_as_written(workdir: Path) -> None:
    write_store(workdir / "data", sample_bars(days=30))
    exchange = Exchange(workdir).start()
    try:
        port = int(exchange.url.rsplit(":", 1)[-1])
        out = run_block(runnable("paper-exchange-admin"), cwd=workdir, ports={8765: port},
                        env={}, timeout=60)
    finally:
        exchange.close()
    decoder, answers, at = json.JSONDecoder(), [], 0
    while at < len(out.strip()):  # curl prints the two answers back to back
        answer, at = decoder.raw_decode(out, at)
        answers.append(answer)
    advanced, state = answers
    assert advanced["advanced"] == 5
    assert state["stream_connections"] == 0
    assert state == {**state, **{k: advanced[k] for k in advanced if k in state}}


def test_the_paper_exchange_news_example_runs_as_written(workdir: Path) -> None:
    write_store(workdir / "data", sample_bars(days=30))
    exchange = Exchange(workdir).start()
    try:
        port = int(exchange.url.rsplit(":", 1)[-1])
        out = run_block(runnable("paper-exchange-news"), cwd=workdir, ports={8765: port},
                        env={}, timeout=60)
    finally:
        exchange.close()
    decoder, answers, at = json.JSONDecoder(), [], 0
    while at < len(out.strip()):
        answer, at = decoder.raw_decode(out, at)
        answers.append(answer)
    advanced, loaded = answers
    assert advanced["advanced"] == 2
    assert loaded == {"loaded": 1, "sent": 1}  # its time has passed: it goes out at once


class Services:
    """The block's long-running commands (`serve`, `paper-exchange`, `trade`), each in
    its own session, stopped politely at the end."""

    def __init__(self, cwd: Path, env: dict[str, str], ports: dict[int, int]) -> None:
        self.cwd, self.env, self.ports = cwd, env, ports
        self.processes: list[tuple[str, subprocess.Popen[str], Path]] = []

    def start(self, command: str) -> Path:
        log = self.cwd / f"service-{len(self.processes)}.log"
        process = subprocess.Popen(
            ["bash", "-c", f"exec {command}"], cwd=self.cwd, env=self.env, text=True,
            stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
        )
        self.processes.append((command, process, log))
        return log

    def alive(self) -> None:
        for command, process, log in self.processes:
            assert process.poll() is None, f"{command} exited:\n{log.read_text()[-3000:]}"

    def stop(self) -> None:
        for _, process, _ in reversed(self.processes):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for _, process, _ in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


@pytest.fixture
def services(workdir: Path) -> Iterator[Services]:
    ports = {3000: free_port(), 8765: free_port(), 8780: free_port()}
    env = shell_env({
        "BENTOML_HOME": str(workdir / "bentoml"),
        "BENTOML_DO_NOT_TRACK": "true",
        # the documented default address of the exchange and the engine API, moved
        "TRADEWIND_BROKER__PAPER_EXCHANGE_URL": f"http://127.0.0.1:{ports[8765]}",
    })
    running = Services(workdir, env, ports)
    try:
        yield running
    finally:
        running.stop()


def _ready(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_the_offline_quickstart_runs_as_written(workdir: Path, services: Services) -> None:
    """ingest → features → train → serve → paper exchange → trade, then the engine's page
    shows it trading the replayed bars, decided by the model service."""
    ports = services.ports
    lines = runnable("offline-quickstart").commands()
    steps = [line.split()[1] for line in lines if line.startswith("tradewind ")]
    assert steps == ["ingest", "features", "features", "train", "serve", "paper-exchange",
                     "trade"]
    for line in lines:
        command = on_ports(line, ports)
        if command.endswith("&"):
            services.start(command.removesuffix("&").strip())
        elif " trade " in f" {command} ":
            log = services.start(f"{command} --api-port {ports[8780]}")
        else:
            done = subprocess.run(["bash", "-euo", "pipefail", "-c", command], cwd=workdir,
                                  env=services.env, capture_output=True, text=True,
                                  timeout=900, check=False)
            assert done.returncode == 0, f"{command}\n{done.stdout[-2000:]}\n{done.stderr}"
    engine = f"http://127.0.0.1:{ports[8780]}"

    def serving() -> bool:
        services.alive()
        return _ready(f"http://127.0.0.1:{ports[3000]}/readyz") and _ready(f"{engine}/api/status")

    wait_for(serving, timeout=120, what="the model service and the engine API", interval=1)
    status_file = workdir / "data" / "trade_status.json"
    seen: set[str] = set()

    def traded_bars() -> bool:
        services.alive()
        if status_file.is_file():
            with contextlib.suppress(ValueError, KeyError):  # written before the first step
                last = json.loads(status_file.read_text())["service"]["last_bar"]
                if last:
                    seen.add(last)
        return len(seen) >= 3

    wait_for(traded_bars, timeout=120, what="three replayed bars traded", interval=0.5)
    story = log.read_text()
    assert "trading AAPL, MSFT on paper-exchange" in story
    assert "model service" in story.split("decided by", 1)[1].splitlines()[0]
    page = httpx.get(f"{engine}/", timeout=10)
    assert page.status_code == 200
    status = httpx.get(f"{engine}/api/status", timeout=10).json()
    assert status["symbols"] == ["AAPL", "MSFT"]
    assert status["broker"] == "paper-exchange"
    assert "model service" in status["decides"]
    # `tradewind doctor` sees every part the quickstart set up
    doctor = subprocess.run(["tradewind", "doctor"], cwd=workdir, env={
        **services.env, "TRADEWIND_SERVING__PORT": str(ports[3000])},
        capture_output=True, text=True, timeout=120, check=False)
    for part in ("bar store", "feature store", "models", "model service"):
        line = next(row for row in doctor.stdout.splitlines() if part in row)
        assert line.startswith("ok"), doctor.stdout
