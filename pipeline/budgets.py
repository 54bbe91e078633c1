"""Rate budgets: a token bucket per provider and partition, kept in the `rate-windows`
table, so that workers share a provider's rate limit by partition and the budget
survives restarts. A send waits for its token: back-pressure on that partition only.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pipeline.domain.rate import TokenBucket
from pipeline.metrics import Metrics

__all__ = ["RateBudgets"]


@dataclass
class RateBudgets:
    """`take(provider, partition)` waits for one token (writes the table: call it while
    the event whose partition it is is the current one)."""

    buckets: Mapping[str, TokenBucket]  # provider -> its share of the limit per partition
    table: Any  # the rate-windows table: "provider:partition" -> {tokens, at}
    metrics: Metrics
    clock: Callable[[], float] = field(default=time.time)

    @classmethod
    def from_limits(
        cls, limits: Mapping[str, float], partitions: int, table: Any, metrics: Metrics
    ) -> RateBudgets:
        """Each provider's messages per second, split evenly over the partitions."""
        per_partition = {name: rate / max(1, partitions) for name, rate in limits.items()}
        buckets = {
            name: TokenBucket(rate=rate, burst=max(1.0, rate))
            for name, rate in per_partition.items()
        }
        return cls(buckets, table, metrics)

    async def take(self, provider: str, partition: int) -> None:
        bucket = self.buckets.get(provider)
        if bucket is None:
            return
        key = f"{provider}:{partition}"
        state, wait = bucket.take(self.table.get(key), self.clock())
        self.table[key] = state
        if wait > 0:  # this partition waits its turn; the others go on
            self.metrics.rate_limited.labels(provider).inc()
            await asyncio.sleep(wait)
