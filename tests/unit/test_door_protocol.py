"""What aiohttp answers by itself (bad or over-long request lines and headers) and a client
that goes away mid-request: problem+json, one quiet line, nothing of a credential logged.

Served by the worker's own runner (`IngressRunner`) on a loopback port, spoken to
with raw bytes, because a well-behaved client cannot send these requests.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
import pytest
from aiohttp import web

from pipeline.http.api import Ingress
from pipeline.http.auth import TokenVerifier
from pipeline.http.door import InlineDoor
from pipeline.http.protocol import IngressRunner
from tests.unit.test_http_door import SECRET, headers, stand_in

SECRETISH = "Bearer eyJhbGciOiJIUzI1NiJ9.SECRET-PART-" + "A" * 20_000


@asynccontextmanager
async def worker_door() -> AsyncIterator[tuple[int, Any]]:
    rt = stand_in()
    app = Ingress(InlineDoor(rt, lambda: True), TokenVerifier(secret=SECRET)).build()
    runner = IngressRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield port, rt
    finally:
        await runner.cleanup()


async def exchange(port: int, raw: bytes) -> tuple[int, dict[str, str], bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    await writer.drain()
    head, _, rest = (await asyncio.wait_for(reader.read(), 5)).partition(b"\r\n\r\n")
    writer.close()
    lines = head.decode().split("\r\n")
    fields = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), {k.lower(): v for k, v in fields.items()}, rest


@pytest.mark.parametrize(
    ("raw", "detail"),
    [
        (f"GET /healthz HTTP/1.1\r\nHost: x\r\nAuthorization: {SECRETISH}\r\n\r\n".encode(),
         "longer than"),
        (b"GET /v1/notifications/" + b"m" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
         "longer than"),
        (b"HELLO THERE\r\n\r\n", "request line"),
        (b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n", ""),
    ],
    ids=["long-authorization", "long-url", "bad-request-line", "bad-header"],
)  # fmt: skip
async def test_aiohttps_own_400s_are_problem_documents_and_log_no_credential(
    raw: bytes, detail: str, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    async with worker_door() as (port, _):
        status, fields, body = await exchange(port, raw)
    assert status == 400
    assert fields["content-type"].startswith("application/problem+json")
    problem = orjson.loads(body)
    assert problem["status"] == 400 and problem["title"] == "Bad Request"
    assert detail in problem["detail"]
    logged = caplog.text + "".join(capfd.readouterr())
    assert "SECRET-PART" not in logged and "eyJ" not in logged and "Traceback" not in logged
    assert b"SECRET-PART" not in body


async def test_a_client_gone_mid_body_is_one_quiet_line_not_a_traceback(
    caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    auth = headers()["Authorization"]
    async with worker_door() as (port, rt):
        _reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            b"POST /v1/notifications HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Authorization: {auth}\r\nContent-Length: 1000\r\n\r\n".encode()
            + b'{"recipient": '
        )
        await writer.drain()
        await asyncio.sleep(0.2)
        writer.transport.abort()  # gone, mid-body
        for _ in range(50):
            if 'code="499"' in rt.metrics.render().decode():
                break
            await asyncio.sleep(0.02)
    assert 'code="499"' in rt.metrics.render().decode()
    logged = caplog.text + "".join(capfd.readouterr())
    assert "Traceback" not in logged and "http.unhandled" not in logged
    assert rt.sinks.requests.sent == []
