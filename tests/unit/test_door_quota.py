"""The door's tenant quota over HTTP (aiohttp's TestServer, no broker): 429 with Retry-After."""

from __future__ import annotations

from pipeline.http.auth import issue_token
from tests.unit.test_http_door import EXAMPLE, PROBLEM, SECRET, serving


def bearer(tenant: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(SECRET, tenant, 'notifications:send')}"}


async def test_a_tenant_over_its_quota_gets_429_with_retry_after_and_others_go_on() -> None:
    async with serving(tenant_quotas="flood=1:3") as (client, rt):
        statuses = []
        for _ in range(5):
            resp = await client.post("/v1/notifications", json=EXAMPLE, headers=bearer("flood"))
            statuses.append(resp.status)
        assert statuses == [202, 202, 202, 429, 429]
        assert resp.content_type == PROBLEM
        problem = await resp.json()
        assert problem["type"] == "urn:herald:problem:quota" and problem["status"] == 429
        assert resp.headers["Retry-After"] == "1" and problem["retryAfter"] == 1
        other = await client.post("/v1/notifications", json=EXAMPLE, headers=bearer("calm"))
        assert other.status == 202
    assert [key for key, _ in rt.sinks.requests.sent] == ["flood:u1"] * 3 + ["calm:u1"]


async def test_an_unauthenticated_flood_takes_nothing_from_the_tenant() -> None:
    async with serving(tenant_quotas="acme=1:1") as (client, _):
        for _ in range(3):
            refused = await client.post("/v1/notifications", json=EXAMPLE)
            assert refused.status == 401
        resp = await client.post("/v1/notifications", json=EXAMPLE, headers=bearer("acme"))
        assert resp.status == 202
