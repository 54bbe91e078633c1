"""Size and produce failures through the agents (fake stream and sinks, no Kafka): a record
too large ends as a `too-large` dead letter that fits the DLQ, a produce the broker refuses
ends as a `produce-failed` dead letter, and either way the message reads DLQ, not PENDING."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import pytest

from agents.ingest import ingest
from agents.send import send
from pipeline.exceptions import ProviderTimeout
from pipeline.runtime import Runtime
from tests.unit.test_agents import FakeSink, event, run, statuses, world  # noqa: F401

REQUESTS = "herald.notifications.requests"


@dataclass
class RefusingSink(FakeSink):
    """A topic whose broker refuses every record (as Kafka does one over its limit)."""

    async def send(self, *, key: Any, value: Any) -> asyncio.Future[Any]:
        self.records.append((key, value))
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        fut.set_exception(RuntimeError("MessageSizeTooLargeError: refused by the broker"))
        return fut


def letters(rt: Runtime) -> list[dict[str, Any]]:
    return list(rt.sinks.dlq.values())


async def test_a_near_1mb_request_is_a_too_large_dead_letter_that_fits(
    world: Runtime,  # noqa: F811
    make_request: Any,
) -> None:
    rt = world
    request = make_request()
    request["data"] = {**request["data"], "name": "x" * 1_000_000}
    value = rt.codec.encode("NotificationRequest", request)
    stream = await run(ingest, rt, [[event(REQUESTS, 9, "acme:u-1", value)]])

    assert statuses(rt) == ["DLQ"]
    [letter] = letters(rt)
    assert (letter["reason"], letter["topic"], letter["offset"]) == ("too-large", REQUESTS, 9)
    assert letter["truncated"] and letter["valueBytes"] == len(value)
    assert len(rt.codec.encode("DeadLetter", letter)) <= rt.limits.dead_letter_bytes
    assert rt.sinks.dispatch[("email", "urgent")].values() == []
    assert stream.acked == [9]  # and the worker did not stop (the fake app is strict)


async def test_a_refused_dispatch_ends_the_message_as_dlq(
    world: Runtime,  # noqa: F811
    make_request: Any,
) -> None:
    rt = world
    lanes = dict(rt.sinks.dispatch)
    lanes[("email", "urgent")] = RefusingSink("herald.dispatch.email.urgent")
    rt.sinks.dispatch = lanes
    value = rt.codec.encode("NotificationRequest", make_request())
    stream = await run(ingest, rt, [[event(REQUESTS, 3, "acme:u-1", value)]])

    assert statuses(rt) == ["PENDING", "DLQ"]
    dlq = rt.sinks.status.values()[-1]
    assert dlq["messageId"] == "m-1" and "produce-failed" in dlq["error"]
    assert [d["reason"] for d in letters(rt)] == ["produce-failed"]
    assert stream.acked == [3]


async def test_a_record_that_raises_ends_its_message_as_dlq(
    world: Runtime,  # noqa: F811
    make_request: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rt = world

    def broken(*_a: Any, **_k: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(rt.templates, "render", broken)
    value = rt.codec.encode("NotificationRequest", make_request(messageId=None))
    await run(ingest, rt, [[event(REQUESTS, 5, "acme:u-1", value)]])

    [status] = rt.sinks.status.values()
    assert status["status"] == "DLQ" and status["messageId"]  # named as ingest names it
    assert [d["reason"] for d in letters(rt)] == ["internal-error"]


async def test_a_refused_retry_in_the_send_stage_ends_the_message_as_dlq(
    world: Runtime,  # noqa: F811
    sample: Any,
) -> None:
    """The retry's scheduler entry is refused: the attempt ends as DLQ, not RETRY for ever.

    (In the send stage the conclusion waits for its follow-ups before the ledger entry,
    so the refusal surfaces there as NotAcknowledged, an internal error of the record.)
    """
    rt = world
    rt.sinks.scheduler = RefusingSink("herald.scheduler")
    rt.providers["email"][0].error = ProviderTimeout("slow")  # type: ignore[attr-defined]
    dispatch = {**sample("ChannelDispatch"), "remainingChannels": [], "attempt": 1}
    value = rt.codec.encode("ChannelDispatch", dispatch)
    lane = "herald.dispatch.email.urgent"
    stream = await run(send, rt, [[event(lane, 4, "acme:u-1", value)]], channel="email")

    assert statuses(rt)[-1] == "DLQ"
    last = rt.sinks.status.values()[-1]
    assert (last["messageId"], last["channel"], last["attempt"]) == ("m-1", "email", 1)
    assert stream.acked == [4]
