"""Read-your-writes without a broker: the door writes PENDING before its 202, ingest does
not repeat it, and a GET of a message the state does not hold yet waits for the
projection to catch up (200 once folded, 404 only once it has, 503 past the timeout)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest

from agents.ingest import ingest
from pipeline.domain.records import PENDING_HEADER, pending_written
from pipeline.domain.state import apply_status
from pipeline.kafka.progress import FoldWatch, StateBarrier
from pipeline.runtime import Runtime
from tests.unit.faustkit import Ev, Msg
from tests.unit.test_agents import run, statuses, world  # noqa: F401 (fixture)
from tests.unit.test_http_door import EXAMPLE, PROBLEM, headers, serving

pytestmark = pytest.mark.unit

STATUS = "herald.notifications.status"


@dataclass
class Journal:
    """Sinks that write into one journal, so the order across topics shows."""

    entries: list[tuple[str, str, Any, dict[str, bytes]]] = field(default_factory=list)

    def sink(self, topic: str) -> Any:
        journal = self

        class Sink:
            async def send(
                self, key: str, value: Any, headers: dict[str, bytes] | None = None
            ) -> asyncio.Future[None]:
                journal.entries.append((topic, key, value, dict(headers or {})))
                ack: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                ack.set_result(None)
                return ack

        return Sink()


@dataclass
class FakeConsumer:
    """The broker's end offset and the group's committed offset of the status topic."""

    end: int | None = 1
    committed_offset: int | None = None
    asked: int = 0

    async def end_offset_now(self, topic: str, partition: int) -> int | None:
        self.asked += 1
        return self.end

    def committed(self, topic: str, partition: int) -> int | None:
        return self.committed_offset


def barrier(consumer: FakeConsumer, watch: FoldWatch | None = None) -> StateBarrier:
    return StateBarrier(watch or FoldWatch(), consumer, STATUS, partitions=1)  # type: ignore[arg-type]


async def test_the_post_writes_pending_before_the_request_and_says_so_in_a_header() -> None:
    journal = Journal()
    async with serving() as (client, rt):
        rt.sinks.status, rt.sinks.requests = journal.sink("status"), journal.sink("requests")
        resp = await client.post("/v1/notifications", json=EXAMPLE, headers=headers())
        assert resp.status == 202, await resp.text()
        message_id = (await resp.json())["messageId"]
    (t1, key1, pending, h1), (t2, key2, request, h2) = journal.entries
    assert (t1, key1, pending["status"], pending["messageId"]) == (
        "status", f"acme:{message_id}", "PENDING", message_id,
    )  # fmt: skip
    assert (t2, key2, request["messageId"]) == ("requests", "acme:u1", message_id)
    assert h1 == {} and pending_written(list(h2.items()))
    counted = rt.metrics.registry.get_sample_value(
        "herald_notifications_total", {"stage": "door", "status": "PENDING"}
    )
    assert counted == 1


async def test_ingest_does_not_repeat_a_pending_the_door_wrote(
    world: Runtime,  # noqa: F811
    make_request: Any,
) -> None:
    rt = world
    value = rt.codec.encode("NotificationRequest", make_request())
    topic = "herald.notifications.requests"
    from_door = Ev(Msg(7, topic=topic, key=b"acme:u-1", value=value,
                       headers=[(PENDING_HEADER, b"1")]))  # fmt: skip
    await run(ingest, rt, [[from_door]])
    assert statuses(rt) == []  # the door's PENDING is on the topic already
    assert len(rt.sinks.dispatch[("email", "urgent")].values()) == 1
    other = make_request(messageId="m-2")
    from_kafka = Ev(Msg(8, topic=topic, key=b"acme:u-1", value=rt.codec.encode(
        "NotificationRequest", other)))  # fmt: skip
    await run(ingest, rt, [[from_kafka]])
    assert statuses(rt) == ["PENDING"]


async def test_a_get_before_the_fold_waits_for_it_and_answers_pending() -> None:
    watch, consumer = FoldWatch(), FakeConsumer(end=3)
    async with serving() as (client, rt):
        rt.state_barrier = barrier(consumer, watch)

        async def fold_later() -> None:
            await asyncio.sleep(0.3)
            at = "2026-11-29T02:00:00.000Z"
            rt.tables.state["acme:m-9"] = apply_status(None, {
                "messageId": "m-9", "tenant": "acme", "userId": "u1", "status": "PENDING", "at": at,
            })  # fmt: skip
            watch.folded({0: 2}, ["acme:m-9"])

        folding = asyncio.create_task(fold_later())
        resp = await client.get("/v1/notifications/m-9", headers=headers())
        await folding
        assert resp.status == 200, await resp.text()
        assert (await resp.json())["status"] == "PENDING"
    assert consumer.asked == 1  # the end offset is asked once per GET, then watched


async def test_a_get_answers_404_once_the_projection_has_caught_up() -> None:
    watch = FoldWatch()
    watch.folded({0: 4}, [])
    async with serving() as (client, rt):
        rt.state_barrier = barrier(FakeConsumer(end=5), watch)
        resp = await client.get("/v1/notifications/m-absent", headers=headers())
    assert resp.status == 404 and resp.content_type == PROBLEM


async def test_a_projection_still_behind_after_the_timeout_is_503_not_404() -> None:
    async with serving(read_catch_up_s=0.2) as (client, rt):
        rt.state_barrier = barrier(FakeConsumer(end=5))
        resp = await client.get("/v1/notifications/m-absent", headers=headers())
        problem = await resp.json()
    assert resp.status == 503 and resp.content_type == PROBLEM
    assert problem["type"] == "urn:herald:problem:state-behind"
    assert resp.headers["Retry-After"] == "1"


def test_the_barrier_counts_the_groups_committed_offset_and_an_empty_partition() -> None:
    watch = FoldWatch()
    mark = (0, 10)
    consumer = FakeConsumer()
    assert not barrier(consumer, watch).passed(mark)  # nothing folded, nothing committed
    watch.folded({0: 8}, [])
    assert not barrier(consumer, watch).passed(mark)
    consumer.committed_offset = 10  # another worker folded up to 9 while it held it
    assert barrier(consumer, watch).passed(mark)
    assert barrier(FakeConsumer(), FoldWatch()).passed((0, 0))


async def test_a_broker_that_does_not_say_where_the_status_ends_is_503_not_404() -> None:
    async with serving() as (client, rt):
        rt.state_barrier = barrier(FakeConsumer(end=None))
        resp = await client.get("/v1/notifications/m-absent", headers=headers())
        problem = await resp.json()
    assert resp.status == 503 and problem["type"] == "urn:herald:problem:state-behind"


async def test_a_posts_own_prefer_wait_does_not_wait_for_the_projection_past_its_wait() -> None:
    consumer = FakeConsumer(end=5)  # never passed: the state is behind
    async with serving() as (client, rt):
        rt.state_barrier = barrier(consumer)
        resp = await client.post(
            "/v1/notifications", json=EXAMPLE, headers={**headers(), "Prefer": "wait=0.2"}
        )
        assert resp.status == 202, await resp.text()  # not 503 state-behind
    assert consumer.asked == 0  # it wrote the message: nothing to confirm absent
