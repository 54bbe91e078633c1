"""What the send stage does after an attempt: a pure function of the dispatch, the
outcome of its provider calls, the channel's providers and the retry policy.

    outcome                              step          follow-ups
    accepted                             SENT          status SENT
    unreachable, channels remain         FALLBACK      RETRY (outcome FALLBACK) + the next
                                                       channel's dispatch
    unreachable, none remain             FAILED        FAILED + dead letter (unreachable)
    invalid data                         DEAD_LETTER   DLQ + dead letter (invalid)
    provider failure, retries left       RETRY         RETRY + the next attempt, due later,
                                                       on the channel's next provider
    provider auth, spent                 DEAD_LETTER   DLQ + dead letter (provider-auth)
    transient, retries spent             DEAD_LETTER   DLQ + dead letter (retries-exhausted:<class>)
    sent, unanswered, not to be resent   SENT          SENT, in doubt (no new call)

A request the provider may have taken without answering (a timeout after it was sent,
`ProviderTimeout.in_doubt`) is in doubt, like a call a crash cut short: every status of
the attempt says `inDoubt`, and whether it is sent again is the priority's policy
(`HERALD_RESEND_IN_DOUBT`): resent (a retry, as any timeout) or reported SENT in doubt.

A provider failure is anything that is the provider's fault or ours towards it: a
timeout, a 5xx, a 429, an outage, our credentials refused. Its retries are counted per
message across the channel's providers (the seed's 6.6 table), and there are always at
least enough of them to reach each provider once (`failover.retry_floor`): failover
before the dead letter. Which provider the next attempt tries first comes from the
history (`failover.provider_order`).

The agent turns `FollowUps` into records in the order that keeps the promise (see
agents/send.py); unit tests call `follow_ups` with tables of cases, no Kafka.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pipeline.domain.failover import provider_order, retry_floor
from pipeline.domain.ledger import outcome as ledger_outcome
from pipeline.domain.records import status_record
from pipeline.domain.retry import ErrorClass, RetryPolicy
from pipeline.domain.statuses import AttemptOutcome, Status
from pipeline.exceptions import (
    DeliveryError,
    InvalidData,
    ProviderAuthError,
    ProviderTimeout,
    RecipientUnreachable,
)

__all__ = [
    "Action",
    "DeadLetterSpec",
    "FollowUps",
    "NextAttempt",
    "NextChannel",
    "Outcome",
    "RenderNext",
    "Step",
    "follow_ups",
    "next_step",
    "unanswered",
]


class Action(StrEnum):
    SENT = "sent"
    FALLBACK = "fallback"
    RETRY = "retry"
    DEAD_LETTER = "dead-letter"
    FAILED = "failed"


@dataclass
class Outcome:
    """What happened on one attempt: the calls made and how it ended."""

    channel: str
    provider_message_id: str | None = None  # set when a provider accepted
    provider: str | None = None  # who accepted, or who failed last
    error: DeliveryError | None = None
    calls: list[dict[str, Any]] = field(default_factory=list)  # DeliveryAttempt records

    @property
    def accepted(self) -> bool:
        return self.provider_message_id is not None


@dataclass(frozen=True)
class Step:
    """What the send stage does next."""

    action: Action
    reason: str = ""
    delay_s: float = 0.0
    error_class: ErrorClass | None = None


def next_step(
    outcome: Outcome,
    remaining: Sequence[str],
    retry_counts: Mapping[str, int],
    policy: RetryPolicy,
    providers: Sequence[str] = (),
) -> Step:
    """What comes after `outcome`; `providers`: the channel's, in failover order."""
    if outcome.accepted:
        return Step(Action.SENT)
    error = outcome.error
    assert error is not None
    if isinstance(error, RecipientUnreachable):
        if remaining:
            return Step(Action.FALLBACK, reason="unreachable")
        return Step(Action.FAILED, reason="unreachable")
    if isinstance(error, InvalidData):
        return Step(Action.DEAD_LETTER, reason="invalid", error_class=ErrorClass.INVALID)
    decision = policy.decide(error, retry_counts, floor=retry_floor(providers))
    if decision.retry:
        return Step(Action.RETRY, delay_s=decision.delay_s, error_class=decision.error_class)
    if isinstance(error, ProviderAuthError):
        return Step(Action.DEAD_LETTER, reason="provider-auth", error_class=decision.error_class)
    return Step(
        Action.DEAD_LETTER, reason=f"retries-exhausted:{decision.error_class}",
        error_class=decision.error_class,
    )  # fmt: skip


@dataclass(frozen=True)
class NextAttempt:
    """The same channel again, due at `due_ms` (through the scheduler)."""

    dispatch: dict[str, Any]
    due_ms: int


