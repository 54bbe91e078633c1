"""The size limits at the HTTP door (aiohttp TestServer over a stand-in runtime): a request
over what its topic takes is 413, content that renders over what a lane takes is 422, each
problem naming the limit; nothing is produced."""

from __future__ import annotations

from typing import Any

from pipeline.domain.limits import KEY_MAX, RECORD_FRAMING, Limits
from tests.unit.test_http_door import EXAMPLE, PROBLEM, headers, serving


def body(name: str) -> dict[str, Any]:
    return {**EXAMPLE, "data": {**EXAMPLE["data"], "name": name}}


async def test_a_request_over_the_topic_limit_is_413_with_the_limit() -> None:
    limits = Limits.compute(requests_max=3000)  # under HERALD_HTTP_MAX_BODY (4096 here)
    async with serving(limits) as (client, rt):
        resp = await client.post("/v1/notifications", json=body("x" * 3000), headers=headers())
        assert resp.status == 413 and resp.content_type == PROBLEM
        problem = await resp.json()
        assert str(3000 - RECORD_FRAMING - KEY_MAX) in problem["detail"]
        assert rt.sinks.requests.sent == []


async def test_content_that_renders_too_large_is_422_with_the_limit() -> None:
    limits = Limits.compute(dispatch_max=80_000)  # rendered content: 80 KB - history room
    async with serving(limits) as (client, rt):
        resp = await client.post("/v1/notifications", json=body("&" * 3000), headers=headers())
        assert resp.status == 422 and resp.content_type == PROBLEM
        problem = await resp.json()
        assert problem["errors"][0]["field"] == "data"
        assert str(limits.rendered_bytes) in problem["errors"][0]["message"]
        assert rt.sinks.requests.sent == []
        ok = await client.post("/v1/notifications", json=body("x" * 100), headers=headers())
        assert ok.status == 202 and len(rt.sinks.requests.sent) == 1
