"""The send stage with two providers on a channel (issue 11, item 1), over fake streams
and sinks: a retry after a provider failure goes to the next provider, on its own (never
in the failed provider's micro-batch), and a fallback's status names itself."""

from __future__ import annotations

from typing import Any

from agents.ingest import ingest
from agents.send import send
from pipeline.domain.breaker import CircuitBreaker
from pipeline.domain.schedule import now_ms
from pipeline.exceptions import ProviderAuthError, RecipientUnreachable, TransientError
from pipeline.providers.base import Accepted, Message
from pipeline.runtime import Runtime
from tests.unit.test_agents import (  # noqa: F401  (world: the fixture)
    FakeProvider,
    dispatched,
    event,
    run,
    statuses,
    world,
)

LANE = "herald.dispatch.email.urgent"


class Primary(FakeProvider):
    """An email provider with a batch API (as SendGrid)."""

    name = "fake-primary"
    channel = "email"
    supports_batch = True

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[list[Message]] = []

    def batchable(self, message: Message) -> bool:
        return True

    async def send_batch(self, messages: list[Message]) -> Accepted:
        self.batches.append(messages)
        if self.error is not None:
            raise self.error
        return Accepted(self.name, f"{self.name}-batch-{len(self.batches)}")


class Secondary(FakeProvider):
    name = "fake-secondary"
    channel = "email"


def two_providers(rt: Runtime) -> tuple[Primary, Secondary]:
    primary, secondary = Primary(), Secondary()
    rt.providers["email"] = [primary, secondary]
    rt.breakers.update({p.name: CircuitBreaker(p.name) for p in (primary, secondary)})
    return primary, secondary


async def dispatch_for(rt: Runtime, make_request: Any, user: str) -> bytes:
    """The email dispatch ingest makes of a request from `user` (its own address)."""
    request = make_request(messageId=f"m-{user}", recipient={"userId": user,
                           "email": f"{user}@example.com"})  # fmt: skip
    raw = rt.codec.encode("NotificationRequest", request)
    await run(ingest, rt, [[event("herald.notifications.requests", 9, f"acme:{user}", raw)]])
    return rt.codec.encode("ChannelDispatch", rt.sinks.dispatch[("email", "urgent")].values()[-1])


async def first_send_fails(
    rt: Runtime, make_request: Any, error: Exception
) -> tuple[Primary, Secondary]:
    """Two email providers; the primary raises `error` on the first send of u-1's message."""
    primary, secondary = two_providers(rt)
    primary.error = error
    value = await dispatched(rt, make_request)
    await run(send, rt, [[event(LANE, 1, "acme:u-1", value)]], channel="email")
    return primary, secondary


def scheduled(rt: Runtime) -> list[dict[str, Any]]:
    """The retries handed to the scheduler, decoded."""
    return [
        rt.codec.decode("ChannelDispatch", entry["payload"])
        for entry in rt.sinks.scheduler.values()
    ]


async def test_a_retry_after_a_5xx_goes_to_the_next_provider(
    world: Runtime,  # noqa: F811
    make_request: Any,
) -> None:
    rt = world
    primary, secondary = await first_send_fails(rt, make_request, TransientError("503", code="503"))
    assert (len(primary.sent), len(secondary.sent)) == (1, 0)
    [retry] = scheduled(rt)
    assert retry["attempt"] == 2 and [c["provider"] for c in retry["history"]] == [primary.name]
    assert retry["retryCounts"] == {"provider-error": 1}
    failed = rt.sinks.status.values()[-1]
    assert (failed["status"], failed["provider"]) == ("RETRY", primary.name)
    assert failed["error"].endswith(f"on {secondary.name}")

    # The scheduler hands it back when due: this time the secondary, and only it.
    again = rt.codec.encode("ChannelDispatch", retry)
    await run(send, rt, [[event(LANE, 2, "acme:u-1", again)]], channel="email")
    assert (len(primary.sent), len(secondary.sent)) == (1, 1)
    processing, sent = rt.sinks.status.values()[-2:]
    assert (processing["status"], processing["provider"]) == ("PROCESSING", secondary.name)
    assert (sent["status"], sent["provider"], sent["attempt"]) == ("SENT", secondary.name, 2)


async def test_a_refused_key_fails_over_at_once_and_dead_letters_when_none_is_left(
    world: Runtime,  # noqa: F811
    make_request: Any,
) -> None:
    rt = world
    primary, secondary = await first_send_fails(
        rt, make_request, ProviderAuthError("401", code="401")
    )
    secondary.error = ProviderAuthError("535", code="535")  # not called yet: failover waits
    [entry] = rt.sinks.scheduler.values()
    [retry] = scheduled(rt)
    assert rt.sinks.dlq.values() == [] and retry["retryCounts"] == {"provider-auth": 1}
    assert entry["dueAt"] <= now_ms()  # due at once: the next provider has no reason to wait
    failed = rt.sinks.status.values()[-1]
    assert "retry in 0s on fake-secondary" in failed["error"]

    again = rt.codec.encode("ChannelDispatch", retry)
    await run(send, rt, [[event(LANE, 2, "acme:u-1", again)]], channel="email")
    [letter] = rt.sinks.dlq.values()
    assert letter["reason"] == "provider-auth"
    assert [a["provider"] for a in letter["attempts"]] == [primary.name, secondary.name]
    assert statuses(rt)[-1] == "DLQ"


async def test_a_retry_failing_over_is_not_put_in_the_failed_providers_micro_batch(
    world: Runtime,  # noqa: F811
    make_request: Any,
) -> None:
    rt = world
    primary, secondary = await first_send_fails(rt, make_request, TransientError("503", code="503"))
    [retry] = scheduled(rt)
    primary.error = None

    fresh = [await dispatch_for(rt, make_request, user) for user in ("u-2", "u-3")]
    batch = [
        event(LANE, 20, "acme:u-2", fresh[0]),
        event(LANE, 21, "acme:u-1", rt.codec.encode("ChannelDispatch", retry)),
        event(LANE, 22, "acme:u-3", fresh[1]),
    ]
    await run(send, rt, [batch], channel="email")
    [one_request] = primary.batches
    assert sorted(m.to for m in one_request) == ["u-2@example.com", "u-3@example.com"]
    assert [m.to for m in secondary.sent] == ["ana@example.com"]  # the retry, on its own


async def test_a_fallback_status_is_a_retry_named_fallback(
    world: Runtime,  # noqa: F811
    make_request: Any,
) -> None:
    rt = world
    rt.providers["email"][0].error = RecipientUnreachable("no mailbox")  # type: ignore[attr-defined]
    value = await dispatched(
        rt, make_request, channels=["email", "sms"], recipient={"phone": "+34600111222"}
    )
    await run(send, rt, [[event(LANE, 2, "k", value)]], channel="email")
    fallback = rt.sinks.status.values()[-1]
    assert (fallback["status"], fallback["outcome"]) == ("RETRY", "FALLBACK")
    assert fallback["error"].endswith("falling back to sms")
