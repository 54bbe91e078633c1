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
        (ProviderAuthError("401"), [], "dead-letter", "provider-auth"),
        (TransientError("500"), [], "retry", ""),
        (CircuitOpen("open"), [], "retry", ""),
    ],
)
def test_next_step(error: Exception | None, remaining: list, action: str, reason: str) -> None:
    step = next_step(outcome(error), remaining, {}, RetryPolicy())
    assert (step.action, step.reason) == (action, reason)


def test_next_step_dead_letters_when_retries_are_exhausted() -> None:
    step = next_step(outcome(TransientError("500")), [], {"provider-error": 3}, RetryPolicy())
    assert step.action == "dead-letter" and step.reason == "retries-exhausted:provider-error"
