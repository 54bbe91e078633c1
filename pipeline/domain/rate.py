"""A token bucket per provider and partition: the provider's rate limit, split over the
partitions so that workers share it by partition. Its state lives in a table (the caller
keeps it), so the budget survives restarts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["TokenBucket"]


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
