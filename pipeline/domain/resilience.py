"""Resilience as small value objects: the retry policy, the circuit breaker, the token bucket.

All three are plain logic over an injected clock, so unit tests drive them
without sleeping; the send stage owns their instances and persistence.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum

from pipeline.exceptions import (
    DeliveryError,
    InvalidData,
    PermanentError,
    ProviderTimeout,
    RateLimited,
    TransientError,
)

Clock = Callable[[], float]


# ---------------------------------------------------------------- retry policy
@dataclass(frozen=True)
class RetryRule:
    """How one class of error is retried (the seed's table, section 6.6)."""

    retries: int
    backoff: str  # exponential | linear | none
    base_s: float

    def delay(self, retry: int) -> float:
        """Delay before retry number `retry` (1-based)."""
        if self.backoff == "exponential":
            return float(self.base_s * 2 ** (retry - 1))
        if self.backoff == "linear":
            return self.base_s
        return 0.0


DEFAULT_RULES: Mapping[str, RetryRule] = {
    "timeout": RetryRule(3, "exponential", 2.0),  # 2 s, 4 s, 8 s
    "rate-limit": RetryRule(5, "linear", 60.0),  # or the provider's Retry-After
    "provider-error": RetryRule(3, "exponential", 2.0),  # 5xx
    "invalid": RetryRule(0, "none", 0.0),
}


@dataclass(frozen=True)
class RetryDecision:
    error_class: str
    retry: bool
    delay_s: float = 0.0


@dataclass(frozen=True)
class RetryPolicy:
    """Decides, per error class, whether and when a failed attempt is retried.

    `scale` shrinks the policy's own delays (tests, demos); a provider's
    Retry-After is honoured as given, never scaled down.
    """

    rules: Mapping[str, RetryRule] = field(default_factory=lambda: dict(DEFAULT_RULES))
    scale: float = 1.0

    @staticmethod
    def classify(error: DeliveryError) -> str:
        if isinstance(error, RateLimited):
            return "rate-limit"
        if isinstance(error, ProviderTimeout):
            return "timeout"
        if isinstance(error, TransientError):
            return "provider-error"
        if isinstance(error, InvalidData | PermanentError):
            return "invalid"
        return "provider-error"

    def decide(self, error: DeliveryError, retries_so_far: Mapping[str, int]) -> RetryDecision:
        error_class = self.classify(error)
        rule = self.rules[error_class]
        done = retries_so_far.get(error_class, 0)
        if done >= rule.retries:
            return RetryDecision(error_class, retry=False)
        delay = rule.delay(done + 1) * self.scale
        if error.retry_after is not None:  # the provider said when: never earlier
            after = error.retry_after
            delay = after if error_class == "rate-limit" else max(delay, after)
        return RetryDecision(error_class, retry=True, delay_s=delay)


# ------------------------------------------------------------- circuit breaker
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


# ---------------------------------------------------------------- token bucket
@dataclass(frozen=True)
class TokenBucket:
    """`rate` tokens per second, at most `burst` saved. State is `{tokens, at}`,
    kept by the caller (a Faust table), so the budget survives restarts."""

    rate: float
    burst: float

    def take(self, state: Mapping[str, float] | None, now: float) -> tuple[dict[str, float], float]:
        """Take one token: the new state, and how long to wait before using it.

        A token taken before it is there is borrowed (tokens go negative), so
        callers waiting in turn are spaced `1 / rate` apart.
        """
        if state is None:
            tokens, at = self.burst, now
        else:
            tokens, at = state["tokens"], state["at"]
        tokens = min(self.burst, tokens + max(0.0, now - at) * self.rate) - 1.0
        return {"tokens": tokens, "at": now}, max(0.0, -tokens / self.rate)
