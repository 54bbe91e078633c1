"""The retry policy of the seed (6.6), the circuit breaker (6.9), the token bucket,
and the send stage's decision after an attempt."""

from __future__ import annotations

import pytest

from pipeline.domain.breaker import CircuitBreaker, CircuitState
from pipeline.domain.followups import Outcome, next_step
from pipeline.domain.rate import TokenBucket
from pipeline.domain.retry import RetryPolicy
from pipeline.exceptions import (
    CircuitOpen,
    InvalidData,
    ProviderAuthError,
    ProviderTimeout,
    RateLimited,
    RecipientUnreachable,
    TransientError,
)
from pipeline.http.api import prefer_wait

pytestmark = pytest.mark.unit


def delays(policy: RetryPolicy, error: Exception, error_class: str) -> list[float | None]:
    """Successive decisions for the same error until the policy gives up."""
    out: list[float | None] = []
    counts: dict[str, int] = {}
    for _ in range(10):
        decision = policy.decide(error, counts)  # type: ignore[arg-type]
        assert decision.error_class == error_class
        if not decision.retry:
            out.append(None)
            return out
        out.append(decision.delay_s)
        counts[error_class] = counts.get(error_class, 0) + 1
    raise AssertionError("the policy never gave up")


@pytest.mark.parametrize(
    ("error", "error_class", "expected"),
    [
        (ProviderTimeout("t"), "timeout", [2.0, 4.0, 8.0, None]),
        (RateLimited("429"), "rate-limit", [60.0] * 5 + [None]),
        (TransientError("503"), "provider-error", [2.0, 4.0, 8.0, None]),
        (InvalidData("400"), "invalid", [None]),
    ],
)
def test_policy_follows_the_seed_table(error: Exception, error_class: str, expected: list) -> None:
    assert delays(RetryPolicy(), error, error_class) == expected


def test_retry_after_is_honoured_and_never_scaled() -> None:
    policy = RetryPolicy(scale=0.01)
    assert delays(policy, RateLimited("429", retry_after=7.0), "rate-limit")[:2] == [7.0, 7.0]
    # A 5xx with Retry-After waits at least that long, more if the backoff says so.
    assert policy.decide(TransientError("503", retry_after=3.0), {}).delay_s == 3.0
    assert RetryPolicy().decide(TransientError("503", retry_after=1.0), {}).delay_s == 2.0


def test_scale_shrinks_the_policys_own_delays() -> None:
    assert delays(RetryPolicy(scale=0.25), ProviderTimeout("t"), "timeout") == [0.5, 1, 2, None]


def test_counts_are_per_error_class() -> None:
    policy = RetryPolicy()
    decision = policy.decide(ProviderTimeout("t"), {"provider-error": 3, "timeout": 1})
    assert decision.retry and decision.delay_s == 4.0


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


def test_token_bucket_spaces_callers_at_the_rate() -> None:
    bucket = TokenBucket(rate=2.0, burst=2.0)
    state, waits = None, []
    for _ in range(5):
        state, wait = bucket.take(state, now=100.0)
        waits.append(wait)
    assert waits == [0.0, 0.0, 0.5, 1.0, 1.5]
    state, wait = bucket.take(state, now=110.0)  # refilled, capped at the burst
    assert wait == 0.0 and state["tokens"] == 1.0


def outcome(error: Exception | None = None) -> Outcome:
    accepted = None if error else "id-1"
    return Outcome("whatsapp", provider_message_id=accepted, provider="p", error=error)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("error", "remaining", "action", "reason"),
    [
        (None, [], "sent", ""),
        (RecipientUnreachable("131026"), ["sms", "email"], "fallback", "unreachable"),
        (RecipientUnreachable("131026"), [], "failed", "unreachable"),
        (InvalidData("bad"), ["sms"], "dead-letter", "invalid"),
        (ProviderAuthError("401"), [], "dead-letter", "provider-auth"),
        (TransientError("500"), [], "retry", ""),
        (CircuitOpen("open"), [], "retry", ""),
    ],
)
def test_next_step(error: Exception | None, remaining: list, action: str, reason: str) -> None:
    step = next_step(outcome(error), remaining, {}, RetryPolicy())
    assert (step.action, step.reason) == (action, reason)


def test_next_step_dead_letters_when_retries_are_exhausted() -> None:
    step = next_step(outcome(TransientError("500")), [], {"provider-error": 3}, RetryPolicy())
    assert step.action == "dead-letter" and step.reason == "retries-exhausted:provider-error"


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [([], 0.0), (["wait=5"], 5.0), (["respond-async, wait=10"], 10.0), (["wait=120"], 30.0),
     (["return=minimal"], 0.0)],
)  # fmt: skip
def test_prefer_wait(headers: list[str], seconds: float) -> None:
    assert prefer_wait(headers) == seconds
