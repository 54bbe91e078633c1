"""The HTTP door without a broker: the route table, the description and the ingress's answers.

The ingress runs on aiohttp's TestServer over a stand-in runtime whose topics
record what they are sent; the real pipeline is in tests/integration.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from pipeline.devstack.secrets import webhook_secrets
from pipeline.domain.limits import Limits
from pipeline.domain.state import apply_status
from pipeline.domain.templates import TemplateCatalog
from pipeline.http.api import Ingress
from pipeline.http.auth import TokenVerifier, issue_token
from pipeline.http.door import InlineDoor
from pipeline.http.models import NotificationState
from pipeline.http.openapi import describe
from pipeline.http.routes import operations
from pipeline.http.webhooks import sendgrid
from pipeline.metrics import Metrics
from pipeline.settings import Settings

SECRET = "s" * 32
PROBLEM = "application/problem+json"
AT = "2026-11-28T10:00:00.000Z"
# The request body the description shows; it must be accepted as it is.
EXAMPLE = describe(operations())["components"]["schemas"]["NotificationRequest"]["examples"][0]


@dataclass
class Topic:
    """A sink that records what it is sent, acknowledged at once."""

    sent: list[tuple[str, Any]] = field(default_factory=list)

    async def send(
        self, key: str, value: Any, headers: dict[str, bytes] | None = None
    ) -> asyncio.Future[None]:
        self.sent.append((key, value))
        ack: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        ack.set_result(None)
        return ack


def headers(scope: str = "notifications:send notifications:read") -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(SECRET, 'acme', scope)}"}


def other_tenant() -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(SECRET, 'globex', 'notifications:read')}"}


def stand_in(
    limits: Limits | None = None, environ: dict[str, str] | None = None, **overrides: Any
) -> Any:
    """A runtime with what the ingress uses: settings (`overrides` applied), topics, tables."""
    environ = webhook_secrets() if environ is None else environ
    settings = Settings.from_env(environ).with_(http_max_body=4096, **overrides)
    return SimpleNamespace(
        settings=settings,
        metrics=Metrics(),
        templates=TemplateCatalog.from_dir(settings.templates_dir),
        tables=SimpleNamespace(preferences={}, state={}, idempotency={}, profiles={}),
        sinks=SimpleNamespace(
            requests=Topic(),
            status=Topic(),
            audit=Topic(),
            provider_events=Topic(),
            profiles=Topic(),
        ),
        state_barrier=None,
        profile_barrier=None,
        available_channels={"email"},
        limits=limits or Limits.compute(http_max_body=settings.http_max_body),
    )


@asynccontextmanager
async def serving(
    limits: Limits | None = None, environ: dict[str, str] | None = None, **overrides: Any
) -> AsyncIterator[tuple[TestClient, Any]]:
    """The ingress over a stand-in runtime (settings `overrides` applied), and that runtime."""
    rt = stand_in(limits, environ, **overrides)
    app = Ingress(InlineDoor(rt, lambda: True), TokenVerifier(secret=SECRET)).build()
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        yield client, rt


def test_every_declared_operation_is_described() -> None:
    doc = describe(operations())
    described = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    assert described == {(op.method, op.path) for op in operations()}
    assert doc["openapi"].startswith("3.1")


def test_v1_operations_need_a_bearer_jwt_and_say_why_they_fail() -> None:
    doc = describe(operations())
    assert doc["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    for path, ops in doc["paths"].items():
        for op in ops.values():
            assert ("security" in op) == path.startswith("/v1/"), path
            if "security" in op:
                assert {"401", "403"} <= set(op["responses"]), path
            for status, answer in op["responses"].items():
                if int(status) >= 400:
                    assert list(answer["content"]) == [PROBLEM], (path, status)


def test_the_post_describes_every_answer_the_contract_names() -> None:
    post = describe(operations())["paths"]["/v1/notifications"]["post"]
    assert set(post["responses"]) == {"200", "202", "400", "401", "403", "409", "413", "422", "429"}
    assert "Retry-After" in post["responses"]["429"]["headers"]
    forbidden = post["responses"]["403"]["content"][PROBLEM]["schema"]["anyOf"]
    types = {s["properties"]["type"]["const"] for s in forbidden}
    assert types == {"about:blank", "urn:herald:problem:opted-out"}


async def test_description_and_docs_need_no_token() -> None:
    async with serving() as (client, _):
        spec = await client.get("/openapi.json")
        assert spec.status == 200 and (await spec.json()) == describe(operations())
        page = await client.get("/docs")
        assert page.status == 200 and page.content_type == "text/html"
        text = await page.text()
    assert all(op.path in text for op in operations())
    assert not any(tag in text for tag in ("<script", "<link", "src=")), "offline: nothing fetched"


async def test_a_valid_request_is_produced_and_accepted() -> None:
    async with serving() as (client, rt):
        resp = await client.post("/v1/notifications", json=EXAMPLE, headers=headers())
        assert resp.status == 202, await resp.text()
        accepted = await resp.json()
    assert resp.headers["Location"] == f"/v1/notifications/{accepted['messageId']}"
    [(key, record)] = rt.sinks.requests.sent
    assert key == "acme:u1" and record["tenant"] == "acme"


@pytest.mark.parametrize(
    ("kwargs", "status", "fields"),
    [
        ({"json": {"template": "x"}, "headers": {}}, 401, None),
        ({"json": {"template": "x"}, "headers": headers("notifications:read")}, 403, None),
        ({"data": b"{not json"}, 400, None),
        ({"json": [1, 2]}, 400, None),
        ({"json": {"template": "x", "colour": 1}}, 422, ["recipient", "colour"]),
        ({"json": {"recipient": {"userId": "u"}, "template": "nope"}}, 422, ["recipient"]),
        ({"json": {"recipient": {"userId": "u", "email": "a@b.co"}, "template": "nope"}},
         422, ["template"]),
        ({"data": b"x" * 5000}, 413, None),
    ],
)  # fmt: skip
async def test_refusals_are_problem_documents(
    kwargs: dict[str, Any], status: int, fields: list[str] | None
) -> None:
    kwargs.setdefault("headers", headers())
    async with serving() as (client, rt):
        resp = await client.post("/v1/notifications", **kwargs)
        assert resp.status == status and resp.content_type == PROBLEM
        problem = await resp.json()
    assert problem["status"] == status
    if fields is not None:
        assert [e["field"] for e in problem["errors"]] == fields
    if status == 401:
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert rt.sinks.requests.sent == []


def sent_state(message_id: str) -> dict[str, Any]:
    """A message's state as the status agent folds it: PENDING, then SENT by email."""
    base = {"messageId": message_id, "tenant": "acme", "userId": "u-1", "at": AT}
    state = apply_status(None, {**base, "status": "PENDING"})
    sent = {**base, "status": "SENT", "channel": "email", "provider": "sendgrid", "attempt": 1}
    return apply_status(state, {**sent, "providerMessageId": "sg-1"})


