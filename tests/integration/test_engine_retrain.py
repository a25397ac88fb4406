"""Retraining on the trade count, live: the engine service (a real `tradewind trade`
subprocess) starts the `retrain` deployment on a real Prefect server (`prefect server
start`, through the project's own helper) when the Nth trade closes; the count lives in
the journal, so a restarted engine neither forgets it nor starts the same run twice."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.engine_support import Engine
from tests.integration.exchange_support import Exchange, sample_bars, wait_for, write_store

pytestmark = pytest.mark.integration


@pytest.fixture
def prefect(tmp_path: Path) -> Iterator[str]:
    from core.settings import load_settings
    from pipelines.commands.flows import _start_prefect_server

    settings = load_settings(paths={"data_dir": str(tmp_path / "prefect-data")})
    process, url = _start_prefect_server(settings, port=0)
    try:
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def post(url: str, body: dict[str, Any]) -> Any:
    """POST as Prefect's own client does: a 503 (its SQLite database locked by its
    background services, which a fresh server's start-up often does) is asked again."""
    for _ in range(20):
        answer = httpx.post(url, json=body, timeout=30)
        if answer.status_code != 503:
            break
        time.sleep(0.5)
    answer.raise_for_status()
    return answer.json()


def register_retrain(api: str) -> str:
    """The `retrain/after-close` deployment, as `tradewind deploy` registers it (no
    worker: the run it creates stays scheduled, which is all the engine is asked for)."""
    flow = post(f"{api}/flows/", {"name": "retrain"})
    deployment = post(f"{api}/deployments/", {"name": "after-close", "flow_id": flow["id"]})
    return str(deployment["id"])


def runs_of(api: str, deployment_id: str) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = post(
        f"{api}/flow_runs/filter", {"deployments": {"id": {"any_": [deployment_id]}}}
    )
    return result


def test_the_nth_closed_trade_starts_a_retrain_run_on_prefect(
    prefect: str, tmp_path: Path
) -> None:
    deployment_id = register_retrain(prefect)
    write_store(tmp_path / "data", sample_bars(("AAPL",), start="2008-09-01", end="2010-04-30"))
    exchange = Exchange(tmp_path, symbols="AAPL", start="2010-02-22").start()
    engine = Engine(
        exchange, symbols="AAPL", args=("--retrain-every", "1", "--prefect-api-url", prefect)
    )
    try:
        engine.start()
        assert engine.get("/api/dashboard")["lifecycle"]["retrain"]["every"] == 1
        # AAPL's trade (entered 2010-03-01) closes at its target on 03-05.
        engine.advance_until(lambda: engine.status()["closed_trades"] == 1, "a closed trade")
        runs = wait_for(lambda: runs_of(prefect, deployment_id), "a retrain flow run", 30)
        assert len(runs) == 1
        assert runs[0]["parameters"] == {"trigger": "trades", "force": True}
        assert set(runs[0]["tags"]) == {"engine", "trade-count"}
        assert runs[0]["idempotency_key"].endswith(":trades-1")
        retrain = engine.get("/api/dashboard")["lifecycle"]["retrain"]
        assert retrain["runs"][0]["run_id"] == runs[0]["id"]
        assert retrain["runs"][0]["closed_trades"] == 1
        assert "RETRAIN started after 1 closed trades" in engine.output()

        # Restarted, the engine knows the count from the journal: no second run.
        assert engine.stop() == 0
        engine.start()
        retrain = engine.get("/api/dashboard")["lifecycle"]["retrain"]
        assert (retrain["closed_trades"], retrain["since_last"]) == (1, 0)
        engine.advance(2)
        assert len(runs_of(prefect, deployment_id)) == 1
    finally:
        engine.close()
        exchange.close()
