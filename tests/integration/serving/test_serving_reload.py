"""Hot reload and failure isolation of the running service: alias changes swap models
under load without a failed request, a broken challenger leaves the champion serving,
polling finds alias changes alone, and a graceful stop loses no logged decision."""

from __future__ import annotations

import threading

import httpx
import pytest

from serving.decision_log import read_decisions
from serving.router import bucket
from tests.integration.serving.harness import (
    MODEL_NAMES,
    Server,
    TrainedModels,
    bearer,
    register_broken,
    register_copy,
    serve_versions,
    set_alias,
    wait_for,
)

pytestmark = pytest.mark.integration


def _versions(tracking_uri: str) -> dict[str, str]:
    return {name: register_copy(tracking_uri, name) for name in MODEL_NAMES}


@pytest.fixture(scope="module")
def server(serving_server: Server) -> Server:
    serve_versions(serving_server, champion=dict.fromkeys(MODEL_NAMES, "1"), challenger=None)
    return serving_server


def _champion(server: Server) -> dict[str, str]:
    return dict(httpx.get(f"{server.url}/models", timeout=10).json()["champion"]["versions"])


class Load:
    """Threads posting /decide without pause; every answer and failure is kept."""

    def __init__(self, server: Server, requests: list[dict[str, object]], threads: int) -> None:
        self.server = server
        self.requests = requests
        self.answers: list[dict[str, object]] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._run, args=(k,), daemon=True) for k in range(threads)
        ]

    def _run(self, slot: int) -> None:
        with httpx.Client(base_url=self.server.url, headers=bearer(), timeout=30) as client:
            i = slot
            while not self._stop.is_set():
                request = self.requests[i % len(self.requests)]
                i += len(self._threads)
                try:
                    response = client.post("/decide", json=request)
                except httpx.HTTPError as exc:
                    with self._lock:
                        self.failures.append(repr(exc))
                    continue
                with self._lock:
                    if response.status_code == 200:
                        self.answers.append(response.json())
                    else:
                        self.failures.append(f"{response.status_code}: {response.text[:200]}")

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def count(self) -> int:
        with self._lock:
            return len(self.answers)


def test_hot_reload_under_load_without_a_failed_request(
    server: Server, trained_models: TrainedModels
) -> None:
    uri = trained_models.tracking_uri
    old = _champion(server)
    new = _versions(uri)
    with Load(server, trained_models.requests, threads=3) as load:
        wait_for(lambda: load.count() >= 20, timeout=60, what="traffic before the reload")
        set_alias(uri, "champion", new)
        reload = httpx.post(f"{server.url}/reload", json={}, headers=bearer(), timeout=120).json()
        assert reload["error"] is None
        # The poller may have swapped first; either way the new champion serves now.
        assert reload["champion"] == new
        swapped_at = load.count()
        wait_for(lambda: load.count() >= swapped_at + 20, timeout=60,
                 what="traffic after the reload")
    assert load.failures == []
    seen = [answer["model_versions"] for answer in load.answers]
    assert old in seen
    assert new in seen
    # Once swapped, the old models answer nothing new (a few in flight may finish late).
    assert all(versions == new for versions in seen[-10:])
    assert _champion(server) == new


def test_a_broken_challenger_does_not_take_the_service_down(
    server: Server, trained_models: TrainedModels
) -> None:
    uri = trained_models.tracking_uri
    challenger = _versions(uri)
    challenger["signal_quality"] = register_broken(uri, "signal_quality", trained_models.root)
    set_alias(uri, "challenger", challenger)
    try:
        answer = httpx.post(f"{server.url}/reload", json={}, headers=bearer(), timeout=120).json()
        assert answer["error"] is not None
        assert "challenger" in answer["error"]
        assert answer["challenger"] is None
        status = httpx.get(f"{server.url}/models", timeout=10).json()
        assert "challenger" in status["last_reload_error"]
        assert "signal_quality" in status["last_reload_error"]
        assert status["ready"] is True
        assert httpx.get(f"{server.url}/readyz", timeout=10).status_code == 200
        with httpx.Client(base_url=server.url, headers=bearer(), timeout=30) as client:
            answers = [client.post("/decide", json=r) for r in trained_models.requests[:30]]
        assert all(response.status_code == 200 for response in answers)
        assert {response.json()["variant"] for response in answers} == {"champion"}
    finally:
        set_alias(uri, "challenger", None)
    # With the broken alias gone, the next check clears the error.
    httpx.post(f"{server.url}/reload", json={}, headers=bearer(), timeout=120)
    assert httpx.get(f"{server.url}/models", timeout=10).json()["last_reload_error"] is None


def test_polling_finds_alias_changes_without_a_reload_call(
    server: Server, trained_models: TrainedModels
) -> None:
    new = _versions(trained_models.tracking_uri)
    set_alias(trained_models.tracking_uri, "champion", new)
    wait_for(lambda: _champion(server) == new, timeout=60, what="the poller to swap models")


def test_two_workers_route_alike_and_a_graceful_stop_loses_no_decision(
    trained_models: TrainedModels,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """`tradewind serve --workers 2`: both workers route every signal to the same arm and
    write one shared log; the log writers hold rows for a minute, so only the shutdown
    flush can have written them."""
    uri = trained_models.tracking_uri
    set_alias(uri, "champion", dict.fromkeys(MODEL_NAMES, "1"))
    set_alias(uri, "challenger", dict.fromkeys(MODEL_NAMES, "2"))
    service = Server(
        uri,
        tmp_path_factory.mktemp("serving-stop"),
        env={"TRADEWIND_RELOAD_INTERVAL_SECONDS": "0",
             "TRADEWIND_DECISION_LOG_FLUSH_SECONDS": "60"},
        workers=2,
    )
    service.start()
    answers = []
    try:
        for request in trained_models.requests[:120]:
            # A new connection each time, so both workers take requests.
            response = httpx.post(f"{service.url}/decide", json=request, timeout=30)
            assert response.status_code == 200, response.text
            answers.append(response.json())
    finally:
        code = service.stop()
    assert code == 0
    for answer in answers:
        expected = "challenger" if bucket(answer["signal_id"]) < 0.2 else "champion"
        assert answer["variant"] == expected
    assert any(a["variant"] == "challenger" for a in answers)
    logged = read_decisions(service.decision_log)
    assert set(logged["decision_id"]) == {a["decision_id"] for a in answers}
    assert len(logged) == len(answers)
