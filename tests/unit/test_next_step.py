"""next_step: what an attempt's outcome leads to (sent, fallback, retry, dead letter)."""

from __future__ import annotations

import pytest

from pipeline.domain.followups import Outcome, next_step
from pipeline.domain.retry import RetryPolicy
from pipeline.exceptions import (
    CircuitOpen,
    InvalidData,
    ProviderAuthError,
    RecipientUnreachable,
    TransientError,
)


def outcome(error: Exception | None = None) -> Outcome:
    accepted = None if error else "id-1"
    return Outcome("whatsapp", provider_message_id=accepted, provider="p", error=error)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("error", "remaining", "action", "reason"),
    [
        (None, [], "sent", ""),
        (RecipientUnreachable("131026"), ["sms", "email"], "fallback", "unreachable"),
        (RecipientUnreachable("131026"), [], "failed", "unreachable"),
        (InvalidData("bad"), ["sms"], "dead-letter", "invalid"),
        (ProviderAuthError("401"), [], "retry", ""),  # the channel's other provider next
        (TransientError("500"), [], "retry", ""),
        (CircuitOpen("open"), [], "retry", ""),
    ],
)
def test_next_step(error: Exception | None, remaining: list, action: str, reason: str) -> None:
    step = next_step(outcome(error), remaining, {}, RetryPolicy(), ["p", "q"])
    assert (step.action, step.reason) == (action, reason)


@pytest.mark.parametrize(
    ("providers", "counts", "action"),
    [
        (["p"], {}, "dead-letter"),  # no other provider: dead letter at once
        (["p", "q"], {}, "retry"),  # failover to q
        (["p", "q"], {"provider-auth": 1}, "dead-letter"),  # q refused our key too
        (["p", "q", "r"], {"provider-auth": 1}, "retry"),  # r has not been asked yet
        (["p", "q"], {"provider-error": 3}, "retry"),  # counted per class
    ],
)
def test_provider_auth_fails_over_until_every_provider_was_asked(
    providers: list[str], counts: dict[str, int], action: str
) -> None:
    step = next_step(outcome(ProviderAuthError("401")), ["sms"], counts, RetryPolicy(), providers)
    assert step.action == action
    assert step.reason == ("provider-auth" if action == "dead-letter" else "")
    if action == "retry":
        assert step.delay_s == 0.0 and step.error_class == "provider-auth"  # nothing to wait for


def test_next_step_dead_letters_when_retries_are_exhausted() -> None:
    step = next_step(
        outcome(TransientError("500")), [], {"provider-error": 3}, RetryPolicy(), ["p", "q"]
    )
    assert step.action == "dead-letter" and step.reason == "retries-exhausted:provider-error"
