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
   the calls that were in flight); up to `HERALD_SEND_CONCURRENCY` calls in
   flight per lane, one at a time per recipient key, in arrival order, across
   the lane's overlapping batches (`agents.calls`);
4. act on each outcome: SENT; fall back to the next channel; RETRY later through
   the scheduler (on the channel's next provider: failover before the dead letter);
   or FAILED/DLQ with a dead letter; and wait for those records;
5. only then record the outcome in the ledger (a ledger entry always means its
   follow-up exists). The batch loop acknowledges the batch once that is on the
   broker too.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from agents.calls import Lane, Pending, ordered_providers, start_calls
from pipeline.domain import ledger
from pipeline.domain import schedule as scheduler
from pipeline.domain.followups import Action, NextChannel, Outcome, follow_ups
from pipeline.domain.ids import user_key
from pipeline.domain.ledger import Verdict
from pipeline.domain.planning import render_dispatch
from pipeline.domain.records import status_record
from pipeline.domain.routing import lane_for
from pipeline.domain.statuses import Status
from pipeline.exceptions import ValidationError
from pipeline.kafka import effects
from pipeline.kafka.batches import Stage
from pipeline.kafka.catalog import dispatch_topic
from pipeline.runtime import Runtime, in_event

__all__ = [
    "act",
    "conclude",
    "message_key_str",
    "prepare",
    "render_next",
    "send",
    "send_batch",
]


async def send(stream: Any, rt: Runtime, stage: Stage, channel: str) -> None:
    """Send each dispatch once through the channel's providers; report every state change."""
    lane = Lane.of(rt)

    async def handle(events: list[Any]) -> None:
        await send_batch(rt, events, stage.name, channel, lane)

    try:
        await stage.run(stream, handle)
    finally:
        lane.runner.cancel()


async def send_batch(
    rt: Runtime, events: list[Any], stage: str, channel: str, lane: Lane | None = None
) -> None:
    lane = lane or Lane.of(rt)
    keys: set[str] = set()
    try:
        async with lane.turn:  # this lane's batches start their calls in arrival order
            done = await rt.each(events, stage, lambda event: prepare(rt, event, stage, channel))
            prepared = []
            for _event, p in done:  # the same attempt twice in hand (an ingest replay): the
                if p.ledger_key in lane.calling:  # ledger cannot tell yet, the first one's
                    rt.metrics.duplicates.labels(stage).inc()  # intent comes later
                    continue
                keys.add(p.ledger_key)
                lane.calling.add(p.ledger_key)
                prepared.append(p)
            if not prepared:
                return
            calls = await start_calls(rt, lane, prepared, channel)
        await conclude(rt, await calls.outcomes(), stage)
    finally:
        lane.calling -= keys


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
    order = ordered_providers(rt, dispatch)  # a retry starts after the provider that failed
    await rt.emit_status(
        status_record(dispatch, Status.PROCESSING, channel=channel, attempt=attempt,
                      provider=order[0].name if order else None, in_doubt=verdict.in_doubt),
        stage,
    )  # fmt: skip
    return Pending(event, dispatch, key, position, in_doubt=verdict.in_doubt)


async def act(rt: Runtime, p: Pending, stage: str, outcome: Outcome) -> dict[str, Any]:
    """Produce what the outcome calls for (`follow_ups`); the ledger entry recording it."""
    dispatch = p.dispatch
    lane = lane_for(dispatch["priority"])
    todo = follow_ups(
        dispatch, outcome, policy=rt.policy, position=p.position, now_ms=scheduler.now_ms(),
        render_next=lambda remaining, history: render_next(rt, dispatch, remaining, history),
        providers=[q.name for q in rt.providers.get(dispatch["channel"], [])],
        in_doubt=p.in_doubt,
        resend_in_doubt=dispatch["priority"] in rt.settings.resend_in_doubt_priorities,
    )  # fmt: skip
    if todo.unanswered:  # the provider may have taken it without answering
        resent = todo.step.action is not Action.SENT
        rt.metrics.in_doubt.labels(stage, "resent" if resent else "not-resent").inc()
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
    """The request rendered for the first of `remaining` that has content and a contact.

    The dispatch's request is already resolved from the profile (contact points, locale);
    the profile's attributes (`user`) are read again from the profiles table, which is
    co-partitioned with the lanes (both keyed `tenant:userId`), so the next channel shows
    what the first one did.
    """
    request = rt.codec.decode("NotificationRequest", dispatch["request"])
    request["messageId"] = dispatch["messageId"]
    profile = rt.tables.profiles.get(user_key(dispatch["tenant"], dispatch["userId"]))
    attributes = (profile or {}).get("attributes") or {}
    left = list(remaining)
    while left:
        channel = left.pop(0)
        try:
            nxt = render_dispatch(
                request, channel, templates=rt.templates, remaining=left,
                original=dispatch["request"], history=history, limits=rt.limits,
                user=attributes,
            )  # fmt: skip
        except ValidationError:
            continue  # no content or contact point for that channel: the next one
        return NextChannel(channel, nxt)
    return None


def message_key_str(message: Any) -> str:
    key = message.key
    return key.decode() if isinstance(key, bytes) else str(key)
