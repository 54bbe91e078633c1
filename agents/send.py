"""Stage `send-<channel>-<lane>`: one channel lane's dispatches to its providers.

Per dispatch: skip it if the send ledger says this (message, channel, attempt)
was already handled; otherwise try the channel's providers (failover on an open
circuit or a provider fault), then act on the outcome: SENT; fall back to the
next channel; RETRY later through the scheduler (the partition moves on); or
give up with a dead letter carrying every attempt.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from typing import Any

from pipeline import scheduler
from pipeline.catalog import dispatch_topic
from pipeline.delivery import Outcome, Step, deliver, deliver_batch, message_for, next_step
from pipeline.exceptions import ValidationError
from pipeline.ingest import render_dispatch
from pipeline.records import status_record
from pipeline.resilience import CircuitState
from pipeline.routing import lane_for
from pipeline.runtime import Runtime, describe_exception, in_event

MAX_BATCH = 1000  # SendGrid: personalizations per request


@dataclass
class Pending:
    """A dispatch that passed the ledger check and is about to be sent."""

    message: Any
    dispatch: dict[str, Any]
    ledger_key: str
    position: list[int]
    event: Any = None


async def send(stream: Any, rt: Runtime, channel: str, lane: str) -> None:
    """Send each dispatch once through the channel's providers; report every state change."""
    stage = f"send-{channel}-{lane}"
    if any(hasattr(p, "send_batch") for p in rt.providers.get(channel, [])):
        # A provider with a batch API: take what has arrived (up to batch_max,
        # waiting at most batch_window_s) and send it in as few calls as possible.
        settings = rt.settings
        async for events in stream.take_events(settings.batch_max, within=settings.batch_window_s):
            try:
                await handle_batch(rt, events, stage, channel)
            except Exception as exc:  # never lose the batch: dead-letter it whole
                for event in events:
                    with in_event(event):
                        await rt.emit_dead_letter(
                            event.message, stage=stage, reason="internal-error",
                            error=describe_exception(exc),
                        )  # fmt: skip
        return
    async for event in stream.events():
        message = event.message
        try:
            pending = await prepare(rt, message, stage, channel)
            if pending is not None:
                await send_one(rt, pending, stage, channel)
        except Exception as exc:  # one bad record never stops the partition
            await rt.emit_dead_letter(
                message, stage=stage, reason="internal-error", error=describe_exception(exc)
            )


async def handle_batch(rt: Runtime, events: list[Any], stage: str, channel: str) -> None:
    pending = []
    for event in events:
        with in_event(event):
            p = await prepare(rt, event.message, stage, channel)
        if p is not None:
            p.event = event
            pending.append(p)
    providers = rt.providers.get(channel, [])
    primary = next((p for p in providers if rt.breakers[p.name].state is CircuitState.CLOSED), None)
    if primary is None or not hasattr(primary, "send_batch") or len(pending) < 2:
        for p in pending:
            with in_event(p.event):
                await send_one(rt, p, stage, channel)
        return
    for group in batches(pending, primary):
        if len(group) == 1:
            with in_event(group[0].event):
                await send_one(rt, group[0], stage, channel)
            continue
        for p in group:  # each message takes from its own partition's budget
            with in_event(p.event):
                await take_rate_budget(rt, primary.name, p.message.partition)
        outcomes = await deliver_batch(
            [p.dispatch for p in group], primary, rt.breakers[primary.name], rt.metrics
        )
        if outcomes is None:  # split: one by one isolates a bad address
            for p in group:
                with in_event(p.event):
                    await send_one(rt, p, stage, channel)
            continue
        for p, outcome in zip(group, outcomes, strict=True):
            with in_event(p.event):
                await finish(rt, p, stage, outcome)


def batches(pending: list[Pending], provider: Any) -> list[list[Pending]]:
    """Groups one batch call accepts: batchable content, distinct addresses, bounded size."""
    groups: list[list[Pending]] = []
    singles: list[list[Pending]] = []
    for p in pending:
        if not provider.batchable(message_for(p.dispatch)):
            singles.append([p])
            continue
        to = p.dispatch["to"].lower()
        fits = (
            g for g in groups
            if len(g) < MAX_BATCH and all(q.dispatch["to"].lower() != to for q in g)
        )  # fmt: skip
        group = next(fits, None)
        if group is None:
            groups.append([p])
        else:
            group.append(p)
    return groups + singles


async def prepare(rt: Runtime, message: Any, stage: str, channel: str) -> Pending | None:
    """Decode, skip what the ledger has already seen, report PROCESSING."""
    dispatch = await rt.decode(message, "ChannelDispatch", stage)
    if dispatch is None:
        return None
    attempt = dispatch["attempt"]
    ledger_key = f"{dispatch['tenant']}:{dispatch['messageId']}:{channel}:{attempt}"
    position = [message.partition, message.offset]
    done = rt.tables.send_ledger.get(ledger_key)
    if done is not None:
        if done["position"] != position:
            rt.metrics.duplicates.labels(stage).inc()  # the same attempt again: handled
        elif done.get("providerMessageId"):
            # A replay after a crash: it went out; report that, do not call again.
            await rt.emit_status(
                status_record(dispatch, "SENT", channel=channel, provider=done["provider"],
                              attempt=attempt, provider_message_id=done["providerMessageId"]),
                stage,
            )  # fmt: skip
        # else a replay of an attempt that did not go out: its retry, fallback or dead
        # letter was acknowledged before the ledger entry was written (see finish).
        return None
    providers = rt.providers.get(channel, [])
    await rt.emit_status(
        status_record(dispatch, "PROCESSING", channel=channel, attempt=attempt,
                      provider=providers[0].name if providers else None),
        stage,
    )  # fmt: skip
    return Pending(message, dispatch, ledger_key, position)


