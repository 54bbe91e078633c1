"""One delivery attempt on one channel: the provider to use and the call.

`deliver` calls the first of the providers it is given whose circuit allows it,
and stops at its answer: a provider whose circuit is open is skipped at once, as
the seed's failover scenario (6.9) has it. A failed call is the retry policy's
business (`pipeline.domain.followups` decides what comes next): its retry goes to
the channel's next provider, which the caller puts first
(`pipeline.domain.failover.provider_order`). `deliver_batch` is one call to a
provider's batch API.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from pipeline.clock import now
from pipeline.domain.breaker import CircuitBreaker
from pipeline.domain.followups import Outcome
from pipeline.exceptions import (
    CircuitOpen,
    DeliveryError,
    InvalidData,
    PermanentError,
    ProviderAuthError,
    RecipientUnreachable,
    TransientError,
)
from pipeline.metrics import Metrics
from pipeline.providers.base import Accepted, Message, Provider, WhatsAppTemplate

__all__ = ["deliver", "deliver_batch", "message_for", "not_sent"]


def message_for(dispatch: Mapping[str, Any], *, as_template: bool = False) -> Message:
    """The provider Message of a dispatch. `as_template`: a WhatsApp dispatch goes as its
    approved template (the send stage decides, `pipeline.domain.service_window`)."""
    approved = dispatch.get("whatsappTemplate") if as_template else None
    template = None
    if approved:
        template = WhatsAppTemplate(
            approved["name"], approved["language"], tuple(approved.get("parameters") or ())
        )
    return Message(
        message_id=dispatch["messageId"],
        tenant=dispatch["tenant"],
        channel=dispatch["channel"],
        to=dispatch["to"],
        text=dispatch["text"],
        subject=dispatch.get("subject"),
        html=dispatch.get("html"),
        attempt=int(dispatch.get("attempt") or 1),
        data=dict(dispatch.get("pushData") or {}),
        whatsapp_template=template,
    )


def _outcome_name(error: DeliveryError | None) -> str:
    if error is None:
        return "accepted"
    if isinstance(error, RecipientUnreachable):
        return "unreachable"
    if isinstance(error, ProviderAuthError):
        return "auth"
    if isinstance(error, PermanentError):
        return "invalid"
    return "transient"


def _describe(provider: str, error: DeliveryError) -> str:
    return f"{provider} {error.code or type(error).__name__}: {error}"[:500]


def _call(channel: str, provider: str, error: DeliveryError | None) -> dict[str, Any]:
    """The DeliveryAttempt record of one provider call."""
    return {
        "channel": channel,
        "provider": provider,
        "outcome": _outcome_name(error),
        "error": _describe(provider, error) if error else None,
        "at": now(),
    }


def _settle(breaker: CircuitBreaker, error: DeliveryError | None) -> None:
    if isinstance(error, TransientError | ProviderAuthError):
        breaker.record_failure()  # the provider's fault
    else:
        breaker.record_success()  # it answered; a refusal is about recipient or content


def not_sent(dispatch: Mapping[str, Any], provider: str, *, code: str, reason: str) -> Outcome:
    """The outcome of a dispatch Herald did not send on its channel (no provider call):
    unreachable there, so it falls back to the next channel like a provider refusal."""
    channel = dispatch["channel"]
    error = RecipientUnreachable(reason, provider=provider, code=code)
    return Outcome(channel, None, provider, error, [_call(channel, provider, error)])


async def deliver_batch(
    dispatches: Sequence[Mapping[str, Any]],
    provider: Any,
    breaker: CircuitBreaker,
    metrics: Metrics,
) -> list[Outcome] | None:
    """One batch call for many dispatches (same channel, distinct addresses).

    None when the batch should be split and sent one by one: the circuit does
    not allow the call, or the provider refused the batch's content (one bad
    address makes SendGrid reject them all).
    """
    if not breaker.allow():
        return None
    started = time.perf_counter()
    accepted: Accepted | None = None
    error: DeliveryError | None = None
    try:
        accepted = await provider.send_batch([message_for(d) for d in dispatches])
    except DeliveryError as exc:
        error = exc
    metrics.provider_seconds.labels(provider.name).observe(time.perf_counter() - started)
    metrics.provider_requests.labels(provider.name, _outcome_name(error)).inc()
    metrics.batch_size.labels(provider.name).observe(len(dispatches))
    _settle(breaker, error)
    if isinstance(error, InvalidData):
        return None
    channel = dispatches[0]["channel"]
    pmid = accepted.provider_message_id if accepted else None
    return [
        Outcome(channel, pmid, provider.name, error, [_call(channel, provider.name, error)])
        for _ in dispatches
    ]


async def deliver(
    dispatch: Mapping[str, Any],
    providers: Sequence[Provider],
    breakers: Mapping[str, CircuitBreaker],
    metrics: Metrics,
    acquire: Callable[[str], Awaitable[None]] | None = None,
    *,
    as_template: bool = False,
) -> Outcome:
    """Call the first of `providers` (in the attempt's order) whose circuit allows it;
    `acquire(provider)` waits for its rate budget; `as_template`: see `message_for`."""
    channel = dispatch["channel"]
    outcome = Outcome(channel)
    message = message_for(dispatch, as_template=as_template)
    for provider in providers:
        breaker = breakers[provider.name]
        if not breaker.allow():
            metrics.provider_requests.labels(provider.name, "circuit-open").inc()
            continue
        if acquire is not None:
            await acquire(provider.name)
        started = time.perf_counter()
        try:
            accepted = await provider.send(message)
            error: DeliveryError | None = None
        except DeliveryError as exc:
            accepted, error = None, exc
        metrics.provider_seconds.labels(provider.name).observe(time.perf_counter() - started)
        metrics.provider_requests.labels(provider.name, _outcome_name(error)).inc()
        outcome.provider = provider.name
        outcome.calls.append(_call(channel, provider.name, error))
        outcome.error = error
        outcome.provider_message_id = accepted.provider_message_id if accepted else None
        _settle(breaker, error)
        return outcome
    outcome.error = CircuitOpen(f"every {channel} provider's circuit is open", code="circuit")
    return outcome
