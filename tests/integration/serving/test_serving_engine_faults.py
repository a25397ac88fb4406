"""The engine against a failing model service: the real `bentoml serve` behind a real
proxy that turns slow (past the client's timeout), answers garbage or JSON that is no
decision, or drops the connection, for the signals of a fixed stretch of bars.

- `tradewind backtest --model-endpoint` checks the service before the replay: an
  unreachable service or a refused token is one line and exit 2, nothing replayed; a
  service failing mid-run is reported loudly with its count;
- during the faults the engine refuses entries (fallback `no_entry`) or lets the rules
  decide (fallback `rules`); exits keep working; nothing escapes the engine; the client's
  circuit breaker opens, stays open for its cooldown, re-opens after a failed trial and
  closes once the service answers again (real timings);
- a hot reload swapping every model's version under the engine's own client loses no
  decision."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from core.errors import ModelUnavailableError
from core.settings import load_settings
from serving.client import HttpModelClient
from serving.schemas import DecideRequest
from tests.integration.serving.faulty_proxy import FAULTS, FaultyProxy
from tests.integration.serving.harness import (
    MODEL_NAMES,
    TOKEN,
    Server,
    TrainedModels,
    bearer,
    register_copy,
    serve_versions,
    wait_for,
)

pytestmark = pytest.mark.integration

V1 = dict.fromkeys(MODEL_NAMES, "1")
# The stretch of bars whose signals meet faults: AAPL (entered 2011-04-26) is open when
# it starts and leaves during it.
FAULT_FROM, FAULT_UNTIL = "2011-04-27", "2011-10-01"
COOLDOWN_SECONDS = 8.0  # far longer than the replay: what the circuit does is certain


@pytest.fixture(scope="module")
def server(serving_server: Server) -> Server:
    serve_versions(serving_server, champion=V1, challenger=None)
    return serving_server


def in_fault_window(moment: str) -> bool:
    return FAULT_FROM <= moment[:10] < FAULT_UNTIL


def rotating_faults() -> Callable[[str, int], str | None]:
    """Every kind of fault in turn for the window's signals; the rest pass."""
    met = [0]

    def fault(moment: str, n: int) -> str | None:
        if not in_fault_window(moment):
            return None
        met[0] += 1
        return FAULTS[(met[0] - 1) % len(FAULTS)]

    return fault


@pytest.fixture
def proxy(server: Server) -> Iterator[FaultyProxy]:
    with FaultyProxy(server.url, rotating_faults(), slow_seconds=3.0) as running:
        yield running


def replay(trained: TrainedModels, client: HttpModelClient, tmp_path: Path,
           fallback: str) -> Any:
    from trading.backtest import run_backtest

    settings = load_settings()
    settings = settings.model_copy(
        update={"models": settings.models.model_copy(update={"fallback": fallback})}
    )
    bars = trained.bars
    return run_backtest(
        bars[bars["timestamp"] >= "2011-01-01"], index_bars=trained.index_bars,
        settings=settings, model_client=client, gate_enabled=False,  # enter what it answers
        journal_url=f"sqlite:///{tmp_path / f'journal-{fallback}.db'}",
    )  # fmt: skip


