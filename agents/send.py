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
from typing import Any

from pipeline import scheduler
from pipeline.catalog import dispatch_topic
from pipeline.delivery import Outcome, Step, deliver, next_step
from pipeline.exceptions import DecodeError, ValidationError
from pipeline.ingest import render_dispatch
from pipeline.records import status_record
from pipeline.routing import lane_for
from pipeline.runtime import Runtime


async def send(stream: Any, rt: Runtime, channel: str, lane: str) -> None:
    """Send each dispatch once through the channel's providers; report every state change."""
    stage = f"send-{channel}-{lane}"
    async for event in stream.events():
        message = event.message
        try:
            await handle(rt, message, stage, channel)
        except Exception as exc:  # one bad record never stops the partition
            await rt.emit_dead_letter(
                message, stage=stage, reason="internal-error", error=repr(exc)
            )


async def handle(rt: Runtime, message: Any, stage: str, channel: str) -> None:
    try:
        dispatch = rt.codec.decode("ChannelDispatch", message.value)
    except DecodeError as exc:
        await rt.emit_dead_letter(message, stage=stage, reason="decode-error", error=str(exc))
        return
    attempt = dispatch["attempt"]
    ledger_key = f"{dispatch['tenant']}:{dispatch['messageId']}:{channel}:{attempt}"
    position = [message.partition, message.offset]
    done = rt.tables.send_ledger.get(ledger_key)
    if done is not None:
        if done["position"] == position and done.get("providerMessageId"):
            # A replay after a crash: report what happened, do not call again.
            await rt.emit_status(
                status_record(dispatch, "SENT", channel=channel, provider=done["provider"],
                              attempt=attempt, provider_message_id=done["providerMessageId"]),
                stage,
            )  # fmt: skip
        else:
            rt.metrics.duplicates.labels(stage).inc()
        return

    providers = rt.providers.get(channel, [])
    await rt.emit_status(
        status_record(dispatch, "PROCESSING", channel=channel, attempt=attempt,
                      provider=providers[0].name if providers else None),
        stage,
    )  # fmt: skip

    async def acquire(provider: str) -> None:
        await take_rate_budget(rt, provider, message.partition)

    outcome = await deliver(dispatch, providers, rt.breakers, rt.metrics, acquire)
    history = [*dispatch["history"], *outcome.calls]
    step = next_step(outcome, dispatch["remainingChannels"], dispatch["retryCounts"], rt.policy)
    pmid = outcome.accepted.provider_message_id if outcome.accepted else None
    rt.tables.send_ledger[ledger_key] = {
        "position": position, "provider": outcome.provider, "providerMessageId": pmid,
        "action": step.action,
    }  # fmt: skip
    await act(rt, message, stage, dispatch, outcome, step, history)


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
        await rt.sinks.scheduler.send(key=message.key, value=entry)
        await rt.emit_status(status("RETRY", error=f"{error}; retry in {step.delay_s:g}s"), stage)
        return
    final = "FAILED" if step.action in ("failed", "fallback") else "DLQ"
    await rt.emit_status(status(final, error=error), stage)
    await rt.emit_dead_letter(
        message,
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
        await topic.send(key=message.key, value=nxt)
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
