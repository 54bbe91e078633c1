"""`PUT`/`GET /v1/users/{userId}/profile` over the worker's door (no Kafka), and a POST
naming only its user: checked with the profile, produced as the client sent it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from pipeline.http.auth import issue_token
from pipeline.kafka.catalog import PROFILES
from pipeline.kafka.progress import FoldWatch, StateBarrier
from tests.unit.test_http_door import SECRET, serving
from tests.unit.test_profiles import BAD_PROFILES
from tests.unit.test_read_your_writes import FakeConsumer

BOOKING = {"name": "Ana", "bookingRef": "X7K2LQ", "flight": "IB3456", "date": "2026-12-01",
           "origin": "MAD", "destination": "JFK"}  # fmt: skip
PROFILE = {"email": "ana@example.com", "phone": "+34600111222", "locale": "es",
           "timezone": "Europe/Madrid", "attributes": {"tier": "gold"}}  # fmt: skip


def auth(scope: str = "users:manage", tenant: str = "acme") -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(SECRET, tenant, scope)}"}


async def test_put_stores_the_whole_profile_and_get_reads_it() -> None:
    async with serving() as (client, rt):
        resp = await client.put("/v1/users/u-1/profile", json=PROFILE, headers=auth())
        assert resp.status == 200, await resp.text()
        stored = await resp.json()
        assert {k: stored[k] for k in PROFILE} == PROFILE
        assert stored["userId"] == "u-1" and stored["updatedAt"] and "tenant" not in stored
        [(key, record)] = rt.sinks.profiles.sent
        assert key == "acme:u-1" and record["tenant"] == "acme" and record["pushTokens"] == []
        rt.tables.profiles[key] = record  # what the profiles stage does with it
        got = await client.get("/v1/users/u-1/profile", headers=auth())
        assert (got.status, await got.json()) == (200, stored)
        # Another tenant's user, and a user without a profile, are absent alike.
        other = await client.get("/v1/users/u-1/profile", headers=auth(tenant="globex"))
        none = await client.get("/v1/users/u-2/profile", headers=auth())
        assert (other.status, none.status) == (404, 404)
        assert other.content_type == "application/problem+json"


async def test_the_profile_routes_need_users_manage() -> None:
    async with serving() as (client, _rt):
        put = await client.put("/v1/users/u-1/profile", json=PROFILE,
                               headers=auth("notifications:send"))  # fmt: skip
        get = await client.get("/v1/users/u-1/profile", headers=auth("notifications:read"))
        assert (put.status, get.status) == (403, 403)


@pytest.mark.parametrize(("body", "field"), BAD_PROFILES)
async def test_a_bad_profile_is_422_naming_the_field(body: dict[str, Any], field: str) -> None:
    async with serving() as (client, rt):
        resp = await client.put("/v1/users/u-1/profile", json=body, headers=auth())
        assert resp.status == 422 and resp.content_type == "application/problem+json"
        problem = await resp.json()
        assert any(e["field"].startswith(field) for e in problem["errors"]), problem
        assert rt.sinks.profiles.sent == []


async def test_a_request_naming_only_its_user_needs_a_profile() -> None:
    body = {"recipient": {"userId": "u-1"}, "template": "booking-confirmation", "data": BOOKING}
    send = auth("notifications:send")
    async with serving() as (client, rt):
        refused = await client.post("/v1/notifications", json=body, headers=send)
        assert refused.status == 422
        rt.tables.profiles["acme:u-1"] = {
            "tenant": "acme", "userId": "u-1", "email": "ana@example.com", "phone": None,
            "whatsapp": None, "pushTokens": [], "locale": "es", "timezone": None,
            "attributes": {"tier": "gold"}, "updatedAt": "2026-11-28T10:00:00.000Z",
        }  # fmt: skip
        accepted = await client.post("/v1/notifications", json=body, headers=send)
        assert accepted.status == 202, await accepted.text()
        [(_key, record)] = rt.sinks.requests.sent
        assert record["recipient"]["email"] is None  # produced as the client sent it
        # Another tenant's profile of the same userId does not count.
        other = await client.post("/v1/notifications", json=body,
                                  headers=auth("notifications:send", "globex"))  # fmt: skip
        assert other.status == 422


async def test_a_profile_get_waits_for_the_put_before_it_then_503() -> None:
    """Read-your-writes: the GET answers once the profiles stage folded the topic's end."""
    consumer = FakeConsumer(end=3)  # the PUT's record is offset 2 of the partition
    watch = FoldWatch()
    async with serving(read_catch_up_s=0.3) as (client, rt):
        rt.profile_barrier = StateBarrier(watch, consumer, PROFILES, 1)  # type: ignore[arg-type]
        behind = await client.get("/v1/users/u-1/profile", headers=auth())
        assert behind.status == 503 and "state-behind" in (await behind.json())["type"]

        async def fold_soon() -> None:
            await asyncio.sleep(0.1)
            rt.tables.profiles["acme:u-1"] = {"tenant": "acme", "userId": "u-1", **PROFILE}
            watch.folded({0: 2}, ())

        folding = asyncio.create_task(fold_soon())
        got = await client.get("/v1/users/u-1/profile", headers=auth())
        await folding
        assert got.status == 200 and (await got.json())["email"] == PROFILE["email"]
