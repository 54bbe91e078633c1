"""The HTTP door against the running stack: tenant quotas, and hostile input refused up front.

Tenant `flood` has a quota of 5 requests/s with bursts of 10 in the session's
stack (tests/stack.py); everyone else has the generous default.
"""

from __future__ import annotations

import asyncio
import time

import httpx

from tests.harness import Stack, request_body, unique, wait_for


async def _flood(client: httpx.AsyncClient, stack: Stack, n: int) -> list[httpx.Response]:
    headers = stack.headers("flood")
    limit = asyncio.Semaphore(16)

    async def one() -> httpx.Response:
        async with limit:
            return await client.post(
                f"{stack.api}/v1/notifications", json=request_body(unique("fl")), headers=headers
            )

    return list(await asyncio.gather(*(one() for _ in range(n))))


async def _one_calm_message(client: httpx.AsyncClient, stack: Stack, user: str) -> float:
    """Seconds from the POST of tenant acme's message to its arrival at the simulator."""
    await asyncio.sleep(0.3)  # the flood is under way
    started = time.perf_counter()
    resp = await client.post(
        f"{stack.api}/v1/notifications", json=request_body(user), headers=stack.headers("acme")
    )
    assert resp.status_code == 202, resp.text
    to = f"{user}@example.com"
    await asyncio.to_thread(wait_for, lambda: stack.sim_messages(to=to), 30.0)
    return time.perf_counter() - started


def test_a_tenants_flood_is_refused_with_429_while_another_tenant_goes_through(
    stack: Stack,
) -> None:
    user = unique("calm")

    async def run() -> tuple[list[httpx.Response], float]:
        async with httpx.AsyncClient(timeout=30) as client:
            flood, latency = await asyncio.gather(
                _flood(client, stack, 300), _one_calm_message(client, stack, user)
            )
        return flood, latency

    started = time.perf_counter()
    flood, latency = asyncio.run(run())
    took = time.perf_counter() - started
    statuses = [r.status_code for r in flood]
    accepted, refused = statuses.count(202), [r for r in flood if r.status_code == 429]
    print(
        f"\nflood: {len(flood)} POSTs in {took:.2f}s, {accepted} accepted, {len(refused)} refused"
        f" (429); the other tenant's message reached the simulator in {latency * 1000:.0f} ms"
    )
    assert set(statuses) <= {202, 429}
    assert accepted <= 10 + 5 * took + 1  # the burst, then the rate
    assert len(refused) >= len(flood) - accepted
    for resp in refused:
        assert resp.headers["Content-Type"].startswith("application/problem+json")
        assert int(resp.headers["Retry-After"]) >= 1
        assert resp.json()["type"] == "urn:herald:problem:quota"
    assert latency < 15.0  # generous: promptly, not behind the flood
