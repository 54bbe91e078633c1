"""The circuit breaker of the seed (6.9): open after five failures, one probe a minute."""

from __future__ import annotations

from pipeline.domain.breaker import CircuitBreaker, CircuitState


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_breaker_opens_after_five_consecutive_failures_and_probes() -> None:
    clock, changes = Clock(), []
    breaker = CircuitBreaker("sendgrid", clock=clock, on_change=lambda p, s: changes.append(s))
    for _ in range(4):
        assert breaker.allow()
        breaker.record_failure()
    assert breaker.state is CircuitState.CLOSED
    breaker.record_success()  # a success resets the count
    for _ in range(5):
        breaker.record_failure()
    assert breaker.state is CircuitState.OPEN and not breaker.allow()
    clock.now = 59.9
    assert not breaker.allow()
    clock.now = 60.0
    assert breaker.allow()  # the one trial call of the half-open circuit
    assert breaker.state is CircuitState.HALF_OPEN and not breaker.allow()
    breaker.record_failure()  # the trial failed: open again for another interval
    assert breaker.state is CircuitState.OPEN and not breaker.allow()
    clock.now = 120.0
    breaker.tick()
    assert breaker.state is CircuitState.HALF_OPEN
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state is CircuitState.CLOSED and breaker.allow()
    assert changes == [
        CircuitState.OPEN, CircuitState.HALF_OPEN, CircuitState.OPEN,
        CircuitState.HALF_OPEN, CircuitState.CLOSED,
    ]  # fmt: skip
