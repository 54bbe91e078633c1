"""Stage `send-<channel>-<lane>`: one channel lane's dispatches to its providers.

Per batch, in the order that keeps the promise (nothing lost, a duplicate only
where a crash left a call in doubt):

1. decode each dispatch and ask the send ledger what to do with it
   (`pipeline.domain.ledger.verdict`): send, skip, report SENT again, or, when a
   previous worker stopped during the call, resend or give up *in doubt*;
2. record PROCESSING;
3. call the providers (micro-batches where the provider has a batch API), only
   for dispatches this worker still owns, each call right after its ledger
   intent is on the broker (so an intent left behind by a crash names exactly
   the calls that were in flight);
4. act on each outcome: SENT; fall back to the next channel; RETRY later through
   the scheduler; or FAILED/DLQ with a dead letter; and wait for those records;
5. only then record the outcome in the ledger (a ledger entry always means its
   follow-up exists). The batch loop acknowledges the batch once that is on the
   broker too.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pipeline.domain import ledger
from pipeline.domain import schedule as scheduler
from pipeline.domain.breaker import CircuitState
from pipeline.domain.followups import NextChannel, Outcome, follow_ups
from pipeline.domain.ledger import Verdict
from pipeline.domain.microbatch import group_for_batches
from pipeline.domain.planning import render_dispatch
from pipeline.domain.records import status_record
from pipeline.domain.routing import lane_for
from pipeline.domain.statuses import Status
from pipeline.exceptions import ValidationError
from pipeline.kafka import effects
from pipeline.kafka.batches import Stage
from pipeline.kafka.catalog import dispatch_topic
from pipeline.providers.base import Provider
from pipeline.providers.delivery import deliver, deliver_batch, message_for
from pipeline.runtime import Runtime, in_event

__all__ = [
    "Pending",
    "act",
    "call_one",
    "call_providers",
    "conclude",
    "message_key_str",
    "prepare",
    "record_intents",
    "render_next",
    "send",
    "send_batch",
]


@dataclass
class Pending:
    """A dispatch that passed the ledger check and is about to be sent."""

    event: Any
    dispatch: dict[str, Any]
    ledger_key: str
    position: list[int]
    in_doubt: bool = False

    @property
    def message(self) -> Any:
        return self.event.message


async def send(stream: Any, rt: Runtime, stage: Stage, channel: str) -> None:
    """Send each dispatch once through the channel's providers; report every state change."""

    async def handle(events: list[Any]) -> None:
        await send_batch(rt, events, stage.name, channel)

    await stage.run(stream, handle)


async def send_batch(rt: Runtime, events: list[Any], stage: str, channel: str) -> None:
    done = await rt.each(events, stage, lambda event: prepare(rt, event, stage, channel))
    prepared, keys = [], set()
    for _event, p in done:  # the same attempt twice in one batch (an ingest replay): the
        if p.ledger_key in keys:  # ledger cannot tell yet, the first one's intent comes later
            rt.metrics.duplicates.labels(stage).inc()
            continue
        keys.add(p.ledger_key)
        prepared.append(p)
    if prepared:
        results = await call_providers(rt, prepared, channel)
        await conclude(rt, results, stage)


async def conclude(rt: Runtime, results: list[tuple[Pending, Outcome]], stage: str) -> None:
    """Act on each outcome; record it in the ledger once its follow-ups are on the broker."""
    later: list[tuple[Pending, dict[str, Any]]] = []
    for p, outcome in results:
        with in_event(p.event):
            entry = await act(rt, p, stage, outcome)
            if entry["action"] == "sent":
                rt.tables.send_ledger[p.ledger_key] = entry  # with SENT: a replay reports it
            else:
                later.append((p, entry))
    await effects.flush(rt.settings.ack_timeout_s)  # follow-ups before their ledger entry
    for p, entry in later:
        with in_event(p.event):
            rt.tables.send_ledger[p.ledger_key] = entry
    await effects.flush(rt.settings.ack_timeout_s)  # before a rebalance hands them over


