"""The token bucket behind the rate budgets: callers spaced at the provider's rate."""

from __future__ import annotations

import asyncio

import pytest

from pipeline.budgets import RateBudgets
from pipeline.domain.rate import TokenBucket
from pipeline.metrics import Metrics


def test_token_bucket_spaces_callers_at_the_rate() -> None:
    bucket = TokenBucket(rate=2.0, burst=2.0)
    state, waits = None, []
    for _ in range(5):
        state, wait = bucket.take(state, now=100.0)
        waits.append(wait)
    assert waits == [0.0, 0.0, 0.5, 1.0, 1.5]
    state, wait = bucket.take(state, now=110.0)  # refilled, capped at the burst
    assert wait == 0.0 and state["tokens"] == 1.0


async def test_concurrent_takes_each_reserve_their_own_slot(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Under asyncio concurrency every call reserves a slot of its own (the read and the
    write of the bucket have no await between them), so 30 calls in flight at once are
    spaced 1/rate apart and no second holds more than the limit, from the very first."""
    waits: list[float] = []
    real_sleep = asyncio.sleep

    async def no_sleep(seconds: float) -> None:
        waits.append(seconds)
        await real_sleep(0)

    monkeypatch.setattr("pipeline.budgets.asyncio.sleep", no_sleep)
    budgets = RateBudgets.from_limits({"twilio": 60.0}, 6, Metrics())
    budgets.clock = lambda: 1000.0  # everyone asks at the same instant
    await asyncio.gather(*(budgets.take("twilio", 0) for _ in range(30)))
    starts = sorted([0.0] * (30 - len(waits)) + waits)  # when each call may go out
    assert starts == pytest.approx([i / 10 for i in range(30)])  # 10/s in this partition
    assert max(sum(1 for s in starts if t <= s < t + 1) for t in starts) == 10


async def test_departures_stay_spaced_when_an_intent_ran_late() -> None:
    """A call whose slot came at 0 s but whose intent took 0.4 s leaves at 0.4 s; the
    next call, slotted at 0.5 s, must then wait until 0.9 s, not leave at 0.5 s."""
    now = [1000.4]
    budgets = RateBudgets.from_limits({"fcm": 12.0}, 6, Metrics())  # 2/s per partition
    budgets.clock = lambda: now[0]
    await budgets.depart("fcm", 3)  # the late first call leaves at once
    now[0] = 1000.5
    loop = asyncio.get_running_loop()
    started = loop.time()
    await budgets.depart("fcm", 3)
    assert loop.time() - started == pytest.approx(0.4, abs=0.05)
    await budgets.depart("fcm", 4)  # another partition: its own spacing
    await budgets.depart("unlimited", 3)
    assert loop.time() - started < 0.5