async def send_one(rt: Runtime, p: Pending, stage: str, channel: str) -> None:
    async def acquire(provider: str) -> None:
        await take_rate_budget(rt, provider, p.message.partition)

    providers = rt.providers.get(channel, [])
    outcome = await deliver(p.dispatch, providers, rt.breakers, rt.metrics, acquire)
    await finish(rt, p, stage, outcome)


async def finish(rt: Runtime, p: Pending, stage: str, outcome: Outcome) -> None:
    """Act on the outcome and record it in the send ledger, in the order that is safe.

    Sent: the ledger first, so a crash before the SENT status never sends twice
    (the replay reports SENT from the ledger). Anything else: the follow-up (retry,
    fallback, dead letter) is acknowledged by the broker first, so a ledger entry
    always means its follow-up exists; a crash in between only repeats the attempt.
    """
    dispatch = p.dispatch
    history = [*dispatch["history"], *outcome.calls]
    step = next_step(outcome, dispatch["remainingChannels"], dispatch["retryCounts"], rt.policy)
    pmid = outcome.accepted.provider_message_id if outcome.accepted else None
    entry = {
        "position": p.position, "provider": outcome.provider, "providerMessageId": pmid,
        "action": step.action,
    }  # fmt: skip
    if step.action == "sent":
        rt.tables.send_ledger[p.ledger_key] = entry
        await act(rt, p.message, stage, dispatch, outcome, step, history)
    else:
        await act(rt, p.message, stage, dispatch, outcome, step, history)
        rt.tables.send_ledger[p.ledger_key] = entry


async def act(
    rt: Runtime,
    message: Any,
    stage: str,
    dispatch: dict[str, Any],
    outcome: Outcome,
    step: Step,
    history: list[dict[str, Any]],
) -> None:
    channel, attempt = dispatch["channel"], dispatch["attempt"]
    error = history[-1]["error"] if history else (str(outcome.error) if outcome.error else None)

    def status(name: str, **kw: Any) -> dict[str, Any]:
        return status_record(dispatch, name, channel=channel, provider=outcome.provider,
                             attempt=attempt, **kw)  # fmt: skip

    if step.action == "sent":
        assert outcome.accepted is not None
        await rt.emit_status(
            status("SENT", provider_message_id=outcome.accepted.provider_message_id), stage
        )
        return
    if step.action == "fallback" and await fall_back(rt, message, stage, dispatch, history):
        await rt.emit_status(
            status("RETRY", error=f"{error}; falling back to {dispatch['remainingChannels'][0]}"),
            stage,
        )
        return
    if step.action == "retry":
        counts = dict(dispatch["retryCounts"])
        counts[step.error_class] = counts.get(step.error_class, 0) + 1
        retry = {**dispatch, "attempt": attempt + 1, "history": history, "retryCounts": counts}
        topic = dispatch_topic(channel, lane_for(dispatch["priority"]))
        due = scheduler.now_ms() + int(step.delay_s * 1000)
        entry = scheduler.schedule(
            str(uuid.uuid4()), due, topic, message_key_str(message),
            rt.codec.encode("ChannelDispatch", retry),
        )  # fmt: skip
        await (await rt.sinks.scheduler.send(key=message.key, value=entry))  # acknowledged
        await rt.emit_status(status("RETRY", error=f"{error}; retry in {step.delay_s:g}s"), stage)
        return
    final = "FAILED" if step.action in ("failed", "fallback") else "DLQ"
    await rt.emit_status(status(final, error=error), stage)
    await rt.emit_dead_letter(
        message,
        acknowledged=True,
        stage=stage,
        reason=step.reason or final.lower(),
        error=error or "",
        tenant=dispatch["tenant"],
        message_id=dispatch["messageId"],
        attempts=history,
    )


async def fall_back(
    rt: Runtime, message: Any, stage: str, dispatch: dict[str, Any], history: list[dict[str, Any]]
) -> bool:
    """Render the request for the next channel and hand it to that channel's lane."""
    remaining = list(dispatch["remainingChannels"])
    request = rt.codec.decode("NotificationRequest", dispatch["request"])
    request["messageId"] = dispatch["messageId"]
    while remaining:
        channel = remaining.pop(0)
        try:
            nxt = render_dispatch(
                request, channel, templates=rt.templates, remaining=remaining,
                original=dispatch["request"], history=history,
            )  # fmt: skip
        except ValidationError:
            continue  # no content or contact point for that channel: the next one
        topic = rt.sinks.dispatch[(channel, lane_for(dispatch["priority"]))]
        await (await topic.send(key=message.key, value=nxt))  # acknowledged
        return True
    return False


def message_key_str(message: Any) -> str:
    key = message.key
    return key.decode() if isinstance(key, bytes) else str(key)


async def take_rate_budget(rt: Runtime, provider: str, partition: int) -> None:
    """Wait for one token of `provider`'s budget on this partition (kept in a table)."""
    bucket = rt.buckets.get(provider)
    if bucket is None:
        return
    key = f"{provider}:{partition}"
    state, wait = bucket.take(rt.tables.rate_windows.get(key), time.time())
    rt.tables.rate_windows[key] = state
    if wait > 0:  # back-pressure: this partition waits its turn, the others go on
        rt.metrics.rate_limited.labels(provider).inc()
        await asyncio.sleep(wait)
