"""The engine's HTTP client for the model service; implements `trading.ports.ModelClient`
structurally (this module never imports `trading`).

- one keep-alive `httpx.Client` (connection pool) per client;
- a timeout per attempt, and a bounded number of retries with full jitter for what a
  retry can fix (connection errors, timeouts, 502/503/504);
- a circuit breaker: after `failure_threshold` consecutive failed calls the circuit opens
  and calls fail at once for `cooldown_seconds`; then one trial call decides whether it
  closes again;
- every failure surfaces as `ModelUnavailableError` (bad input refused by the service as
  its subclass `ModelRequestRejected`, which does not trip the breaker), so the engine
  applies its fallback policy instead of crashing;
- the answer decoded whole: the models' outputs and the policy's verdict (`action`,
  `reason`, `reason_detail`, `expected_value`, `threshold`, `size_fraction`), which the
  engine obeys; out-of-distribution answers are answers too (the policy decided).

Features travel as JSON numbers; NaN (missing by design, e.g. no news) travels as `null`
because JSON has no NaN. Only the features the served models take are sent (learned from
`GET /models`, refreshed once when the service refuses the set after a reload). The
engine's bar timeframe goes with every decision when given, and `check` refuses a service
whose models were trained on other bars. The bearer token is sent when given and never
logged."""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx
from pydantic import ValidationError

from core.bars import DAILY
from core.errors import ModelUnavailableError, TimeframeMismatch
from core.types import Decision, Signal
from serving.schemas import DecisionOut, SignalIn, to_decision

_RETRY_STATUSES = frozenset({502, 503, 504})


class ModelRequestRejected(ModelUnavailableError):
    """The service refused the request (4xx): it will not answer this one either way."""

    def __init__(self, message: str, *, status: int, where: str | None = None) -> None:
        super().__init__(message, where=where)
        self.status = status


