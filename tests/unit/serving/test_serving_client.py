"""HttpModelClient: retries with jitter, circuit breaker, refusals, and the wire format.

The service side is a hand-written fake (an httpx transport answering from a script);
the real service is exercised in tests/integration/test_serving_service.py."""

from __future__ import annotations

import json
import math
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import pytest

from core.errors import ModelUnavailableError
from core.types import Side, Signal
from serving.client import CircuitBreaker, HttpModelClient, ModelRequestRejected

SIGNAL = Signal("AAPL", Side.BUY, datetime(2024, 1, 2, 15, 30, tzinfo=UTC), "momentum", 100.0)


def _answer() -> dict[str, object]:
    return {
        "decision_id": "abc", "signal_id": SIGNAL.signal_id, "variant": "challenger",
        "model_versions": {"signal_quality": "3"}, "win_probability": 0.7,
        "action": "enter", "reason": "", "reason_detail": "", "expected_value": 0.03,
        "threshold": 0.55, "size_fraction": 0.06,
        "stop_loss_atr": 2.0, "take_profit_atr": 3.0, "stop_loss_price": 96.0,
        "take_profit_price": 106.0, "model_stop_loss_atr": 1.5, "model_take_profit_atr": 4.0,
        "regime": "calm", "policy_regime": "calm", "regime_source": "rules",
        "regime_probabilities": {"trending": 0.1, "ranging": 0.1, "volatile": 0.1, "calm": 0.7},
        "expected_drawdown_pct": 0.02, "drawdown_p10_pct": 0.01, "drawdown_p90_pct": 0.04,
        "out_of_distribution": False, "shadowed": False, "latency_ms": 1.0,
        "decided_at": "2024-01-02T15:30:00Z",
    }


class ScriptedService:
    """Answers each request with the next scripted step (status or exception)."""

    def __init__(self, steps: list[int | type[Exception]]) -> None:
        self.steps = steps
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.method == "GET" and request.url.path == "/models":
            return httpx.Response(200, json={"accepted_features": ["rsi_14", "sent_mean_1d"]})
        self.requests.append(request)
        step = self.steps.pop(0) if len(self.steps) > 1 else self.steps[0]
        if isinstance(step, type):
            raise step("scripted failure", request=request)  # type: ignore[call-arg]
        if step == 200:
            return httpx.Response(200, json=_answer())
        return httpx.Response(step, json={"error": "nope", "field": "features.rsi_14"})


def _client(
    service: Callable[[httpx.Request], httpx.Response], **kwargs: object
) -> HttpModelClient:
    options: dict[str, object] = {"retries": 2, "backoff_seconds": 0.001, "token": "s3cret"}
    options.update(kwargs)
    return HttpModelClient("http://model.test", transport=httpx.MockTransport(service), **options)  # type: ignore[arg-type]


def test_a_decision_round_trip_sends_nan_as_null_and_the_token() -> None:
    service = ScriptedService([200])
    decision = _client(service).decide(
        SIGNAL, {"rsi_14": 70.0, "sent_mean_1d": math.nan, "not_served": 1.0}
    )
    sent = json.loads(service.requests[0].content)
    # NaN travels as null; a feature no served model takes is not sent.
    assert sent["features"] == {"rsi_14": 70.0, "sent_mean_1d": None}
    assert sent["signal"]["side"] == "buy"
    assert service.requests[0].headers["authorization"] == "Bearer s3cret"
    assert decision.variant == "challenger"
    assert decision.model_versions == {"signal_quality": "3"}
    assert decision.source == "http"
    assert decision.stop_loss_price == 96.0


@pytest.mark.parametrize("failure", [503, 502, httpx.ConnectError, httpx.ReadTimeout])
def test_transient_failures_are_retried(failure: int | type[Exception]) -> None:
    service = ScriptedService([failure, failure, 200])
    assert _client(service).decide(SIGNAL, {}).decision_id == "abc"
    assert len(service.requests) == 3


def test_retries_are_bounded_then_the_service_is_unavailable() -> None:
    service = ScriptedService([503])
    with pytest.raises(ModelUnavailableError, match="after 3 attempts"):
        _client(service).decide(SIGNAL, {})
    assert len(service.requests) == 3


def test_a_refusal_is_not_retried_and_names_the_field() -> None:
    service = ScriptedService([422])
    with pytest.raises(ModelRequestRejected, match=r"features\.rsi_14") as caught:
        _client(service).decide(SIGNAL, {})
    assert caught.value.status == 422
    assert isinstance(caught.value, ModelUnavailableError)  # the engine's fallback applies
    assert len(service.requests) == 1  # the feature set did not change: no second ask


