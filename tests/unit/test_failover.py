"""Failover before the dead letter (issue 11, item 1): which provider each attempt tries
(`pipeline.domain.failover`), and a message's whole journey through the pure decisions
(`follow_ups` fed with what each provider answers), as tables, no Kafka."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest

from pipeline.domain.failover import last_provider, provider_order, retry_floor
from pipeline.domain.followups import Action, NextChannel, Outcome, follow_ups
from pipeline.domain.retry import RetryPolicy
from pipeline.exceptions import (
    DeliveryError,
    InvalidData,
    ProviderAuthError,
    ProviderTimeout,
    RateLimited,
    RecipientUnreachable,
    TransientError,
)

EMAIL = ["sendgrid", "smtp"]
SMS = ["twilio", "vonage"]
PUSH = ["fcm"]


def call(channel: str, provider: str) -> dict[str, Any]:
    return {"channel": channel, "provider": provider, "outcome": "transient", "error": "x",
            "at": "2026-11-28T10:00:00.000Z"}  # fmt: skip


@pytest.mark.parametrize(
    ("channel", "providers", "history", "expected"),
    [
        ("email", EMAIL, [], ["sendgrid", "smtp"]),  # first attempt: failover order
        ("email", EMAIL, [call("email", "sendgrid")], ["smtp", "sendgrid"]),
        ("email", EMAIL, [call("email", "sendgrid"), call("email", "smtp")], ["sendgrid", "smtp"]),
        # smtp alone so far (sendgrid's circuit was open): sendgrid's turn
        ("email", EMAIL, [call("email", "smtp")], ["sendgrid", "smtp"]),
        ("push", PUSH, [call("push", "fcm")], ["fcm"]),
        ("email", ["a", "b", "c"], [call("email", "b")], ["c", "a", "b"]),
        # Another channel's calls (before a fallback) do not move this one's order.
        ("sms", SMS, [call("whatsapp", "whatsapp-cloud")], ["twilio", "vonage"]),
        ("sms", SMS, [call("sms", "twilio"), call("email", "sendgrid")], ["vonage", "twilio"]),
        # A provider no longer configured is ignored.
        ("sms", SMS, [call("sms", "retired")], ["twilio", "vonage"]),
        ("sms", [], [call("sms", "twilio")], []),
    ],
)  # fmt: skip
def test_provider_order(
    channel: str, providers: list[str], history: list[Any], expected: list[str]
) -> None:
    assert provider_order(providers, history, channel) == expected


def test_last_provider_and_floor() -> None:
    assert last_provider(EMAIL, [call("email", "smtp"), call("sms", "twilio")], "email") == "smtp"
    assert last_provider(EMAIL, [], "email") is None
    assert [retry_floor(p) for p in ([], PUSH, EMAIL, ["a", "b", "c"])] == [0, 0, 1, 2]


# ------------------------------------------------ a message's journey, attempt by attempt

Answer = Callable[[], DeliveryError | None]  # what a provider does with the next call
OK: Answer = lambda: None  # noqa: E731


def journey(
    channel: str, providers: Sequence[str], answers: dict[str, Answer], scale: float = 0.25
) -> tuple[list[str], list[float], Any]:
    """Run one message through `follow_ups` until it ends: the providers called in turn,
    the delay before each retry, and the final FollowUps."""
    dispatch: dict[str, Any] = {
        "messageId": "m-1", "tenant": "acme", "userId": "u-1", "channel": channel,
        "to": "x", "priority": "standard", "template": "t", "attempt": 1,
        "remainingChannels": [], "history": [], "retryCounts": {},
    }  # fmt: skip
    called: list[str] = []
    delays: list[float] = []
    for _ in range(20):
        provider = provider_order(providers, dispatch["history"], channel)[0]
        called.append(provider)
        error = answers[provider]()
        record = {"channel": channel, "provider": provider, "outcome": "x",
                  "error": str(error) if error else None, "at": "t"}  # fmt: skip
        outcome = Outcome(channel, None if error else "pm-1", provider, error, [record])
        todo = follow_ups(dispatch, outcome, policy=RetryPolicy(scale=scale), position=[0, 1],
                          now_ms=0, render_next=lambda r, h: None, providers=providers)  # fmt: skip
        if todo.next_attempt is None:
            return called, delays, todo
        delays.append(todo.next_attempt.due_ms / 1000)
        dispatch = todo.next_attempt.dispatch
    raise AssertionError("the message never ended")


def t500() -> DeliveryError:
    return TransientError("503")


CASES = [
    # channel, providers, what each answers -> providers called, delays, last action, reason
    pytest.param("email", EMAIL, {"sendgrid": t500, "smtp": OK},
                 ["sendgrid", "smtp"], [0.5], Action.SENT, "", id="sendgrid-down-smtp-sends"),
    pytest.param("sms", SMS, {"twilio": lambda: ProviderTimeout("t"), "vonage": OK},
                 ["twilio", "vonage"], [0.5], Action.SENT, "", id="twilio-timeout-vonage-sends"),
    pytest.param("email", EMAIL, {"sendgrid": t500, "smtp": t500},
                 ["sendgrid", "smtp", "sendgrid", "smtp"], [0.5, 1.0, 2.0], Action.DEAD_LETTER,
                 "retries-exhausted:provider-error", id="every-provider-down"),
    pytest.param("push", PUSH, {"fcm": t500}, ["fcm"] * 4, [0.5, 1.0, 2.0],
                 Action.DEAD_LETTER, "retries-exhausted:provider-error", id="one-provider-down"),
    pytest.param("email", EMAIL, {"sendgrid": lambda: ProviderAuthError("401"), "smtp": OK},
                 ["sendgrid", "smtp"], [0.0], Action.SENT, "", id="bad-sendgrid-key-smtp-sends"),
    pytest.param("email", EMAIL, {"sendgrid": lambda: ProviderAuthError("401"),
                                  "smtp": lambda: ProviderAuthError("535")},
                 ["sendgrid", "smtp"], [0.0], Action.DEAD_LETTER, "provider-auth",
                 id="every-key-refused"),
    pytest.param("push", PUSH, {"fcm": lambda: ProviderAuthError("401")}, ["fcm"], [],
                 Action.DEAD_LETTER, "provider-auth", id="the-only-key-refused"),
    pytest.param("sms", SMS, {"twilio": lambda: RateLimited("429", retry_after=3.0),
                              "vonage": OK},
                 ["twilio", "vonage"], [3.0], Action.SENT, "", id="429-retry-after-then-vonage"),
    pytest.param("email", EMAIL, {"sendgrid": lambda: InvalidData("400"), "smtp": OK},
                 ["sendgrid"], [], Action.DEAD_LETTER, "invalid", id="invalid-data-no-failover"),
    pytest.param("sms", SMS, {"twilio": lambda: RecipientUnreachable("21614"), "vonage": OK},
                 ["twilio"], [], Action.FAILED, "unreachable", id="unreachable-is-no-failover"),
]  # fmt: skip


@pytest.mark.parametrize(("channel", "providers", "answers", "called", "delays", "action",
                          "reason"), CASES)  # fmt: skip
def test_a_message_reaches_every_provider_before_the_dead_letter(
    channel: str, providers: list[str], answers: dict[str, Answer], called: list[str],
    delays: list[float], action: Action, reason: str,
) -> None:  # fmt: skip
    got_called, got_delays, todo = journey(channel, providers, answers)
    assert got_called == called
    assert got_delays == delays  # the seed's backoff, scaled by 0.25, across providers
    assert todo.step.action is action and todo.step.reason == reason
    if todo.dead_letter is not None:  # the dead letter lists every call, provider by provider
        assert [a["provider"] for a in todo.dead_letter.attempts] == called
    else:
        assert todo.status["provider"] == called[-1] and todo.status["status"] == "SENT"


def test_each_retry_status_names_the_provider_that_failed_and_the_next() -> None:
    dispatch = {
        "messageId": "m-1", "tenant": "acme", "userId": "u-1", "channel": "email", "to": "x",
        "priority": "standard", "template": "t", "attempt": 1, "remainingChannels": [],
        "history": [], "retryCounts": {},
    }  # fmt: skip
    failed = Outcome("email", None, "sendgrid", t500(), [call("email", "sendgrid")])
    todo = follow_ups(dispatch, failed, policy=RetryPolicy(scale=0.25), position=[0, 1],
                      now_ms=0, render_next=lambda r, h: None, providers=EMAIL)  # fmt: skip
    assert todo.status["status"] == "RETRY" and todo.status["provider"] == "sendgrid"
    assert todo.status["error"].endswith("retry in 0.5s on smtp")
    assert todo.next_attempt is not None
    assert todo.next_attempt.dispatch["retryCounts"] == {"provider-error": 1}  # per message
    assert provider_order(EMAIL, todo.next_attempt.dispatch["history"], "email")[0] == "smtp"


def test_a_fallback_is_named_as_such() -> None:
    dispatch = {
        "messageId": "m-1", "tenant": "acme", "userId": "u-1", "channel": "whatsapp",
        "to": "x", "priority": "high", "template": "t", "attempt": 1,
        "remainingChannels": ["sms"], "history": [], "retryCounts": {},
    }  # fmt: skip
    refused = Outcome("whatsapp", None, "whatsapp-cloud", RecipientUnreachable("131026"),
                      [call("whatsapp", "whatsapp-cloud")])  # fmt: skip
    todo = follow_ups(
        dispatch, refused, policy=RetryPolicy(), position=[0, 1], now_ms=0,
        render_next=lambda r, h: NextChannel("sms", {"channel": "sms", "history": h}),
        providers=["whatsapp-cloud", "twilio-whatsapp"],
    )  # fmt: skip
    assert todo.step.action is Action.FALLBACK and todo.next_attempt is None
    assert (todo.status["status"], todo.status["outcome"]) == ("RETRY", "FALLBACK")
    assert todo.next_channel is not None and todo.next_channel.channel == "sms"