async def prepare(rt: Runtime, event: Any, stage: str, channel: str) -> Pending | None:
    """Decode; follow the ledger's verdict; for a call to make, record PROCESSING."""
    message = event.message
    dispatch = await rt.decode(message, "ChannelDispatch", stage)
    if dispatch is None:
        return None
    attempt = dispatch["attempt"]
    key = ledger.ledger_key(dispatch["tenant"], dispatch["messageId"], channel, attempt)
    position = [message.partition, message.offset]
    entry = rt.tables.send_ledger.get(key)
    verdict = ledger.verdict(
        entry, position, dispatch["priority"], rt.settings.resend_in_doubt_priorities
    )
    if verdict is Verdict.DUPLICATE:
        rt.metrics.duplicates.labels(stage).inc()  # the same attempt produced twice
        return None
    if verdict is Verdict.REPORT:  # a replay after a crash: it went out; say so again
        assert entry is not None
        await rt.emit_status(
            status_record(dispatch, Status.SENT, channel=channel, provider=entry["provider"],
                          attempt=attempt, provider_message_id=entry["providerMessageId"]),
            stage,
        )  # fmt: skip
        return None
    if verdict is Verdict.SKIP:
        return None  # its retry, fallback or dead letter was acknowledged before the entry
    if verdict is Verdict.GIVE_UP:  # in doubt, and this priority is never sent twice
        rt.metrics.in_doubt.labels(stage, "not-resent").inc()
        await rt.emit_status(
            status_record(
                dispatch, Status.SENT, channel=channel, attempt=attempt, in_doubt=True,
                error="in doubt: a worker stopped during the provider call; not sent again",
            ),
            stage,
        )  # fmt: skip
        rt.tables.send_ledger[key] = ledger.outcome(
            position, provider=None, provider_message_id=None, action="in-doubt"
        )
        return None
    if verdict is Verdict.RESEND:
        rt.metrics.in_doubt.labels(stage, "resent").inc()
    providers = rt.providers.get(channel, [])
    await rt.emit_status(
        status_record(dispatch, Status.PROCESSING, channel=channel, attempt=attempt,
                      provider=providers[0].name if providers else None,
                      in_doubt=verdict.in_doubt),
        stage,
    )  # fmt: skip
    return Pending(event, dispatch, key, position, in_doubt=verdict.in_doubt)


async def call_providers(
    rt: Runtime, prepared: list[Pending], channel: str
) -> list[tuple[Pending, Outcome]]:
    """The outcome of each dispatch called for: in micro-batches where the provider has a
    batch API. Once a rebalance starts no new call is made; the rest is handed back.

    Each call waits for its rate budget first, then records its intent, then goes out:
    the window in which a crash leaves a call in doubt is the call itself.
    """
    results: list[tuple[Pending, Outcome]] = []
    providers = rt.providers.get(channel, [])
    primary: Provider | None = next(
        (p for p in providers if rt.breakers[p.name].state is CircuitState.CLOSED), None
    )
    singles = prepared
    if primary is not None and primary.supports_batch and len(prepared) > 1:
        batch_api, singles = primary, []
        groups = group_for_batches(
            prepared, address=lambda p: p.dispatch["to"],
            batchable=lambda p: batch_api.batchable(message_for(p.dispatch)),
        )  # fmt: skip
        for group in groups:
            if len(group) < 2:
                singles += group
                continue
            if rt.ownership.rebalancing:
                return results
            for p in group:  # each message takes from its own partition's budget
                with in_event(p.event):
                    await rt.budgets.take(primary.name, p.message.partition)
            await record_intents(rt, group)
            outcomes = await deliver_batch(
                [p.dispatch for p in group], primary, rt.breakers[primary.name], rt.metrics
            )
            if outcomes is None:  # split: one by one isolates a bad address
                singles += group
            else:
                results += zip(group, outcomes, strict=True)
    for p in singles:
        if rt.ownership.rebalancing:
            return results
        results.append((p, await call_one(rt, p, providers)))
    return results