def test_the_circuit_opens_after_repeated_failures_and_recovers() -> None:
    service = ScriptedService([503, 503, 503, 200])
    client = _client(service, retries=0, failure_threshold=3, cooldown_seconds=0.2)
    for _ in range(3):
        with pytest.raises(ModelUnavailableError):
            client.decide(SIGNAL, {})
    assert client.breaker.state == "open"
    with pytest.raises(ModelUnavailableError, match="circuit open"):
        client.decide(SIGNAL, {})
    assert len(service.requests) == 3  # the open circuit did not call the service
    deadline = time.monotonic() + 5
    while client.breaker.state != "half_open" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert client.decide(SIGNAL, {}).decision_id == "abc"
    assert client.breaker.state == "closed"


def test_a_failed_trial_reopens_the_circuit_for_a_whole_cooldown() -> None:
    breaker = CircuitBreaker(failure_threshold=1, cooldown_seconds=0.3)
    breaker.failed()
    assert (breaker.state, breaker.allow()) == ("open", False)
    started = time.monotonic()
    while breaker.state != "half_open" and time.monotonic() - started < 5:
        time.sleep(0.01)
    assert time.monotonic() - started >= 0.25
    assert breaker.allow()  # the trial
    assert not breaker.allow()  # only one trial at a time
    breaker.failed()
    failed_at = time.monotonic()
    assert (breaker.state, breaker.allow()) == ("open", False)  # re-opened, not stuck half-open
    while breaker.state == "open" and time.monotonic() - failed_at < 5:
        time.sleep(0.01)
    assert time.monotonic() - failed_at >= 0.25  # a new cooldown from the failed trial
    assert breaker.allow()
    breaker.succeeded()
    assert (breaker.state, breaker.allow()) == ("closed", True)


def test_an_answer_that_is_no_decision_counts_against_the_circuit() -> None:
    def service(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return httpx.Response(200, json={"accepted_features": ["rsi_14"]})
        return httpx.Response(200, json={"hello": "world"})

    client = _client(service, retries=0, failure_threshold=2, cooldown_seconds=30)
    for _ in range(2):
        with pytest.raises(ModelUnavailableError, match="not a decision"):
            client.decide(SIGNAL, {})
    assert client.breaker.state == "open"


def test_a_closed_port_is_unavailable_quickly() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = HttpModelClient(f"http://127.0.0.1:{port}", timeout=0.5, retries=1,
                             backoff_seconds=0.001)
    started = time.monotonic()
    with pytest.raises(ModelUnavailableError, match="cannot reach"):
        client.decide(SIGNAL, {})
    assert time.monotonic() - started < 2.0


def test_a_garbled_answer_is_unavailable_not_a_crash() -> None:
    def service(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"decision_id": "x"})

    with pytest.raises(ModelUnavailableError, match="not a decision"):
        _client(service).decide(SIGNAL, {})


def test_after_a_reload_the_client_learns_the_new_feature_set_once() -> None:
    accepted = [["rsi_14"]]
    sent: list[dict[str, object]] = []

    def service(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return httpx.Response(200, json={"accepted_features": accepted[0]})
        body = json.loads(request.content)
        sent.append(body["features"])
        if "news_count_1d" not in body["features"]:
            return httpx.Response(422, json={"error": "feature 'news_count_1d' is missing",
                                             "field": "features.news_count_1d"})
        return httpx.Response(200, json=_answer())

    client = _client(service)
    client._accepted_features()  # learned before the reload: rsi_14 only
    accepted[0] = ["rsi_14", "news_count_1d"]  # the service swapped in models needing more
    decision = client.decide(SIGNAL, {"rsi_14": 70.0, "news_count_1d": 3.0})
    assert decision.decision_id == "abc"
    assert sent == [{"rsi_14": 70.0}, {"rsi_14": 70.0, "news_count_1d": 3.0}]


def test_the_policys_verdict_is_decoded_out_of_distribution_included() -> None:
    def service(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return httpx.Response(200, json={"accepted_features": ["rsi_14"]})
        return httpx.Response(200, json={
            **_answer(), "out_of_distribution": True, "action": "skip", "reason": "ood",
            "reason_detail": "inputs out of the training distribution", "size_fraction": 0.0,
        })

    decision = _client(service).decide(SIGNAL, {"rsi_14": 1e9})
    assert decision.out_of_distribution
    assert (decision.action, decision.reason) == ("skip", "ood")
    assert not decision.enter
    assert decision.size_fraction == 0.0
    assert decision.threshold == 0.55
    assert decision.expected_value == 0.03
    assert decision.variant == "challenger"
