"""Rate budgets: a token bucket per provider and partition, in the worker's memory, so
that workers share a provider's rate limit by partition (each partition has one owner).
A send waits for its token: back-pressure on that partition only.

The buckets are not kept in a table (0.6.x): a changelog record per send bought only
this, that a restarted worker would resume a partition's bucket where it was. A bucket
holds at most one token, and a worker takes seconds to restart or to take over a
partition, so a fresh bucket lets at most one call per partition leave early after a
restart or rebalance; from then on calls are spaced `1 / rate` apart as before.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from pipeline.domain.rate import TokenBucket
from pipeline.metrics import Metrics

__all__ = ["RateBudgets"]


@dataclass
class RateBudgets:
    """`take(provider, partition)` waits for one token of that partition's bucket."""

    buckets: Mapping[str, TokenBucket]  # provider -> its share of the limit per partition
    metrics: Metrics
    clock: Callable[[], float] = field(default=time.time)
    windows: dict[str, dict[str, float]] = field(default_factory=dict)  # "provider:partition"
    departed: dict[str, float] = field(default_factory=dict)  # "provider:partition" -> when

    @classmethod
    def from_limits(
        cls, limits: Mapping[str, float], partitions: int, metrics: Metrics
    ) -> RateBudgets:
        """Each provider's messages per second, split evenly over the partitions.

        No burst beyond one token: with calls in flight side by side, a saved-up burst
        goes out at once, on top of the next second's share, and the provider would
        see up to twice its limit within one second. A budget of one token spaces the
        calls `1 / rate` apart from the first, so no second ever holds more than the
        limit (reserving is a read-modify-write with no await in between: atomic
        under asyncio, however many calls wait).
        """
        per_partition = {name: rate / max(1, partitions) for name, rate in limits.items()}
        buckets = {name: TokenBucket(rate=rate, burst=1.0) for name, rate in per_partition.items()}
        return cls(buckets, metrics)

    async def depart(self, provider: str, partition: int) -> None:
        """Wait, right before a call goes out, until it is `1 / rate` after the previous
        call of this provider and partition left (this worker's own memory).

        `take` reserves a call's slot before its ledger intent is written (so a crash
        while it waits leaves nothing in doubt); how long the intent takes varies, so
        calls could leave closer together than their slots. This gate spaces the
        departures themselves, and waits only as long as an intent ran late.
        """
        bucket = self.buckets.get(provider)
        if bucket is None:
            return
        key = f"{provider}:{partition}"
        now = self.clock()
        slot = max(now, self.departed.get(key, 0.0) + 1.0 / bucket.rate)
        self.departed[key] = slot  # reserved before the await: atomic under asyncio
        if slot > now:
            await asyncio.sleep(slot - now)

    async def take(self, provider: str, partition: int) -> None:
        bucket = self.buckets.get(provider)
        if bucket is None:
            return
        key = f"{provider}:{partition}"
        state, wait = bucket.take(self.windows.get(key), self.clock())
        self.windows[key] = state
        if wait > 0:  # this partition waits its turn; the others go on
            self.metrics.rate_limited.labels(provider).inc()
            await asyncio.sleep(wait)
