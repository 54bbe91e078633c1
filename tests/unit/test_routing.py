"""Routing: the channel chain per priority, explicit channels, contact points; the lanes."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.domain.routing import lane_for, route_channels

ALL = {"email", "sms", "whatsapp", "push"}
PHONE = "+34600111222"
FULL = {
    "userId": "u-1",
    "email": "a@x.test",
    "phone": PHONE,
    "whatsapp": PHONE,
    "pushTokens": ["t"],
}


ROUTES = {
    "high": ("high", None, FULL, ALL, ["whatsapp", "sms", "email", "push"]),
    "standard": ("standard", None, FULL, ALL, ["email", "sms", "push"]),
    "marketing": ("marketing", None, FULL, ALL, ["email", "push"]),
    "explicit": ("marketing", ["sms", "email"], FULL, ALL, ["sms", "email"]),
    "no-whatsapp": ("high", None, {**FULL, "whatsapp": None}, ALL, ["sms", "email", "push"]),
    "no-push-tokens": ("standard", None, {**FULL, "pushTokens": []}, ALL, ["email", "sms"]),
    "only-email-wired": ("high", None, FULL, {"email"}, ["email"]),
    "explicit-not-wired": ("standard", ["sms"], FULL, {"email"}, []),
    "unreachable": ("standard", None, {"userId": "u-1", "phone": PHONE}, {"email"}, []),
}


@pytest.mark.parametrize(
    ("priority", "channels", "recipient", "available", "expected"), ROUTES.values(), ids=ROUTES
)
def test_route_channels(
    priority: str, channels: Any, recipient: Any, available: set[str], expected: list[str]
) -> None:
    request = {"priority": priority, "channels": channels, "recipient": recipient}
    assert route_channels(request, available) == expected


@pytest.mark.parametrize(
    ("priority", "lane"), [("high", "urgent"), ("standard", "urgent"), ("marketing", "bulk")]
)
def test_lane_for(priority: str, lane: str) -> None:
    assert lane_for(priority) == lane
