"""What the send stage produces after an attempt (`pipeline.domain.followups.follow_ups`):
a table of outcomes, each with the status, the follow-up and the ledger entry it calls for."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from pipeline.domain.followups import Action, NextChannel, Outcome, follow_ups
from pipeline.domain.retry import RetryPolicy
from pipeline.exceptions import (
    InvalidData,
    ProviderAuthError,
    ProviderTimeout,
    RateLimited,
    RecipientUnreachable,
    TransientError,
)

NOW_MS = 1_800_000_000_000
AT = [2, 17]
PROVIDERS = ["whatsapp-cloud", "twilio-whatsapp"]  # the channel's, in failover order


def dispatch(**over: Any) -> dict[str, Any]:
    base = {
        "messageId": "m-1", "tenant": "acme", "userId": "u-1", "channel": "whatsapp",
        "to": "+34600000000", "priority": "high", "template": "gate-change", "attempt": 1,
        "remainingChannels": ["sms", "email"], "history": [], "retryCounts": {},
    }  # fmt: skip
    return {**base, **over}


def call(error: str | None) -> dict[str, Any]:
    return {"channel": "whatsapp", "provider": "whatsapp-cloud", "outcome": "x", "error": error,
            "at": "2026-11-28T10:00:00.000Z"}  # fmt: skip


def outcome(error: Exception | None) -> Outcome:
    if error is None:
        return Outcome("whatsapp", "wamid.1", "whatsapp-cloud", None, [call(None)])
    return Outcome("whatsapp", None, "whatsapp-cloud", error, [call(str(error))])  # type: ignore[arg-type]


def sms_next(remaining: Sequence[str], history: list[dict[str, Any]]) -> NextChannel | None:
    return NextChannel("sms", {"channel": "sms", "history": history})


def nothing_next(remaining: Sequence[str], history: list[dict[str, Any]]) -> NextChannel | None:
    return None


CASES = [
    # (error, dispatch overrides, render_next) -> (action, status, follow-up, dead-letter reason)
    (None, {}, sms_next, Action.SENT, "SENT", None, None),
    (RecipientUnreachable("131026"), {}, sms_next, Action.FALLBACK, "RETRY", "channel", None),
    (RecipientUnreachable("131026"), {}, nothing_next, Action.FALLBACK, "FAILED", None,
     "unreachable"),
    (RecipientUnreachable("131026"), {"remainingChannels": []}, sms_next, Action.FAILED,
     "FAILED", None, "unreachable"),
    (InvalidData("bad"), {}, sms_next, Action.DEAD_LETTER, "DLQ", None, "invalid"),
    # A key one provider refuses says nothing about the next one: fail over to it first.
    (ProviderAuthError("401"), {}, sms_next, Action.RETRY, "RETRY", "attempt", None),
    (ProviderAuthError("401"), {"retryCounts": {"provider-auth": 1}}, sms_next,
     Action.DEAD_LETTER, "DLQ", None, "provider-auth"),
    (ProviderTimeout("t"), {}, sms_next, Action.RETRY, "RETRY", "attempt", None),
    (TransientError("503"), {"retryCounts": {"provider-error": 3}}, sms_next,
     Action.DEAD_LETTER, "DLQ", None, "retries-exhausted:provider-error"),
    (RateLimited("429"), {"retryCounts": {"rate-limit": 5}}, sms_next, Action.DEAD_LETTER,
     "DLQ", None, "retries-exhausted:rate-limit"),
]  # fmt: skip


@pytest.mark.parametrize(("error", "over", "render", "action", "status", "follow", "dlq"), CASES)
def test_follow_ups(
    error: Exception | None, over: dict[str, Any], render: Any, action: Action, status: str,
    follow: str | None, dlq: str | None,
) -> None:  # fmt: skip
    todo = follow_ups(dispatch(**over), outcome(error), policy=RetryPolicy(), position=AT,
                      now_ms=NOW_MS, render_next=render, providers=PROVIDERS)  # fmt: skip
    assert todo.step.action is action
    assert todo.status["status"] == status and todo.status["attempt"] == 1
    assert (todo.next_channel is not None, todo.next_attempt is not None) == (
        follow == "channel", follow == "attempt",
    )  # fmt: skip
    assert (todo.dead_letter.reason if todo.dead_letter else None) == dlq
    assert todo.ledger["position"] == AT and todo.ledger["action"] == action.value
    assert todo.ledger["providerMessageId"] == (None if error else "wamid.1")


def test_a_retry_is_the_next_attempt_with_its_history_and_counts() -> None:
    todo = follow_ups(dispatch(), outcome(ProviderTimeout("t")), policy=RetryPolicy(scale=0.25),
                      position=AT, now_ms=NOW_MS, render_next=sms_next,
                      providers=PROVIDERS)  # fmt: skip
    assert todo.next_attempt is not None
    again = todo.next_attempt.dispatch
    assert again["attempt"] == 2 and again["retryCounts"] == {"timeout": 1}
    assert again["history"] == [call("t")]
    assert todo.next_attempt.due_ms == NOW_MS + 500  # 2 s scaled by 0.25
    assert todo.status["error"].endswith("retry in 0.5s on twilio-whatsapp")  # the next one
    assert todo.status["provider"] == "whatsapp-cloud"  # the one that failed


def test_a_retry_after_is_honoured() -> None:
    todo = follow_ups(dispatch(), outcome(RateLimited("429", retry_after=7.0)),
                      policy=RetryPolicy(scale=0.01), position=AT, now_ms=NOW_MS,
                      render_next=sms_next, providers=PROVIDERS)  # fmt: skip
    assert todo.next_attempt is not None and todo.next_attempt.due_ms == NOW_MS + 7000


def test_a_fallback_carries_the_history_and_names_the_next_channel() -> None:
    todo = follow_ups(dispatch(), outcome(RecipientUnreachable("131026")), policy=RetryPolicy(),
                      position=AT, now_ms=NOW_MS, render_next=sms_next,
                      providers=PROVIDERS)  # fmt: skip
    assert todo.next_channel is not None and todo.next_channel.channel == "sms"
    assert todo.next_channel.dispatch["history"] == [call("131026")]
    assert todo.status["error"].endswith("falling back to sms")
    # The contract has no FALLBACK status: a RETRY whose record names the fallback.
    assert todo.status["status"] == "RETRY" and todo.status["outcome"] == "FALLBACK"


def test_only_a_fallback_names_its_outcome() -> None:
    for error in (None, ProviderTimeout("t"), InvalidData("bad")):
        todo = follow_ups(dispatch(), outcome(error), policy=RetryPolicy(), position=AT,
                          now_ms=NOW_MS, render_next=sms_next, providers=PROVIDERS)  # fmt: skip
        assert todo.status["outcome"] is None


def test_an_in_doubt_resend_says_so_on_its_status() -> None:
    todo = follow_ups(dispatch(), outcome(None), policy=RetryPolicy(), position=AT,
                      now_ms=NOW_MS, render_next=sms_next, providers=PROVIDERS,
                      in_doubt=True)  # fmt: skip
    assert todo.status["inDoubt"] is True and todo.status["providerMessageId"] == "wamid.1"


def test_a_call_never_made_is_retried_without_doubt() -> None:
    never = ProviderTimeout("connection refused", in_doubt=False)
    todo = follow_ups(dispatch(), outcome(never), policy=RetryPolicy(), position=AT,
                      now_ms=NOW_MS, render_next=sms_next, providers=PROVIDERS)  # fmt: skip
    assert todo.step.action is Action.RETRY and todo.next_attempt is not None
    assert todo.status["inDoubt"] is False and not todo.unanswered


def test_an_unanswered_call_is_resent_in_doubt_for_a_priority_that_resends() -> None:
    late = ProviderTimeout("timeout", in_doubt=True)  # sent, no answer: maybe taken
    todo = follow_ups(dispatch(priority="high"), outcome(late), policy=RetryPolicy(),
                      position=AT, now_ms=NOW_MS, render_next=sms_next, providers=PROVIDERS,
                      resend_in_doubt=True)  # fmt: skip
    assert todo.step.action is Action.RETRY and todo.next_attempt is not None
    assert todo.status["status"] == "RETRY" and todo.status["inDoubt"] is True
    assert todo.unanswered


def test_an_unanswered_call_is_not_resent_for_a_priority_never_sent_twice() -> None:
    late = ProviderTimeout("timeout", in_doubt=True)
    todo = follow_ups(dispatch(priority="marketing"), outcome(late), policy=RetryPolicy(),
                      position=AT, now_ms=NOW_MS, render_next=sms_next, providers=PROVIDERS,
                      resend_in_doubt=False)  # fmt: skip
    assert todo.next_attempt is None and todo.next_channel is None and todo.dead_letter is None
    assert todo.status["status"] == "SENT" and todo.status["inDoubt"] is True
    assert todo.status["providerMessageId"] is None and "not sent again" in todo.status["error"]
    assert todo.ledger["action"] == "in-doubt" and todo.unanswered