@dataclass(frozen=True)
class NextChannel:
    """The request rendered for the next channel of its chain."""

    channel: str
    dispatch: dict[str, Any]


@dataclass(frozen=True)
class DeadLetterSpec:
    reason: str
    error: str
    attempts: list[dict[str, Any]]


@dataclass(frozen=True)
class FollowUps:
    """Everything an attempt's outcome calls for; `ledger` records it (written last)."""

    step: Step
    status: dict[str, Any]
    ledger: dict[str, Any]
    next_attempt: NextAttempt | None = None
    next_channel: NextChannel | None = None
    dead_letter: DeadLetterSpec | None = None
    unanswered: bool = False  # the provider may have taken it: in doubt


def unanswered(outcome: Outcome) -> bool:
    """The request reached the provider and no answer came: it may have been taken."""
    return isinstance(outcome.error, ProviderTimeout) and outcome.error.in_doubt


# (remaining channels, history so far) -> the next channel's dispatch, or None when no
# channel left has content or a contact point. Pure: rendering with the templates.
RenderNext = Callable[[Sequence[str], list[dict[str, Any]]], NextChannel | None]


def follow_ups(
    dispatch: Mapping[str, Any],
    outcome: Outcome,
    *,
    policy: RetryPolicy,
    position: Sequence[int],
    now_ms: int,
    render_next: RenderNext,
    providers: Sequence[str],
    in_doubt: bool = False,
    resend_in_doubt: bool = True,
) -> FollowUps:
    """What to produce after an attempt, and the ledger entry that records it.

    `providers`: the names of the channel's providers, in failover order. `in_doubt`: the
    attempt repeats a call a crash left in doubt; `resend_in_doubt`: the message's
    priority is sent again when a call is in doubt.
    """
    channel, attempt = dispatch["channel"], dispatch["attempt"]
    doubt = unanswered(outcome)
    in_doubt = in_doubt or doubt
    history = [*dispatch["history"], *outcome.calls]
    step = next_step(
        outcome, dispatch["remainingChannels"], dispatch["retryCounts"], policy, providers
    )
    error = history[-1]["error"] if history else (str(outcome.error) if outcome.error else None)
    ledger = ledger_outcome(
        position, provider=outcome.provider, provider_message_id=outcome.provider_message_id,
        action=step.action.value,
    )  # fmt: skip

    def status(name: Status, **kw: Any) -> dict[str, Any]:
        return status_record(dispatch, name, channel=channel, provider=outcome.provider,
                             attempt=attempt, in_doubt=in_doubt, **kw)  # fmt: skip

    if step.action is Action.SENT:
        return FollowUps(
            step, status(Status.SENT, provider_message_id=outcome.provider_message_id), ledger
        )
    if doubt and not resend_in_doubt:  # this priority is never sent twice
        ledger = ledger_outcome(position, provider=outcome.provider, provider_message_id=None,
                                action="in-doubt")  # fmt: skip
        error = f"in doubt: {error}; the provider may have taken it, not sent again"
        return FollowUps(Step(Action.SENT, reason="in-doubt"), status(Status.SENT, error=error),
                         ledger, unanswered=True)  # fmt: skip
    if step.action is Action.FALLBACK:
        nxt = render_next(dispatch["remainingChannels"], history)
        if nxt is not None:
            retry = status(
                Status.RETRY, error=f"{error}; falling back to {nxt.channel}",
                outcome=AttemptOutcome.FALLBACK.value,
            )  # fmt: skip
            return FollowUps(step, retry, ledger, next_channel=nxt, unanswered=doubt)
    if step.action is Action.RETRY:
        assert step.error_class is not None
        counts = dict(dispatch["retryCounts"])
        counts[step.error_class.value] = counts.get(step.error_class.value, 0) + 1
        again = {**dispatch, "attempt": attempt + 1, "history": history, "retryCounts": counts}
        due = now_ms + int(step.delay_s * 1000)
        upcoming = provider_order(providers, history, channel)
        on = f" on {upcoming[0]}" if upcoming else ""
        retry = status(Status.RETRY, error=f"{error}; retry in {step.delay_s:g}s{on}")
        return FollowUps(
            step, retry, ledger, next_attempt=NextAttempt(again, due), unanswered=doubt
        )
    final = Status.FAILED if step.action in (Action.FAILED, Action.FALLBACK) else Status.DLQ
    reason = step.reason or final.value.lower()
    spec = DeadLetterSpec(reason=reason, error=error or "", attempts=history)
    return FollowUps(step, status(final, error=error), ledger, dead_letter=spec, unanswered=doubt)