async def call_one(rt: Runtime, p: Pending, providers: Sequence[Provider]) -> Outcome:
    """One dispatch through the channel's providers (failover while a circuit is open)."""
    first = next((q.name for q in providers if rt.breakers[q.name].would_allow()), None)
    if first is not None:  # the budget of the provider it will most likely use, before
        with in_event(p.event):  # the intent: a crash while waiting leaves nothing in doubt
            await rt.budgets.take(first, p.message.partition)
    await record_intents(rt, [p])

    async def acquire(provider: str) -> None:
        if provider != first:  # failed over to another provider: its budget now
            with in_event(p.event):
                await rt.budgets.take(provider, p.message.partition)

    return await deliver(p.dispatch, providers, rt.breakers, rt.metrics, acquire)


async def record_intents(rt: Runtime, pending: list[Pending]) -> None:
    """The ledger intent of each call about to be made, acknowledged by the broker.

    After a crash, an entry still *calling* names a call that was in flight: the next
    owner treats it as in doubt. A resend keeps the intent it found.
    """
    for p in pending:
        if not p.in_doubt:
            with in_event(p.event):
                rt.tables.send_ledger[p.ledger_key] = ledger.intent(p.position)
    await effects.flush(rt.settings.ack_timeout_s)


async def act(rt: Runtime, p: Pending, stage: str, outcome: Outcome) -> dict[str, Any]:
    """Produce what the outcome calls for (`follow_ups`); the ledger entry recording it."""
    dispatch = p.dispatch
    lane = lane_for(dispatch["priority"])
    todo = follow_ups(
        dispatch, outcome, policy=rt.policy, position=p.position, now_ms=scheduler.now_ms(),
        render_next=lambda remaining, history: render_next(rt, dispatch, remaining, history),
        in_doubt=p.in_doubt,
    )  # fmt: skip
    if todo.next_channel is not None:
        sink = rt.sinks.dispatch[(todo.next_channel.channel, lane)]
        await rt.produce(sink, p.message.key, todo.next_channel.dispatch)
    if todo.next_attempt is not None:  # the scheduler hands it back to this lane when due
        entry = scheduler.schedule(
            str(uuid.uuid4()), todo.next_attempt.due_ms, dispatch_topic(dispatch["channel"], lane),
            message_key_str(p.message),
            rt.codec.encode("ChannelDispatch", todo.next_attempt.dispatch),
        )  # fmt: skip
        await rt.produce(rt.sinks.scheduler, p.message.key, entry)
    await rt.emit_status(todo.status, stage)
    if todo.dead_letter is not None:
        spec = todo.dead_letter
        await rt.emit_dead_letter(
            p.message, stage=stage, reason=spec.reason, error=spec.error,
            tenant=dispatch["tenant"], message_id=dispatch["messageId"], attempts=spec.attempts,
        )  # fmt: skip
    return todo.ledger


def render_next(
    rt: Runtime, dispatch: dict[str, Any], remaining: Sequence[str], history: list[dict[str, Any]]
) -> NextChannel | None:
    """The request rendered for the first of `remaining` that has content and a contact."""
    request = rt.codec.decode("NotificationRequest", dispatch["request"])
    request["messageId"] = dispatch["messageId"]
    left = list(remaining)
    while left:
        channel = left.pop(0)
        try:
            nxt = render_dispatch(
                request, channel, templates=rt.templates, remaining=left,
                original=dispatch["request"], history=history, limits=rt.limits,
            )  # fmt: skip
        except ValidationError:
            continue  # no content or contact point for that channel: the next one
        return NextChannel(channel, nxt)
    return None


def message_key_str(message: Any) -> str:
    key = message.key
    return key.decode() if isinstance(key, bytes) else str(key)
