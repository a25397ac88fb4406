"""The model client's circuit breaker with a real cooldown on an injected clock: it opens
at the threshold and not before, stays open for exactly the cooldown, lets one trial
through, closes on its success and re-opens for a whole cooldown on its failure."""

from __future__ import annotations

from serving.client import CircuitBreaker

COOLDOWN = 5.0


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def _opened(threshold: int = 3) -> tuple[CircuitBreaker, Clock]:
    clock = Clock()
    breaker = CircuitBreaker(threshold, COOLDOWN, clock=clock)
    for _ in range(threshold):
        assert breaker.allow()
        breaker.failed()
    return breaker, clock


def test_opens_at_the_threshold_of_consecutive_failures_not_before() -> None:
    breaker = CircuitBreaker(3, COOLDOWN, clock=Clock())
    for _ in range(2):
        breaker.failed()
    assert (breaker.state, breaker.allow()) == ("closed", True)
    breaker.succeeded()  # a success resets the count
    for _ in range(2):
        breaker.failed()
    assert breaker.state == "closed"
    breaker.failed()
    assert (breaker.state, breaker.allow()) == ("open", False)


def test_stays_open_for_exactly_the_cooldown_then_allows_one_trial() -> None:
    breaker, clock = _opened()
    clock.now += COOLDOWN - 0.001
    assert (breaker.state, breaker.allow()) == ("open", False)
    clock.now += 0.001
    assert breaker.state == "half_open"
    assert breaker.allow()  # the trial
    assert not breaker.allow()  # one trial at a time
    breaker.succeeded()
    assert (breaker.state, breaker.allow(), breaker.allow()) == ("closed", True, True)


def test_a_failed_trial_reopens_for_a_whole_cooldown() -> None:
    breaker, clock = _opened()
    clock.now += COOLDOWN
    assert breaker.allow()
    clock.now += 1.0  # the trial took a second and failed
    breaker.failed()
    assert (breaker.state, breaker.allow()) == ("open", False)
    clock.now += COOLDOWN - 0.001
    assert (breaker.state, breaker.allow()) == ("open", False)
    clock.now += 0.001
    assert (breaker.state, breaker.allow()) == ("half_open", True)


def test_a_single_failure_after_recovery_does_not_reopen() -> None:
    breaker, clock = _opened()
    clock.now += COOLDOWN
    assert breaker.allow()
    breaker.succeeded()
    breaker.failed()
    assert (breaker.state, breaker.allow()) == ("closed", True)


def test_the_default_clock_is_monotonic_time() -> None:
    breaker = CircuitBreaker(1, 60.0)
    breaker.failed()
    assert (breaker.state, breaker.allow()) == ("open", False)
    assert (breaker.failure_threshold, breaker.cooldown_seconds) == (1, 60.0)
    assert (CircuitBreaker().failure_threshold, CircuitBreaker().cooldown_seconds) == (5, 5.0)
