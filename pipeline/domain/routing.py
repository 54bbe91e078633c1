"""Channel routing: explicit channels first, else the priority's chain (seed 6.10)."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

__all__ = [
    "CHAINS",
    "CHANNELS",
    "CONTACT_FIELD",
    "LANES",
    "contact_point",
    "lane_for",
    "route_channels",
]

# Every channel Herald knows, and the two lanes each has (a dispatch topic per pair).
CHANNELS = ("email", "sms", "whatsapp", "push")
LANES = ("urgent", "bulk")

CHAINS: Mapping[str, tuple[str, ...]] = {
    "high": ("whatsapp", "sms", "email", "push"),
    "standard": ("email", "sms", "push"),
    "marketing": ("email", "push"),
}
CONTACT_FIELD = {"email": "email", "sms": "phone", "whatsapp": "whatsapp", "push": "pushTokens"}


def lane_for(priority: str) -> str:
    """Urgent traffic never queues behind a campaign."""
    return "bulk" if priority == "marketing" else "urgent"


def contact_point(recipient: Mapping[str, Any], channel: str) -> str | None:
    value = recipient.get(CONTACT_FIELD[channel])
    if isinstance(value, list):
        return value[0] if value else None
    return value or None


def route_channels(request: Mapping[str, Any], available: Collection[str]) -> list[str]:
    """The channels to try, in order, that the recipient can be reached on.

    `available` is the set of channels the topology has wired; a channel the
    recipient has no contact point for is skipped.
    """
    explicit = request.get("channels")
    order = explicit if explicit else CHAINS[request.get("priority") or "standard"]
    recipient = request.get("recipient") or {}
    return [c for c in order if c in available and contact_point(recipient, c)]
