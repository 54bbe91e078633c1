"""Per-tenant quotas at the door: a token bucket per tenant on an injected clock."""

from __future__ import annotations

import pytest

from pipeline.domain.quota import Quota, TenantQuotas, parse_quotas
from pipeline.exceptions import ConfigError


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_is_admitted_then_refused_with_the_wait_until_the_next_token() -> None:
    clock = Clock()
    quotas = TenantQuotas(Quota(rate=2.0, burst=3.0), clock=clock)
    assert [quotas.admit("acme") for _ in range(3)] == [None, None, None]
    assert quotas.admit("acme") == pytest.approx(0.5)
    clock.now += 0.25
    assert quotas.admit("acme") == pytest.approx(0.25)  # a refusal takes nothing
    clock.now += 0.25
    assert quotas.admit("acme") is None
    clock.now += 100  # refilled, capped at the burst
    assert [quotas.admit("acme") for _ in range(4)][-1] == pytest.approx(0.5)


def test_one_tenants_flood_leaves_another_tenants_budget_whole() -> None:
    clock = Clock()
    quotas = TenantQuotas(Quota(100, 200), {"flood": Quota(1, 1)}, clock=clock)
    refused = sum(quotas.admit("flood") is not None for _ in range(1000))
    assert refused == 999
    assert all(quotas.admit("calm") is None for _ in range(200))


def test_rate_zero_is_unmetered_and_keeps_no_state() -> None:
    quotas = TenantQuotas(Quota(0, 0), clock=Clock())
    assert all(quotas.admit("acme") is None for _ in range(10_000))
    assert len(quotas) == 0


def test_memory_is_bounded_by_forgetting_the_least_recently_seen_tenant() -> None:
    clock = Clock()
    quotas = TenantQuotas(Quota(1, 1), clock=clock, max_tenants=3)
    for tenant in ("a", "b", "c"):
        quotas.admit(tenant)
    assert quotas.admit("a") is not None  # a is spent, and now the most recent
    quotas.admit("d")  # b is forgotten
    assert len(quotas) == 3
    assert quotas.admit("b") is None  # a fresh bucket
    assert quotas.admit("a") is not None  # still remembered as spent


def test_overrides_parse_from_the_setting() -> None:
    default = Quota(100, 200)
    assert parse_quotas("acme=50:100, beta=5,", default) == {
        "acme": Quota(50, 100),
        "beta": Quota(5, 10),
    }
    assert parse_quotas("", default) == {}
    for bad in ("acme", "acme=fast", "=5", "acme=5:0", "acme=-1"):
        with pytest.raises(ConfigError):
            parse_quotas(bad, default)
