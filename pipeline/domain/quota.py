"""Per-tenant request quotas at the HTTP door: one token bucket per tenant, in memory.

Why at the door: a tenant that floods `POST /v1/notifications` must not fill the
requests topic ahead of everyone else's messages; refusing with 429 and a
`Retry-After` costs nothing downstream. The buckets live in the worker's memory
(each worker meters what it is sent), bounded to `max_tenants`: the least
recently seen tenant is forgotten first, and a forgotten tenant starts again
with a full burst, which is what it would have had after an idle spell anyway.

`Quota.parse` reads `HERALD_TENANT_QUOTAS` (`acme=50:100,beta=5` is acme at 50
requests per second with bursts of 100, beta at 5/s with the default burst
ratio); a rate of 0 means unmetered.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from pipeline.exceptions import ConfigError

__all__ = ["Quota", "TenantQuotas", "parse_quotas"]


@dataclass(frozen=True)
class Quota:
    """`rate` requests per second on average, up to `burst` at once; rate 0: unmetered."""

    rate: float
    burst: float

    def __post_init__(self) -> None:
        if self.rate < 0 or (self.rate > 0 and self.burst < 1):
            raise ConfigError(f"a quota needs rate >= 0 and burst >= 1, not {self}")

    @property
    def unmetered(self) -> bool:
        return self.rate == 0


def parse_quotas(spec: str, default: Quota) -> dict[str, Quota]:
    """`"acme=50:100,beta=5"` as quotas by tenant; a missing burst is twice the rate."""
    out: dict[str, Quota] = {}
    for item in filter(None, (p.strip() for p in spec.split(","))):
        tenant, _, value = item.partition("=")
        rate, _, burst = value.partition(":")
        try:
            r = float(rate)
            out[tenant.strip()] = Quota(r, float(burst) if burst else max(1.0, 2 * r))
        except ValueError:
            raise ConfigError(
                f"HERALD_TENANT_QUOTAS: {item!r} is not tenant=rate or tenant=rate:burst"
            ) from None
    if "" in out:
        raise ConfigError("HERALD_TENANT_QUOTAS: a quota names no tenant")
    return out


@dataclass
class _Bucket:
    tokens: float
    at: float


@dataclass
class TenantQuotas:
    """Admit or refuse one request per call; the clock is injected (tests pass their own)."""

    default: Quota
    overrides: Mapping[str, Quota] = field(default_factory=dict)
    clock: Callable[[], float] = time.monotonic
    max_tenants: int = 10_000
    _buckets: OrderedDict[str, _Bucket] = field(default_factory=OrderedDict, init=False, repr=False)

    def quota_of(self, tenant: str) -> Quota:
        return self.overrides.get(tenant, self.default)

    def admit(self, tenant: str) -> float | None:
        """None when the request may go on (a token taken), else seconds until one is there."""
        quota = self.quota_of(tenant)
        if quota.unmetered:
            return None
        now = self.clock()
        bucket = self._buckets.pop(tenant, None)
        if bucket is None:
            bucket = _Bucket(quota.burst, now)
        bucket.tokens = min(quota.burst, bucket.tokens + max(0.0, now - bucket.at) * quota.rate)
        bucket.at = now
        self._buckets[tenant] = bucket  # most recently seen last
        while len(self._buckets) > self.max_tenants:
            self._buckets.popitem(last=False)
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return None
        return (1.0 - bucket.tokens) / quota.rate

    def __len__(self) -> int:
        return len(self._buckets)
