"""The HTTP door and idempotency: a messageId taken by an accepted request answers the
same 202 for the same body (nothing produced again) and 409 for another body."""

from __future__ import annotations

import time

from pipeline.domain.idempotency import fingerprint, reservation
from pipeline.http.openapi import describe
from pipeline.http.problems import PROBLEM_JSON
from pipeline.http.routes import operations
from tests.unit.test_http_door import EXAMPLE, headers, serving


async def test_a_reserved_id_answers_by_the_body() -> None:
    async with serving() as (client, rt):
        first = await client.post("/v1/notifications", json=EXAMPLE, headers=headers())
        assert first.status == 202
        accepted = await first.json()
        [(_key, record)] = rt.sinks.requests.sent
        # what ingest writes once it accepted the request
        rt.tables.idempotency[f"acme:{accepted['messageId']}"] = reservation(
            [0, 1], fingerprint(record), time.time()
        )
        body = {**EXAMPLE, "messageId": accepted["messageId"]}
        same = await client.post("/v1/notifications", json=body, headers=headers())
        assert same.status == 202 and await same.json() == accepted
        other = {**body, "priority": "high" if body.get("priority") != "high" else "standard"}
        conflict = await client.post("/v1/notifications", json=other, headers=headers())
        assert conflict.status == 409 and conflict.content_type == PROBLEM_JSON
        problem = await conflict.json()
    assert problem["type"] == "urn:herald:problem:idempotency-conflict"
    assert problem["messageId"] == accepted["messageId"]
    assert len(rt.sinks.requests.sent) == 1  # neither the duplicate nor the conflict produced


async def test_an_unreserved_id_is_produced_again() -> None:
    """A request ingest refused reserved nothing: its corrected re-send goes to Kafka."""
    async with serving() as (client, rt):
        body = {**EXAMPLE, "messageId": "m-fixed"}
        for _ in range(2):
            resp = await client.post("/v1/notifications", json=body, headers=headers())
            assert resp.status == 202
    assert len(rt.sinks.requests.sent) == 2


def test_the_description_lists_the_conflict() -> None:
    post = describe(operations())["paths"]["/v1/notifications"]["post"]
    schema = post["responses"]["409"]["content"][PROBLEM_JSON]["schema"]
    assert "urn:herald:problem:idempotency-conflict" in str(schema)
