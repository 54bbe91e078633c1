"""The circuit breaker of the seed (section 6.9), one per provider in each worker.

Opens after `threshold` consecutive provider failures; while open, traffic fails over
to the channel's next provider; every `probe_after_s` one trial call goes through
(half-open) and a success closes it. Plain logic over an injected clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import Enum

__all__ = ["CircuitBreaker", "CircuitState", "Clock"]

Clock = Callable[[], float]


class CircuitState(Enum):
    CLOSED = 0
    OPEN = 1
    HALF_OPEN = 2


class CircuitBreaker:
    """Per provider: opens after `threshold` consecutive failures, lets one trial call
    through every `probe_after_s` while open, and closes when a call succeeds.

    State is per worker on purpose: it is a local view of a provider's health,
    relearned in `threshold` calls, and sharing it through Kafka would only add lag.
    """

    def __init__(
        self,
        provider: str,
        *,
        threshold: int = 5,
        probe_after_s: float = 60.0,
        clock: Clock = time.monotonic,
        on_change: Callable[[str, CircuitState], None] | None = None,
    ) -> None:
        self.provider = provider
        self.threshold = threshold
        self.probe_after_s = probe_after_s
        self.clock = clock
        self.on_change = on_change
        self.state = CircuitState.CLOSED
        self.failures = 0
        self.opened_at = 0.0
        self.trial_in_flight = False

    def allow(self) -> bool:
        """May a call go to this provider now? (A True in half-open is the trial.)"""
        self.tick()
        if self.state is CircuitState.CLOSED:
            return True
        if self.state is CircuitState.HALF_OPEN and not self.trial_in_flight:
            self.trial_in_flight = True
            return True
        return False

    def would_allow(self) -> bool:
        """Would `allow()` say yes now? (Without taking the half-open trial.)"""
        self.tick()
        return self.state is CircuitState.CLOSED or (
            self.state is CircuitState.HALF_OPEN and not self.trial_in_flight
        )

    def tick(self) -> None:
        """Move an open circuit to half-open once its probe interval has passed."""
        if self.state is CircuitState.OPEN and self.clock() - self.opened_at >= self.probe_after_s:
            self._set(CircuitState.HALF_OPEN)

    def record_success(self) -> None:
        self.failures = 0
        self.trial_in_flight = False
        if self.state is not CircuitState.CLOSED:
            self._set(CircuitState.CLOSED)

    def record_failure(self) -> None:
        self.failures += 1
        self.trial_in_flight = False
        if self.state is CircuitState.HALF_OPEN or (
            self.state is CircuitState.CLOSED and self.failures >= self.threshold
        ):
            self.opened_at = self.clock()
            self._set(CircuitState.OPEN)

    def _set(self, state: CircuitState) -> None:
        self.state = state
        if self.on_change is not None:
            self.on_change(self.provider, state)
