"""Commands that start child servers stop them on SIGTERM as on Ctrl-C: `tradewind serve`
(BentoML's workers) and `tradewind demo --quick` (its model service, once it serves) run
as real subprocesses, get SIGTERM, and every process they started is gone afterwards.
`tradewind ui` (Prefect and MLflow) is stopped the same way in `test_flows_ops`."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import psutil
import pytest

from core.process_tree import process_ended
from tests.integration.exchange_support import Process, exchange_env, wait_for
from tests.integration.serving.harness import free_port

pytestmark = pytest.mark.integration


def started_children(process: Process, at_least: int) -> list[psutil.Process]:
    def found() -> list[psutil.Process] | None:
        children = psutil.Process(process.proc.pid).children(recursive=True)
        return children if len(children) >= at_least else None

    children: list[psutil.Process] = wait_for(found, f"{at_least} child processes", 60)
    return children


def assert_all_gone(children: list[psutil.Process], why: str = "") -> None:
    _, alive = psutil.wait_procs(children, timeout=30)
    running = [p for p in alive if not process_ended(p)]  # an orphan's zombie has ended
    assert running == [], ([p.cmdline()[:4] for p in running], why)


def test_serve_stops_its_workers_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    env = exchange_env(
        tmp_path,
        TRADEWIND_PATHS__MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'mlflow.db'}",
        TRADEWIND_DECISION_LOG=str(tmp_path / "decisions.db"),
        BENTOML_HOME=str(tmp_path / "bentoml"),
        BENTOML_DO_NOT_TRACK="true",
    )
    process = Process(["serve", "--port", str(port), "--workers", "2"], tmp_path, env, "serve")
    try:
        def live() -> bool:
            assert process.proc.poll() is None, process.stderr()[-3000:]
            return httpx.get(f"http://127.0.0.1:{port}/livez", timeout=2).status_code == 200

        wait_for(live, "the service to answer /livez", 180)
        children = started_children(process, at_least=2)  # the two workers
        process.proc.send_signal(signal.SIGTERM)
        process.proc.wait(timeout=60)
        assert_all_gone(children)
    finally:
        process.close()


def test_demo_stops_its_model_service_on_sigterm(tmp_path: Path) -> None:
    """The demo launches its model service before it trains (the service's start-up
    overlaps the training); SIGTERM once that service runs stops the demo and the
    service's whole process tree."""
    env = {k: v for k, v in exchange_env(tmp_path).items()
           if not k.startswith("TRADEWIND_PATHS__")}  # the demo's own layout under cwd
    env["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] = "180"  # a loaded machine
    process = Process(["demo", "--quick"], tmp_path, env, "demo")
    try:
        def serving() -> list[psutil.Process] | None:
            assert process.proc.poll() is None, process.stderr()[-3000:]
            children = psutil.Process(process.proc.pid).children(recursive=True)
            return children if any(_is_model_service(c) for c in children) else None

        children: list[psutil.Process] = wait_for(serving, "the demo's model service", 900)
        process.proc.send_signal(signal.SIGTERM)
        code = process.proc.wait(timeout=120)
        assert code == 130, process.stderr()[-3000:]  # interrupted as by Ctrl-C, cleaned up
        assert_all_gone(children, f"exit {code}: {process.stderr()[-3000:]}")
    finally:
        process.close()


def _is_model_service(child: psutil.Process) -> bool:
    try:
        command = " ".join(child.cmdline())
    except psutil.Error:  # gone meanwhile
        return False
    return "_bentoml_impl.worker" in command  # the service's worker: its whole tree is up
