"""The door's tenant quotas: built from settings, and a refusal as the error the ingress answers.

The buckets themselves are pure (`pipeline.domain.quota`); this is where they
meet the settings and the HTTP answer (429 problem+json with `Retry-After`,
`pipeline.http.problems.QUOTA`).
"""

from __future__ import annotations

from pipeline.domain.quota import Quota, TenantQuotas, parse_quotas
from pipeline.exceptions import QuotaExceeded
from pipeline.settings import Settings

__all__ = ["admit", "door_quotas"]


def door_quotas(settings: Settings) -> TenantQuotas:
    """`HERALD_TENANT_RATE`/`_BURST` for every tenant, `HERALD_TENANT_QUOTAS` for some."""
    default = Quota(settings.tenant_rate, settings.tenant_burst)
    return TenantQuotas(default, parse_quotas(settings.tenant_quotas, default))


def admit(quotas: TenantQuotas, tenant: str) -> None:
    """Take one request from `tenant`'s quota, or raise `QuotaExceeded` with the wait."""
    wait = quotas.admit(tenant)
    if wait is not None:
        quota = quotas.quota_of(tenant)
        raise QuotaExceeded(
            f"over this tenant's quota of {quota.rate:g} requests/s (bursts of {quota.burst:g})",
            retry_after=wait,
        )