async def test_the_state_is_answered_as_described() -> None:
    async with serving() as (client, rt):
        rt.tables.state["acme:m-1"] = sent_state("m-1")
        found = await client.get("/v1/notifications/m-1", headers=headers())
        assert found.status == 200
        NotificationState.model_validate(await found.json())
        other = await client.get("/v1/notifications/m-1", headers=other_tenant())
    assert other.status == 404 and other.content_type == PROBLEM


async def test_prefer_wait_answers_the_state_once_sent() -> None:
    body = {**EXAMPLE, "messageId": "m-2"}
    async with serving() as (client, rt):
        rt.tables.state["acme:m-2"] = sent_state("m-2")
        resp = await client.post(
            "/v1/notifications", json=body, headers={**headers(), "Prefer": "wait=1"}
        )
        assert resp.status == 200, await resp.text()
        NotificationState.model_validate(await resp.json())
    assert resp.headers["Preference-Applied"] == "wait=1"
    assert resp.headers["Location"] == "/v1/notifications/m-2"


async def test_routing_errors_are_problem_documents() -> None:
    async with serving() as (client, _):
        missing = await client.get("/nowhere")
        wrong = await client.delete("/healthz")
    assert missing.status == 404 and missing.content_type == PROBLEM
    assert wrong.status == 405 and wrong.content_type == PROBLEM
    assert wrong.headers["Allow"] == "GET"


async def test_an_unsigned_webhook_is_401_without_a_bearer_challenge() -> None:
    async with serving() as (client, rt):
        unsigned = await client.post("/webhooks/sendgrid", data=b"[]")
        unknown = await client.post("/webhooks/nope", data=b"{}")
    assert unsigned.status == 401 and unsigned.content_type == PROBLEM
    assert "WWW-Authenticate" not in unsigned.headers
    assert unknown.status == 404
    assert rt.sinks.provider_events.sent == []
    refused = rt.metrics.webhooks_refused.labels("sendgrid", "bad-signature")._value.get()
    assert refused == 1


async def test_a_receiver_without_its_secret_is_off() -> None:
    environ = {k: v for k, v in webhook_secrets().items() if k != "VONAGE_SIGNATURE_SECRET"}
    async with serving(environ=environ) as (client, rt):
        off = await client.post("/webhooks/vonage", data=b"{}")
        body = await off.json(content_type=None)
        on = await client.post("/webhooks/twilio", data=b"")
    assert off.status == 404 and off.content_type == PROBLEM
    assert body["type"] == "urn:herald:problem:webhook-receiver-off"
    assert "VONAGE_SIGNATURE_SECRET" in body["detail"]
    assert rt.metrics.webhooks_refused.labels("vonage", "receiver-off")._value.get() == 1
    assert on.status == 401  # its secret is set: on, and this one is unsigned


async def test_a_stale_sendgrid_signature_is_401_and_counted() -> None:
    environ = webhook_secrets()
    body = b'[{"event": "delivered", "tenant": "acme", "messageId": "m-1"}]'
    ts = str(int(time.time()) - 600)
    signature = sendgrid.sign(environ["HERALD_SIM_SENDGRID_WEBHOOK_PRIVATE_KEY"], ts, body)
    headers = {sendgrid.SIGNATURE: signature, sendgrid.TIMESTAMP: ts}
    async with serving(environ=environ) as (client, rt):
        stale = await client.post("/webhooks/sendgrid", data=body, headers=headers)
        detail = (await stale.json(content_type=None))["detail"]
    assert stale.status == 401 and "replay window" in detail
    assert rt.metrics.webhooks_refused.labels("sendgrid", "stale-signature")._value.get() == 1
    assert rt.sinks.provider_events.sent == []
