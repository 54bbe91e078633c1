"""Consent: per channel and category, the global opt-out, what is recorded."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.domain.compliance import evaluate_consent, split_by_consent

NO = {"granted": False, "source": "unsubscribe", "at": "2026-11-28T10:00:00.000Z"}
YES = {**NO, "granted": True}


CONSENT_CASES = {
    "none": (None, "email", "marketing", True, "no-preferences"),
    "empty": ({}, "email", "marketing", True, "no-preferences"),
    "all-false": ({"all": NO}, "push", "high", False, "opted-out-all"),
    "all-beats-channel": ({"all": NO, "channels": {"push": YES}}, "push", "high", False,
                          "opted-out-all"),
    "category-false": ({"categories": {"marketing": NO}}, "email", "marketing", False,
                       "opted-out-category:marketing"),
    "other-category": ({"categories": {"marketing": NO}}, "email", "standard", True, "consent"),
    "channel-false": ({"channels": {"sms": NO}}, "sms", "high", False, "opted-out-channel:sms"),
    "other-channel": ({"channels": {"sms": NO}}, "email", "high", True, "consent"),
    "granted": ({"all": YES, "channels": {"email": YES}}, "email", "marketing", True, "consent"),
}  # fmt: skip


@pytest.mark.parametrize(
    ("prefs", "channel", "category", "allowed", "rule"),
    CONSENT_CASES.values(),
    ids=CONSENT_CASES,
)
def test_evaluate_consent(
    prefs: Any, channel: str, category: str, allowed: bool, rule: str
) -> None:
    decision = evaluate_consent(prefs, channel, category)
    assert (decision.allowed, decision.rule) == (allowed, rule)


def test_split_by_consent_keeps_route_order_and_names_each_refusal() -> None:
    preferences = {"channels": {"whatsapp": NO, "email": NO}}
    split = split_by_consent(preferences, ["whatsapp", "sms", "email", "push"], "high")
    assert split.allowed == ["sms", "push"]
    assert [(c, d.rule) for c, d in split.blocked] == [
        ("whatsapp", "opted-out-channel:whatsapp"),
        ("email", "opted-out-channel:email"),
    ]
    assert not split.refused_everywhere


def test_split_by_consent_refuses_everywhere_only_when_something_was_refused() -> None:
    assert split_by_consent({"all": NO}, ["email", "push"], "standard").refused_everywhere
    assert not split_by_consent({"all": NO}, [], "standard").refused_everywhere
