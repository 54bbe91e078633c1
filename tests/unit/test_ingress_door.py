"""`herald ingress` without a broker: its door over a fake producer, its preferences view
fed by fake records, and a real worker door (the inline one, over a stand-in runtime)
that it forwards to, on aiohttp test servers.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from pipeline.domain.idempotency import fingerprint, reservation
from pipeline.http.api import Ingress
from pipeline.http.auth import TokenVerifier, issue_token
from pipeline.http.door import InlineDoor
from pipeline.http.ingress_door import IngressDoor
from pipeline.http.models import NotificationRequest
from pipeline.http.worker_client import WorkerClient
from pipeline.kafka.codecs import AvroCodec
from pipeline.kafka.preferences_view import PreferencesView
from pipeline.metrics import Metrics
from tests.unit.test_http_door import EXAMPLE, SECRET, headers, other_tenant, sent_state, stand_in

PROBLEM = "application/problem+json"


@dataclass
class FakeProducer:
    """Acknowledges at once and records what it was given, per topic."""

    sent: dict[str, list[tuple[str, Any]]] = field(default_factory=dict)
    headers: dict[str, list[dict[str, bytes]]] = field(default_factory=dict)
    connected: bool = True

    async def produce(
        self, topic: str, records: list[tuple[str, Any]], headers: dict[str, bytes] | None = None
    ) -> None:
        self.sent.setdefault(topic, []).extend(records)
        self.headers.setdefault(topic, []).extend(dict(headers or {}) for _ in records)


@asynccontextmanager
async def ingress_over(
    worker: web.Application | None, codec: AvroCodec, check_timeout_s: float = 0.5
) -> AsyncIterator[Any]:
    """An ingress whose worker is `worker` (None: nobody listens), and its parts."""
    worker_server = None
    if worker is not None:
        worker_server = TestServer(worker, host="127.0.0.1")
        await worker_server.start_server()
        url = str(worker_server.make_url("")).rstrip("/")
    else:
        url = "http://127.0.0.1:9"  # discard: refused
    rt = stand_in()
    producer = FakeProducer()
    view = PreferencesView(codec)
    view.starting({})  # nothing to read: caught up
    async with aiohttp.ClientSession() as session:
        door = IngressDoor(
            rt.settings, metrics=Metrics(), templates=rt.templates, limits=rt.limits,
            producer=producer,  # type: ignore[arg-type]
            preferences_view=view, worker=WorkerClient(session, url, check_timeout_s),
        )  # fmt: skip
        app = Ingress(door, TokenVerifier(secret=SECRET)).build()
        try:
            async with TestClient(TestServer(app, host="127.0.0.1")) as client:
                yield client, door, producer
        finally:
            if worker_server is not None:
                await worker_server.close()


def worker_app() -> tuple[web.Application, Any]:
    rt = stand_in()
    return Ingress(InlineDoor(rt, lambda: True), TokenVerifier(secret=SECRET)).build(), rt


async def test_a_post_is_produced_by_the_ingress_with_no_question_to_the_worker(
    codec: AvroCodec,
) -> None:
    async with ingress_over(None, codec) as (client, _door, producer):  # no worker at all
        resp = await client.post("/v1/notifications", json=EXAMPLE, headers=headers())
        assert resp.status == 202, await resp.text()
        accepted = await resp.json()
    [(key, record)] = producer.sent["herald.notifications.requests"]
    assert key == "acme:u1" and record["messageId"] == accepted["messageId"]
    # Its PENDING went first, to the status topic (read-your-writes), and the request says so.
    [(status_key, pending)] = producer.sent["herald.notifications.status"]
    assert (status_key, pending["status"]) == (f"acme:{accepted['messageId']}", "PENDING")
    checked = {"herald-pending": b"1", "herald-template-version": b"1"}  # booking-confirmation v1
    assert producer.headers["herald.notifications.requests"] == [checked]


async def test_a_get_is_forwarded_with_the_callers_token(codec: AvroCodec) -> None:
    worker, rt = worker_app()
    rt.tables.state["acme:m-1"] = sent_state("m-1")
    async with ingress_over(worker, codec) as (client, _door, _producer):
        found = await client.get("/v1/notifications/m-1", headers=headers())
        assert found.status == 200
        assert (await found.json())["status"] == "SENT"
        other = await client.get("/v1/notifications/m-1", headers=other_tenant())
        assert other.status == 404 and other.content_type == PROBLEM


async def test_prefer_wait_is_answered_from_the_worker(codec: AvroCodec) -> None:
    worker, rt = worker_app()
    async with ingress_over(worker, codec) as (client, _door, _producer):

        async def sent_later() -> None:
            await asyncio.sleep(0.2)
            rt.tables.state["acme:m-3"] = sent_state("m-3")

        later = asyncio.create_task(sent_later())
        resp = await client.post(
            "/v1/notifications", json={**EXAMPLE, "messageId": "m-3"},
            headers={**headers(), "Prefer": "wait=5"},
        )  # fmt: skip
        await later
        assert resp.status == 200, await resp.text()
        assert resp.headers["Preference-Applied"] == "wait=5"
        assert (await resp.json())["status"] == "SENT"


async def test_without_its_worker_a_get_is_503_and_a_post_still_accepted(
    codec: AvroCodec,
) -> None:
    async with ingress_over(None, codec) as (client, _door, _producer):
        resp = await client.get("/v1/notifications/m-1", headers=headers())
        assert resp.status == 503 and resp.content_type == PROBLEM
        assert (await resp.json())["title"] == "Worker unavailable"
        waited = await client.post(
            "/v1/notifications", json=EXAMPLE, headers={**headers(), "Prefer": "wait=1"}
        )
        assert waited.status == 202


async def test_a_client_chosen_id_taken_with_another_body_is_409_at_the_ingress(
    codec: AvroCodec,
) -> None:
    worker, rt = worker_app()
    other = {**EXAMPLE, "messageId": "m-4", "data": {**EXAMPLE["data"], "name": "Bea"}}
    taken = NotificationRequest.model_validate(other).to_record("acme", "m-4")
    rt.tables.idempotency["acme:m-4"] = reservation([0, 1], fingerprint(taken), time.time())
    async with ingress_over(worker, codec) as (client, _door, producer):
        conflict = await client.post(
            "/v1/notifications", json={**EXAMPLE, "messageId": "m-4"}, headers=headers()
        )
        assert conflict.status == 409, await conflict.text()
        again = await client.post("/v1/notifications", json=other, headers=headers())
        assert again.status == 202  # the same body again: the original answer ...
    assert producer.sent == {}  # ... and nothing produced twice


async def test_a_slow_worker_does_not_hold_a_post_past_the_check_timeout(
    codec: AvroCodec,
) -> None:
    slow = web.Application()

    async def never(request: web.Request) -> web.Response:
        await asyncio.sleep(30)
        return web.Response()

    slow.router.add_get("/{tail:.*}", never)
    async with ingress_over(slow, codec, check_timeout_s=0.2) as (client, _door, producer):
        started = time.monotonic()
        resp = await client.post(
            "/v1/notifications", json={**EXAMPLE, "messageId": "m-5"}, headers=headers()
        )
        took = time.monotonic() - started
        assert resp.status == 202, await resp.text()  # accepted: ingest catches a conflict
        metrics = (await (await client.get("/metrics")).read()).decode()
    assert took < 5  # not the worker's 30 s (a bound, not a timing target)
    assert "herald_idempotency_unchecked_total 1.0" in metrics
    assert len(producer.sent["herald.notifications.requests"]) == 1


def preferences(codec: AvroCodec, sample: Any, email: bool) -> bytes:
    record = sample("UserPreferences")
    record["userId"] = "u1"
    record["channels"] = {"email": {"granted": email, "source": "test", "at": record["updatedAt"]}}
    return codec.encode("UserPreferences", record)


def test_the_preferences_view_keeps_the_latest_record_per_user(
    codec: AvroCodec, sample: Any
) -> None:
    view = PreferencesView(codec)
    assert not view.caught_up  # not started
    view.starting({0: 3})
    view.apply(b"acme:u1", preferences(codec, sample, email=True))
    view.seen(0, 0)
    view.apply(b"acme:u1", preferences(codec, sample, email=False))
    view.seen(0, 1)
    view.apply(b"globex:u1", preferences(codec, sample, email=False))  # not its own key
    view.apply(b"acme:u2", b"\x00garbage")  # undecodable: left to the worker
    assert not view.caught_up
    view.seen(0, 2)
    assert view.caught_up
    assert view.get("acme:u1")["channels"]["email"]["granted"] is False  # type: ignore[index]
    assert view.get("globex:u1") is None and view.get("acme:u2") is None
    view.apply(b"acme:u1", None)  # tombstone: erased
    assert view.get("acme:u1") is None


async def test_opted_out_is_403_at_the_ingress_from_its_view(codec: AvroCodec, sample: Any) -> None:
    async with ingress_over(None, codec) as (client, door, producer):
        door.preferences_view.apply(b"acme:u1", preferences(codec, sample, email=False))
        resp = await client.post("/v1/notifications", json=EXAMPLE, headers=headers())
        assert resp.status == 403, await resp.text()
        assert (await resp.json())["type"] == "urn:herald:problem:opted-out"
    [(key, audit)] = producer.sent["herald.audit"]
    assert key == "acme:u1" and audit["decision"] == "BLOCKED"
    assert "herald.notifications.requests" not in producer.sent


@pytest.mark.parametrize(("connected", "caught_up", "status"),
                         [(True, True, 200), (False, True, 503), (True, False, 503)])  # fmt: skip
async def test_the_ingress_is_ready_once_connected_and_caught_up(
    codec: AvroCodec, connected: bool, caught_up: bool, status: int
) -> None:
    async with ingress_over(None, codec) as (client, door, producer):
        producer.connected = connected
        door.preferences_view.starting({0: 0 if caught_up else 1})
        resp = await client.get("/readyz")
        assert resp.status == status
        assert (await client.get("/healthz")).status == 200


async def test_the_workers_reservation_route_answers_what_the_table_makes_of_a_body() -> None:
    worker, rt = worker_app()
    record = NotificationRequest.model_validate({**EXAMPLE, "messageId": "m-6"}).to_record(
        "acme", "m-6"
    )
    rt.tables.idempotency["acme:m-6"] = reservation([0, 1], fingerprint(record), time.time())
    url = "/v1/notifications/m-6/reservation"
    async with TestClient(TestServer(worker, host="127.0.0.1")) as client:
        same = await client.get(url, params={"fingerprint": fingerprint(record)}, headers=headers())
        assert (await same.json()) == {"messageId": "m-6", "seen": "duplicate"}
        other = await client.get(url, params={"fingerprint": "0" * 64}, headers=headers())
        assert (await other.json())["seen"] == "conflict"
        elsewhere = await client.get(
            url, params={"fingerprint": fingerprint(record)}, headers=other_tenant()
        )
        assert elsewhere.status == 403  # a token without notifications:send
        globex = {"Authorization": f"Bearer {issue_token(SECRET, 'globex', 'notifications:send')}"}
        theirs = await client.get(url, params={"fingerprint": "0" * 64}, headers=globex)
        assert (await theirs.json())["seen"] == "new"  # another tenant's ids are its own
        bad = await client.get(url, params={"fingerprint": "x"}, headers=headers())
        assert bad.status == 422 and bad.content_type == PROBLEM
