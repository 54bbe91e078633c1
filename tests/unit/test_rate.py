"""The token bucket behind the rate budgets: callers spaced at the provider's rate."""

from __future__ import annotations

from pipeline.domain.rate import TokenBucket


def test_token_bucket_spaces_callers_at_the_rate() -> None:
    bucket = TokenBucket(rate=2.0, burst=2.0)
    state, waits = None, []
    for _ in range(5):
        state, wait = bucket.take(state, now=100.0)
        waits.append(wait)
    assert waits == [0.0, 0.0, 0.5, 1.0, 1.5]
    state, wait = bucket.take(state, now=110.0)  # refilled, capped at the burst
    assert wait == 0.0 and state["tokens"] == 1.0
