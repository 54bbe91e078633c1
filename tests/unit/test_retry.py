"""The retry policy of the seed (6.6): backoff per error class, Retry-After, the scale."""

from __future__ import annotations

import pytest

from pipeline.domain.retry import RetryPolicy
from pipeline.exceptions import (
    InvalidData,
    ProviderAuthError,
    ProviderTimeout,
    RateLimited,
    TransientError,
)


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
        (ProviderAuthError("401"), "provider-auth", [None]),
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


def test_a_floor_gives_a_class_at_least_that_many_retries() -> None:
    """Failover before the dead letter: enough retries to reach each of a channel's
    providers once, whatever the class's own count (a refused key: none)."""
    policy = RetryPolicy(scale=0.25)
    auth = ProviderAuthError("401")
    assert policy.decide(auth, {}, floor=1) == policy.decide(auth, {}, floor=2)
    assert policy.decide(auth, {}, floor=1).retry and policy.decide(auth, {}, floor=1).delay_s == 0
    assert not policy.decide(auth, {"provider-auth": 1}, floor=1).retry
    assert policy.decide(auth, {"provider-auth": 1}, floor=2).retry
    # A floor below the seed's count changes nothing.
    assert not policy.decide(TransientError("503"), {"provider-error": 3}, floor=1).retry
