"""One delivery attempt on one channel: the provider to use, the call, the next step.

`deliver` calls the first of the channel's providers (primary, then secondary)
whose circuit allows it: failover happens while a provider's circuit is open,
as the seed's failover scenario (6.9) has it; a single failed call is the retry
policy's business. `next_step` then decides what the send stage does with the
outcome: done, fall back to the next channel, retry later, or give up.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipeline.clock import now
from pipeline.domain.resilience import CircuitBreaker, RetryPolicy
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
from pipeline.providers.base import Accepted, Message, Provider


@dataclass
class Outcome:
    """What happened on one attempt: the calls made and how it ended."""

    channel: str
    accepted: Accepted | None = None
    provider: str | None = None  # who accepted, or who failed last
    error: DeliveryError | None = None
    calls: list[dict[str, Any]] = field(default_factory=list)  # DeliveryAttempt records


def message_for(dispatch: Mapping[str, Any]) -> Message:
    return Message(
        message_id=dispatch["messageId"],
        tenant=dispatch["tenant"],
        channel=dispatch["channel"],
        to=dispatch["to"],
        text=dispatch["text"],
        subject=dispatch.get("subject"),
        html=dispatch.get("html"),
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
    return [
        Outcome(channel, accepted, provider.name, error, [_call(channel, provider.name, error)])
        for _ in dispatches
    ]


async def deliver(
    dispatch: Mapping[str, Any],
    providers: Sequence[Provider],
    breakers: Mapping[str, CircuitBreaker],
    metrics: Metrics,
    acquire: Callable[[str], Awaitable[None]] | None = None,
) -> Outcome:
    """Try `providers` in order; `acquire(provider)` waits for its rate budget."""
    channel = dispatch["channel"]
    outcome = Outcome(channel)
    message = message_for(dispatch)
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
        outcome.accepted, outcome.error = accepted, error
        _settle(breaker, error)
        return outcome
    outcome.error = CircuitOpen(f"every {channel} provider's circuit is open", code="circuit")
    return outcome


@dataclass(frozen=True)
class Step:
    """What the send stage does next."""

    action: str  # sent | fallback | retry | dead-letter | failed
    reason: str = ""
    delay_s: float = 0.0
    error_class: str = ""


def next_step(
    outcome: Outcome, remaining: Sequence[str], retry_counts: Mapping[str, int], policy: RetryPolicy
) -> Step:
    if outcome.accepted is not None:
        return Step("sent")
    error = outcome.error
    assert error is not None
    if isinstance(error, RecipientUnreachable):
        if remaining:
            return Step("fallback", reason="unreachable")
        return Step("failed", reason="unreachable")
    if isinstance(error, InvalidData):
        return Step("dead-letter", reason="invalid", error_class="invalid")
    if isinstance(error, ProviderAuthError):
        return Step("dead-letter", reason="provider-auth", error_class="invalid")
    decision = policy.decide(error, retry_counts)
    if decision.retry:
        return Step("retry", delay_s=decision.delay_s, error_class=decision.error_class)
    return Step(
        "dead-letter", reason=f"retries-exhausted:{decision.error_class}",
        error_class=decision.error_class,
    )  # fmt: skip
