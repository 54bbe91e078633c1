"""The HTTP door against the running stack: tenant quotas, and hostile input refused up front
(issue 8, items 5 and 6).

Tenant `flood` has a quota of 5 requests/s with bursts of 10 in the session's
stack (tests/stack.py); everyone else has the generous default.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import orjson

from pipeline.kafka.catalog import REQUESTS
from tests.harness import (
    DATA,
    Stack,
    dead_letters,
    herald_cmd,
    post,
    request_body,
    unique,
    wait_for,
)


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


# ---------------------------------------------------------------- the smaller defects


def _raw(stack: Stack, raw: bytes) -> tuple[int, str, bytes]:
    """Send bytes no well-behaved client would, and read the answer (status, type, body)."""
    host, port = stack.api.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(raw)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    fields = (line.partition(": ") for line in lines[1:])
    ctype = next(value for name, _, value in fields if name.lower() == "content-type")
    return int(lines[0].split()[1]), ctype, body


def test_hostile_requests_over_http_are_refused_with_a_problem_naming_the_field(
    stack: Stack,
) -> None:
    soon = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    user = unique("hostile")
    cases = {
        "sendAt": request_body(user, sendAt=soon),
        "channels": request_body(user, channels=["sms"]),
        "recipient.email": {**request_body(user), "recipient": {"userId": user,
                                                                "email": "<x@example.com>"}},
        "data.name": request_body(user, data={**DATA, "name": "Ana\u202etxt.exe"}),
        "data.origin": request_body(user, data={**DATA, "origin": "MAD\x00"}),
    }  # fmt: skip
    for field, body in cases.items():
        resp = post(stack, body)
        assert resp.status_code == 422, (field, resp.text)
        assert resp.headers["Content-Type"].startswith("application/problem+json")
        assert [e["field"] for e in resp.json()["errors"]] == [field], resp.text
    assert stack.sim_messages(to=f"{user}@example.com") == []


def test_aiohttps_own_400s_are_problems_and_the_log_keeps_no_credential(stack: Stack) -> None:
    fragment = "SECRET-FRAGMENT-" + uuid.uuid4().hex
    auth = f"Bearer eyJ{fragment}" + "A" * 20_000
    status, ctype, body = _raw(
        stack, f"GET /healthz HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\n\r\n".encode()
    )
    assert (status, ctype.split(";")[0]) == (400, "application/problem+json")
    assert "longer than" in orjson.loads(body)["detail"]
    status, ctype, body = _raw(stack, b"GET /" + b"x" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (status, ctype.split(";")[0]) == (400, "application/problem+json")
    # A client gone mid-body.
    host, port = stack.api.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            b"POST /v1/notifications HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Authorization: {stack.headers()['Authorization']}\r\n".encode()
            + b'Content-Length: 5000\r\n\r\n{"recipient": '
        )
        time.sleep(0.3)
    assert httpx.get(f"{stack.api}/healthz", timeout=5).status_code == 200
    time.sleep(0.5)
    log = (stack.home / "worker.log").read_text(errors="replace")
    assert fragment not in log
    assert "Traceback" not in log


def test_kafka_requests_get_one_line_subjects_and_future_send_at_is_a_dead_letter(
    stack: Stack,
) -> None:
    user, injected, later = unique("crlf"), unique("msg"), unique("msg")
    evil = {**DATA, "bookingRef": "X1\r\nBcc: victim@example.com\r\n"}
    soon = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    records = [
        {"messageId": injected, "tenant": "acme", **request_body(user, data=evil)},
        {"messageId": later, "tenant": "acme", **request_body(user, sendAt=soon)},
    ]
    done = subprocess.run(
        herald_cmd("produce", REQUESTS), input=b"".join(orjson.dumps(r) + b"\n" for r in records),
        env=stack.env, capture_output=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    stack.wait_status(injected, "SENT")
    [mail] = stack.sim_messages(to=f"{user}@example.com")
    subject = mail["content"]["subject"]
    assert "\r" not in subject and "\n" not in subject and "Bcc: victim" in subject
    assert stack.wait_status(later, "DLQ")["status"] == "DLQ"
    [letter] = wait_for(lambda: dead_letters(stack, later), 30)
    assert letter["reason"] == "invalid" and "sendAt" in letter["error"]
