"""Ingest and preferences over a fake stream: idempotency reserved only by an accepted
request, conflicts and bad tenants or keys dead-lettered before anything is keyed."""

from __future__ import annotations

from typing import Any

from agents.ingest import ingest
from agents.preferences import preferences
from agents.profiles import profiles
from pipeline.runtime import Runtime
from tests.unit.test_agents import event, run, statuses, world  # noqa: F401

REQUESTS = "herald.notifications.requests"


def encode(rt: Runtime, record: dict[str, Any]) -> bytes:
    return rt.codec.encode("NotificationRequest", record)


def reasons(rt: Runtime) -> list[str]:
    return [d["reason"] for d in rt.sinks.dlq.values()]


async def test_a_refused_request_reserves_nothing_and_its_correction_is_sent(
    world: Runtime,  # noqa: F811
    make_request: Any,
) -> None:
    rt = world
    bad = encode(rt, make_request(channels=["sms"]))  # sms without a phone
    good = encode(rt, make_request(channels=["sms"], recipient={"phone": "+34600111222"}))
    await run(
        ingest, rt, [[event(REQUESTS, 1, "acme:u-1", bad)], [event(REQUESTS, 2, "acme:u-1", good)]]
    )
    assert statuses(rt) == ["DLQ", "PENDING"]
    assert [d["to"] for d in rt.sinks.dispatch[("sms", "urgent")].values()] == ["+34600111222"]
    assert rt.tables.idempotency["acme:m-1"]["position"] == [0, 2]


async def test_the_same_id_with_another_body_is_a_conflict_and_the_original_stays(
    world: Runtime,  # noqa: F811
    make_request: Any,
) -> None:
    rt = world
    first, other = encode(rt, make_request()), encode(rt, make_request(priority="high"))
    batch = [event(REQUESTS, n, "acme:u-1", v) for n, v in ((1, first), (2, other), (3, first))]
    await run(ingest, rt, [batch])
    assert statuses(rt) == ["PENDING"]  # nothing about the conflict in the message's state
    assert len(rt.sinks.dispatch[("email", "urgent")].values()) == 1
    [letter] = rt.sinks.dlq.values()
    assert (letter["reason"], letter["value"], letter["messageId"]) == (
        "idempotency-conflict",
        other,
        "m-1",
    )
    assert rt.metrics.duplicates.labels("ingest")._value.get() == 1  # the third record


async def test_a_tenant_with_a_colon_touches_no_other_tenants_keys(
    world: Runtime,  # noqa: F811
    make_request: Any,
) -> None:
    rt = world
    forged = encode(rt, make_request(tenant="acme:x", recipient={"userId": "u"}))
    await run(ingest, rt, [[event(REQUESTS, 1, "acme:x:u", forged)]])
    assert reasons(rt) == ["invalid-tenant"] and rt.sinks.dlq.values()[0]["value"] == forged
    assert rt.sinks.dlq.values()[0]["tenant"] is None
    assert statuses(rt) == [] and rt.tables.idempotency == {}


async def test_a_request_under_another_key_is_a_key_mismatch(
    world: Runtime,  # noqa: F811
    make_request: Any,
) -> None:
    rt = world
    value = encode(rt, make_request())
    await run(ingest, rt, [[event(REQUESTS, 1, "globex:u-1", value)]])
    assert reasons(rt) == ["key-mismatch"]
    assert statuses(rt) == [] and rt.tables.idempotency == {}


async def test_preferences_are_stored_only_under_their_own_key(world: Runtime) -> None:  # noqa: F811
    rt = world
    prefs = {"tenant": "acme", "userId": "u-1", "channels": {}, "categories": {},
             "all": None, "updatedAt": "2026-11-28T10:00:00Z"}  # fmt: skip
    value = rt.codec.encode("UserPreferences", prefs)
    colon = rt.codec.encode("UserPreferences", {**prefs, "tenant": "globex:x", "userId": "u"})
    topic = "herald.users.preferences"
    batch = [
        event(topic, 1, "globex:u-1", value),
        event(topic, 2, "globex:x:u", colon),
        event(topic, 3, "acme:u-1", value),
        event(topic, 4, "bad key", None),
    ]
    await run(preferences, rt, [batch])
    assert reasons(rt) == ["key-mismatch", "invalid-tenant", "invalid-tenant"]
    assert list(rt.tables.preferences) == ["acme:u-1"]


async def test_profiles_are_stored_under_their_own_key_and_a_tombstone_erases(
    world: Runtime,  # noqa: F811
) -> None:
    """The same checks as preferences (one shared stage body), and its progress is told."""
    rt = world
    profile = {"tenant": "acme", "userId": "u-1", "email": "ana@example.com", "phone": None,
               "whatsapp": None, "pushTokens": [], "locale": "es", "timezone": None,
               "attributes": {"tier": "gold"}, "updatedAt": "2026-11-28T10:00:00Z"}  # fmt: skip
    value = rt.codec.encode("UserProfile", profile)
    topic = "herald.users.profiles"
    first = [
        event(topic, 1, "globex:u-1", value),
        event(topic, 2, "acme:u-1", value),
        event(topic, 3, "acme:u-2", b"\x00not avro"),
    ]
    await run(profiles, rt, [first])
    assert reasons(rt) == ["key-mismatch", "decode-error"]
    assert rt.tables.profiles == {"acme:u-1": profile}
    assert rt.profile_watch.positions == {first[0].message.partition: 3}
    await run(profiles, rt, [[event(topic, 4, "acme:u-1", None)]])
    assert rt.tables.profiles == {}


async def test_ingest_sends_a_request_naming_only_its_user_to_the_profile(
    world: Runtime,  # noqa: F811
    make_request: Any,
) -> None:
    rt = world
    rt.tables.profiles["acme:u-1"] = {
        "tenant": "acme", "userId": "u-1", "email": "ana@profile.example", "phone": None,
        "whatsapp": None, "pushTokens": [], "locale": "es", "timezone": None,
        "attributes": {"tier": "gold"}, "updatedAt": "2026-11-28T10:00:00Z",
    }  # fmt: skip
    value = encode(rt, make_request(recipient={"email": None}))
    await run(ingest, rt, [[event(REQUESTS, 1, "acme:u-1", value)]])
    [dispatch] = rt.sinks.dispatch[("email", "urgent")].values()
    assert (dispatch["to"], dispatch["locale"]) == ("ana@profile.example", "es")
    assert "Como miembro Gold" in dispatch["text"]
    carried = rt.codec.decode("NotificationRequest", dispatch["request"])
    assert carried["recipient"]["email"] == "ana@profile.example"  # for a fallback's render
