"""Consent: may this recipient be contacted on this channel for this category?

Preferences hold consent per channel, per category (the priority) and for
everything (`all`). Withdrawn consent on any of the three blocks; with no
record, transactional traffic (high, standard) is allowed and marketing is
allowed until opted out (the policy later issues make configurable per tenant).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["ConsentSplit", "Decision", "evaluate_consent", "split_by_consent"]


@dataclass(frozen=True)
class Decision:
    allowed: bool
    rule: str


@dataclass(frozen=True)
class ConsentSplit:
    """The routed channels split by consent: where we may send, and why not elsewhere."""

    allowed: list[str]
    blocked: list[tuple[str, Decision]]

    @property
    def refused_everywhere(self) -> bool:
        """Consent withdrawn on every routed channel: the request is BLOCKED."""
        return not self.allowed and bool(self.blocked)


def split_by_consent(
    preferences: Mapping[str, Any] | None, channels: Sequence[str], category: str
) -> ConsentSplit:
    """Evaluate consent on each routed channel, in route order.

    The one consent check: the ingest stage and the HTTP API's early opted-out
    answer both call it, so they cannot disagree.
    """
    allowed: list[str] = []
    blocked: list[tuple[str, Decision]] = []
    for channel in channels:
        decision = evaluate_consent(preferences, channel, category)
        if decision.allowed:
            allowed.append(channel)
        else:
            blocked.append((channel, decision))
    return ConsentSplit(allowed, blocked)


def evaluate_consent(
    preferences: Mapping[str, Any] | None, channel: str, category: str
) -> Decision:
    if not preferences:
        return Decision(True, "no-preferences")
    everything = preferences.get("all")
    if everything is not None and not everything.get("granted", True):
        return Decision(False, "opted-out-all")
    by_category = (preferences.get("categories") or {}).get(category)
    if by_category is not None and not by_category.get("granted", True):
        return Decision(False, f"opted-out-category:{category}")
    by_channel = (preferences.get("channels") or {}).get(channel)
    if by_channel is not None and not by_channel.get("granted", True):
        return Decision(False, f"opted-out-channel:{channel}")
    return Decision(True, "consent")