@pytest.mark.parametrize("fallback", ["no_entry", "rules"])
def test_the_engine_through_a_failing_service_keeps_exiting_and_obeys_its_fallback(
    trained_models: TrainedModels, proxy: FaultyProxy, tmp_path: Path, fallback: str
) -> None:
    # A timeout for a loaded test machine (a healthy answer takes milliseconds); the slow
    # fault answers after twice that.
    with HttpModelClient(proxy.url, timeout=1.5, retries=1, token=TOKEN, backoff_seconds=0.01,
                         failure_threshold=3, cooldown_seconds=COOLDOWN_SECONDS) as client:
        result = replay(trained_models, client, tmp_path, fallback)  # nothing escapes
        # Three failed calls (each fault met once or more, a retry each) opened the
        # circuit; every later signal was answered by it, without a call.
        assert sum(proxy.faulted.values()) == 6
        assert all(proxy.faulted[kind] > 0 for kind in FAULTS), proxy.faulted
        assert client.breaker.state == "open"
        # After its cooldown one trial goes out; the service answers; it closes.
        wait_for(lambda: client.breaker.state == "half_open", timeout=COOLDOWN_SECONDS + 5,
                 what="the cooldown", interval=0.05)
        request = DecideRequest.model_validate_json(json.dumps(trained_models.requests[0]))
        features = {k: float("nan") if v is None else v
                    for k, v in (request.feature_values() or {}).items()}
        assert client.decide(request.signal.to_signal(), features).source == "http"
        assert client.breaker.state == "closed"
    decisions = result.journal.decisions()
    day = decisions["signal_time"].astype(str).str[:10]
    before, later = decisions[day < FAULT_FROM], decisions[day >= FAULT_FROM]
    assert len(before) > 0
    assert len(later) > 10
    assert (before["source"] == "http").all()
    assert result.stats.model_failures == len(later)
    if fallback == "no_entry":
        assert set(later["category"]) == {"model_unavailable"}
        assert (later["action"] == "skipped").all()
        assert later["reason"].str.contains("circuit open").sum() == len(later) - 3
        assert result.stats.refusals["model_unavailable"] == len(later)
    else:
        assert set(later["source"]) == {"fallback"}
        assert (later["action"] == "entered").any()
    # Exits kept working: positions opened before the faults closed during them.
    trades = result.journal.trades()
    entered, left = (trades[c].astype(str).str[:10] for c in ("entry_time", "exit_time"))
    assert "AAPL" in set(trades.loc[(entered < FAULT_FROM) & (left >= FAULT_FROM), "symbol"])


def test_the_circuit_opens_waits_reopens_after_a_failed_trial_and_closes(
    trained_models: TrainedModels, server: Server
) -> None:
    request = DecideRequest.model_validate_json(json.dumps(trained_models.requests[0]))
    signal = request.signal.to_signal()
    features = {k: float("nan") if v is None else v
                for k, v in (request.feature_values() or {}).items()}
    broken = {"on": True}
    with (
        FaultyProxy(server.url, lambda moment, n: "garbage" if broken["on"] else None) as proxy,
        HttpModelClient(proxy.url, timeout=2.0, retries=0, token=TOKEN,
                        failure_threshold=3, cooldown_seconds=1.0) as client,
    ):
        for _ in range(3):
            with pytest.raises(ModelUnavailableError, match="not JSON"):
                client.decide(signal, features)
        assert client.breaker.state == "open"
        opened = time.monotonic()
        with pytest.raises(ModelUnavailableError, match="circuit open"):
            client.decide(signal, features)
        assert proxy.decides == 3  # the open circuit called nobody
        wait_for(lambda: client.breaker.state == "half_open", timeout=5, what="the cooldown",
                 interval=0.02)
        assert time.monotonic() - opened >= 0.9  # it stayed open for its cooldown
        with pytest.raises(ModelUnavailableError, match="not JSON"):
            client.decide(signal, features)  # the trial fails ...
        assert proxy.decides == 4
        assert client.breaker.state == "open"  # ... and the circuit re-opens at once
        broken["on"] = False
        with pytest.raises(ModelUnavailableError, match="circuit open"):
            client.decide(signal, features)
        wait_for(lambda: client.breaker.state == "half_open", timeout=5, what="the cooldown",
                 interval=0.02)
        assert client.decide(signal, features).source == "http"  # a good trial closes it
        assert client.breaker.state == "closed"
        assert client.decide(signal, features).source == "http"


