"""The agents over a fake stream, plain dict tables and sinks that record what they get:
what each stage produces, writes and acknowledges, without Kafka."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from agents.ingest import ingest
from agents.provider_events import provider_events
from agents.send import send
from agents.status import status as status_agent
from pipeline.budgets import RateBudgets
from pipeline.domain import ledger
from pipeline.domain.breaker import CircuitBreaker
from pipeline.domain.routing import CHANNELS
from pipeline.domain.templates import TemplateCatalog
from pipeline.exceptions import RecipientUnreachable
from pipeline.kafka.codecs import AvroCodec
from pipeline.kafka.ownership import Ownership
from pipeline.metrics import Metrics
from pipeline.providers.base import Accepted, Message, SingleSendProvider
from pipeline.runtime import Runtime, Sinks, Tables
from pipeline.settings import Settings
from tests.unit.faustkit import Ev, FakeApp, FakeStream, Msg


@dataclass
class FakeSink:
    """A topic: remembers what was produced, the broker acknowledges at once."""

    name: str
    codec: AvroCodec | None = None
    schema: str = ""
    records: list[tuple[Any, Any]] = field(default_factory=list)

    def get_topic_name(self) -> str:
        return self.name

    async def send(self, *, key: Any, value: Any) -> asyncio.Future[Any]:
        if self.codec is not None:  # records are checked against their schema
            self.codec.encode(self.schema, value, check=True)
        self.records.append((key, value))
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        fut.set_result(None)
        return fut

    def values(self) -> list[Any]:
        return [v for _k, v in self.records]


def fake_provider(channel: str) -> FakeProvider:
    """A provider class of its own per channel: name and channel are class-level."""
    cls = type(f"Fake{channel.title()}", (FakeProvider,), {"name": f"fake-{channel}",
                                                          "channel": channel})  # fmt: skip
    return cls()


class FakeProvider(SingleSendProvider):
    """A provider that accepts, or raises what it was told to (no batch API)."""

    def __init__(self) -> None:
        self.error: Exception | None = None
        self.sent: list[Message] = []

    async def send(self, message: Message) -> Accepted:
        self.sent.append(message)
        if self.error is not None:
            raise self.error
        return Accepted(self.name, f"{self.name}-{len(self.sent)}")


@pytest.fixture
def world(codec: AvroCodec, templates: TemplateCatalog) -> Any:
    """A runtime on fake sinks and dict tables, with one fake provider per channel."""
    settings = Settings.from_env({}, batch_window_s=0.0)
    metrics = Metrics()
    lanes = {(c, lane): FakeSink(f"herald.dispatch.{c}.{lane}", codec, "ChannelDispatch")
             for c in CHANNELS for lane in ("urgent", "bulk")}  # fmt: skip
    sinks = Sinks(
        requests=FakeSink("herald.notifications.requests", codec, "NotificationRequest"),
        status=FakeSink("herald.notifications.status", codec, "NotificationStatus"),
        dlq=FakeSink("herald.notifications.dlq", codec, "DeadLetter"),
        audit=FakeSink("herald.audit", codec, "AuditRecord"),
        scheduler=FakeSink("herald.scheduler", codec, "ScheduledDelivery"),
        provider_events=FakeSink("herald.provider.events", codec, "ProviderEvent"),
        templates=FakeSink("herald.templates", codec, "TemplateDocument"),
        dispatch=lanes,
    )
    tables = Tables(*({} for _ in range(5)))
    providers = {c: [fake_provider(c)] for c in CHANNELS}
    breakers = {p.name: CircuitBreaker(p.name) for chain in providers.values() for p in chain}
    ownership = Ownership(FakeApp(strict=True))
    rt = Runtime(
        settings, codec, templates, metrics, sinks, tables, ownership=ownership,
        providers=providers, breakers=breakers,
        budgets=RateBudgets({}, metrics),
    )  # fmt: skip
    return rt


def event(topic: str, offset: int, key: str, value: bytes | None) -> Ev:
    return Ev(Msg(offset, topic=topic, key=key.encode(), value=value))


def statuses(rt: Runtime) -> list[str]:
    return [v["status"] for v in rt.sinks.status.values()]


async def run(agent: Any, rt: Runtime, batches: list[list[Ev]], **kw: Any) -> FakeStream:
    stream = FakeStream(batches)
    await agent(stream, rt, rt.stage(agent.__name__), **kw)
    return stream


async def test_ingest_plans_a_request_and_remembers_it(world: Runtime, make_request: Any) -> None:
    rt = world
    value = rt.codec.encode("NotificationRequest", make_request())
    stream = await run(ingest, rt, [[event("herald.notifications.requests", 7, "acme:u-1", value)]])
    lane = rt.sinks.dispatch[("email", "urgent")].values()
    assert [d["to"] for d in lane] == ["ana@example.com"]
    assert statuses(rt) == ["PENDING"]
    assert rt.tables.idempotency["acme:m-1"]["position"] == [0, 7]
    assert stream.acked == [7]


async def test_ingest_skips_the_same_message_at_another_offset(
    world: Runtime, make_request: Any
) -> None:
    rt = world
    value = rt.codec.encode("NotificationRequest", make_request())
    batch = [event("herald.notifications.requests", n, "acme:u-1", value) for n in (3, 4)]
    stream = await run(ingest, rt, [batch])
    assert len(rt.sinks.dispatch[("email", "urgent")].values()) == 1
    assert stream.acked == [3, 4]


async def test_ingest_dead_letters_bytes_that_are_no_record(world: Runtime) -> None:
    rt = world
    stream = await run(ingest, rt, [[event("herald.notifications.requests", 1, "k", b"junk")]])
    [letter] = rt.sinks.dlq.values()
    assert letter["reason"] == "decode-error" and letter["value"] == b"junk"
    assert stream.acked == [1]


async def dispatched(rt: Runtime, make_request: Any, **request: Any) -> bytes:
    value = rt.codec.encode("NotificationRequest", make_request(**request))
    await run(ingest, rt, [[event("herald.notifications.requests", 1, "acme:u-1", value)]])
    channel = (request.get("channels") or ["email"])[0]
    lane = "bulk" if request.get("priority") == "marketing" else "urgent"
    record = rt.sinks.dispatch[(channel, lane)].values()[-1]
    return rt.codec.encode("ChannelDispatch", record)


async def test_send_calls_the_provider_once_and_a_replay_reports_it_again(
    world: Runtime, make_request: Any
) -> None:
    rt = world
    value = await dispatched(rt, make_request)
    lane = "herald.dispatch.email.urgent"
    await run(send, rt, [[event(lane, 9, "acme:u-1", value)]], channel="email")
    provider = rt.providers["email"][0]
    assert len(provider.sent) == 1  # type: ignore[attr-defined]
    assert statuses(rt)[-2:] == ["PROCESSING", "SENT"]
    entry = rt.tables.send_ledger["acme:m-1:email:1"]
    assert entry["state"] == "done" and entry["providerMessageId"] == "fake-email-1"
    # The same record again (a replay after a crash): reported, not sent again.
    stream = await run(send, rt, [[event(lane, 9, "acme:u-1", value)]], channel="email")
    assert len(provider.sent) == 1 and statuses(rt)[-1] == "SENT"  # type: ignore[attr-defined]
    assert stream.acked == [9]


@pytest.mark.parametrize(("priority", "resent"), [("standard", True), ("marketing", False)])
async def test_a_call_left_in_doubt_is_resent_by_priority_and_named(
    world: Runtime, make_request: Any, priority: str, resent: bool
) -> None:
    rt = world
    value = await dispatched(rt, make_request, priority=priority)
    lane = "bulk" if priority == "marketing" else "urgent"
    rt.tables.send_ledger["acme:m-1:email:1"] = ledger.intent([0, 4])  # a worker died
    await run(send, rt, [[event(f"herald.dispatch.email.{lane}", 4, "k", value)]],
              channel="email")  # fmt: skip
    provider = rt.providers["email"][0]
    assert len(provider.sent) == (1 if resent else 0)  # type: ignore[attr-defined]
    last = rt.sinks.status.values()[-1]
    assert last["status"] == "SENT" and last["inDoubt"] is True
    assert rt.tables.send_ledger["acme:m-1:email:1"]["state"] == "done"


async def test_unreachable_falls_back_to_the_next_channel(
    world: Runtime, make_request: Any
) -> None:
    rt = world
    rt.providers["email"][0].error = RecipientUnreachable("no mailbox")  # type: ignore[attr-defined]
    value = await dispatched(
        rt, make_request, channels=["email", "sms"], recipient={"phone": "+34600111222"}
    )
    await run(send, rt, [[event("herald.dispatch.email.urgent", 2, "k", value)]], channel="email")
    [nxt] = rt.sinks.dispatch[("sms", "urgent")].values()
    assert nxt["to"] == "+34600111222" and nxt["history"][0]["outcome"] == "unreachable"
    assert statuses(rt)[-1] == "RETRY"
    assert rt.tables.send_ledger["acme:m-1:email:1"]["action"] == "fallback"


async def test_status_folds_a_batch_into_the_state_table(world: Runtime, make_request: Any) -> None:
    rt = world
    value = rt.codec.encode("NotificationRequest", make_request())
    await run(ingest, rt, [[event("herald.notifications.requests", 1, "acme:u-1", value)]])
    events = [
        event("herald.notifications.status", n, "acme:m-1",
              rt.codec.encode("NotificationStatus", record))
        for n, record in enumerate(rt.sinks.status.values())
    ]  # fmt: skip
    stream = await run(status_agent, rt, [events])
    assert rt.tables.state["acme:m-1"]["status"] == "PENDING"
    assert stream.acked == list(range(len(events)))


def provider_event(rt: Runtime, offset: int, **kw: Any) -> Ev:
    record = {"provider": "sendgrid", "channel": "email", "providerMessageId": "SG1",
              "eventId": f"e{offset}", "tenant": "acme", "messageId": "m-1",
              "event": "DELIVERED", "reason": None, "at": "2026-11-28T10:00:00Z", **kw}  # fmt: skip
    key = f"{record['tenant']}:{record['messageId']}"
    return event("herald.provider.events", offset, key, rt.codec.encode("ProviderEvent", record))


def sent_state(provider: str = "sendgrid", provider_message_id: str = "SG1") -> dict[str, Any]:
    sent = {"status": "SENT", "channel": "email", "provider": provider, "attempt": 1,
            "providerMessageId": provider_message_id, "at": "2026-11-28T09:59:59Z"}  # fmt: skip
    return {"messageId": "m-1", "tenant": "acme", "userId": "u-1", "status": "SENT",
            "attempts": [{**sent, "outcome": "SENT"}], "history": [sent]}  # fmt: skip


def dropped(rt: Runtime, reason: str, provider: str = "sendgrid") -> float:
    return float(rt.metrics.provider_events_dropped.labels(provider, reason)._value.get())


async def test_provider_events_move_only_the_messages_own_send_and_count_once(
    world: Runtime,
) -> None:
    rt = replace(world, settings=world.settings.with_(provider_event_wait_s=0.0))
    rt.tables.state["acme:m-1"] = sent_state()
    batch = [
        provider_event(rt, 1),  # the message's own send: DELIVERED
        provider_event(rt, 1),  # the same event id again
        provider_event(rt, 2, providerMessageId="SG2", event="BOUNCED"),  # another send
        provider_event(rt, 3, provider="twilio", channel="sms", event="FAILED"),  # another provider
        provider_event(rt, 4, messageId="m-never", event="FAILED"),  # no such message
    ]
    stream = await run(provider_events, rt, [batch])
    assert statuses(rt) == ["DELIVERED"]
    assert "acme:m-never" not in rt.tables.state
    assert dropped(rt, "duplicate-event") == 1
    assert dropped(rt, "provider-message-id-mismatch") == 1
    assert dropped(rt, "provider-mismatch", "twilio") == 1
    assert dropped(rt, "unknown-message") == 1
    assert stream.acked == [1, 1, 2, 3, 4]


async def test_a_send_folded_while_its_event_is_judged_is_not_missed(world: Runtime) -> None:
    """The event is judged WAIT (its send not folded yet); the send is folded while the
    rest of its batch is judged, before the event is parked: it is applied at once, not
    after its whole wait (30 s here)."""
    rt = replace(world, settings=world.settings.with_(provider_event_wait_s=30.0))
    rt.tables.state["acme:m-1"] = {
        **sent_state(), "status": "PROCESSING", "attempts": [],
        "history": [{"status": "PROCESSING", "channel": "email"}],
    }  # fmt: skip
    decode, decoded = rt.decode, []

    async def decode_then_fold(message: Any, schema: str, stage: str) -> Any:
        decoded.append(message.offset)
        if len(decoded) == 2:  # the first event was judged: its send is folded now
            rt.tables.state["acme:m-1"] = sent_state()
            rt.fold_watch.folded({0: 7}, ["acme:m-1"])
        return await decode(message, schema, stage)

    object.__setattr__(rt, "decode", decode_then_fold)
    rt.tables.state["acme:m-2"] = {**sent_state(provider_message_id="SG2"), "messageId": "m-2"}
    other = provider_event(rt, 2, messageId="m-2", providerMessageId="SG2")  # applied at once
    started = asyncio.get_running_loop().time()
    await run(provider_events, rt, [[provider_event(rt, 1), other]])
    assert statuses(rt) == ["DELIVERED", "DELIVERED"]
    assert asyncio.get_running_loop().time() - started < 10.0


async def test_an_early_provider_event_waits_for_its_send(world: Runtime) -> None:
    rt = replace(world, settings=world.settings.with_(provider_event_wait_s=5.0))
    rt.tables.state["acme:m-1"] = {
        **sent_state(),
        "status": "PROCESSING",
        "attempts": [],
        "history": [{"status": "PROCESSING", "channel": "email"}],
    }

    async def the_send_is_folded() -> None:
        await asyncio.sleep(0.2)
        rt.tables.state["acme:m-1"] = sent_state()
        rt.fold_watch.folded({0: 7}, ["acme:m-1"])  # as the status stage tells it

    folding = asyncio.create_task(the_send_is_folded())
    started = asyncio.get_running_loop().time()
    stream = await run(provider_events, rt, [[provider_event(rt, 1)]])
    await folding
    assert statuses(rt) == ["DELIVERED"] and stream.acked == [1]
    # Judged again when its state changed, not at the end of its 5 s wait.
    assert asyncio.get_running_loop().time() - started < 2.0
