"""Stage `send-<channel>-<lane>`: one channel lane's dispatches to its provider."""

from __future__ import annotations

from typing import Any

from pipeline.delivery import attempt_delivery
from pipeline.exceptions import DecodeError
from pipeline.records import status_record
from pipeline.runtime import Runtime


async def send(stream: Any, rt: Runtime, channel: str, lane: str) -> None:
    """Send each dispatch once through the channel's provider; report every state change."""
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
    sent = rt.tables.send_ledger.get(ledger_key)
    if sent is not None:
        if sent["position"] == position:  # replay after a crash: report, do not resend
            await rt.emit_status(
                status_record(dispatch, "SENT", channel=channel, provider=sent["provider"],
                              attempt=attempt, provider_message_id=sent["providerMessageId"]),
                stage,
            )  # fmt: skip
        else:
            rt.metrics.duplicates.labels(stage).inc()
        return

    provider = rt.providers[channel]
    await rt.emit_status(
        status_record(dispatch, "PROCESSING", channel=channel, provider=provider.name,
                      attempt=attempt),
        stage,
    )  # fmt: skip
    result = await attempt_delivery(dispatch, provider, rt.metrics)
    if result.accepted is not None:
        pmid = result.accepted.provider_message_id
        rt.tables.send_ledger[ledger_key] = {
            "position": position, "provider": provider.name, "providerMessageId": pmid,
        }  # fmt: skip
        await rt.emit_status(
            status_record(dispatch, "SENT", channel=channel, provider=provider.name,
                          attempt=attempt, provider_message_id=pmid),
            stage,
        )  # fmt: skip
        return
    # Retries, failover and fallback arrive with the resilience issue; until then a
    # failed attempt is final and dead-lettered with the attempt that failed.
    error = result.describe()
    await rt.emit_status(
        status_record(dispatch, "FAILED", channel=channel, provider=provider.name,
                      attempt=attempt, error=error),
        stage,
    )  # fmt: skip
    await rt.emit_dead_letter(
        message,
        stage=stage,
        reason=result.outcome,
        error=error,
        tenant=dispatch["tenant"],
        message_id=dispatch["messageId"],
        attempts=[{"channel": channel, "provider": provider.name, "outcome": result.outcome,
                   "error": error, "at": status_record(dispatch, "FAILED")["at"]}],
    )  # fmt: skip