def test_a_hot_reload_loses_no_engine_decision(
    server: Server, trained_models: TrainedModels
) -> None:
    """The engine's own client (its default timeout and retries) deciding without pause
    while every model's version is swapped twice: no `model_unavailable`."""
    import httpx

    uri = trained_models.tracking_uri
    settings = load_settings()
    parsed = [DecideRequest.model_validate_json(json.dumps(r)) for r in trained_models.requests]
    calls = [(p.signal.to_signal(), {k: float("nan") if v is None else v
                                     for k, v in (p.feature_values() or {}).items()})
             for p in parsed]  # fmt: skip
    seen: list[dict[str, str]] = []
    failures: list[str] = []
    stop = threading.Event()

    def engine_loop() -> None:
        with HttpModelClient(server.url, timeout=settings.serving.timeout_seconds,
                             token=TOKEN) as client:
            i = 0
            while not stop.is_set():
                signal, features = calls[i % len(calls)]
                i += 1
                try:
                    seen.append(client.decide(signal, features).model_versions)
                except ModelUnavailableError as exc:
                    failures.append(str(exc))

    thread = threading.Thread(target=engine_loop, daemon=True)
    thread.start()
    try:
        for _ in range(2):
            new = {name: register_copy(uri, name) for name in MODEL_NAMES}
            before = len(seen)
            serve_versions(server, champion=new, challenger=None)
            answer = httpx.post(f"{server.url}/reload", json={}, headers=bearer(), timeout=120)
            assert answer.json()["champion"] == new
            wait_for(lambda b=before, n=new: len(seen) > b + 20 and seen[-1] == n,
                     timeout=60, what="decisions by the new versions")
    finally:
        stop.set()
        thread.join(timeout=60)
    assert failures == []
    assert len({json.dumps(v, sort_keys=True) for v in seen}) >= 3  # v1 and both swaps


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def backtest(tmp_path: Path, trained: TrainedModels, endpoint: str,
             capsys: pytest.CaptureFixture[str]) -> tuple[int, str, Path]:
    from pipelines.cli import main

    bars = trained.bars
    source = tmp_path / "bars.parquet"
    pd.concat([bars[bars["timestamp"] >= "2011-01-01"], trained.index_bars]).to_parquet(source)
    out = tmp_path / "backtest.json"
    with pytest.raises(SystemExit) as finished:
        main(["backtest", "--source", "parquet", "--path", str(source),
              "--model-endpoint", endpoint, "--json", str(out)])  # fmt: skip
    code = finished.value.code
    return int(code or 0), capsys.readouterr().err, out


def test_backtest_checks_the_service_before_the_replay(
    server: Server, trained_models: TrainedModels, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("TRADEWIND_API_TOKEN", TOKEN)
    code, err, out = backtest(tmp_path, trained_models, f"http://127.0.0.1:{closed_port()}",
                              capsys)
    assert code == 2
    assert err.count("\n") == 1
    assert "the model service is unreachable (ConnectError" in err
    assert not out.exists()  # nothing replayed

    monkeypatch.setenv("TRADEWIND_API_TOKEN", "not-the-token")
    code, err, out = backtest(tmp_path, trained_models, server.url, capsys)
    assert code == 2
    assert err.count("\n") == 1
    assert "the model service refused the token (HTTP 401)" in err
    assert "not-the-token" not in err
    assert not out.exists()


def test_backtest_reports_model_unavailable_mid_run_loudly(
    server: Server, trained_models: TrainedModels, proxy: FaultyProxy, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("TRADEWIND_API_TOKEN", TOKEN)
    monkeypatch.setenv("TRADEWIND_SERVING__TIMEOUT_SECONDS", "0.5")
    code, err, out = backtest(tmp_path, trained_models, proxy.url, capsys)
    assert code == 0
    report = json.loads(out.read_text())
    assert report["model_unavailable"] > 0
    assert "model service failures:" in err
    assert "entries refused (fallback no_entry)" in err
    assert f"{report['model_unavailable']} entries refused" in err