class CircuitBreaker:
    """Consecutive-failure circuit breaker (closed → open → half-open → closed). Time
    comes from `clock` (seconds, monotonic), injectable for tests."""

    def __init__(
        self,
        failure_threshold: int = 5,
        cooldown_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.failure_threshold = failure_threshold
        self.cooldown_seconds = cooldown_seconds
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_running = False
        self._lock = threading.Lock()

    @property
    def state(self) -> str:
        with self._lock:
            if self._opened_at is None:
                return "closed"
            if self._clock() - self._opened_at >= self.cooldown_seconds:
                return "half_open"
            return "open"

    def allow(self) -> bool:
        """May a call go out now? In half-open state only one trial call at a time."""
        with self._lock:
            if self._opened_at is None:
                return True
            if self._clock() - self._opened_at < self.cooldown_seconds:
                return False
            if self._trial_running:
                return False
            self._trial_running = True
            return True

    def succeeded(self) -> None:
        with self._lock:
            self._failures = 0
            self._opened_at = None
            self._trial_running = False

    def failed(self) -> None:
        with self._lock:
            self._failures += 1
            self._trial_running = False
            if self._opened_at is not None or self._failures >= self.failure_threshold:
                self._opened_at = self._clock()


class HttpModelClient:
    """`ModelClient` over HTTP to the Tradewind model service."""

    def __init__(
        self,
        endpoint: str,
        timeout: float = 0.5,
        retries: int = 2,
        token: str | None = None,
        *,
        backoff_seconds: float = 0.02,
        failure_threshold: int = 5,
        cooldown_seconds: float = 5.0,
        transport: httpx.BaseTransport | None = None,
        timeframe: str | None = None,
    ) -> None:
        if retries < 0:
            raise ValueError("retries must be >= 0")
        self.endpoint = endpoint.rstrip("/")
        self.timeout = timeout
        self.retries = retries
        self.backoff_seconds = backoff_seconds
        self.breaker = CircuitBreaker(failure_threshold, cooldown_seconds)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(
            base_url=self.endpoint,
            timeout=httpx.Timeout(timeout),
            headers=headers,
            limits=httpx.Limits(max_keepalive_connections=16, keepalive_expiry=60.0),
            transport=transport,
        )
        self._random = random.Random()
        self._accepted: frozenset[str] | None = None
        # The engine's bar timeframe, sent with every decision (the service refuses it
        # when its models were trained on other bars); None: not sent, not checked.
        self.timeframe = timeframe
        self._takes_timeframe = True  # until `GET /models` says otherwise

    # -- ModelClient ---------------------------------------------------------------------
    def decide(self, signal: Signal, features: Mapping[str, float]) -> Decision:
        signal_json = SignalIn.from_signal(signal).model_dump(mode="json")
        accepted = self._accepted_features()
        try:
            answer = self._decision(_payload(signal_json, features, accepted, self._sent_timeframe))
        except ModelRequestRejected as exc:
            # The served models changed (reload) and take other features: learn the new
            # set once and ask again; a second refusal is final.
            if exc.status != 422 or accepted == self._accepted_features(refresh=True):
                raise
            answer = self._decision(
                _payload(signal_json, features, self._accepted, self._sent_timeframe))
        return to_decision(answer, signal, source="http")

    @property
    def _sent_timeframe(self) -> str | None:
        return self.timeframe if self._takes_timeframe else None

    def _decision(self, payload: dict[str, Any]) -> DecisionOut:
        answer: DecisionOut = self._call("POST", "/decide", payload, DecisionOut.model_validate)
        return answer

    def _accepted_features(self, *, refresh: bool = False) -> frozenset[str] | None:
        """The features the served models take (`GET /models`), cached. The engine's
        feature rows carry every catalogue feature; the service refuses names no served
        model takes, so the client sends only these. None: unknown, send everything."""
        if self._accepted is None or refresh:
            try:
                status = self.models()
            except ModelUnavailableError:
                return self._accepted
            names = status.get("accepted_features")
            self._accepted = frozenset(names) if names else None
            # A service from before timeframes refuses the field: not sent to it (its
            # models are daily, which `check_timeframe` holds the engine to).
            self._takes_timeframe = "timeframe" in status
        return self._accepted

    # -- operations ----------------------------------------------------------------------
    def check(self) -> dict[str, Any]:
        """Before a run: the service answers, serves a champion and takes the token;
        otherwise `ModelUnavailableError` with the one reason. Returns `GET /models`."""
        where = self.endpoint
        try:
            status = self._http.get("/models")
            # `{}` is no request: past the token check it is refused for its body (422),
            # so no model runs and nothing is logged; 401 means the token is wrong.
            probe = self._http.post("/decide", json={})
        except httpx.TransportError as exc:
            raise ModelUnavailableError(
                f"the model service is unreachable ({type(exc).__name__}: {exc})", where=where
            ) from None
        if status.status_code != 200:
            raise ModelUnavailableError(
                f"GET /models answered HTTP {status.status_code}: {_message(status)}",
                where=where,
            )
        if probe.status_code == 401:
            what = "refused the token" if "authorization" in self._http.headers else (
                "requires a token")
            raise ModelUnavailableError(
                f"the model service {what} (HTTP 401): set TRADEWIND_API_TOKEN to the "
                "service's token",
                where=where,
            )
        try:
            serving = dict(status.json())
        except ValueError:
            raise ModelUnavailableError(
                "GET /models did not answer JSON: is this a Tradewind model service?",
                where=where,
            ) from None
        if not serving.get("champion"):
            raise ModelUnavailableError(
                f"the model service serves no champion ({serving.get('last_reload_error')})",
                where=where,
            )
        self.check_timeframe(serving)
        return serving

    def check_timeframe(self, serving: Mapping[str, Any] | None = None) -> None:
        """`TimeframeMismatch` when the service serves models trained on other bars than
        this client's timeframe (from `serving`, a `GET /models` answer, or asked now). A
        service that does not answer is not judged here: the engine's fallback covers it.
        A service that predates the record serves daily models."""
        if self.timeframe is None:
            return
        if serving is None:
            try:
                serving = self.models()
            except ModelUnavailableError:
                return
        if not serving.get("champion"):
            return
        served = serving.get("timeframe") or DAILY
        if served != self.timeframe:
            raise TimeframeMismatch(
                f"the model service serves models trained on {served} bars and this "
                f"engine trades {self.timeframe} bars: serve models trained with "
                f"`tradewind train --timeframe {self.timeframe}`, or trade --timeframe "
                f"{served}",
                where=self.endpoint,
            )

    def models(self) -> dict[str, Any]:
        """`GET /models`: what is serving, and the last reload error."""
        return self._call("GET", "/models", None)

    def reload(self) -> dict[str, Any]:
        return self._post("/reload", {})

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> HttpModelClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- transport -----------------------------------------------------------------------
    def _post(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        return dict(self._call("POST", path, payload))

    def _call(
        self,
        method: str,
        path: str,
        payload: dict[str, Any] | None,
        read: Callable[[Any], Any] = dict,
    ) -> Any:
        """One call with its retries; `read` turns the JSON answer into what the caller
        wants, and an answer it cannot read (not JSON, not a decision) is a failed
        attempt like a timeout: retried, then counted by the breaker."""
        where = f"{self.endpoint}{path}"
        if not self.breaker.allow():
            raise ModelUnavailableError(
                f"circuit open after repeated failures; retrying in "
                f"{self.breaker.cooldown_seconds:g} s",
                where=where,
            )
        last_problem = "no attempt made"
        for attempt in range(self.retries + 1):
            if attempt:
                # Full jitter: spread retries of many engines so they do not arrive together.
                time.sleep(self._random.uniform(0, self.backoff_seconds * (2 ** (attempt - 1))))
            try:
                response = self._http.request(method, path, json=payload)
            except httpx.TimeoutException:
                last_problem = f"no answer within {self.timeout} s"
                continue
            except httpx.TransportError as exc:
                last_problem = f"cannot reach the service ({type(exc).__name__})"
                continue
            if response.status_code in _RETRY_STATUSES:
                last_problem = f"HTTP {response.status_code}: {_message(response)}"
                continue
            if response.status_code >= 400:
                # The service is healthy and said no: not a breaker failure, never retried.
                self.breaker.succeeded()
                raise ModelRequestRejected(
                    f"HTTP {response.status_code}: {_message(response)}",
                    status=response.status_code,
                    where=where,
                )
            try:
                answer = read(response.json())
            except ValidationError as exc:
                last_problem = (
                    "the model service answered something that is not a decision "
                    f"({exc.error_count()} problems, first: {exc.errors()[0]['msg']})"
                )
                continue
            except (ValueError, TypeError):
                last_problem = "the answer is not JSON"
                continue
            self.breaker.succeeded()
            return answer
        self.breaker.failed()
        raise ModelUnavailableError(
            f"{last_problem} (after {self.retries + 1} attempts)", where=where
        )


def _payload(
    signal: dict[str, Any],
    features: Mapping[str, float],
    accepted: frozenset[str] | None,
    timeframe: str | None = None,
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "signal": signal,
        "features": {
            name: _wire(value)
            for name, value in features.items()
            if accepted is None or name in accepted
        },
    }
    if timeframe is not None:
        payload["timeframe"] = timeframe
    return payload


def _wire(value: float) -> float | None:
    number = float(value)
    return None if math.isnan(number) else number


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict):
        error = body.get("error", "")
        field = body.get("field")
        return f"{error} (field {field})" if field else str(error or body)[:300]
    return str(body)[:300]
