"""The engine with a real model service: `bentoml serve` (tiny real models), the paper
exchange and `tradewind trade --model-endpoint` as subprocesses, and the dashboard in
Debian's Chromium. The start line says the model service decides, with its versions;
killing the model service raises an alert, the page shows the fallback in force, and the
next signal is decided by the rules fallback."""

from __future__ import annotations

import contextlib
import signal
from pathlib import Path

import pytest

from tests.integration.engine_support import Engine, browser_page
from tests.integration.exchange_support import Exchange, sample_bars, wait_for, write_store
from tests.integration.serving.harness import (
    MODEL_NAMES,
    TOKEN,
    Server,
    TrainedModels,
    set_alias,
)

pytestmark = pytest.mark.integration


def kill_tree(pid: int) -> None:
    """SIGKILL a process and every descendant (BentoML's workers leave its group)."""
    import psutil

    parent = psutil.Process(pid)
    for process in [*parent.children(recursive=True), parent]:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.send_signal(signal.SIGKILL)


def test_killing_the_model_service_raises_an_alert_and_the_fallback_shows(
    trained_models: TrainedModels, tmp_path: Path
) -> None:
    set_alias(trained_models.tracking_uri, "champion", dict.fromkeys(MODEL_NAMES, "1"))
    server = Server(
        trained_models.tracking_uri, tmp_path / "model-service", env={"TRADEWIND_API_TOKEN": TOKEN}
    ).start()
    write_store(tmp_path / "data", sample_bars(("AAPL",), start="2008-09-01", end="2010-04-30"))
    exchange = Exchange(tmp_path, symbols="AAPL", start="2010-02-22").start()
    engine = Engine(
        exchange,
        symbols="AAPL",
        token=TOKEN,  # one platform token: the engine's API and the model service's
        args=("--model-endpoint", server.url),
        env={"TRADEWIND_MODELS__FALLBACK": "rules"},
    )
    try:
        engine.start()
        start_line = engine.output().splitlines()[0]
        assert f"decided by the model service at {server.url}" in start_line
        assert "champion exit_optimizer v1" in start_line
        wait_for(lambda: engine.status()["model_service"]["arms"].get("champion"), "versions")
        assert engine.status()["model_service"]["arms"]["champion"]["signal_quality"] == "1"

        with browser_page() as page:
            page.goto(engine.url + "/")
            page.wait_for_function(
                "document.getElementById('model-health').textContent === 'healthy'"
            )
            assert server.process is not None
            kill_tree(server.process.pid)  # the model service dies, workers and all
            server.process.wait(timeout=30)

            wait_for(
                lambda: any(a["key"] == "model:down" for a in engine.get("/api/alerts")),
                "the model-down alert",
                timeout=60,
            )
            page.wait_for_function(
                "document.getElementById('model-health').textContent.includes('fallback rules')",
                timeout=10_000,
            )
        status = engine.status()["model_service"]
        assert status["healthy"] is False
        assert status["fallback_in_force"] is True
        alert = next(a for a in engine.get("/api/alerts") if a["key"] == "model:down")
        assert alert["priority"] == "high"
        assert "MODEL SERVICE DOWN" in engine.output()

        # The next signal (AAPL, 2010-02-26) is decided by the rules fallback.
        engine.advance_until(lambda: engine.get("/api/decisions") != [], "a decision", 10)
        decision = engine.get("/api/decisions")[0]
        assert decision["source"] == "fallback"
        assert decision["action"] == "entered"
    finally:
        engine.close()
        exchange.close()
        server.stop()
